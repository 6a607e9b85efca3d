"""Durable timers: rebuilt from the log on start, fired once across every process."""

from __future__ import annotations

import heapq
from collections.abc import Callable
from datetime import datetime
from uuid import UUID

import anyio
import structlog
from anyio.abc import TaskStatus

from actors.clock import Clock
from events.catalog import TimerCancelled, TimerFired, TimerScheduled, timer_category, timer_stream
from events.envelope import Envelope
from events.errors import ConcurrencyError
from events.store import EventFilter, EventStore, NewEvent, caused_event_id

log = structlog.get_logger("touchline.timers")


class TimerService:
    """Keeps one actor's pending timers and fires each when due.

    The pending set is the log's `timer_<actor>-*` streams folded from position zero, then
    followed live. Firing appends TimerFired at version 2 of the timer's stream, so when several
    processes hold the same timers exactly one fire wins; the event then reaches the actor
    through its consumer like any other input.
    """

    def __init__(self, store: EventStore, actor: str, clock: Clock) -> None:
        self.store = store
        self.actor = actor
        self.clock = clock
        self.pending: dict[UUID, tuple[TimerScheduled, Envelope]] = {}
        self.fired = 0
        self._heap: list[tuple[float, UUID]] = []
        self._changed = anyio.Event()
        self._loaded = anyio.Event()
        self._progress = anyio.Event()

    async def run(self, *, task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
        async with anyio.create_task_group() as tg:
            tg.start_soon(self._follow)
            await self._loaded.wait()
            log.info("timers_loaded", actor=self.actor, pending=len(self.pending))
            task_status.started()
            await self._fire_due()

    async def _follow(self) -> None:
        wanted = EventFilter(
            types=frozenset({"TimerScheduled", "TimerFired", "TimerCancelled"}), category=timer_category(self.actor)
        )
        # Paced: timers need not hear of every commit the moment it lands, only soon.
        async for batch in self.store.follow(wanted, self._loaded, pace_s=0.02):
            for env in batch:
                self._apply(env)
            self._changed.set()
            self._moved()

    async def wait_until(self, condition: Callable[[TimerService], bool]) -> None:
        """Until `condition` holds (woken whenever timers arrive, fire or are cancelled)."""
        while not condition(self):
            await self._progress.wait()

    def _moved(self) -> None:
        self._progress.set()
        self._progress = anyio.Event()

    def _apply(self, env: Envelope) -> None:
        match env.event:
            case TimerScheduled() as scheduled:
                self.pending[scheduled.timer_id] = (scheduled, env)
                heapq.heappush(self._heap, (scheduled.due_at.timestamp(), scheduled.timer_id))
            case TimerFired(timer_id=timer_id) | TimerCancelled(timer_id=timer_id):
                self.pending.pop(timer_id, None)

    async def _fire_due(self) -> None:
        while True:
            # Drop heap entries of timers that fired or were cancelled meanwhile.
            while self._heap and self._heap[0][1] not in self.pending:
                heapq.heappop(self._heap)
            changed = self._changed = anyio.Event()
            if not self._heap:
                await changed.wait()
                continue
            timer_id = self._heap[0][1]
            scheduled, _ = self.pending[timer_id]
            if scheduled.due_at > self.clock.now():
                await self._wait(scheduled.due_at, changed)
                continue
            heapq.heappop(self._heap)
            await self._fire(timer_id)

    async def _wait(self, due_at: datetime, changed: anyio.Event) -> None:
        """Until the earliest timer is due, or the pending set changed (an earlier one may have come)."""
        async with anyio.create_task_group() as race:

            async def wait_due() -> None:
                await self.clock.sleep_until(due_at)
                race.cancel_scope.cancel()

            async def wait_changed() -> None:
                await changed.wait()
                race.cancel_scope.cancel()

            race.start_soon(wait_due)
            race.start_soon(wait_changed)

    async def _fire(self, timer_id: UUID) -> None:
        entry = self.pending.pop(timer_id, None)
        if entry is None:
            return
        scheduled, env = entry
        fired = TimerFired(
            timer_id=timer_id,
            actor=self.actor,
            key=scheduled.key,
            due_at=scheduled.due_at,
            fired_at=self.clock.now(),
            account_id=scheduled.account_id,
            data=scheduled.data,
        )
        try:
            result = await self.store.append(
                timer_stream(self.actor, timer_id),
                [NewEvent(event=fired, event_id=caused_event_id(env.event_id, "fired"))],
                expected_version=1,
                correlation_id=env.correlation_id,
                causation_id=env.event_id,
            )
        except ConcurrencyError:
            return  # cancelled, or fired by another process
        if result.duplicate:
            return  # another process fired it a moment before (the same deterministic id)
        self.fired += 1
        self._moved()
        log.info("timer_fired", actor=self.actor, key=scheduled.key, due_at=scheduled.due_at.isoformat())
