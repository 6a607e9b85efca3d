"""The whole outbound path as a user runs it: lead → cadence → orchestrator → dispatch → Twilio → webhooks.

Everything real but the provider: PostgreSQL, the relay to JetStream, the three actors on their
consumers, the read models, the HTTP server with its webhooks. Twilio is the local fake server,
which calls our status callback like Twilio does; the lead answers STOP through the inbound
webhook, and its next touch is never sent.
"""

from __future__ import annotations

import socket
import uuid
import xml.etree.ElementTree as ET
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import anyio
import asyncpg
import msgspec
import pytest
from nats.aio.client import Client as NATS

from actors.cadence import CadenceRunner
from actors.campaigns import Campaigns, StepSpec
from actors.clock import FakeClock
from actors.orchestrator import TouchOrchestrator
from actors.org import OrgSettings
from events.catalog import LeadIngested, lead_stream
from events.postgres import PostgresEventStore
from events.settings import Settings
from gateways.http import serve_http
from projections.leads import LeadsProjection
from projections.touch_runs import TouchRunsProjection
from tests.actors.dispatch_support import engine
from tests.actors.support import relaying, start
from tests.gateways.providers.fake_servers import FakeProviders
from tests.projections.helpers import running

ACCOUNT = uuid.UUID("00000000-0000-4000-8000-0000000000e2")
NOON_MIAMI = datetime(2026, 11, 24, 17, 0, tzinfo=UTC)
PHONE = "+13055550142"


@pytest.fixture
async def fake() -> AsyncIterator[FakeProviders]:
    async with FakeProviders(callbacks=True) as providers:
        yield providers


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def _until(store: PostgresEventStore, condition: str, *args: object, within: float = 20) -> None:
    """Until a read-model query returns true (read models commit no events to wake on: poll)."""
    with anyio.fail_after(within):
        while True:
            try:
                if await store.pool.fetchval(condition, *args):
                    return
            except asyncpg.UndefinedTableError:
                pass  # the read model is being created
            await anyio.sleep(0.05)


async def test_a_stop_reply_suppresses_the_lead_before_its_next_touch(
    pg_store: PostgresEventStore, nc: NATS, settings: Settings, fake: FakeProviders
) -> None:
    port = _free_port()
    public = msgspec.structs.replace(settings, public_url=f"http://127.0.0.1:{port}")
    env = {**fake.env(), "PROVIDER_TIMEOUT_S": "5"}
    await OrgSettings(pg_store).update(ACCOUNT, business_name="Autos Brickell", contact_email="ventas@brickell.example")
    campaigns = Campaigns(pg_store)
    campaign = await campaigns.create(
        ACCOUNT,
        campaign_key="autos_outbound_miami",
        name="Autos Miami",
        steps=[StepSpec(step=1, channel="sms"), StepSpec(step=2, channel="sms", delay_minutes=60)],
    )
    await campaigns.activate(ACCOUNT, campaign.campaign_id)
    clock = FakeClock(NOON_MIAMI)
    projections = [LeadsProjection(), TouchRunsProjection()]
    async with (
        running(pg_store, projections),
        serve_http(pg_store, public, host="127.0.0.1", port=port, env=env) as url,
        relaying(pg_store, nc, public) as tg,
    ):
        for actor in (CadenceRunner(), TouchOrchestrator(env={}), engine(env)):
            await start(tg, actor, pg_store, nc, public, clock=clock)
        lead_id = uuid.uuid4()
        ingested = LeadIngested(
            lead_id=lead_id,
            account_id=ACCOUNT,
            source="craigslist",
            external_id="7801234567",
            city="miami",
            phone=PHONE,
            title="2016 Toyota Corolla LE",
            price=9500,
            name="Ana",
        )
        await pg_store.append(lead_stream(lead_id), [ingested])

        # The first text goes out now; Twilio then calls our status callback: delivered.
        await _until(
            pg_store,
            "select delivery_status = 'delivered' from public.touch_runs where lead_id = $1 and step = 1",
            lead_id,
        )
        [sent] = fake.sent("twilio")
        assert sent.form["To"] == PHONE
        assert sent.form["StatusCallback"].startswith(f"{url}/webhooks/twilio/status?touch=")
        assert await pg_store.pool.fetchval("select status from public.leads where id = $1", lead_id) == "contacted"

        # The lead answers STOP: one confirmation in the TwiML, suppressed before step 2 is due.
        status, body, _ = await fake.send_twilio_webhook(
            f"{url}/webhooks/twilio/sms", fake.twilio_inbound(from_=PHONE, body="STOP")
        )
        assert status == 200
        message = ET.fromstring(body).findtext("Message") or ""
        assert "START" in message and "Autos Brickell" in message
        await _until(
            pg_store,
            "select status = 'skipped' from public.touch_runs where lead_id = $1 and step = 2",
            lead_id,
        )
        clock.advance(timedelta(minutes=61))
        await _until(
            pg_store,
            "select status = 'suppressed' and suppression_reason like 'opted_out%' from public.leads where id = $1",
            lead_id,
        )
        rows = await pg_store.pool.fetch(
            "select step, status, skip_reason from public.touch_runs where lead_id = $1 order by step", lead_id
        )
    assert [(r["step"], r["status"]) for r in rows] == [(1, "dispatched"), (2, "skipped")]
    assert "lead left: suppressed" in rows[1]["skip_reason"]
    assert len(fake.sent("twilio")) == 1  # the STOP reply went back as TwiML, step 2 never went
