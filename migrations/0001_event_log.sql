-- The event log: one append-only table, stream heads, checkpoints, seals, and the append function.

create schema if not exists touchline;

create table touchline.events (
    position        bigint generated always as identity primary key,
    stream_id       text        not null,
    version         bigint      not null check (version > 0),
    event_id        uuid        not null,
    event_type      text        not null,
    account_id      uuid,
    correlation_id  uuid        not null,
    causation_id    uuid,
    data            jsonb       not null,
    recorded_at     timestamptz not null,
    -- The writing transaction: readers only read below the oldest running one (gap-safe order).
    tx_id           xid8        not null default pg_current_xact_id(),
    hash            bytea       not null,
    constraint events_stream_version_key unique (stream_id, version),
    constraint events_event_id_key unique (event_id)
);
-- No secondary indexes yet: each one costs every append. Readers go by position; audit
-- queries by type/account/correlation add theirs with the read models that need them.

comment on table touchline.events is
    'Append-only event log. position = global order; (stream_id, version) = per-stream order; '
    'hash chains each event to the previous one in its stream.';

-- Where each reader of the log (relay, projections) has got to.
create table touchline.checkpoints (
    name        text primary key,
    position    bigint not null default 0,
    updated_at  timestamptz not null default now()
);

-- Seals: a hash over the global order, every few thousand events, chained to the seal before.
create table touchline.seals (
    seal_id        bigint generated always as identity primary key,
    from_position  bigint not null,
    to_position    bigint not null,
    event_count    bigint not null,
    prev_hash      bytea  not null,
    hash           bytea  not null,
    sealed_at      timestamptz not null default now()
);

-- Refuse any change to the log itself; only INSERT through touchline.append_events is allowed.
create function touchline.refuse_change() returns trigger language plpgsql as $$
begin
    raise exception 'touchline: % on % is refused: the event log is append-only; record a new event instead',
        tg_op, tg_table_schema || '.' || tg_table_name
        using errcode = 'insufficient_privilege';
end $$;

create trigger events_no_update before update or delete on touchline.events
    for each row execute function touchline.refuse_change();
create trigger events_no_truncate before truncate on touchline.events
    for each statement execute function touchline.refuse_change();
create trigger seals_no_update before update or delete on touchline.seals
    for each row execute function touchline.refuse_change();
create trigger seals_no_truncate before truncate on touchline.seals
    for each statement execute function touchline.refuse_change();
-- "always" so that session_replication_role = replica cannot switch the guards off.
alter table touchline.events enable always trigger events_no_update;
alter table touchline.events enable always trigger events_no_truncate;
alter table touchline.seals enable always trigger seals_no_update;
alter table touchline.seals enable always trigger seals_no_truncate;

-- The hash of one event, chained to the previous event's hash in its stream:
--   sha256(prev || version || sha256(content)), all in binary.
-- One definition of the content digest, used by the append and by the verifier.
create function touchline.event_digest(
    event_id uuid, stream_id text, event_type text, account_id uuid,
    correlation_id uuid, causation_id uuid, data jsonb, recorded_us bigint
) returns bytea language sql immutable parallel safe as $$
    -- Binary and length-prefixed: unambiguous, and twice as fast as formatting text.
    select sha256(
        uuid_send(event_id)
        || int4send(octet_length(stream_id)) || convert_to(stream_id, 'UTF8')
        || int4send(octet_length(event_type)) || convert_to(event_type, 'UTF8')
        || case when account_id is null then '\x00'::bytea else '\x01'::bytea || uuid_send(account_id) end
        || uuid_send(correlation_id)
        || case when causation_id is null then '\x00'::bytea else '\x01'::bytea || uuid_send(causation_id) end
        || int8send(recorded_us)
        || convert_to(data::text, 'UTF8'))
$$;

create function touchline.recorded_us(ts timestamptz) returns bigint language sql immutable parallel safe as $$
    select (extract(epoch from ts) * 1000000)::bigint
$$;

