"""Provider webhooks over real HTTP: Twilio and Telnyx inbound messages, keywords and delivery status.

Every webhook is sent the way the provider sends it (signed by the fake providers' credentials)
to a served app on a fresh database, and each test checks both the HTTP answer and what the
event log holds afterwards: refused webhooks append nothing, retried ones nothing new.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import time
import uuid
import xml.etree.ElementTree as ET
from collections.abc import AsyncIterator, Mapping
from datetime import UTC, datetime
from typing import Any, TypeVar
from urllib.parse import urlencode, urlsplit

import aiohttp
import msgspec
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from actors.cadence import load_lead
from actors.org import OrgSettings
from events.catalog import (
    AutoReplySent,
    Channel,
    Event,
    InboundMessageReceived,
    LeadContactInvalid,
    LeadIngested,
    LeadReplied,
    LeadResubscribed,
    LeadSuppressed,
    TouchRunDeliveryStatus,
    TouchRunDispatched,
    TouchRunScheduled,
    inbound_stream,
    lead_stream,
    touch_stream,
)
from events.envelope import Envelope
from events.errors import ConfigError
from events.postgres import PostgresEventStore
from events.settings import Settings
from gateways.http import serve_http
from gateways.signatures import twilio_signature
from projections.leads import LeadsProjection
from projections.org_settings import OrgSettingsProjection
from tests.gateways.providers.fake_servers import FakeProviders
from tests.projections.helpers import caught_up, running

E = TypeVar("E", bound=Event)

ACCOUNT = uuid.UUID("00000000-0000-4000-8000-0000000000b1")
OTHER_ACCOUNT = uuid.UUID("00000000-0000-4000-8000-0000000000b2")
PHONE = "+13055550123"
BUSINESS = "Autos Brickell"
CONTACT = "ventas@brickell.example"

SMS_PATH = "/webhooks/twilio/sms"
STATUS_PATH = "/webhooks/twilio/status"
TELNYX_PATH = "/webhooks/telnyx/messaging"


# --- set-up ------------------------------------------------------------------------------------------------------


@pytest.fixture
async def fake() -> AsyncIterator[FakeProviders]:
    async with FakeProviders(callbacks=False) as providers:
        yield providers


@contextlib.asynccontextmanager
async def serve(
    store: PostgresEventStore, env: Mapping[str, str], settings: Settings | None = None
) -> AsyncIterator[str]:
    async with serve_http(store, settings or Settings(), host="127.0.0.1", port=0, env=env) as url:
        yield url


async def leads(store: PostgresEventStore, *owners: tuple[uuid.UUID, str]) -> list[uuid.UUID]:
    """One lead per (account, phone), in `public.leads` when this returns (inbound matching reads it)."""
    ids = []
    async with running(store, [LeadsProjection()]) as workers:
        for account, phone in owners:
            lead_id = uuid.uuid4()
            ingested = LeadIngested(
                lead_id=lead_id,
                account_id=account,
                source="craigslist",
                external_id=str(lead_id.int % 10**9),
                phone=phone,
                city="miami",
            )
            await store.append(lead_stream(lead_id), [ingested])
            ids.append(lead_id)
        await caught_up(store, workers)
    return ids


async def one_lead(store: PostgresEventStore) -> uuid.UUID:
    """The account's business name and contact (the replies' signature), and one lead with PHONE."""
    await OrgSettings(store).update(ACCOUNT, business_name=BUSINESS, contact_email=CONTACT)
    [lead_id] = await leads(store, (ACCOUNT, PHONE))
    return lead_id


async def dispatched_touch(
    store: PostgresEventStore, lead_id: uuid.UUID, provider: str, message_id: str | None, channel: Channel = "sms"
) -> uuid.UUID:
    touch = uuid.uuid4()
    scheduled = TouchRunScheduled(
        touch_run_id=touch,
        account_id=ACCOUNT,
        lead_id=lead_id,
        campaign_id=uuid.uuid4(),
        step=1,
        channel=channel,
        scheduled_for=datetime.now(UTC),
    )
    sent = TouchRunDispatched(touch_run_id=touch, account_id=ACCOUNT, provider=provider, provider_message_id=message_id)
    await store.append(touch_stream(touch), [scheduled, sent])
    return touch


async def log_state(store: PostgresEventStore) -> tuple[int, int]:
    """(head position, number of events): both unchanged means nothing at all was appended."""
    count = int(await store.pool.fetchval("select count(*) from touchline.events"))
    return await store.head_position(), count


async def stream(store: PostgresEventStore, stream_id: str) -> list[Envelope]:
    return await store.read_stream(stream_id)


def event_as(envelope: Envelope, cls: type[E]) -> E:
    event = envelope.event
    assert isinstance(event, cls), envelope
    return event


async def lead_status(store: PostgresEventStore, lead_id: uuid.UUID) -> str:
    lead = await load_lead(store, lead_id)
    assert lead is not None
    return lead.status


def types(envelopes: list[Envelope]) -> list[str]:
    return [e.type for e in envelopes]


def twiml_message(text: str) -> str | None:
    """The text of the TwiML `<Response>`'s single `<Message>`, None when the response is empty."""
    root = ET.fromstring(text)
    assert root.tag == "Response", text
    messages = list(root)
    assert [m.tag for m in messages] in ([], ["Message"]), text
    return messages[0].text if messages else None


def error_of(text: str) -> str:
    body = msgspec.json.decode(text)
    assert isinstance(body, dict), text
    error = body["error"]
    assert isinstance(error, str)
    return error


async def post_raw(url: str, body: bytes, headers: Mapping[str, str]) -> tuple[int, str, str]:
    """(status, text, content type) of a POST exactly as given (no signing)."""
    async with aiohttp.ClientSession() as session, session.post(url, data=body, headers=dict(headers)) as resp:
        return resp.status, await resp.text(), resp.content_type


FORM = {"Content-Type": "application/x-www-form-urlencoded; charset=utf-8"}


