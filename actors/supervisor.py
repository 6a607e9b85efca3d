"""Supervision: run children in one task group, restart a crashed one with backoff, report loops."""

from __future__ import annotations

import random
import time
import traceback
from collections import deque
from collections.abc import Callable
from typing import Protocol

import anyio
import msgspec
import structlog
from anyio.abc import TaskStatus

log = structlog.get_logger("touchline.supervisor")


class Supervised(Protocol):
    name: str

    async def run(self, *, task_status: TaskStatus[None] = ...) -> None: ...

    async def stop(self, grace: float = ...) -> None: ...


class ChildStats(msgspec.Struct, kw_only=True):
    name: str
    state: str = "new"  # starting, running, crashed (waiting to restart), stopped
    restarts: int = 0
    crashes: int = 0
    crash_looping: bool = False
    last_error: str | None = None


def _leaf(exc: BaseException) -> BaseException:
    while isinstance(exc, BaseExceptionGroup) and len(exc.exceptions) == 1:
        exc = exc.exceptions[0]
    return exc


class Supervisor:
    """Keeps every child running: a crash restarts that child alone, after a jittered backoff.

    Backoff doubles with each consecutive crash (from `backoff_base_s` to `backoff_max_s`) and
    starts over once a child has run `healthy_after_s`. `crash_loop_after` crashes within
    `crash_window_s` mark the child crash-looping: logged as an error and shown in its stats,
    while the restarts go on at the longest backoff.
    """

    def __init__(
        self,
        *,
        backoff_base_s: float = 0.5,
        backoff_max_s: float = 30.0,
        healthy_after_s: float = 60.0,
        crash_window_s: float = 120.0,
        crash_loop_after: int = 3,
    ) -> None:
        self.backoff_base_s = backoff_base_s
        self.backoff_max_s = backoff_max_s
        self.healthy_after_s = healthy_after_s
        self.crash_window_s = crash_window_s
        self.crash_loop_after = crash_loop_after
        self.stats: dict[str, ChildStats] = {}
        self._factories: dict[str, Callable[[], Supervised]] = {}
        self._current: dict[str, Supervised] = {}
        self._stopping = anyio.Event()
        self._scope: anyio.CancelScope | None = None

    def add(self, name: str, factory: Callable[[], Supervised]) -> None:
        """`factory` makes a fresh child for each (re)start: no state leaks from a crashed run."""
        if name in self._factories:
            raise ValueError(f"a child named {name!r} is already supervised")
        self._factories[name] = factory
        self.stats[name] = ChildStats(name=name)

    def child(self, name: str) -> Supervised | None:
        return self._current.get(name)

    async def run(self, *, task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
        """Run every child until `stop`; ready once each has started (or crashed trying)."""
        with anyio.CancelScope() as self._scope:
            async with anyio.create_task_group() as tg:
                # Started side by side: one child's slow start (a projection rebuilding) does not
                # hold back the others.
                async with anyio.create_task_group() as starting:
                    for name, factory in self._factories.items():
                        starting.start_soon(tg.start, self._supervise, name, factory)
                task_status.started()

    async def stop(self, grace: float = 10.0) -> None:
        """Stop every child (each gets `grace` seconds to finish its work), then end `run`."""
        self._stopping.set()
        with anyio.move_on_after(grace + 1):
            async with anyio.create_task_group() as tg:
                for child in list(self._current.values()):
                    tg.start_soon(child.stop, grace)
        if self._scope is not None:
            self._scope.cancel()

    async def _supervise(
        self, name: str, factory: Callable[[], Supervised], *, task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED
    ) -> None:
        stats = self.stats[name]
        crashes: deque[float] = deque()
        consecutive = 0
        reported_started = False
        while not self._stopping.is_set():
            stats.state = "starting"
            began = time.monotonic()
            child = self._current[name] = factory()
            crashed: BaseException | None = None
            try:
                async with anyio.create_task_group() as tg:
                    await tg.start(child.run)
                    stats.state = "running"
                    if not reported_started:
                        task_status.started()
                        reported_started = True
            except Exception as caught:  # a crash: restart this child, never the others
                crashed = _leaf(caught)
            if crashed is not None:
                exc = crashed
                now = time.monotonic()
                consecutive = 1 if now - began >= self.healthy_after_s else consecutive + 1
                crashes.append(now)
                while crashes and now - crashes[0] > self.crash_window_s:
                    crashes.popleft()
                stats.crashes += 1
                stats.state = "crashed"
                stats.last_error = f"{type(exc).__name__}: {exc}"
                delay = min(self.backoff_max_s, self.backoff_base_s * 2 ** (consecutive - 1))
                delay *= 0.5 + random.random() / 2
                log.error(
                    "actor_crashed",
                    child=name,
                    error=stats.last_error,
                    restart_in_s=round(delay, 2),
                    crashes=stats.crashes,
                    traceback="".join(traceback.format_exception(exc)[-6:]),
                )
                looping = len(crashes) >= self.crash_loop_after
                if looping and not stats.crash_looping:
                    log.error(
                        "actor_crash_loop",
                        child=name,
                        crashes_in_window=len(crashes),
                        window_s=self.crash_window_s,
                        last_error=stats.last_error,
                    )
                stats.crash_looping = looping
                if not reported_started:
                    task_status.started()
                    reported_started = True
                with anyio.move_on_after(delay):
                    await self._stopping.wait()
                if not self._stopping.is_set():
                    stats.restarts += 1
                continue
            if not self._stopping.is_set():
                # A child that returns on its own was not asked to: run it again.
                log.warning("actor_exited", child=name)
                with anyio.move_on_after(self.backoff_base_s):
                    await self._stopping.wait()
                stats.restarts += 1
            else:
                stats.crash_looping = False
        stats.state = "stopped"
