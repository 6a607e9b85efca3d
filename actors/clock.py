"""Clocks: the system clock, one shifted by an offset, and a fake one that tests move by hand."""

from __future__ import annotations

import heapq
import itertools
from datetime import UTC, datetime, timedelta
from typing import Protocol

import anyio


class Clock(Protocol):
    def now(self) -> datetime:
        """The current time, timezone-aware (UTC)."""
        ...

    async def sleep_until(self, when: datetime) -> None:
        """Return once `now() >= when`."""
        ...


class SystemClock:
    def now(self) -> datetime:
        return datetime.now(UTC)

    async def sleep_until(self, when: datetime) -> None:
        # Sleep in slices: wall-clock time can jump (NTP), a monotonic sleep alone would not notice.
        while (left := (when - self.now()).total_seconds()) > 0:  # noqa: ASYNC110 - waiting on time itself
            await anyio.sleep(min(left, 30.0))


class OffsetClock(SystemClock):
    """The system clock moved by a fixed offset: real time passes, at another hour of the day.

    The end-to-end benchmark runs at noon where its leads are, whatever the hour here, so send
    windows never hold its touches; intervals measured on it are real ones.
    """

    def __init__(self, offset: timedelta) -> None:
        self.offset = offset

    def now(self) -> datetime:
        return datetime.now(UTC) + self.offset


class FakeClock:
    """Time stands still until `advance` or `set` moves it; sleepers due by then wake up."""

    def __init__(self, start: datetime | None = None) -> None:
        self._now = start or datetime(2026, 1, 1, tzinfo=UTC)
        self._sleepers: list[tuple[datetime, int, anyio.Event]] = []
        self._order = itertools.count()

    def now(self) -> datetime:
        return self._now

    async def sleep_until(self, when: datetime) -> None:
        if when <= self._now:
            await anyio.lowlevel.checkpoint()
            return
        woken = anyio.Event()
        entry = (when, next(self._order), woken)
        heapq.heappush(self._sleepers, entry)
        try:
            await woken.wait()
        finally:
            if not woken.is_set():  # cancelled: no longer a sleeper
                self._sleepers.remove(entry)
                heapq.heapify(self._sleepers)

    def advance(self, delta: timedelta | float) -> None:
        self.set(self._now + (delta if isinstance(delta, timedelta) else timedelta(seconds=delta)))

    def set(self, when: datetime) -> None:
        if when < self._now:
            raise ValueError(f"a clock does not go back: {when.isoformat()} is before {self._now.isoformat()}")
        self._now = when
        while self._sleepers and self._sleepers[0][0] <= when:
            heapq.heappop(self._sleepers)[2].set()

    @property
    def sleepers(self) -> int:
        """How many tasks wait on this clock (tests wait for this before advancing)."""
        return len(self._sleepers)