def telnyx_status_envelope(
    event_type: str, message_id: str | None, status: str, code: str | None = None
) -> dict[str, Any]:
    payload: dict[str, Any] = {
        "record_type": "message",
        "direction": "outbound",
        "type": "SMS",
        "to": [{"phone_number": PHONE, "status": status, "carrier": "T-Mobile USA", "line_type": "Wireless"}],
        "errors": [] if code is None else [{"code": code, "title": "Blocked due to STOP message"}],
    }
    if message_id is not None:
        payload["id"] = message_id
    return {
        "data": {
            "event_type": event_type,
            "id": str(uuid.uuid4()),
            "occurred_at": datetime.now(UTC).isoformat(),
            "payload": payload,
            "record_type": "event",
        },
        "meta": {"attempt": 1, "delivered_to": ""},
    }


# --- Twilio inbound: keywords ----------------------------------------------------------------------------------


@pytest.mark.parametrize("body", ["STOP", " stop. ", "Unsubscribe"])
async def test_twilio_stop_suppresses_the_lead_confirms_in_twiml_and_a_retry_adds_nothing(
    pg_store: PostgresEventStore, fake: FakeProviders, body: str
) -> None:
    lead_id = await one_lead(pg_store)
    params = fake.twilio_inbound(from_=PHONE, body=body)
    sid = params["MessageSid"]
    async with serve(pg_store, fake.env()) as base:
        status, text, headers = await fake.send_twilio_webhook(base + SMS_PATH, params)
        assert status == 200, text
        assert headers["Content-Type"].startswith("text/xml")
        reply = twiml_message(text)
        assert reply is not None
        assert BUSINESS in reply and "START" in reply

        on_lead = await stream(pg_store, lead_stream(lead_id))
        assert types(on_lead) == ["LeadIngested", "LeadSuppressed", "LeadReplied"]
        suppressed = on_lead[1].event
        assert isinstance(suppressed, LeadSuppressed)
        assert suppressed.reason.startswith("opted_out") and suppressed.channel == "sms"
        replied = on_lead[2].event
        assert isinstance(replied, LeadReplied) and replied.body == body and replied.channel == "sms"
        assert await lead_status(pg_store, lead_id) == "suppressed"

        inbound = await stream(pg_store, inbound_stream("twilio", sid))
        assert types(inbound) == ["InboundMessageReceived", "AutoReplySent"]
        received, answered = inbound[0].event, inbound[1].event
        assert isinstance(received, InboundMessageReceived)
        assert (received.keyword, received.lead_ids, received.from_number, received.to_number) == (
            "stop",
            [lead_id],
            PHONE,
            fake.twilio_from,
        )
        assert received.channel == "sms" and received.body == body
        assert isinstance(answered, AutoReplySent)
        assert (answered.via, answered.kind, answered.body, answered.to_number, answered.in_reply_to) == (
            "twiml",
            "stop",
            reply,
            PHONE,
            sid,
        )

        # Twilio retries the same webhook (a timeout on its side): no second reply, nothing new in the log.
        before = await log_state(pg_store)
        status, text, _ = await fake.send_twilio_webhook(base + SMS_PATH, params)
        assert status == 200 and twiml_message(text) is None
        assert await log_state(pg_store) == before


async def test_a_retry_racing_the_first_delivery_is_recorded_and_answered_once(
    pg_store: PostgresEventStore, fake: FakeProviders
) -> None:
    lead_id = await one_lead(pg_store)
    params = fake.twilio_inbound(from_=PHONE, body="STOP")
    async with serve(pg_store, fake.env()) as base:
        answers = await asyncio.gather(*(fake.send_twilio_webhook(base + SMS_PATH, params) for _ in range(4)))
    assert [status for status, _, _ in answers] == [200] * 4
    replies = [twiml_message(text) for _, text, _ in answers]
    assert sum(r is not None for r in replies) == 1, replies
    assert types(await stream(pg_store, lead_stream(lead_id))) == ["LeadIngested", "LeadSuppressed", "LeadReplied"]
    assert types(await stream(pg_store, inbound_stream("twilio", params["MessageSid"]))) == [
        "InboundMessageReceived",
        "AutoReplySent",
    ]


async def test_start_after_stop_resubscribes_and_start_without_an_opt_out_does_not(
    pg_store: PostgresEventStore, fake: FakeProviders
) -> None:
    lead_id, other = await leads(pg_store, (ACCOUNT, PHONE), (ACCOUNT, "+13055550124"))
    await OrgSettings(pg_store).update(ACCOUNT, business_name=BUSINESS, contact_email=CONTACT)
    async with serve(pg_store, fake.env()) as base:
        status, _, _ = await fake.send_twilio_webhook(base + SMS_PATH, fake.twilio_inbound(from_=PHONE, body="STOP"))
        assert status == 200
        start = fake.twilio_inbound(from_=PHONE, body="Start")
        status, text, _ = await fake.send_twilio_webhook(base + SMS_PATH, start)
        assert status == 200
        reply = twiml_message(text)
        assert reply is not None and BUSINESS in reply and "resubscribed" in reply

        on_lead = await stream(pg_store, lead_stream(lead_id))
        assert types(on_lead) == ["LeadIngested", "LeadSuppressed", "LeadReplied", "LeadResubscribed", "LeadReplied"]
        resubscribed = on_lead[3].event
        assert isinstance(resubscribed, LeadResubscribed) and resubscribed.channel == "sms"
        assert await lead_status(pg_store, lead_id) == "replied"
        inbound = await stream(pg_store, inbound_stream("twilio", start["MessageSid"]))
        assert types(inbound) == ["InboundMessageReceived", "AutoReplySent"]
        assert event_as(inbound[1], AutoReplySent).kind == "start"

        # A lead that never opted out texts START: the answer, but nothing to resubscribe.
        status, text, _ = await fake.send_twilio_webhook(
            base + SMS_PATH, fake.twilio_inbound(from_="+13055550124", body="START")
        )
        assert status == 200 and twiml_message(text) is not None
        assert types(await stream(pg_store, lead_stream(other))) == ["LeadIngested", "LeadReplied"]


