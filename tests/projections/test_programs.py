"""public.lead_programs, the program status view (the spec's Disabled / Degraded / Live) and the SSV view."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, timedelta

from actors.crawl import CrawlTasks
from actors.org import OrgSettings
from actors.programs import Programs
from events.catalog import (
    CrawlTaskClaimed,
    CrawlTaskCompleted,
    CrawlTaskEnqueued,
    CrawlTaskFailed,
    LeadgenRouting,
    LeadIngested,
    crawl_task_stream,
    lead_stream,
)
from events.postgres import PostgresEventStore
from tests.projections.helpers import caught_up, every_projection, running

ACCOUNT = uuid.UUID("00000000-0000-4000-8000-00000000d00d")


async def task(store: PostgresEventStore, city: str, *ends: str) -> uuid.UUID:
    task_id = uuid.uuid4()
    events: list[object] = [CrawlTaskEnqueued(task_id=task_id, account_id=ACCOUNT, task_type="detail", city=city)]
    lease = datetime.now(UTC) + timedelta(minutes=1)
    for end in ends:
        events.append(CrawlTaskClaimed(task_id=task_id, account_id=ACCOUNT, claimed_by="w#0", lease_until=lease))
        if end == "done":
            events.append(CrawlTaskCompleted(task_id=task_id, account_id=ACCOUNT, found=1))
        elif end == "failed":
            events.append(
                CrawlTaskFailed(task_id=task_id, account_id=ACCOUNT, error_kind="blocked_403", last_error="HTTP 403")
            )
    await store.append(crawl_task_stream(task_id), events)  # type: ignore[arg-type]
    return task_id


async def test_program_status_follows_the_spec_and_ssv_counts_leads_per_utc_day(pg_store: PostgresEventStore) -> None:
    org = OrgSettings(pg_store)
    await org.update(ACCOUNT, business_name="Miami Motors", contact_email="sales@miamimotors.com")
    await org.set_routing(ACCOUNT, LeadgenRouting(dealer_address="1 Biscayne Blvd", radius_miles=20, active=True))
    programs = Programs(pg_store)
    for city in ("miami", "tampa", "orlando", "austin"):
        await programs.start(ACCOUNT, "craigslist", city)  # each queues its first discover
    await task(pg_store, "miami", "done")
    await task(pg_store, "miami", "failed")
    await task(pg_store, "tampa", "failed")
    await programs.stop(ACCOUNT, "craigslist", "austin")  # its queued discover is cancelled
    await CrawlTasks(pg_store).enqueue_discover(ACCOUNT, "denver")  # a task, and no program
    yesterday = datetime.now(UTC) - timedelta(days=1)
    for n, seen in enumerate([yesterday, yesterday, datetime.now(UTC)]):
        lead_id = uuid.uuid4()
        await pg_store.append(
            lead_stream(lead_id),
            [
                LeadIngested(
                    lead_id=lead_id, account_id=ACCOUNT, source="craigslist", external_id=str(7700 + n), city="miami",
                    first_seen_at=seen, phone="+13055550100",
                )
            ],
        )  # fmt: skip
    async with running(pg_store, every_projection()) as workers:
        await caught_up(pg_store, workers)
        rows = await pg_store.pool.fetch(
            "select city, running, status, tasks_60m, done_60m, failed_60m, queued_60m, cancelled_60m "
            "from public.v_lead_program_status_v1 where account_id = $1 order by city",
            ACCOUNT,
        )
        status = {r["city"]: (r["running"], r["status"]) for r in rows}
        assert status == {
            "austin": (False, "Disabled"),  # stopped (its cancelled task is within the 60 minutes)
            "denver": (False, "Pending"),  # no program: the spec's rule alone (routed, a task, none ended)
            "miami": (True, "Live"),  # done > 0
            "orlando": (True, "Pending"),  # its discover is queued, nothing ended yet
            "tampa": (True, "Degraded"),  # failed > 0 and done = 0
        }
        miami = next(r for r in rows if r["city"] == "miami")
        assert (miami["tasks_60m"], miami["done_60m"], miami["failed_60m"], miami["queued_60m"]) == (3, 1, 1, 1)
        ssv = await pg_store.pool.fetch(
            "select day, city, leads from public.v_craigslist_ssv_v0 where account_id = $1 order by day", ACCOUNT
        )
        today = datetime.now(UTC).date()
        assert [(r["day"], r["city"], r["leads"]) for r in ssv] == [
            (today - timedelta(days=1), "miami", 2),
            (today, "miami", 1),
        ]
        assert isinstance(ssv[0]["day"], date)
        # The spec's Programs verification SQL runs as written.
        last_ok = await pg_store.pool.fetchval(
            "select created_at from lead_hunter.craigslist_tasks_v1 "
            "where status='done' order by created_at desc limit 1"
        )
        assert last_ok is not None
        leads_60m = await pg_store.pool.fetchval(
            "select count(*) as leads_last_60m from public.leads "
            "where source = 'craigslist' and created_at > now() - interval '60 minutes'"
        )
        assert leads_60m == 3
        program = await pg_store.pool.fetchrow(
            "select running, stopped_at, started_by from public.lead_programs where city = 'austin'"
        )
        assert program is not None and program["running"] is False and program["stopped_at"] is not None
