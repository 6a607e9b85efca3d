"""The chaos drill, short: `touchline up` processes SIGKILLed at random, and the servers failing.

Each test prints what it measured (run with `-s` to see it). The long form is `bench/chaos.py`.
"""

from __future__ import annotations

import contextlib
import shutil
import time
import uuid
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import anyio
import msgspec

from bench.chaos import Feeder, Fleet, RecoveryWatch, Tally, fresh_database, open_city, run_chaos, seed, tally
from events.postgres import open_postgres_store
from events.settings import Settings
from gateways.embedded import NatsServer, free_port, start_postgres, stop_postgres


async def test_sigkill_every_few_seconds_loses_and_duplicates_nothing(settings: Settings, tmp_path: Path) -> None:
    result = await run_chaos(
        settings, tmp_path, seconds=32, processes=3, kill_every_s=4, drain_timeout_s=70, seed_rng=7
    )
    print("chaos:", msgspec.json.encode(result).decode())
    assert result.kills >= 4 and result.leads > 100
    assert result.lost == 0, result
    assert result.duplicates == 0, result
    assert result.projection_mismatches == [], result
    assert result.hash_chain_ok
    assert result.touches == result.leads


# --- infrastructure faults -----------------------------------------------------------------


class Servers:
    """A PostgreSQL and a NATS of this test's own, each restartable in place."""

    def __init__(self, root: Path) -> None:
        self.pgdata = root / "pg"
        self.pg: Any = None
        self.dsn = ""
        self.nats = NatsServer(root / "nats", port=free_port())

    def start(self) -> None:
        self.pg, self.dsn = start_postgres(self.pgdata)
        self.nats.start()

    def stop_nats(self, *, wipe: bool = False) -> None:
        self.nats.stop()
        if wipe:  # its JetStream store gone: streams, consumers, messages
            shutil.rmtree(self.nats.store_dir)

    def stop_pg(self) -> None:
        stop_postgres(self.pg)

    def start_pg(self) -> None:
        self.pg, dsn = start_postgres(self.pgdata)
        assert dsn == self.dsn  # same data dir, same socket: the processes' URL still holds

    def stop(self) -> None:
        with contextlib.suppress(Exception):
            self.nats.stop()
        with contextlib.suppress(Exception):
            stop_postgres(self.pg)


class FaultReport(msgspec.Struct, kw_only=True):
    fault: str
    outage_s: float
    recovery_s: float | None  # from the servers' return until every lead fed before it had its touch
    drain_s: float
    leads: int
    lost: int
    duplicates: int
    feed_errors: int
    crashes: int
    hash_chain_ok: bool
    crash_reasons: list[str] = []


@contextlib.asynccontextmanager
async def own_servers(tmp_path: Path) -> AsyncIterator[tuple[Servers, Settings]]:
    servers = Servers(tmp_path / "servers")
    await anyio.to_thread.run_sync(servers.start)
    try:
        async with fresh_database(servers.dsn) as dsn:
            tag = uuid.uuid4().hex[:8]
            yield (
                servers,
                Settings(
                    database_url=dsn, nats_url=servers.nats.url, subject_prefix=f"f{tag}", stream_name=f"F{tag.upper()}"
                ),
            )
    finally:
        await anyio.to_thread.run_sync(servers.stop)


async def fault_drill(
    tmp_path: Path,
    name: str,
    stop: Callable[[Servers], None],
    start: Callable[[Servers], None],
    *,
    before_s: float = 4.0,
    outage_s: float = 3.0,
    after_s: float = 4.0,
    settle_first: bool = False,
    drain_s: float = 75.0,
) -> FaultReport:
    """Two worker processes and a relay; leads fed before, during and after the fault."""
    city, _ = open_city()
    async with own_servers(tmp_path) as (servers, settings):
        assert settings.database_url is not None
        fleet = Fleet(settings, tmp_path / "procs", 2, relays=1)
        lock = anyio.Lock()
        async with open_postgres_store(settings.database_url) as store:
            await seed(store)
            await anyio.to_thread.run_sync(fleet.start_all)
            feeder = Feeder(store, city, rate=5.0)
            watch = RecoveryWatch(store)

            async def revive_forever() -> None:
                while True:
                    await anyio.sleep(0.5)
                    async with lock:
                        await anyio.to_thread.run_sync(fleet.revive)

            try:
                async with anyio.create_task_group() as tg:
                    tg.start_soon(feeder.run)
                    tg.start_soon(revive_forever)
                    await anyio.sleep(before_s)
                    if settle_first:  # everything fed so far has its touch before the fault
                        with anyio.fail_after(60):
                            while (await tally(store)).pending:  # noqa: ASYNC110 - polls the log
                                await anyio.sleep(0.2)
                    await anyio.to_thread.run_sync(stop, servers)
                    await anyio.sleep(outage_s)
                    await anyio.to_thread.run_sync(start, servers)
                    watch.mark()
                    tg.start_soon(watch.run)
                    await anyio.sleep(after_s)
                    feeder.stop()
                    began = time.monotonic()
                    result = Tally()
                    with anyio.move_on_after(drain_s):
                        while (result := await tally(store)).pending or watch.last() is None:  # noqa: ASYNC110
                            await anyio.sleep(0.25)
                    drained = time.monotonic() - began
                    async with lock:
                        tg.cancel_scope.cancel()
            finally:
                await anyio.to_thread.run_sync(fleet.stop_all)
            verified = await store.verify()
            with contextlib.suppress(Exception):
                result = await tally(store)
    report = FaultReport(
        fault=name,
        outage_s=outage_s,
        recovery_s=watch.last(),
        drain_s=round(drained, 2),
        leads=result.leads,
        lost=result.lost,
        duplicates=result.duplicates,
        feed_errors=feeder.errors,
        crashes=fleet.crashes,
        crash_reasons=fleet.crash_reasons() if fleet.crashes else [],
        hash_chain_ok=verified.ok,
    )
    print(f"{name}:", msgspec.json.encode(report).decode())
    return report


def _ok(report: FaultReport) -> None:
    assert report.leads >= 40, report
    assert report.lost == 0, report
    assert report.duplicates == 0, report
    assert report.hash_chain_ok, report
    assert report.recovery_s is not None, report


async def test_nats_restarted_mid_run(tmp_path: Path) -> None:
    report = await fault_drill(
        tmp_path, "nats restarted", lambda s: s.stop_nats(), lambda s: s.nats.start(), outage_s=3.0
    )
    _ok(report)


async def test_postgres_restarted_mid_run(tmp_path: Path) -> None:
    report = await fault_drill(tmp_path, "postgres restarted", Servers.stop_pg, Servers.start_pg, outage_s=3.0)
    _ok(report)


async def test_nats_store_wiped_while_down(tmp_path: Path) -> None:
    # The relay resumes from the later of its checkpoint and the (now empty) stream: its checkpoint.
    # Events it had published before are not sent again (everything was handled before the fault
    # here); the events appended during and after the outage go to the recreated stream.
    report = await fault_drill(
        tmp_path,
        "nats store wiped",
        lambda s: s.stop_nats(wipe=True),
        lambda s: s.nats.start(),
        outage_s=2.0,
        settle_first=True,
        drain_s=20.0,  # well inside the 60 s after which `touchline up` dies on its first stats report
    )
    assert report.crashes == 0, report  # no process restart hid the finding
    _ok(report)
