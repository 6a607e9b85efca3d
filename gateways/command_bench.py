"""`touchline bench commands`: bus commands round trip, beside raw nats-py request-reply and asyncpg.

N `lead.ingest` commands are sent as NATS requests, `concurrency` at a time, to one command
service on a fresh database: each is parsed, checked against the log, appended (with its
correlation id and derived event ids) and answered with the events it produced. The baseline,
in the same run, is what the same round trip costs with nothing of Touchline in it: a raw
nats-py responder that inserts one row with raw asyncpg and replies.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Final

import anyio
import asyncpg
import msgspec
from nats.aio.msg import Msg

from actors.e2e_bench import percentile
from events.bus import connect
from events.postgres import open_postgres_store
from events.settings import Settings
from gateways.command_bus import CommandService

ACCOUNT: Final = uuid.UUID("00000000-0000-4000-8000-00000000be7c")


class CommandsBenchResult(msgspec.Struct, kw_only=True):
    commands: int
    concurrency: int
    commands_per_s: float
    p50_ms: float
    p99_ms: float
    refused: int
    events: int
    baseline_per_s: float
    baseline_p50_ms: float
    baseline_p99_ms: float


async def _drive(
    request: Callable[..., Awaitable[Msg]], subject: str, payloads: list[bytes], concurrency: int
) -> tuple[float, list[float]]:
    """Send every payload as a request, `concurrency` in flight; (seconds, each round trip in ms)."""
    latencies: list[float] = []
    work = iter(payloads)

    async def sender() -> None:
        for payload in work:
            began = time.perf_counter()
            await request(subject, payload, timeout=30)
            latencies.append((time.perf_counter() - began) * 1000)

    began = time.perf_counter()
    async with anyio.create_task_group() as tg:
        for _ in range(concurrency):
            tg.start_soon(sender)
    return time.perf_counter() - began, latencies


async def run_commands_bench(
    dsn: str, nats_url: str, *, commands: int = 5000, concurrency: int = 32
) -> CommandsBenchResult:
    tag = uuid.uuid4().hex[:8]
    settings = Settings(database_url=dsn, nats_url=nats_url, subject_prefix=f"benchcmd{tag}")
    nc = await connect(nats_url, name="touchline-bench-commands")
    try:
        async with open_postgres_store(dsn) as store:
            service = CommandService(store, nc, settings)
            async with anyio.create_task_group() as tg:
                await tg.start(service.run)
                payloads = [
                    json.dumps(
                        {"source": "bench", "external_id": f"b{i}", "phone": f"+1305{i % 10_000_000:07d}"}
                    ).encode()
                    for i in range(commands)
                ]
                subject = f"{settings.subject_prefix}.commands.{ACCOUNT}.lead.ingest"
                seconds, latencies = await _drive(nc.request, subject, payloads, concurrency)
                await service.stop(5)
                tg.cancel_scope.cancel()
            events = int(await store.pool.fetchval("select count(*) from touchline.events"))

        # The baseline: raw request-reply, one raw insert per request, nothing else.
        conn_pool = await asyncpg.create_pool(dsn, min_size=4, max_size=8)
        assert conn_pool is not None
        try:
            await conn_pool.execute("create table if not exists bench_raw_commands (id uuid primary key, body jsonb)")

            async def respond(msg: Msg) -> None:
                await conn_pool.execute(
                    "insert into bench_raw_commands values ($1, $2::jsonb)", uuid.uuid4(), msg.data.decode()
                )
                await msg.respond(b'{"ok": true}')

            raw_subject = f"{settings.subject_prefix}.raw"
            sub = await nc.subscribe(raw_subject, queue="raw")

            async def responder() -> None:  # each request in its own task, as the service does
                async with anyio.create_task_group() as serving:
                    async for msg in sub.messages:
                        serving.start_soon(respond, msg)

            async with anyio.create_task_group() as tg:
                tg.start_soon(responder)
                raw_seconds, raw_latencies = await _drive(nc.request, raw_subject, payloads, concurrency)
                await sub.unsubscribe()
                tg.cancel_scope.cancel()
        finally:
            await conn_pool.close()
    finally:
        await nc.close()
    return CommandsBenchResult(
        commands=commands,
        concurrency=concurrency,
        commands_per_s=round(commands / seconds, 1),
        p50_ms=percentile(latencies, 0.50),
        p99_ms=percentile(latencies, 0.99),
        refused=service.refused,
        events=events,
        baseline_per_s=round(commands / raw_seconds, 1),
        baseline_p50_ms=percentile(raw_latencies, 0.50),
        baseline_p99_ms=percentile(raw_latencies, 0.99),
    )


def format_commands_bench(r: CommandsBenchResult) -> list[str]:
    return [
        f"{r.commands} lead.ingest commands, {r.concurrency} in flight, on real PostgreSQL and NATS",
        f"{'':24}{'touchline':>14}{'raw nats+asyncpg':>20}",
        f"{'commands/s':<24}{r.commands_per_s:>14,.0f}{r.baseline_per_s:>20,.0f}",
        f"{'round trip p50 (ms)':<24}{r.p50_ms:>14.2f}{r.baseline_p50_ms:>20.2f}",
        f"{'round trip p99 (ms)':<24}{r.p99_ms:>14.2f}{r.baseline_p99_ms:>20.2f}",
        f"refused {r.refused}, events appended {r.events}",
    ]
