"""Every verification query of the spec, run unchanged against read models built from a realistic history."""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime
from pathlib import Path

import msgspec
import pytest

from actors.org import OrgSettings
from events.catalog import (
    CrawlTaskClaimed,
    CrawlTaskCompleted,
    CrawlTaskEnqueued,
    CrawlTaskFailed,
    Event,
    LeadgenRouting,
    crawl_task_stream,
)
from events.postgres import PostgresEventStore
from projections.bench import workload
from projections.runner import all_views, rebuild
from tests.projections.helpers import every_projection

LEASE = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)
SPEC = Path(__file__).resolve().parents[3] / "shared" / "spec" / "system-truth.md"
# The one query that is a template: it names the account to enqueue for as '<account_id>'.
PLACEHOLDER = "<account_id>"
ACCOUNT = uuid.UUID("00000000-0000-4000-8000-0000000000b1")


def spec_queries() -> list[str]:
    """Each SQL statement of the spec: from a line starting `select` to the line ending with `;`."""
    queries: list[str] = []
    current: list[str] = []
    for line in SPEC.read_text(encoding="utf-8").splitlines():
        text = line.strip()
        if not current and not text.lower().startswith("select"):
            continue
        current.append(text)
        if text.endswith(";"):
            queries.append("\n".join(current))
            current = []
    return queries


@pytest.fixture
async def history(pg_store: PostgresEventStore) -> dict[str, int]:
    account = ACCOUNT
    org = OrgSettings(pg_store)
    await org.update(account, business_name="Miami Motors", contact_email="sales@miamimotors.com")
    await org.set_routing(account, LeadgenRouting(dealer_address="1 Biscayne Blvd", radius_miles=25, active=True))
    counts = {"LeadIngested": 0, "TouchRunScheduled": 0}
    for appends in workload(6000, seed=3):
        await pg_store.append_many(appends)
        for append in appends:
            for event in append.events:
                name = type(event).__name__
                counts[name] = counts.get(name, 0) + 1
    # The hunter's queue for Miami, as the spec's example shows it: 2 discovers done, detail tasks
    # 32 done, 16 failed, 2 claimed.
    for task_type, outcome, n in (
        ("discover", "done", 2), ("detail", "done", 32), ("detail", "failed", 16), ("detail", "claimed", 2)
    ):  # fmt: skip
        for _ in range(n):
            task_id = uuid.uuid4()
            events: list[Event] = [
                CrawlTaskEnqueued(task_id=task_id, account_id=account, task_type=task_type, city="miami"),  # type: ignore[arg-type]
                CrawlTaskClaimed(task_id=task_id, account_id=account, claimed_by="hunter-1", lease_until=LEASE),
            ]
            if outcome == "done":
                events.append(CrawlTaskCompleted(task_id=task_id, account_id=account, found=1))
            elif outcome == "failed":
                events.append(
                    CrawlTaskFailed(
                        task_id=task_id, account_id=account, error_kind="timeout", last_error="goto timeout"
                    )
                )
            await pg_store.append(crawl_task_stream(task_id), events)
    projections = every_projection()
    await rebuild(pg_store, projections, all_views(projections))
    return counts


def test_the_spec_has_the_queries_this_test_knows() -> None:
    queries = spec_queries()
    assert len(queries) == 15, queries
    assert sum(PLACEHOLDER in q for q in queries) == 1


async def test_every_spec_query_runs_unchanged_with_the_right_answers(
    pg_store: PostgresEventStore, history: dict[str, int]
) -> None:
    answers: dict[str, list[tuple[object, ...]]] = {}
    for query in spec_queries():
        answers[query] = [tuple(r) for r in await pg_store.pool.fetch(query.replace(PLACEHOLDER, str(ACCOUNT)))]

    def answer(fragment: str) -> list[tuple[object, ...]]:
        (found,) = [rows for q, rows in answers.items() if re.search(fragment, q, re.S)]
        return found

    queue = [("claimed", "detail", 2), ("done", "detail", 32), ("done", "discover", 2), ("failed", "detail", 16)]
    assert answer(r"select status, task_type, count\(\*\) as n") == queue
    assert answer(r"where city='miami' and created_at") == queue
    assert answer(r"select status, count\(\*\) as n") == [("claimed", 2), ("done", 34), ("failed", 16)]
    (last_done,) = answer(r"where status='done'\s+order by created_at desc")
    (latest_discover,) = answer(r"task_type='discover' and city='miami'")
    assert latest_discover[1:3] == ("done", None)
    assert last_done[0] >= latest_discover[3]  # type: ignore[operator]
    ((enqueued,),) = answer(r"enqueue_craigslist_discover_v1")
    assert isinstance(enqueued, uuid.UUID)
    (routing,) = answer(r"select leadgen_routing")
    assert isinstance(routing[0], bytes) and msgspec.json.decode(routing[0])["active"] is True
    leads = history["LeadIngested"]
    assert answer(r"leads_last_60m\s+from public.leads\s+where source = 'craigslist'\s+and created_at") == [(leads,)]
    assert answer(r"source='craigslist' and city='miami'") == [(leads,)]  # every generated lead is in Miami
    assert answer(r"select 1\s+from information_schema.views") == [(1,)]
    sample = answer(r"select \*\s+from public.lead_next_action_view_v5")
    assert len(sample) == 5
    assert answer(r"select count\(\*\)\s+from public.campaigns") == [(0,)]  # no mismatches
    assert answer(r"select id, name, is_active, status") == []  # consistency: no rows
    running = history.get("CampaignActivated", 0) - history.get("CampaignPaused", 0)
    assert answer(r"as running") == [(running,)]
    top = answer(r"select lead_id, priority_score, recommended_action, effective_channel")
    assert len(top) == 10
    scores = [int(str(row[1])) for row in top]
    assert scores == sorted(scores, reverse=True) and all(0 <= s <= 100 for s in scores)
    # The runtime status view agrees with the log: every touch run was scheduled within 24 hours.
    total = await pg_store.pool.fetchval("select sum(touch_runs_24h) from public.v_campaign_runtime_status_v1")
    assert total == history["TouchRunScheduled"]
    columns = {
        r["column_name"]
        for r in await pg_store.pool.fetch(
            "select column_name from information_schema.columns where table_name = 'lead_next_action_view_v5'"
        )
    }
    assert {
        "lead_id", "campaign_id", "lead_state", "priority_score", "next_action", "next_action_at",
        "recommended_action", "recommended_delay_minutes", "recommended_channel", "effective_channel",
    } <= columns  # fmt: skip
