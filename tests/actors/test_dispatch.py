"""The dispatch engine in sandbox mode: due touches go out once, later ones wait, ineligible ones are skipped."""

from __future__ import annotations

import uuid
from datetime import timedelta

import msgspec
import pytest
from nats.aio.client import Client as NATS

from actors.cadence import LeadView
from actors.campaigns import Campaigns, StepSpec
from actors.clock import FakeClock
from actors.dispatch import TouchState, compose, render, requeue, why_skip
from actors.org import OrgState
from events.catalog import (
    LeadSuppressed,
    ProviderRequestRecorded,
    TouchRunDeadLettered,
    TouchRunDispatched,
    touch_stream,
)
from events.errors import CommandRejected, NotFound
from events.postgres import PostgresEventStore
from events.settings import Settings
from tests.actors.dispatch_support import (
    ACCOUNT,
    NOON_MIAMI,
    Setup,
    engine,
    last_of,
    later,
    lead_types,
    touch_events,
)
from tests.actors.support import relaying, start, wait_for_events


async def test_a_due_touch_is_sent_once_in_sandbox_with_the_exact_request_recorded(
    pg_store: PostgresEventStore, nc: NATS, settings: Settings
) -> None:
    setup = Setup(pg_store)
    await setup.campaign(StepSpec(step=1, channel="sms"))
    lead = await setup.lead()
    async with relaying(pg_store, nc, settings) as tg:
        await start(tg, engine(), pg_store, nc, settings, clock=FakeClock(NOON_MIAMI))
        touch = await setup.touch(lead)
        await wait_for_events(pg_store, 1, "TouchRunDispatched")

    # No claim: a sandbox send never leaves the log, so recording it is the whole side effect.
    assert await touch_events(pg_store, touch) == ["TouchRunScheduled", "ProviderRequestRecorded", "TouchRunDispatched"]
    envelopes = await pg_store.read_stream(touch_stream(touch))
    recorded, dispatched = envelopes[1].event, envelopes[2].event
    assert isinstance(recorded, ProviderRequestRecorded) and isinstance(dispatched, TouchRunDispatched)
    assert recorded.method == "POST"
    assert recorded.url == "https://api.twilio.com/2010-04-01/Accounts/AC_SANDBOX/Messages.json"
    assert recorded.form is not None
    assert recorded.form["To"] == "+13055550123"
    assert "2016 Toyota Corolla LE" in recorded.form["Body"] and "Autos Brickell" in recorded.form["Body"]
    assert "STOP" in recorded.form["Body"]
    assert "Authorization" not in recorded.headers  # credentials are never part of what is recorded
    assert dispatched.sandbox and dispatched.provider == "twilio"
    assert dispatched.provider_message_id == f"sandbox:{touch}"
    assert dispatched.dispatched_at == NOON_MIAMI
    assert "LeadContacted" in await lead_types(pg_store, lead)  # new → contacted


async def test_later_touches_wait_for_their_time_and_ineligible_leads_are_skipped(
    pg_store: PostgresEventStore, nc: NATS, settings: Settings
) -> None:
    setup = Setup(pg_store)
    await setup.campaign(StepSpec(step=1, channel="sms"))
    fine = await setup.lead()
    opted_out = await setup.lead("+13055550124")
    await pg_store.append(
        f"lead-{opted_out}", [LeadSuppressed(lead_id=opted_out, account_id=ACCOUNT, reason="operator")]
    )
    clock = FakeClock(NOON_MIAMI)
    async with relaying(pg_store, nc, settings) as tg:
        await start(tg, engine(), pg_store, nc, settings, clock=clock)
        in_ten = await setup.touch(fine, due=later(10))
        skipped = await setup.touch(opted_out)
        await wait_for_events(pg_store, 1, "TouchRunSkipped")
        await wait_for_events(pg_store, 1, "TimerScheduled")
        assert await touch_events(pg_store, in_ten) == ["TouchRunScheduled"]
        clock.advance(timedelta(minutes=10))
        await wait_for_events(pg_store, 1, "TouchRunDispatched")

    assert (await last_of(pg_store, in_ten)).type == "TouchRunDispatched"
    assert (await last_of(pg_store, in_ten)).event.dispatched_at == later(10)  # type: ignore[attr-defined]
    skip = (await last_of(pg_store, skipped)).event
    assert skip.reason == "lead suppressed (operator)"  # type: ignore[attr-defined]


