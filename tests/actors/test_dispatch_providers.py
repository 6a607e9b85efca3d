"""The dispatch engine against local servers speaking each provider's wire format: sends, failures, retries."""

from __future__ import annotations

import base64
import contextlib
import json
import socket
import uuid
from collections.abc import AsyncIterator, Mapping
from datetime import timedelta
from typing import Any
from urllib.parse import parse_qs, urlsplit

import anyio
import msgspec
import pytest
from nats.aio.client import Client as NATS

from actors.campaigns import StepSpec
from actors.clock import FakeClock
from actors.dispatch import DispatchEngine
from actors.org import OrgSettings
from actors.warmup import WarmupSchedule
from events.catalog import TouchRunClaimed, touch_stream
from events.envelope import Envelope
from events.postgres import PostgresEventStore
from events.settings import Settings
from gateways.voice_token import verify_call_token
from tests.actors.dispatch_support import ACCOUNT, NOON_MIAMI, Setup, engine, last_of, lead_types, touch_events
from tests.actors.support import events_of, relaying, start, wait_for_events
from tests.gateways.providers.fake_servers import FakeProviders, Fault


@pytest.fixture
async def fake() -> AsyncIterator[FakeProviders]:
    async with FakeProviders(callbacks=False) as providers:
        yield providers


class Run:
    """The relay and one dispatch engine on a fake clock at noon in Miami."""

    def __init__(self, store: PostgresEventStore, nc: NATS, settings: Settings) -> None:
        self.store, self.nc, self.settings = store, nc, settings
        self.clock = FakeClock(NOON_MIAMI)

    @contextlib.asynccontextmanager
    async def engines(self, *engines: DispatchEngine) -> AsyncIterator[None]:
        async with relaying(self.store, self.nc, self.settings) as tg:
            for e in engines:
                await start(tg, e, self.store, self.nc, self.settings, clock=self.clock)
            yield


def env_with(fake: FakeProviders, **extra: str) -> dict[str, str]:
    return {**fake.env(), "PROVIDER_TIMEOUT_S": "2", **extra}


async def until_last(store: PostgresEventStore, touch: uuid.UUID, *types: str, within: float = 10) -> Envelope:
    """Until the touch's latest event is one of `types` (woken by each event on the log)."""
    with anyio.fail_after(within):
        async for _ in store.tail(0):
            last = await last_of(store, touch)
            if last.type in types:
                return last
    raise AssertionError("unreachable")


async def until_nth(store: PostgresEventStore, touch: uuid.UUID, kind: str, n: int, within: float = 10) -> Envelope:
    """Until the touch has `n` events of `kind`; the n-th of them."""
    with anyio.fail_after(within):
        async for _ in store.tail(0):
            found = [e for e in await store.read_stream(touch_stream(touch)) if e.type == kind]
            if len(found) >= n:
                return found[n - 1]
    raise AssertionError("unreachable")


async def test_twilio_sms_is_sent_with_basic_auth_and_the_message_sid_recorded(
    pg_store: PostgresEventStore, nc: NATS, settings: Settings, fake: FakeProviders
) -> None:
    setup = Setup(pg_store)
    await setup.campaign()
    lead = await setup.lead()
    async with Run(pg_store, nc, settings).engines(engine(env_with(fake))):
        touch = await setup.touch(lead)
        done = await until_last(pg_store, touch, "TouchRunDispatched")
    [request] = fake.sent("twilio")
    sid, token = fake.env()["TWILIO_ACCOUNT_SID"], fake.env()["TWILIO_AUTH_TOKEN"]
    assert request.headers["authorization"] == "Basic " + base64.b64encode(f"{sid}:{token}".encode()).decode()
    assert request.path == f"/twilio/2010-04-01/Accounts/{sid}/Messages.json"
    assert request.form["To"] == "+13055550123" and request.form["From"] == fake.env()["TWILIO_FROM_NUMBER"]
    assert "Toyota Corolla" in request.form["Body"]
    assert done.event.provider_message_id == fake.twilio_messages[0]["sid"]  # type: ignore[attr-defined]
    assert not done.event.sandbox  # type: ignore[attr-defined]
    assert await touch_events(pg_store, touch) == ["TouchRunScheduled", "TouchRunClaimed", "TouchRunDispatched"]


