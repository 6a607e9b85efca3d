"""`touchline bench e2e`: N leads ingested → cadence → orchestrator → dispatch (sandbox), end to end.

Everything runs for real on the given PostgreSQL and NATS: the log, the relay to JetStream, the
cadence runner, the touch orchestrator and the dispatch engine on their durable consumers. The
providers are in sandbox mode (no credentials), so a dispatch is the recorded request plus the
TouchRunDispatched event. The clock is the system clock shifted to noon in Miami, where the
leads are, so send windows hold nothing back.

Figures: `wall_s` from the first ingest to the last first touch dispatched; `p50_ms`/`p99_ms`
from a touch being due (its scheduled time, or when it was scheduled if later) to its dispatch;
`ingest_p50_ms`/`ingest_p99_ms` from the lead's ingest to its first touch dispatched;
`duplicates` (a touch dispatched or recorded twice, a lead with two first touches) and `lost`
(a lead without its first touch at the end) are counted from the log.
"""

from __future__ import annotations

import time
import uuid
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Final
from zoneinfo import ZoneInfo

import anyio
import msgspec
import structlog
from nats.aio.client import Client as NATS
from nats.aio.msg import Msg

from actors.cadence import CadenceRunner
from actors.campaigns import Campaigns, StepSpec
from actors.clock import OffsetClock
from actors.dispatch import DispatchEngine, DispatchSettings
from actors.orchestrator import TouchOrchestrator
from actors.org import OrgSettings
from actors.runtime import ActorRunner
from actors.warmup import WarmupSchedule
from events.bus import connect
from events.catalog import LeadIngested, lead_stream
from events.postgres import PostgresEventStore, open_postgres_store
from events.relay import OutboxRelay
from events.settings import Settings

log = structlog.get_logger("touchline.bench")

_INGESTERS: Final = 64


class E2EResult(msgspec.Struct, kw_only=True):
    leads: int
    wall_s: float
    p50_ms: float
    p99_ms: float
    max_ms: float
    ingest_p50_ms: float
    ingest_p99_ms: float
    duplicates: int
    lost: int
    dispatched: int
    leads_per_s: float
    rate: float = 0.0  # leads/s the ingest was paced at (0: all at once)
    ingest_s: float = 0.0  # how long appending the N LeadIngested took (64 writers at once)
    events: int
    events_per_s: float
    # Where the time goes: p50/p99 ms between the log's record times of each hop.
    stages: dict[str, list[float]] = {}
    providers: str = "sandbox"
    timed_out: bool = False
    # The floor, measured in the same run: the same hops by hand, with no log, checks or actors.
    baseline_wall_s: float = 0.0
    baseline_p50_ms: float = 0.0
    baseline_p99_ms: float = 0.0


def percentile(values: list[float], q: float, digits: int = 2) -> float:
    """The q-quantile (nearest rank) of `values`, rounded; 0 for none. Shared by the benchmarks."""
    if not values:
        return 0.0
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))], digits)


def noon_in_miami_offset(now: datetime | None = None) -> timedelta:
    """How far to shift the clock so that it reads 12:00 in Miami (whole minutes)."""
    now = now or datetime.now(UTC)
    local = now.astimezone(ZoneInfo("America/New_York"))
    noon = local.replace(hour=12, minute=0, second=0, microsecond=0)
    return noon - local


