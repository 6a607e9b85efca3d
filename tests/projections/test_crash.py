"""Crash, then restart: read models after a kill -9 of `touchline up` equal a fresh rebuild."""

from __future__ import annotations

import itertools
import os
import signal
import subprocess
import sys
from pathlib import Path

import anyio

from events.postgres import open_postgres_store
from events.settings import Settings
from projections.bench import workload
from projections.runner import all_views, projection_status, rebuild
from tests.projections.helpers import every_projection, snapshot


def _up(settings: Settings, tmp_path: Path) -> subprocess.Popen[bytes]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TOUCHLINE_")}
    env |= {
        "TOUCHLINE_DATABASE_URL": settings.database_url or "",
        "TOUCHLINE_NATS_URL": settings.nats_url or "",
        "TOUCHLINE_SUBJECT_PREFIX": settings.subject_prefix,
        "TOUCHLINE_STREAM_NAME": settings.stream_name,
    }
    return subprocess.Popen(
        [sys.executable, "-m", "gateways.cli", "up", "--role", "projections", "--data-dir", str(tmp_path / "data")],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


async def test_read_models_after_kill_9_equal_a_fresh_rebuild(settings: Settings, tmp_path: Path) -> None:
    assert settings.database_url is not None
    stories = workload(12_000, seed=11)
    async with open_postgres_store(settings.database_url) as store:
        for appends in stories:  # a log to catch up on
            await store.append_many(appends)
            if await store.head_position() >= 6000:
                break
        kills = 0
        for _ in range(3):
            proc = _up(settings, tmp_path)
            try:
                # Kill it while it works: catching up, and folding what keeps arriving meanwhile.
                with anyio.fail_after(60):
                    while True:
                        for appends in list(itertools.islice(stories, 5)):
                            await store.append_many(appends)
                        done = await store.pool.fetchval("select coalesce(sum(position), 0) from touchline.projections")
                        if done > 0:
                            break
                        await anyio.sleep(0.02)
            finally:
                proc.send_signal(signal.SIGKILL)
                proc.wait(timeout=10)
                kills += 1
        for appends in stories:  # the rest arrives while nothing runs
            await store.append_many(appends)
        proc = _up(settings, tmp_path)
        try:
            with anyio.fail_after(60):
                while True:
                    statuses = await projection_status(store, every_projection())
                    if all(s.state == "live" for s in statuses):
                        break
                    await anyio.sleep(0.1)
        finally:
            proc.send_signal(signal.SIGTERM)
            assert proc.wait(timeout=30) == 0
        projections = every_projection()
        recovered = await snapshot(store, projections)
        await rebuild(store, projections, all_views(projections))
        assert await snapshot(store, projections) == recovered
        assert kills == 3 and len(recovered["public.touch_runs"]) > 1000
