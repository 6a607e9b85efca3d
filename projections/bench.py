"""`touchline bench projections`: rebuild every read model from a realistic log, beside the raw read rate."""

from __future__ import annotations

import random
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any, get_args

import asyncpg

from events.catalog import (
    CampaignActivated,
    CampaignCreated,
    CampaignPaused,
    CampaignStep,
    Channel,
    Event,
    LeadContactInvalid,
    LeadIngested,
    LeadReplied,
    LeadStateChanged,
    LeadStatusChanged,
    LeadSuppressed,
    TouchRunClaimed,
    TouchRunDeliveryStatus,
    TouchRunDispatched,
    TouchRunFailed,
    TouchRunRetryScheduled,
    TouchRunScheduled,
    campaign_stream,
    lead_stream,
    touch_stream,
)
from events.postgres import PostgresEventStore, open_postgres_store
from events.store import StreamAppend
from projections import ALL_PROJECTIONS
from projections.runner import RebuildProgress, all_views, rebuild

CHANNELS: tuple[Channel, ...] = get_args(Channel)
_BASE = datetime(2026, 11, 1, tzinfo=UTC)


def workload(events: int, *, seed: int = 7, accounts: int = 4) -> Iterator[list[StreamAppend]]:
    """About `events` events as a dealer's month looks: leads found, cadences run, replies, opt-outs.

    Yields one lead's story at a time (its lead stream and its touch runs' streams), preceded by
    each account's campaigns. Deterministic for a seed.
    """
    rng = random.Random(seed)

    def uid() -> uuid.UUID:  # a uuid4 from the seeded generator
        return uuid.UUID(int=rng.getrandbits(128), version=4)

    made = 0
    campaigns: dict[uuid.UUID, list[uuid.UUID]] = {}
    for _ in range(accounts):
        account = uid()
        campaigns[account] = []
        for c in range(3):
            campaign = uid()
            campaigns[account].append(campaign)
            steps = [CampaignStep(step=i + 1, channel=rng.choice(CHANNELS), delay_minutes=60 * i) for i in range(3)]
            story: list[Event] = [
                CampaignCreated(
                    campaign_id=campaign,
                    account_id=account,
                    campaign_key=f"cadence-{c}",
                    name=f"Cadence {c}",
                    steps=steps,
                ),
                CampaignActivated(campaign_id=campaign, account_id=account),
            ]
            if rng.random() < 0.3:
                story.append(CampaignPaused(campaign_id=campaign, account_id=account, reason="operator"))
            made += len(story)
            yield [StreamAppend(stream_id=campaign_stream(campaign), events=story, account_id=account)]
    account_ids = list(campaigns)
    n = 0
    while made < events:
        n += 1
        account = rng.choice(account_ids)
        lead = uid()
        at = _BASE + timedelta(minutes=n)
        lead_events: list[Event] = [
            LeadIngested(
                lead_id=lead, account_id=account, source="craigslist", external_id=str(7_700_000_000 + n),
                city="miami", url=f"https://miami.craigslist.org/mdc/cto/d/{n}.html", title=f"2014 Toyota Camry {n}",
                price=rng.randrange(2000, 30000), body="Runs great, clean title. Call me.",
                attributes={"odometer": str(rng.randrange(20_000, 200_000)), "fuel": "gas"},
                latitude=25.7 + rng.random() / 10, longitude=-80.2 - rng.random() / 10, posted_at=at,
                first_seen_at=at, phone=f"+1305{rng.randrange(10**6, 10**7)}",
            )
        ]  # fmt: skip
        appends: list[StreamAppend] = []
        campaign = rng.choice(campaigns[account])
        for step in range(1, rng.choice((2, 3, 4)) + 1):
            touch = uid()
            channel = rng.choice(CHANNELS)
            story = [
                TouchRunScheduled(
                    touch_run_id=touch, account_id=account, lead_id=lead, campaign_id=campaign, step=step,
                    channel=channel, scheduled_for=at + timedelta(hours=step),
                ),
                TouchRunClaimed(
                    touch_run_id=touch, account_id=account, claimed_by="dispatch-1",
                    lease_until=at + timedelta(hours=step, minutes=1),
                ),
            ]  # fmt: skip
            if rng.random() < 0.1:
                # fmt: off
                story += [
                    TouchRunFailed(touch_run_id=touch, account_id=account, error="timeout", retryable=True),
                    TouchRunRetryScheduled(
                        touch_run_id=touch, account_id=account, retry_at=at + timedelta(hours=step, minutes=5),
                        attempt=2,
                    ),
                    TouchRunClaimed(
                        touch_run_id=touch, account_id=account, claimed_by="dispatch-2",
                        lease_until=at + timedelta(hours=step, minutes=6), attempt=2,
                    ),
                ]
                # fmt: on
            story += [
                TouchRunDispatched(
                    touch_run_id=touch, account_id=account, provider="twilio", provider_message_id=f"SM{touch.hex}"
                ),
                TouchRunDeliveryStatus(touch_run_id=touch, account_id=account, provider="twilio", status="delivered"),
            ]
            appends.append(StreamAppend(stream_id=touch_stream(touch), events=story, account_id=account))
        lead_events.append(LeadStatusChanged(lead_id=lead, account_id=account, status="contacted"))
        roll = rng.random()
        if roll < 0.08:
            lead_events.append(LeadReplied(lead_id=lead, account_id=account, channel="sms", body="still available"))
            lead_events.append(LeadStateChanged(lead_id=lead, account_id=account, lead_state="hot"))
        elif roll < 0.11:
            lead_events.append(LeadSuppressed(lead_id=lead, account_id=account, reason="opted out", channel="sms"))
        elif roll < 0.15:
            lead_events.append(
                LeadContactInvalid(lead_id=lead, account_id=account, channel="voice", error_code="21211")
            )
        elif roll < 0.35:
            lead_events.append(LeadStateChanged(lead_id=lead, account_id=account, lead_state="dead"))
        appends.insert(0, StreamAppend(stream_id=lead_stream(lead), events=lead_events, account_id=account))
        made += sum(len(a.events) for a in appends)
        yield appends