async def test_an_opted_out_recipient_suppresses_the_lead_and_its_next_touch_is_skipped(
    pg_store: PostgresEventStore, nc: NATS, settings: Settings, fake: FakeProviders
) -> None:
    setup = Setup(pg_store)
    await setup.campaign()
    lead = await setup.lead()
    fake.error("twilio", 21610)
    run = Run(pg_store, nc, settings)
    async with run.engines(engine(env_with(fake))):
        first = await setup.touch(lead)
        failed = await until_last(pg_store, first, "TouchRunFailed")
        second = await setup.touch(lead, step=2)
        skipped = await until_last(pg_store, second, "TouchRunSkipped")
    assert failed.event.outcome == "suppress" and failed.event.error_code == "21610"  # type: ignore[attr-defined]
    assert not failed.event.retryable  # type: ignore[attr-defined]
    assert "LeadSuppressed" in await lead_types(pg_store, lead)
    assert skipped.event.reason == "lead suppressed (opted_out: twilio 21610)"  # type: ignore[attr-defined]
    assert len(fake.sent("twilio")) == 1


@pytest.mark.parametrize("code", [21211, 21614, 21635])
async def test_an_invalid_number_is_bad_data_for_that_channel_only(
    pg_store: PostgresEventStore, nc: NATS, settings: Settings, fake: FakeProviders, code: int
) -> None:
    setup = Setup(pg_store)
    await setup.campaign()
    lead = await setup.lead()
    fake.error("twilio", code)
    async with Run(pg_store, nc, settings).engines(engine(env_with(fake, WHATSAPP_PROVIDER="meta"))):
        first = await setup.touch(lead)
        failed = await until_last(pg_store, first, "TouchRunFailed")
        again = await setup.touch(lead, step=2)
        skipped = await until_last(pg_store, again, "TouchRunSkipped")
        other = await setup.touch(lead, "whatsapp", step=3)
        await until_last(pg_store, other, "TouchRunFailed")  # Meta: no template, out of the window
    assert failed.event.outcome == "bad_data"  # type: ignore[attr-defined]
    assert "LeadContactInvalid" in await lead_types(pg_store, lead)
    assert skipped.event.reason == "bad data: the lead's number is invalid for sms"  # type: ignore[attr-defined]
    whatsapp = (await last_of(pg_store, other)).event
    assert whatsapp.outcome == "template_required"  # type: ignore[attr-defined]  # tried: not skipped as bad data


async def test_rate_limited_waits_the_providers_retry_after_then_sends(
    pg_store: PostgresEventStore, nc: NATS, settings: Settings, fake: FakeProviders
) -> None:
    setup = Setup(pg_store)
    await setup.campaign()
    lead = await setup.lead()
    fake.error("twilio", 20429, retry_after=7)
    run = Run(pg_store, nc, settings)
    async with run.engines(engine(env_with(fake))):
        touch = await setup.touch(lead)
        retry = await until_last(pg_store, touch, "TouchRunRetryScheduled")
        assert retry.event.retry_at == NOON_MIAMI + timedelta(seconds=7)  # type: ignore[attr-defined]
        assert retry.event.attempt == 2  # type: ignore[attr-defined]
        run.clock.advance(timedelta(seconds=7))
        sent = await until_last(pg_store, touch, "TouchRunDispatched")
    assert sent.event.attempt == 2  # type: ignore[attr-defined]
    assert len(fake.sent("twilio")) == 2


async def test_server_errors_back_off_exponentially_then_dead_letter(
    pg_store: PostgresEventStore, nc: NATS, settings: Settings, fake: FakeProviders
) -> None:
    setup = Setup(pg_store)
    await setup.campaign()
    lead = await setup.lead()
    fake.error("twilio", 20500, times=3)
    run = Run(pg_store, nc, settings)
    async with run.engines(engine(env_with(fake), max_attempts=3, backoff_base_s=10.0, backoff_max_s=600.0)):
        touch = await setup.touch(lead)
        delays = []
        for attempt in (1, 2):
            # Counted, not "the latest event is": the engine may be past a claim before we look.
            retry = await until_nth(pg_store, touch, "TouchRunRetryScheduled", attempt)
            delays.append((retry.event.retry_at - run.clock.now()).total_seconds())  # type: ignore[attr-defined]
            run.clock.advance(timedelta(seconds=delays[-1]))
            await until_nth(pg_store, touch, "TouchRunClaimed", attempt + 1)
        dead = await until_last(pg_store, touch, "TouchRunDeadLettered")
    assert 7.5 <= delays[0] <= 12.5 and 15 <= delays[1] <= 25  # 10 s then 20 s, each ±25 % jitter
    assert dead.event.attempts == 3 and "gave up after 3 attempts" in dead.event.error  # type: ignore[attr-defined]
    assert len(fake.sent("twilio")) == 3


