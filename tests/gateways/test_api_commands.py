"""`POST /api/commands/{name}`: the bus's commands over HTTP, for the bearer token's account only."""

from __future__ import annotations

import uuid
from typing import Any

from actors.campaigns import Campaigns
from events.postgres import PostgresEventStore
from tests.gateways.test_api_core import Core, open_core
from tests.projections.helpers import caught_up

A = uuid.UUID("00000000-0000-4000-8000-0000000000f1")
B = uuid.UUID("00000000-0000-4000-8000-0000000000f2")
CREATE = {"campaign_key": "autos_outbound_miami", "name": "Autos Miami", "steps": [{"step": 1, "channel": "sms"}]}


async def log_size(store: PostgresEventStore) -> int:
    return int(await store.pool.fetchval("select count(*) from touchline.events"))


async def post(core: Core, name: str, token: str, body: Any, key: str | None = None) -> tuple[int, dict[str, Any]]:
    await caught_up(core.store, core.workers)  # the token's read model knows it
    headers = {"Authorization": f"Bearer {token}", **({"Idempotency-Key": key} if key else {})}
    kwargs: dict[str, Any] = {"data": body} if isinstance(body, bytes) else {"json": body}
    async with core.session.post(f"/api/commands/{name}", headers=headers, **kwargs) as response:
        answer = await response.json()
        assert isinstance(answer, dict)
        return response.status, answer


async def test_a_command_over_http_answers_with_its_events_and_a_retry_with_its_key_acts_once(
    pg_store: PostgresEventStore,
) -> None:
    async with open_core(pg_store) as core:
        token = await core.token(A)
        key = "crm-sync-2026-12-01-0001"  # any text: the command id is derived from it
        status, first = await post(core, "campaign.create", token, {**CREATE, "activate": True}, key)
        assert status == 200 and first["ok"] and not first["replayed"], first
        assert [e["type"] for e in first["events"]] == ["CampaignCreated", "CampaignActivated"]
        before = await log_size(pg_store)
        status, again = await post(core, "campaign.create", token, {**CREATE, "activate": True}, key)
        assert status == 200 and again["replayed"] and again["events"] == first["events"]
        assert again["command_id"] == first["command_id"]
        assert await log_size(pg_store) == before
        status, other = await post(core, "campaign.create", token, {**CREATE, "campaign_key": "autos_dos"})
        assert status == 200 and other["command_id"] != first["command_id"]  # no key: a command of its own
    campaign = uuid.UUID(first["result"]["campaign_id"])
    assert (await Campaigns(pg_store).get(A, campaign)).is_active


async def test_refusals_are_4xx_naming_the_problem_and_another_accounts_things_are_not_found(
    pg_store: PostgresEventStore,
) -> None:
    async with open_core(pg_store) as core:
        mine, theirs = await core.token(A), await core.token(B)
        status, created = await post(core, "campaign.create", mine, CREATE)
        assert status == 200
        before = await log_size(pg_store)
        campaign = created["result"]["campaign_id"]
        status, answer = await post(core, "campaign.pause", theirs, {"campaign_id": campaign})
        assert status == 404 and answer["field"] == "campaign_id" and "no campaign" in answer["error"]
        cases: list[tuple[str, Any, str]] = [
            ("campaign.explode", {}, "unknown command 'campaign.explode'"),
            ("campaign.create", b"{oops", "not a JSON object"),
            ("campaign.create", {**CREATE, "name": "a\u0000b"}, "NUL"),
            ("campaign.create", {**CREATE, "colour": "red"}, "unknown field `colour`"),
            ("lead.ingest", {"source": "web", "external_id": "1", "phone": "12"}, "E.164"),
        ]
        for name, body, message in cases:
            status, answer = await post(core, name, mine, body)
            assert status == 400 and not answer["ok"] and message in answer["error"], (name, answer)
        assert await log_size(pg_store) == before
        async with core.session.post("/api/commands/campaign.pause", json={"campaign_id": campaign}) as response:
            assert response.status == 401  # a bearer route like every other
