"""Supervision: a crashing child restarts with backoff while the others run; crash loops are reported."""

from __future__ import annotations

import anyio
import pytest
from anyio.abc import TaskStatus
from structlog.testing import capture_logs

from actors.supervisor import Supervisor


class Child:
    """Runs until stopped; crashes (at start, or later) the first `crashes` times it is made."""

    made = 0

    def __init__(self, name: str, board: dict[str, int], *, crashes: int = 0, at_start: bool = True) -> None:
        self.name = name
        self.board = board
        self.crashes = crashes
        self.at_start = at_start
        self.stopped = anyio.Event()
        board[f"{name}.made"] = board.get(f"{name}.made", 0) + 1

    async def run(self, *, task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
        life = self.board[f"{self.name}.made"]
        if life <= self.crashes and self.at_start:
            raise RuntimeError(f"{self.name} cannot start (life {life})")
        task_status.started()
        self.board[f"{self.name}.running"] = life
        if life <= self.crashes:
            raise ConnectionError(f"{self.name} lost its connection (life {life})")
        await self.stopped.wait()

    async def stop(self, grace: float = 10.0) -> None:
        self.stopped.set()


def fast(**kwargs: float) -> Supervisor:
    return Supervisor(backoff_base_s=0.01, backoff_max_s=0.05, **kwargs)  # type: ignore[arg-type]


async def test_a_crashing_child_restarts_while_its_sibling_keeps_running() -> None:
    board: dict[str, int] = {}
    supervisor = fast(crash_loop_after=10)
    supervisor.add("flaky", lambda: Child("flaky", board, crashes=2, at_start=False))
    supervisor.add("steady", lambda: Child("steady", board))
    with capture_logs() as logs:
        async with anyio.create_task_group() as tg:
            await tg.start(supervisor.run)
            with anyio.fail_after(5):
                while board.get("flaky.running") != 3:  # noqa: ASYNC110 - restarts go by the real clock
                    await anyio.sleep(0.01)
            await supervisor.stop(1.0)
    flaky, steady = supervisor.stats["flaky"], supervisor.stats["steady"]
    assert (flaky.crashes, flaky.restarts, flaky.crash_looping) == (2, 2, False)
    assert flaky.last_error == "ConnectionError: flaky lost its connection (life 2)"
    assert (steady.crashes, steady.restarts, board["steady.made"]) == (0, 0, 1)  # never disturbed
    assert flaky.state == steady.state == "stopped"
    crashed = [e for e in logs if e["event"] == "actor_crashed"]
    assert [e["child"] for e in crashed] == ["flaky", "flaky"] and all(e["log_level"] == "error" for e in crashed)


async def test_repeated_crashes_are_reported_as_a_crash_loop() -> None:
    board: dict[str, int] = {}
    supervisor = fast(crash_loop_after=3, crash_window_s=60)
    supervisor.add("broken", lambda: Child("broken", board, crashes=1000))
    supervisor.add("fine", lambda: Child("fine", board))
    with capture_logs() as logs:
        async with anyio.create_task_group() as tg:
            await tg.start(supervisor.run)  # ready although one child cannot start
            assert board["fine.running"] == 1
            with anyio.fail_after(5):
                while not supervisor.stats["broken"].crash_looping:  # noqa: ASYNC110 - real backoff
                    await anyio.sleep(0.01)
            await supervisor.stop(1.0)
    loops = [e for e in logs if e["event"] == "actor_crash_loop"]
    assert len(loops) == 1 and loops[0]["child"] == "broken" and loops[0]["crashes_in_window"] == 3
    assert "cannot start" in loops[0]["last_error"]
    assert supervisor.stats["broken"].crashes >= 3


async def test_stop_ends_every_child_and_the_supervisor() -> None:
    board: dict[str, int] = {}
    supervisor = fast()
    children: list[Child] = []

    def make(name: str) -> Child:
        child = Child(name, board)
        children.append(child)
        return child

    for name in ("a", "b", "c"):
        supervisor.add(name, lambda name=name: make(name))  # type: ignore[misc]
    with anyio.fail_after(5):
        async with anyio.create_task_group() as tg:
            await tg.start(supervisor.run)
            await supervisor.stop(1.0)
    assert all(c.stopped.is_set() for c in children)
    assert {s.state for s in supervisor.stats.values()} == {"stopped"}


def test_names_are_unique() -> None:
    supervisor = Supervisor()
    supervisor.add("a", lambda: Child("a", {}))
    with pytest.raises(ValueError, match="already supervised"):
        supervisor.add("a", lambda: Child("a", {}))
