"""Property: a read model folded incrementally, in any batch sizes and across restarts, equals a rebuild."""

from __future__ import annotations

import itertools
import uuid
from datetime import UTC, datetime, timedelta

import anyio
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from events.catalog import (
    CampaignActivated,
    CampaignCreated,
    CampaignPaused,
    CampaignStep,
    CampaignStepsReplaced,
    Event,
    LeadContactInvalid,
    LeadIngested,
    LeadReplied,
    LeadStateChanged,
    LeadStatusChanged,
    LeadSuppressed,
    TouchRunClaimed,
    TouchRunDeadLettered,
    TouchRunDeliveryStatus,
    TouchRunDispatched,
    TouchRunFailed,
    TouchRunRequeued,
    TouchRunRetryScheduled,
    TouchRunScheduled,
    TouchRunSkipped,
    campaign_stream,
    lead_stream,
    touch_stream,
)
from events.postgres import PostgresEventStore, open_postgres_store
from events.store import EventFilter
from projections.runner import ProjectionWorker, all_views, ensure_ready, rebuild
from tests.projections.helpers import every_projection, snapshot

ACCOUNT = uuid.UUID("00000000-0000-4000-8000-0000000000a2")
AT = datetime(2026, 11, 24, 9, 0, tzinfo=UTC)

ids = st.integers(0, 5)
lead_ops = st.one_of(
    st.tuples(st.just("ingest"), ids, st.sampled_from(["+13055550100", None])),
    st.tuples(st.just("status"), ids, st.sampled_from(["new", "contacted", "replied", "qualified", "closed"])),
    st.tuples(st.just("state"), ids, st.sampled_from(["cold", "warm", "hot", "dead"])),
    st.tuples(st.just("suppress"), ids, st.just("opted out")),
    st.tuples(st.just("invalid"), ids, st.sampled_from(["sms", "voice", "whatsapp"])),
    st.tuples(st.just("replied"), ids, st.sampled_from(["sms", "whatsapp"])),
)
campaign_ops = st.tuples(st.sampled_from(["create", "activate", "pause", "steps"]), ids, st.just(""))
touch_ops = st.tuples(
    st.sampled_from(["schedule", "claim", "dispatch", "fail", "retry", "dead", "requeue", "delivered", "skip"]),
    ids,
    st.integers(0, 5),
)


