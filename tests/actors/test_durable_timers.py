"""Durable timers: scheduled by a handler, fired on a fake clock, rebuilt from the log, fired once."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import ClassVar

import anyio
from nats.aio.client import Client as NATS

from actors.clock import FakeClock
from actors.runtime import Actor, Reaction
from actors.timers import TimerService
from events.catalog import (
    Event,
    LeadIngested,
    LeadStateChanged,
    LeadStatusChanged,
    TimerFired,
    lead_stream,
    timer_stream,
)
from events.envelope import Envelope
from events.postgres import PostgresEventStore
from events.settings import Settings
from tests.actors.support import events_of, relaying, start, until, wait_for_events

ACCOUNT = uuid.UUID("00000000-0000-4000-8000-0000000000d2")
START = datetime(2026, 11, 24, 14, 0, tzinfo=UTC)


class FollowUp(Actor):
    """Wakes five minutes after each lead arrives; a status change cancels the wake-up."""

    name = "follow_up"
    handles: ClassVar[tuple[type[Event], ...]] = (LeadIngested, LeadStatusChanged)
    timers = True

    def __init__(self) -> None:
        self.fired: list[TimerFired] = []
        self.timer_ids: dict[uuid.UUID, uuid.UUID] = {}

    async def handle(self, event: Event, env: Envelope, reaction: Reaction) -> None:
        match event:
            case LeadIngested(lead_id=lead_id):
                due = reaction.ctx.clock.now() + timedelta(minutes=5)
                self.timer_ids[lead_id] = await reaction.schedule(
                    f"lead:{lead_id}", due, account_id=ACCOUNT, data={"lead": str(lead_id)}
                )
            case LeadStatusChanged(lead_id=lead_id):
                await reaction.cancel_timer(self.timer_ids[lead_id], f"lead:{lead_id}", account_id=ACCOUNT)
            case TimerFired(data=data):
                self.fired.append(event)
                lead_id = uuid.UUID(data["lead"])
                await reaction.emit(
                    lead_stream(lead_id), [LeadStateChanged(lead_id=lead_id, account_id=ACCOUNT, lead_state="warm")]
                )


async def ingest(store: PostgresEventStore) -> uuid.UUID:
    lead_id = uuid.uuid4()
    await store.append(
        lead_stream(lead_id), [LeadIngested(lead_id=lead_id, account_id=ACCOUNT, source="craigslist", external_id="1")]
    )
    return lead_id


async def test_a_timer_fires_through_the_actor_when_the_clock_passes_it(
    pg_store: PostgresEventStore, nc: NATS, settings: Settings
) -> None:
    clock = FakeClock(START)
    actor = FollowUp()
    async with relaying(pg_store, nc, settings) as tg:
        runner = await start(tg, actor, pg_store, nc, settings, clock=clock)
        kept, cancelled = await ingest(pg_store), await ingest(pg_store)
        await until(runner, lambda s: s.handled == 2)
        await pg_store.append(
            lead_stream(cancelled), [LeadStatusChanged(lead_id=cancelled, account_id=ACCOUNT, status="replied")]
        )
        await until(runner, lambda s: s.handled == 3)
        await wait_for_events(pg_store, 1, "TimerCancelled")
        clock.advance(timedelta(minutes=4, seconds=59))
        await anyio.wait_all_tasks_blocked()
        assert actor.fired == []
        clock.advance(timedelta(seconds=1))
        await until(runner, lambda s: s.handled == 4)
        await runner.stop()
    (fired,) = actor.fired
    assert (
        fired.key == f"lead:{kept}" and fired.due_at == START + timedelta(minutes=5) and fired.fired_at == fired.due_at
    )
    states = await events_of(pg_store, "LeadStateChanged")
    assert [e.stream_id for e in states] == [lead_stream(kept)]
    assert states[0].causation_id is not None
    assert await pg_store.stream_version(timer_stream("follow_up", actor.timer_ids[cancelled])) == 2


async def test_pending_timers_are_rebuilt_from_the_log_on_start(
    pg_store: PostgresEventStore, nc: NATS, settings: Settings
) -> None:
    clock = FakeClock(START)
    async with relaying(pg_store, nc, settings) as tg:
        first = await start(tg, FollowUp(), pg_store, nc, settings, clock=clock)
        lead_id = await ingest(pg_store)
        await until(first, lambda s: s.handled == 1)
        await first.stop()
        # A new process: nothing in memory, the timer is in the log.
        actor = FollowUp()
        second = await start(tg, actor, pg_store, nc, settings, clock=clock)
        clock.advance(timedelta(minutes=10))
        await until(second, lambda s: s.handled == 1)
        await second.stop()
    assert [f.data["lead"] for f in actor.fired] == [str(lead_id)]


async def test_two_processes_holding_the_same_timers_fire_each_once(pg_store: PostgresEventStore) -> None:
    clock = FakeClock(START)
    timer_ids = []
    async with anyio.create_task_group() as tg:
        services = [TimerService(pg_store, "follow_up", clock) for _ in range(2)]
        for service in services:
            await tg.start(service.run)
        import structlog

        from actors.runtime import ActorContext

        ctx = ActorContext(
            name="follow_up", store=pg_store, clock=clock, settings=Settings(), log=structlog.get_logger()
        )
        for i in range(20):
            timer_ids.append(await Reaction(ctx, None).schedule(f"k{i}", START + timedelta(seconds=i + 1)))
        with anyio.fail_after(10):
            for service in services:
                await service.wait_until(lambda s: len(s.pending) == 20)
        clock.advance(timedelta(minutes=1))
        fired = await wait_for_events(pg_store, 20, "TimerFired")
        with anyio.fail_after(10):  # each also learns of the ones the other fired, from the log
            for service in services:
                await service.wait_until(lambda s: not s.pending)
        tg.cancel_scope.cancel()
    assert sorted(e.event.timer_id for e in fired) == sorted(timer_ids)  # type: ignore[attr-defined]
    assert sum(s.fired for s in services) == 20 and all(not s.pending for s in services)