@pytest.mark.parametrize("body", ["HELP", "info"])
async def test_help_gets_the_help_text_with_the_business_and_contact_and_suppresses_nothing(
    pg_store: PostgresEventStore, fake: FakeProviders, body: str
) -> None:
    lead_id = await one_lead(pg_store)
    params = fake.twilio_inbound(from_=PHONE, body=body)
    async with serve(pg_store, fake.env()) as base:
        status, text, _ = await fake.send_twilio_webhook(base + SMS_PATH, params)
    assert status == 200
    reply = twiml_message(text)
    assert reply is not None
    assert BUSINESS in reply and CONTACT in reply and "STOP" in reply
    assert types(await stream(pg_store, lead_stream(lead_id))) == ["LeadIngested", "LeadReplied"]
    inbound = await stream(pg_store, inbound_stream("twilio", params["MessageSid"]))
    assert types(inbound) == ["InboundMessageReceived", "AutoReplySent"]
    assert event_as(inbound[0], InboundMessageReceived).keyword == "help"
    answered = event_as(inbound[1], AutoReplySent)
    assert (answered.kind, answered.body) == ("help", reply)


async def test_a_normal_reply_only_takes_the_lead_out_of_its_cadence(
    pg_store: PostgresEventStore, fake: FakeProviders
) -> None:
    lead_id = await one_lead(pg_store)
    params = fake.twilio_inbound(from_=PHONE, body="Sí, todavía lo tengo")
    async with serve(pg_store, fake.env()) as base:
        status, text, _ = await fake.send_twilio_webhook(base + SMS_PATH, params)
    assert status == 200 and twiml_message(text) is None
    on_lead = await stream(pg_store, lead_stream(lead_id))
    assert types(on_lead) == ["LeadIngested", "LeadReplied"]
    replied = on_lead[1].event
    assert isinstance(replied, LeadReplied)
    assert (replied.body, replied.channel) == ("Sí, todavía lo tengo", "sms") and replied.received_at is not None
    inbound = await stream(pg_store, inbound_stream("twilio", params["MessageSid"]))
    assert types(inbound) == ["InboundMessageReceived"]
    assert event_as(inbound[0], InboundMessageReceived).keyword is None


async def test_whatsapp_stop_is_recorded_on_the_whatsapp_channel(
    pg_store: PostgresEventStore, fake: FakeProviders
) -> None:
    lead_id = await one_lead(pg_store)
    params = fake.twilio_inbound(from_=PHONE, body="STOP", whatsapp=True)
    assert params["From"] == f"whatsapp:{PHONE}"
    async with serve(pg_store, fake.env()) as base:
        status, text, _ = await fake.send_twilio_webhook(base + SMS_PATH, params)
    assert status == 200 and twiml_message(text) is not None
    on_lead = await stream(pg_store, lead_stream(lead_id))
    assert types(on_lead) == ["LeadIngested", "LeadSuppressed", "LeadReplied"]
    suppressed = event_as(on_lead[1], LeadSuppressed)
    assert suppressed.channel == "whatsapp" and suppressed.reason.endswith("via whatsapp")
    assert event_as(on_lead[2], LeadReplied).channel == "whatsapp"
    received, answered = (e.event for e in await stream(pg_store, inbound_stream("twilio", params["MessageSid"])))
    assert isinstance(received, InboundMessageReceived) and isinstance(answered, AutoReplySent)
    assert (received.channel, received.from_number, received.lead_ids) == ("whatsapp", PHONE, [lead_id])
    assert (answered.channel, answered.to_number, answered.from_number) == ("whatsapp", PHONE, "+14155238886")


async def test_every_lead_with_the_number_hears_the_stop_in_every_account(
    pg_store: PostgresEventStore, fake: FakeProviders
) -> None:
    await OrgSettings(pg_store).update(ACCOUNT, business_name=BUSINESS, contact_email=CONTACT)
    first, second = await leads(pg_store, (ACCOUNT, PHONE), (OTHER_ACCOUNT, PHONE))
    params = fake.twilio_inbound(from_=PHONE, body="STOP")
    async with serve(pg_store, fake.env()) as base:
        status, text, _ = await fake.send_twilio_webhook(base + SMS_PATH, params)
    assert status == 200
    reply = twiml_message(text)
    assert reply is not None and BUSINESS in reply  # signed by the account whose lead came first
    for lead_id, account in ((first, ACCOUNT), (second, OTHER_ACCOUNT)):
        on_lead = await stream(pg_store, lead_stream(lead_id))
        assert types(on_lead) == ["LeadIngested", "LeadSuppressed", "LeadReplied"]
        assert event_as(on_lead[1], LeadSuppressed).account_id == account
    received = (await stream(pg_store, inbound_stream("twilio", params["MessageSid"])))[0].event
    assert isinstance(received, InboundMessageReceived) and received.lead_ids == [first, second]


async def test_stop_from_an_unknown_number_is_recorded_and_confirmed_in_touchlines_name(
    pg_store: PostgresEventStore, fake: FakeProviders
) -> None:
    await one_lead(pg_store)
    params = fake.twilio_inbound(from_="+13055559999", body="STOP")
    async with serve(pg_store, fake.env()) as base:
        status, text, _ = await fake.send_twilio_webhook(base + SMS_PATH, params)
    assert status == 200
    reply = twiml_message(text)
    assert reply is not None and reply.startswith("Touchline:") and BUSINESS not in reply
    received = (await stream(pg_store, inbound_stream("twilio", params["MessageSid"])))[0].event
    assert isinstance(received, InboundMessageReceived) and received.lead_ids == []
    assert (
        await pg_store.pool.fetchval("select count(*) from touchline.events where event_type = 'LeadSuppressed'") == 0
    )


async def test_a_message_to_an_accounts_own_number_is_answered_in_that_accounts_name(
    pg_store: PostgresEventStore, fake: FakeProviders
) -> None:
    await one_lead(pg_store)
    dealer_number = "+17865550142"
    async with running(pg_store, [OrgSettingsProjection()]) as workers:
        await OrgSettings(pg_store).set_senders(ACCOUNT, {"sms": dealer_number})
        await caught_up(pg_store, workers)
    params = fake.twilio_inbound(from_="+13055559999", body="HELP", to=dealer_number)  # not a lead of anyone
    async with serve(pg_store, fake.env()) as base:
        status, text, _ = await fake.send_twilio_webhook(base + SMS_PATH, params)
    assert status == 200
    reply = twiml_message(text)
    assert reply is not None and reply.startswith(BUSINESS) and CONTACT in reply, reply


