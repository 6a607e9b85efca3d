"""Carriers reaching the voice gateway: stream tokens, the codec guard, Telnyx Call Control and Twilio TwiML."""

from __future__ import annotations

import json
import time
import uuid
import xml.etree.ElementTree as ET
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import parse_qs, urlsplit

import aiohttp
import msgspec
import pytest
from structlog.testing import capture_logs

from actors.org import OrgSettings
from events.catalog import CallStarted, LeadIngested, call_stream, lead_stream
from events.postgres import PostgresEventStore
from events.settings import Settings
from gateways.http import serve_http
from gateways.voice.routes import call_id_for
from gateways.voice_token import sign_call_token, verify_call_token
from projections.leads import LeadsProjection
from projections.org_settings import OrgSettingsProjection
from tests.gateways.providers.fake_servers import FakeProviders
from tests.projections.helpers import caught_up, running

SECRET = "voice-secret"


@pytest.fixture
async def fake() -> AsyncIterator[FakeProviders]:
    async with FakeProviders(callbacks=False) as providers:
        yield providers


def _env(fake: FakeProviders, **extra: str) -> dict[str, str]:
    return {**fake.env(), "VOICE_GATEWAY_TOKEN": SECRET, **extra}


def _start(carrier: str, call: str, encoding: str) -> str:
    if carrier == "telnyx":
        return json.dumps(
            {
                "event": "start",
                "sequence_number": "1",
                "stream_id": "stream-1",
                "start": {
                    "call_control_id": call,
                    "from": "+13055550100",
                    "to": "+13055550000",
                    "media_format": {"encoding": encoding, "sample_rate": 8000, "channels": 1},
                },
            }
        )
    return json.dumps(
        {
            "event": "start",
            "sequenceNumber": "1",
            "streamSid": "MZ1",
            "start": {
                "streamSid": "MZ1",
                "callSid": call,
                "tracks": ["inbound"],
                "mediaFormat": {"encoding": encoding, "sampleRate": 8000, "channels": 1},
            },
        }
    )


async def _types(store: PostgresEventStore, carrier: str, call: str) -> list[str]:
    return [e.type for e in await store.read_stream(call_stream(call_id_for(carrier, call)))]


async def test_a_stream_without_a_valid_token_is_refused_before_any_audio(
    pg_store: PostgresEventStore, fake: FakeProviders
) -> None:
    async with serve_http(pg_store, Settings(), host="127.0.0.1", port=0, env=_env(fake)) as url:
        ws_url = url.replace("http", "ws", 1)
        async with aiohttp.ClientSession() as http:
            for path in (
                "/telnyx",
                "/twilio",
                "/telnyx?token=forged.token",
                f"/twilio?token={sign_call_token('x', 'CA1')}",
            ):
                with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
                    await http.ws_connect(ws_url + path)
                assert refused.value.status == 401, path
            async with http.get(url + "/telnyx?token=bad") as resp:
                assert resp.status == 401 and "stream token is malformed" in (await resp.json())["error"]
            expired = sign_call_token(SECRET, "v3:old", ttl_s=-1)
            async with http.get(url + f"/telnyx?token={expired}") as resp:
                assert "stream token has expired" in (await resp.json())["error"]
            # A valid token for another call: the upgrade happens, the start frame shows the mismatch.
            ws = await http.ws_connect(ws_url + f"/telnyx?token={sign_call_token(SECRET, 'v3:other')}")
            await ws.send_str(_start("telnyx", "v3:mine", "PCMU"))
            await ws.receive()
            assert ws.close_code == 4003
    assert await _types(pg_store, "telnyx", "v3:mine") == []  # nothing recorded for a refused stream


async def test_the_spec_bypass_lets_telnyx_in_without_a_token_and_logs_every_connection(
    pg_store: PostgresEventStore, fake: FakeProviders
) -> None:
    env = _env(fake, VOICE_ALLOW_UNAUTHENTICATED_TELNYX="1")
    with capture_logs() as logs:
        async with (
            serve_http(pg_store, Settings(), host="127.0.0.1", port=0, env=env) as url,
            aiohttp.ClientSession() as http,
        ):
            ws = await http.ws_connect(url.replace("http", "ws", 1) + "/telnyx")
            await ws.send_str(_start("telnyx", "v3:bypass", "G729"))
            await ws.receive()
            with pytest.raises(aiohttp.WSServerHandshakeError):  # Twilio keeps its token requirement
                await http.ws_connect(url.replace("http", "ws", 1) + "/twilio")
    assert [entry["event"] for entry in logs].count("AUTH_BYPASS_TELNYX") == 1


