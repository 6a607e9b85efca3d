"""The log benchmark: append, read and relay throughput beside raw asyncpg and raw nats-py."""

from __future__ import annotations

import statistics
import time
import uuid
from datetime import UTC, datetime

import anyio
import asyncpg
import msgspec
from nats.aio.client import Client as NATS

from events.bus import HEADER_POSITION, HEADER_STREAM, HEADER_TYPE, connect, stream_config
from events.catalog import TouchRunScheduled
from events.codec import encode_event
from events.postgres import init_connection, open_postgres_store
from events.relay import OutboxRelay
from events.settings import Settings


def _touch(account: uuid.UUID) -> TouchRunScheduled:
    touch_id = uuid.uuid4()
    return TouchRunScheduled(
        touch_run_id=touch_id,
        account_id=account,
        lead_id=uuid.uuid4(),
        campaign_id=uuid.uuid4(),
        step=1,
        channel="sms",
        scheduled_for=datetime.now(UTC),
    )


async def run_log_bench(
    database_url: str, nats_url: str, settings: Settings, *, events: int = 100_000, writers: int = 64
) -> dict[str, float | int]:
    """Measure on an empty, migrated database and a NATS server; returns the figures."""
    account = uuid.uuid4()
    per_writer = max(1, events // writers)
    total = per_writer * writers
    latencies: list[float] = []
    result: dict[str, float | int] = {"events": total, "writers": writers}

    async with open_postgres_store(database_url, writers=4) as store:
        # 1. Append: one event per append, each checked against the exact stream version. The
        #    events are made beforehand: what is measured is the log, not making test data.
        work = [[_touch(account) for _ in range(per_writer)] for _ in range(writers)]

        async def writer(i: int) -> None:
            stream = f"touch-bench{i}"
            for version, event in enumerate(work[i]):
                started = time.perf_counter()
                await store.append(stream, [event], expected_version=version)
                latencies.append(time.perf_counter() - started)

        started = time.perf_counter()
        async with anyio.create_task_group() as tg:
            for i in range(writers):
                tg.start_soon(writer, i)
        result["append_events_per_s"] = total / (time.perf_counter() - started)
        latencies.sort()
        result["append_p50_ms"] = statistics.median(latencies) * 1000
        result["append_p99_ms"] = latencies[int(len(latencies) * 0.99) - 1] * 1000
        result["group_commit_avg_batch"] = store.requests_committed / max(store.batches_committed, 1)

        # 2. Baseline: raw asyncpg executemany of equivalent rows into a table of the same shape.
        result["baseline_executemany_rows_per_s"] = await _executemany_baseline(database_url, total, account)

        # 3. Read the whole log and decode every event, twice: the first reader of fresh rows also
        #    sets PostgreSQL's hint bits (a commit-status lookup per row), later readers do not.
        for key in ("read_first_pass_events_per_s", "read_events_per_s"):
            started = time.perf_counter()
            read = 0
            async for batch in store.read_all(0, batch_size=5000):
                for env in batch:
                    env.event  # noqa: B018 - decoding is what is measured
                read += len(batch)
            result[key] = read / (time.perf_counter() - started)
        result["read"] = read

        # 4. Relay the whole log to an empty JetStream stream.
        nc = await connect(nats_url, name="touchline-bench")
        try:
            relay = OutboxRelay(store, nc, settings, seal_interval_s=3600)
            head = await store.head_position()
            started = time.perf_counter()
            async with anyio.create_task_group() as tg:
                await tg.start(relay.run)
                await relay.wait_caught_up(head)
                tg.cancel_scope.cancel()
            result["relay_events_per_s"] = relay.stats.published / (time.perf_counter() - started)
            result["relayed"] = relay.stats.published
            payload_size = len(msgspec.json.encode((await store.read_stream("touch-bench0", limit=1))[0]))

            # 5. Baseline: raw nats-py async publishing of as many of the same messages.
            result["baseline_publish_per_s"] = await _publish_baseline(nc, settings, total, payload_size)
        finally:
            js = nc.jetstream()
            await js.delete_stream(settings.stream_name)
            await nc.close()
    result["relay_vs_publish"] = result["relay_events_per_s"] / result["baseline_publish_per_s"]
    return {k: round(v, 3) if isinstance(v, float) else v for k, v in result.items()}


async def _executemany_baseline(database_url: str, total: int, account: uuid.UUID) -> float:
    conn = await asyncpg.connect(database_url)
    await init_connection(conn)
    try:
        await conn.execute(
            "create schema if not exists bench; drop table if exists bench.rows; "
            "create table bench.rows (position bigint generated always as identity primary key, "
            "stream_id text not null, "
            "version bigint not null, event_id uuid not null unique, event_type text not null, account_id uuid, "
            "correlation_id uuid not null, data jsonb not null, recorded_at timestamptz not null, "
            "unique (stream_id, version))"
        )
        now = datetime.now(UTC)
        rows = []
        for i in range(total):
            event_id = uuid.uuid4()
            rows.append((f"touch-bench{i % 64}", i // 64 + 1, event_id, "TouchRunScheduled", account, event_id,
                         encode_event(_touch(account)), now))  # fmt: skip
        started = time.perf_counter()
        for chunk in range(0, total, 1000):
            await conn.executemany(
                "insert into bench.rows (stream_id, version, event_id, event_type, account_id, correlation_id, data, "
                "recorded_at) values ($1, $2, $3, $4, $5, $6, $7, $8)",
                rows[chunk : chunk + 1000],
            )
        rate = total / (time.perf_counter() - started)
        await conn.execute("drop schema bench cascade")
        return rate
    finally:
        await conn.close()


async def _publish_baseline(nc: NATS, settings: Settings, total: int, payload_size: int) -> float:
    js = nc.jetstream(publish_async_max_pending=2000)
    config = stream_config(msgspec.structs.replace(settings, stream_name=settings.stream_name + "_BASELINE"))
    config.subjects = [f"{settings.subject_prefix}baseline.events"]  # same limits, its own subject
    await js.add_stream(config)
    # The same messages the relay sends: same payload size and the same five headers, so the
    # ratio measures the relay's own work (reading the log, ordering, checkpoints), not its format.
    payload = b"x" * payload_size
    ids = [str(uuid.uuid4()) for _ in range(total + 1)]
    started = time.perf_counter()
    for i in range(total):
        headers = {
            "Nats-Msg-Id": ids[i + 1],
            HEADER_POSITION: str(i + 1),
            HEADER_TYPE: "TouchRunScheduled",
            HEADER_STREAM: "touch-bench0",
            "Nats-Expected-Last-Msg-Id": ids[i],
        }
        if i == 0:
            del headers["Nats-Expected-Last-Msg-Id"]
        await js.publish_async(config.subjects[0], payload, headers=headers)
    await js.publish_async_completed()
    rate = total / (time.perf_counter() - started)
    assert config.name is not None
    await js.delete_stream(config.name)
    return rate