create function touchline.event_hash(
    prev bytea, event_id uuid, stream_id text, version bigint, event_type text, account_id uuid,
    correlation_id uuid, causation_id uuid, data jsonb, recorded_at timestamptz
) returns bytea language sql immutable parallel safe as $$
    select sha256(prev || int8send(version) || touchline.event_digest(
        event_id, stream_id, event_type, account_id, correlation_id, causation_id, data,
        touchline.recorded_us(recorded_at)))
$$;

-- Appends a group of append requests (group commit) in one call.
-- Must be the first write of its transaction; best called on its own (autocommit).
--
-- A request is one or more stream segments that succeed or fail together; each segment carries
-- its expected version (-2 any, -1 no stream, n >= 0 exact). Requests are applied in order, each
-- checked against the versions left by the requests before it, so one failing request does not
-- fail the group. A request whose event ids are all in the log already is a replay: it writes
-- nothing and returns where those events are.
--
-- Gap-safe global order: the transaction id is assigned and the positions are drawn while holding
-- a session advisory lock, released at once (long before commit). So among appending
-- transactions, position order equals transaction-id order, and a reader that only reads rows
-- whose tx_id is below the oldest running transaction (pg_snapshot_xmin) sees a prefix of the
-- log: it never skips a row that commits later. Everything else, commits included, overlaps.
--
-- Two paths. The fast one trusts the caller's hints (the version and hash it last saw for each
-- stream, from its own appends) and looks nothing up: a stale hint can only be behind, so it
-- collides on the unique (stream_id, version) or (event_id), and the checked path runs instead.
-- The checked path locks the streams (one writer per stream across processes, in a fixed order
-- so no deadlocks), reads their heads, and looks for replayed event ids.
create function touchline.append_events(
    p_req         int[],     -- per segment: the request it belongs to (1-based, ascending)
    p_stream      text[],    -- per segment
    p_expected    bigint[],  -- per segment
    p_seg         int[],     -- per event: its segment (1-based, ascending)
    p_event_id    uuid[],
    p_event_type  text[],
    p_account_id  uuid[],    -- per segment
    p_correlation uuid[],    -- per segment
    p_causation   uuid[],    -- per segment
    p_data        jsonb[],
    p_hint_version bigint[] default null,  -- per segment: the stream's version as the caller knows it
    p_hint_hash   bytea[] default null     -- per segment: the hash of that version's event
) returns table (
    req int, stream_id text, outcome text, actual_version bigint,
    first_version bigint, last_version bigint, first_position bigint, last_position bigint, last_hash bytea
) language plpgsql as $$
declare
    lock_key constant bigint := 7245318290417;
    n_seg int := coalesce(array_length(p_stream, 1), 0);
    n_ev int := coalesce(array_length(p_event_id, 1), 0);
    now_ts timestamptz := clock_timestamp();
    now_us bigint := touchline.recorded_us(now_ts);
    alloc bigint[]; dig bytea[];
    h_stream text[]; h_version bigint[]; h_hash bytea[];
    seg_first int[]; seg_last int[]; seg_head int[];
    seg_outcome text[]; seg_actual bigint[]; ev_version bigint[]; ev_hash bytea[];
    known uuid[]; check_dups boolean; repeats boolean; fast boolean; done boolean := false;
    s int; e int; r int; r_first int; r_last int; hi int; f int; l int;
    cur bigint; prev bytea; ok boolean; any_new boolean;
