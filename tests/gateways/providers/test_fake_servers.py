"""The fake providers answer like the real ones: plain aiohttp clients against each wire format."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import parse_qsl

import aiohttp
import pytest
from aiohttp import web
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from tests.gateways.providers.fake_servers import FakeProviders, Fault


@pytest.fixture
async def fake() -> AsyncIterator[FakeProviders]:
    async with FakeProviders(callback_delay_s=0.01) as providers:
        yield providers


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


class Receiver:
    """A tiny local webhook endpoint that keeps what it was sent."""

    def __init__(self) -> None:
        self.received: list[tuple[str, dict[str, str], bytes]] = []
        self.arrived = asyncio.Event()
        self.runner: web.AppRunner | None = None
        self.url = ""

    async def handle(self, request: web.Request) -> web.Response:
        self.received.append((str(request.url), dict(request.headers.items()), await request.read()))
        self.arrived.set()
        return web.Response(text="ok")

    async def start(self) -> None:
        app = web.Application()
        app.router.add_post("/{tail:.*}", self.handle)
        self.runner = web.AppRunner(app, access_log=None)
        await self.runner.setup()
        site = web.TCPSite(self.runner, "127.0.0.1", 0)
        await site.start()
        self.url = f"http://127.0.0.1:{next(iter(self.runner.addresses))[1]}"

    async def wait_for(self, count: int) -> None:
        async with asyncio.timeout(5):
            while len(self.received) < count:
                self.arrived.clear()
                await self.arrived.wait()


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    hook = Receiver()
    await hook.start()
    yield hook
    assert hook.runner is not None
    await hook.runner.cleanup()


def basic(login: str, password: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{login}:{password}".encode()).decode()}


def twilio_auth(fake: FakeProviders) -> dict[str, str]:
    env = fake.env()
    return basic(env["TWILIO_ACCOUNT_SID"], env["TWILIO_AUTH_TOKEN"])


def messages_url(fake: FakeProviders) -> str:
    env = fake.env()
    return f"{env['TWILIO_API_BASE_URL']}/2010-04-01/Accounts/{env['TWILIO_ACCOUNT_SID']}/Messages.json"


def hand_signature(token: str, url: str, params: dict[str, str]) -> str:
    """Twilio's documented algorithm, computed independently of the fake."""
    data = url + "".join(f"{name}{params[name]}" for name in sorted(params))
    return base64.b64encode(hmac.new(token.encode(), data.encode(), hashlib.sha1).digest()).decode()


def test_env_shape() -> None:
    fake = FakeProviders()
    fake._base_url = "http://127.0.0.1:1"
    env = fake.env()
    assert env["TWILIO_ACCOUNT_SID"].startswith("AC") and len(env["TWILIO_ACCOUNT_SID"]) == 34
    assert len(env["TWILIO_AUTH_TOKEN"]) == 32
    assert env["TWILIO_API_BASE_URL"] == "http://127.0.0.1:1/twilio"
    assert env["TELNYX_API_BASE_URL"].endswith("/telnyx/v2")
    assert env["WHATSAPP_API_BASE_URL"].endswith("/meta/v21.0")
    assert env["ELASTIC_EMAIL_API_BASE_URL"].endswith("/elastic/v4")
    assert env["TELNYX_API_KEY"].startswith("KEY0")
    assert env["TELNYX_CONNECTION_ID"].isdigit() and env["WHATSAPP_PHONE_NUMBER_ID"].isdigit()
    assert len(base64.b64decode(env["TELNYX_PUBLIC_KEY"])) == 32


