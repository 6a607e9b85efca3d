"""The projection runner on real PostgreSQL: catch-up, live, exactly-once checkpoints, failures, rebuild and swap."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import ClassVar

import anyio
import anyio.lowlevel
import asyncpg
import pytest

from events.catalog import (
    CampaignActivated,
    CampaignCreated,
    CampaignPaused,
    Event,
    LeadIngested,
    LeadReplied,
    LeadStatusChanged,
    LeadSuppressed,
    TouchRunClaimed,
    TouchRunDispatched,
    TouchRunScheduled,
    campaign_stream,
    lead_stream,
    touch_stream,
)
from events.postgres import PostgresEventStore
from projections.bench import fill_log
from projections.campaigns import CampaignsProjection
from projections.inbox import InboxProjection
from projections.leads import LeadsProjection
from projections.model import Db, Fact, Projection, RowSet, Table, View
from projections.runner import ProjectionWorker, all_views, projection_status, rebuild, rebuild_if_stale
from projections.touch_runs import TouchRunsProjection
from tests.projections.helpers import caught_up, every_projection, running, snapshot

ACCOUNT = uuid.UUID("00000000-0000-4000-8000-0000000000a1")


async def ingest(store: PostgresEventStore, n: int = 1, **fields: object) -> list[uuid.UUID]:
    ids = []
    for i in range(n):
        lead_id = uuid.uuid4()
        ids.append(lead_id)
        event = LeadIngested(
            lead_id=lead_id, account_id=ACCOUNT, source="craigslist", external_id=f"{lead_id.int % 10**10}-{i}",
            phone="+13055550100", **fields,  # type: ignore[arg-type]
        )  # fmt: skip
        await store.append(lead_stream(lead_id), [event])
    return ids


async def test_catches_up_then_follows_live(pg_store: PostgresEventStore) -> None:
    first = await ingest(pg_store, 30)
    async with running(pg_store, [LeadsProjection()]) as workers:
        await caught_up(pg_store, workers)
        assert await pg_store.pool.fetchval("select count(*) from public.leads") == 30
        await pg_store.append(
            lead_stream(first[0]), [LeadStatusChanged(lead_id=first[0], account_id=ACCOUNT, status="contacted")]
        )
        await pg_store.append(
            lead_stream(first[1]), [LeadSuppressed(lead_id=first[1], account_id=ACCOUNT, reason="opted out")]
        )
        await caught_up(pg_store, workers)
        records = await pg_store.pool.fetch("select id, status from public.leads where id = any($1)", first[:3])
        rows = {r["id"]: r["status"] for r in records}
        assert rows == {first[0]: "contacted", first[1]: "suppressed", first[2]: "new"}
        # Suppression is final: a later status change does not bring the lead back.
        await pg_store.append(
            lead_stream(first[1]), [LeadStatusChanged(lead_id=first[1], account_id=ACCOUNT, status="new")]
        )
        await caught_up(pg_store, workers)
        assert await pg_store.pool.fetchval("select status from public.leads where id = $1", first[1]) == "suppressed"
    head = await pg_store.head_position()
    (status,) = await projection_status(pg_store, [LeadsProjection()])
    assert (status.position, status.lag, status.state, status.events_applied) == (head, 0, "live", 33)


async def test_the_checkpoint_moves_past_events_it_does_not_handle(pg_store: PostgresEventStore) -> None:
    campaign = uuid.uuid4()
    async with running(pg_store, [LeadsProjection()]) as workers:
        await pg_store.append(
            campaign_stream(campaign),
            [CampaignCreated(campaign_id=campaign, account_id=ACCOUNT, campaign_key="k", name="n")],
        )
        await caught_up(pg_store, workers)
    (status,) = await projection_status(pg_store, [LeadsProjection()])
    assert status.lag == 0 and status.position == await pg_store.head_position()


async def test_campaign_status_is_derived_from_is_active(pg_store: PostgresEventStore) -> None:
    ids = [uuid.uuid4() for _ in range(3)]
    for i, cid in enumerate(ids):
        events: list[Event] = [CampaignCreated(campaign_id=cid, account_id=ACCOUNT, campaign_key=f"c{i}", name="C")]
        events += [CampaignActivated(campaign_id=cid, account_id=ACCOUNT)] if i else []
        events += [CampaignPaused(campaign_id=cid, account_id=ACCOUNT, reason="pause all")] if i == 2 else []
        await pg_store.append(campaign_stream(cid), events)
    async with running(pg_store, [CampaignsProjection()]) as workers:
        await caught_up(pg_store, workers)
    rows = await pg_store.pool.fetch("select campaign_key, is_active, status from public.campaigns order by 1")
    assert [tuple(r) for r in rows] == [("c0", False, "paused"), ("c1", True, "active"), ("c2", False, "paused")]
    # The spec's mismatch query finds nothing, and the database refuses to make one.
    mismatches = await pg_store.pool.fetchval(
        "select count(*) from public.campaigns where (is_active = true and status <> 'active') "
        "or (is_active = false and status = 'active')"
    )
    assert mismatches == 0
    with pytest.raises(asyncpg.GeneratedAlwaysError):
        await pg_store.pool.execute("update public.campaigns set status = 'active' where campaign_key = 'c0'")


class Fussy(Projection):
    """Counts leads, and cannot fold a status change whose reason is 'boom'."""

    name = "fussy"
    handles: ClassVar[tuple[type[Event], ...]] = (LeadIngested, LeadStatusChanged)
    tables = (
        Table(
            schema="public", name="fussy_counts", columns=(("id", "uuid not null"), ("n", "integer not null")), key="id"
        ),
    )

    async def apply(self, db: Db, batch: Sequence[Fact]) -> None:
        for fact in batch:
            if isinstance(fact.event, LeadStatusChanged) and fact.event.reason == "boom":
                raise ValueError("cannot fold a boom")
            await db.conn.execute(
                "insert into public.fussy_counts values ($1, 1) on conflict (id) do update set n = fussy_counts.n + 1",
                fact.event.lead_id,  # type: ignore[attr-defined]
            )


async def test_a_bad_event_stops_that_projection_alone_at_its_last_good_checkpoint(
    pg_store: PostgresEventStore,
) -> None:
    good = await ingest(pg_store, 3)
    bad = await pg_store.append(
        lead_stream(good[0]),
        [LeadStatusChanged(lead_id=good[0], account_id=ACCOUNT, status="contacted", reason="boom")],
    )
    after = await ingest(pg_store, 2)
    async with running(pg_store, [Fussy(), LeadsProjection()], batch_size=100) as (fussy, leads):
        await caught_up(pg_store, [fussy, leads])
        assert fussy.state == "failed" and fussy.failure is not None
        assert fussy.failure.env.position == bad.first_position
        assert "cannot fold a boom" in str(fussy.failure) and str(fussy.failure.env.event_id) in str(fussy.failure)
        # The events before the bad one are in, with the checkpoint just before it; none after.
        assert fussy.position == bad.first_position - 1
        assert await pg_store.pool.fetchval("select count(*) from public.fussy_counts") == 3
        # The other projection went on to the end.
        assert await pg_store.pool.fetchval("select count(*) from public.leads") == 5
    statuses = {s.name: s for s in await projection_status(pg_store, [Fussy(), LeadsProjection()])}
    assert statuses["fussy"].state == "failed"
    assert statuses["fussy"].error_position == bad.first_position
    assert statuses["fussy"].error == "ValueError: cannot fold a boom"
    assert statuses["fussy"].lag == 3  # the bad event and the two after it
    assert statuses["leads"].state == "live"
    assert after  # (ingested after the bad event)


async def test_two_workers_on_one_projection_apply_each_event_once(pg_store: PostgresEventStore) -> None:
    await fill_log(pg_store, 3000)
    async with running(pg_store, [TouchRunsProjection(), TouchRunsProjection()], batch_size=97) as workers:
        await caught_up(pg_store, workers)
    handled = await pg_store.pool.fetchval(
        "select count(*) from touchline.events where event_type = any($1)", list(TouchRunsProjection.types())
    )
    applied = await pg_store.pool.fetchval("select events_applied from touchline.projections where name = 'touch_runs'")
    assert applied == handled
    live = await snapshot(pg_store, [TouchRunsProjection()])
    await rebuild(pg_store, [TouchRunsProjection()], [])
    assert await snapshot(pg_store, [TouchRunsProjection()]) == live


async def test_rebuild_serves_the_old_copy_until_an_atomic_swap(pg_store: PostgresEventStore) -> None:
    await fill_log(pg_store, 2000)
    projections = every_projection()
    async with running(pg_store, projections) as workers:
        await caught_up(pg_store, workers)
        before = await snapshot(pg_store, projections)
        old_oid = await pg_store.pool.fetchval("select 'public.leads'::regclass::oid")
        swapped = anyio.Event()
        seen_during: list[int] = []

        async def read_while_rebuilding() -> None:
            # Readers keep getting the whole old read model while the rebuild runs.
            while not swapped.is_set():
                seen_during.append(await pg_store.pool.fetchval("select count(*) from public.leads"))
                await anyio.lowlevel.checkpoint()

        async with anyio.create_task_group() as tg:
            tg.start_soon(read_while_rebuilding)
            # New events keep coming during the rebuild: the swap folds them in.
            lead_ids = await ingest(pg_store, 5)
            report = await rebuild(pg_store, every_projection(), all_views(projections), batch_size=300)
            swapped.set()
        assert seen_during and min(seen_during) >= len(before["public.leads"])
        assert await pg_store.pool.fetchval("select 'public.leads'::regclass::oid") != old_oid
        assert report.scanned_to == await pg_store.head_position()
        # The live workers follow the swapped-in tables on.
        more = await ingest(pg_store, 3)
        await caught_up(pg_store, workers)
        assert (
            await pg_store.pool.fetchval("select count(*) from public.leads where id = any($1)", lead_ids + more) == 8
        )
        after = await snapshot(pg_store, projections)
    assert len(after["public.leads"]) == len(before["public.leads"]) + 8
    await rebuild(pg_store, every_projection(), all_views(projections))
    assert await snapshot(pg_store, projections) == after
    schemas = await pg_store.pool.fetchval(
        "select count(*) from information_schema.schemata where schema_name like 'touchline_rebuild_%'"
    )
    assert schemas == 0


class LeadsV2(LeadsProjection):
    version = 2


async def test_a_new_version_is_rebuilt_before_it_serves(pg_store: PostgresEventStore) -> None:
    await ingest(pg_store, 4)
    async with running(pg_store, [LeadsProjection()]) as workers:
        await caught_up(pg_store, workers)
    # Tamper with the read model: a rebuild must bring it back from the log.
    await pg_store.pool.execute("delete from public.leads")
    async with running(pg_store, [LeadsV2()]) as workers:
        await caught_up(pg_store, workers)
        assert await pg_store.pool.fetchval("select count(*) from public.leads") == 4
    row = await pg_store.pool.fetchrow("select version, rebuilt_at from touchline.projections where name = 'leads'")
    assert row is not None and row["version"] == 2 and row["rebuilt_at"] is not None


class CountsWithView(Projection):
    name = "lead_counts"
    handles: ClassVar[tuple[type[Event], ...]] = (LeadIngested,)
    tables = (
        Table(
            schema="public",
            name="lead_counts",
            columns=(("account_id", "uuid not null"), ("n", "integer not null")),
            key="account_id",
        ),
    )
    views = (
        View(
            schema="public",
            name="v_lead_counts",
            sql="select c.account_id, c.n, (select count(*) from public.leads l where l.account_id = c.account_id) "
            "as leads from public.lead_counts c",
        ),
    )

    def __init__(self) -> None:
        self.counts = RowSet(self.tables[0], _CountRow)

    async def apply(self, db: Db, batch: Sequence[Fact]) -> None:
        await self.counts.prefetch(db, (f.event.account_id for f in batch))  # type: ignore[attr-defined]
        for fact in batch:
            account = fact.event.account_id  # type: ignore[attr-defined]
            row = self.counts.get(account) or _CountRow(account, 0)
            row.n += 1
            self.counts.put(row)


import msgspec  # noqa: E402 - the row type sits beside the one test that needs it


class _CountRow(msgspec.Struct):
    account_id: uuid.UUID
    n: int


async def test_views_over_swapped_tables_are_recreated(pg_store: PostgresEventStore) -> None:
    await ingest(pg_store, 3)
    projections: list[Projection] = [LeadsProjection(), CountsWithView()]
    views = all_views(projections)
    async with running(pg_store, projections, views=views) as workers:
        await caught_up(pg_store, workers)
    query = "select n, leads from public.v_lead_counts"
    assert tuple(await pg_store.pool.fetchrow(query) or ()) == (3, 3)
    await rebuild(pg_store, [LeadsProjection()], views)
    await rebuild(pg_store, [CountsWithView()], views)
    assert tuple(await pg_store.pool.fetchrow(query) or ()) == (3, 3)


async def test_touch_run_lifecycle(pg_store: PostgresEventStore) -> None:
    touch, lead, campaign = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    due = datetime(2026, 11, 24, 14, 5, tzinfo=UTC)
    await pg_store.append(
        touch_stream(touch),
        [
            TouchRunScheduled(
                touch_run_id=touch, account_id=ACCOUNT, lead_id=lead, campaign_id=campaign, step=1, channel="sms",
                scheduled_for=due,
            ),
            TouchRunClaimed(touch_run_id=touch, account_id=ACCOUNT, claimed_by="p1", lease_until=due, attempt=2),
        ],
    )  # fmt: skip
    async with running(pg_store, [TouchRunsProjection()]) as workers:
        await caught_up(pg_store, workers)
    row = await pg_store.pool.fetchrow("select status, attempts, claimed_by, scheduled_for from public.touch_runs")
    assert row is not None and tuple(row) == ("claimed", 2, "p1", due)


async def test_a_worker_without_its_tables_is_clear_about_it(pg_store: PostgresEventStore) -> None:
    worker = ProjectionWorker(LeadsProjection(), pg_store)
    async with anyio.create_task_group() as tg:
        await tg.start(worker.run)
        tg.cancel_scope.cancel()
    await pg_store.pool.execute("drop table public.leads")
    await ingest(pg_store, 1)
    # A missing table is set up again from the log (a rebuild), not a crash loop.
    async with running(pg_store, [LeadsProjection()]) as workers:
        await caught_up(pg_store, workers)
    assert await pg_store.pool.fetchval("select count(*) from public.leads") == 1


async def test_processes_starting_a_new_version_together_rebuild_it_once(pg_store: PostgresEventStore) -> None:
    await ingest(pg_store, 3)
    async with running(pg_store, [LeadsProjection()]) as workers:
        await caught_up(pg_store, workers)
    reports: list[object] = []

    async def start_v2() -> None:
        reports.append(await rebuild_if_stale(pg_store, LeadsV2(), all_views(every_projection())))

    async with anyio.create_task_group() as tg:
        for _ in range(3):
            tg.start_soon(start_v2)
    assert sum(r is not None for r in reports) == 1
    assert await pg_store.pool.fetchval("select version from touchline.projections where name = 'leads'") == 2
    assert await pg_store.pool.fetchval("select count(*) from public.leads") == 3


async def test_inbox_events_show_replies_in_and_touches_out(pg_store: PostgresEventStore) -> None:
    (lead_id,) = await ingest(pg_store, 1)
    touch = uuid.uuid4()
    due = datetime(2026, 11, 24, 14, 5, tzinfo=UTC)
    await pg_store.append(
        touch_stream(touch),
        [
            TouchRunScheduled(
                touch_run_id=touch, account_id=ACCOUNT, lead_id=lead_id, campaign_id=uuid.uuid4(), step=1,
                channel="sms", scheduled_for=due,
            ),
            TouchRunDispatched(touch_run_id=touch, account_id=ACCOUNT, provider="twilio", provider_message_id="SM1"),
        ],
    )  # fmt: skip
    await pg_store.append(
        lead_stream(lead_id),
        [LeadReplied(lead_id=lead_id, account_id=ACCOUNT, channel="sms", body="Still available?", received_at=due)],
    )
    projections: list[Projection] = [LeadsProjection(), TouchRunsProjection(), InboxProjection()]
    async with running(pg_store, projections) as workers:
        await caught_up(pg_store, workers)
    rows = await pg_store.pool.fetch(
        "select direction, channel, body, provider from public.inbox_events where lead_id = $1 order by direction",
        lead_id,
    )
    assert [tuple(r) for r in rows] == [
        ("inbound", "sms", "Still available?", None),
        ("outbound", "sms", None, "twilio"),
    ]
    status = await pg_store.pool.fetchval("select status from public.leads where id = $1", lead_id)
    assert status == "replied"
