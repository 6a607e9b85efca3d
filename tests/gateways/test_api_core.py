"""The core API over real PostgreSQL: campaigns, leads, settings, runtime status, next actions, the audit
log, metrics, health and the OpenAI environment, each for the token's account and never another's."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import AsyncIterator, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

import aiohttp
import msgspec
from aiohttp import web

from actors.access import ApiTokens
from actors.campaigns import Campaigns, StepSpec
from events.catalog import (
    Event,
    LeadIngested,
    LeadReplied,
    LeadStateChanged,
    LeadStatusChanged,
    LeadSuppressed,
    TouchRunDispatched,
    TouchRunFailed,
    TouchRunScheduled,
    campaign_stream,
    lead_stream,
    org_stream,
    touch_stream,
)
from events.postgres import PostgresEventStore
from events.settings import Settings
from events.store import NO_STREAM
from gateways import api_core
from gateways.http import create_app
from projections.runner import ProjectionWorker
from tests.projections.helpers import caught_up, every_projection, running

A = uuid.UUID("00000000-0000-4000-8000-0000000000d1")
B = uuid.UUID("00000000-0000-4000-8000-0000000000d2")

Params = Sequence[tuple[str, str | int]] | dict[str, str | int]


class Core:
    """The served app with every read model kept up to date, and a client for it."""

    def __init__(self, store: PostgresEventStore, session: aiohttp.ClientSession, workers: list[ProjectionWorker]):
        self.store = store
        self.session = session
        self.workers = workers

    async def token(self, account_id: UUID) -> str:
        _, token = await ApiTokens(self.store).issue(account_id, "core")
        return token

    async def request(
        self,
        method: str,
        path: str,
        token: str | None = None,
        *,
        body: Any = None,
        raw: bytes | None = None,
        params: Params | None = None,
    ) -> tuple[int, str, bytes]:
        """Status, content type and body, the read models caught up first."""
        await caught_up(self.store, self.workers)
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        data = raw if raw is not None else (msgspec.json.encode(body) if body is not None else None)
        async with self.session.request(method, path, headers=headers, data=data, params=params) as response:
            return response.status, response.headers.get("Content-Type", ""), await response.read()

    async def call(
        self,
        method: str,
        path: str,
        token: str | None = None,
        *,
        body: Any = None,
        raw: bytes | None = None,
        params: Params | None = None,
    ) -> tuple[int, Any]:
        status, content_type, payload = await self.request(method, path, token, body=body, raw=raw, params=params)
        assert content_type.startswith("application/json"), payload
        return status, msgspec.json.decode(payload)

    async def ok(self, method: str, path: str, token: str, **kwargs: Any) -> Any:
        status, body = await self.call(method, path, token, **kwargs)
        assert status in (200, 201), body
        return body

    async def pages(self, path: str, token: str, key: str, params: dict[str, str | int]) -> list[dict[str, Any]]:
        """Every item, page by page until `next_offset` is null; each page starts where the last ended."""
        items: list[dict[str, Any]] = []
        offset = 0
        while True:
            page = await self.ok("GET", path, token, params={**params, "offset": offset})
            assert page["offset"] == offset and len(page[key]) <= page["limit"]
            items.extend(page[key])
            if page["next_offset"] is None:
                return items
            assert page["next_offset"] == offset + page["limit"] == offset + len(page[key])
            offset = page["next_offset"]


@contextlib.asynccontextmanager
async def open_core(store: PostgresEventStore, env: dict[str, str] | None = None) -> AsyncIterator[Core]:
    env = {} if env is None else env
    app = create_app(store, Settings(), env)
    api_core.add_routes(app, env)  # a no-op when create_app has added them already
    app[api_core.ENV] = env  # whoever added the routes, this test's environment
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0)
    async with running(store, every_projection()) as workers:
        await runner.setup()
        try:
            site = web.TCPSite(runner, "127.0.0.1", 0)
            await site.start()
            port = runner.addresses[0][1]
            async with aiohttp.ClientSession(f"http://127.0.0.1:{port}") as session:
                yield Core(store, session, workers)
        finally:
            await runner.cleanup()


# --- history -------------------------------------------------------------------------------------------


async def lead(
    store: PostgresEventStore,
    account_id: UUID,
    n: int,
    *,
    source: str = "craigslist",
    phone: str | None = "+13055550100",
) -> UUID:
    lead_id = uuid.uuid4()
    ingested = LeadIngested(
        lead_id=lead_id, account_id=account_id, source=source, external_id=f"{source}-{n}-{lead_id.hex[:8]}",
        city="miami", title=f"2015 Toyota Corolla #{n}", phone=phone, attributes={"year": "2015"},
    )  # fmt: skip
    await store.append(lead_stream(lead_id), [ingested], expected_version=NO_STREAM)
    return lead_id


async def more(store: PostgresEventStore, lead_id: UUID, *events: Event) -> None:
    await store.append(lead_stream(lead_id), list(events))


async def campaign(store: PostgresEventStore, account_id: UUID, key: str, *, active: bool = False) -> UUID:
    campaigns = Campaigns(store)
    created = await campaigns.create(
        account_id, campaign_key=key, name=key.replace("_", " ").title(), steps=[StepSpec(step=1, channel="sms")]
    )
    if active:
        await campaigns.activate(account_id, created.campaign_id)
    return created.campaign_id


async def touch(
    store: PostgresEventStore,
    account_id: UUID,
    lead_id: UUID,
    campaign_id: UUID,
    outcome: str = "scheduled",
    *,
    at: datetime | None = None,
    step: int = 1,
) -> UUID:
    touch_run_id = uuid.uuid4()
    events: list[Event] = [
        TouchRunScheduled(
            touch_run_id=touch_run_id, account_id=account_id, lead_id=lead_id, campaign_id=campaign_id, step=step,
            channel="sms", scheduled_for=at or datetime.now(UTC) + timedelta(hours=1),
        )
    ]  # fmt: skip
    if outcome == "dispatched":
        events.append(TouchRunDispatched(touch_run_id=touch_run_id, account_id=account_id, provider="sandbox"))
    if outcome == "failed":
        events.append(TouchRunFailed(touch_run_id=touch_run_id, account_id=account_id, error="carrier said no"))
    await store.append(touch_stream(touch_run_id), events, expected_version=NO_STREAM)
    return touch_run_id


def without(text: str, *ids: UUID) -> str:
    for ident in ids:
        text = text.replace(str(ident), "<id>")
    return text


# --- campaigns -----------------------------------------------------------------------------------------


async def test_campaigns_are_created_listed_switched_and_all_paused(pg_store: PostgresEventStore) -> None:
    async with open_core(pg_store) as api:
        token = await api.token(A)
        status, created = await api.call(
            "POST",
            "/api/campaigns",
            token,
            body={
                "campaign_key": "autos_miami",
                "name": " Autos Miami ",
                "activate": True,
                "steps": [
                    {"step": 2, "channel": "voice", "delay_minutes": 60},
                    {"step": 1, "channel": "sms", "template": "Hola {name}"},
                ],
            },
        )
        assert status == 201 and created["activated"] is True
        miami = created["campaign"]
        assert miami["campaign_key"] == "autos_miami" and miami["name"] == "Autos Miami"
        assert miami["is_active"] is True and miami["status"] == "active" and miami["version"] == 2
        assert miami["steps"] == [
            {"step": 1, "channel": "sms", "delay_minutes": 0, "template": "Hola {name}"},
            {"step": 2, "channel": "voice", "delay_minutes": 60, "template": None},
        ]
        status, created = await api.call(
            "POST",
            "/api/campaigns",
            token,
            body={
                "campaign_key": "autos_tampa",
                "name": "Autos Tampa",
                "steps": [{"step": 1, "channel": "email"}],
                "allow_concurrent": True,
            },
        )
        tampa = created["campaign"]
        assert status == 201 and created["activated"] is False
        assert tampa["status"] == "paused" and tampa["allow_concurrent"] is True and tampa["version"] == 1

        listing = (await api.ok("GET", "/api/campaigns", token))["campaigns"]
        assert [(c["campaign_key"], c["is_active"], c["status"]) for c in listing] == [
            ("autos_miami", True, "active"),
            ("autos_tampa", False, "paused"),
        ]
        assert listing[0]["campaign_id"] == miami["campaign_id"] and listing[0]["steps"] == miami["steps"]
        assert listing[0]["activated_at"] is not None and listing[1]["activated_at"] is None

        switch = f"/api/campaigns/{tampa['campaign_id']}"
        assert await api.ok("POST", f"{switch}/activate", token) == {
            "campaign_id": tampa["campaign_id"], "changed": True, "is_active": True, "status": "active",
        }  # fmt: skip
        assert (await api.ok("POST", f"{switch}/activate", token))["changed"] is False
        paused = await api.ok("POST", f"/api/campaigns/{miami['campaign_id']}/pause", token, body={"reason": "lunch"})
        assert paused["changed"] is True and paused["status"] == "paused"
        assert (await api.ok("POST", f"/api/campaigns/{miami['campaign_id']}/pause", token))["changed"] is False

        everything = await api.ok("POST", "/api/campaigns/pause-all", token, body={"reason": "storm"})
        assert everything == {"paused": [tampa["campaign_id"]], "count": 1}
        assert await api.ok("POST", "/api/campaigns/pause-all", token) == {"paused": [], "count": 0}
        listing = (await api.ok("GET", "/api/campaigns", token))["campaigns"]
        assert [(c["status"], c["pause_reason"]) for c in listing] == [("paused", "lunch"), ("paused", "storm")]

    history = await pg_store.read_stream(campaign_stream(UUID(tampa["campaign_id"])))
    assert [e.type for e in history] == ["CampaignCreated", "CampaignActivated", "CampaignPaused"]


async def test_a_refused_campaign_is_400_naming_the_field_and_records_nothing(pg_store: PostgresEventStore) -> None:
    good: dict[str, Any] = {
        "campaign_key": "autos_miami",
        "name": "Autos Miami",
        "steps": [{"step": 1, "channel": "sms"}],
    }
    cases: list[tuple[dict[str, Any], str]] = [
        ({**good, "campaign_key": "Autos Miami"}, "campaign_key"),
        ({**good, "name": "   "}, "name"),
        ({**good, "steps": []}, "steps"),
        ({**good, "steps": [{"step": 1, "channel": "fax"}]}, "steps[0].channel"),
        ({**good, "steps": [{"step": 1, "channel": "sms"}, {"step": 0, "channel": "sms"}]}, "steps[1].step"),
        ({**good, "steps": [{"step": 1, "channel": "sms", "delay_minutes": 10**6}]}, "steps[0].delay_minutes"),
        ({**good, "steps": [{"step": 1, "channel": "sms"}, {"step": 1, "channel": "voice"}]}, "steps"),
        ({**good, "colour": "red"}, "colour"),
        ({k: v for k, v in good.items() if k != "campaign_key"}, "campaign_key"),
        ({**good, "activate": "yes"}, "activate"),
        ({**good, "steps": [{"step": "one", "channel": "sms"}]}, "steps"),
    ]
    async with open_core(pg_store) as api:
        token = await api.token(A)
        for body, field in cases:
            status, answer = await api.call("POST", "/api/campaigns", token, body=body)
            assert (status, answer.get("field")) == (400, field), (body, answer)
            assert answer["error"]
        status, answer = await api.call("POST", "/api/campaigns", token, raw=b"{not json")
        assert status == 400 and "not valid JSON" in answer["error"]
        assert (await api.ok("GET", "/api/campaigns", token)) == {"campaigns": []}
    assert await pg_store.pool.fetchval("select count(*) from touchline.events where stream_id like 'campaign-%'") == 0


async def test_another_accounts_campaign_is_404_exactly_like_an_unknown_one(pg_store: PostgresEventStore) -> None:
    mine = await campaign(pg_store, A, "autos_miami")
    async with open_core(pg_store) as api:
        theirs = await api.token(B)
        unknown = uuid.uuid4()
        for action in ("activate", "pause"):
            status, other = await api.call("POST", f"/api/campaigns/{mine}/{action}", theirs)
            status_unknown, missing = await api.call("POST", f"/api/campaigns/{unknown}/{action}", theirs)
            assert status == status_unknown == 404
            assert other["field"] == missing["field"] == "campaign_id"
            assert without(other["error"], mine) == without(missing["error"], unknown)
        assert await api.ok("GET", "/api/campaigns", theirs) == {"campaigns": []}
        assert await api.ok("POST", "/api/campaigns/pause-all", theirs) == {"paused": [], "count": 0}
        status, bad = await api.call("POST", "/api/campaigns/not-a-uuid/activate", theirs)
        assert status == 400 and bad["field"] == "campaign_id"
        status, bad = await api.call("POST", f"/api/campaigns/{mine}/pause", theirs, body={"why": "x"})
        assert status == 400 and bad["field"] == "why"
        listing = (await api.ok("GET", "/api/campaigns", await api.token(A)))["campaigns"]
    assert [c["status"] for c in listing] == ["paused"]
    assert len(await pg_store.read_stream(campaign_stream(mine))) == 1


# --- leads ---------------------------------------------------------------------------------------------


async def test_leads_are_paged_newest_first_without_gaps_or_repeats(pg_store: PostgresEventStore) -> None:
    leads = [await lead(pg_store, A, n, source="craigslist" if n % 3 else "encuentra24") for n in range(23)]
    for lead_id in leads[:4]:
        await more(pg_store, lead_id, LeadStatusChanged(lead_id=lead_id, account_id=A, status="qualified"))
    theirs = [await lead(pg_store, B, n) for n in range(4)]
    async with open_core(pg_store) as api:
        token = await api.token(A)
        walked = await api.pages("/api/leads", token, "leads", {"limit": 5})
        rows = await pg_store.pool.fetch(
            "select id from public.leads where account_id = $1 order by created_at desc, id desc", A
        )
        expected = [str(r["id"]) for r in rows]
        assert [item["lead_id"] for item in walked] == expected
        assert sorted(expected) == sorted(str(i) for i in leads)
        created = [datetime.fromisoformat(item["created_at"]) for item in walked]
        assert created == sorted(created, reverse=True)

        first = await api.ok("GET", "/api/leads", token, params={"limit": 5})
        assert (first["total"], first["limit"], first["offset"], first["next_offset"]) == (23, 5, 0, 5)
        last = await api.ok("GET", "/api/leads", token, params={"limit": 5, "offset": 20})
        assert len(last["leads"]) == 3 and last["next_offset"] is None
        beyond = await api.ok("GET", "/api/leads", token, params={"offset": 40})
        assert beyond["leads"] == [] and beyond["next_offset"] is None and beyond["total"] == 23
        everything = await api.ok("GET", "/api/leads", token, params={"status": "", "source": "", "limit": ""})
        assert len(everything["leads"]) == 23 and everything["limit"] == 50 and everything["next_offset"] is None

        lead_row = next(item for item in everything["leads"] if item["lead_id"] == str(leads[5]))
        assert lead_row["attributes"] == {"year": "2015"} and lead_row["invalid_channels"] == []
        assert lead_row["status"] == "new" and lead_row["source"] == "craigslist" and "account_id" not in lead_row

        encuentra24 = await api.pages("/api/leads", token, "leads", {"source": "encuentra24", "limit": 3})
        assert len(encuentra24) == 8 and {item["source"] for item in encuentra24} == {"encuentra24"}
        qualified = await api.ok("GET", "/api/leads", token, params={"status": "qualified"})
        assert {item["lead_id"] for item in qualified["leads"]} == {str(i) for i in leads[:4]}
        both = await api.ok("GET", "/api/leads", token, params={"status": "qualified", "source": "craigslist"})
        assert {item["lead_id"] for item in both["leads"]} == {str(i) for i in leads[1:3]} and both["total"] == 2

        their_walk = await api.pages("/api/leads", await api.token(B), "leads", {"limit": 3})
    assert {item["lead_id"] for item in their_walk} == {str(i) for i in theirs}


async def test_bad_paging_and_filters_are_400_naming_the_parameter(pg_store: PostgresEventStore) -> None:
    cases: list[tuple[str, list[tuple[str, str | int]], str]] = [
        ("/api/leads", [("limit", 0)], "limit"),
        ("/api/leads", [("limit", 201)], "limit"),
        ("/api/leads", [("limit", "abc")], "limit"),
        ("/api/leads", [("limit", "1.5")], "limit"),
        ("/api/leads", [("limit", "1_0")], "limit"),
        ("/api/leads", [("limit", 1), ("limit", 2)], "limit"),
        ("/api/leads", [("offset", -1)], "offset"),
        ("/api/leads", [("offset", "x")], "offset"),
        ("/api/leads", [("offset", 10**12)], "offset"),
        ("/api/leads", [("status", "bogus")], "status"),
        ("/api/leads", [("colour", "red")], "colour"),
        ("/api/next-actions", [("limit", 0)], "limit"),
        ("/api/next-actions", [("limit", 500)], "limit"),
        ("/api/next-actions", [("offset", -3)], "offset"),
        ("/api/next-actions", [("status", "new")], "status"),
        ("/api/audit", [("limit", 0)], "limit"),
        ("/api/audit", [("limit", 501)], "limit"),
        ("/api/audit", [("after", -1)], "after"),
        ("/api/audit", [("after", "x")], "after"),
        ("/api/audit", [("since", "yesterday")], "since"),
        ("/api/audit", [("until", "2025-13-01")], "until"),
        ("/api/audit", [("since", "2025-01-02"), ("until", "2025-01-01")], "until"),
        ("/api/audit", [("correlation_id", "nope")], "correlation_id"),
        ("/api/audit", [("stream", "a"), ("stream", "b")], "stream"),
        ("/api/audit", [("account_id", str(B))], "account_id"),
    ]
    async with open_core(pg_store) as api:
        token = await api.token(A)
        for path, params, field in cases:
            status, answer = await api.call("GET", path, token, params=params)
            assert (status, answer.get("field")) == (400, field), (path, params, answer)
            assert field in answer["error"]
        status, answer = await api.call("GET", "/api/leads/not-a-uuid", token)
        assert (status, answer["field"]) == (400, "lead_id")


async def test_lead_detail_has_next_action_touch_runs_inbox_and_history(pg_store: PostgresEventStore) -> None:
    lead_id = await lead(pg_store, A, 1)
    other = await lead(pg_store, A, 2)
    miami = await campaign(pg_store, A, "autos_miami", active=True)
    sent = await touch(pg_store, A, lead_id, miami, "dispatched", at=datetime.now(UTC) - timedelta(minutes=5))
    follow_up = await touch(pg_store, A, lead_id, miami, step=2)
    await touch(pg_store, A, other, miami)
    await more(pg_store, lead_id, LeadReplied(lead_id=lead_id, account_id=A, channel="sms", body="¿Sigue disponible?"))
    async with open_core(pg_store) as api:
        token = await api.token(A)
        detail = await api.ok("GET", f"/api/leads/{lead_id}", token)
        assert detail["lead"]["lead_id"] == str(lead_id) and detail["lead"]["status"] == "replied"
        assert detail["lead"]["last_reply_channel"] == "sms"
        action = detail["next_action"]
        assert action["next_action"] == "follow_up_reply" and action["recommended_channel"] == "sms"
        assert action["campaign_id"] == str(miami) and action["priority_score"] == 20 + 30 + 10 + 5
        assert [(t["touch_run_id"], t["status"], t["step"]) for t in detail["touch_runs"]] == [
            (str(sent), "dispatched", 1),
            (str(follow_up), "scheduled", 2),
        ]
        assert detail["touch_runs"][0]["provider"] == "sandbox"
        inbox = detail["inbox"]
        assert [(m["direction"], m["channel"]) for m in inbox] == [("outbound", "sms"), ("inbound", "sms")]
        assert inbox[0]["touch_run_id"] == str(sent) and inbox[1]["body"] == "¿Sigue disponible?"
        events = detail["events"]
        assert [(e["type"], e["version"]) for e in events] == [("LeadIngested", 1), ("LeadReplied", 2)]
        assert events[0]["position"] < events[1]["position"]
        assert events[0]["data"]["external_id"].startswith("craigslist-1-")
        assert events[1]["data"]["body"] == "¿Sigue disponible?" and events[1]["recorded_at"].endswith("Z")

        theirs = await api.token(B)
        unknown = uuid.uuid4()
        status, hidden = await api.call("GET", f"/api/leads/{lead_id}", theirs)
        status_unknown, missing = await api.call("GET", f"/api/leads/{unknown}", theirs)
        assert status == status_unknown == 404 and hidden["field"] == missing["field"] == "lead_id"
        assert without(hidden["error"], lead_id) == without(missing["error"], unknown)
        status, mine_unknown = await api.call("GET", f"/api/leads/{unknown}", token)
        assert (status, mine_unknown) == (404, missing)


# --- settings ------------------------------------------------------------------------------------------


async def test_settings_are_read_and_changed_section_by_section(pg_store: PostgresEventStore) -> None:
    async with open_core(pg_store) as api:
        token = await api.token(A)
        fresh = await api.ok("GET", "/api/settings", token)
        assert fresh == {
            "account_id": str(A), "business_name": None, "contact_email": None, "contact_phone": None,
            "contact_whatsapp": None, "vertical": "car_dealer", "leadgen_routing": None, "routing_active": False,
            "daily_caps": {}, "senders": {}, "version": 0,
        }  # fmt: skip
        onboarding = {
            "business_name": "Miami Motors",
            "contact_email": "Sales@MiamiMotors.com",
            "contact_phone": "+1 (305) 555-0100",
            "contact_whatsapp": "+13055550101",
            "vertical": "car_dealer",
            "leadgen_routing": {"dealer_address": "1 Biscayne Blvd", "radius_miles": 20, "city_fallback": "Miami"},
            "daily_caps": {"sms": 200, "voice": 50},
        }
        done = await api.ok("PUT", "/api/settings", token, body=onboarding)
        assert done["business_name"] == "Miami Motors" and done["contact_email"] == "sales@miamimotors.com"
        assert done["contact_phone"] == "+13055550100" and done["contact_whatsapp"] == "+13055550101"
        assert done["leadgen_routing"] == {
            "dealer_address": "1 Biscayne Blvd", "radius_miles": 20, "city_fallback": "miami", "active": False,
        }  # fmt: skip
        assert done["daily_caps"] == {"sms": 200, "voice": 50} and not done["routing_active"]
        assert done["version"] == 3 and await api.ok("GET", "/api/settings", token) == done

        switched = await api.ok("PUT", "/api/settings", token, body={"leadgen_routing": {"active": True}})
        assert switched["routing_active"] and switched["leadgen_routing"]["dealer_address"] == "1 Biscayne Blvd"
        assert switched["leadgen_routing"]["radius_miles"] == 20 and switched["business_name"] == "Miami Motors"
        cleared = await api.ok("PUT", "/api/settings", token, body={"contact_phone": None, "daily_caps": {}})
        assert cleared["contact_phone"] is None and cleared["contact_whatsapp"] == "+13055550101"
        assert cleared["daily_caps"] == {} and cleared["business_name"] == "Miami Motors" and cleared["version"] == 6

        refusals: list[tuple[dict[str, Any], str | None]] = [
            ({"contact_email": "nope"}, "contact_email"),
            ({"contact_phone": "305-555"}, "contact_phone"),
            ({"business_name": ""}, "business_name"),
            ({"vertical": "Car Dealer"}, "vertical"),
            ({"leadgen_routing": {"radius_miles": 99}}, "leadgen_routing.radius_miles"),
            ({"leadgen_routing": {"dealer_address": None}}, "leadgen_routing.dealer_address"),
            ({"daily_caps": {"fax": 5}}, "daily_caps.fax"),
            # The identity would pass, the caps not: neither is recorded.
            ({"business_name": "Renamed Motors", "daily_caps": {"sms": 0}}, "daily_caps.sms"),
            (
                {"business_name": "Renamed Motors", "leadgen_routing": {"radius_miles": 0}},
                "leadgen_routing.radius_miles",
            ),
            ({"colour": "red"}, "colour"),
            ({"leadgen_routing": {"radius": 5}}, "leadgen_routing"),
            ({"daily_caps": {"sms": "lots"}}, "daily_caps"),
            ({}, None),
        ]
        for body, field in refusals:
            status, answer = await api.call("PUT", "/api/settings", token, body=body)
            assert (status, answer.get("field")) == (400, field), (body, answer)
        assert await api.ok("GET", "/api/settings", token) == cleared
        assert len(await pg_store.read_stream(org_stream(A))) == 6

        # The account's own senders (else the deployment's): replaced whole, checked per channel.
        status, answer = await api.call("PUT", "/api/settings", token, body={"senders": {"sms": "305-555"}})
        assert (status, answer["field"]) == (400, "senders.sms") and "E.164" in answer["error"]
        own = await api.ok("PUT", "/api/settings", token, body={"senders": {"sms": "+1 786 555 0142"}})
        assert own["senders"] == {"sms": "+17865550142"} and own["business_name"] == "Miami Motors"

        theirs = await api.token(B)
        assert (await api.ok("GET", "/api/settings", theirs))["business_name"] is None
        status, answer = await api.call("PUT", "/api/settings", theirs, body={"contact_phone": "+13055550199"})
        assert (status, answer["field"]) == (400, "business_name")
        routed = await api.ok("PUT", "/api/settings", theirs, body={"leadgen_routing": {"dealer_address": "2 Main St"}})
        assert routed["leadgen_routing"]["dealer_address"] == "2 Main St" and routed["business_name"] is None


# --- runtime status, next actions ------------------------------------------------------------------------


async def test_runtime_status_per_campaign_of_the_account(pg_store: PostgresEventStore) -> None:
    miami = await campaign(pg_store, A, "autos_miami", active=True)
    tampa = await campaign(pg_store, A, "autos_tampa")
    leads = [await lead(pg_store, A, n) for n in range(3)]
    await touch(pg_store, A, leads[0], miami)
    await touch(pg_store, A, leads[1], miami, "dispatched")
    await touch(pg_store, A, leads[2], tampa, "failed")
    await campaign(pg_store, B, "autos_orlando", active=True)
    async with open_core(pg_store) as api:
        rows = (await api.ok("GET", "/api/runtime-status", await api.token(A)))["campaigns"]
        theirs = (await api.ok("GET", "/api/runtime-status", await api.token(B)))["campaigns"]
    counts = ("touch_runs_24h", "scheduled_24h", "dispatched_24h", "failed_24h", "skipped_24h")
    assert [(r["campaign_id"], r["status"], *(r[c] for c in counts)) for r in rows] == [
        (str(miami), "active", 2, 1, 1, 0, 0),
        (str(tampa), "paused", 1, 0, 0, 1, 0),
    ]
    assert rows[0]["last_touch_run_at"] is not None and rows[0]["campaign_key"] == "autos_miami"
    assert [r["campaign_key"] for r in theirs] == ["autos_orlando"] and theirs[0]["last_touch_run_at"] is None


async def test_next_actions_by_priority_paged(pg_store: PostgresEventStore) -> None:
    miami = await campaign(pg_store, A, "autos_miami", active=True)
    leads = [await lead(pg_store, A, n, phone=None if n == 6 else "+13055550100") for n in range(7)]
    await more(pg_store, leads[0], LeadStateChanged(lead_id=leads[0], account_id=A, lead_state="hot"))
    await more(pg_store, leads[1], LeadReplied(lead_id=leads[1], account_id=A, channel="whatsapp", body="hola"))
    await more(pg_store, leads[2], LeadSuppressed(lead_id=leads[2], account_id=A, reason="STOP"))
    await touch(pg_store, A, leads[3], miami)
    await lead(pg_store, B, 99)
    async with open_core(pg_store) as api:
        token = await api.token(A)
        walked = await api.pages("/api/next-actions", token, "next_actions", {"limit": 2})
    assert sorted(item["lead_id"] for item in walked) == sorted(str(i) for i in leads)
    scores = [item["priority_score"] for item in walked]
    assert scores == sorted(scores, reverse=True)
    by_lead = {UUID(item["lead_id"]): item for item in walked}
    assert (by_lead[leads[0]]["next_action"], by_lead[leads[0]]["priority_score"]) == ("enroll", 75)
    assert (by_lead[leads[1]]["next_action"], by_lead[leads[1]]["priority_score"]) == ("follow_up_reply", 65)
    assert by_lead[leads[1]]["recommended_channel"] == "whatsapp" and by_lead[leads[1]]["status"] == "replied"
    assert (by_lead[leads[2]]["next_action"], by_lead[leads[2]]["priority_score"]) == ("do_not_contact", 0)
    assert walked[-1]["lead_id"] == str(leads[2])
    assert by_lead[leads[3]]["next_action"] == "send_sms" and by_lead[leads[3]]["campaign_id"] == str(miami)
    assert by_lead[leads[6]]["next_action"] == "wait" and by_lead[leads[6]]["phone"] is None
    assert walked[0]["lead_id"] == str(leads[0]) and walked[0]["title"] == "2015 Toyota Corolla #0"


# --- audit ---------------------------------------------------------------------------------------------


async def test_audit_pages_the_accounts_log_by_position_and_filters(pg_store: PostgresEventStore) -> None:
    miami = await campaign(pg_store, A, "autos_miami", active=True)
    tampa = await campaign(pg_store, A, "autos_tampa", active=True)
    paused = await Campaigns(pg_store).pause_all(A)
    leads = [await lead(pg_store, A, n) for n in range(6)]
    await more(pg_store, leads[0], LeadReplied(lead_id=leads[0], account_id=A, channel="sms"))
    their_lead = await lead(pg_store, B, 1)
    await campaign(pg_store, B, "autos_orlando")
    async with open_core(pg_store) as api:
        token = await api.token(A)
        mine = [
            r["position"]
            for r in await pg_store.pool.fetch(
                "select position from touchline.events where account_id = $1 order by position", A
            )
        ]
        walked: list[dict[str, Any]] = []
        after = 0
        while True:
            page = await api.ok("GET", "/api/audit", token, params={"limit": 4, "after": after})
            assert len(page["events"]) <= 4
            walked.extend(page["events"])
            if page["next_after"] is None:
                break
            assert page["next_after"] == page["events"][-1]["position"]
            after = page["next_after"]
        assert [e["position"] for e in walked] == mine  # no gaps, no repeats, log order
        assert len(mine) == 2 * 2 + 2 + 6 + 1 + 1  # campaigns (created, activated), paused, leads, reply, token
        first = walked[0]
        assert set(first) == {
            "position", "stream_id", "version", "event_id", "type", "correlation_id", "causation_id",
            "recorded_at", "data",
        }  # fmt: skip
        assert first["type"] == "CampaignCreated" and first["stream_id"] == campaign_stream(miami)
        assert first["data"]["campaign_key"] == "autos_miami" and first["version"] == 1
        everything = await api.ok("GET", "/api/audit", token)
        assert [e["position"] for e in everything["events"]] == mine and everything["next_after"] is None

        async def audit(*params: tuple[str, str | int]) -> list[dict[str, Any]]:
            page = await api.ok("GET", "/api/audit", token, params=list(params))
            assert page["next_after"] is None
            events: list[dict[str, Any]] = page["events"]
            return events

        stream = await audit(("stream", campaign_stream(tampa)))
        assert [(e["type"], e["version"]) for e in stream] == [
            ("CampaignCreated", 1),
            ("CampaignActivated", 2),
            ("CampaignPaused", 3),
        ]
        typed = await audit(("type", "CampaignPaused"), ("type", "LeadReplied"))
        assert sorted(e["type"] for e in typed) == ["CampaignPaused", "CampaignPaused", "LeadReplied"]
        assert [e["position"] for e in await audit(("type", "CampaignPaused,LeadReplied"))] == [
            e["position"] for e in typed
        ]
        correlated = await audit(("correlation_id", stream[-1]["correlation_id"]))
        assert sorted(UUID(e["data"]["campaign_id"]) for e in correlated) == sorted(paused)
        assert {e["type"] for e in correlated} == {"CampaignPaused"}

        middle = walked[len(walked) // 2]
        since = await audit(("since", middle["recorded_at"]))
        expected = [e["position"] for e in walked if e["recorded_at"] >= middle["recorded_at"]]
        assert [e["position"] for e in since] == expected and middle["position"] in expected
        until = await audit(("until", middle["recorded_at"]))
        assert [e["position"] for e in until] == [e["position"] for e in walked if e["position"] not in expected]
        offset = datetime.fromisoformat(middle["recorded_at"]).astimezone(UTC).isoformat()  # …+00:00
        assert [e["position"] for e in await audit(("since", offset))] == expected
        # `+` unescaped in the query string arrives as a space: still read as the offset it was.
        async with api.session.get(f"/api/audit?since={offset}", headers={"Authorization": f"Bearer {token}"}) as r:
            assert r.status == 200 and [e["position"] for e in (await r.json())["events"]] == expected
        combined = await audit(("type", "LeadIngested"), ("since", middle["recorded_at"]))
        assert [e["position"] for e in combined] == [
            e["position"] for e in walked if e["type"] == "LeadIngested" and e["position"] in expected
        ]
        assert await audit(("since", "2999-01-01")) == []

        # Nothing of another account, even by its stream or its correlation id.
        assert await audit(("stream", lead_stream(their_lead))) == []
        their_correlation = (await pg_store.read_stream(lead_stream(their_lead)))[0].correlation_id
        assert await audit(("correlation_id", str(their_correlation))) == []
        theirs = await api.ok("GET", "/api/audit", await api.token(B))
        assert {e["stream_id"] for e in theirs["events"]} >= {lead_stream(their_lead)}
        assert not {e["position"] for e in theirs["events"]} & set(mine)


# --- health, metrics, debug ----------------------------------------------------------------------------


async def test_healthz_answers_like_health_with_a_token(pg_store: PostgresEventStore) -> None:
    async with open_core(pg_store) as api:
        token = await api.token(A)
        assert await api.call("GET", "/healthz", token) == (200, {"status": "ok", "database": "ok"})
        assert await api.call("GET", "/health") == (200, {"status": "ok", "database": "ok"})


async def test_healthz_needs_no_token(pg_store: PostgresEventStore) -> None:
    """Public like /health: `http._is_public` lets /healthz through (GET and HEAD)."""
    async with open_core(pg_store) as api:
        assert await api.call("GET", "/healthz") == (200, {"status": "ok", "database": "ok"})
        status, _, _ = await api.request("HEAD", "/healthz")
        assert status == 200
        status, _ = await api.call("POST", "/healthz")
        assert status == 401  # only reading it is public


def samples(text: str) -> dict[str, int]:
    return {
        line.rsplit(" ", 1)[0]: int(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if line and not line.startswith("#")
    }


async def test_metrics_are_prometheus_text(pg_store: PostgresEventStore) -> None:
    miami = await campaign(pg_store, A, "autos_miami", active=True)
    await campaign(pg_store, A, "autos_tampa")
    leads = [await lead(pg_store, A, n) for n in range(3)]
    await touch(pg_store, A, leads[0], miami)
    await touch(pg_store, A, leads[1], miami, "dispatched")
    await touch(pg_store, A, leads[2], miami, "dispatched")
    their_campaign = await campaign(pg_store, B, "autos_orlando", active=True)
    await touch(pg_store, B, await lead(pg_store, B, 1), their_campaign, "failed")
    async with open_core(pg_store) as api:
        token = await api.token(A)
        status, content_type, body = await api.request("GET", "/metrics", token)
        unauthorised, _, _ = await api.request("GET", "/metrics")
    assert status == 200 and unauthorised == 401
    assert content_type.startswith("text/plain") and "version=0.0.4" in content_type
    text = body.decode()
    assert text.endswith("\n")
    for name, kind in (
        ("touchline_events_total", "counter"),
        ("touchline_log_head_position", "gauge"),
        ("touchline_touch_runs", "gauge"),
        ("touchline_leads_total", "counter"),
        ("touchline_campaigns_active", "gauge"),
    ):
        assert f"# TYPE {name} {kind}\n" in text and f"# HELP {name} " in text
    values = samples(text)
    row = await pg_store.pool.fetchrow("select count(*), max(position) from touchline.events")
    assert row is not None
    total, head = row
    assert values["touchline_events_total"] == total and values["touchline_log_head_position"] == head
    assert values["touchline_leads_total"] == 3 and values["touchline_campaigns_active"] == 1
    assert values['touchline_touch_runs{status="scheduled"}'] == 1
    assert values['touchline_touch_runs{status="dispatched"}'] == 2
    assert values['touchline_touch_runs{status="failed"}'] == 0  # B's failure is not A's


async def test_openai_env_says_what_is_set_and_never_the_value(pg_store: PostgresEventStore) -> None:
    secret = "sk-proj-SECRETvalue0123456789abcdef"
    env = {"OPENAI_API_KEY": "   ", "OPEN_AI_KEY": f" {secret}\n", "OPENAI_BASE_URL": "http://10.9.8.7:4000/v1"}
    async with open_core(pg_store, env) as api:
        token = await api.token(A)
        status, content_type, raw = await api.request("GET", "/api/debug/openai-env", token)
        assert status == 200 and content_type.startswith("application/json")
        text = raw.decode()
        for leak in (secret, secret[3:], "SECRET", "10.9.8.7", "4000"):
            assert leak not in text
        described = msgspec.json.decode(raw)
        assert described["key_lookup"] == ["OPENAI_API_KEY", "OPEN_AI_KEY", "OPEN_API_KEY"]
        assert described["key_source"] == "OPEN_AI_KEY"  # the blank OPENAI_API_KEY is passed over
        assert described["variables"] == {
            "OPENAI_API_KEY": {"exists": True, "length": 3, "prefix": None},
            "OPEN_AI_KEY": {"exists": True, "length": len(secret) + 2, "prefix": "sk-"},
            "OPEN_API_KEY": {"exists": False, "length": 0, "prefix": None},
            "OPENAI_BASE_URL": {"exists": True, "length": 23, "prefix": "htt"},
            "OPENAI_TEXT_MODEL": {"exists": False, "length": 0, "prefix": None},
        }

        env.clear()
        env["OPEN_API_KEY"] = "abc12"  # too short for any of it to be shown
        described = await api.ok("GET", "/api/debug/openai-env", token)
        assert described["key_source"] == "OPEN_API_KEY"
        assert described["variables"]["OPEN_API_KEY"] == {"exists": True, "length": 5, "prefix": None}
        env.clear()
        assert (await api.ok("GET", "/api/debug/openai-env", token))["key_source"] is None
        status, _ = await api.call("GET", "/api/debug/openai-env")
        assert status == 401


def test_adding_the_routes_twice_adds_them_once() -> None:
    app = web.Application()
    api_core.add_routes(app, {"OPENAI_API_KEY": "x"})
    routes = len(app.router.routes())
    api_core.add_routes(app, {})
    assert len(app.router.routes()) == routes and app[api_core.ROUTES_ADDED]
    assert app[api_core.ENV] == {"OPENAI_API_KEY": "x"}
    paths = {r.resource.canonical for r in app.router.routes() if r.resource is not None}
    assert {"/api/campaigns", "/api/leads/{lead_id}", "/api/audit", "/metrics", "/healthz"} <= paths
