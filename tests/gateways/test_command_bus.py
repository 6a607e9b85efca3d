"""Commands on the bus: real NATS requests to the `commands` role, answered with the events they made.

Each test runs the service as `touchline up --role commands` would (through the roles'
supervisor) on the test's own subject prefix, and sends commands the way a service would: a
NATS request with a JSON payload.
"""

from __future__ import annotations

import contextlib
import json
import uuid
from collections.abc import AsyncIterator
from typing import Any

import anyio
import pytest
from nats.aio.client import Client as NATS

from actors.campaigns import Campaigns
from events.postgres import PostgresEventStore
from events.settings import Settings
from gateways.command_bus import CommandService
from gateways.roles import parse_roles, supervise_roles

A = uuid.UUID("00000000-0000-4000-8000-0000000000e1")
B = uuid.UUID("00000000-0000-4000-8000-0000000000e2")


@contextlib.asynccontextmanager
async def commands(store: PostgresEventStore, nc: NATS, settings: Settings) -> AsyncIterator[None]:
    supervisor = supervise_roles(parse_roles("commands"), store=store, nc=nc, settings=settings)
    async with anyio.create_task_group() as tg:
        await tg.start(supervisor.run)
        try:
            yield
        finally:
            await supervisor.stop(2)
            tg.cancel_scope.cancel()


class Bus:
    def __init__(self, nc: NATS, settings: Settings) -> None:
        self.nc, self.prefix = nc, settings.subject_prefix

    async def send(
        self, name: str, payload: dict[str, Any] | bytes, account: uuid.UUID | str = A, **headers: str
    ) -> dict[str, Any]:
        data = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
        reply = await self.nc.request(
            f"{self.prefix}.commands.{account}.{name}", data, timeout=10, headers=headers or None
        )
        answer = json.loads(reply.data)
        assert isinstance(answer, dict)
        return answer


async def log_size(store: PostgresEventStore) -> int:
    return int(await store.pool.fetchval("select count(*) from touchline.events"))


STEPS = [{"step": 1, "channel": "sms"}, {"step": 2, "channel": "email", "delay_minutes": 1440}]


async def test_a_command_is_answered_with_its_events_and_sent_again_is_not_carried_out_twice(
    pg_store: PostgresEventStore, nc: NATS, settings: Settings
) -> None:
    bus = Bus(nc, settings)
    command_id = str(uuid.uuid4())
    create = {"command_id": command_id, "campaign_key": "autos_outbound_miami", "name": "Autos Miami"}
    async with commands(pg_store, nc, settings):
        answer = await bus.send("campaign.create", {**create, "steps": STEPS, "activate": True})
        assert answer["ok"] is True, answer
        assert (answer["command"], answer["command_id"], answer["replayed"]) == ("campaign.create", command_id, False)
        assert answer["result"]["is_active"] is True and answer["result"]["campaign_key"] == "autos_outbound_miami"
        assert [e["type"] for e in answer["events"]] == ["CampaignCreated", "CampaignActivated"]
        campaign_id = answer["result"]["campaign_id"]
        assert {e["stream_id"] for e in answer["events"]} == {f"campaign-{campaign_id}"}
        assert answer["events"][0]["data"]["steps"][1] == {
            "step": 2,
            "channel": "email",
            "delay_minutes": 1440,
            "template": None,
        }
        stored = await pg_store.read_stream(f"campaign-{campaign_id}")
        assert {e.correlation_id for e in stored} == {uuid.UUID(command_id)}

        # The service timed out on the caller, who sends it again: the same answer, nothing new.
        before = await log_size(pg_store)
        again = await bus.send("campaign.create", {**create, "steps": STEPS, "activate": True})
        assert again["ok"] is True and again["replayed"] is True
        assert again["events"] == answer["events"]
        assert await log_size(pg_store) == before

        # The id may come as Nats-Msg-Id instead, as JetStream publishers set it.
        msg_id = str(uuid.uuid4())
        paused = await bus.send("campaign.pause", {"campaign_id": campaign_id}, **{"Nats-Msg-Id": msg_id})
        assert paused["ok"] is True and paused["command_id"] == msg_id and paused["result"] == {"changed": True}
        assert [e["type"] for e in paused["events"]] == ["CampaignPaused"]
        again = await bus.send("campaign.pause", {"campaign_id": campaign_id}, **{"Nats-Msg-Id": msg_id})
        assert again["replayed"] is True and await log_size(pg_store) == before + 1
    state = await Campaigns(pg_store).get(A, uuid.UUID(campaign_id))
    assert not state.is_active


async def test_a_service_ingests_leads_once_per_source_id_and_suppresses_them(
    pg_store: PostgresEventStore, nc: NATS, settings: Settings
) -> None:
    bus = Bus(nc, settings)
    lead = {"source": "website", "external_id": "form-881", "phone": "+13055550123", "name": "Ana", "city": "miami"}
    async with commands(pg_store, nc, settings):
        first = await bus.send("lead.ingest", lead)
        assert first["ok"] is True and first["result"]["created"] is True, first
        [event] = first["events"]
        assert event["type"] == "LeadIngested" and event["data"]["phone"] == "+13055550123"
        second = await bus.send("lead.ingest", {**lead, "name": "Ana María"})  # another command, same lead
        assert second["ok"] is True and second["result"] == {"lead_id": first["result"]["lead_id"], "created": False}
        assert second["events"] == []
        lead_id = first["result"]["lead_id"]
        suppressed = await bus.send("lead.suppress", {"lead_id": lead_id, "reason": "asked by phone not to call"})
        assert suppressed["ok"] is True and suppressed["result"] == {"changed": True}
        assert [e["type"] for e in suppressed["events"]] == ["LeadSuppressed"]
        other = await bus.send("lead.suppress", {"lead_id": lead_id, "reason": "x"}, account=B)
        assert other["ok"] is False and other["field"] == "lead_id" and "no lead" in other["error"]