def event_for(op: tuple[str, int, object], names: dict[tuple[str, int], uuid.UUID]) -> tuple[str, Event]:
    kind, n, arg = op

    def the(what: str, i: int) -> uuid.UUID:
        return names.setdefault((what, i), uuid.uuid4())

    lead, campaign, touch = the("lead", n), the("campaign", n), the("touch", n)
    match kind:
        case "ingest":
            assert arg is None or isinstance(arg, str)
            return lead_stream(lead), LeadIngested(
                lead_id=lead, account_id=ACCOUNT, source="craigslist", external_id=str(n), phone=arg, posted_at=AT
            )
        case "status":
            return lead_stream(lead), LeadStatusChanged(lead_id=lead, account_id=ACCOUNT, status=arg)  # type: ignore[arg-type]
        case "state":
            return lead_stream(lead), LeadStateChanged(lead_id=lead, account_id=ACCOUNT, lead_state=arg)  # type: ignore[arg-type]
        case "suppress":
            return lead_stream(lead), LeadSuppressed(lead_id=lead, account_id=ACCOUNT, reason=str(arg))
        case "invalid":
            return lead_stream(lead), LeadContactInvalid(lead_id=lead, account_id=ACCOUNT, channel=str(arg))
        case "replied":
            return lead_stream(lead), LeadReplied(lead_id=lead, account_id=ACCOUNT, channel=str(arg))
        case "create":
            steps = [CampaignStep(step=1, channel="sms")]
            return campaign_stream(campaign), CampaignCreated(
                campaign_id=campaign, account_id=ACCOUNT, campaign_key=f"c{n}", name="C", steps=steps
            )
        case "activate":
            return campaign_stream(campaign), CampaignActivated(campaign_id=campaign, account_id=ACCOUNT)
        case "pause":
            return campaign_stream(campaign), CampaignPaused(campaign_id=campaign, account_id=ACCOUNT)
        case "steps":
            steps = [CampaignStep(step=1, channel="voice"), CampaignStep(step=2, channel="email", delay_minutes=60)]
            return campaign_stream(campaign), CampaignStepsReplaced(
                campaign_id=campaign, account_id=ACCOUNT, steps=steps
            )
    assert isinstance(arg, int)
    due = AT + timedelta(minutes=arg)
    event: Event
    match kind:
        case "schedule":
            event = TouchRunScheduled(
                touch_run_id=touch,
                account_id=ACCOUNT,
                lead_id=the("lead", arg),
                campaign_id=campaign,
                step=arg + 1,
                channel="sms",
                scheduled_for=due,
            )
        case "claim":
            event = TouchRunClaimed(
                touch_run_id=touch, account_id=ACCOUNT, claimed_by=f"w{arg}", lease_until=due, attempt=arg + 1
            )
        case "dispatch":
            event = TouchRunDispatched(
                touch_run_id=touch, account_id=ACCOUNT, provider="twilio", provider_message_id=f"SM{arg}"
            )
        case "fail":
            event = TouchRunFailed(
                touch_run_id=touch, account_id=ACCOUNT, error="timeout", error_code=str(arg), retryable=True
            )
        case "retry":
            event = TouchRunRetryScheduled(touch_run_id=touch, account_id=ACCOUNT, retry_at=due, attempt=arg + 1)
        case "dead":
            event = TouchRunDeadLettered(touch_run_id=touch, account_id=ACCOUNT, error="gave up", attempts=arg)
        case "requeue":
            event = TouchRunRequeued(touch_run_id=touch, account_id=ACCOUNT, requested_by="operator")
        case "delivered":
            event = TouchRunDeliveryStatus(
                touch_run_id=touch, account_id=ACCOUNT, provider="twilio", status="delivered"
            )
        case _:
            event = TouchRunSkipped(touch_run_id=touch, account_id=ACCOUNT, reason="outside send window")
    return touch_stream(touch), event


async def fold_incrementally(store: PostgresEventStore, sizes: list[int], restarts: list[bool]) -> None:
    """Fold everything new into the live tables through workers, in the given batch sizes."""
    views = all_views(every_projection())
    for projection in every_projection():
        await ensure_ready(store, projection, views)
        worker = ProjectionWorker(projection, store)
        worker.position = int(
            await store.pool.fetchval("select position from touchline.projections where name = $1", projection.name)
        )
        head = await store.head_position()
        wanted = EventFilter(types=projection.types())
        envelopes = [e async for batch in store.read_all(worker.position, filter=wanted) for e in batch]
        chunks = itertools.cycle(sizes)
        restart = itertools.cycle(restarts)
        while envelopes:
            size = next(chunks)
            chunk, envelopes = envelopes[:size], envelopes[size:]
            if next(restart):  # a new process: nothing cached
                position = worker.position
                worker = ProjectionWorker(type(projection)(), store)
                worker.position = position
            assert await worker.commit(chunk, chunk[-1].position)
        assert await worker.commit([], head)


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    ops=st.lists(st.one_of(lead_ops, campaign_ops, touch_ops), min_size=1, max_size=40),
    sizes=st.lists(st.integers(1, 12), min_size=1, max_size=6),
    restarts=st.lists(st.booleans(), min_size=1, max_size=6),
)
def test_incremental_folding_equals_a_rebuild(
    database_url: str, ops: list[tuple[str, int, object]], sizes: list[int], restarts: list[bool]
) -> None:
    async def example() -> None:
        async with open_postgres_store(database_url, writers=1) as store:
            names: dict[tuple[str, int], uuid.UUID] = {}
            for op in ops:
                stream, event = event_for(op, names)
                await store.append(stream, [event])
            await fold_incrementally(store, sizes, restarts)
            projections = every_projection()
            incremental = await snapshot(store, projections)
            await rebuild(store, projections, all_views(projections))
            assert await snapshot(store, projections) == incremental

    anyio.run(example)
