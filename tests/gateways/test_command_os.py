"""Command OS over the HTTP API: Spanish and English as operators type it, with and without OpenAI."""

from __future__ import annotations

import contextlib
import json
import uuid
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
from aiohttp import web

from actors.access import ApiTokens
from actors.campaigns import Campaigns, StepSpec
from actors.org import OrgSettings
from events.catalog import LeadgenRouting, LeadIngested, lead_stream
from events.postgres import PostgresEventStore
from events.settings import Settings
from gateways.http import serve_http
from tests.actors.support import events_of
from tests.projections.helpers import caught_up, every_projection, running

ACCOUNT = uuid.UUID("00000000-0000-4000-8000-0000000000c5")


class Console:
    def __init__(self, store: PostgresEventStore, session: aiohttp.ClientSession, token: str, workers: Any) -> None:
        self.store, self.session, self.token, self.workers = store, session, token, workers

    async def ask(self, text: str, **extra: Any) -> dict[str, Any]:
        status, body = await self.post({"text": text, **extra})
        assert status == 200, body
        assert isinstance(body, dict)
        return body

    async def post(
        self, body: Any = None, *, raw: bytes | None = None, token: str | None = "default"
    ) -> tuple[int, Any]:
        await caught_up(self.store, self.workers)
        headers = {"Authorization": f"Bearer {self.token if token == 'default' else token}"} if token else {}
        data = raw if raw is not None else json.dumps(body).encode()
        async with self.session.post("/api/command-os", data=data, headers=headers) as resp:
            return resp.status, await resp.json()


@contextlib.asynccontextmanager
async def console(store: PostgresEventStore, env: dict[str, str] | None = None) -> AsyncIterator[Console]:
    async with (
        running(store, every_projection()) as workers,
        serve_http(store, Settings(), host="127.0.0.1", port=0, env=env or {}) as url,
        aiohttp.ClientSession(url) as session,
    ):
        _, token = await ApiTokens(store).issue(ACCOUNT, "console")
        yield Console(store, session, token, workers)


async def _dealer(store: PostgresEventStore, *, routing: bool) -> None:
    org = OrgSettings(store)
    await org.update(ACCOUNT, business_name="Miami Motors", contact_email="sales@miamimotors.com")
    if routing:
        await org.set_routing(ACCOUNT, LeadgenRouting(dealer_address="1 Biscayne Blvd", radius_miles=20, active=True))
    campaigns = Campaigns(store)
    miami = await campaigns.create(
        ACCOUNT, campaign_key="autos_outbound_miami", name="Autos Miami", steps=[StepSpec(step=1, channel="sms")]
    )
    await campaigns.create(
        ACCOUNT, campaign_key="autos_outbound_tampa", name="Autos Tampa", steps=[StepSpec(step=1, channel="sms")]
    )
    await campaigns.activate(ACCOUNT, miami.campaign_id)


async def test_active_campaigns_answered_by_rules_without_any_model_and_recorded(pg_store: PostgresEventStore) -> None:
    await _dealer(pg_store, routing=False)
    async with console(pg_store) as c:
        answer = await c.ask("¿Qué campañas están activas?")
        english = await c.ask("which campaigns are running now")
    assert answer["intent"] == "campaign.list" and answer["resolved_by"] == "rule" and answer["outcome"] == "ok"
    assert answer["language"] == "es" and "Autos Miami" in answer["reply"] and "Autos Tampa" not in answer["reply"]
    assert [c["campaign_key"] for c in answer["data"]["campaigns"]] == ["autos_outbound_miami"]
    assert english["language"] == "en" and english["reply"].startswith("Active campaigns:")
    [first, _] = await events_of(pg_store, "OperatorCommandReceived")
    assert first.event.text == "¿Qué campañas están activas?" and first.event.intent == "campaign.list"  # type: ignore[attr-defined]
    assert first.event.resolved_by == "rule" and first.event.outcome == "ok"  # type: ignore[attr-defined]
    assert first.account_id == ACCOUNT