async def test_twilio_create_list_fetch(fake: FakeProviders, http: aiohttp.ClientSession) -> None:
    url = messages_url(fake)
    form = {"To": "+13055551234", "From": "+13055550000", "Body": "Hola, ¿sigue disponible?"}
    async with http.post(url, data=form, headers=twilio_auth(fake)) as resp:
        assert resp.status == 201
        created: dict[str, Any] = await resp.json()
    assert created["sid"].startswith("SM") and len(created["sid"]) == 34
    assert created["status"] == "queued" and created["direction"] == "outbound-api"
    assert created["to"] == "+13055551234" and created["from"] == "+13055550000"
    assert created["error_code"] is None and created["price"] is None and created["api_version"] == "2010-04-01"
    assert created["uri"] == f"/2010-04-01/Accounts/{fake.twilio_account_sid}/Messages/{created['sid']}.json"
    assert parsedate_to_datetime(created["date_created"]).tzinfo is not None
    assert created["date_created"].endswith("+0000")
    async with http.post(url, data={**form, "To": "+13055559999"}, headers=twilio_auth(fake)) as resp:
        assert resp.status == 201

    today = datetime.now(UTC).date()
    params = {"To": "+13055551234", "DateSent>": today.isoformat(), "PageSize": "20"}
    async with http.get(url, params=params, headers=twilio_auth(fake)) as resp:
        assert resp.status == 200
        page = await resp.json()
    assert [m["sid"] for m in page["messages"]] == [created["sid"]]
    assert page["page"] == 0 and page["page_size"] == 20 and page["next_page_uri"] is None
    assert page["previous_page_uri"] is None and page["start"] == 0 and page["end"] == 0
    assert page["uri"].startswith(f"/2010-04-01/Accounts/{fake.twilio_account_sid}/Messages.json?")

    tomorrow = (today + timedelta(days=1)).isoformat()
    async with http.get(url, params={"DateSent>": tomorrow}, headers=twilio_auth(fake)) as resp:
        assert (await resp.json())["messages"] == []
    async with http.get(url, params={"DateSent": today.isoformat()}, headers=twilio_auth(fake)) as resp:
        assert len((await resp.json())["messages"]) == 2

    fetch_url = url.removesuffix(".json") + f"/{created['sid']}.json"
    async with http.get(fetch_url, headers=twilio_auth(fake)) as resp:
        assert resp.status == 200
        assert (await resp.json())["sid"] == created["sid"]
    async with http.get(url.removesuffix(".json") + "/SM" + "0" * 32 + ".json", headers=twilio_auth(fake)) as resp:
        assert resp.status == 404
        assert (await resp.json())["code"] == 20404

    assert [r.route for r in fake.requests] == ["messages.create"] * 2 + ["messages.list"] * 3 + ["messages.fetch"] * 2
    assert fake.sent("twilio")[0].form["Body"] == "Hola, ¿sigue disponible?"


async def test_twilio_rejects_bad_auth_and_missing_fields(fake: FakeProviders, http: aiohttp.ClientSession) -> None:
    url = messages_url(fake)
    form = {"To": "+13055551234", "From": "+13055550000", "Body": "hi"}
    async with http.post(url, data=form, headers=basic(fake.twilio_account_sid, "wrong")) as resp:
        assert resp.status == 401
        assert await resp.json() == {
            "code": 20003,
            "message": "Authenticate",
            "more_info": "https://www.twilio.com/docs/errors/20003",
            "status": 401,
        }
    async with http.post(url, data=form) as resp:
        assert resp.status == 401
    async with http.post(url, data={"From": "+13055550000", "Body": "x"}, headers=twilio_auth(fake)) as resp:
        assert resp.status == 400
        assert (await resp.json())["code"] == 21604
    async with http.post(url, data={"To": "+13055551234", "From": "+1305"}, headers=twilio_auth(fake)) as resp:
        assert (await resp.json())["code"] == 21602
    assert fake.twilio_messages == []


async def test_twilio_injected_21610(fake: FakeProviders, http: aiohttp.ClientSession) -> None:
    fake.error("twilio", 21610)
    form = {"To": "+13055551234", "From": "+13055550000", "Body": "hi"}
    async with http.post(messages_url(fake), data=form, headers=twilio_auth(fake)) as resp:
        assert resp.status == 400
        assert await resp.json() == {
            "code": 21610,
            "message": "Attempt to send to unsubscribed recipient",
            "more_info": "https://www.twilio.com/docs/errors/21610",
            "status": 400,
        }
    async with http.post(messages_url(fake), data=form, headers=twilio_auth(fake)) as resp:
        assert resp.status == 201  # one fault, consumed once
    assert [r.fault for r in fake.sent("twilio")] == ["status=400", None]

    fake.error("twilio", 20429, retry_after=2)
    async with http.post(messages_url(fake), data=form, headers=twilio_auth(fake)) as resp:
        assert resp.status == 429 and resp.headers["Retry-After"] == "2"
        assert (await resp.json())["code"] == 20429