begin
    if pg_current_xact_id_if_assigned() is not null then
        raise exception 'touchline.append_events must be the first write of its transaction'
            using errcode = 'object_not_in_prerequisite_state',
                  hint = 'call it right after BEGIN (or on its own) so the log''s global order stays gap-safe';
    end if;
    if n_seg = 0 or n_ev = 0 then
        return;
    end if;

    -- The critical section: transaction id and positions, in one order across all writers.
    perform pg_advisory_lock(lock_key);
    begin
        perform pg_current_xact_id();
        select array_agg(nextval('touchline.events_position_seq') order by g) into alloc
          from generate_series(1, n_ev) g;
    exception when others or query_canceled then
        perform pg_advisory_unlock(lock_key);
        raise;
    end;
    perform pg_advisory_unlock(lock_key);

    select array_agg(x.f order by x.s), array_agg(x.l order by x.s) into seg_first, seg_last
      from (select p_seg[i] as s, min(i) as f, max(i) as l from generate_subscripts(p_seg, 1) i group by 1) x;
    select array_agg(touchline.event_digest(u.id, p_stream[u.seg], u.typ, p_account_id[u.seg], p_correlation[u.seg],
                                            p_causation[u.seg], u.dat, now_us) order by u.ord)
      into dig
      from unnest(p_event_id, p_seg, p_event_type, p_data) with ordinality as u(id, seg, typ, dat, ord);
    select count(distinct x) < n_ev into repeats from unnest(p_event_id) x;
    fast := not repeats and p_hint_version is not null and p_hint_hash is not null
        and array_position(p_hint_version, null) is null;

    while not done loop
        -- Stream heads, one entry per distinct stream; seg_head maps each segment to its entry.
        if fast then
            select array_agg(x.sid order by x.sid), array_agg(x.v order by x.sid), array_agg(x.h order by x.sid)
              into h_stream, h_version, h_hash
              from (select distinct on (u.sid) u.sid, u.v, u.h
                      from unnest(p_stream, p_hint_version, p_hint_hash) as u(sid, v, h) order by u.sid) x;
            known := '{}';
            check_dups := false;
        else
            perform pg_advisory_xact_lock(7245, k)
               from (select distinct hashtext(x) as k from unnest(p_stream) x order by 1) locks;
            select array_agg(u.sid order by u.sid), array_agg(coalesce(hd.version, 0) order by u.sid),
                   array_agg(coalesce(hd.hash, ''::bytea) order by u.sid)
              into h_stream, h_version, h_hash
              from (select distinct x as sid from unnest(p_stream) x) u
              left join lateral (select ev.version, ev.hash from touchline.events ev where ev.stream_id = u.sid
                                  order by ev.version desc limit 1) hd on true;
            select coalesce(array_agg(ev.event_id), '{}') into known
              from unnest(p_event_id) x join touchline.events ev on ev.event_id = x;
            check_dups := cardinality(known) > 0 or repeats;
        end if;
        select array_agg(array_position(h_stream, p_stream[i]) order by i) into seg_head
          from generate_subscripts(p_stream, 1) i;
        seg_outcome := array_fill(null::text, array[n_seg]);
        seg_actual := array_fill(null::bigint, array[n_seg]);
        ev_version := array_fill(null::bigint, array[n_ev]);
        ev_hash := array_fill(null::bytea, array[n_ev]);

        s := 1;
        while s <= n_seg loop
            r := p_req[s]; r_first := s; r_last := s;
            while r_last < n_seg and p_req[r_last + 1] = r loop r_last := r_last + 1; end loop;

            ok := true;
            for s2 in r_first .. r_last loop
                f := seg_first[s2]; l := seg_last[s2];
                cur := h_version[seg_head[s2]];
                seg_actual[s2] := cur;
                if check_dups and p_event_id[f:l] <@ known then
                    seg_outcome[s2] := 'duplicate';
                elsif check_dups and p_event_id[f:l] && known then
                    seg_outcome[s2] := 'partial_duplicate'; ok := false;
                elsif (p_expected[s2] = -1 and cur <> 0) or (p_expected[s2] >= 0 and cur <> p_expected[s2]) then
                    seg_outcome[s2] := 'conflict'; ok := false;
                else
                    seg_outcome[s2] := 'ok';
                end if;
            end loop;

            for s2 in r_first .. r_last loop
                if not ok then
                    if seg_outcome[s2] in ('ok', 'duplicate') then seg_outcome[s2] := 'rejected'; end if;
                elsif seg_outcome[s2] = 'ok' then
                    f := seg_first[s2]; l := seg_last[s2];
                    hi := seg_head[s2];
                    cur := h_version[hi]; prev := h_hash[hi];
                    for e in f .. l loop
                        cur := cur + 1;
                        prev := sha256(prev || int8send(cur) || dig[e]);
                        ev_version[e] := cur; ev_hash[e] := prev;
                    end loop;
                    h_version[hi] := cur; h_hash[hi] := prev;
                    if check_dups then known := known || p_event_id[f:l]; end if;
                end if;
            end loop;
            s := r_last + 1;
        end loop;

        any_new := array_position(seg_outcome, 'ok') is not null;
        if fast and exists (select 1 from unnest(seg_outcome) o where o <> 'ok') then
            -- A check against a hint failed, and the hint may be stale: decide on the checked path.
            fast := false;
            continue;
        end if;

        begin
            if any_new then
                insert into touchline.events (position, stream_id, version, event_id, event_type, account_id,
                                              correlation_id, causation_id, data, recorded_at, hash)
                overriding system value
                select u.pos, p_stream[u.seg], u.ver, u.id, u.typ, p_account_id[u.seg], p_correlation[u.seg],
                       p_causation[u.seg], u.dat, now_ts, u.h
                  from unnest(alloc, p_seg, ev_version, p_event_id, p_event_type, p_data, ev_hash)
                       as u(pos, seg, ver, id, typ, dat, h)
                 where u.ver is not null;
            end if;
            done := true;
        exception when unique_violation then
            if not fast then
                raise;  -- the caller retries this request on its own
            end if;
            fast := false;  -- a stale hint: the insert is undone; check properly
        end;
    end loop;

    if any_new then
        perform pg_notify('touchline_events', '');
    end if;

    for s2 in 1 .. n_seg loop
        req := p_req[s2]; stream_id := p_stream[s2]; actual_version := seg_actual[s2];
        outcome := seg_outcome[s2];
        first_version := null; last_version := null; first_position := null; last_position := null;
        last_hash := null;
        f := seg_first[s2]; l := seg_last[s2];
        if outcome = 'ok' then
            first_version := ev_version[f]; last_version := ev_version[l];
            first_position := alloc[f]; last_position := alloc[l]; last_hash := ev_hash[l];
        elsif outcome = 'duplicate' then
            -- a replay: report where the events already are (possibly written earlier in this group)
            select min(ev.version), max(ev.version), min(ev.position), max(ev.position)
              into first_version, last_version, first_position, last_position
              from touchline.events ev where ev.event_id = any(p_event_id[f:l]);
        end if;
        return next;
    end loop;