@pytest.mark.parametrize(("carrier", "encoding"), [("telnyx", "G729"), ("twilio", "audio/x-g729")])
async def test_a_codec_other_than_pcmu_is_refused_recorded_and_opens_no_ai_session(
    pg_store: PostgresEventStore, fake: FakeProviders, carrier: str, encoding: str
) -> None:
    call = "v3:g729" if carrier == "telnyx" else "CAg729"
    # OpenAI points at a closed port: had the gateway tried it, the call would end "ai_unavailable".
    env = _env(fake, OPENAI_API_KEY="sk-test", OPENAI_BASE_URL="http://127.0.0.1:9/v1")
    with capture_logs() as logs:
        async with (
            serve_http(pg_store, Settings(), host="127.0.0.1", port=0, env=env) as url,
            aiohttp.ClientSession() as http,
        ):
            ws = await http.ws_connect(
                url.replace("http", "ws", 1) + f"/{carrier}?token={sign_call_token(SECRET, call)}"
            )
            await ws.send_str(_start(carrier, call, encoding))
            msg = await ws.receive()
    assert msg.type == aiohttp.WSMsgType.CLOSE and ws.close_code == 1003
    fatal = [entry for entry in logs if entry["event"] == "ERROR_FATAL_CODEC"]
    assert len(fatal) == 1 and fatal[0]["codec"] == encoding.removeprefix("audio/x-").upper()
    assert not [entry for entry in logs if entry["event"] == "VOICE_AGENT_UNAVAILABLE"]
    assert await _types(pg_store, carrier, call) == ["CallStarted", "MediaStreamRefused", "CallEnded"]
    events = await pg_store.read_stream(call_stream(call_id_for(carrier, call)))
    assert events[2].event.reason.startswith("codec_unsupported")  # type: ignore[attr-defined]


def _telnyx_call_event(kind: str, call: str, **payload: Any) -> dict[str, Any]:
    return {
        "data": {
            "record_type": "event",
            "event_type": kind,
            "id": str(uuid.uuid4()),
            "occurred_at": "2026-12-01T15:00:00Z",
            "payload": {
                "call_control_id": call,
                "call_leg_id": str(uuid.uuid4()),
                "call_session_id": str(uuid.uuid4()),
                "connection_id": "1684641123236054244",
                "from": "+13055550100",
                "to": "+13055550000",
                **payload,
            },
        },
        "meta": {"attempt": 1, "delivered_to": "https://touchline.example/webhooks/telnyx/voice"},
    }


async def test_telnyx_call_control_answers_starts_pcmu_streaming_after_answer_and_records_the_hangup(
    pg_store: PostgresEventStore, fake: FakeProviders
) -> None:
    settings = msgspec.structs.replace(Settings(), public_url="https://touchline.example")
    call = "v3:inbound-call"
    with capture_logs() as logs:
        async with serve_http(pg_store, settings, host="127.0.0.1", port=0, env=_env(fake)) as url:
            hook = f"{url}/webhooks/telnyx/voice"
            for kind, extra in (
                ("call.initiated", {"direction": "incoming", "state": "parked"}),
                ("call.answered", {}),
                ("call.hangup", {"hangup_cause": "normal_clearing"}),
            ):
                status, _ = await fake.send_telnyx_webhook(hook, _telnyx_call_event(kind, call, **extra))
                assert status == 200, kind
            status, body = await fake.send_telnyx_webhook(hook, _telnyx_call_event("call.answered", call), sign=False)
            assert status == 403 and "telnyx-signature-ed25519" in body
            stale = int(time.time()) - 600
            status, body = await fake.send_telnyx_webhook(
                hook, _telnyx_call_event("call.hangup", call), timestamp=stale
            )
            assert status == 403 and "stale" in body
    actions = [(a, body) for c, a, body in fake.telnyx_actions if c == call]
    assert [a for a, _ in actions] == ["answer", "streaming_start"]
    streaming = actions[1][1]
    assert streaming["stream_track"] == "inbound_track" and streaming["stream_codec"] == "PCMU"
    assert streaming["stream_bidirectional_mode"] == "rtp" and streaming["stream_bidirectional_codec"] == "PCMU"
    stream_url = urlsplit(streaming["stream_url"])
    assert (stream_url.scheme, stream_url.netloc, stream_url.path) == ("wss", "touchline.example", "/telnyx")
    assert verify_call_token(SECRET, parse_qs(stream_url.query)["token"][0]) == call
    names = [entry["event"] for entry in logs]
    for marker in (
        "VOICE_WEBHOOK_HIT",
        "VOICE_WEBHOOK_EVENT",
        "STREAMING_WAIT_STATE",
        "STREAMING_START_AFTER_ANSWER",
        "TELNYX_STREAMING_START_REQ",
        "TELNYX_STREAMING_START_RES",
    ):
        assert marker in names, marker
    request_log = next(entry for entry in logs if entry["event"] == "TELNYX_STREAMING_START_REQ")
    assert "token" not in json.dumps(request_log)  # the stream token never reaches a log
    assert await _types(pg_store, "telnyx", call) == ["CallStarted", "CallAnswered", "CallEnded"]