def test_twilio_signature_known_vectors() -> None:
    # The example from Twilio's request-validation docs: auth token 12345.
    fake = FakeProviders()
    fake.twilio_auth_token = "12345"
    url = "https://mycompany.com/myapp.php?foo=1&bar=2"
    params = {
        "CallSid": "CA1234567890ABCDE",
        "Caller": "+14158675309",
        "Digits": "1234",
        "From": "+14158675309",
        "To": "+18005551212",
    }
    assert fake.twilio_signature(url, params) == "RSOYDt4T1cUTdK1PDd93/VVr8B8="
    assert fake.twilio_signature(url, params) == hand_signature("12345", url, params)
    other = {"MessageSid": "SM" + "1" * 32, "MessageStatus": "delivered", "AccountSid": "AC" + "2" * 32}
    assert fake.twilio_signature("http://x/y", other) == hand_signature("12345", "http://x/y", other)


async def test_twilio_status_callbacks(fake: FakeProviders, http: aiohttp.ClientSession, receiver: Receiver) -> None:
    callback = f"{receiver.url}/twilio/status?lead=42"
    form = {"To": "+13055551234", "From": "+13055550000", "Body": "hi", "StatusCallback": callback}
    async with http.post(messages_url(fake), data=form, headers=twilio_auth(fake)) as resp:
        sid = (await resp.json())["sid"]
    await receiver.wait_for(2)
    statuses = []
    for url, headers, body in receiver.received:
        assert url == callback
        params = dict(parse_qsl(body.decode()))
        assert headers["X-Twilio-Signature"] == hand_signature(fake.twilio_auth_token, callback, params)
        assert params["MessageSid"] == params["SmsSid"] == sid
        assert params["AccountSid"] == fake.twilio_account_sid and params["ApiVersion"] == "2010-04-01"
        statuses.append(params["MessageStatus"])
    assert statuses == ["sent", "delivered"]
    await fake.wait_callbacks()
    assert fake.callback_results == [(callback, 200), (callback, 200)]
    assert fake.twilio_messages[0]["status"] == "delivered"


async def test_twilio_calls(fake: FakeProviders, http: aiohttp.ClientSession, receiver: Receiver) -> None:
    calls = messages_url(fake).replace("Messages.json", "Calls.json")
    callback = f"{receiver.url}/voice/status"
    form = [
        ("To", "+13055551234"),
        ("From", "+13055550000"),
        ("Url", "https://x.example/twiml"),
        ("StatusCallback", callback),
        ("StatusCallbackEvent", "initiated"),
        ("StatusCallbackEvent", "completed"),
    ]
    async with http.post(calls, data=form, headers=twilio_auth(fake)) as resp:
        assert resp.status == 201
        call = await resp.json()
    assert call["sid"].startswith("CA") and call["status"] == "queued" and call["start_time"] is None
    await receiver.wait_for(2)
    events = [dict(parse_qsl(body.decode())) for _, _, body in receiver.received]
    assert [e["CallStatus"] for e in events] == ["initiated", "completed"]
    assert events[-1]["CallDuration"] == "7" and events[-1]["CallSid"] == call["sid"]
    async with http.get(calls, params={"To": "+13055551234"}, headers=twilio_auth(fake)) as resp:
        listed = (await resp.json())["calls"]
    assert [c["sid"] for c in listed] == [call["sid"]] and listed[0]["status"] == "completed"
    async with http.post(calls, data={"To": "+13055551234", "From": "+1305"}, headers=twilio_auth(fake)) as resp:
        assert (await resp.json())["code"] == 21205