async def test_starting_craigslist_needs_routing_then_starts_then_asks_before_a_second_run(
    pg_store: PostgresEventStore,
) -> None:
    await _dealer(pg_store, routing=False)
    async with console(pg_store) as c:
        blocked = await c.ask("prende craigslist miami")
        assert blocked["intent"] == "craigslist.cto.start" and blocked["outcome"] == "needs_setup"
        await OrgSettings(pg_store).set_routing(
            ACCOUNT, LeadgenRouting(dealer_address="1 Biscayne Blvd", radius_miles=20, active=True)
        )
        started = await c.ask("Prende Craigslist Miami, por favor")
        again = await c.ask("prende craigslist miami")
        status = await c.ask("estado de craigslist miami")
        redirected = await c.ask("¿la campaña de craigslist está prendida?")
        stopped = await c.ask("apaga craigslist miami")
    assert started["outcome"] == "started" or started["outcome"] == "ok", started
    assert again["outcome"] == "needs_confirmation" and "confirmo" in again["reply"]
    assert status["intent"] == "program.status" and status["data"]["next_action"]["text"]
    assert redirected["redirected_from"] == "campaign.list" and redirected["intent"].startswith("program.")
    assert stopped["intent"] == "craigslist.cto.stop" and stopped["outcome"] in ("stopped", "ok")


async def test_campaign_toggles_and_pause_all(pg_store: PostgresEventStore) -> None:
    await _dealer(pg_store, routing=True)
    async with console(pg_store) as c:
        on = await c.ask("activa la campaña autos_outbound_tampa")
        missing = await c.ask("pausa la campaña autos_outbound_chicago")
        paused = await c.ask("pausa todas las campañas")
        listed = await c.ask("campañas activas ahora")
    assert on["intent"] == "campaign.toggle" and on["data"] == {
        "campaign_key": "autos_outbound_tampa",
        "is_active": True,
        "changed": True,
    }
    assert missing["outcome"] == "not_found" and "autos_outbound_miami" in missing["reply"]
    assert paused["intent"] == "campaign.toggle.bulk" and len(paused["data"]["paused"]) == 2
    assert listed["data"]["campaigns"] == []
    states = {c.campaign_key: c.is_active for c in await Campaigns(pg_store).all(ACCOUNT)}
    assert states == {"autos_outbound_miami": False, "autos_outbound_tampa": False}


async def test_leads_are_listed_inspected_and_suppressed_by_phone(pg_store: PostgresEventStore) -> None:
    lead = uuid.uuid4()
    ingested = LeadIngested(
        lead_id=lead,
        account_id=ACCOUNT,
        source="craigslist",
        external_id="1",
        city="miami",
        phone="+13055550100",
        title="2014 Toyota Camry",
        name="Ana",
    )
    await pg_store.append(lead_stream(lead), [ingested])
    async with console(pg_store) as c:
        listed = await c.ask("muéstrame los leads nuevos")
        inspected = await c.ask("muéstrame el lead +1 305 555 0100")
        suppressed = await c.ask("no contactes más al +1 (305) 555-0100")
        again = await c.ask("suprime el lead +13055550100")
    assert listed["intent"] == "lead.list" and [x["id"] for x in listed["data"]["leads"]] == [str(lead)]
    assert inspected["intent"] == "lead.inspect" and inspected["data"]["lead_id"] == str(lead)
    assert inspected["data"]["history"][0]["type"] == "LeadIngested"
    assert suppressed["intent"] == "lead.suppress" and suppressed["data"]["changed"] is True
    assert again["data"]["changed"] is False
    assert [e.type for e in await pg_store.read_stream(lead_stream(lead))] == ["LeadIngested", "LeadSuppressed"]


