"""The Programs API over a realistic history: counts, status, top errors, events, next actions, start/stop."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any, Literal
from uuid import UUID

import msgspec

from actors.org import OrgSettings
from actors.programs import Programs
from events.catalog import (
    CrawlTaskClaimed,
    CrawlTaskCompleted,
    CrawlTaskEnqueued,
    CrawlTaskFailed,
    Event,
    LeadgenRouting,
    LeadIngested,
    ProgramStarted,
    crawl_task_stream,
    lead_stream,
    program_stream,
)
from events.postgres import PostgresEventStore
from events.store import NO_STREAM
from gateways.api_programs import HUNTER_GRACE_S, Situation, next_action
from tests.gateways.test_http import open_api

A = uuid.UUID("00000000-0000-4000-8000-0000000000f1")
B = uuid.UUID("00000000-0000-4000-8000-0000000000f2")
C = uuid.UUID("00000000-0000-4000-8000-0000000000f3")
LEASE = datetime(2030, 1, 1, tzinfo=UTC)


async def routed(store: PostgresEventStore, account_id: UUID, *, active: bool = True) -> None:
    org = OrgSettings(store)
    await org.update(account_id, business_name="Miami Motors", contact_email="sales@miamimotors.com")
    await org.set_routing(account_id, LeadgenRouting(dealer_address="1 Biscayne Blvd", radius_miles=20, active=active))


async def started(store: PostgresEventStore, account_id: UUID, city: str, program: str = "craigslist") -> None:
    event = ProgramStarted(account_id=account_id, program_key=program, city=city, started_by="test")
    await store.append(program_stream(account_id, program, city), [event], expected_version=NO_STREAM)


async def task(
    store: PostgresEventStore,
    account_id: UUID,
    city: str,
    outcome: Literal["queued", "claimed", "done", "failed"],
    *,
    task_type: Literal["discover", "detail"] = "detail",
    error: tuple[str, str] | None = None,
    lead: bool = False,
    source: str = "craigslist",
) -> UUID:
    """A task's whole history so far, appended as the hunter would have."""
    task_id = uuid.uuid4()
    posting = str(task_id.int)[:10]
    events: list[Event] = [
        CrawlTaskEnqueued(
            task_id=task_id, account_id=account_id, task_type=task_type, city=city, source=source,
            posting_id=posting if task_type == "detail" else None,
        )
    ]  # fmt: skip
    if outcome != "queued":
        events.append(
            CrawlTaskClaimed(task_id=task_id, account_id=account_id, claimed_by="hunter-1", lease_until=LEASE)
        )
    lead_id = uuid.uuid4()
    if outcome == "done":
        events.append(
            CrawlTaskCompleted(task_id=task_id, account_id=account_id, found=3, lead_id=lead_id if lead else None)
        )
    if outcome == "failed":
        kind, message = error or ("timeout", "page did not load in 30 s")
        events.append(
            CrawlTaskFailed(
                task_id=task_id, account_id=account_id, error_kind=kind, last_error=message,
                screenshot_path=f"/evidence/{task_id}.png", html_path=f"/evidence/{task_id}.html",
            )
        )  # fmt: skip
    await store.append(crawl_task_stream(task_id), events, expected_version=NO_STREAM)
    if lead:
        ingested = LeadIngested(
            lead_id=lead_id, account_id=account_id, source=source, external_id=posting, city=city, phone="+13055550100"
        )
        await store.append(lead_stream(lead_id), [ingested], expected_version=NO_STREAM)
    return task_id


async def history(store: PostgresEventStore) -> dict[str, UUID]:
    """Account A: Miami live (a lead), Tampa degraded (captcha blocks), Orlando just started."""
    await routed(store, A)
    await started(store, A, "miami")
    ids = {
        "miami_discover": await task(store, A, "miami", "done", task_type="discover"),
        "miami_lead": await task(store, A, "miami", "done", lead=True),
        "miami_blocked": await task(store, A, "miami", "failed", error=("blocked", "403 from craigslist")),
        "miami_queued": await task(store, A, "miami", "queued"),
    }
    await started(store, A, "tampa")
    ids["tampa_captcha_1"] = await task(store, A, "tampa", "failed", error=("captcha", "hCaptcha on the search page"))
    ids["tampa_timeout"] = await task(store, A, "tampa", "failed")
    ids["tampa_captcha_2"] = await task(store, A, "tampa", "failed", error=("captcha", "hCaptcha again"))
    await started(store, A, "orlando")
    ids["orlando_discover"] = await task(store, A, "orlando", "queued", task_type="discover")
    return ids


def cities_of(listing: dict[str, Any], key: str) -> dict[str, dict[str, Any]]:
    (program,) = [p for p in listing["programs"] if p["key"] == key]
    return {c["city"]: c for c in program["cities"]}