async def test_a_timeout_after_twilio_created_the_message_is_resolved_by_asking_twilio_not_by_resending(
    pg_store: PostgresEventStore, nc: NATS, settings: Settings, fake: FakeProviders
) -> None:
    setup = Setup(pg_store)
    await setup.campaign()
    lead = await setup.lead()
    fake.fail("twilio", "messages.create", Fault(status=0, delay_s=3.0, after_create=True))
    run = Run(pg_store, nc, settings)
    async with run.engines(engine(env_with(fake, PROVIDER_TIMEOUT_S="0.3"))):
        touch = await setup.touch(lead)
        retry = await until_last(pg_store, touch, "TouchRunRetryScheduled")
        assert retry.event.check_provider  # type: ignore[attr-defined]
        run.clock.advance(retry.event.retry_at - run.clock.now())  # type: ignore[attr-defined]
        done = await until_last(pg_store, touch, "TouchRunDispatched")
    assert len(fake.sent("twilio")) == 1  # sent once
    assert len(fake.sent("twilio", "messages.list")) == 1  # and asked about once
    assert done.event.how == "resolved"  # type: ignore[attr-defined]
    assert done.event.provider_message_id == fake.twilio_messages[0]["sid"]  # type: ignore[attr-defined]
    failed = [e for e in await pg_store.read_stream(touch_stream(touch)) if e.type == "TouchRunFailed"]
    assert failed[0].event.outcome == "unknown"  # type: ignore[attr-defined]


@pytest.mark.parametrize("fault", [Fault(status=0, delay_s=3.0), Fault(drop=True)], ids=["timeout", "dropped"])
async def test_an_unknown_outcome_on_telnyx_is_dead_lettered_never_sent_twice(
    pg_store: PostgresEventStore, nc: NATS, settings: Settings, fake: FakeProviders, fault: Fault
) -> None:
    setup = Setup(pg_store)
    await setup.campaign()
    lead = await setup.lead()
    fake.fail("telnyx", "messages.create", fault)
    async with Run(pg_store, nc, settings).engines(
        engine(env_with(fake, SMS_PROVIDER="telnyx", PROVIDER_TIMEOUT_S="0.3"))
    ):
        touch = await setup.touch(lead)
        dead = await until_last(pg_store, touch, "TouchRunDeadLettered")
    assert dead.event.error_code == "outcome_unknown"  # type: ignore[attr-defined]
    assert "cannot be asked whether it was sent" in dead.event.error  # type: ignore[attr-defined]
    assert len(fake.sent("telnyx")) == 1


async def test_a_provider_that_cannot_be_reached_is_retried_because_nothing_was_sent(
    pg_store: PostgresEventStore, nc: NATS, settings: Settings, fake: FakeProviders
) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        closed = s.getsockname()[1]
    setup = Setup(pg_store)
    await setup.campaign()
    lead = await setup.lead()
    env = env_with(fake, SMS_PROVIDER="telnyx", TELNYX_API_BASE_URL=f"http://127.0.0.1:{closed}/v2")
    async with Run(pg_store, nc, settings).engines(engine(env)):
        touch = await setup.touch(lead)
        retry = await until_last(pg_store, touch, "TouchRunRetryScheduled")
    assert not retry.event.check_provider  # type: ignore[attr-defined]
    failed = [e for e in await pg_store.read_stream(touch_stream(touch)) if e.type == "TouchRunFailed"]
    assert failed[0].event.outcome == "retry" and "could not connect" in failed[0].event.error  # type: ignore[attr-defined]