@pytest.mark.parametrize(
    ("name", "payload", "account", "field", "message"),
    [
        ("campaign.create", b"{not json", A, None, "not a JSON object"),
        ("campaign.create", b"[1, 2]", A, None, "Expected `object`"),
        ("campaign.explode", {}, A, "command", "unknown command 'campaign.explode'; known: campaign.activate"),
        ("campaign.pause", {"campaign_id": str(uuid.uuid4())}, "acme", "account", "is not a UUID"),
        ("campaign.pause", {"campaign_id": "seven"}, A, "campaign_id", "Invalid UUID"),
        ("campaign.pause", {"campaign_id": str(uuid.uuid4()), "colour": "red"}, A, None, "unknown field `colour`"),
        ("campaign.pause", {"campaign_id": str(uuid.uuid4())}, A, "campaign_id", "no campaign"),
        ("campaign.create", {"campaign_key": "Bad Key", "name": "x", "steps": STEPS}, A, "campaign_key", "lower-case"),
        ("campaign.create", {"campaign_key": "k", "name": "x", "steps": [{"step": 1, "channel": "fax"}]}, A, None,
         "unknown channel 'fax'"),
        ("lead.ingest", {"source": "website", "external_id": "1", "phone": "305-555"}, A, "phone", "E.164"),
        ("lead.ingest", {"source": "website", "external_id": "1"}, A, "phone", "a phone or an email"),
        ("lead.ingest", {"source": "web site", "external_id": "1", "email": "a@b.co"}, A, "source", "lower-case"),
        ("lead.ingest", {"source": "website", "external_id": "1\x00", "email": "a@b.co"}, A, None, "NUL"),
        ("touch.requeue", {"touch_run_id": str(uuid.uuid4()), "by": "ops"}, A, "touch_run_id", "no touch run"),
        ("program.start", {"program": "myspace", "city": "miami"}, A, None, "myspace"),
    ],
)  # fmt: skip
async def test_malformed_and_impossible_commands_are_refused_saying_why_and_append_nothing(
    pg_store: PostgresEventStore,
    nc: NATS,
    settings: Settings,
    name: str,
    payload: dict[str, Any] | bytes,
    account: uuid.UUID | str,
    field: str | None,
    message: str,
) -> None:
    bus = Bus(nc, settings)
    async with commands(pg_store, nc, settings):
        before = await log_size(pg_store)
        answer = await bus.send(name, payload, account=account)
        assert answer["ok"] is False, answer
        assert message in answer["error"], answer
        if field is not None:
            assert answer["field"] == field, answer
        assert await log_size(pg_store) == before


async def test_a_command_id_of_one_account_cannot_be_replayed_for_another(
    pg_store: PostgresEventStore, nc: NATS, settings: Settings
) -> None:
    bus = Bus(nc, settings)
    command_id = str(uuid.uuid4())
    async with commands(pg_store, nc, settings):
        first = await bus.send("lead.ingest", {"command_id": command_id, "source": "web", "external_id": "9",
                                               "email": "seller@example.com"})  # fmt: skip
        assert first["ok"] is True
        stolen = await bus.send("lead.ingest", {"command_id": command_id, "source": "web", "external_id": "9",
                                                "email": "seller@example.com"}, account=B)  # fmt: skip
    assert stolen["ok"] is False and stolen["field"] == "command_id" and "another account" in stolen["error"]


async def test_programs_start_through_the_bus_with_the_same_rules_as_the_console(
    pg_store: PostgresEventStore, nc: NATS, settings: Settings
) -> None:
    bus = Bus(nc, settings)
    async with commands(pg_store, nc, settings):
        answer = await bus.send("program.start", {"program": "craigslist", "city": "miami", "by": "crm"})
        assert answer["ok"] is True and answer["result"]["outcome"] == "needs_setup", answer  # no routing yet
        assert answer["events"] == []
        forced = await bus.send(
            "program.start", {"program": "craigslist", "city": "miami", "override_routing": True, "by": "crm"}
        )
        assert forced["ok"] is True and forced["result"]["outcome"] == "started", forced
        types = [e["type"] for e in forced["events"]]
        assert types == ["ProgramStarted", "CrawlTaskEnqueued"], types
        stopped = await bus.send("program.stop", {"program": "craigslist", "city": "miami", "by": "crm"})
        assert stopped["ok"] is True and stopped["result"]["outcome"] == "stopped", stopped


async def test_two_services_share_the_commands_and_each_is_carried_out_once(
    pg_store: PostgresEventStore, nc: NATS, settings: Settings
) -> None:
    bus = Bus(nc, settings)
    first, second = CommandService(pg_store, nc, settings), CommandService(pg_store, nc, settings)
    async with anyio.create_task_group() as tg:
        await tg.start(first.run)
        await tg.start(second.run)
        answers: list[dict[str, Any]] = []

        async def ingest(i: int) -> None:
            answers.append(
                await bus.send("lead.ingest", {"source": "feed", "external_id": f"l{i}", "email": f"s{i}@example.com"})
            )

        async with anyio.create_task_group() as senders:
            for i in range(40):
                senders.start_soon(ingest, i)
        await first.stop(1)
        await second.stop(1)
        tg.cancel_scope.cancel()
    assert len(answers) == 40 and all(a["ok"] and a["result"]["created"] for a in answers)
    assert first.handled + second.handled == 40
    assert first.handled > 0 and second.handled > 0  # the queue group spread them
    assert await log_size(pg_store) == 40
