"""The voice test doubles themselves: the fake OpenAI Realtime/TTS server and the Twilio/Telnyx carrier sims."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import io
import json
import time
import wave
from collections.abc import AsyncIterator, Callable
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from tests.gateways.voice.carrier_sim import TelnyxCall, TwilioCall
from tests.gateways.voice.fake_openai import (
    FRAME_BYTES,
    TTS_SAMPLE_RATE,
    FakeRealtime,
    is_speech,
    mean_abs_amplitude,
    silence_frames,
    speech_frames,
    ulaw_decode,
    ulaw_encode,
)

MODEL = "gpt-4o-realtime-preview"
Ws = aiohttp.ClientWebSocketResponse

# --- helpers: a Realtime client ------------------------------------------------------------------------------------


@contextlib.asynccontextmanager
async def realtime(fake: FakeRealtime, *, key: str = "sk-test") -> AsyncIterator[Ws]:
    headers = {"Authorization": f"Bearer {key}", "OpenAI-Beta": "realtime=v1"}
    async with (
        aiohttp.ClientSession() as http,
        http.ws_connect(f"{fake.realtime_url}?model={MODEL}", headers=headers) as ws,
    ):
        created = await recv_until(ws, "session.created")
        assert created[-1]["session"]["model"] == MODEL
        yield ws


async def recv_until(ws: Ws, type_: str, timeout: float = 3.0) -> list[dict[str, Any]]:  # noqa: ASYNC109
    """Every server event up to and including the first of `type_`."""
    events: list[dict[str, Any]] = []
    async with asyncio.timeout(timeout):
        while True:
            msg = await ws.receive()
            assert msg.type is aiohttp.WSMsgType.TEXT, (msg, [e["type"] for e in events])
            events.append(json.loads(msg.data))
            if events[-1]["type"] == type_:
                return events


async def send(ws: Ws, type_: str, **fields: Any) -> None:
    await ws.send_json({"type": type_, **fields})


async def append(ws: Ws, frames: list[bytes]) -> None:
    for frame in frames:
        await send(ws, "input_audio_buffer.append", audio=base64.b64encode(frame).decode())


def types(events: list[dict[str, Any]]) -> list[str]:
    return [e["type"] for e in events]


@pytest.fixture
async def fake() -> AsyncIterator[FakeRealtime]:
    async with FakeRealtime(reply_ms=600, replies=["Hola, ¿sigue disponible?"], transcripts=["Sí, claro."]) as f:
        yield f


# --- μ-law -----------------------------------------------------------------------------------------------------------


def test_ulaw_round_trip_and_frames() -> None:
    samples = [0, 1, -1, 100, -100, 1000, -1000, 8000, -8000, 32767, -32768]
    decoded = ulaw_decode(ulaw_encode(samples))
    for original, back in zip(samples, decoded, strict=True):
        assert abs(original - back) <= max(8, abs(original) // 16)
    assert ulaw_encode([0]) == b"\xff" and ulaw_decode(b"\xff\x7f") == [0, 0]
    loud, quiet = speech_frames(100), silence_frames(100)
    assert len(loud) == len(quiet) == 5 and {len(f) for f in loud + quiet} == {FRAME_BYTES}
    assert all(is_speech(f) for f in loud) and not any(is_speech(f) for f in quiet)
    assert mean_abs_amplitude(quiet[0]) == 0.0


# --- fake Realtime ---------------------------------------------------------------------------------------------------


async def test_auth_refusal_and_recorded_headers(fake: FakeRealtime) -> None:
    async with aiohttp.ClientSession() as http:
        with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
            await http.ws_connect(f"{fake.realtime_url}?model={MODEL}", headers={"Authorization": "Bearer sk-wrong"})
        assert refused.value.status == 401
        async with http.get(f"{fake.realtime_url}?model={MODEL}") as resp:
            assert resp.status == 401
            body = await resp.json()
        assert body["error"]["code"] == "invalid_api_key" and body["error"]["type"] == "invalid_request_error"
        assert body["error"]["message"].startswith("Incorrect API key provided")
        fake.refuse_connections = True
        with pytest.raises(aiohttp.WSServerHandshakeError) as unavailable:
            await http.ws_connect(f"{fake.realtime_url}?model={MODEL}", headers={"Authorization": "Bearer sk-test"})
        assert unavailable.value.status == 503
        fake.refuse_connections = False
    assert [status for status, _ in fake.refused] == [401, 401, 503]
    async with realtime(fake):
        pass
    await fake.wait_for(lambda f: f.last.closed)
    assert fake.last.model == MODEL and fake.last.headers["openai-beta"] == "realtime=v1"
    assert fake.last.close_code == 1000 and fake.base_url == f"http://127.0.0.1:{fake.port}/v1"


async def test_server_vad_without_create_response_waits_for_response_create(fake: FakeRealtime) -> None:
    async with realtime(fake) as ws:
        vad = {"type": "server_vad", "silence_duration_ms": 200, "create_response": False}
        await send(ws, "session.update", session={"turn_detection": vad, "input_audio_format": "g711_ulaw"})
        updated = (await recv_until(ws, "session.updated"))[-1]["session"]
        assert updated["turn_detection"]["prefix_padding_ms"] == 300 and updated["input_audio_format"] == "g711_ulaw"
        await append(ws, silence_frames(500) + speech_frames(400) + silence_frames(300))
        events = await recv_until(ws, "conversation.item.input_audio_transcription.completed")
        assert types(events) == [
            "input_audio_buffer.speech_started",
            "input_audio_buffer.speech_stopped",
            "input_audio_buffer.committed",
            "conversation.item.created",
            "conversation.item.input_audio_transcription.completed",
        ]
        started, stopped, committed, _, transcribed = events
        assert started["audio_start_ms"] == 500 - 300  # prefix padding included, as the real server reports
        assert stopped["audio_end_ms"] == 900 + 200  # end of speech plus the silence it took to decide
        assert started["item_id"] == stopped["item_id"] == committed["item_id"] == transcribed["item_id"]
        assert committed["previous_item_id"] is None and transcribed["transcript"] == "Sí, claro."
        await send(ws, "input_audio_buffer.clear")
        assert "response.created" not in types(await recv_until(ws, "input_audio_buffer.cleared"))
        await send(ws, "response.create")
        done = await recv_until(ws, "response.done")
        assert done[0]["type"] == "response.created" and done[-1]["response"]["status"] == "completed"
    assert fake.last.session["turn_detection"]["create_response"] is False
    assert len(fake.last.received) == len(fake.last.received_at) == 1 + 60 + 1 + 1
    assert fake.last.received_at == sorted(fake.last.received_at)


async def test_server_vad_starts_the_response_itself(fake: FakeRealtime) -> None:
    async with realtime(fake) as ws:
        await append(ws, speech_frames(300) + silence_frames(200))
        events = await recv_until(ws, "response.done")
    kinds = types(events)
    assert kinds[:5] == [
        "input_audio_buffer.speech_started",
        "input_audio_buffer.speech_stopped",
        "input_audio_buffer.committed",
        "conversation.item.created",
        "conversation.item.input_audio_transcription.completed",
    ]
    assert events[1]["audio_end_ms"] == 500
    tail = [k for k in kinds[5:] if not k.endswith(".delta")]
    assert tail == [
        "response.created",
        "response.output_item.added",
        "conversation.item.created",
        "response.content_part.added",
        "response.audio.done",
        "response.audio_transcript.done",
        "response.content_part.done",
        "response.output_item.done",
        "response.done",
    ]
    audio = [base64.b64decode(e["delta"]) for e in events if e["type"] == "response.audio.delta"]
    assert [len(a) for a in audio] == [800] * 6 and all(is_speech(a) for a in audio)  # 600 ms in 100 ms deltas
    text = "".join(e["delta"] for e in events if e["type"] == "response.audio_transcript.delta")
    done = events[-1]["response"]
    assert text == "Hola, ¿sigue disponible?" == done["output"][0]["content"][0]["transcript"]
    assert done["status"] == "completed" and done["output"][0]["role"] == "assistant"


async def test_response_cancel_and_truncate(fake: FakeRealtime) -> None:
    fake.reply_ms, fake.delta_interval_s = 2000, 0.02
    async with realtime(fake) as ws:
        await send(ws, "session.update", session={"turn_detection": None})
        await recv_until(ws, "session.updated")
        await send(ws, "response.create")
        first = (await recv_until(ws, "response.audio.delta"))[-1]
        await send(ws, "response.cancel")
        events = await recv_until(ws, "response.done")
        done = events[-1]["response"]
        assert done["status"] == "cancelled" and done["status_details"]["reason"] == "client_cancelled"
        assert 1 + types(events).count("response.audio.delta") < 20
        await send(ws, "response.cancel")
        late = (await recv_until(ws, "error"))[-1]["error"]
        assert late["code"] == "response_cancel_not_active"
        await send(ws, "conversation.item.truncate", item_id=first["item_id"], content_index=0, audio_end_ms=60)
        truncated = (await recv_until(ws, "conversation.item.truncated"))[-1]
        assert truncated["item_id"] == first["item_id"] and truncated["audio_end_ms"] == 60
        await send(ws, "conversation.item.truncate", item_id=first["item_id"], content_index=0, audio_end_ms=9999)
        too_long = (await recv_until(ws, "error"))[-1]["error"]
        assert too_long["code"] == "invalid_value" and too_long["type"] == "invalid_request_error"
    assert [t["audio_end_ms"] for t in fake.last.truncations] == [60, 9999]


async def test_speech_during_a_response_interrupts_it(fake: FakeRealtime) -> None:
    fake.reply_ms, fake.delta_interval_s = 2000, 0.02
    async with realtime(fake) as ws:
        await append(ws, speech_frames(300) + silence_frames(200))
        await recv_until(ws, "response.audio.delta")
        await append(ws, speech_frames(100))
        events = await recv_until(ws, "response.done")
        assert "input_audio_buffer.speech_started" in types(events)
        assert events[-1]["response"]["status_details"] == {"type": "cancelled", "reason": "turn_detected"}


async def test_closing_the_fake_says_going_away() -> None:
    fake = FakeRealtime()
    await fake.start()
    async with realtime(fake) as ws:
        await fake.close()
        msg = await ws.receive(timeout=3)
        assert msg.type is aiohttp.WSMsgType.CLOSE and msg.data == 1001
    assert fake.last.closed and fake.last.close_code == 1001


async def test_commit_unknown_events_and_bad_json_get_real_errors(fake: FakeRealtime) -> None:
    async with realtime(fake) as ws:
        await send(ws, "session.update", session={"turn_detection": None})
        await recv_until(ws, "session.updated")
        await append(ws, speech_frames(60))
        await send(ws, "input_audio_buffer.commit")
        empty = (await recv_until(ws, "error"))[-1]["error"]
        assert empty["code"] == "input_audio_buffer_commit_empty" and "buffer too small" in empty["message"]
        await append(ws, speech_frames(60))
        await send(ws, "input_audio_buffer.commit")
        committed = await recv_until(ws, "input_audio_buffer.committed")
        assert types(committed) == ["input_audio_buffer.committed"]
        await send(ws, "response.speak", text="hola")
        unknown = (await recv_until(ws, "error"))[-1]["error"]
        assert unknown["type"] == "invalid_request_error" and unknown["code"] == "invalid_value"
        await ws.send_str("{not json")
        broken = (await recv_until(ws, "error"))[-1]["error"]
        assert broken["type"] == "invalid_request_error" and broken["code"] == "invalid_json"
        await send(ws, "session.update", session={"voices": "alloy"})
        assert (await recv_until(ws, "error"))[-1]["error"]["code"] == "unknown_parameter"
    await fake.wait_for(lambda f: f.last.closed)
    assert fake.last.received[-2] == {"_raw": "{not json"}
    assert fake.last.audio_ms == 120


async def test_function_call_on_the_configured_response() -> None:
    call = {"name": "handoff_to_dealer", "arguments": {"reason": "quiere ver el auto"}}
    async with (
        FakeRealtime(function_call=call, function_call_on_response=1, reply_ms=200) as fake,
        realtime(fake) as ws,
    ):
        await send(ws, "response.create")
        events = await recv_until(ws, "response.done")
        added = next(e for e in events if e["type"] == "response.output_item.added")["item"]
        args = next(e for e in events if e["type"] == "response.function_call_arguments.done")
        assert added["type"] == "function_call" and added["name"] == "handoff_to_dealer"
        assert args["call_id"] == added["call_id"] and json.loads(args["arguments"]) == call["arguments"]
        assert events[-1]["response"]["output"][0]["type"] == "function_call"
        output = {"type": "function_call_output", "call_id": args["call_id"], "output": "{}"}
        await send(ws, "conversation.item.create", item=output)
        created = (await recv_until(ws, "conversation.item.created"))[-1]
        assert created["item"]["call_id"] == args["call_id"]
        await send(ws, "response.create")
        second = await recv_until(ws, "response.done")
        assert "response.audio.delta" in types(second)


async def test_error_after_audio_closes_with_1011() -> None:
    async with FakeRealtime(error_after_ms=200) as fake, realtime(fake) as ws:
        await send(ws, "session.update", session={"turn_detection": None})
        await recv_until(ws, "session.updated")
        await append(ws, speech_frames(300))
        error = (await recv_until(ws, "error"))[-1]["error"]
        assert error["type"] == "server_error"
        msg = await ws.receive(timeout=3)
        assert msg.type is aiohttp.WSMsgType.CLOSE and msg.data == 1011
        await fake.wait_for(lambda f: f.last.closed)
        assert fake.last.failed and fake.last.close_code == 1011


async def test_drop_cuts_the_connection() -> None:
    async with FakeRealtime(drop_after_s=0.1) as fake, realtime(fake) as ws:
        msg = await ws.receive(timeout=3)
        assert msg.type in (aiohttp.WSMsgType.CLOSED, aiohttp.WSMsgType.ERROR)
        await fake.wait_for(lambda f: f.last.closed)
        assert fake.last.dropped and fake.last.close_code is None


async def test_echo_mode_answers_each_append_with_its_audio() -> None:
    async with FakeRealtime(echo=True) as fake, realtime(fake) as ws:
        frames = speech_frames(60)
        await append(ws, frames)
        deltas = [(await recv_until(ws, "response.audio.delta"))[-1] for _ in frames]
    assert [base64.b64decode(d["delta"]) for d in deltas] == frames
    assert {d["item_id"] for d in deltas} == {"echo"} and not fake.last.sent_of_type(
        "input_audio_buffer.speech_started"
    )


async def test_tts_requires_a_model_and_serves_pcm_and_wav(fake: FakeRealtime) -> None:
    url = f"{fake.base_url}/audio/speech"
    auth = {"Authorization": "Bearer sk-test"}
    body = {"input": "Hola, soy Ana.", "voice": "alloy", "response_format": "pcm"}
    async with aiohttp.ClientSession(headers=auth) as http:
        async with http.post(url, json=body) as resp:
            assert resp.status == 400
            error = (await resp.json())["error"]
        assert error["message"] == "you must provide a model parameter" and error["type"] == "invalid_request_error"
        async with http.post(url, json={**body, "model": "gpt-4o-mini-tts"}) as resp:
            assert resp.status == 200
            pcm = await resp.read()
        assert len(pcm) == 2 * TTS_SAMPLE_RATE * 60 * len(body["input"]) // 1000
        async with http.post(url, json={**body, "model": "tts-1", "response_format": "wav"}) as resp:
            assert resp.status == 200 and resp.content_type == "audio/wav"
            with wave.open(io.BytesIO(await resp.read())) as wav:
                assert (wav.getframerate(), wav.getnchannels(), wav.getsampwidth()) == (TTS_SAMPLE_RATE, 1, 2)
                assert wav.readframes(wav.getnframes()) == pcm
        async with http.post(url, json={**body, "model": "tts-1", "response_format": "mp3"}) as resp:
            assert resp.status == 400
        fake.tts_status = 500
        async with http.post(url, json={**body, "model": "tts-1"}) as resp:
            assert resp.status == 500 and (await resp.json())["error"]["type"] == "server_error"
    assert [r.status for r in fake.tts_requests] == [400, 200, 200, 400, 500]
    assert fake.tts_requests[1].json["model"] == "gpt-4o-mini-tts"


# --- carrier sims against a tiny stand-in gateway --------------------------------------------------------------------


class Gateway:
    """Accepts carrier sockets at /stream?token=good (403 otherwise) and keeps what they send."""

    def __init__(self) -> None:
        self.frames: list[dict[str, Any]] = []
        self.ws: web.WebSocketResponse | None = None
        self.ended = False
        self._tick = asyncio.Event()
        self.url = ""

    async def handler(self, request: web.Request) -> web.StreamResponse:
        if request.query.get("token") != "good":
            return web.json_response({"error": "bad token"}, status=403)
        ws = web.WebSocketResponse(timeout=2.0)
        await ws.prepare(request)
        self.ws = ws
        self._notify()
        async for msg in ws:
            if msg.type is aiohttp.WSMsgType.TEXT:
                self.frames.append(json.loads(msg.data))
                self._notify()
        self.ended = True
        self._notify()
        return ws

    def _notify(self) -> None:
        tick, self._tick = self._tick, asyncio.Event()
        tick.set()

    async def wait_for(self, predicate: Callable[[Gateway], bool]) -> None:
        async with asyncio.timeout(3):
            while True:
                tick = self._tick
                if predicate(self):
                    return
                await tick.wait()

    def of(self, event: str) -> list[dict[str, Any]]:
        return [f for f in self.frames if f.get("event") == event]

    async def send(self, frame: dict[str, Any]) -> None:
        assert self.ws is not None
        await self.ws.send_json(frame)


@pytest.fixture
async def gateway() -> AsyncIterator[Gateway]:
    gw = Gateway()
    app = web.Application()
    app.router.add_get("/stream", gw.handler)
    runner = web.AppRunner(app, handle_signals=False)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    gw.url = f"ws://127.0.0.1:{runner.addresses[0][1]}/stream"
    try:
        yield gw
    finally:
        if gw.ws is not None and not gw.ws.closed:
            await gw.ws.close()
        await runner.cleanup()


def payload(frame: bytes) -> str:
    return base64.b64encode(frame).decode()


async def test_twilio_frames_have_twilio_shapes(gateway: Gateway) -> None:
    async with TwilioCall(gateway.url + "?token=good") as call:
        await call.start({"lead": "L1"})
        frames = speech_frames(60)
        await call.send_audio(frames, realtime=False)
        await call.dtmf("5")
        await call.stop()
    await gateway.wait_for(lambda g: g.ended)
    connected, start, *media, dtmf, stop = gateway.frames
    assert connected == {"event": "connected", "protocol": "Call", "version": "1.0.0"}
    assert start["sequenceNumber"] == "1" and start["streamSid"] == call.stream_sid
    assert start["start"]["mediaFormat"] == {"encoding": "audio/x-mulaw", "sampleRate": 8000, "channels": 1}
    assert start["start"]["customParameters"] == {"lead": "L1"} and start["start"]["callSid"].startswith("CA")
    assert start["start"]["accountSid"].startswith("AC") and start["start"]["tracks"] == ["inbound"]
    assert [m["sequenceNumber"] for m in media] == ["2", "3", "4"]
    assert [(m["media"]["chunk"], m["media"]["timestamp"]) for m in media] == [("1", "0"), ("2", "20"), ("3", "40")]
    assert [m["media"]["payload"] for m in media] == [payload(f) for f in frames]
    assert {m["media"]["track"] for m in media} == {"inbound"} and {m["streamSid"] for m in media} == {call.stream_sid}
    assert dtmf["dtmf"] == {"track": "inbound_track", "digit": "5"} and dtmf["sequenceNumber"] == "5"
    assert stop["stop"] == {"accountSid": call.account_sid, "callSid": call.call_sid}
    assert call.closed and call.closed_by == "sim"


async def test_telnyx_frames_have_telnyx_shapes(gateway: Gateway) -> None:
    async with TelnyxCall(gateway.url + "?token=good") as call:
        await call.start(client_state=b'{"run": "r1"}', encoding="G729")
        started = time.perf_counter()
        await call.send_audio(silence_frames(100))  # paced: 5 frames, 20 ms apart
        paced = time.perf_counter() - started
        await call.dtmf("#")
        await call.stop()
    await gateway.wait_for(lambda g: g.ended)
    connected, start = gateway.frames[:2]
    assert connected == {"event": "connected", "version": "1.0.0"}
    assert start["sequence_number"] == "1" and start["stream_id"] == call.stream_id
    body = start["start"]
    assert body["media_format"] == {"encoding": "G729", "sample_rate": 8000, "channels": 1}
    assert body["call_control_id"].startswith("v3:") and base64.b64decode(body["client_state"]) == b'{"run": "r1"}'
    assert {"user_id", "call_session_id", "from", "to"} <= body.keys()
    media = gateway.of("media")
    assert [m["media"]["timestamp"] for m in media] == ["0", "20", "40", "60", "80"] and paced >= 0.07
    assert {m["stream_id"] for m in media} == {call.stream_id}
    (dtmf,) = gateway.of("dtmf")
    assert dtmf["dtmf"] == {"digit": "#"} and dtmf["occurred_at"].endswith("Z")
    (stop,) = gateway.of("stop")
    assert stop["stop"] == {"user_id": call.user_id, "call_control_id": call.call_control_id}


async def test_marks_are_echoed_once_their_audio_has_played(gateway: Gateway) -> None:
    async with TwilioCall(gateway.url + "?token=good") as call:
        await call.start()
        await gateway.wait_for(lambda g: bool(g.of("start")))
        sid = call.stream_sid
        sent = time.perf_counter()
        for frame in speech_frames(200):
            await gateway.send({"event": "media", "streamSid": sid, "media": {"payload": payload(frame)}})
        await gateway.send({"event": "mark", "streamSid": sid, "mark": {"name": "reply-1"}})
        await call.wait_for(lambda c: c.marks_out == ["reply-1"])
        assert call.mark_echoes == [] and call.queued_ms > 100
        await gateway.wait_for(lambda g: bool(g.of("mark")))
        assert call.mark_echoes_at[0] - sent >= 0.19 and call.played_ms >= 190
        await gateway.send({"event": "mark", "streamSid": sid, "mark": {"name": "nothing-queued"}})
        await call.wait_for(lambda c: len(c.mark_echoes) == 2)
        assert call.mark_echoes_at[1] - call.received_at[-1] < 0.05
    echoed = gateway.of("mark")
    assert [m["mark"]["name"] for m in echoed] == ["reply-1", "nothing-queued"]
    assert {m["streamSid"] for m in echoed} == {sid} and all("sequenceNumber" in m for m in echoed)
    assert len(call.media_out) == 10 and call.media_out_ms == 200 and call.protocol_errors == []


async def test_clear_empties_playout_and_echoes_pending_marks_at_once(gateway: Gateway) -> None:
    async with TelnyxCall(gateway.url + "?token=good") as call:
        await call.start()
        await gateway.wait_for(lambda g: bool(g.of("start")))
        second = b"".join(speech_frames(1000))
        await gateway.send({"event": "media", "media": {"payload": payload(second)}})
        await gateway.send({"event": "mark", "mark": {"name": "end-of-reply"}})
        await call.wait_for(lambda c: c.played_ms >= 100)
        await gateway.send({"event": "clear"})
        await call.wait_for(lambda c: c.mark_echoes == ["end-of-reply"], timeout=0.5)
        assert len(call.clears) == 1 and call.mark_echoes_at[0] - call.clears[0] < 0.1
        assert call.queued_ms == 0 and 100 <= call.played_ms < 400
        played = call.played_ms
        await gateway.wait_for(lambda g: bool(g.of("mark")))
        assert call.played_ms == played  # nothing plays after a clear
        await gateway.send({"event": "media", "stream_id": "someone-else", "media": {"payload": payload(b"\xff" * 80)}})
        await call.wait_for(lambda c: len(c.protocol_errors) == 2)
    (echo,) = gateway.of("mark")
    assert echo["mark"] == {"name": "end-of-reply"} and echo["stream_id"] == call.stream_id
    assert "stream_id" in call.protocol_errors[0] and "10 ms" in call.protocol_errors[1]


async def test_reorder_window_shuffles_but_keeps_numbering(gateway: Gateway) -> None:
    frames = [bytes([i]) * FRAME_BYTES for i in range(12)]
    async with TelnyxCall(gateway.url + "?token=good") as call:
        await call.start()
        await call.send_audio(frames, realtime=False, shuffle_window=4, shuffle_seed=7)
        await gateway.wait_for(lambda g: len(g.of("media")) == 12)
    chunks = [int(m["media"]["chunk"]) for m in gateway.of("media")]
    assert chunks != sorted(chunks)
    assert [sorted(chunks[i : i + 4]) for i in (0, 4, 8)] == [[1, 2, 3, 4], [5, 6, 7, 8], [9, 10, 11, 12]]
    by_chunk = sorted(gateway.of("media"), key=lambda m: int(m["media"]["chunk"]))
    assert [base64.b64decode(m["media"]["payload"]) for m in by_chunk] == frames
    assert [int(m["media"]["timestamp"]) for m in by_chunk] == [20 * i for i in range(12)]


async def test_refused_and_unreachable_connections_are_recorded(gateway: Gateway) -> None:
    async with TwilioCall(gateway.url + "?token=bad") as call:
        assert call.connect_status == 403 and not call.connected
        with pytest.raises(RuntimeError, match="not connected"):
            await call.start()
    async with TelnyxCall("ws://127.0.0.1:9/stream") as nowhere:
        assert nowhere.connect_status is None and nowhere.connect_error


async def test_gateway_close_code_and_carrier_drop(gateway: Gateway) -> None:
    async with TwilioCall(gateway.url + "?token=good") as call:
        await call.start()
        await gateway.wait_for(lambda g: bool(g.of("start")))
        assert gateway.ws is not None
        await gateway.ws.close(code=4001, message=b"unsupported codec")
        await call.wait_for(lambda c: c.closed)
    assert (call.closed_by, call.closed_code, call.close_reason) == ("gateway", 4001, "unsupported codec")
    gateway.ended, gateway.frames = False, []
    async with TelnyxCall(gateway.url + "?token=good", idle_silence=True) as dropped:
        await dropped.start()
        await gateway.wait_for(lambda g: len(g.of("media")) >= 3)  # silence while idle, like a live line
        await dropped.drop()
        await gateway.wait_for(lambda g: g.ended)
    assert dropped.dropped and dropped.closed_by == "lost" and not gateway.of("stop")
    assert gateway.ws is not None and gateway.ws.close_code != 1000