async def test_telnyx_create_error_and_signature(fake: FakeProviders, http: aiohttp.ClientSession) -> None:
    env = fake.env()
    headers = {"Authorization": f"Bearer {env['TELNYX_API_KEY']}"}
    payload = {
        "from": env["TELNYX_FROM_NUMBER"],
        "to": "+13055551234",
        "text": "hola",
        "messaging_profile_id": env["TELNYX_MESSAGING_PROFILE_ID"],
    }
    async with http.post(f"{env['TELNYX_API_BASE_URL']}/messages", json=payload, headers=headers) as resp:
        assert resp.status == 200
        data = (await resp.json())["data"]
    assert data["record_type"] == "message" and data["direction"] == "outbound" and data["type"] == "SMS"
    assert data["to"][0]["status"] == "queued" and data["from"]["phone_number"] == env["TELNYX_FROM_NUMBER"]
    assert data["parts"] == 1 and data["encoding"] == "GSM-7" and data["errors"] == []
    assert fake.sent("telnyx")[0].json == payload

    fake.error("telnyx", 40300)
    async with http.post(f"{env['TELNYX_API_BASE_URL']}/messages", json=payload, headers=headers) as resp:
        assert resp.status == 409
        error = (await resp.json())["errors"][0]
    assert error["code"] == "40300" and error["title"] == "Blocked due to STOP message"
    assert "+13055551234" in error["detail"] and error["source"] == {"pointer": "/to"}

    async with http.post(f"{env['TELNYX_API_BASE_URL']}/messages", json=payload) as resp:
        assert resp.status == 401
        assert (await resp.json())["errors"][0]["code"] == "10009"

    body = json.dumps(fake.telnyx_inbound(from_="+13055551234", text="STOP")).encode()
    signed = fake.telnyx_headers(body, timestamp=1_700_000_000)
    assert signed["telnyx-timestamp"] == "1700000000"
    key = Ed25519PublicKey.from_public_bytes(base64.b64decode(env["TELNYX_PUBLIC_KEY"]))
    key.verify(base64.b64decode(signed["telnyx-signature-ed25519"]), b"1700000000|" + body)
    with pytest.raises(InvalidSignature):
        key.verify(base64.b64decode(signed["telnyx-signature-ed25519"]), b"1700000001|" + body)


async def test_telnyx_callbacks_signed(fake: FakeProviders, http: aiohttp.ClientSession, receiver: Receiver) -> None:
    env = fake.env()
    hook = f"{receiver.url}/telnyx"
    payload = {"from": env["TELNYX_FROM_NUMBER"], "to": "+13055551234", "text": "hola", "webhook_url": hook}
    headers = {"Authorization": f"Bearer {env['TELNYX_API_KEY']}"}
    async with http.post(f"{env['TELNYX_API_BASE_URL']}/messages", json=payload, headers=headers) as resp:
        message_id = (await resp.json())["data"]["id"]
    await receiver.wait_for(2)
    key = Ed25519PublicKey.from_public_bytes(base64.b64decode(env["TELNYX_PUBLIC_KEY"]))
    seen = []
    for _, got, body in receiver.received:
        key.verify(base64.b64decode(got["telnyx-signature-ed25519"]), f"{got['telnyx-timestamp']}|".encode() + body)
        envelope = json.loads(body)
        assert envelope["data"]["payload"]["id"] == message_id and envelope["meta"]["delivered_to"] == hook
        seen.append((envelope["data"]["event_type"], envelope["data"]["payload"]["to"][0]["status"]))
    assert seen == [("message.sent", "sent"), ("message.finalized", "delivered")]


async def test_meta_text_and_131047(fake: FakeProviders, http: aiohttp.ClientSession) -> None:
    env = fake.env()
    url = f"{env['WHATSAPP_API_BASE_URL']}/{env['WHATSAPP_PHONE_NUMBER_ID']}/messages"
    headers = {"Authorization": f"Bearer {env['WHATSAPP_ACCESS_TOKEN']}"}
    message = {
        "messaging_product": "whatsapp",
        "recipient_type": "individual",
        "to": "13055551234",
        "type": "text",
        "text": {"body": "hola"},
    }
    async with http.post(url, json=message, headers=headers) as resp:
        assert resp.status == 200
        body = await resp.json()
    assert body["messaging_product"] == "whatsapp"
    assert body["contacts"] == [{"input": "13055551234", "wa_id": "13055551234"}]
    assert body["messages"][0]["id"].startswith("wamid.")

    fake.error("meta", 131047)
    async with http.post(url, json=message, headers=headers) as resp:
        assert resp.status == 400
        error = (await resp.json())["error"]
    assert error["code"] == 131047 and error["type"] == "OAuthException"
    assert error["error_data"]["messaging_product"] == "whatsapp" and "24 hours" in error["error_data"]["details"]
    assert error["fbtrace_id"]

    async with http.post(url, json={"to": "1305"}, headers=headers) as resp:
        assert resp.status == 400 and (await resp.json())["error"]["code"] == 100
    async with http.post(url, json=message, headers={"Authorization": "Bearer nope"}) as resp:
        assert resp.status == 401 and (await resp.json())["error"]["code"] == 190