async def run_e2e_bench(
    dsn: str, nats_url: str, *, leads: int = 10_000, timeout_s: float = 120.0, rate: float = 0.0
) -> E2EResult:
    """`rate`: leads ingested a second, evenly (0: all at once, as fast as 64 writers go)."""
    tag = uuid.uuid4().hex[:8]
    settings = Settings(
        database_url=dsn, nats_url=nats_url, subject_prefix=f"bench{tag}", stream_name=f"BENCH_E2E_{tag.upper()}"
    )
    clock = OffsetClock(noon_in_miami_offset())
    account = uuid.uuid4()
    async with open_postgres_store(dsn, writers=4, pool_size=24) as store:
        nc = await connect(nats_url, name="touchline-bench-e2e")
        try:
            await OrgSettings(store).update(account, business_name="Bench Motors", contact_email="bench@motors.example")
            campaigns = Campaigns(store)
            created = await campaigns.create(
                account,
                campaign_key="autos_outbound_miami",
                name="Autos Miami",
                steps=[StepSpec(step=1, channel="sms")],
            )
            await campaigns.activate(account, created.campaign_id)
            start_position = await store.head_position()
            engine = DispatchEngine(
                env={},
                settings=DispatchSettings(worker_id="bench", warmup=WarmupSchedule(enabled=False)),
            )
            runners = [
                ActorRunner(CadenceRunner(), store=store, nc=nc, settings=settings, clock=clock),
                ActorRunner(TouchOrchestrator(env={}), store=store, nc=nc, settings=settings, clock=clock),
                ActorRunner(engine, store=store, nc=nc, settings=settings, clock=clock),
            ]
            ingested_at: dict[uuid.UUID, datetime] = {}
            timed_out = False
            async with anyio.create_task_group() as tg:
                await tg.start(OutboxRelay(store, nc, settings).run)
                for runner in runners:
                    await tg.start(runner.run)
                started = time.perf_counter()
                async with anyio.create_task_group() as ingest:
                    for worker in range(_INGESTERS):
                        numbers = range(worker, leads, _INGESTERS)
                        ingest.start_soon(_ingest, store, account, numbers, clock, ingested_at, rate, started)
                ingest_s = time.perf_counter() - started
                try:
                    with anyio.fail_after(timeout_s):
                        while engine.sent < leads:  # noqa: ASYNC110 - the engine's own count, no query
                            await anyio.sleep(0.01)
                except TimeoutError:
                    timed_out = True
                wall = time.perf_counter() - started
                for runner in runners:
                    await runner.stop(grace=5)
                tg.cancel_scope.cancel()
            result = await _measure(store, account, start_position, leads, wall, clock.offset, ingested_at, timed_out)
            result.ingest_s = round(ingest_s, 3)
            result.rate = rate
            base_wall, base_latencies = await _baseline(store, nc, settings, leads)
            result.baseline_wall_s = round(base_wall, 3)
            result.baseline_p50_ms = percentile(base_latencies, 0.50)
            result.baseline_p99_ms = percentile(base_latencies, 0.99)
            return result
        finally:
            try:
                await nc.jetstream().delete_stream(settings.stream_name)
            except Exception as exc:  # the figures stand; a leftover bench stream is only untidy
                log.warning("bench_stream_not_deleted", stream=settings.stream_name, error=str(exc))
            await nc.close()


async def _ingest(
    store: PostgresEventStore,
    account: uuid.UUID,
    numbers: range,
    clock: OffsetClock,
    ingested_at: dict[uuid.UUID, datetime],
    rate: float,
    started: float,
) -> None:
    for n in numbers:
        if rate > 0:  # lead n goes in at n / rate seconds
            await anyio.sleep(max(0.0, started + n / rate - time.perf_counter()))
        lead_id = uuid.uuid4()
        ingested = LeadIngested(
            lead_id=lead_id,
            account_id=account,
            source="craigslist",
            external_id=f"bench-{n}",
            city="miami",
            phone=f"+1305{n:07d}",
            title="2016 Toyota Corolla LE",
            price=9500,
        )
        ingested_at[lead_id] = clock.now()
        await store.append(lead_stream(lead_id), [ingested])


