"""Voice sessions end to end: a simulated carrier, the gateway, a fake OpenAI Realtime, the call's events.

The carrier simulators play the audio they get back in real time and echo marks as Telnyx and
Twilio do; the fake Realtime server runs server VAD on the audio it is sent. So the tests see
what a caller would: the agent talks, the caller answers and is answered, talks over the agent
and is heard at once, and the log holds every step.
"""

from __future__ import annotations

import contextlib
import json
import socket
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import anyio
import msgspec
import pytest
from aiohttp import ClientConnectionResetError, web
from structlog.testing import capture_logs

from actors.campaigns import Campaigns, StepSpec
from events.catalog import Event, LeadIngested, TouchRunScheduled, call_stream, lead_stream, touch_stream
from events.envelope import Envelope
from events.postgres import PostgresEventStore
from events.settings import Settings
from gateways.http import serve_http
from gateways.voice.routes import call_id_for
from gateways.voice_token import sign_call_token
from tests.gateways.providers.fake_servers import FakeProviders
from tests.gateways.voice.carrier_sim import TelnyxCall, TwilioCall
from tests.gateways.voice.fake_openai import FakeRealtime, silence_frames, speech_frames

SECRET = "voice-secret"


@contextlib.asynccontextmanager
async def gateway(store: PostgresEventStore, realtime: FakeRealtime, **env: str) -> AsyncIterator[str]:
    values = {"VOICE_GATEWAY_TOKEN": SECRET, **realtime.env(), "VOICE_CONNECT_TIMEOUT_S": "3", **env}
    async with serve_http(store, Settings(), host="127.0.0.1", port=0, env=values) as url:
        yield url.replace("http", "ws", 1)


def telnyx(ws: str, call: str) -> TelnyxCall:
    return TelnyxCall(f"{ws}/telnyx?token={sign_call_token(SECRET, call)}", call_control_id=call)


async def call_events(store: PostgresEventStore, carrier: str, call: str) -> list[Envelope]:
    return await store.read_stream(call_stream(call_id_for(carrier, call)))


async def until_event(store: PostgresEventStore, carrier: str, call: str, kind: str, within: float = 10) -> Event:
    with anyio.fail_after(within):
        async for _ in store.tail(0):
            for env in await call_events(store, carrier, call):
                if env.type == kind:
                    return env.event
    raise AssertionError("unreachable")


def types(envelopes: list[Envelope]) -> list[str]:
    return [e.type for e in envelopes]


async def test_an_inbound_call_is_greeted_answered_and_hung_up_with_every_step_in_the_log(
    pg_store: PostgresEventStore,
) -> None:
    call_id = "v3:talk"
    async with (
        FakeRealtime(
            replies=["Hola, ¿sigue disponible el Corolla?", "Perfecto, ¿cuántas millas tiene?"],
            transcripts=["Sí, todavía lo tengo"],
            reply_ms=600,
        ) as realtime,
        gateway(pg_store, realtime) as ws,
        telnyx(ws, call_id) as call,
    ):
        await call.start()
        # The agent speaks first: its greeting reaches the carrier as paced 20 ms μ-law frames.
        await call.wait_for(lambda c: c.media_out_ms >= 600 and c.played_ms >= 600, timeout=10)
        session = realtime.last
        config = session.session
        assert config["input_audio_format"] == config["output_audio_format"] == "g711_ulaw"
        assert config["turn_detection"]["type"] == "server_vad"
        assert config["turn_detection"]["create_response"] is False
        assert [t["name"] for t in config["tools"]] == ["handoff_to_dealer"]
        assert session.headers["openai-beta"] == "realtime=v1"
        assert session.model == "gpt-4o-realtime-preview"
        # The caller answers; server VAD commits it; the gateway always asks for the reply.
        await call.send_audio(speech_frames(400) + silence_frames(700))
        await realtime.wait_for(lambda r: len(r.last.of_type("response.create")) == 2, timeout=10)
        await call.wait_for(lambda c: c.media_out_ms >= 1200, timeout=10)
        await call.dtmf("5")
        await until_event(pg_store, "telnyx", call_id, "DtmfReceived")
        await call.stop()
        await until_event(pg_store, "telnyx", call_id, "CallEnded")
    events = await call_events(pg_store, "telnyx", call_id)
    assert types(events)[:2] == ["CallStarted", "MediaStreamStarted"]
    assert events[1].event.codec == "PCMU"  # type: ignore[attr-defined]
    turns = [(e.event.role, e.event.text) for e in events if e.type == "TranscriptTurn"]  # type: ignore[attr-defined]
    assert ("agent", "Hola, ¿sigue disponible el Corolla?") in turns
    assert ("caller", "Sí, todavía lo tengo") in turns
    assert ("agent", "Perfecto, ¿cuántas millas tiene?") in turns
    assert [e.event.digit for e in events if e.type == "DtmfReceived"] == ["5"]  # type: ignore[attr-defined]
    ended = events[-1].event
    assert events[-1].type == "CallEnded" and ended.reason == "caller_hung_up" and ended.duration_s > 0  # type: ignore[attr-defined]
    assert realtime.last.closed  # the agent's socket goes with the call
    assert not call.protocol_errors