async def test_elastic_send_and_missing_key(fake: FakeProviders, http: aiohttp.ClientSession) -> None:
    env = fake.env()
    url = f"{env['ELASTIC_EMAIL_API_BASE_URL']}/emails/transactional"
    email = {
        "Recipients": {"To": ["lead@example.com"]},
        "Content": {
            "Body": [{"ContentType": "HTML", "Content": "<p>Hola</p>", "Charset": "utf-8"}],
            "From": env["ELASTIC_EMAIL_FROM"],
            "Subject": "Su auto",
        },
    }
    async with http.post(url, json=email, headers={"X-ElasticEmail-ApiKey": env["ELASTIC_EMAIL_API_KEY"]}) as resp:
        assert resp.status == 200
        sent = await resp.json()
    assert set(sent) == {"TransactionID", "MessageID"}
    async with http.post(url, json=email) as resp:
        assert resp.status == 401
        assert await resp.json() == {"Error": "Access Denied."}
    bad = {**email, "Recipients": {"To": []}}
    async with http.post(url, json=bad, headers={"X-ElasticEmail-ApiKey": env["ELASTIC_EMAIL_API_KEY"]}) as resp:
        assert resp.status == 400 and "Error" in await resp.json()
    assert len(fake.sent("elastic", "email.send")) == 3 and len(fake.emails) == 1


async def test_slow_response_times_out(fake: FakeProviders, http: aiohttp.ClientSession) -> None:
    fake.fail("twilio", "messages.create", delay_s=1.0)
    form = {"To": "+13055551234", "From": "+13055550000", "Body": "hi"}
    with pytest.raises(TimeoutError):
        async with http.post(
            messages_url(fake), data=form, headers=twilio_auth(fake), timeout=aiohttp.ClientTimeout(total=0.2)
        ) as resp:
            await resp.read()
    async with http.post(messages_url(fake), data=form, headers=twilio_auth(fake)) as resp:
        assert resp.status == 201  # the server is fine after the client gave up


async def test_dropped_connection(fake: FakeProviders, http: aiohttp.ClientSession) -> None:
    fake.fail("twilio", "messages.create", Fault(drop=True, after_create=True))
    form = {"To": "+13055551234", "From": "+13055550000", "Body": "hi"}
    with pytest.raises(aiohttp.ClientConnectionError):
        async with http.post(messages_url(fake), data=form, headers=twilio_auth(fake)) as resp:
            await resp.read()
    # the message reached the provider even though the response was lost
    async with http.get(messages_url(fake), params={"To": "+13055551234"}, headers=twilio_auth(fake)) as resp:
        assert len((await resp.json())["messages"]) == 1
    assert fake.sent("twilio")[0].fault == "drop,after_create"

    fake.fail("meta", "messages.create", drop=True)
    env = fake.env()
    with pytest.raises(aiohttp.ClientConnectionError):
        async with http.post(f"{env['WHATSAPP_API_BASE_URL']}/1/messages", json={}) as resp:
            await resp.read()


async def test_faults_fifo_and_default_bodies(fake: FakeProviders, http: aiohttp.ClientSession) -> None:
    fake.fail("telnyx", "messages.create", status=503, times=2)
    fake.error("telnyx", 10011, retry_after=1.5)
    env = fake.env()
    headers = {"Authorization": f"Bearer {env['TELNYX_API_KEY']}"}
    payload = {"from": env["TELNYX_FROM_NUMBER"], "to": "+13055551234", "text": "x"}
    got = []
    for _ in range(4):
        async with http.post(f"{env['TELNYX_API_BASE_URL']}/messages", json=payload, headers=headers) as resp:
            body = await resp.json()
            got.append((resp.status, body["errors"][0]["code"] if "errors" in body else None))
            if resp.status == 429:
                assert resp.headers["Retry-After"] == "1.5"
    assert got == [(503, "10007"), (503, "10007"), (429, "10011"), (200, None)]