async def test_a_retry_outside_the_send_window_waits_for_morning_and_a_paused_campaign_holds_its_touches(
    pg_store: PostgresEventStore, nc: NATS, settings: Settings
) -> None:
    setup = Setup(pg_store)
    campaign = await setup.campaign(StepSpec(step=1, channel="sms"))
    lead = await setup.lead()
    night = NOON_MIAMI.replace(hour=3)  # 22:00 in Miami the evening before
    clock = FakeClock(night)
    async with relaying(pg_store, nc, settings) as tg:
        await start(tg, engine(), pg_store, nc, settings, clock=clock)
        touch = await setup.touch(lead, due=night)
        [deferred] = await wait_for_events(pg_store, 1, "TouchRunDeferred")
        assert deferred.event.until == NOON_MIAMI.replace(hour=13)  # type: ignore[attr-defined]  # 08:00 Miami
        assert "send window" in deferred.event.reason  # type: ignore[attr-defined]

        await Campaigns(pg_store).pause(ACCOUNT, campaign)
        clock.set(NOON_MIAMI.replace(hour=13))
        [_, held] = await wait_for_events(pg_store, 2, "TouchRunDeferred")
        assert held.event.reason == "campaign paused"  # type: ignore[attr-defined]
        assert await touch_events(pg_store, touch) == ["TouchRunScheduled", "TouchRunDeferred", "TouchRunDeferred"]

        await Campaigns(pg_store).activate(ACCOUNT, campaign)
        # Resuming finds held touches through public.touch_runs (not running in this test; the
        # gateway test covers it): without it the hourly recheck sends them.
        clock.advance(timedelta(hours=1))
        await wait_for_events(pg_store, 1, "TouchRunDispatched")
    assert (await last_of(pg_store, touch)).type == "TouchRunDispatched"


async def test_requeue_sends_a_dead_letter_again_and_refuses_anything_else(
    pg_store: PostgresEventStore, nc: NATS, settings: Settings
) -> None:
    setup = Setup(pg_store)
    await setup.campaign()
    lead = await setup.lead()
    touch = await setup.touch(lead, due=later(60))
    with pytest.raises(CommandRejected, match="is scheduled: only dead-lettered or failed"):
        await requeue(pg_store, ACCOUNT, touch, by="ops@dealer", reason=None)
    dead = TouchRunDeadLettered(touch_run_id=touch, account_id=ACCOUNT, error="gave up", attempts=5)
    await pg_store.append(touch_stream(touch), [dead])
    with pytest.raises(NotFound, match="no touch run"):
        await requeue(pg_store, uuid.UUID(int=ACCOUNT.int ^ 1), touch, by="x", reason=None)
    clock = FakeClock(NOON_MIAMI)
    async with relaying(pg_store, nc, settings) as tg:
        await start(tg, engine(), pg_store, nc, settings, clock=clock)
        await requeue(pg_store, ACCOUNT, touch, by="ops@dealer", reason="number fixed", at=NOON_MIAMI)
        await wait_for_events(pg_store, 1, "TouchRunDispatched")
    assert await touch_events(pg_store, touch) == [
        "TouchRunScheduled",
        "TouchRunDeadLettered",
        "TouchRunRequeued",
        "ProviderRequestRecorded",
        "TouchRunDispatched",
    ]


def test_messages_are_composed_from_the_step_template_the_lead_and_the_account() -> None:
    lead = LeadView(lead_id=uuid.uuid4(), account_id=ACCOUNT, phone="+13055550123", name="Ana Pérez",
                    title="2016 Toyota Corolla", price=9500, source="craigslist")  # fmt: skip
    org = OrgState(account_id=ACCOUNT, business_name="Autos Brickell")
    touch = TouchState(touch_run_id=uuid.uuid4(), account_id=ACCOUNT, lead_id=lead.lead_id,
                       campaign_id=uuid.uuid4(), step=1, channel="sms", status="scheduled", due=NOON_MIAMI,
                       version=1)  # fmt: skip
    text = compose(touch, lead, org, "Hola {first_name}: ¿vendes tu {title} en {price}? — {business}", NOON_MIAMI)
    assert text.body == "Hola Ana: ¿vendes tu 2016 Toyota Corolla en $9,500? — Autos Brickell"
    assert render("broken {brace", {}) == "broken {brace"  # a template typo sends as written, never crashes
    assert render("Hi {unknown}!", {}) == "Hi !"

    whatsapp = msgspec.structs.replace(touch, channel="whatsapp")
    out_of_window = compose(whatsapp, lead, org, "HXb5b62575e6e4ff6129ad7c8efe1f983e", NOON_MIAMI)
    assert out_of_window.template == "HXb5b62575e6e4ff6129ad7c8efe1f983e" and not out_of_window.in_session
    lead.last_inbound = {"whatsapp": NOON_MIAMI - timedelta(hours=3)}
    assert compose(whatsapp, lead, org, None, NOON_MIAMI).in_session

    assert why_skip(None, "sms") == "lead not found"
    lead.invalid_channels = frozenset({"sms"})
    assert why_skip(lead, "sms") == "bad data: the lead's number is invalid for sms"
    assert why_skip(lead, "whatsapp") is None
    assert why_skip(lead, "email") == "no email"