async def test_barge_in_clears_the_carrier_at_once_and_truncates_the_reply_at_what_was_heard(
    pg_store: PostgresEventStore,
) -> None:
    call_id = "v3:barge"
    async with (
        FakeRealtime(replies=["Le cuento todo sobre nuestra oferta..."], reply_ms=6000) as realtime,
        gateway(pg_store, realtime) as ws,
        telnyx(ws, call_id) as call,
    ):
        await call.start()
        await call.wait_for(lambda c: c.played_ms >= 800, timeout=10)
        # Paced: the gateway keeps only a little audio ahead of what has played, not all 6 s.
        assert call.media_out_ms - call.played_ms <= 200
        heard = call.played_ms
        await call.send_audio(speech_frames(300) + silence_frames(200))
        await call.wait_for(lambda c: len(c.clears) >= 1, timeout=5)
        barge = await until_event(pg_store, "telnyx", call_id, "BargeIn")
        truncations = realtime.last.truncations
        assert len(truncations) == 1
        cut = truncations[0]["audio_end_ms"]
        # What the marks said had played when the caller spoke: never more than the carrier played.
        assert heard - 150 <= cut <= call.played_ms + 20
        assert barge.audio_end_ms == cut and barge.item_id == truncations[0]["item_id"]  # type: ignore[attr-defined]
        sent_after_clear = call.media_out_ms
        await anyio.sleep(0.3)
        assert call.media_out_ms - sent_after_clear <= 40  # the rest of the interrupted reply never goes out
        await call.stop()
        await until_event(pg_store, "telnyx", call_id, "CallEnded")


