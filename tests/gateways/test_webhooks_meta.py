"""Meta's WhatsApp Cloud API webhooks over real HTTP: the subscription check, inbound messages, statuses.

Notifications are built as graph.facebook.com sends them (one `whatsapp_business_account` object,
entries of `messages` changes) and signed with the fake providers' app secret; each test checks
the answer and what the log holds afterwards.
"""

from __future__ import annotations

import uuid

import aiohttp
import msgspec

from events.catalog import (
    AutoReplySent,
    InboundMessageReceived,
    LeadContactInvalid,
    LeadReplied,
    LeadSuppressed,
    TouchRunDeliveryStatus,
    inbound_stream,
    lead_stream,
    touch_stream,
)
from events.postgres import PostgresEventStore
from tests.gateways.providers.fake_servers import FakeProviders
from tests.gateways.test_webhooks import (
    ACCOUNT,
    BUSINESS,
    PHONE,
    dispatched_touch,
    event_as,
    fake,
    lead_status,
    leads,
    log_state,
    one_lead,
    serve,
    stream,
    types,
)

__all__ = ["fake"]  # the fixture, shared with the Twilio and Telnyx webhook tests

PATH = "/webhooks/meta/whatsapp"


def message_id(notification: dict[str, object]) -> str:
    return notification["entry"][0]["changes"][0]["value"]["messages"][0]["id"]  # type: ignore[index, no-any-return]


async def test_the_subscription_check_echoes_the_challenge_only_for_our_verify_token(
    pg_store: PostgresEventStore, fake: FakeProviders
) -> None:
    async with serve(pg_store, fake.env()) as base, aiohttp.ClientSession() as http:
        query = {"hub.mode": "subscribe", "hub.verify_token": fake.whatsapp_verify_token, "hub.challenge": "1158201444"}
        async with http.get(base + PATH, params=query) as r:
            assert (r.status, await r.text()) == (200, "1158201444")
        for wrong in ({**query, "hub.verify_token": "guess"}, {**query, "hub.mode": "unsubscribe"}, {}):
            async with http.get(base + PATH, params=wrong) as r:
                assert r.status == 403, wrong
                assert "1158201444" not in await r.text()
    env = {k: v for k, v in fake.env().items() if k != "WHATSAPP_VERIFY_TOKEN"}
    async with (
        serve(pg_store, env) as base,
        aiohttp.ClientSession() as http,
        http.get(base + PATH, params=query) as r,
    ):
        assert r.status == 403 and "WHATSAPP_VERIFY_TOKEN is not set" in await r.text()


async def test_a_whatsapp_stop_suppresses_the_lead_and_is_confirmed_once_through_the_cloud_api(
    pg_store: PostgresEventStore, fake: FakeProviders
) -> None:
    lead_id = await one_lead(pg_store)
    notification = fake.meta_inbound(from_=PHONE, text="Stop")
    wamid = message_id(notification)
    async with serve(pg_store, fake.env()) as base:
        status, text = await fake.send_meta_webhook(base + PATH, notification)
        assert status == 200, text
        assert msgspec.json.decode(text) == {
            "messages": 1,
            "statuses": 0,
            "duplicates": 0,
            "skipped": [],
            "unanswered": [],
        }
        [sent] = fake.sent("meta")
        assert sent.json["to"] == PHONE.lstrip("+") and sent.json["type"] == "text"  # in the window: free text
        assert BUSINESS in sent.json["text"]["body"]

        on_lead = await stream(pg_store, lead_stream(lead_id))
        assert types(on_lead) == ["LeadIngested", "LeadSuppressed", "LeadReplied"]
        assert event_as(on_lead[1], LeadSuppressed).channel == "whatsapp"
        received, answered = (e.event for e in await stream(pg_store, inbound_stream("meta", wamid)))
        assert isinstance(received, InboundMessageReceived) and isinstance(answered, AutoReplySent)
        assert (received.channel, received.keyword, received.lead_ids) == ("whatsapp", "stop", [lead_id])
        assert (received.from_number, received.to_number) == (PHONE, "+" + fake.whatsapp_display_number)
        assert (answered.via, answered.kind, answered.to_number) == ("api", "stop", PHONE)
        assert answered.provider_message_id == fake.whatsapp_messages[0]["id"]

        # Meta delivers it again (it retries until it gets a 200): no second confirmation, nothing new.
        before = await log_state(pg_store)
        status, text = await fake.send_meta_webhook(base + PATH, notification)
        assert status == 200 and msgspec.json.decode(text)["duplicates"] == 1
        assert len(fake.sent("meta")) == 1
        assert await log_state(pg_store) == before
    assert await lead_status(pg_store, lead_id) == "suppressed"