async def test_twilio_signs_the_public_url_when_one_is_set(pg_store: PostgresEventStore, fake: FakeProviders) -> None:
    lead_id = await one_lead(pg_store)
    settings = Settings(public_url="https://touchline.example")
    async with serve(pg_store, fake.env(), settings) as base:
        # Signed for the public URL (as Twilio calls it), with and without the default port, posted locally.
        for public in ("https://touchline.example" + SMS_PATH, "https://touchline.example:443" + SMS_PATH):
            params = fake.twilio_inbound(from_=PHONE, body="hola")
            status, text, _ = await fake.send_twilio_webhook(
                base + SMS_PATH, params, signature=fake.twilio_signature(public, params)
            )
            assert status == 200, text
        # Signed for the local URL the request really went to: not what Twilio would have signed.
        before = await log_state(pg_store)
        status, text, _ = await fake.send_twilio_webhook(base + SMS_PATH, fake.twilio_inbound(from_=PHONE, body="x"))
        assert status == 403 and "does not match" in error_of(text) and "https://touchline.example" in error_of(text)
        assert await log_state(pg_store) == before
    assert types(await stream(pg_store, lead_stream(lead_id))) == ["LeadIngested", "LeadReplied", "LeadReplied"]


# --- Twilio inbound: refused and malformed webhooks --------------------------------------------------------------


async def test_forged_unsigned_and_tampered_twilio_webhooks_are_403_and_record_nothing(
    pg_store: PostgresEventStore, fake: FakeProviders
) -> None:
    await one_lead(pg_store)
    async with serve(pg_store, fake.env()) as base:
        url = base + SMS_PATH
        params = fake.twilio_inbound(from_=PHONE, body="STOP")
        tampered = {**params, "Body": "START"}
        cases: list[tuple[str, Mapping[str, str], dict[str, str], str]] = [
            ("forged", params, {"X-Twilio-Signature": base64.b64encode(b"x" * 20).decode()}, "does not match"),
            ("missing", params, {}, "X-Twilio-Signature header is missing"),
            ("empty", params, {"X-Twilio-Signature": ""}, "X-Twilio-Signature header is missing"),
            ("other url", params, {"X-Twilio-Signature": fake.twilio_signature(base + STATUS_PATH, params)}, url),
            ("changed params", tampered, {"X-Twilio-Signature": fake.twilio_signature(url, params)}, "does not match"),
            (
                "other token",
                params,
                {"X-Twilio-Signature": twilio_signature("0" * 32, url, params.items())},
                "does not match",
            ),
        ]
        before = await log_state(pg_store)
        for name, form, headers, says in cases:
            status, text, content_type = await post_raw(url, urlencode(form).encode(), {**FORM, **headers})
            assert (status, content_type) == (403, "application/json"), (name, text)
            error = error_of(text)
            assert error.startswith("webhook refused:") and says in error, (name, error)
        assert await log_state(pg_store) == before
        # The same webhook, signed properly, goes through: the refusals were about the signature only.
        status, text, _ = await fake.send_twilio_webhook(url, params)
        assert status == 200 and twiml_message(text) is not None
        assert await log_state(pg_store) != before


async def test_a_body_that_is_not_a_form_or_lacks_message_sid_is_400(
    pg_store: PostgresEventStore, fake: FakeProviders
) -> None:
    await one_lead(pg_store)
    async with serve(pg_store, fake.env()) as base:
        url = base + SMS_PATH
        before = await log_state(pg_store)
        for body in (b'{"MessageSid": "SM1", "Body": "STOP"}', b"Body=STOP&&From=x", b"Body=\xff\xfeSTOP"):
            status, text, _ = await post_raw(url, body, {**FORM, "X-Twilio-Signature": "c2lnbmVk"})
            assert status == 400, (body, text)
            assert "application/x-www-form-urlencoded" in error_of(text)
        params = fake.twilio_inbound(from_=PHONE, body="STOP")
        del params["MessageSid"]
        status, text, _ = await fake.send_twilio_webhook(url, params)
        assert status == 400
        body = msgspec.json.decode(text)
        assert body == {"error": "missing MessageSid in the Twilio webhook", "field": "MessageSid"}
        assert await log_state(pg_store) == before


async def test_an_oversize_webhook_is_413(pg_store: PostgresEventStore, fake: FakeProviders) -> None:
    await one_lead(pg_store)
    async with serve(pg_store, fake.env()) as base:
        before = await log_state(pg_store)
        params = fake.twilio_inbound(from_=PHONE, body="x" * (64 * 1024))
        status, text, _ = await fake.send_twilio_webhook(base + SMS_PATH, params)
        assert status == 413 and "over 65536 bytes" in error_of(text)
        envelope = fake.telnyx_inbound(from_=PHONE, text="y" * (64 * 1024))
        status, text = await fake.send_telnyx_webhook(base + TELNYX_PATH, envelope)
        assert status == 413 and "over 65536 bytes" in error_of(text)
        assert await log_state(pg_store) == before
        # Just under the limit is fine.
        params = fake.twilio_inbound(from_=PHONE, body="z" * (60 * 1024))
        status, text, _ = await fake.send_twilio_webhook(base + SMS_PATH, params)
        assert status == 200, text


