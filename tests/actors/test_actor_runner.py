"""Actors on real JetStream consumers and the real log: reactions, redelivery, parking, stats, shutdown."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import anyio
import anyio.lowlevel
import msgspec
import pytest
import structlog
from nats.aio.client import Client as NATS

from actors.clock import SystemClock
from actors.runtime import ActorContext, ActorRunner, ConsumerSettings, Reaction, check_actor, consumer_filters
from events.bus import HEADER_STREAM, ensure_stream
from events.catalog import EventParked, LeadIngested, LeadStatusChanged, lead_stream
from events.envelope import Envelope, envelope_encoder
from events.errors import ConfigError
from events.postgres import PostgresEventStore
from events.settings import Settings
from events.store import caused_event_id
from tests.actors.support import FAST, Echo, events_of, relaying, start, until, wait_for_events

ACCOUNT = uuid.UUID("00000000-0000-4000-8000-0000000000d1")


async def ingest(store: PostgresEventStore, external_id: str = "1") -> tuple[uuid.UUID, int]:
    lead_id = uuid.uuid4()
    result = await store.append(
        lead_stream(lead_id),
        [LeadIngested(lead_id=lead_id, account_id=ACCOUNT, source="craigslist", external_id=external_id)],
    )
    return lead_id, result.first_position


async def test_an_actor_gets_its_types_only_and_its_reactions_name_their_cause(
    pg_store: PostgresEventStore, nc: NATS, settings: Settings
) -> None:
    actor = Echo()
    async with relaying(pg_store, nc, settings) as tg:
        runner = await start(tg, actor, pg_store, nc, settings)
        other = uuid.uuid4()
        await pg_store.append(lead_stream(other), [LeadStatusChanged(lead_id=other, account_id=ACCOUNT, status="new")])
        lead_id, _ = await ingest(pg_store)
        await until(runner, lambda s: s.handled == 1)
        await runner.stop()
    assert [e.type for e in actor.seen] == ["LeadIngested"]
    cause = actor.seen[0]
    (reaction,) = [e for e in await events_of(pg_store, "LeadStatusChanged") if e.stream_id == lead_stream(lead_id)]
    assert reaction.causation_id == cause.event_id
    assert reaction.correlation_id == cause.correlation_id
    assert reaction.event_id == caused_event_id(cause.event_id, "echo:#:1")
    assert runner.stats.state == "stopped"


async def test_a_redelivered_event_appends_nothing_new(
    pg_store: PostgresEventStore, nc: NATS, settings: Settings
) -> None:
    actor = Echo(fail_times=1)  # emits, then fails: the event comes back and is handled again
    async with relaying(pg_store, nc, settings) as tg:
        runner = await start(tg, actor, pg_store, nc, settings)
        lead_id, _ = await ingest(pg_store)
        await until(runner, lambda s: s.handled == 1)
        await runner.stop()
    assert len(actor.seen) == 2 and actor.seen[0].event_id == actor.seen[1].event_id
    assert (runner.stats.failed, runner.stats.redelivered, runner.stats.parked) == (1, 1, 0)
    reactions = [e for e in await events_of(pg_store, "LeadStatusChanged") if e.stream_id == lead_stream(lead_id)]
    assert len(reactions) == 1


async def test_a_poison_event_is_parked_and_the_actor_moves_on(
    pg_store: PostgresEventStore, nc: NATS, settings: Settings
) -> None:
    actor = Echo(fail_always_for="poison")
    async with relaying(pg_store, nc, settings) as tg:
        runner = await start(tg, actor, pg_store, nc, settings)
        _, poison_position = await ingest(pg_store, "poison")
        await ingest(pg_store, "fine")
        (parked,) = await wait_for_events(pg_store, 1, "EventParked")
        await until(runner, lambda s: s.handled == 1)
        await runner.stop()
    event = parked.event
    assert isinstance(event, EventParked)
    assert parked.stream_id == "parked-echo"
    assert (event.actor, event.position, event.attempts, event.event_type) == (
        "echo",
        poison_position,
        3,
        "LeadIngested",
    )
    assert event.reason == "RuntimeError: cannot handle posting poison"
    assert parked.causation_id == event.parked_event_id and event.account_id == ACCOUNT
    assert (runner.stats.parked, runner.stats.failed, runner.stats.handled) == (1, 3, 1)
    assert [e.event.external_id for e in actor.seen].count("poison") == 3  # type: ignore[attr-defined]


async def test_inputs_that_cannot_be_read_are_parked_at_once(
    pg_store: PostgresEventStore, nc: NATS, settings: Settings
) -> None:
    js = nc.jetstream()
    await ensure_stream(js, settings)
    subject = f"{settings.subject_prefix}.events._.lead.LeadIngested"
    newer = Envelope(
        event_id=uuid.uuid4(),
        stream_id="lead-x",
        version=1,
        position=1,
        type="LeadIngestedV9",
        account_id=None,
        correlation_id=uuid.uuid4(),
        causation_id=None,
        recorded_at=datetime.now(UTC),
        data=b'{"type": "LeadIngestedV9", "hologram": true}',  # type: ignore[arg-type]
    )
    await js.publish(subject, envelope_encoder.encode(newer), headers={HEADER_STREAM: "lead-x"})
    garbage_id = str(uuid.uuid4())
    await js.publish(subject, b"\x00not json", headers={"Nats-Msg-Id": garbage_id, HEADER_STREAM: "lead-y"})
    actor = Echo()
    async with anyio.create_task_group() as tg:
        runner = await start(tg, actor, pg_store, nc, settings)
        parked = await wait_for_events(pg_store, 2, "EventParked")
        await runner.stop()
        tg.cancel_scope.cancel()
    reasons = {p.event.stream_id: p.event.reason for p in parked}  # type: ignore[attr-defined]
    assert reasons["lead-x"].startswith("cannot decode:") and "LeadIngestedV9" in reasons["lead-x"]
    assert reasons["lead-y"].startswith("not a Touchline event envelope")
    by_stream = {p.event.stream_id: p.event for p in parked}  # type: ignore[attr-defined]
    garbage = by_stream["lead-y"]
    assert isinstance(garbage, EventParked) and garbage.parked_event_id == uuid.UUID(garbage_id)
    assert actor.seen == [] and runner.stats.parked == 2


async def test_stats_show_the_consumer_lag(pg_store: PostgresEventStore, nc: NATS, settings: Settings) -> None:
    actor = Echo()
    async with relaying(pg_store, nc, settings) as tg:
        runner = ActorRunner(actor, store=pg_store, nc=nc, settings=settings, consumer=FAST)
        await runner.ensure_consumer()
        last = 0
        for i in range(5):
            _, last = await ingest(pg_store, str(i))
        with anyio.fail_after(10):
            while (await runner.refresh_stats()).lag != 5:  # noqa: ASYNC110 - asks the server: nothing to wait on
                await anyio.sleep(0.05)
        await tg.start(runner.run)
        await until(runner, lambda s: s.handled == 5)
        stats = await runner.refresh_stats()
        await runner.stop()
    assert (stats.lag, stats.handled, stats.in_flight, stats.failed) == (0, 5, 0, 0)
    assert last > 0


async def test_graceful_stop_lets_in_flight_work_finish_and_acks_it(
    pg_store: PostgresEventStore, nc: NATS, settings: Settings
) -> None:
    actor = Echo()
    actor.gate = anyio.Event()
    async with relaying(pg_store, nc, settings) as tg:
        runner = await start(tg, actor, pg_store, nc, settings)
        await ingest(pg_store)
        await actor.entered.wait()
        assert runner.stats.in_flight == 1
        async with anyio.create_task_group() as stopping:
            stopping.start_soon(runner.stop, 10.0)
            await anyio.lowlevel.checkpoint()
            assert runner.stats.state == "stopping"
            actor.gate.set()
        info = await nc.jetstream().consumer_info(settings.stream_name, "echo")
    assert runner.stats.handled == 1 and runner.stats.state == "stopped"
    assert (info.num_ack_pending, info.num_redelivered, info.num_pending) == (0, 0, 0)


async def test_a_forced_stop_hands_the_work_back_at_once(
    pg_store: PostgresEventStore, nc: NATS, settings: Settings
) -> None:
    stuck = Echo()
    stuck.gate = anyio.Event()  # never set
    slow_redelivery = ConsumerSettings(ack_wait_s=60.0, fetch_timeout_s=0.2)
    async with relaying(pg_store, nc, settings) as tg:
        first = await start(tg, stuck, pg_store, nc, settings, consumer=slow_redelivery)
        await ingest(pg_store)
        await stuck.entered.wait()
        await first.stop(grace=0.1)
        # Handed back (nak), not left to time out after 60 s: another process takes it now.
        other = Echo()
        second = await start(tg, other, pg_store, nc, settings, consumer=slow_redelivery)
        await until(second, lambda s: s.handled == 1)
        await second.stop()
    assert first.stats.handled == 0 and second.stats.redelivered == 1


def test_actor_declarations_are_checked(settings: Settings) -> None:
    class Nameless(Echo):
        name = "Bad Name"

    class Deaf(Echo):
        name = "deaf"
        handles = ()

    with pytest.raises(ConfigError, match="lower-case letters"):
        check_actor(Nameless)
    with pytest.raises(ConfigError, match="handles nothing"):
        check_actor(Deaf)
    assert consumer_filters(settings, Echo) == [f"{settings.subject_prefix}.events.*.*.LeadIngested"]


async def test_a_reaction_without_a_cause_gets_fresh_ids(pg_store: PostgresEventStore, settings: Settings) -> None:

    ctx = ActorContext(name="echo", store=pg_store, clock=SystemClock(), settings=settings, log=structlog.get_logger())
    lead_id = uuid.uuid4()
    status = LeadStatusChanged(lead_id=lead_id, account_id=ACCOUNT, status="new")
    first = await Reaction(ctx, None).emit(lead_stream(lead_id), [status])
    second = await Reaction(ctx, None).emit(lead_stream(lead_id), [status])
    assert (first.duplicate, second.duplicate, second.last_version) == (False, False, 2)


async def test_the_deployments_ack_wait_reaches_the_shared_consumer_even_one_made_before(
    pg_store: PostgresEventStore, nc: NATS, settings: Settings
) -> None:
    actor = Echo()
    first = ActorRunner(actor, store=pg_store, nc=nc, settings=settings)
    await first.ensure_consumer()
    js = nc.jetstream()
    info = await js.consumer_info(settings.stream_name, actor.name)
    assert info.config.ack_wait == 30.0  # the actor's own
    shorter = msgspec.structs.replace(settings, ack_wait_s=7.5)  # TOUCHLINE_ACK_WAIT_S=7.5 on a redeploy
    second = ActorRunner(actor, store=pg_store, nc=nc, settings=shorter)
    assert second.config.ack_wait_s == 7.5
    await second.ensure_consumer()
    info = await js.consumer_info(settings.stream_name, actor.name)
    assert info.config.ack_wait == 7.5
    # A test's (or a bench's) explicit consumer settings still win.
    assert ActorRunner(actor, store=pg_store, nc=nc, settings=shorter, consumer=FAST).config.ack_wait_s == 5.0