async def test_twilio_outbound_call_knows_its_lead_and_hands_a_hot_one_to_the_dealer(
    pg_store: PostgresEventStore,
) -> None:
    account, lead, touch = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    ingested = LeadIngested(
        lead_id=lead,
        account_id=account,
        source="craigslist",
        external_id="77",
        city="miami",
        phone="+13055550188",
        title="2015 Honda Civic EX",
        price=8900,
        name="Luis",
    )
    await pg_store.append(lead_stream(lead), [ingested])
    campaign = await Campaigns(pg_store).create(
        account, campaign_key="autos_outbound_miami", name="Autos Miami", steps=[StepSpec(step=1, channel="voice")]
    )
    scheduled = TouchRunScheduled(
        touch_run_id=touch,
        account_id=account,
        lead_id=lead,
        campaign_id=campaign.campaign_id,
        step=1,
        channel="voice",
        scheduled_for=datetime.now(UTC),
    )
    await pg_store.append(touch_stream(touch), [scheduled])
    got: list[tuple[dict[str, Any], str]] = []

    async def handoff(request: web.Request) -> web.Response:
        got.append((await request.json(), request.headers.get("Authorization", "")))
        return web.json_response({"ok": True})

    app = web.Application()
    app.router.add_post("/handoff", handoff)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    handoff_url = f"http://127.0.0.1:{runner.addresses[0][1]}/handoff"
    function_call = {"name": "handoff_to_dealer", "arguments": {"reason": "quiere vender hoy"}}
    try:
        async with (
            FakeRealtime(reply_ms=300, function_call=function_call, function_call_on_response=2) as realtime,
            gateway(
                pg_store, realtime, SUPABASE_VOICE_HANDOFF_URL=handoff_url, SUPABASE_VOICE_HANDOFF_TOKEN="hand-token"
            ) as ws,
            TwilioCall(f"{ws}/twilio?token={sign_call_token(SECRET, str(touch))}") as call,
        ):
            await call.start({"touch_run_id": str(touch), "lead_id": str(lead), "account_id": str(account)})
            await call.wait_for(lambda c: c.media_out_ms >= 300, timeout=10)
            assert "2015 Honda Civic EX" in realtime.last.session["instructions"]
            assert "$8,900" in realtime.last.session["instructions"]
            assert "campaña «Autos Miami»" in realtime.last.session["instructions"]
            await call.send_audio(speech_frames(300) + silence_frames(700))
            handed = await until_event(pg_store, "twilio", call.call_sid, "HandoffRequested")
            outputs = realtime.last.of_type("conversation.item.create")
            assert outputs and outputs[-1]["item"]["type"] == "function_call_output"
            await call.stop()
    finally:
        await runner.cleanup()
    assert handed.reason == "quiere vender hoy" and handed.delivered is True  # type: ignore[attr-defined]
    assert handed.lead_id == lead  # type: ignore[attr-defined]
    [(payload, auth)] = got
    assert auth == "Bearer hand-token" and payload["lead_id"] == str(lead) and payload["reason"] == "quiere vender hoy"
    started = (await call_events(pg_store, "twilio", call.call_sid))[0].event
    assert started.direction == "outbound" and started.touch_run_id == touch  # type: ignore[attr-defined]
    assert started.account_id == account  # type: ignore[attr-defined]


async def test_openai_unreachable_the_caller_hears_the_fallback_and_the_call_ends_with_the_reason(
    pg_store: PostgresEventStore,
) -> None:
    call_id = "v3:fallback"
    async with FakeRealtime() as realtime:
        realtime.refuse_connections = True
        async with gateway(pg_store, realtime) as ws, telnyx(ws, call_id) as call:
            await call.start()
            ended = await until_event(pg_store, "telnyx", call_id, "CallEnded")
            assert call.media_out_ms >= 1000  # the TTS fallback message was streamed to the caller
    assert ended.reason.startswith("ai_unavailable: OpenAI Realtime refused the connection: HTTP 503")  # type: ignore[attr-defined]
    [tts] = realtime.tts_requests
    assert tts.json["model"] == "gpt-4o-mini-tts" and tts.json["response_format"] == "pcm"  # never without a model


async def test_tts_failing_too_the_carrier_speaks_the_fallback_so_it_is_never_silence(
    pg_store: PostgresEventStore,
) -> None:
    call_id = "v3:tts-down"
    async with FakeProviders(callbacks=False) as providers, FakeRealtime() as realtime:
        realtime.refuse_connections = True
        realtime.tts_status = 400
        env = {k: v for k, v in providers.env().items() if k.startswith("TELNYX")}
        with capture_logs() as logs:
            async with gateway(pg_store, realtime, **env) as ws, telnyx(ws, call_id) as call:
                await call.start()
                ended = await until_event(pg_store, "telnyx", call_id, "CallEnded")
    assert ended.reason.startswith("ai_unavailable")  # type: ignore[attr-defined]
    assert "TTS_FAIL" in [entry["event"] for entry in logs]
    [(controlled, action, body)] = providers.telnyx_actions
    assert (controlled, action) == (call_id, "speak") and "problema técnico" in body["payload"]