async def test_a_stop_whose_confirmation_fails_is_answered_503_and_confirmed_when_meta_retries(
    pg_store: PostgresEventStore, fake: FakeProviders
) -> None:
    lead_id = await one_lead(pg_store)
    fake.fail("meta", "messages.create", status=500)
    notification = fake.meta_inbound(from_=PHONE, text="STOP")
    async with serve(pg_store, fake.env()) as base:
        status, text = await fake.send_meta_webhook(base + PATH, notification)
        assert status == 503, text
        answer = msgspec.json.decode(text)
        assert answer["messages"] == 1 and answer["unanswered"][0].startswith(message_id(notification))
        assert await lead_status(pg_store, lead_id) == "suppressed"
        status, text = await fake.send_meta_webhook(base + PATH, notification)
        assert status == 200, text
        assert msgspec.json.decode(text)["duplicates"] == 1
    assert len(fake.sent("meta")) == 2
    on_inbound = await stream(pg_store, inbound_stream("meta", message_id(notification)))
    assert types(on_inbound) == ["InboundMessageReceived", "AutoReplySent"]


async def test_replies_by_text_button_and_photo_take_the_lead_out_of_its_cadence_and_send_nothing(
    pg_store: PostgresEventStore, fake: FakeProviders
) -> None:
    lead_id = await one_lead(pg_store)
    async with serve(pg_store, fake.env()) as base:
        for kind, text in (("text", "¿Sigue disponible?"), ("button", "Me interesa"), ("image", "el carro")):
            status, answer = await fake.send_meta_webhook(
                base + PATH, fake.meta_inbound(from_=PHONE, text=text, kind=kind)
            )
            assert status == 200 and msgspec.json.decode(answer)["messages"] == 1, answer
    assert fake.sent("meta") == []
    on_lead = await stream(pg_store, lead_stream(lead_id))
    assert types(on_lead) == ["LeadIngested", "LeadReplied", "LeadReplied", "LeadReplied"]
    bodies = [event_as(e, LeadReplied).body for e in on_lead[1:]]
    assert bodies == ["¿Sigue disponible?", "Me interesa", "[image] el carro"]
    assert {event_as(e, LeadReplied).channel for e in on_lead[1:]} == {"whatsapp"}


async def test_statuses_are_recorded_on_their_touch_once_and_opt_out_or_bad_number_codes_mark_the_lead(
    pg_store: PostgresEventStore, fake: FakeProviders
) -> None:
    lead_id = await one_lead(pg_store)
    delivered = await dispatched_touch(pg_store, lead_id, "meta", "wamid.delivered")
    blocked = await dispatched_touch(pg_store, lead_id, "meta", "wamid.blocked")
    async with serve(pg_store, fake.env()) as base:
        notification = fake.meta_status(
            message_id="wamid.delivered", status="delivered", recipient=PHONE, touch=str(delivered)
        )
        for duplicates in (0, 1):
            status, text = await fake.send_meta_webhook(base + PATH, notification)
            assert status == 200 and msgspec.json.decode(text) == {
                "messages": 0,
                "statuses": 1 - duplicates,
                "duplicates": duplicates,
                "skipped": [],
                "unanswered": [],
            }
        failed = fake.meta_status(
            message_id="wamid.blocked", status="failed", recipient=PHONE, touch=str(blocked), error_code=131050
        )
        status, text = await fake.send_meta_webhook(base + PATH, failed)
        assert status == 200, text
    [on_touch] = [e for e in await stream(pg_store, touch_stream(delivered)) if e.type == "TouchRunDeliveryStatus"]
    status_event = event_as(on_touch, TouchRunDeliveryStatus)
    assert (status_event.provider, status_event.status, status_event.provider_message_id) == (
        "meta",
        "delivered",
        "wamid.delivered",
    )
    assert status_event.occurred_at is not None
    [failure] = [e for e in await stream(pg_store, touch_stream(blocked)) if e.type == "TouchRunDeliveryStatus"]
    assert event_as(failure, TouchRunDeliveryStatus).error_code == "131050"
    assert await lead_status(pg_store, lead_id) == "suppressed"

    [other_lead] = await leads(pg_store, (ACCOUNT, "+13055550999"))
    undeliverable = await dispatched_touch(pg_store, other_lead, "meta", "wamid.nowa")
    async with serve(pg_store, fake.env()) as base:
        note = fake.meta_status(
            message_id="wamid.nowa",
            status="failed",
            recipient="+13055550999",
            touch=str(undeliverable),
            error_code=131026,
        )
        assert (await fake.send_meta_webhook(base + PATH, note))[0] == 200
    invalid = [e for e in await stream(pg_store, lead_stream(other_lead)) if e.type == "LeadContactInvalid"]
    assert [event_as(e, LeadContactInvalid).channel for e in invalid] == ["sms"]  # the touch's channel