async def test_an_expired_claim_is_settled_by_asking_twilio_and_dead_lettered_on_telnyx(
    pg_store: PostgresEventStore, nc: NATS, settings: Settings, fake: FakeProviders
) -> None:
    setup = Setup(pg_store)
    await setup.campaign()
    twilio_lead, telnyx_lead = await setup.lead(), await setup.lead("+13055550199")
    touches = []
    for lead, provider in ((twilio_lead, "twilio"), (telnyx_lead, "telnyx")):
        touch = await setup.touch(lead, channel="sms")
        claim = TouchRunClaimed(
            touch_run_id=touch,
            account_id=ACCOUNT,
            claimed_by="worker-that-died",
            lease_until=NOON_MIAMI - timedelta(minutes=1),
            provider=provider,
        )
        await pg_store.append(touch_stream(touch), [claim], expected_version=1)
        touches.append(touch)
    # One engine sends SMS through Twilio: it asks Twilio (nothing there), then sends once.
    async with Run(pg_store, nc, settings).engines(engine(env_with(fake))):
        sent = await until_last(pg_store, touches[0], "TouchRunDispatched")
        dead = await until_last(pg_store, touches[1], "TouchRunDeadLettered")
    assert sent.event.how == "sent"  # type: ignore[attr-defined]
    assert len(fake.sent("twilio", "messages.list")) == 1 and len(fake.sent("twilio")) == 1
    assert dead.event.error_code == "outcome_unknown"  # type: ignore[attr-defined]  # claimed for Telnyx
    assert "worker-that-died" in dead.event.error  # type: ignore[attr-defined]


async def test_whatsapp_through_twilio_uses_the_template_outside_the_window_and_refuses_without_one(
    pg_store: PostgresEventStore, nc: NATS, settings: Settings, fake: FakeProviders
) -> None:
    setup = Setup(pg_store)
    await setup.campaign(
        StepSpec(step=1, channel="whatsapp", template="HXb5b62575e6e4ff6129ad7c8efe1f983e"),
        StepSpec(step=2, channel="whatsapp"),
    )
    lead = await setup.lead()
    async with Run(pg_store, nc, settings).engines(engine(env_with(fake, WHATSAPP_PROVIDER="twilio"))):
        templated = await setup.touch(lead, "whatsapp", step=1)
        free_form = await setup.touch(lead, "whatsapp", step=2)
        await until_last(pg_store, templated, "TouchRunDispatched")
        refused = await until_last(pg_store, free_form, "TouchRunFailed")
    [request] = fake.sent("twilio")
    assert request.form["To"] == "whatsapp:+13055550123" and request.form["From"] == "whatsapp:+14155238886"
    assert request.form["ContentSid"] == "HXb5b62575e6e4ff6129ad7c8efe1f983e" and "Body" not in request.form
    assert json.loads(request.form["ContentVariables"]) == {"1": "Ana", "2": "2016 Toyota Corolla LE"}
    assert refused.event.outcome == "template_required"  # type: ignore[attr-defined]
    assert "ContentSid" in refused.event.error  # type: ignore[attr-defined]


async def test_whatsapp_through_meta_sends_the_template_and_maps_its_error_codes(
    pg_store: PostgresEventStore, nc: NATS, settings: Settings, fake: FakeProviders
) -> None:
    setup = Setup(pg_store)
    await setup.campaign(StepSpec(step=1, channel="whatsapp", template="autos_intro"))
    lead, other = await setup.lead(), await setup.lead("+13055550177")
    fake.error("meta", 131047)
    fake.error("meta", 131026)
    async with Run(pg_store, nc, settings).engines(engine(env_with(fake))):
        first = await setup.touch(lead, "whatsapp")
        await until_last(pg_store, first, "TouchRunFailed")
        second = await setup.touch(other, "whatsapp")
        await until_last(pg_store, second, "TouchRunFailed")
        third = await setup.touch(lead, "whatsapp")
        sent = await until_last(pg_store, third, "TouchRunDispatched")
    outcomes = [(await last_of(pg_store, t)).event.outcome for t in (first, second)]  # type: ignore[attr-defined]
    assert outcomes == ["template_required", "bad_data"]
    request = fake.sent("meta")[-1]
    assert request.headers["authorization"] == f"Bearer {fake.env()['WHATSAPP_ACCESS_TOKEN']}"
    assert request.json["to"] == "13055550123" and request.json["type"] == "template"
    assert request.json["template"]["name"] == "autos_intro"
    assert request.json["biz_opaque_callback_data"] == str(third)
    assert sent.event.provider == "meta" and sent.event.provider_message_id.startswith("wamid.")  # type: ignore[attr-defined]