async def test_an_agent_error_mid_call_ends_it_cleanly_and_a_dropped_carrier_closes_the_agent(
    pg_store: PostgresEventStore,
) -> None:
    async with FakeRealtime(reply_ms=200, error_after_ms=300) as realtime, gateway(pg_store, realtime) as ws:
        async with telnyx(ws, "v3:error") as call:
            await call.start()
            await call.send_audio(speech_frames(400))
            ended = await until_event(pg_store, "telnyx", "v3:error", "CallEnded")
        assert ended.reason.startswith("ai_error")  # type: ignore[attr-defined]
        realtime.error_after_ms = None
        async with telnyx(ws, "v3:dropped") as dropped:
            await dropped.start()
            await realtime.wait_for(lambda r: len(r.sessions) == 2, timeout=5)
            await dropped.drop()
            ended = await until_event(pg_store, "telnyx", "v3:dropped", "CallEnded")
            await realtime.wait_for(lambda r: r.sessions[1].closed, timeout=5)
    assert ended.reason == "carrier_disconnected"  # type: ignore[attr-defined]


async def test_garbage_frames_close_only_their_own_session_while_another_call_streams_on(
    pg_store: PostgresEventStore,
) -> None:
    async with (
        FakeRealtime(reply_ms=5000) as realtime,
        gateway(pg_store, realtime) as ws,
        telnyx(ws, "v3:good") as good,
        telnyx(ws, "v3:bad") as bad,
    ):
        await good.start()
        await bad.start()
        await bad.send_raw("not json")  # a few bad frames are skipped: the call goes on
        await bad.send_raw(b"\x00\x01binary")
        await bad.send_raw(json.dumps({"event": "media", "media": {"payload": "%%%"}}))
        await anyio.sleep(0.1)
        assert not bad.closed
        for _ in range(25):
            await bad.send_raw('{"event": "nonsense"}')
        await bad.wait_for(lambda c: c.closed, timeout=5)
        assert bad.closed_code == 1007
        before = good.media_out_ms
        await good.wait_for(lambda c: c.media_out_ms >= before + 300, timeout=5)
        assert not good.closed
        await good.stop()
    bad_end = [e.event for e in await call_events(pg_store, "telnyx", "v3:bad") if e.type == "CallEnded"]
    assert bad_end[0].reason.startswith("carrier_protocol_error")  # type: ignore[attr-defined]


async def test_a_carrier_dropped_while_the_agent_speaks_still_ends_the_call_in_the_log(
    pg_store: PostgresEventStore,
) -> None:
    async with FakeRealtime(reply_ms=5000) as realtime, gateway(pg_store, realtime) as ws:
        async with telnyx(ws, "v3:speaking") as call:
            await call.start()
            await call.wait_for(lambda c: c.media_out_ms >= 200, timeout=5)
            await call.drop()
            ended = await until_event(pg_store, "telnyx", "v3:speaking", "CallEnded")
        await realtime.wait_for(lambda r: bool(r.sessions) and r.last.closed, timeout=5)
    assert ended.reason == "carrier_disconnected"  # type: ignore[attr-defined]