async def test_a_status_we_cannot_place_is_skipped_with_its_reason_and_its_neighbours_are_recorded(
    pg_store: PostgresEventStore, fake: FakeProviders
) -> None:
    lead_id = await one_lead(pg_store)
    touch = await dispatched_touch(pg_store, lead_id, "meta", "wamid.ours")
    ours = fake.meta_status(message_id="wamid.ours", status="read", recipient=PHONE, touch=str(touch))
    unknown = fake.meta_status(message_id="wamid.x", status="read", recipient=PHONE, touch=str(uuid.uuid4()))
    untagged = fake.meta_status(message_id="wamid.y", status="sent", recipient=PHONE, touch=None)
    value = ours["entry"][0]["changes"][0]["value"]
    value["statuses"] += unknown["entry"][0]["changes"][0]["value"]["statuses"]
    value["statuses"] += untagged["entry"][0]["changes"][0]["value"]["statuses"]
    async with serve(pg_store, fake.env()) as base:
        status, text = await fake.send_meta_webhook(base + PATH, ours)
    assert status == 200, text
    answer = msgspec.json.decode(text)
    assert answer["statuses"] == 1 and len(answer["skipped"]) == 2
    assert answer["skipped"][0].startswith("wamid.x: no touch run")
    assert answer["skipped"][1] == "wamid.y: no touch run in biz_opaque_callback_data"
    assert "TouchRunDeliveryStatus" in types(await stream(pg_store, touch_stream(touch)))


async def test_forged_unsigned_and_malformed_notifications_are_refused_and_record_nothing(
    pg_store: PostgresEventStore, fake: FakeProviders
) -> None:
    await one_lead(pg_store)
    notification = fake.meta_inbound(from_=PHONE, text="STOP")
    body = msgspec.json.encode(notification)
    async with serve(pg_store, fake.env()) as base, aiohttp.ClientSession() as http:
        before = await log_state(pg_store)
        for headers in (
            {},
            {"X-Hub-Signature-256": "sha256=" + "0" * 64},
            {"X-Hub-Signature-256": fake.meta_signature(body).removeprefix("sha256=")},  # no scheme
            {"X-Hub-Signature-256": fake.meta_signature(body + b" ")},  # signed another body
        ):
            async with http.post(base + PATH, data=body, headers=headers) as r:
                assert r.status == 403, headers
                assert "webhook refused" in (await r.json())["error"]
        for bad, why in (
            (b"{not json", "is JSON"),
            (b'{"object": "page", "entry": []}', "whatsapp_business_account"),
            (b'{"object": "whatsapp_business_account"}', '"entry" list'),
            (b'{"object": "whatsapp_business_account", "entry": [{"changes": [{"field": "messages"}]}]}', '"value"'),
            (
                b'{"object": "whatsapp_business_account", "entry": [{"changes": [{"field": "messages", '
                b'"value": {"messages": [{"type": "text"}]}}]}]}',
                "id and from",
            ),
        ):
            async with http.post(base + PATH, data=bad, headers={"X-Hub-Signature-256": fake.meta_signature(bad)}) as r:
                assert r.status == 400, bad
                assert why in (await r.json())["error"], bad
        assert await log_state(pg_store) == before
    env = {k: v for k, v in fake.env().items() if k != "WHATSAPP_APP_SECRET"}
    async with serve(pg_store, env) as base:
        status, text = await fake.send_meta_webhook(base + PATH, notification)
    assert status == 403 and "WHATSAPP_APP_SECRET is not set" in text
    assert await log_state(pg_store) == before