async def _measure(
    store: PostgresEventStore,
    account: uuid.UUID,
    after: int,
    leads: int,
    wall: float,
    offset: timedelta,
    ingested_at: dict[uuid.UUID, datetime],
    timed_out: bool,
) -> E2EResult:
    wanted = frozenset({"TouchRunScheduled", "TouchRunDispatched", "ProviderRequestRecorded"})
    recorded: dict[str, dict[uuid.UUID, datetime]] = {"LeadIngested": {}, "LeadEnrolled": {}, "TouchRunScheduled": {}}
    touch_lead: dict[uuid.UUID, uuid.UUID] = {}
    dispatched_rec: dict[uuid.UUID, datetime] = {}
    scheduled: dict[uuid.UUID, tuple[datetime, uuid.UUID]] = {}
    dispatched: dict[uuid.UUID, datetime] = {}
    counts: Counter[tuple[str, uuid.UUID]] = Counter()
    firsts: Counter[uuid.UUID] = Counter()
    events = 0
    async for batch in store.read_all(after):
        events += len(batch)
        for env in batch:
            if env.account_id != account:
                continue
            if env.type in ("LeadIngested", "LeadEnrolled"):
                recorded[env.type][getattr(env.event, "lead_id")] = env.recorded_at  # noqa: B009
            if env.type not in wanted:
                continue
            event = env.event
            touch = getattr(event, "touch_run_id")  # noqa: B009
            counts[(env.type, touch)] += 1
            if env.type == "TouchRunScheduled":
                # Due: its time, or when it was scheduled if that was later (the offset clock's terms).
                due = max(event.scheduled_for, env.recorded_at + offset)  # type: ignore[attr-defined]
                scheduled[touch] = (due, event.lead_id)  # type: ignore[attr-defined]
                firsts[event.lead_id] += 1  # type: ignore[attr-defined]
                recorded["TouchRunScheduled"][event.lead_id] = env.recorded_at  # type: ignore[attr-defined]
                touch_lead[touch] = event.lead_id  # type: ignore[attr-defined]
            elif env.type == "TouchRunDispatched":
                dispatched[touch] = event.dispatched_at or env.recorded_at + offset  # type: ignore[attr-defined]
                dispatched_rec[touch] = env.recorded_at
    latencies, from_ingest = [], []
    reached: set[uuid.UUID] = set()
    for touch, at in dispatched.items():
        if touch not in scheduled:
            continue
        due, lead = scheduled[touch]
        reached.add(lead)
        latencies.append(max(0.0, (at - due).total_seconds() * 1000))
        if lead in ingested_at:
            from_ingest.append((at - ingested_at[lead]).total_seconds() * 1000)
    hops: dict[str, list[float]] = {"ingested→enrolled": [], "enrolled→scheduled": [], "scheduled→dispatched": []}
    for touch, at in dispatched_rec.items():
        of_lead = touch_lead.get(touch)
        if of_lead is None:
            continue
        found = [recorded[k].get(of_lead) for k in ("LeadIngested", "LeadEnrolled", "TouchRunScheduled")]
        times = [t for t in found if t is not None] + [at]
        if len(times) != 4:
            continue
        for name, a, b in zip(hops, times, times[1:], strict=False):
            hops[name].append((b - a).total_seconds() * 1000)
    stages = {name: [percentile(v, 0.5), percentile(v, 0.99)] for name, v in hops.items()}
    duplicates = sum(n - 1 for (kind, _), n in counts.items() if kind != "TouchRunScheduled" and n > 1)
    duplicates += sum(n - 1 for n in firsts.values() if n > 1)
    return E2EResult(
        leads=leads,
        wall_s=round(wall, 3),
        p50_ms=percentile(latencies, 0.50),
        p99_ms=percentile(latencies, 0.99),
        max_ms=round(max(latencies, default=0.0), 2),
        ingest_p50_ms=percentile(from_ingest, 0.50),
        ingest_p99_ms=percentile(from_ingest, 0.99),
        duplicates=duplicates,
        lost=leads - len(reached & set(ingested_at)),
        dispatched=len(dispatched),
        leads_per_s=round(leads / wall, 1) if wall else 0.0,
        events=events,
        events_per_s=round(events / wall, 1) if wall else 0.0,
        timed_out=timed_out,
        stages=stages,
    )