async def _post_in_two_pieces(url: str, head_lines: list[str], first: bytes, second: bytes) -> tuple[int, bytes]:
    """POST over a raw connection: the headers and `first`, then `second` only if the server has not answered yet.

    A server that reads the whole body waits for `second` (we give it 0.5 s to show it does not answer
    early); one that answers after `first` has judged half a body.
    """
    parts = urlsplit(url)
    reader, writer = await asyncio.open_connection(parts.hostname, parts.port)
    try:
        target = parts.path + (f"?{parts.query}" if parts.query else "")
        head = f"POST {target} HTTP/1.1\r\nHost: {parts.netloc}\r\nConnection: close\r\n" + "".join(
            f"{line}\r\n" for line in head_lines
        )
        writer.write(head.encode() + b"\r\n" + first)
        await writer.drain()
        status_line = b""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(0.5):
                status_line = await reader.readline()
        if not status_line:
            writer.write(second)
            await writer.drain()
            status_line = await reader.readline()
        length = 0
        while (line := await reader.readline()) not in (b"\r\n", b""):
            name, _, value = line.decode().partition(":")
            if name.strip().lower() == "content-length":
                length = int(value)
        # Not to EOF: a server that answered early may keep the connection open for the body it did not read.
        answer = await reader.readexactly(length)
    finally:
        writer.close()
        with contextlib.suppress(ConnectionError):
            await writer.wait_closed()
    return int(status_line.split()[1]), answer


