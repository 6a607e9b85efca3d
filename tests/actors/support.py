"""Shared by the actor tests: a running relay, runners, test actors that report what they saw."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable
from typing import ClassVar

import anyio
from anyio.abc import TaskGroup
from nats.aio.client import Client as NATS

from actors.clock import Clock
from actors.runtime import Actor, ActorRunner, ActorStats, ConsumerSettings, Reaction
from events.catalog import Event, LeadIngested, LeadStatusChanged
from events.envelope import Envelope
from events.postgres import PostgresEventStore
from events.relay import OutboxRelay
from events.settings import Settings
from events.store import EventFilter

FAST = ConsumerSettings(ack_wait_s=5.0, retry_base_s=0.01, retry_max_s=0.05, fetch_timeout_s=0.2, stats_interval_s=0.2)


class Watched:
    """Something tests wait on without sleeping: every change wakes the waiters."""

    def __init__(self) -> None:
        self._changed = anyio.Event()

    def changed(self) -> None:
        self._changed.set()
        self._changed = anyio.Event()

    async def until(self, condition: Callable[[], bool], *, within: float = 15.0) -> None:
        with anyio.fail_after(within):
            while not condition():
                await self._changed.wait()


class Echo(Actor, Watched):
    """Answers each lead ingested with one status change; can be told to fail or to wait."""

    name = "echo"
    handles: ClassVar[tuple[type[Event], ...]] = (LeadIngested,)
    max_attempts = 3

    def __init__(self, *, fail_times: int = 0, fail_always_for: str | None = None) -> None:
        Watched.__init__(self)
        self.seen: list[Envelope] = []
        self.fail_times = fail_times
        self.fail_always_for = fail_always_for
        self.gate: anyio.Event | None = None
        self.entered = anyio.Event()

    async def handle(self, event: Event, env: Envelope, reaction: Reaction) -> None:
        assert isinstance(event, LeadIngested)
        self.seen.append(env)
        self.changed()
        self.entered.set()
        await reaction.emit(
            env.stream_id, [LeadStatusChanged(lead_id=event.lead_id, account_id=event.account_id, status="contacted")]
        )
        if self.gate is not None:
            await self.gate.wait()
        if event.external_id == self.fail_always_for:
            raise RuntimeError(f"cannot handle posting {event.external_id}")
        if self.fail_times > 0:
            self.fail_times -= 1
            raise RuntimeError("provider timed out")


@contextlib.asynccontextmanager
async def relaying(store: PostgresEventStore, nc: NATS, settings: Settings) -> AsyncIterator[TaskGroup]:
    """The relay running (events reach JetStream only through it), and a task group for more."""
    async with anyio.create_task_group() as tg:
        await tg.start(OutboxRelay(store, nc, settings).run)
        yield tg
        tg.cancel_scope.cancel()


async def start(
    tg: TaskGroup,
    actor: Actor,
    store: PostgresEventStore,
    nc: NATS,
    settings: Settings,
    *,
    clock: Clock | None = None,
    consumer: ConsumerSettings = FAST,
) -> ActorRunner:
    runner = ActorRunner(actor, store=store, nc=nc, settings=settings, clock=clock, consumer=consumer)
    await tg.start(runner.run)
    return runner


async def until(runner: ActorRunner, condition: Callable[[ActorStats], bool], *, within: float = 15.0) -> None:
    with anyio.fail_after(within):
        await runner.wait_until(condition)


async def events_of(store: PostgresEventStore, *types: str) -> list[Envelope]:
    return [e async for batch in store.read_all(0, filter=EventFilter(types=frozenset(types))) for e in batch]


async def wait_for_events(store: PostgresEventStore, count: int, *types: str) -> list[Envelope]:
    """Until the log holds `count` events of `types` (woken by the log's own notifications)."""
    found: list[Envelope] = await events_of(store, *types)
    with anyio.fail_after(15):
        if len(found) >= count:
            return found
        async for batch in store.tail(found[-1].position if found else 0, filter=EventFilter(types=frozenset(types))):
            found += batch
            if len(found) >= count:
                return found
    raise AssertionError("unreachable")
