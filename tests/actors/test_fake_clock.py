"""The fake clock: time moves only when a test moves it, and sleepers wake exactly then."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import anyio
import pytest

from actors.clock import FakeClock, SystemClock

START = datetime(2026, 11, 24, 14, 0, tzinfo=UTC)


async def test_sleepers_wake_when_the_clock_passes_their_time() -> None:
    clock = FakeClock(START)
    woke: list[str] = []

    async def sleeper(name: str, minutes: int) -> None:
        await clock.sleep_until(START + timedelta(minutes=minutes))
        woke.append(name)

    async with anyio.create_task_group() as tg:
        tg.start_soon(sleeper, "14:05", 5)
        tg.start_soon(sleeper, "14:10", 10)
        await anyio.wait_all_tasks_blocked()
        assert clock.sleepers == 2
        clock.advance(timedelta(minutes=4, seconds=59))
        await anyio.wait_all_tasks_blocked()
        assert woke == []
        clock.advance(1)
        await anyio.wait_all_tasks_blocked()
        assert woke == ["14:05"]
        clock.set(START + timedelta(hours=1))
    assert woke == ["14:05", "14:10"] and clock.sleepers == 0


async def test_a_due_time_already_past_returns_at_once() -> None:
    clock = FakeClock(START)
    with anyio.fail_after(1):
        await clock.sleep_until(START - timedelta(seconds=1))


async def test_a_cancelled_sleeper_is_forgotten() -> None:
    clock = FakeClock(START)
    with anyio.move_on_after(0.01):
        await clock.sleep_until(START + timedelta(days=1))
    assert clock.sleepers == 0


def test_a_clock_does_not_go_back() -> None:
    clock = FakeClock(START)
    with pytest.raises(ValueError, match="does not go back"):
        clock.set(START - timedelta(seconds=1))


async def test_the_system_clock_is_utc_and_sleeps() -> None:
    clock = SystemClock()
    now = clock.now()
    assert now.tzinfo is UTC
    with anyio.fail_after(2):
        await clock.sleep_until(now + timedelta(milliseconds=20))
    assert clock.now() >= now + timedelta(milliseconds=20)