async def test_email_goes_through_elastic_and_fails_closed_without_its_env(
    pg_store: PostgresEventStore, nc: NATS, settings: Settings, fake: FakeProviders
) -> None:
    setup = Setup(pg_store)
    await setup.campaign(StepSpec(step=1, channel="email"))
    lead = await setup.lead()
    async with Run(pg_store, nc, settings).engines(engine(env_with(fake))):
        touch = await setup.touch(lead, "email")
        await until_last(pg_store, touch, "TouchRunDispatched")
    [request] = fake.sent("elastic", "email.send")
    assert request.headers["x-elasticemail-apikey"] == fake.env()["ELASTIC_EMAIL_API_KEY"]
    assert request.json["Recipients"]["To"] == ["seller@example.com"]
    assert request.json["Content"]["From"] == "ventas@dealer.example"
    assert request.json["Content"]["Subject"] == "Tu 2016 Toyota Corolla LE"
    assert request.json["Content"]["Headers"]["X-Touchline-Touch"] == str(touch)

    no_email = {k: v for k, v in env_with(fake).items() if not k.startswith("ELASTIC")}
    async with Run(pg_store, nc, settings).engines(engine(no_email)):
        closed = await setup.touch(lead, "email", step=2)
        failed = await until_last(pg_store, closed, "TouchRunFailed")
    assert failed.event.error == (  # type: ignore[attr-defined]
        "elastic: missing_elastic_env: set ELASTIC_EMAIL_API_KEY (or ELASTICEMAIL_API_KEY) + ELASTIC_EMAIL_FROM "
        "(code missing_elastic_env)"
    )
    assert len(fake.sent("elastic", "email.send")) == 1  # nothing went out


async def test_the_email_warmup_allows_its_daily_allowance_then_defers_to_the_next_day(
    pg_store: PostgresEventStore, nc: NATS, settings: Settings, fake: FakeProviders
) -> None:
    setup = Setup(pg_store)
    await setup.campaign(StepSpec(step=1, channel="email"))
    leads = [await setup.lead(f"+1305555020{i}") for i in range(3)]
    warm = engine(env_with(fake), warmup=WarmupSchedule(start=2, growth=2.0, maximum=100))
    async with Run(pg_store, nc, settings).engines(warm):
        touches = [await setup.touch(lead, "email") for lead in leads]
        for t in touches:
            await until_last(pg_store, t, "TouchRunDispatched", "TouchRunDeferred")
    last = [(await last_of(pg_store, t)) for t in touches]
    assert sorted(e.type for e in last) == ["TouchRunDeferred", "TouchRunDispatched", "TouchRunDispatched"]
    deferred = next(e.event for e in last if e.type == "TouchRunDeferred")
    assert deferred.until == NOON_MIAMI.replace(hour=0) + timedelta(days=1)  # type: ignore[attr-defined]
    assert deferred.reason == "email warmup: 2 of 2 sent on 2026-11-24"  # type: ignore[attr-defined]
    assert WarmupSchedule(start=2, growth=2.0, maximum=100).allowance(3) == 16


async def test_voice_calls_carry_a_signed_stream_token_on_twilio_and_client_state_on_telnyx(
    pg_store: PostgresEventStore, nc: NATS, settings: Settings, fake: FakeProviders
) -> None:
    setup = Setup(pg_store)
    await setup.campaign(StepSpec(step=1, channel="voice"))
    lead = await setup.lead()
    public = msgspec.structs.replace(settings, public_url="https://touchline.example")
    run = Run(pg_store, nc, public)
    async with run.engines(engine(env_with(fake, VOICE_GATEWAY_TOKEN="s3cret"))):
        call = await setup.touch(lead, "voice")
        placed = await until_last(pg_store, call, "TouchRunDispatched")
    [request] = fake.sent("twilio", "calls.create")
    twiml = request.form["Twiml"]
    stream_url = twiml.split('<Stream url="', 1)[1].split('"', 1)[0].replace("&amp;", "&")
    parts = urlsplit(stream_url)
    assert (parts.scheme, parts.netloc, parts.path) == ("wss", "touchline.example", "/twilio")
    assert verify_call_token("s3cret", parse_qs(parts.query)["token"][0]) == str(call)
    assert request.form["StatusCallback"] == f"https://touchline.example/webhooks/twilio/status?touch={call}"
    assert placed.event.provider_message_id == fake.twilio_calls[0]["sid"]  # type: ignore[attr-defined]

    telnyx_env = env_with(fake, VOICE_CARRIER_PRIMARY="telnyx", VOICE_GATEWAY_TOKEN="s3cret")
    async with Run(pg_store, nc, public).engines(engine(telnyx_env)):
        dial = await setup.touch(lead, "voice", step=2)
        dialed = await until_last(pg_store, dial, "TouchRunDispatched")
    [telnyx] = fake.sent("telnyx", "calls.create")
    assert telnyx.json["connection_id"] == fake.env()["TELNYX_CONNECTION_ID"]
    assert telnyx.json["webhook_url"] == "https://touchline.example/webhooks/telnyx/voice"
    state: Mapping[str, Any] = json.loads(base64.b64decode(telnyx.json["client_state"]))
    assert state["touch_run_id"] == str(dial)
    assert dialed.event.provider_message_id.startswith("v3:")  # type: ignore[attr-defined]


