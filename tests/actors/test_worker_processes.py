"""Real processes: a kill between append and ack appends nothing twice; three processes share the work."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import anyio
from nats.aio.client import Client as NATS

from events.catalog import LeadIngested, lead_stream
from events.postgres import PostgresEventStore
from events.settings import Settings
from tests.actors.support import events_of, relaying, wait_for_events

ACCOUNT = uuid.UUID("00000000-0000-4000-8000-0000000000d3")


def worker(settings: Settings, *extra: str) -> subprocess.Popen[str]:
    proc = subprocess.Popen(
        [
            sys.executable, "-m", "tests.actors.actor_worker",
            "--database-url", settings.database_url or "", "--nats-url", settings.nats_url or "",
            "--prefix", settings.subject_prefix, "--stream", settings.stream_name, *extra,
        ],
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "TOUCHLINE_LOG_LEVEL": "warning"},
    )  # fmt: skip
    assert proc.stdout is not None
    line = proc.stdout.readline()
    assert line.strip() == "ready", f"worker did not start: {line!r} (exit {proc.poll()})"
    return proc


def stop(proc: subprocess.Popen[str]) -> dict[str, Any]:
    proc.send_signal(signal.SIGTERM)
    out, _ = proc.communicate(timeout=30)
    assert proc.returncode == 0, out
    stats: dict[str, Any] = json.loads(out.strip().splitlines()[-1])
    return stats


async def ingest(store: PostgresEventStore, n: int) -> list[uuid.UUID]:
    ids = [uuid.uuid4() for _ in range(n)]
    for i, lead_id in enumerate(ids):
        await store.append(
            lead_stream(lead_id),
            [LeadIngested(lead_id=lead_id, account_id=ACCOUNT, source="craigslist", external_id=str(i))],
        )
    return ids


async def test_a_worker_killed_between_append_and_ack_appends_nothing_twice(
    pg_store: PostgresEventStore, nc: NATS, settings: Settings, tmp_path: Path
) -> None:
    flag = tmp_path / "crashed"
    async with relaying(pg_store, nc, settings):
        doomed = await anyio.to_thread.run_sync(
            lambda: worker(settings, "--ack-wait", "2", "--crash-after-append", str(flag))
        )
        (lead_id,) = await ingest(pg_store, 1)
        assert await anyio.to_thread.run_sync(lambda: doomed.wait(timeout=20)) == -signal.SIGKILL
        assert doomed.stdout is not None
        doomed.stdout.close()
        # It appended its reaction and died before acknowledging the input.
        (reaction,) = await wait_for_events(pg_store, 1, "LeadStatusChanged")
        assert flag.exists()
        survivor = await anyio.to_thread.run_sync(lambda: worker(settings, "--ack-wait", "2"))
        try:
            with anyio.fail_after(30):
                while (await nc.jetstream().consumer_info(settings.stream_name, "contact")).num_ack_pending:  # noqa: ASYNC110
                    await anyio.sleep(0.1)  # the redelivery comes after ack_wait, on the server's clock
        finally:
            stats = await anyio.to_thread.run_sync(lambda: stop(survivor))
    assert stats["handled"] == 1 and stats["redelivered"] == 1  # it got the event again and handled it
    reactions = await events_of(pg_store, "LeadStatusChanged")
    assert [(r.event_id, r.stream_id) for r in reactions] == [(reaction.event_id, lead_stream(lead_id))]


async def test_three_processes_share_one_consumer_and_handle_each_event_once(
    pg_store: PostgresEventStore, nc: NATS, settings: Settings
) -> None:
    async with relaying(pg_store, nc, settings):
        procs = [await anyio.to_thread.run_sync(lambda: worker(settings)) for _ in range(3)]
        try:
            leads = await ingest(pg_store, 300)
            reactions = await wait_for_events(pg_store, 300, "LeadStatusChanged")
        finally:
            stats = [await anyio.to_thread.run_sync(lambda p=p: stop(p)) for p in procs]  # type: ignore[misc]
    assert sorted(r.stream_id for r in reactions) == sorted(lead_stream(i) for i in leads)
    assert sum(s["handled"] for s in stats) == 300
    assert all(s["handled"] > 0 for s in stats), stats  # the work was shared
    by_process = {r.event.reason for r in reactions}  # type: ignore[attr-defined]
    assert by_process == {str(s["pid"]) for s in stats}