async def test_a_webhook_body_that_arrives_in_two_pieces_is_read_whole(
    pg_store: PostgresEventStore, fake: FakeProviders
) -> None:
    lead_id = await one_lead(pg_store)
    async with serve(pg_store, fake.env()) as base:
        url = base + SMS_PATH
        params = fake.twilio_inbound(from_=PHONE, body="Sí, todavía lo tengo. " * 40)
        body = urlencode(params).encode()
        head = [
            f"Content-Length: {len(body)}",
            f"Content-Type: {FORM['Content-Type']}",
            f"X-Twilio-Signature: {fake.twilio_signature(url, params)}",
        ]
        status, answer = await _post_in_two_pieces(url, head, body[: len(body) // 2], body[len(body) // 2 :])
    assert status == 200, answer
    assert types(await stream(pg_store, lead_stream(lead_id))) == ["LeadIngested", "LeadReplied"]


async def test_an_oversize_chunked_webhook_is_413(pg_store: PostgresEventStore, fake: FakeProviders) -> None:
    await one_lead(pg_store)
    async with serve(pg_store, fake.env()) as base:
        before = await log_state(pg_store)
        piece = b"Body=" + b"x" * 40_000

        def chunk(data: bytes) -> bytes:
            return f"{len(data):x}\r\n".encode() + data + b"\r\n"

        head = ["Transfer-Encoding: chunked", f"Content-Type: {FORM['Content-Type']}", "X-Twilio-Signature: c2ln"]
        status, answer = await _post_in_two_pieces(
            base + SMS_PATH, head, chunk(piece), chunk(b"x" * 40_000) + b"0\r\n\r\n"
        )
        assert await log_state(pg_store) == before
    assert status == 413, answer


# --- Twilio status callbacks -------------------------------------------------------------------------------------


def twilio_status_params(fake: FakeProviders, sid: str, status: str, code: str | None = None) -> dict[str, str]:
    params = {
        "AccountSid": fake.twilio_account_sid,
        "ApiVersion": "2010-04-01",
        "From": fake.twilio_from,
        "MessageSid": sid,
        "MessageStatus": status,
        "SmsSid": sid,
        "SmsStatus": status,
        "To": PHONE,
    }
    if code is not None:
        params["ErrorCode"] = code
    return params


async def test_twilio_delivery_status_is_recorded_once(pg_store: PostgresEventStore, fake: FakeProviders) -> None:
    lead_id = uuid.uuid4()
    sid = "SM" + uuid.uuid4().hex
    touch = await dispatched_touch(pg_store, lead_id, "twilio", sid)
    async with serve(pg_store, fake.env()) as base:
        url = f"{base}{STATUS_PATH}?touch={touch}"
        params = twilio_status_params(fake, sid, "delivered")
        status, text, _ = await fake.send_twilio_webhook(url, params)
        assert (status, text) == (204, "")
        events = await stream(pg_store, touch_stream(touch))
        assert types(events) == ["TouchRunScheduled", "TouchRunDispatched", "TouchRunDeliveryStatus"]
        delivered = events[2].event
        assert isinstance(delivered, TouchRunDeliveryStatus)
        assert (delivered.provider, delivered.status, delivered.provider_message_id, delivered.error_code) == (
            "twilio",
            "delivered",
            sid,
            None,
        )
        assert delivered.account_id == ACCOUNT
        before = await log_state(pg_store)
        status, _, _ = await fake.send_twilio_webhook(url, params)
        assert status == 204
        assert await log_state(pg_store) == before
    assert await stream(pg_store, lead_stream(lead_id)) == []  # a delivery says nothing about the lead


@pytest.mark.parametrize(
    ("code", "lead_event"),
    [("21610", "LeadSuppressed"), ("30005", "LeadContactInvalid"), ("30003", None)],
)
async def test_twilio_undelivered_with_an_opt_out_or_bad_number_code_marks_the_lead(
    pg_store: PostgresEventStore, fake: FakeProviders, code: str, lead_event: str | None
) -> None:
    lead_id = uuid.uuid4()
    sid = "SM" + uuid.uuid4().hex
    touch = await dispatched_touch(pg_store, lead_id, "twilio", sid)
    async with serve(pg_store, fake.env()) as base:
        url = f"{base}{STATUS_PATH}?touch={touch}"
        params = twilio_status_params(fake, sid, "undelivered", code)
        status, _, _ = await fake.send_twilio_webhook(url, params)
        assert status == 204
        status_events = await stream(pg_store, touch_stream(touch))
        last = event_as(status_events[-1], TouchRunDeliveryStatus)
        assert (last.status, last.error_code) == ("undelivered", code)
        on_lead = await stream(pg_store, lead_stream(lead_id))
        assert types(on_lead) == ([] if lead_event is None else [lead_event])
        if lead_event == "LeadSuppressed":
            event = on_lead[0].event
            assert isinstance(event, LeadSuppressed)
            assert event.reason.startswith("opted_out") and "21610" in event.reason and event.channel == "sms"
        if lead_event == "LeadContactInvalid":
            event = on_lead[0].event
            assert isinstance(event, LeadContactInvalid)
            assert (event.channel, event.error_code, event.account_id) == ("sms", code, ACCOUNT)
        before = await log_state(pg_store)
        status, _, _ = await fake.send_twilio_webhook(url, params)
        assert status == 204 and await log_state(pg_store) == before


async def test_twilio_status_for_an_unknown_touch_a_missing_touch_or_another_message_is_refused(
    pg_store: PostgresEventStore, fake: FakeProviders
) -> None:
    sid = "SM" + uuid.uuid4().hex
    touch = await dispatched_touch(pg_store, uuid.uuid4(), "twilio", sid)
    async with serve(pg_store, fake.env()) as base:
        before = await log_state(pg_store)
        unknown = uuid.uuid4()
        cases = [
            (f"{base}{STATUS_PATH}?touch={unknown}", twilio_status_params(fake, sid, "delivered"), 404, str(unknown)),
            (f"{base}{STATUS_PATH}", twilio_status_params(fake, sid, "delivered"), 400, "?touch=<uuid>"),
            (f"{base}{STATUS_PATH}?touch=nope", twilio_status_params(fake, sid, "delivered"), 400, "?touch=<uuid>"),
            (
                f"{base}{STATUS_PATH}?touch={touch}",
                twilio_status_params(fake, "SM" + uuid.uuid4().hex, "delivered"),
                404,
                f"was sent as {sid}",
            ),
            (f"{base}{STATUS_PATH}?touch={touch}", {"MessageSid": sid}, 400, "MessageStatus"),
        ]
        for url, params, expected, says in cases:
            status, text, _ = await fake.send_twilio_webhook(url, params)
            assert status == expected, (url, text)
            assert says in error_of(text), (url, text)
        # Signed for another touch's callback URL: refused before the touch is even looked at.
        params = twilio_status_params(fake, sid, "delivered")
        status, text, _ = await fake.send_twilio_webhook(
            f"{base}{STATUS_PATH}?touch={touch}",
            params,
            signature=fake.twilio_signature(f"{base}{STATUS_PATH}?touch={unknown}", params),
        )
        assert status == 403 and "does not match" in error_of(text)
        assert await log_state(pg_store) == before


# --- Telnyx ------------------------------------------------------------------------------------------------------


def telnyx_env(fake: FakeProviders) -> dict[str, str]:
    return {**fake.env(), "SMS_PROVIDER": "telnyx"}


async def test_telnyx_stop_suppresses_and_is_confirmed_once_through_the_telnyx_api(
    pg_store: PostgresEventStore, fake: FakeProviders
) -> None:
    lead_id = await one_lead(pg_store)
    envelope = fake.telnyx_inbound(from_=PHONE, text="STOP")
    message_id = envelope["data"]["payload"]["id"]
    async with serve(pg_store, telnyx_env(fake)) as base:
        status, text = await fake.send_telnyx_webhook(base + TELNYX_PATH, envelope)
        assert status == 200, text
        assert msgspec.json.decode(text) == {"recorded": True, "keyword": "stop"}
        [sent] = fake.sent("telnyx", "messages.create")
        assert sent.json["to"] == PHONE and sent.json["from"] == fake.telnyx_from
        assert BUSINESS in sent.json["text"] and "START" in sent.json["text"]

        on_lead = await stream(pg_store, lead_stream(lead_id))
        assert types(on_lead) == ["LeadIngested", "LeadSuppressed", "LeadReplied"]
        assert event_as(on_lead[1], LeadSuppressed).reason.startswith("opted_out")
        received, answered = (e.event for e in await stream(pg_store, inbound_stream("telnyx", message_id)))
        assert isinstance(received, InboundMessageReceived) and isinstance(answered, AutoReplySent)
        assert (received.provider, received.channel, received.keyword, received.lead_ids) == (
            "telnyx",
            "sms",
            "stop",
            [lead_id],
        )
        assert (received.from_number, received.to_number) == (PHONE, fake.telnyx_from)
        assert (answered.via, answered.kind, answered.to_number, answered.from_number) == (
            "api",
            "stop",
            PHONE,
            fake.telnyx_from,
        )
        assert answered.body == sent.json["text"]
        assert answered.provider_message_id == fake.telnyx_messages[0]["id"]

        # Telnyx delivers it again: no second confirmation, nothing new in the log.
        before = await log_state(pg_store)
        status, text = await fake.send_telnyx_webhook(base + TELNYX_PATH, envelope)
        assert status == 200 and msgspec.json.decode(text) == {"recorded": False, "keyword": "stop"}
        assert len(fake.sent("telnyx", "messages.create")) == 1
        assert await log_state(pg_store) == before


async def test_a_telnyx_normal_reply_sends_nothing_back(pg_store: PostgresEventStore, fake: FakeProviders) -> None:
    lead_id = await one_lead(pg_store)
    async with serve(pg_store, telnyx_env(fake)) as base:
        status, text = await fake.send_telnyx_webhook(
            base + TELNYX_PATH, fake.telnyx_inbound(from_=PHONE, text="¿Sigue disponible?")
        )
    assert status == 200 and msgspec.json.decode(text) == {"recorded": True, "keyword": None}
    assert fake.sent("telnyx", "messages.create") == []
    assert types(await stream(pg_store, lead_stream(lead_id))) == ["LeadIngested", "LeadReplied"]


async def test_a_telnyx_stop_while_sms_goes_through_twilio_suppresses_but_sends_no_confirmation(
    pg_store: PostgresEventStore, fake: FakeProviders
) -> None:
    lead_id = await one_lead(pg_store)
    envelope = fake.telnyx_inbound(from_=PHONE, text="STOP")
    async with serve(pg_store, fake.env()) as base:  # SMS_PROVIDER unset: Twilio has credentials, so Twilio
        status, text = await fake.send_telnyx_webhook(base + TELNYX_PATH, envelope)
    assert status == 200 and msgspec.json.decode(text) == {"recorded": True, "keyword": "stop"}
    assert fake.sent("telnyx", "messages.create") == [] and fake.sent("twilio", "messages.create") == []
    assert types(await stream(pg_store, lead_stream(lead_id))) == ["LeadIngested", "LeadSuppressed", "LeadReplied"]
    inbound = await stream(pg_store, inbound_stream("telnyx", envelope["data"]["payload"]["id"]))
    assert types(inbound) == ["InboundMessageReceived"]


async def test_a_telnyx_stop_whose_confirmation_fails_suppresses_at_once_and_is_confirmed_on_the_retry(
    pg_store: PostgresEventStore, fake: FakeProviders
) -> None:
    lead_id = await one_lead(pg_store)
    fake.fail("telnyx", "messages.create", status=500)
    envelope = fake.telnyx_inbound(from_=PHONE, text="stop")
    inbound = inbound_stream("telnyx", envelope["data"]["payload"]["id"])
    async with serve(pg_store, telnyx_env(fake)) as base:
        status, text = await fake.send_telnyx_webhook(base + TELNYX_PATH, envelope)
        # Recorded and suppressed, but the confirmation is owed: a 503 makes Telnyx deliver it again.
        assert status == 503, text
        answer = msgspec.json.decode(text)
        assert (answer["recorded"], answer["keyword"]) == (True, "stop")
        assert "could not be sent" in answer["error"] and "deliver again" in answer["error"]
        assert len(fake.sent("telnyx", "messages.create")) == 1  # tried, refused by Telnyx
        assert types(await stream(pg_store, lead_stream(lead_id))) == ["LeadIngested", "LeadSuppressed", "LeadReplied"]
        assert types(await stream(pg_store, inbound)) == ["InboundMessageReceived"]

        status, text = await fake.send_telnyx_webhook(base + TELNYX_PATH, envelope)  # Telnyx's retry
        assert status == 200 and msgspec.json.decode(text) == {"recorded": False, "keyword": "stop"}
        assert len(fake.sent("telnyx", "messages.create")) == 2
        assert types(await stream(pg_store, inbound)) == ["InboundMessageReceived", "AutoReplySent"]

        before = await log_state(pg_store)
        status, _ = await fake.send_telnyx_webhook(base + TELNYX_PATH, envelope)  # answered: nothing more
        assert status == 200 and len(fake.sent("telnyx", "messages.create")) == 2
        assert await log_state(pg_store) == before
    assert types(await stream(pg_store, lead_stream(lead_id))) == ["LeadIngested", "LeadSuppressed", "LeadReplied"]


async def test_stale_unsigned_and_forged_telnyx_webhooks_are_403_and_record_nothing(
    pg_store: PostgresEventStore, fake: FakeProviders
) -> None:
    await one_lead(pg_store)
    async with serve(pg_store, telnyx_env(fake)) as base:
        url = base + TELNYX_PATH
        before = await log_state(pg_store)

        status, text = await fake.send_telnyx_webhook(
            url, fake.telnyx_inbound(from_=PHONE, text="STOP"), timestamp=int(time.time()) - 600
        )
        assert status == 403 and "stale" in error_of(text)
        status, text = await fake.send_telnyx_webhook(
            url, fake.telnyx_inbound(from_=PHONE, text="STOP"), timestamp=int(time.time()) + 600
        )
        assert status == 403 and "stale" in error_of(text)
        status, text = await fake.send_telnyx_webhook(url, fake.telnyx_inbound(from_=PHONE, text="STOP"), sign=False)
        assert status == 403 and "telnyx-signature-ed25519 and telnyx-timestamp headers are required" in error_of(text)

        body = msgspec.json.encode(fake.telnyx_inbound(from_=PHONE, text="STOP"))
        other_body = msgspec.json.encode(fake.telnyx_inbound(from_=PHONE, text="START"))
        now = str(int(time.time()))
        stranger = Ed25519PrivateKey.generate()
        forged = {
            "telnyx-signature-ed25519": base64.b64encode(stranger.sign(f"{now}|".encode() + body)).decode(),
            "telnyx-timestamp": now,
        }
        json_type = {"Content-Type": "application/json"}
        for name, sent_body, headers in (
            ("another key", body, forged),
            ("another body", body, fake.telnyx_headers(other_body)),
            ("not base64", body, {**fake.telnyx_headers(body), "telnyx-signature-ed25519": "not base64!"}),
            ("moved timestamp", body, {**fake.telnyx_headers(body), "telnyx-timestamp": str(int(time.time()) - 1)}),
        ):
            status, text, _ = await post_raw(url, sent_body, {**json_type, **headers})
            assert status == 403, (name, text)
            assert "does not match the body and timestamp" in error_of(text), (name, text)
        status, text, _ = await post_raw(
            url, body, {**json_type, **fake.telnyx_headers(body), "telnyx-timestamp": "soon"}
        )
        assert status == 403 and "is not a unix time" in error_of(text)

        assert await log_state(pg_store) == before
        assert fake.sent("telnyx", "messages.create") == []


async def test_signed_telnyx_webhooks_that_are_not_envelopes_or_not_ours_record_nothing(
    pg_store: PostgresEventStore, fake: FakeProviders
) -> None:
    await one_lead(pg_store)
    async with serve(pg_store, telnyx_env(fake)) as base:
        url = base + TELNYX_PATH
        before = await log_state(pg_store)
        for body in (b"not json", b'{"data": {"payload": {}}}', b'{"data": {"event_type": "x", "payload": []}}'):
            status, text, _ = await post_raw(url, body, fake.telnyx_headers(body))
            assert status == 400, (body, text)
            assert "not a Telnyx v2 webhook envelope" in error_of(text)
        envelope = fake.telnyx_inbound(from_=PHONE, text="STOP")
        del envelope["data"]["payload"]["from"]
        status, text = await fake.send_telnyx_webhook(url, envelope)
        assert status == 400 and "from.phone_number" in error_of(text)
        envelope = fake.telnyx_inbound(from_=PHONE, text="STOP")
        envelope["data"]["event_type"] = "message.delivered_to_the_moon"
        status, text = await fake.send_telnyx_webhook(url, envelope)
        assert status == 200 and msgspec.json.decode(text) == {"ignored": "message.delivered_to_the_moon"}
        assert await log_state(pg_store) == before


async def test_telnyx_sent_and_finalized_are_recorded_on_the_touch_once(
    pg_store: PostgresEventStore, fake: FakeProviders
) -> None:
    lead_id = uuid.uuid4()
    message_id = str(uuid.uuid4())
    touch = await dispatched_touch(pg_store, lead_id, "telnyx", message_id)
    async with serve(pg_store, telnyx_env(fake)) as base:
        url = f"{base}{TELNYX_PATH}?touch={touch}"
        for event_type, status_name in (("message.sent", "sent"), ("message.finalized", "delivered")):
            status, text = await fake.send_telnyx_webhook(
                url, telnyx_status_envelope(event_type, message_id, status_name)
            )
            assert status == 200 and msgspec.json.decode(text) == {"recorded": True}
        events = await stream(pg_store, touch_stream(touch))
        assert types(events)[2:] == ["TouchRunDeliveryStatus", "TouchRunDeliveryStatus"]
        recorded = [event_as(e, TouchRunDeliveryStatus) for e in events[2:]]
        assert [(e.provider, e.status, e.provider_message_id) for e in recorded] == [
            ("telnyx", "sent", message_id),
            ("telnyx", "delivered", message_id),
        ]
        before = await log_state(pg_store)
        status, text = await fake.send_telnyx_webhook(
            url, telnyx_status_envelope("message.finalized", message_id, "delivered")
        )
        assert status == 200 and msgspec.json.decode(text) == {"recorded": False}
        assert await log_state(pg_store) == before
        # Refused: no touch named, a touch nobody knows, another message than the touch sent.
        for bad_url, mid, expected in (
            (base + TELNYX_PATH, message_id, 400),
            (f"{base}{TELNYX_PATH}?touch={uuid.uuid4()}", message_id, 404),
            (url, str(uuid.uuid4()), 404),
        ):
            status, text = await fake.send_telnyx_webhook(
                bad_url, telnyx_status_envelope("message.finalized", mid, "delivered")
            )
            assert status == expected, (bad_url, text)
        assert await log_state(pg_store) == before
    assert await stream(pg_store, lead_stream(lead_id)) == []


async def test_telnyx_finalized_blocked_by_stop_suppresses_the_lead(
    pg_store: PostgresEventStore, fake: FakeProviders
) -> None:
    lead_id = uuid.uuid4()
    message_id = str(uuid.uuid4())
    touch = await dispatched_touch(pg_store, lead_id, "telnyx", message_id)
    async with serve(pg_store, telnyx_env(fake)) as base:
        status, _ = await fake.send_telnyx_webhook(
            f"{base}{TELNYX_PATH}?touch={touch}",
            telnyx_status_envelope("message.finalized", message_id, "delivery_failed", "40300"),
        )
    assert status == 200
    last = (await stream(pg_store, touch_stream(touch)))[-1].event
    assert isinstance(last, TouchRunDeliveryStatus)
    assert (last.status, last.error_code) == ("delivery_failed", "40300")
    [suppressed] = await stream(pg_store, lead_stream(lead_id))
    assert isinstance(suppressed.event, LeadSuppressed) and "40300" in suppressed.event.reason


async def test_status_callbacks_without_a_message_id_are_recorded_for_each_touch(
    pg_store: PostgresEventStore, fake: FakeProviders
) -> None:
    touches = [await dispatched_touch(pg_store, uuid.uuid4(), "telnyx", None) for _ in range(2)]
    async with serve(pg_store, telnyx_env(fake)) as base:
        answers = [
            await fake.send_telnyx_webhook(
                f"{base}{TELNYX_PATH}?touch={touch}", telnyx_status_envelope("message.finalized", None, "delivered")
            )
            for touch in touches
        ]
    assert [status for status, _ in answers] == [200, 200]
    for touch in touches:
        assert types(await stream(pg_store, touch_stream(touch)))[-1] == "TouchRunDeliveryStatus"
    assert [msgspec.json.decode(text) for _, text in answers] == [{"recorded": True}, {"recorded": True}]


# --- not configured ----------------------------------------------------------------------------------------------


async def test_without_the_verification_secrets_every_webhook_is_403_naming_the_variable(
    pg_store: PostgresEventStore, fake: FakeProviders
) -> None:
    lead_id = await one_lead(pg_store)
    sid = "SM" + uuid.uuid4().hex
    touch = await dispatched_touch(pg_store, lead_id, "twilio", sid)
    env = {k: v for k, v in fake.env().items() if not k.startswith("TWILIO_") and k != "TELNYX_PUBLIC_KEY"}
    async with serve(pg_store, env) as base:
        before = await log_state(pg_store)
        # Signed exactly as the providers sign them: the server has nothing to check the signatures with.
        status, text, _ = await fake.send_twilio_webhook(base + SMS_PATH, fake.twilio_inbound(from_=PHONE, body="STOP"))
        assert status == 403 and "TWILIO_AUTH_TOKEN is not set" in error_of(text)
        status, text, _ = await fake.send_twilio_webhook(
            f"{base}{STATUS_PATH}?touch={touch}", twilio_status_params(fake, sid, "delivered")
        )
        assert status == 403 and "TWILIO_AUTH_TOKEN is not set" in error_of(text)
        for url, envelope in (
            (base + TELNYX_PATH, fake.telnyx_inbound(from_=PHONE, text="STOP")),
            (f"{base}{TELNYX_PATH}?touch={touch}", telnyx_status_envelope("message.finalized", sid, "delivered")),
        ):
            status, text = await fake.send_telnyx_webhook(url, envelope)
            assert status == 403 and "TELNYX_PUBLIC_KEY is not set" in error_of(text)
        assert await log_state(pg_store) == before
    assert fake.sent("telnyx", "messages.create") == []


async def test_a_malformed_telnyx_public_key_stops_the_server_from_starting(pg_store: PostgresEventStore) -> None:
    with pytest.raises(ConfigError, match="TELNYX_PUBLIC_KEY must be the base64 of a 32-byte Ed25519 public key"):
        async with serve(pg_store, {"TELNYX_PUBLIC_KEY": base64.b64encode(b"short").decode()}):
            pass