async def test_webhook_senders(fake: FakeProviders, receiver: Receiver) -> None:
    params = fake.twilio_inbound(from_="+13055551234", body="Me interesa", whatsapp=True)
    assert params["From"] == "whatsapp:+13055551234" and params["WaId"] == "13055551234"
    assert params["MessageSid"].startswith("SM") and params["SmsStatus"] == "received"
    status, text, _ = await fake.send_twilio_webhook(f"{receiver.url}/in", params)
    assert (status, text) == (200, "ok")
    _, headers, _ = receiver.received[0]
    assert headers["X-Twilio-Signature"] == hand_signature(fake.twilio_auth_token, f"{receiver.url}/in", params)

    envelope = fake.telnyx_inbound(from_="+13055551234", text="hola")
    assert envelope["data"]["event_type"] == "message.received" and envelope["data"]["record_type"] == "event"
    assert await fake.send_telnyx_webhook(f"{receiver.url}/tx", envelope, sign=False) == (200, "ok")
    _, headers, body = receiver.received[1]
    assert "telnyx-signature-ed25519" not in {k.lower() for k in headers}
    assert json.loads(body)["meta"]["delivered_to"] == f"{receiver.url}/tx"


async def test_bad_input_answered_in_provider_shape(fake: FakeProviders, http: aiohttp.ClientSession) -> None:
    env = fake.env()
    async with http.get(f"{env['TWILIO_API_BASE_URL']}/2010-04-01/Nope.json", headers=twilio_auth(fake)) as resp:
        assert resp.status == 404 and (await resp.json())["code"] == 20404
    telnyx = {"Authorization": f"Bearer {env['TELNYX_API_KEY']}", "Content-Type": "application/json"}
    async with http.post(f"{env['TELNYX_API_BASE_URL']}/messages", data=b"{not json", headers=telnyx) as resp:
        assert resp.status == 400 and (await resp.json())["errors"][0]["code"] == "10015"
    async with http.post(f"{env['TELNYX_API_BASE_URL']}/messages", json={"text": "x"}, headers=telnyx) as resp:
        assert resp.status == 400
        assert (await resp.json())["errors"][0]["source"] == {"pointer": "/to"}
    async with http.get(f"{env['TELNYX_API_BASE_URL']}/nowhere", headers=telnyx) as resp:
        assert resp.status == 404 and (await resp.json())["errors"][0]["code"] == "10005"
    meta = {"Authorization": f"Bearer {env['WHATSAPP_ACCESS_TOKEN']}"}
    async with http.post(f"{env['WHATSAPP_API_BASE_URL']}/999/messages", json={}, headers=meta) as resp:
        assert resp.status == 400 and (await resp.json())["error"]["error_subcode"] == 33
    assert {r.route for r in fake.requests} >= {"unknown", "messages.create"}


async def test_close_does_not_wait_for_slow_handlers_or_callbacks(http: aiohttp.ClientSession) -> None:
    fake = FakeProviders(callback_delay_s=30)
    await fake.start()
    try:
        fake.fail("twilio", "messages.create", delay_s=30)
        form = {"To": "+13055551234", "From": "+13055550000", "Body": "hi", "StatusCallback": "http://127.0.0.1:9/x"}
        pending = asyncio.ensure_future(http.post(messages_url(fake), data=form, headers=twilio_auth(fake)))
        for _ in range(500):  # until the slow request has arrived
            if fake.requests:
                break
            await asyncio.sleep(0.01)
        assert fake.requests[0].fault == "status=500,delay=30s"
        async with http.post(messages_url(fake), data=form, headers=twilio_auth(fake)) as resp:
            assert resp.status == 201  # its callbacks wait 30 s
        started = asyncio.get_running_loop().time()
    finally:
        await fake.close()
    assert asyncio.get_running_loop().time() - started < 3
    with pytest.raises(aiohttp.ClientConnectionError):
        await pending
