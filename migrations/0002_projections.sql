-- Projections: each one's version, checkpoint and health. Its read-model tables are created by
-- the projection runner (they are rebuilt into shadow tables and swapped in, so their DDL lives
-- with the projection's code in projections/). The schemas the spec's names live in are made here.

create schema if not exists lead_hunter;

create table touchline.projections (
    name            text primary key,
    version         integer     not null,
    -- the last log position applied; written in the same transaction as the read-model rows
    position        bigint      not null default 0,
    events_applied  bigint      not null default 0,
    rate            double precision,           -- events/s over the last batches applied
    updated_at      timestamptz not null default now(),
    rebuilt_at      timestamptz,
    -- a projection that failed on an event stops there and says which one and why
    error           text,
    error_position  bigint,
    error_event_id  uuid,
    error_at        timestamptz
);