async def test_unknown_phrases_get_what_can_be_asked_and_say_the_rest_needs_the_model(
    pg_store: PostgresEventStore,
) -> None:
    async with console(pg_store) as c:
        answer = await c.ask("¿cuál es la capital de Francia?")
    assert answer["intent"] is None and answer["outcome"] == "unknown" and answer["resolved_by"] == "none"
    assert "prende craigslist miami" in answer["reply"].lower() and "OPENAI_API_KEY" in answer["reply"]


class FakeChat:
    """OpenAI chat completions on a local port: an intent for what rules missed, and phrasing."""

    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        self.status = 200
        self.url = ""
        self._runner: web.AppRunner | None = None

    async def __aenter__(self) -> FakeChat:
        app = web.Application()
        app.router.add_post("/v1/chat/completions", self.complete)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.url = f"http://127.0.0.1:{self._runner.addresses[0][1]}/v1"
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._runner is not None
        await self._runner.cleanup()

    async def complete(self, request: web.Request) -> web.Response:
        body = await request.json()
        self.requests.append(body)
        if request.headers.get("Authorization") != "Bearer sk-chat":
            return web.json_response(
                {"error": {"message": "Incorrect API key", "type": "invalid_request_error"}}, status=401
            )
        if self.status != 200:
            return web.json_response({"error": {"message": "overloaded", "type": "server_error"}}, status=self.status)
        if "response_format" in body:
            content = json.dumps(
                {
                    "intent": "system.status",
                    "params": {"city": None, "program": None, "campaign": None, "lead": None, "active": None},
                }
            )
        else:
            content = "Todo en orden: una campaña activa."
        return web.json_response(
            {
                "id": "chatcmpl-1",
                "object": "chat.completion",
                "model": body["model"],
                "choices": [
                    {"index": 0, "finish_reason": "stop", "message": {"role": "assistant", "content": content}}
                ],
            }
        )


async def test_with_openai_what_rules_miss_goes_to_the_model_and_replies_are_phrased_by_it(
    pg_store: PostgresEventStore,
) -> None:
    await _dealer(pg_store, routing=True)
    async with FakeChat() as chat:
        env = {"OPEN_AI_KEY": " sk-chat ", "OPENAI_BASE_URL": chat.url}  # the spec's fallback name, trimmed
        async with console(pg_store, env) as c:
            guessed = await c.ask("¿qué tal andamos con todo el negocio hoy?")
            ruled = await c.ask("campañas activas")
            chat.status = 503
            down = await c.ask("campañas activas")
            unknown = await c.ask("cuéntame un chiste")
    assert guessed["intent"] == "system.status" and guessed["resolved_by"] == "model"
    assert guessed["phrased_by"] == "model" and guessed["reply"] == "Todo en orden: una campaña activa."
    schema = chat.requests[0]["response_format"]["json_schema"]["schema"]
    assert "campaign.list" in schema["properties"]["intent"]["enum"]
    assert chat.requests[0]["model"] == "gpt-4.1-mini"
    assert ruled["resolved_by"] == "rule" and ruled["phrased_by"] == "model"
    assert down["resolved_by"] == "rule" and down["phrased_by"] == "template" and "Autos Miami" in down["reply"]
    assert unknown["outcome"] == "unknown" and "El modelo no respondió" in unknown["reply"]


async def test_bad_requests_are_4xx_saying_why_and_record_nothing(pg_store: PostgresEventStore) -> None:
    async with console(pg_store) as c:
        cases = [
            ({"text": ""}, None, "text is empty"),
            ({"text": "x" * 2001}, None, "at most 2000"),
            ({"text": 5}, None, "Expected `str`"),
            ({"text": "hola", "admin": True}, None, "unknown field"),
            ({}, None, "missing required field `text`"),
            (None, b"{not json", "not valid JSON"),
        ]
        for body, raw, message in cases:
            status, answer = await c.post(body, raw=raw)
            assert status == 400 and message in answer["error"], (body, raw, answer)
        status, answer = await c.post({"text": "estado del sistema"}, token=None)
        assert status == 401
    assert await events_of(pg_store, "OperatorCommandReceived") == []
