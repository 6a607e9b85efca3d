"""The hunter benchmark in a short form: every figure is there, and it measured real work."""

from __future__ import annotations

import pytest

from actors.hunter_bench import format_hunter_bench, run_hunter_bench
from events.catalog import LeadIngested
from events.postgres import open_postgres_store

pytestmark = pytest.mark.timeout(240)


async def test_the_hunter_benchmark_times_each_context_count_beside_fetch_and_parse(database_url: str) -> None:
    said: list[str] = []
    result = await run_hunter_bench(database_url, postings=6, contexts=(1, 2), progress=said.append)
    assert result.postings == 6
    assert [run.contexts for run in result.runs] == [1, 2]
    for run in result.runs:
        assert (run.details, run.failed, run.leads) == (6, 0, 6)
        assert run.seconds > 0 and run.details_per_min > 0 and run.leads_per_min == run.details_per_min
        # Discover: enqueued, claimed, completed; each detail: enqueued, claimed, completed + its lead.
        assert run.events == 3 + 6 * 4
        assert run.wall_seconds >= run.seconds
    assert result.baseline_pages > 0 and result.baseline_pages % 6 == 0  # whole passes over the postings
    assert result.baseline_fetch_parse_per_min > 0 and result.baseline_fetch_parse_4x_per_min > 0
    assert result.baseline_browser_per_min > 0
    assert result.chromium_version and result.chromium_version[0].isdigit()
    assert any("2 context" in line for line in said)

    async with open_postgres_store(database_url) as store:
        leads = [e.event async for batch in store.read_all(0) for e in batch if isinstance(e.event, LeadIngested)]
    assert len(leads) == 12  # each run its own account: six new leads each
    assert len({lead.account_id for lead in leads if isinstance(lead, LeadIngested)}) == 2

    lines = format_hunter_bench(result)
    assert len(lines) == 2 + len(result.runs) + 3
    assert lines[2].split()[0] == "1" and lines[3].split()[0] == "2"
    assert f"{result.baseline_browser_per_min:,.0f} pages/min" in lines[-3]
    assert f"{result.baseline_fetch_parse_per_min:,.0f} pages/min" in lines[-2]
