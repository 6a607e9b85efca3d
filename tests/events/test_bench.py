"""The log benchmark in a short form: every figure is there, and it measured real work."""

from __future__ import annotations

import pytest

from events.bench import run_log_bench
from events.postgres import open_postgres_store
from events.settings import Settings

KEYS = {
    "events",
    "writers",
    "append_events_per_s",
    "append_p50_ms",
    "append_p99_ms",
    "group_commit_avg_batch",
    "baseline_executemany_rows_per_s",
    "read_first_pass_events_per_s",
    "read_events_per_s",
    "read",
    "relay_events_per_s",
    "relayed",
    "baseline_publish_per_s",
    "relay_vs_publish",
}


@pytest.mark.slow
async def test_the_log_benchmark_measures_appends_reads_and_the_relay(
    database_url: str, nats_url: str, settings: Settings
) -> None:
    result = await run_log_bench(database_url, nats_url, settings, events=2000, writers=16)
    assert set(result) == KEYS
    assert result["events"] == 2000
    assert all(result[k] > 0 for k in KEYS)
    assert result["read"] == result["relayed"] == 2000
    assert result["group_commit_avg_batch"] > 1  # appends really were merged
    async with open_postgres_store(database_url) as store:
        assert await store.head_position() >= 2000
        report = await store.verify()
        assert report.ok
        assert report.events_checked == 2000
        assert report.streams_checked == 16
        assert await store.stream_version("touch-bench3") == 125