async def fill_log(store: PostgresEventStore, events: int, *, seed: int = 7, per_append: int = 500) -> int:
    """Append about `events` events of the workload, several leads' stories per atomic append."""
    total = 0
    pending: list[StreamAppend] = []
    for appends in workload(events, seed=seed):
        pending += appends
        if sum(len(a.events) for a in pending) >= per_append:
            await store.append_many(pending)
            total += sum(len(a.events) for a in pending)
            pending = []
    if pending:
        await store.append_many(pending)
        total += sum(len(a.events) for a in pending)
    return total


async def run_projection_bench(
    dsn: str, *, events: int = 1_000_000, progress: Callable[[str, RebuildProgress | None], None] | None = None
) -> dict[str, Any]:
    """Fill a fresh log, read it raw (the baseline), then rebuild every projection from it."""
    async with open_postgres_store(dsn, writers=2) as store:
        started = time.perf_counter()
        count = await fill_log(store, events)
        fill_s = time.perf_counter() - started
        if progress:
            progress("filled", None)
        conn: asyncpg.Connection = await asyncpg.connect(dsn)
        try:
            await conn.execute("vacuum analyze touchline.events")  # as an operator's log would be: hint bits set
        finally:
            await conn.close()

        started = time.perf_counter()
        read = 0
        async for batch in store.read_all(0, batch_size=10_000):
            read += len(batch)
        read_s = time.perf_counter() - started

        projections = [cls() for cls in ALL_PROJECTIONS]
        report = await rebuild(
            store,
            projections,
            all_views(projections),
            progress=(lambda p: progress("rebuild", p)) if progress else None,
        )
        rows = {}
        for p in projections:
            for table in p.tables:
                rows[table.qualified] = int(await store.pool.fetchval(f"select count(*) from {table.qualified}"))
    return {
        "events": count,
        "fill_events_per_s": round(count / fill_s, 1),
        "read_events_per_s": round(read / read_s, 1),
        "rebuild_events_per_s": round(count / report.seconds, 1),
        "rebuild_seconds": round(report.seconds, 2),
        "rebuild_vs_read": round(read_s / report.seconds, 3),
        "projections": report.projections,
        "rows": rows,
    }
