-- touchline_app: the database role the application runs as, which can append to the event log but
-- never change or remove what is in it.
--
-- How to use it. touchline_app is NOLOGIN: give each deployment (or each process kind) its own LOGIN
-- role that is a member of it, and put that role in TOUCHLINE_DATABASE_URL:
--
--     create role touchline_web login password '...' in role touchline_app;
--     -- or, for a role that exists already:  grant touchline_app to touchline_web;
--
-- A member inherits touchline_app's privileges (INHERIT is the default), so nothing else is
-- needed. Migrations keep running as the owner of the schema (the role that ran them so far),
-- and so does the projection runner while it creates and swaps read-model tables (DDL needs the
-- owner); everything that only appends events and reads (the HTTP API, the actors, the relay)
-- can run as a member of touchline_app.
--
-- What touchline_app may do:
--   touchline.events          SELECT, INSERT (through touchline.append_events; positions need USAGE
--                             on touchline.events_position_seq). No UPDATE, DELETE or TRUNCATE.
--   touchline.seals           SELECT, INSERT (touchline.seal). No UPDATE, DELETE or TRUNCATE.
--   touchline.checkpoints,    SELECT, INSERT, UPDATE, DELETE (readers' bookkeeping, not the log)
--   touchline.projections
--   touchline.schema_migrations  SELECT only
--   every function in touchline and lead_hunter: EXECUTE
--   tables the owner creates later (read models, anywhere): SELECT; schemas: USAGE
-- Even the owner cannot change the log: the append-only triggers of 0001 refuse UPDATE, DELETE
-- and TRUNCATE for everyone; the missing privileges refuse them one step earlier for the app.
--
-- Roles are cluster-wide: the role is created only if no database of the cluster made it before.
-- A migrating role without CREATEROLE skips it with a warning (a DBA can create it and rerun
-- the grants below by hand); the grants themselves are per database, so each database gets them.

do $$
begin
    if not exists (select 1 from pg_roles where rolname = 'touchline_app') then
        begin
            create role touchline_app nologin;
        exception
            when duplicate_object or unique_violation then
                null;  -- another database's migration created it at the same moment
            when insufficient_privilege then
                raise warning 'touchline: cannot create role touchline_app (%); create it as a superuser '
                    'and grant it the privileges listed in 0004_app_role.sql', sqlerrm;
                return;
        end;
    end if;

    grant usage on schema touchline to touchline_app;
    grant usage on schema lead_hunter to touchline_app;
    grant usage on schema public to touchline_app;

    grant select, insert on touchline.events to touchline_app;
    grant select, insert on touchline.seals to touchline_app;
    grant usage, select on sequence touchline.events_position_seq to touchline_app;
    grant usage, select on sequence touchline.seals_seal_id_seq to touchline_app;
    revoke update, delete, truncate on touchline.events, touchline.seals from touchline_app;

    grant select, insert, update, delete on touchline.checkpoints to touchline_app;
    grant select, insert, update, delete on touchline.projections to touchline_app;
    grant select on touchline.schema_migrations to touchline_app;

    grant execute on all functions in schema touchline to touchline_app;
    grant execute on all functions in schema lead_hunter to touchline_app;

    -- Read models are created later by the projection runner (as the owner), in schemas it may
    -- create then too: the app reads them.
    alter default privileges grant select on tables to touchline_app;
    alter default privileges grant usage on schemas to touchline_app;
    alter default privileges grant execute on functions to touchline_app;
end $$;
