"""ElasticEmail's HTTP web notifications over real HTTP: email events on their touch, bounces and opt-outs.

ElasticEmail calls the notification URL with a GET whose query says what happened to one email
(`status`, bounce `category`, the `postback` sent with it); the URL's own token is the only proof
it is ElasticEmail, since nothing is signed.
"""

from __future__ import annotations

import uuid

import aiohttp
import msgspec

from events.catalog import (
    LeadContactInvalid,
    LeadIngested,
    TouchRunDeliveryStatus,
    lead_stream,
    touch_stream,
)
from events.envelope import Envelope
from events.postgres import PostgresEventStore
from tests.gateways.providers.fake_servers import FakeProviders
from tests.gateways.test_webhooks import (
    ACCOUNT,
    dispatched_touch,
    event_as,
    fake,
    lead_status,
    log_state,
    serve,
    stream,
    types,
)

__all__ = ["fake"]  # the fixture, shared with the other webhook tests

PATH = "/webhooks/elastic"
EMAIL = "vendedor@example.com"


async def emailed(store: PostgresEventStore, message_id: str) -> tuple[uuid.UUID, uuid.UUID]:
    """A lead and an email touch sent to it through ElasticEmail as `message_id`."""
    lead_id = uuid.uuid4()
    await store.append(
        lead_stream(lead_id),
        [LeadIngested(lead_id=lead_id, account_id=ACCOUNT, source="craigslist", external_id="e1", email=EMAIL)],
    )
    return lead_id, await dispatched_touch(store, lead_id, "elastic", message_id, channel="email")


def statuses(envelopes: list[Envelope]) -> list[tuple[str, str | None]]:
    found = []
    for envelope in envelopes:
        if envelope.type == "TouchRunDeliveryStatus":
            event = event_as(envelope, TouchRunDeliveryStatus)
            found.append((event.status, event.error_code))
    return found


async def test_sent_opened_and_clicked_are_recorded_on_the_touch_once(
    pg_store: PostgresEventStore, fake: FakeProviders
) -> None:
    lead_id, touch = await emailed(pg_store, "msg-1")
    async with serve(pg_store, fake.env()) as base:
        for status in ("Sent", "Opened", "Clicked"):
            params = fake.elastic_notification(status=status, to=EMAIL, postback=str(touch), message_id="msg-1")
            answer = await fake.send_elastic_webhook(base + PATH, params)
            assert answer == (200, '{"recorded":true}'), answer
            assert await fake.send_elastic_webhook(base + PATH, params) == (200, '{"recorded":false}')  # a repeat
    on_touch = await stream(pg_store, touch_stream(touch))
    assert statuses(on_touch) == [("sent", None), ("opened", None), ("clicked", None)]
    first = event_as(on_touch[2], TouchRunDeliveryStatus)
    assert first.provider == "elastic" and first.provider_message_id == "msg-1" and first.occurred_at is not None
    assert types(await stream(pg_store, lead_stream(lead_id))) == ["LeadIngested"]


async def test_a_hard_bounce_marks_the_address_bad_and_a_soft_one_only_records(
    pg_store: PostgresEventStore, fake: FakeProviders
) -> None:
    lead_id, touch = await emailed(pg_store, "msg-2")
    async with serve(pg_store, fake.env()) as base:
        for category in ("Throttled", "NoMailbox"):
            params = fake.elastic_notification(
                status="Error", to=EMAIL, postback=str(touch), message_id="msg-2", category=category
            )
            assert (await fake.send_elastic_webhook(base + PATH, params))[0] == 200
    assert statuses(await stream(pg_store, touch_stream(touch))) == [("bounced", "Throttled"), ("bounced", "NoMailbox")]
    on_lead = await stream(pg_store, lead_stream(lead_id))
    assert types(on_lead) == ["LeadIngested", "LeadContactInvalid"]
    invalid = event_as(on_lead[1], LeadContactInvalid)
    assert (invalid.channel, invalid.error_code) == ("email", "NoMailbox")