async def test_list_shows_every_program_with_its_cities_and_health(pg_store: PostgresEventStore) -> None:
    await history(pg_store)
    async with open_api(pg_store) as api:
        token = await api.token(A)
        status, listing = await api.call("GET", "/api/programs/list", token)
    assert status == 200
    assert [p["key"] for p in listing["programs"]] == ["craigslist", "encuentra24"]
    encuentra24 = listing["programs"][1]
    assert encuentra24 == {"key": "encuentra24", "running": False, "status": "Disabled", "cities": []}
    craigslist = listing["programs"][0]
    assert craigslist["running"] and craigslist["status"] == "Live"
    cities = cities_of(listing, "craigslist")
    assert list(cities) == ["miami", "orlando", "tampa"]
    miami = cities["miami"]
    assert miami["status"] == "Live" and miami["running"] and miami["routing_active"]
    assert (miami["tasks_60m"], miami["done_60m"], miami["failed_60m"], miami["leads_24h"]) == (4, 2, 1, 1)
    assert datetime.fromisoformat(miami["last_success_at"]).tzinfo is not None
    assert miami["last_success_at"].endswith("Z")
    assert cities["tampa"]["status"] == "Degraded" and cities["tampa"]["failed_60m"] == 3
    assert cities["orlando"]["status"] == "Pending" and cities["orlando"]["last_success_at"] is None


async def test_detail_of_a_live_city(pg_store: PostgresEventStore) -> None:
    ids = await history(pg_store)
    async with open_api(pg_store) as api:
        token = await api.token(A)
        status, miami = await api.call("GET", "/api/programs/craigslist:miami", token)
        assert (await api.call("GET", "/api/programs/craigslist?city=Miami", token)) == (200, miami)
    assert status == 200 and miami["key"] == "craigslist" and miami["city"] == "miami"
    health = miami["health"]
    assert health["routing_active"] and health["running"] and health["status"] == "Live"
    assert health["worker_health"] == {"queued_15m": 1, "claimed_15m": 0, "done_15m": 2, "failed_15m": 1}
    throughput = miami["throughput"]
    assert throughput["tasks_60m_by_status"] == {"done": 2, "failed": 1, "queued": 1}
    assert throughput["tasks_60m_by_type_status"] == [
        {"task_type": "detail", "status": "done", "n": 1},
        {"task_type": "discover", "status": "done", "n": 1},
        {"task_type": "detail", "status": "failed", "n": 1},
        {"task_type": "detail", "status": "queued", "n": 1},
    ]
    (blocked,) = throughput["top_errors"]
    blocked_id = ids["miami_blocked"]
    assert blocked["error_kind"] == "blocked" and blocked["n"] == 1 and blocked["last_error"] == "403 from craigslist"
    assert blocked["screenshot_path"] == f"/evidence/{blocked_id}.png"
    assert blocked["html_path"] == f"/evidence/{blocked_id}.html"
    output = miami["output"]
    assert (output["leads_60m"], output["leads_24h"]) == (1, 1)
    today = datetime.now(UTC).date().isoformat()
    assert output["ssv"] == [{"day": today, "city": "miami", "leads": 1}]
    assert miami["next_action"] == {"code": "none", "text": "Running: 1 leads in the last 60 minutes"}

    events = miami["events"]
    assert len(events) == 11  # started, 3 tasks x enqueued/claimed/ended, one queued
    assert [e["position"] for e in events] == sorted((e["position"] for e in events), reverse=True)
    assert events[-1]["type"] == "ProgramStarted" and events[-1]["task_id"] is None
    assert events[-1]["data"]["city"] == "miami"
    by_task = {e["task_id"] for e in events if e["task_id"]}
    assert by_task == {str(ids[k]) for k in ids if k.startswith("miami")}
    failed = next(e for e in events if e["type"] == "CrawlTaskFailed")
    assert failed["task_id"] == str(blocked_id) and failed["task_type"] == "detail"
    assert failed["data"]["error_kind"] == "blocked"