async def test_two_engines_share_the_touches_and_each_is_sent_exactly_once(
    pg_store: PostgresEventStore, nc: NATS, settings: Settings, fake: FakeProviders
) -> None:
    setup = Setup(pg_store)
    await setup.campaign()
    leads = [await setup.lead(f"+130555510{i:02d}") for i in range(40)]
    env = env_with(fake)
    async with Run(pg_store, nc, settings).engines(engine(env, worker_id="a"), engine(env, worker_id="b")):
        for lead in leads:
            await setup.touch(lead)
        await wait_for_events(pg_store, 40, "TouchRunDispatched")
    claims = await events_of(pg_store, "TouchRunClaimed")
    assert len(claims) == 40
    assert len({e.stream_id for e in claims}) == 40
    assert sorted(r.form["To"] for r in fake.sent("twilio")) == sorted(f"+130555510{i:02d}" for i in range(40))


async def test_an_accounts_own_senders_replace_the_deployments_on_every_provider(
    pg_store: PostgresEventStore, nc: NATS, settings: Settings, fake: FakeProviders
) -> None:
    setup = Setup(pg_store)
    await setup.campaign(
        StepSpec(step=1, channel="sms"),
        StepSpec(step=2, channel="email"),
        StepSpec(step=3, channel="whatsapp", template="HXb5b62575e6e4ff6129ad7c8efe1f983e"),
    )
    await OrgSettings(pg_store).set_senders(
        ACCOUNT, {"sms": "+1 (786) 555-0142", "email": "Ventas@AutosBrickell.example", "whatsapp": "+17865550143"}
    )
    lead = await setup.lead()
    async with Run(pg_store, nc, settings).engines(engine(env_with(fake, WHATSAPP_PROVIDER="twilio"))):
        for step, channel in ((1, "sms"), (2, "email"), (3, "whatsapp")):
            await until_last(pg_store, await setup.touch(lead, channel, step=step), "TouchRunDispatched")
    sms, whatsapp = fake.sent("twilio")
    assert sms.form["From"] == "+17865550142" and "MessagingServiceSid" not in sms.form
    assert whatsapp.form["From"] == "whatsapp:+17865550143"
    [email] = fake.sent("elastic", "email.send")
    assert email.json["Content"]["From"] == "ventas@autosbrickell.example"

    # Telnyx takes the number too; Meta sends from a phone number id, so a number there is refused.
    async with Run(pg_store, nc, settings).engines(engine(env_with(fake, SMS_PROVIDER="telnyx"), worker_id="t")):
        await until_last(pg_store, await setup.touch(lead, "sms", step=1), "TouchRunDispatched")
        refused = await until_last(pg_store, await setup.touch(lead, "whatsapp", step=3), "TouchRunFailed")
    assert fake.sent("telnyx", "messages.create")[-1].json["from"] == "+17865550142"
    assert "not a Meta phone number id" in refused.event.error  # type: ignore[attr-defined]
    await OrgSettings(pg_store).set_senders(ACCOUNT, {"whatsapp": fake.whatsapp_phone_number_id})
    async with Run(pg_store, nc, settings).engines(
        engine(env_with(fake, WHATSAPP_TEMPLATE_NAME="autos"), worker_id="m")
    ):
        await until_last(pg_store, await setup.touch(lead, "whatsapp", step=3), "TouchRunDispatched")
    assert fake.sent("meta")[-1].path.endswith(f"/{fake.whatsapp_phone_number_id}/messages")