end $$;

-- The position up to which the log can be read without ever missing a later commit.
create function touchline.safe_horizon_xid() returns xid8 language sql stable as $$
    select pg_snapshot_xmin(pg_current_snapshot())
$$;

-- Seal the log up to the safe horizon: one hash over the event hashes in global order, chained
-- to the previous seal. Returns the new seal id, or null when fewer than p_min events are unsealed.
create function touchline.seal(p_max bigint default 100000, p_min bigint default 1)
returns bigint language plpgsql as $$
declare
    last_to bigint; last_hash bytea; new_id bigint;
begin
    perform pg_advisory_xact_lock(7245318290418);
    select s.to_position, s.hash into last_to, last_hash from touchline.seals s order by s.seal_id desc limit 1;
    last_to := coalesce(last_to, 0); last_hash := coalesce(last_hash, ''::bytea);
    insert into touchline.seals (from_position, to_position, event_count, prev_hash, hash)
    select min(x.position), max(x.position), count(*), last_hash,
           sha256(last_hash || string_agg(x.hash, ''::bytea order by x.position))
      from (select ev.position, ev.hash from touchline.events ev
             where ev.position > last_to and ev.tx_id < pg_snapshot_xmin(pg_current_snapshot())
             order by ev.position limit p_max) x
    having count(*) >= greatest(p_min, 1)
    returning seal_id into new_id;
    return new_id;
end $$;