async def test_a_write_refused_by_a_closing_transport_ends_the_call_not_the_handler(
    pg_store: PostgresEventStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    # What aiohttp raises when the socket closes under a write (seen in CI when a session closed
    # itself for bad frames while its pacer was mid-frame): the call ends, its CallEnded is logged.
    real_send = web.WebSocketResponse.send_str
    sent = 0

    async def closing_after_five(self: web.WebSocketResponse, data: str, compress: int | None = None) -> None:
        nonlocal sent
        if '"media"' in data:
            sent += 1
            if sent > 5:
                raise ClientConnectionResetError("Cannot write to closing transport")
        await real_send(self, data, compress)

    monkeypatch.setattr(web.WebSocketResponse, "send_str", closing_after_five)
    with capture_logs() as logs:
        async with (
            FakeRealtime(reply_ms=2000) as realtime,
            gateway(pg_store, realtime) as ws,
            telnyx(ws, "v3:refused") as call,
        ):
            await call.start()
            ended = await until_event(pg_store, "telnyx", "v3:refused", "CallEnded")
            await call.wait_for(lambda c: c.closed, timeout=5)
    assert ended.reason == "carrier_disconnected"  # type: ignore[attr-defined]
    assert sent == 6
    assert not [e for e in logs if e["event"] in ("voice_session_failed", "http_request_failed")]


async def test_out_of_order_frames_reach_the_agent_in_order(pg_store: PostgresEventStore) -> None:
    frames = [bytes([0x80 + i]) * 160 for i in range(20)]
    async with FakeRealtime() as realtime, gateway(pg_store, realtime) as ws, telnyx(ws, "v3:order") as call:
        await call.start()
        await realtime.wait_for(lambda r: bool(r.sessions), timeout=5)
        await call.send_audio(frames, realtime=False, shuffle_window=4)
        await realtime.wait_for(lambda r: len(r.last.appended_audio) >= 20 * 160, timeout=5)
        await call.stop()
    assert realtime.last.appended_audio[: 20 * 160] == b"".join(frames)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _telnyx_event(kind: str, call: str, **payload: Any) -> dict[str, Any]:
    return {
        "data": {
            "record_type": "event",
            "event_type": kind,
            "id": str(uuid.uuid4()),
            "occurred_at": "2026-12-01T15:00:00Z",
            "payload": {
                "call_control_id": call,
                "call_session_id": str(uuid.uuid4()),
                "from": "+13055550177",
                "to": "+13055550000",
                **payload,
            },
        },
        "meta": {"attempt": 1},
    }


async def test_an_inbound_telnyx_call_is_answered_streamed_talked_to_interrupted_and_hung_up(
    pg_store: PostgresEventStore,
) -> None:
    """The issue's whole story: Call Control webhooks, the stream URL they produce, the talk, the hang-up."""
    port = _free_port()
    call_id = "v3:whole-story"
    settings = msgspec.structs.replace(Settings(), public_url=f"http://127.0.0.1:{port}")
    async with FakeProviders(callbacks=False) as telnyx_api, FakeRealtime(reply_ms=4000) as realtime:
        env = {**telnyx_api.env(), **realtime.env(), "VOICE_GATEWAY_TOKEN": SECRET}
        async with serve_http(pg_store, settings, host="127.0.0.1", port=port, env=env) as url:
            hook = f"{url}/webhooks/telnyx/voice"
            await telnyx_api.send_telnyx_webhook(hook, _telnyx_event("call.initiated", call_id, direction="incoming"))
            await telnyx_api.send_telnyx_webhook(hook, _telnyx_event("call.answered", call_id))
            actions = {action: body for _, action, body in telnyx_api.telnyx_actions}
            assert set(actions) == {"answer", "streaming_start"}
            # Telnyx connects to the URL it was given, token and all.
            async with TelnyxCall(actions["streaming_start"]["stream_url"], call_control_id=call_id) as call:
                await call.start()
                await call.wait_for(lambda c: c.played_ms >= 600, timeout=10)
                await call.send_audio(speech_frames(300) + silence_frames(300))
                await call.wait_for(lambda c: len(c.clears) >= 1, timeout=5)
                await until_event(pg_store, "telnyx", call_id, "BargeIn")
                await telnyx_api.send_telnyx_webhook(
                    hook, _telnyx_event("call.hangup", call_id, hangup_cause="normal_clearing")
                )
                ended = await until_event(pg_store, "telnyx", call_id, "CallEnded")
                await call.wait_for(lambda c: c.closed, timeout=5)
    assert ended.reason == "hangup: normal_clearing"  # type: ignore[attr-defined]
    kinds = types(await call_events(pg_store, "telnyx", call_id))
    assert kinds[:3] == ["CallStarted", "CallAnswered", "MediaStreamStarted"]
    assert "BargeIn" in kinds and "TranscriptTurn" in kinds and kinds[-1] == "CallEnded"
    assert kinds.count("CallEnded") == 1