async def _baseline(store: PostgresEventStore, nc: NATS, settings: Settings, leads: int) -> tuple[float, list[float]]:
    """Raw asyncpg and nats-py doing the pipeline's hops by hand: for each lead, insert a row and
    publish it; a subscriber inserts the next row and publishes it, three times over (enrolled,
    scheduled, dispatched); latency is from the third hop's publish to its row. No log, no
    versions, no actors: what the machine does for the same round trips."""
    tag = uuid.uuid4().hex[:8]
    table = f"touchline.bench_e2e_{tag}"
    subject = f"{settings.subject_prefix}.baseline.{tag}"
    pool = store.pool
    await pool.execute(f"create table {table} (lead uuid, hop int, at timestamptz default now())")
    done = anyio.Event()
    finished = 0
    latencies: list[float] = []
    insert = f"insert into {table} (lead, hop) values ($1, $2)"
    js = nc.jetstream(publish_async_max_pending=20_000)
    stream = f"BENCH_BASE_{tag.upper()}"
    await js.add_stream(name=stream, subjects=[f"{subject}.>"])

    async def hop(msg: Msg) -> None:
        nonlocal finished
        lead, n, sent = msg.data.decode().split(":")
        await pool.execute(insert, uuid.UUID(lead), int(n) + 1)
        await msg.ack()
        if int(n) < 3:
            await js.publish(f"{subject}.{int(n) + 1}", f"{lead}:{int(n) + 1}:{time.perf_counter()}".encode())
        else:
            latencies.append((time.perf_counter() - float(sent)) * 1000)
            finished += 1
            if finished == leads:
                done.set()

    subs = []
    for n in (1, 2, 3):
        subs.append(await js.subscribe(f"{subject}.{n}", cb=hop, manual_ack=True, pending_msgs_limit=100_000))
    started = time.perf_counter()
    try:
        async with anyio.create_task_group() as tg:

            async def ingest(numbers: range) -> None:
                for _ in numbers:
                    lead = uuid.uuid4()
                    await pool.execute(insert, lead, 0)
                    await js.publish(f"{subject}.1", f"{lead}:1:{time.perf_counter()}".encode())

            for worker in range(_INGESTERS):
                tg.start_soon(ingest, range(worker, leads, _INGESTERS))
        with anyio.move_on_after(120):
            await done.wait()
        return time.perf_counter() - started, latencies
    finally:
        for sub in subs:
            await sub.unsubscribe()
        await js.delete_stream(stream)
        await pool.execute(f"drop table {table}")


def format_e2e_bench(result: E2EResult) -> list[str]:
    verdict = (
        "ok" if result.wall_s < 15 and result.p99_ms < 100 and not result.duplicates and not result.lost else "MISSED"
    )
    return [
        f"end to end, {result.leads:,} leads "
        + (f"ingested at {result.rate:,.0f}/s" if result.rate else "ingested at once")
        + f", sandbox providers: {result.wall_s:.2f} s wall "
        f"({result.leads_per_s:,.0f} leads/s, {result.events:,} events at {result.events_per_s:,.0f}/s; "
        f"the ingest itself took {result.ingest_s:.2f} s)",
        f"due → dispatched: p50 {result.p50_ms:.1f} ms, p99 {result.p99_ms:.1f} ms, max {result.max_ms:.1f} ms",
        f"ingest → first touch dispatched: p50 {result.ingest_p50_ms:.1f} ms, p99 {result.ingest_p99_ms:.1f} ms",
        f"baseline (raw asyncpg + nats-py, the same hops by hand, no log or checks): {result.baseline_wall_s:.2f} s "
        f"wall, last hop p50 {result.baseline_p50_ms:.1f} ms, p99 {result.baseline_p99_ms:.1f} ms",
        "per hop (p50/p99 ms): " + ", ".join(f"{k} {v[0]:.0f}/{v[1]:.0f}" for k, v in result.stages.items()),
        f"duplicates {result.duplicates}, lost {result.lost}"
        + (" (timed out waiting)" if result.timed_out else "")
        + f"  [targets: wall < 15 s, p99 < 100 ms, 0 duplicates, 0 lost: {verdict}]",
    ]