async def test_an_unsubscribe_or_a_spam_complaint_suppresses_the_lead(
    pg_store: PostgresEventStore, fake: FakeProviders
) -> None:
    async with serve(pg_store, fake.env()) as base:
        for status in ("Unsubscribed", "AbuseReport"):
            lead_id, touch = await emailed(pg_store, f"msg-{status}")
            params = fake.elastic_notification(status=status, to=EMAIL, postback=str(touch), message_id=f"msg-{status}")
            assert (await fake.send_elastic_webhook(base + PATH, params))[0] == 200
            assert await lead_status(pg_store, lead_id) == "suppressed", status
            suppressed = [e for e in await stream(pg_store, lead_stream(lead_id)) if e.type == "LeadSuppressed"]
            assert len(suppressed) == 1


async def test_notifications_we_cannot_place_are_answered_200_with_the_reason_and_record_nothing(
    pg_store: PostgresEventStore, fake: FakeProviders
) -> None:
    _, touch = await emailed(pg_store, "msg-3")
    async with serve(pg_store, fake.env()) as base:
        before = await log_state(pg_store)
        newsletter = fake.elastic_notification(status="Sent", to=EMAIL, postback=None)  # not sent by Touchline
        status, text = await fake.send_elastic_webhook(base + PATH, newsletter)
        assert status == 200 and "no touch run in postback" in msgspec.json.decode(text)["skipped"]
        unknown = fake.elastic_notification(status="Sent", to=EMAIL, postback=str(uuid.uuid4()))
        status, text = await fake.send_elastic_webhook(base + PATH, unknown)
        assert status == 200 and "no touch run" in msgspec.json.decode(text)["skipped"]
        another = fake.elastic_notification(status="Sent", to=EMAIL, postback=str(touch), message_id="msg-other")
        status, text = await fake.send_elastic_webhook(base + PATH, another)
        assert status == 200 and "was sent as msg-3" in msgspec.json.decode(text)["skipped"]
        assert await log_state(pg_store) == before


async def test_a_wrong_or_missing_token_or_an_unknown_status_is_refused_and_records_nothing(
    pg_store: PostgresEventStore, fake: FakeProviders
) -> None:
    _, touch = await emailed(pg_store, "msg-4")
    params = fake.elastic_notification(status="Unsubscribed", to=EMAIL, postback=str(touch), message_id="msg-4")
    async with serve(pg_store, fake.env()) as base:
        before = await log_state(pg_store)
        for token in ("", "guess", fake.elastic_webhook_token + "x"):
            status, text = await fake.send_elastic_webhook(base + PATH, params, token=token)
            assert status == 403 and "token does not match" in text, (token, text)
        status, text = await fake.send_elastic_webhook(base + PATH, {**params, "status": "Exploded"})
        assert status == 400 and "status must be one of" in text
        async with (
            aiohttp.ClientSession() as http,
            http.post(base + PATH, data=b"\xff\xfe", params={"token": fake.elastic_webhook_token}) as r,
        ):
            assert r.status == 400
        assert await log_state(pg_store) == before
    env = {k: v for k, v in fake.env().items() if k != "ELASTIC_EMAIL_WEBHOOK_TOKEN"}
    async with serve(pg_store, env) as base:
        status, text = await fake.send_elastic_webhook(base + PATH, params)
    assert status == 403 and "ELASTIC_EMAIL_WEBHOOK_TOKEN is not set" in text
    assert await log_state(pg_store) == before


async def test_a_form_post_carries_the_event_as_well(pg_store: PostgresEventStore, fake: FakeProviders) -> None:
    _, touch = await emailed(pg_store, "msg-5")
    params = fake.elastic_notification(status="Opened", to=EMAIL, postback=str(touch), message_id="msg-5")
    token = {"token": fake.elastic_webhook_token}
    async with (
        serve(pg_store, fake.env()) as base,
        aiohttp.ClientSession() as http,
        http.post(base + PATH, params=token, data=params) as r,
    ):
        assert (r.status, await r.json()) == (200, {"recorded": True})
    assert statuses(await stream(pg_store, touch_stream(touch))) == [("opened", None)]
