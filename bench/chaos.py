"""Chaos drill: N `touchline up` processes on one PostgreSQL and one NATS, SIGKILLed at random.

    .venv/bin/python bench/chaos.py [--seconds S] [--processes N] [--leads N] [--json] [--nats-cluster]

Leads are fed continuously (LeadIngested, distinct phones, in a city whose SMS send window is
open now) into one account with an active one-step SMS campaign (sandbox providers). Every few
seconds a random process is killed with SIGKILL and started again. Then the feed stops, every
process is restarted cleanly, the pipeline drains, and the figures are computed from the log:

- `leads`, `touches` (step-1 touch runs), `lost` (leads without their first touch dispatched,
  or scheduled for later when the send window is closed), `duplicates` (a touch run dispatched
  or recorded at the provider twice, a lead enrolled twice or with two step-1 touch runs);
- `projection_mismatches`: read-model tables whose rows differ from a fresh rebuild;
- `hash_chain_ok`: `store.verify().ok`;
- `recovery_s`: from the last kill until every lead ingested before it had its first touch.

Servers: TOUCHLINE_DATABASE_URL / TOUCHLINE_NATS_URL when set, else embedded ones in a temp dir
(a fresh database either way). `--nats-cluster` starts three clustered nats-servers instead.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import AsyncIterator, Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final

if __package__ in (None, ""):  # run as a script: the project's packages live one folder up
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import anyio
import asyncpg
import msgspec

from actors.campaigns import Campaigns, StepSpec
from actors.org import OrgSettings
from actors.send_window import lead_zone, next_allowed
from events.bus import connect, stream_config
from events.catalog import LeadgenRouting, LeadIngested, lead_stream
from events.errors import ConcurrencyError
from events.migrate import migrate
from events.postgres import PostgresEventStore, open_postgres_store
from events.settings import Settings
from events.store import NO_STREAM, EventFilter
from gateways.embedded import _port_open, free_port, nats_server_binary, start_postgres, stop_postgres, with_database
from projections import ALL_PROJECTIONS
from projections.model import Projection, quote
from projections.runner import all_views, projection_status, rebuild

ACCOUNT: Final = uuid.UUID("00000000-0000-4000-8000-00000000c4a0")
# One city per US zone, east to west: the first whose SMS window is open now is used.
CITIES: Final = ("miami", "chicago", "denver", "phoenix", "losangeles", "anchorage", "honolulu")
_MEASURED: Final = frozenset(
    {"LeadIngested", "LeadEnrolled", "TouchRunScheduled", "TouchRunDispatched", "ProviderRequestRecorded"}
)
# Variables that would configure real providers, other servers or a crawl in the children.
_SCRUBBED: Final = ("TOUCHLINE_", "ELASTIC", "TWILIO", "TELNYX", "WHATSAPP", "OPENAI", "CL_", "E24_", "WORKER_ID")


def open_city(now: datetime | None = None) -> tuple[str, bool]:
    """A city whose SMS window is open at `now`, and True; else Miami and False."""
    now = now or datetime.now(UTC)
    for city in CITIES:
        if next_allowed(now, "sms", lead_zone(city)) == now:
            return city, True
    return CITIES[0], False


# --- the processes -------------------------------------------------------------------------


def worker_roles() -> str:
    """Every role but the relay (see the module notes: a standby relay holds up `touchline up`)."""
    from gateways.roles import known_roles

    return ",".join(sorted(r for r in known_roles() if r != "relay"))


class Member(msgspec.Struct, kw_only=True):
    name: str
    roles: str | None  # None: every role
    marker: str  # the log line that says it started


class Fleet:
    """`touchline up` processes sharing the servers named in `settings`.

    `workers` processes run every role but the relay; `relays` processes run only the relay (one
    leads, the others stand by). `all_roles=True` runs every role in each of `workers` processes
    instead: then only the relay leader's process gets past its start (a finding, see README of
    the drill), so a start is counted from the event store line, not `touchline_ready`.
    """

    def __init__(
        self,
        settings: Settings,
        root: Path,
        workers: int,
        *,
        relays: int = 2,
        roles: str | None = None,
        all_roles: bool = False,
    ) -> None:
        self.settings = settings
        self.root = root
        self.members: list[Member] = []
        if all_roles:
            self.members += [Member(name=f"p{i}", roles=None, marker="component=event_store") for i in range(workers)]
        else:
            wroles = roles or worker_roles()
            self.members += [Member(name=f"p{i}", roles=wroles, marker="touchline_ready") for i in range(workers)]
            self.members += [Member(name=f"r{i}", roles="relay", marker="component=event_store") for i in range(relays)]
        self.procs: dict[int, subprocess.Popen[bytes]] = {}
        self.starts = 0
        self.crashes = 0  # processes found dead that nobody killed
        self._down: set[int] = set()  # dead ones not yet back (a start refused during an outage)
        self.start_refusals: list[str] = []
        root.mkdir(parents=True, exist_ok=True)

    @property
    def count(self) -> int:
        return len(self.members)

    def log_file(self, i: int) -> Path:
        return self.root / f"{self.members[i].name}.log"

    def _env(self, i: int) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(_SCRUBBED)}
        return env | {
            "TOUCHLINE_DATABASE_URL": self.settings.database_url or "",
            "TOUCHLINE_NATS_URL": self.settings.nats_url or "",
            "TOUCHLINE_SUBJECT_PREFIX": self.settings.subject_prefix,
            "TOUCHLINE_STREAM_NAME": self.settings.stream_name,
            "TOUCHLINE_STREAM_REPLICAS": str(self.settings.stream_replicas),
            **({"TOUCHLINE_ACK_WAIT_S": f"{self.settings.ack_wait_s:g}"} if self.settings.ack_wait_s else {}),
            "TOUCHLINE_HTTP_PORT": "0",
            "WORKER_ID": self.members[i].name,
        }

    def _marks(self, i: int) -> int:
        log_file = self.log_file(i)
        return log_file.read_text(errors="replace").count(self.members[i].marker) if log_file.exists() else 0

    def spawn(self, i: int) -> int:
        """Start process i (not waiting); returns how many start lines its log had before."""
        before = self._marks(i)
        member = self.members[i]
        cmd = [sys.executable, "-m", "gateways.cli", "up", "--data-dir", str(self.root / f"data-{member.name}")]
        if member.roles:
            cmd += ["--role", member.roles]
        with open(self.log_file(i), "ab") as out:
            self.procs[i] = subprocess.Popen(
                cmd,
                env=self._env(i),
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                cwd=Path(__file__).resolve().parent.parent,
                start_new_session=True,
            )
        self.starts += 1
        return before

    def wait_ready(self, i: int, before: int, timeout: float = 90.0) -> None:
        deadline = time.monotonic() + timeout
        proc = self.procs[i]
        while time.monotonic() < deadline:
            if self._marks(i) > before:
                return
            if proc.poll() is not None:
                raise RuntimeError(f"{self.members[i].name} exited with {proc.returncode} at start:\n{self.tail(i)}")
            time.sleep(0.05)
        raise RuntimeError(f"{self.members[i].name} not started within {timeout:.0f} s:\n{self.tail(i)}")

    def tail(self, i: int, chars: int = 3000) -> str:
        return self.log_file(i).read_text(errors="replace")[-chars:] if self.log_file(i).exists() else ""

    def start_all(self) -> None:
        marks = {i: self.spawn(i) for i in range(self.count)}
        for i, before in marks.items():
            self.wait_ready(i, before)

    def restart(self, i: int) -> None:
        self.wait_ready(i, self.spawn(i))

    def kill(self, i: int) -> None:
        proc = self.procs[i]
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)

    def revive(self) -> list[str]:
        """Start again every process that died by itself; the names of those back.

        A start refused (PostgreSQL still down: `touchline up` exits 2 saying so) is tried again
        on the next call; the death is counted once.
        """
        dead = [i for i, p in self.procs.items() if p.poll() is not None]
        back = []
        for i in dead:
            if i not in self._down:
                self.crashes += 1
                self._down.add(i)
            try:
                self.restart(i)
            except RuntimeError as exc:
                self.start_refusals.append(str(exc).splitlines()[0])
                continue
            self._down.discard(i)
            back.append(self.members[i].name)
        return back

    def stop(self, i: int, timeout: float = 30.0, *, signalled: bool = False) -> int:
        proc = self.procs[i]
        if proc.poll() is None:
            if not signalled:  # a second SIGTERM would find the default handler back, mid-shutdown
                proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        return int(proc.returncode)

    def stop_all(self) -> dict[str, int]:
        for proc in self.procs.values():
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        return {self.members[i].name: self.stop(i, signalled=True) for i in self.procs}

    def crash_reasons(self) -> list[str]:
        """The last error of each process log that shows a traceback (its message may wrap)."""
        reasons = []
        for i in range(self.count):
            lines = [line.strip(" \u2502") for line in self.tail(i, 200_000).splitlines()]
            for n in range(len(lines) - 1, -1, -1):
                if "Error:" in lines[n] and "ExceptionGroup" not in lines[n]:
                    text = " ".join(lines[n : n + 3]) if lines[n].endswith("Error:") else lines[n]
                    reasons.append(f"{self.members[i].name}: {text[:240]}")
                    break
        return reasons


# --- the feed ------------------------------------------------------------------------------


class Feeder:
    """Appends LeadIngested at `rate` a second; an append that fails is tried again."""

    def __init__(self, store: PostgresEventStore, city: str, rate: float, account: uuid.UUID = ACCOUNT) -> None:
        self.store = store
        self.city = city
        self.rate = rate
        self.account = account
        self.fed = 0
        self.errors = 0
        self.tag = uuid.uuid4().hex[:6]
        self._stop = anyio.Event()

    def stop(self) -> None:
        self._stop.set()

    async def run(self) -> None:
        started = time.monotonic()
        while not self._stop.is_set():
            await self.one()
            due = started + self.fed / self.rate
            with anyio.move_on_after(max(0.0, due - time.monotonic())):
                await self._stop.wait()

    async def one(self) -> None:
        n = self.fed
        lead_id = uuid.uuid4()
        event = LeadIngested(
            lead_id=lead_id,
            account_id=self.account,
            source="craigslist",
            external_id=f"chaos-{self.tag}-{n}",
            city=self.city,
            phone=f"+1305{random.randrange(10**7):07d}",
            title="2016 Toyota Corolla LE",
            price=9500,
        )
        tried = False
        while True:
            try:
                with anyio.fail_after(10):
                    await self.store.append(lead_stream(lead_id), [event], expected_version=NO_STREAM)
                break
            except ConcurrencyError:
                if tried:  # an earlier try committed before its answer was lost
                    break
                raise
            except Exception:  # the database is away (the store wraps what asyncpg raised): try again
                tried = True
                self.errors += 1
                await anyio.sleep(0.5)
        self.fed += 1


# --- measuring -----------------------------------------------------------------------------


class Tally(msgspec.Struct, kw_only=True):
    leads: int = 0
    touches: int = 0
    dispatched: int = 0
    scheduled_later: int = 0
    lost: int = 0
    duplicates: int = 0
    events: int = 0
    # lead → when it was ingested (the log's record time), for the leads not reached yet
    pending: dict[uuid.UUID, datetime] = {}


async def tally(store: PostgresEventStore, account: uuid.UUID = ACCOUNT, now: datetime | None = None) -> Tally:
    """Counted from the log: a lead is reached when its first touch run is dispatched, or is
    scheduled for later than `now` (its send window is closed)."""
    now = now or datetime.now(UTC)
    ingested: dict[uuid.UUID, datetime] = {}
    enrolled: Counter[uuid.UUID] = Counter()
    first_runs: defaultdict[uuid.UUID, set[uuid.UUID]] = defaultdict(set)
    later: set[uuid.UUID] = set()
    per_touch: Counter[tuple[str, uuid.UUID]] = Counter()
    events = 0
    wanted = EventFilter(types=_MEASURED, account_id=account)
    async for batch in store.read_all(0, filter=wanted):
        for env in batch:
            events += 1
            data = env.event
            if env.type == "LeadIngested":
                ingested[getattr(data, "lead_id")] = env.recorded_at  # noqa: B009
            elif env.type == "LeadEnrolled":
                enrolled[getattr(data, "lead_id")] += 1  # noqa: B009
            elif env.type == "TouchRunScheduled":
                if getattr(data, "step") != 1:  # noqa: B009
                    continue
                touch = getattr(data, "touch_run_id")  # noqa: B009
                first_runs[getattr(data, "lead_id")].add(touch)  # noqa: B009
                if getattr(data, "scheduled_for") > now:  # noqa: B009
                    later.add(touch)
            else:
                per_touch[(env.type, getattr(data, "touch_run_id"))] += 1  # noqa: B009
    dispatched = {t for (kind, t) in per_touch if kind == "TouchRunDispatched"}
    result = Tally(leads=len(ingested), events=events, dispatched=len(dispatched))
    result.touches = sum(len(runs) for runs in first_runs.values())
    result.scheduled_later = len(later - dispatched)
    result.duplicates = sum(n - 1 for n in per_touch.values() if n > 1)
    result.duplicates += sum(n - 1 for n in enrolled.values() if n > 1)
    result.duplicates += sum(len(runs) - 1 for runs in first_runs.values() if len(runs) > 1)
    for lead, at in ingested.items():
        if not (first_runs.get(lead, set()) & (dispatched | later)):
            result.pending[lead] = at
    result.lost = len(result.pending)
    return result


async def snapshot(store: PostgresEventStore, projections: Sequence[Projection]) -> dict[str, list[tuple[Any, ...]]]:
    tables: dict[str, list[tuple[Any, ...]]] = {}
    for p in projections:
        for t in p.tables:
            rows = await store.pool.fetch(f"select * from {quote(t.schema)}.{quote(t.name)} order by {quote(t.key)}")
            tables[t.qualified] = [tuple(r) for r in rows]
    return tables


async def projections_live(store: PostgresEventStore) -> bool:
    statuses = await projection_status(store, [cls() for cls in ALL_PROJECTIONS])
    return all(s.state == "live" for s in statuses)


async def projection_mismatches(store: PostgresEventStore) -> list[str]:
    """Tables whose live rows differ from a fresh rebuild (the rebuild is swapped in after)."""
    projections = [cls() for cls in ALL_PROJECTIONS]
    live = await snapshot(store, projections)
    await rebuild(store, projections, all_views(projections))
    rebuilt = await snapshot(store, projections)
    return sorted(name for name in live.keys() | rebuilt.keys() if live.get(name) != rebuilt.get(name))


async def seed(store: PostgresEventStore, account: uuid.UUID = ACCOUNT) -> uuid.UUID:
    """Onboarding, active routing and an active campaign: one SMS step, no delay."""
    org = OrgSettings(store)
    await org.update(account, business_name="Chaos Motors", contact_email="chaos@motors.example")
    await org.set_routing(account, LeadgenRouting(dealer_address="1 Biscayne Blvd", radius_miles=25, active=True))
    campaigns = Campaigns(store)
    created = await campaigns.create(
        account, campaign_key="autos_outbound_miami", name="Chaos", steps=[StepSpec(step=1, channel="sms")]
    )
    await campaigns.activate(account, created.campaign_id)
    return created.campaign_id


async def wait_drained(store: PostgresEventStore, within_s: float, *, quiet_s: float = 1.0) -> Tally:
    """Until every lead is reached, the read models are live, and the log has been quiet a while."""
    deadline = time.monotonic() + within_s
    while True:
        result = await tally(store)
        head = await store.pool.fetchval("select coalesce(max(position), 0) from touchline.events")
        if not result.pending and await projections_live(store):
            await anyio.sleep(quiet_s)
            again = await store.pool.fetchval("select coalesce(max(position), 0) from touchline.events")
            if again == head and await projections_live(store):
                return result
        if time.monotonic() > deadline:
            return result
        await anyio.sleep(0.25)


class RecoveryWatch:
    """For each mark (a kill, a fault): seconds until every lead ingested before it is reached."""

    def __init__(self, store: PostgresEventStore) -> None:
        self.store = store
        self.marks: list[tuple[datetime, float]] = []  # wall time, monotonic time
        self.recovered: dict[int, float] = {}

    def mark(self) -> int:
        self.marks.append((datetime.now(UTC), time.monotonic()))
        return len(self.marks) - 1

    async def run(self) -> None:
        while True:
            open_marks = [i for i in range(len(self.marks)) if i not in self.recovered]
            if open_marks:
                now = time.monotonic()
                pending = (await tally(self.store)).pending.values()
                for i in open_marks:
                    at, mono = self.marks[i]
                    if not any(t <= at for t in pending):
                        self.recovered[i] = round(now - mono, 2)
            await anyio.sleep(0.25)

    def last(self) -> float | None:
        return self.recovered.get(len(self.marks) - 1) if self.marks else None


# --- servers -------------------------------------------------------------------------------


class NatsCluster:
    """Three clustered nats-servers with JetStream on free ports, distinct store dirs."""

    def __init__(self, root: Path, size: int = 3) -> None:
        self.root = root
        self.ports = [free_port() for _ in range(size)]
        self.cluster_ports = [free_port() for _ in range(size)]
        self.procs: list[subprocess.Popen[bytes]] = []

    @property
    def urls(self) -> list[str]:
        return [f"nats://127.0.0.1:{p}" for p in self.ports]

    def start(self, timeout: float = 30.0) -> None:
        routes = ",".join(f"nats://127.0.0.1:{p}" for p in self.cluster_ports)
        for i, (port, cport) in enumerate(zip(self.ports, self.cluster_ports, strict=True)):
            store = self.root / f"n{i}"
            store.mkdir(parents=True, exist_ok=True)
            cmd = [
                nats_server_binary(), "-js", "--server_name", f"n{i}", "--store_dir", str(store),
                "--addr", "127.0.0.1", "--port", str(port), "--cluster_name", "CHAOS",
                "--cluster", f"nats://127.0.0.1:{cport}", "--routes", routes, "--log", str(store / "log"),
            ]  # fmt: skip
            self.procs.append(
                subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, start_new_session=True)
            )
        deadline = time.monotonic() + timeout
        for port in self.ports:
            while not _port_open(port):
                if time.monotonic() > deadline:
                    raise RuntimeError(f"nats-server on port {port} did not start")
                time.sleep(0.05)

    def stop(self) -> None:
        for proc in self.procs:
            proc.send_signal(signal.SIGTERM)
        for proc in self.procs:
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


@contextlib.contextmanager
def servers(root: Path, *, cluster: bool) -> Iterator[tuple[str, str]]:
    """(server dsn, nats url): from the environment, or started under `root`."""
    from gateways.embedded import NatsServer

    pg: Any = None
    nats: NatsServer | None = None
    nats_cluster: NatsCluster | None = None
    try:
        if dsn := os.environ.get("TOUCHLINE_DATABASE_URL", "").strip():
            server_dsn = dsn
        else:
            pg, server_dsn = start_postgres(root / "pg")
        if cluster:
            nats_cluster = NatsCluster(root / "nats-cluster")
            nats_cluster.start()
            nats_url = ",".join(nats_cluster.urls)  # the seed list, as a deployment would give it
        elif url := os.environ.get("TOUCHLINE_NATS_URL", "").strip():
            nats_url = url
        else:
            nats = NatsServer(root / "nats")
            nats.start()
            nats_url = nats.url
        yield server_dsn, nats_url
    finally:
        if nats_cluster is not None:
            nats_cluster.stop()
        if nats is not None:
            nats.stop()
        if pg is not None:
            stop_postgres(pg)


@contextlib.asynccontextmanager
async def fresh_database(server_dsn: str) -> AsyncIterator[str]:
    name = f"chaos_{uuid.uuid4().hex[:10]}"
    admin = await asyncpg.connect(server_dsn)
    try:
        await admin.execute(f'create database "{name}"')
    finally:
        await admin.close()
    dsn = with_database(server_dsn, name)
    conn = await asyncpg.connect(dsn)
    try:
        await migrate(conn)
    finally:
        await conn.close()
    try:
        yield dsn
    finally:
        admin = await asyncpg.connect(server_dsn)
        try:
            await admin.execute(f'drop database if exists "{name}" with (force)')
        finally:
            await admin.close()


# --- the drill -----------------------------------------------------------------------------


class ChaosResult(msgspec.Struct, kw_only=True):
    processes: int
    seconds: float
    kills: int
    leads: int
    touches: int
    lost: int
    duplicates: int
    projection_mismatches: list[str]
    hash_chain_ok: bool
    recovery_s: float | None
    recovery_max_s: float | None = None
    dispatched: int = 0
    scheduled_later: int = 0
    window_open: bool = True
    city: str = ""
    events: int = 0
    parked: int = 0
    feed_errors: int = 0
    crashes: int = 0  # processes that died without being killed (restarted by the drill)
    crash_reasons: list[str] = []
    drain_s: float = 0.0
    wall_s: float = 0.0
    nats_cluster: bool = False
    stream_replicas: int | None = None
    ack_wait_s: float = 30.0
    exit_codes: dict[str, int] = {}
    note: str = ""


async def run_chaos(
    settings: Settings,
    root: Path,
    *,
    seconds: float = 120.0,
    processes: int = 3,
    leads: int | None = None,
    kill_every_s: float = 5.0,
    drain_timeout_s: float = 180.0,
    replicas: int = 1,
    all_roles: bool = False,
    seed_rng: int | None = None,
) -> ChaosResult:
    """The drill on the servers `settings` names (its database migrated, its stream absent)."""
    assert settings.database_url is not None and settings.nats_url is not None
    rng = random.Random(seed_rng)
    started = time.monotonic()
    city, window_open = open_city()
    rate = (leads / seconds) if leads else 5.0
    # The processes keep the stream at the replicas it was made with (they bring its config up to date).
    fleet = Fleet(
        msgspec.structs.replace(settings, stream_replicas=replicas), root / "procs", processes, all_roles=all_roles
    )
    lock = anyio.Lock()  # one start, kill or revival at a time
    nc = await connect(settings.nats_url, name="chaos")
    try:
        if replicas > 1:  # before any process creates it (with one replica); the cluster elects a leader first
            with anyio.fail_after(60):
                while True:
                    try:
                        await nc.jetstream().add_stream(stream_config(settings, replicas=replicas))
                        break
                    except Exception:
                        await anyio.sleep(0.5)
        async with open_postgres_store(settings.database_url) as store:
            await seed(store)
            await anyio.to_thread.run_sync(fleet.start_all)
            feeder = Feeder(store, city, rate)
            watch = RecoveryWatch(store)
            kills = 0

            async def revive_forever() -> None:
                while True:
                    await anyio.sleep(0.5)
                    async with lock:
                        await anyio.to_thread.run_sync(fleet.revive)

            async with anyio.create_task_group() as tg:
                tg.start_soon(watch.run)
                tg.start_soon(feeder.run)
                tg.start_soon(revive_forever)
                end = time.monotonic() + seconds
                while time.monotonic() + kill_every_s < end:
                    await anyio.sleep(kill_every_s * (0.5 + rng.random()))
                    victim = rng.randrange(fleet.count)
                    async with lock:
                        await anyio.to_thread.run_sync(fleet.kill, victim)
                        watch.mark()
                        kills += 1
                        await anyio.to_thread.run_sync(fleet.restart, victim)
                await anyio.sleep(max(0.0, end - time.monotonic()))
                feeder.stop()
                # A clean restart of everything, then the drain.
                drain_started = time.monotonic()
                async with lock:
                    await anyio.to_thread.run_sync(fleet.stop_all)
                    await anyio.to_thread.run_sync(fleet.start_all)
                await wait_drained(store, drain_timeout_s)
                drain_s = time.monotonic() - drain_started
                with anyio.move_on_after(5):  # the last mark's recovery, if the drain was what did it
                    while watch.marks and watch.last() is None:  # noqa: ASYNC110 - polls the log
                        await anyio.sleep(0.1)
                async with lock:
                    tg.cancel_scope.cancel()
            codes = await anyio.to_thread.run_sync(fleet.stop_all)
            # Anything the last stop left unfolded: one projections-only process catches up.
            if not await projections_live(store):
                catch_up = Fleet(settings, root / "catch-up", 1, relays=0, roles="projections")
                await anyio.to_thread.run_sync(catch_up.start_all)
                with anyio.move_on_after(30):
                    while not await projections_live(store):  # noqa: ASYNC110 - polls the database
                        await anyio.sleep(0.2)
                await anyio.to_thread.run_sync(catch_up.stop_all)
            final = await tally(store)
            mismatches = await projection_mismatches(store)
            verified = await store.verify()
            parked = int(
                await store.pool.fetchval("select count(*) from touchline.events where event_type = 'EventParked'")
            )
        replicas_now: int | None = None
        with contextlib.suppress(Exception):
            info = await nc.jetstream().stream_info(settings.stream_name)
            replicas_now = info.config.num_replicas
        with contextlib.suppress(Exception):
            await nc.jetstream().delete_stream(settings.stream_name)
    finally:
        await anyio.to_thread.run_sync(fleet.stop_all)
        await nc.close()
    note = "" if window_open else "no SMS send window open now: first touches count when scheduled, not dispatched"
    return ChaosResult(
        processes=fleet.count,
        seconds=seconds,
        kills=kills,
        leads=final.leads,
        touches=final.touches,
        lost=final.lost,
        duplicates=final.duplicates,
        projection_mismatches=mismatches,
        hash_chain_ok=verified.ok,
        recovery_s=watch.last(),
        recovery_max_s=max(watch.recovered.values(), default=None),
        dispatched=final.dispatched,
        scheduled_later=final.scheduled_later,
        window_open=window_open,
        city=city,
        events=final.events,
        parked=parked,
        feed_errors=feeder.errors,
        crashes=fleet.crashes,
        crash_reasons=sorted(set(fleet.crash_reasons())) if fleet.crashes else [],
        drain_s=round(drain_s, 2),
        wall_s=round(time.monotonic() - started, 2),
        nats_cluster=replicas > 1,
        stream_replicas=replicas_now,
        ack_wait_s=settings.ack_wait_s or 30.0,
        exit_codes=codes,
        note=note,
    )


async def _main(args: argparse.Namespace) -> ChaosResult:
    root = Path(tempfile.mkdtemp(prefix="touchline-chaos-"))
    try:
        with servers(root, cluster=args.nats_cluster) as (server_dsn, nats_url):
            async with fresh_database(server_dsn) as dsn:
                tag = uuid.uuid4().hex[:8]
                settings = Settings(
                    data_dir=root / "data",
                    database_url=dsn,
                    nats_url=nats_url,
                    subject_prefix=f"chaos{tag}",
                    stream_name=f"CHAOS_{tag.upper()}",
                    ack_wait_s=args.ack_wait,
                )
                return await run_chaos(
                    settings,
                    root,
                    seconds=args.seconds,
                    processes=args.processes,
                    leads=args.leads,
                    kill_every_s=args.kill_every,
                    replicas=3 if args.nats_cluster else 1,
                    all_roles=args.all_roles,
                )
    finally:
        if not args.keep:
            shutil.rmtree(root, ignore_errors=True)
        else:
            print(f"kept {root}", file=sys.stderr)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--seconds", type=float, default=120.0, help="how long to feed and kill")
    parser.add_argument("--processes", type=int, default=3, help="worker processes (plus two relay-only ones)")
    parser.add_argument("--leads", type=int, default=None, help="leads fed in all (default: 5 a second)")
    parser.add_argument("--kill-every", type=float, default=5.0, help="mean seconds between kills")
    parser.add_argument("--nats-cluster", action="store_true", help="three clustered nats-servers, stream R3")
    parser.add_argument(
        "--ack-wait", type=float, default=None, help="TOUCHLINE_ACK_WAIT_S for the processes (default: 30 s)"
    )
    parser.add_argument(
        "--all-roles", action="store_true", help="every role (relay too) in each process, no relay-only ones"
    )
    parser.add_argument("--keep", action="store_true", help="keep the temp dir (process logs)")
    parser.add_argument("--json", action="store_true", help="print only the JSON summary")
    args = parser.parse_args(argv)
    result = anyio.run(_main, args)
    summary = msgspec.to_builtins(result)
    if args.json:
        print(json.dumps(summary))
    else:
        print(json.dumps(summary, indent=2))
        ok = not result.lost and not result.duplicates and not result.projection_mismatches and result.hash_chain_ok
        print("ok" if ok else "FAILED: lost, duplicated, mismatched or a broken chain", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
