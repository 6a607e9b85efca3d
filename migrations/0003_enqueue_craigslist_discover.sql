-- lead_hunter.enqueue_craigslist_discover_v1(account, city): the spec's ops entry point, kept as SQL.
-- It appends the same CrawlTaskEnqueued event the command does (a discover task for the city) to a
-- new `crawl_task-<id>` stream and returns the task id. Like every append, call it as the first
-- write of its transaction (on its own, as the spec's ops query does).

create function lead_hunter.enqueue_craigslist_discover_v1(p_account uuid, p_city text) returns uuid
language plpgsql as $$
declare
    v_city  text := lower(replace(btrim(coalesce(p_city, '')), ' ', ''));
    v_task  uuid := gen_random_uuid();
    v_event uuid := gen_random_uuid();
    r       record;
begin
    if p_account is null then
        raise exception 'enqueue_craigslist_discover_v1: account is required (an account uuid)'
            using errcode = '22004';
    end if;
    if v_city !~ '^[a-z0-9]{2,40}$' then
        raise exception 'enqueue_craigslist_discover_v1: city % is not a city name (letters and digits, e.g. miami)',
            quote_literal(coalesce(p_city, 'null')) using errcode = '22023';
    end if;
    select * into r
      from touchline.append_events(
          array[1], array['crawl_task-' || v_task], array[-1::bigint], array[1], array[v_event],
          array['CrawlTaskEnqueued'], array[p_account], array[v_event], array[null::uuid],
          array[jsonb_build_object(
              'type', 'CrawlTaskEnqueued', 'task_id', v_task, 'account_id', p_account, 'task_type', 'discover',
              'city', v_city, 'source', 'craigslist', 'url', null, 'posting_id', null,
              'enqueued_by', 'sql:enqueue_craigslist_discover_v1')]);
    if r.outcome <> 'ok' then
        raise exception 'enqueue_craigslist_discover_v1: the append was refused (%)', r.outcome;
    end if;
    return v_task;
end $$;