async def test_detail_of_a_degraded_city_and_of_the_whole_program(pg_store: PostgresEventStore) -> None:
    await history(pg_store)
    async with open_api(pg_store) as api:
        token = await api.token(A)
        _, tampa = await api.call("GET", "/api/programs/craigslist:tampa", token)
        _, orlando = await api.call("GET", "/api/programs/craigslist:orlando", token)
        _, houston = await api.call("GET", "/api/programs/craigslist:houston", token)
        status, program = await api.call("GET", "/api/programs/craigslist", token)
    assert tampa["health"]["status"] == "Degraded"
    errors = tampa["throughput"]["top_errors"]
    assert [(e["error_kind"], e["n"]) for e in errors] == [("captcha", 2), ("timeout", 1)]
    assert errors[0]["last_error"] == "hCaptcha again"
    action = tampa["next_action"]
    assert action["code"] == "check_blocks"
    assert "captcha" in action["text"] and errors[0]["screenshot_path"] in action["text"]
    assert errors[0]["html_path"] in action["text"]
    assert tampa["output"] == {"leads_60m": 0, "leads_24h": 0, "ssv": []}

    # Orlando: its first discover was queued a moment ago; a hunter gets a minute before it is missed.
    assert orlando["health"]["status"] == "Pending" and orlando["next_action"]["code"] == "wait"
    # Houston was never started: nothing to report, and the way to start it.
    assert houston["health"]["status"] == "Disabled" and not houston["health"]["running"]
    assert houston["cities"] == [] and houston["events"] == []
    assert houston["next_action"]["code"] == "start_program"
    assert "--city houston" in houston["next_action"]["text"]
    assert "prende craigslist houston" in houston["next_action"]["text"]

    assert status == 200 and program["city"] is None
    assert [c["city"] for c in program["cities"]] == ["miami", "orlando", "tampa"]
    assert program["health"]["status"] == "Live"
    assert program["throughput"]["tasks_60m_by_status"] == {"done": 2, "failed": 4, "queued": 2}
    # Most frequent first; ties: the latest failure first.
    assert [e["error_kind"] for e in program["throughput"]["top_errors"]] == ["captcha", "timeout", "blocked"]
    # The last 20 events of every task stream and program stream of Craigslist, newest first.
    positions = [e["position"] for e in program["events"]]
    expected = await pg_store.pool.fetch(
        "select position from touchline.events where stream_id like 'crawl_task-%' or stream_id like 'program-%' "
        "order by position desc limit 20"
    )
    assert positions == [r["position"] for r in expected]


async def test_next_action_asks_for_routing_first(pg_store: PostgresEventStore) -> None:
    async with open_api(pg_store) as api:
        token = await api.token(C)
        _, detail = await api.call("GET", "/api/programs/craigslist:miami", token)
        assert detail["next_action"]["code"] == "enable_routing"
        assert "--dealer-address" in detail["next_action"]["text"] and str(C) in detail["next_action"]["text"]
        await routed(pg_store, C, active=False)
        _, detail = await api.call("GET", "/api/programs/craigslist:miami", token)
    action = detail["next_action"]
    assert action["code"] == "enable_routing" and "--routing-active" in action["text"]
    assert "--dealer-address" not in action["text"]


def test_next_action_blames_a_missing_hunter_for_a_queue_nobody_takes() -> None:
    situation = Situation(
        account_id=A, program_key="craigslist", city="miami", routing_active=True, routing_configured=True,
        running=True, routing_override=False, status="Pending", tasks_60m=1, queued=1, claimed=0, worked_15m=0,
        oldest_queued_s=HUNTER_GRACE_S + 1, leads_60m=0, top_error=None,
    )  # fmt: skip
    action = next_action(situation)
    assert action.code == "start_hunter" and "touchline up" in action.text and "--role hunter" in action.text
    assert next_action(msgspec.structs.replace(situation, oldest_queued_s=1.0)).code == "wait"
    assert next_action(msgspec.structs.replace(situation, worked_15m=1)).code == "wait"
    # Running, and no task at all in an hour: the hunter queues the discovers, so it is not running.
    quiet = msgspec.structs.replace(situation, status="Disabled", tasks_60m=0, queued=0, oldest_queued_s=None)
    assert next_action(quiet).code == "start_hunter"
    # Started with the routing override: routing off does not stop it.
    assert next_action(msgspec.structs.replace(situation, routing_active=False, routing_override=True)).code == (
        "start_hunter"
    )


async def test_accounts_see_and_touch_only_their_own_programs(pg_store: PostgresEventStore) -> None:
    await history(pg_store)
    async with open_api(pg_store) as api:
        token_b = await api.token(B)
        _, listing = await api.call("GET", "/api/programs/list", token_b)
        assert all(p["cities"] == [] and p["status"] == "Disabled" for p in listing["programs"])
        _, miami = await api.call("GET", "/api/programs/craigslist:miami", token_b)
        assert miami["throughput"]["tasks_60m_by_status"] == {} and miami["throughput"]["top_errors"] == []
        assert miami["events"] == [] and miami["output"]["leads_24h"] == 0
        assert miami["health"]["worker_health"] == {"queued_15m": 0, "claimed_15m": 0, "done_15m": 0, "failed_15m": 0}
        status, stopped = await api.call("POST", "/api/programs/craigslist/stop", token_b, body={"city": "miami"})
        assert status == 200 and stopped["outcome"] == "not_running"
        assert (await Programs(pg_store).get(A, "craigslist", "miami")).running
        token_a = await api.token(A)
        _, mine = await api.call("GET", "/api/programs/craigslist:miami", token_a)
    assert mine["health"]["running"] and mine["throughput"]["tasks_60m_by_status"]["done"] == 2