async def test_a_failed_streaming_start_is_logged_as_an_error(
    pg_store: PostgresEventStore, fake: FakeProviders
) -> None:
    settings = msgspec.structs.replace(Settings(), public_url="https://touchline.example")
    fake.error("telnyx", "10007", route="calls.action")
    with capture_logs() as logs:
        async with serve_http(pg_store, settings, host="127.0.0.1", port=0, env=_env(fake)) as url:
            await fake.send_telnyx_webhook(f"{url}/webhooks/telnyx/voice", _telnyx_call_event("call.answered", "v3:x"))
    assert [entry["status"] for entry in logs if entry["event"] == "TELNYX_STREAMING_START_ERR"] == [500]


async def test_twilio_voice_webhook_answers_with_a_stream_to_our_gateway(
    pg_store: PostgresEventStore, fake: FakeProviders
) -> None:
    async with serve_http(pg_store, Settings(), host="127.0.0.1", port=0, env=_env(fake)) as url:
        # Twilio signs the URL it calls; without TOUCHLINE_PUBLIC_URL that is the request's own.
        params = {
            "CallSid": "CA" + "1" * 32,
            "AccountSid": fake.env()["TWILIO_ACCOUNT_SID"],
            "From": "+13055550100",
            "To": "+13055550000",
            "CallStatus": "ringing",
            "Direction": "inbound",
        }
        status, body, _ = await fake.send_twilio_webhook(f"{url}/webhooks/twilio/voice", params)
        assert status == 200
        # No public URL: the gateway cannot give Twilio a stream address, so the caller hears why.
        assert ET.fromstring(body).find("Say") is not None
        forged, _, _ = await fake.send_twilio_webhook(f"{url}/webhooks/twilio/voice", params, signature="AAAA")
        assert forged == 403
    public = msgspec.structs.replace(Settings(), public_url="https://touchline.example")
    async with serve_http(pg_store, public, host="127.0.0.1", port=0, env=_env(fake)) as url:
        signature = fake.twilio_signature("https://touchline.example/webhooks/twilio/voice", params)
        status, body, _ = await fake.send_twilio_webhook(f"{url}/webhooks/twilio/voice", params, signature=signature)
    assert status == 200
    stream = ET.fromstring(body).find("Connect/Stream")
    assert stream is not None
    parts = urlsplit(stream.attrib["url"])
    assert (parts.scheme, parts.netloc, parts.path) == ("wss", "touchline.example", "/twilio")
    assert verify_call_token(SECRET, parse_qs(parts.query)["token"][0]) == params["CallSid"]
    assert {p.attrib["name"]: p.attrib["value"] for p in stream.findall("Parameter")} == {
        "from": "+13055550100",
        "to": "+13055550000",
    }
    assert await _types(pg_store, "twilio", params["CallSid"]) == ["CallStarted"]


async def test_a_call_to_an_accounts_own_number_is_that_accounts_and_finds_its_lead_there(
    pg_store: PostgresEventStore, fake: FakeProviders
) -> None:
    dealer, other = uuid.UUID(int=0xD1), uuid.UUID(int=0xD2)
    seller = "+13055550177"
    async with running(pg_store, [OrgSettingsProjection(), LeadsProjection()]) as workers:
        await OrgSettings(pg_store).set_senders(dealer, {"voice": "+17865550142"})
        for account in (dealer, other):  # the seller is a lead of both dealers
            lead_id = uuid.uuid4()
            ingested = LeadIngested(
                lead_id=lead_id, account_id=account, source="craigslist", external_id=str(account), phone=seller
            )
            await pg_store.append(lead_stream(lead_id), [ingested])
        await caught_up(pg_store, workers)
    async with serve_http(pg_store, Settings(), host="127.0.0.1", port=0, env=_env(fake)) as url:
        for sid, to in (("CA" + "2" * 32, "+17865550142"), ("CA" + "3" * 32, "+13055550000")):
            params = {"CallSid": sid, "AccountSid": fake.env()["TWILIO_ACCOUNT_SID"], "From": seller, "To": to,
                      "CallStatus": "ringing", "Direction": "inbound"}  # fmt: skip
            status, _, _ = await fake.send_twilio_webhook(f"{url}/webhooks/twilio/voice", params)
            assert status == 200
    [mine] = await pg_store.read_stream(call_stream(call_id_for("twilio", "CA" + "2" * 32)))
    started = mine.event
    assert isinstance(started, CallStarted) and started.account_id == dealer
    lead = await pg_store.pool.fetchval("select account_id from public.leads where id = $1", started.lead_id)
    assert lead == dealer  # the dealer's own lead, not the other dealer's with the same number
    [unowned] = await pg_store.read_stream(call_stream(call_id_for("twilio", "CA" + "3" * 32)))
    assert unowned.event.account_id in (dealer, other)  # type: ignore[attr-defined]  # nobody's number: by lead