async def log_length(store: PostgresEventStore) -> int:
    return int(await store.pool.fetchval("select count(*) from touchline.events"))


async def test_start_needs_routing_or_the_override_then_confirmation_and_stop_cancels(
    pg_store: PostgresEventStore,
) -> None:
    async with open_api(pg_store) as api:
        token = await api.token(C)
        before = await log_length(pg_store)
        status, result = await api.call("POST", "/api/programs/craigslist/start", token, body={"city": "Miami"})
        assert status == 412 and result["outcome"] == "needs_setup" and "routing" in result["message"]
        assert await log_length(pg_store) == before

        body = {"city": "miami", "override_routing": True}
        status, result = await api.call("POST", "/api/programs/craigslist/start", token, body=body)
        assert status == 200 and result["outcome"] == "started" and result["city"] == "miami"
        first = result["discover_task_id"]
        program = await Programs(pg_store).get(C, "craigslist", "miami")
        assert program.running and program.routing_override
        _, detail = await api.call("GET", "/api/programs/craigslist:miami", token)
        assert detail["health"]["routing_active"] is False and detail["next_action"]["code"] == "wait"
        assert detail["throughput"]["tasks_60m_by_status"] == {"queued": 1}
        assert detail["events"][0]["type"] == "CrawlTaskEnqueued" and detail["events"][0]["task_id"] == first

        before = await log_length(pg_store)
        status, result = await api.call("POST", "/api/programs/craigslist:miami/start", token, body=body)
        assert status == 409 and result["outcome"] == "needs_confirmation"
        assert await log_length(pg_store) == before
        status, result = await api.call(
            "POST", "/api/programs/craigslist:miami/start", token, body=body | {"confirm": True}
        )
        assert status == 200 and result["outcome"] == "discover_queued"
        second = result["discover_task_id"]

        status, result = await api.call("POST", "/api/programs/craigslist:miami/stop", token)
        assert status == 200 and result["outcome"] == "stopped"
        assert sorted(result["cancelled_tasks"]) == sorted([first, second])
        _, detail = await api.call("GET", "/api/programs/craigslist:miami", token)
    assert not detail["health"]["running"]
    assert detail["throughput"]["tasks_60m_by_status"] == {"cancelled": 2}
    # One atomic append: the stop, then the cancellations.
    assert [e["type"] for e in detail["events"][:3]] == ["CrawlTaskCancelled", "CrawlTaskCancelled", "ProgramStopped"]
    assert detail["next_action"]["code"] == "enable_routing"  # stopped, and routing is still off


async def test_bad_requests_name_the_problem(pg_store: PostgresEventStore) -> None:
    async with open_api(pg_store) as api:
        token = await api.token(A)
        start = "/api/programs/craigslist/start"
        status, body = await api.call("POST", start, token, raw=b"{city: miami")
        assert status == 400 and "not valid JSON" in body["error"]
        status, body = await api.call("POST", start, token, body={"city": "miami", "force": True})
        assert status == 400 and body["field"] == "force" and "unknown field" in body["error"]
        status, body = await api.call("POST", start, token, body={"city": "miami", "confirm": "yes"})
        assert status == 400 and body["field"] == "confirm" and "bool" in body["error"]
        status, body = await api.call("POST", start, token, raw=b"[]")
        assert status == 400 and "object" in body["error"]
        status, body = await api.call("POST", start, token, body={})
        assert status == 400 and body["field"] == "city" and "required" in body["error"]
        status, body = await api.call("POST", start, token, body={"city": "Mi@mi"})
        assert status == 400 and body["field"] == "city" and "'Mi@mi' is not a city name" in body["error"]
        status, body = await api.call("POST", "/api/programs/craigslist:miami/stop", token, body={"city": "tampa"})
        assert status == 400 and body["field"] == "city" and "more than one city" in body["error"]
        for method, path in (
            ("GET", "/api/programs/facebook"),
            ("GET", "/api/programs/facebook:miami"),
            ("POST", "/api/programs/facebook/start"),
        ):
            status, body = await api.call(method, path, token, body={"city": "miami"} if method == "POST" else None)
            assert status == 404 and "craigslist, encuentra24" in body["error"] and body["field"] == "key", path
        assert await log_length(pg_store) == 1  # the token alone: nothing was started
