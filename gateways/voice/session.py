"""One voice session per call: the carrier's media stream bridged to the OpenAI Realtime agent.

Three tasks share the call:
- the **carrier reader** puts inbound frames back in order and appends their audio to the
  agent's input buffer; it records DTMF and reads the marks the carrier echoes once the audio
  before them has played;
- the **agent reader** takes the agent's audio (queued for the pacer), its transcripts and the
  caller's, and its server VAD: after a commit of real speech it always sends
  `response.create` (the spec's rule); when the caller starts speaking while the agent's audio
  is still playing, that is a **barge-in**: `clear` to the carrier at once, `response.cancel`,
  and `conversation.item.truncate` at the audio the caller actually heard (from the marks), so
  the agent's memory matches what was said;
- the **pacer** sends the agent's audio in 20 ms frames a little ahead of real time
  (`playout_lead_ms`), with a mark every `mark_every_ms`, so a clear cuts quickly.

The agent unreachable or failing: the caller hears a short fallback message (TTS through
OpenAI's speech endpoint, else the carrier's own text-to-speech) and the call ends with the
reason. Everything is recorded on the call's stream.
"""

from __future__ import annotations

import base64
import json
import time
import warnings
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Any, Final
from uuid import UUID

import aiohttp
import anyio
import msgspec
import structlog
from aiohttp import web

from events.catalog import (
    BargeIn,
    CallEnded,
    DtmfReceived,
    Event,
    HandoffRequested,
    MediaStreamStarted,
    TranscriptTurn,
    call_stream,
)
from events.errors import GatewayError
from events.store import EventStore
from gateways.voice.frames import (
    FRAME_BYTES,
    FRAME_MS,
    Carrier,
    Dtmf,
    Mark,
    Media,
    Outbound,
    Reorder,
    Start,
    Stop,
    parse_frame,
)
from gateways.voice.settings import VoiceSettings

with warnings.catch_warnings():  # audioop: deprecated in 3.11, what pydub itself uses; fine until 3.13
    warnings.simplefilter("ignore", DeprecationWarning)
    import audioop

log = structlog.get_logger("touchline.voice")

MAX_BAD_FRAMES: Final = 20  # garbage beyond this many frames closes the session (only this one)

HANDOFF_TOOL: Final = {
    "type": "function",
    "name": "handoff_to_dealer",
    "description": "The seller wants to sell now or asks for a person: hand the call's lead to the dealer.",
    "parameters": {
        "type": "object",
        "properties": {"reason": {"type": "string", "description": "why, in a few words"}},
        "required": ["reason"],
    },
}


class CallInfo(msgspec.Struct, frozen=True, kw_only=True):
    call_id: UUID
    account_id: UUID
    carrier: Carrier
    carrier_call_id: str
    direction: str = "inbound"
    lead_id: UUID | None = None
    touch_run_id: UUID | None = None


class SessionStats(msgspec.Struct, kw_only=True):
    frames_in: int = 0
    frames_out: int = 0
    bad_frames: int = 0
    late_frames: int = 0
    lost_frames: int = 0
    barge_ins: int = 0
    responses: int = 0


class VoiceSession:
    def __init__(
        self,
        *,
        ws: web.WebSocketResponse,
        start: Start,
        info: CallInfo,
        store: EventStore,
        settings: VoiceSettings,
        http: aiohttp.ClientSession,
        instructions: str,
        carrier_speak: Callable[[str], Awaitable[bool]] | None = None,
    ) -> None:
        self.ws = ws
        self.start_frame = start
        self.info = info
        self.store = store
        self.settings = settings
        self.http = http
        self.instructions = instructions
        self.carrier_speak = carrier_speak
        self.outbound = Outbound(info.carrier, start.stream_id)
        self.reorder = Reorder()
        self.stats = SessionStats()
        self.started_at = time.monotonic()
        self.agent: aiohttp.ClientWebSocketResponse | None = None
        self._out: deque[tuple[str, bytes]] = deque()  # (item id, one 20 ms frame) waiting for the pacer
        self._out_ready = anyio.Event()
        self._play_at = 0.0  # when the next frame sent would start playing at the carrier
        self._sent: dict[str, int] = {}  # item → ms of its audio sent
        self._heard: dict[str, int] = {}  # item → ms of its audio the carrier says played (marks)
        self._cut: set[str] = set()  # items truncated by a barge-in: their late marks mean nothing
        self._speaking_item: str | None = None
        self._response_id: str | None = None
        self._speech_since_commit = False
        self._ended: str | None = None
        self._done = anyio.Event()
        self._carrier_gone = False

    # --- recording -------------------------------------------------------------------------------

    async def record(self, *events: Event) -> None:
        await self.store.append(call_stream(self.info.call_id), list(events))

    @property
    def call_id(self) -> UUID:
        return self.info.call_id

    # --- the call ---------------------------------------------------------------------------------

    async def run(self) -> str:
        """Bridge the call until it ends; the reason it ended."""
        await self.record(
            MediaStreamStarted(
                call_id=self.call_id,
                account_id=self.info.account_id,
                stream_id=self.start_frame.stream_id,
                codec=self.start_frame.codec,
                sample_rate=self.start_frame.sample_rate,
            )
        )
        try:
            self.agent = await self._connect_agent()
        except GatewayError as exc:
            log.warning("VOICE_AGENT_UNAVAILABLE", call_id=str(self.call_id), error=str(exc))
            return await self._end_with_fallback(f"ai_unavailable: {exc}")
        try:
            async with anyio.create_task_group() as tg:
                tg.start_soon(self._watch_done, tg)
                tg.start_soon(self._carrier_reader)
                tg.start_soon(self._agent_reader)
                tg.start_soon(self._pacer)
        except Exception as exc:  # a bug in one call must still leave its CallEnded in the log
            log.exception("voice_session_failed", call_id=str(self.call_id))
            self.end(f"internal_error: {type(exc).__name__}")
        finally:
            with anyio.CancelScope(shield=True):
                if self.agent is not None and not self.agent.closed:
                    await self.agent.close()
        reason = self._ended or "ended"
        if reason.startswith("ai_"):
            return await self._end_with_fallback(reason)
        await self._finish(reason)
        return reason

    def end(self, reason: str) -> None:
        """End the session from outside (the carrier's hang-up webhook, shutdown)."""
        if self._ended is None:
            self._ended = reason
        self._done.set()

    async def _watch_done(self, tg: anyio.abc.TaskGroup) -> None:
        await self._done.wait()
        tg.cancel_scope.cancel()

    async def _finish(self, reason: str) -> None:
        with anyio.CancelScope(shield=True):
            duration = round(time.monotonic() - self.started_at, 3)
            await self.record(
                CallEnded(call_id=self.call_id, account_id=self.info.account_id, reason=reason, duration_s=duration)
            )
            log.info(
                "voice_session_ended", call_id=str(self.call_id), reason=reason, **msgspec.structs.asdict(self.stats)
            )
            if not self.ws.closed:
                await self.ws.close()

    # --- the agent ------------------------------------------------------------------------------

    async def _connect_agent(self) -> aiohttp.ClientWebSocketResponse:
        settings = self.settings
        if not settings.openai_api_key:
            raise GatewayError("no OpenAI key: set OPENAI_API_KEY (or OPEN_AI_KEY)")
        headers = {"Authorization": f"Bearer {settings.openai_api_key}", "OpenAI-Beta": "realtime=v1"}
        try:
            with anyio.fail_after(settings.connect_timeout_s):
                agent = await self.http.ws_connect(settings.realtime_url, headers=headers, heartbeat=None)
        except TimeoutError:
            raise GatewayError(f"OpenAI Realtime did not answer within {settings.connect_timeout_s:g} s") from None
        except aiohttp.WSServerHandshakeError as exc:
            raise GatewayError(f"OpenAI Realtime refused the connection: HTTP {exc.status}") from None
        except aiohttp.ClientError as exc:
            raise GatewayError(f"cannot reach OpenAI Realtime: {type(exc).__name__}: {exc}") from None
        setup = json.dumps(
            {
                "type": "session.update",
                "session": {
                    "modalities": ["audio", "text"],
                    "instructions": self.instructions,
                    "voice": settings.realtime_voice,
                    "input_audio_format": "g711_ulaw",
                    "output_audio_format": "g711_ulaw",
                    "input_audio_transcription": {"model": "whisper-1"},
                    # We send response.create ourselves after every commit of real speech.
                    "turn_detection": {
                        "type": "server_vad",
                        "silence_duration_ms": settings.silence_duration_ms,
                        "create_response": False,
                    },
                    "tools": [HANDOFF_TOOL],
                    "tool_choice": "auto",
                },
            }
        )
        try:
            await agent.send_str(setup)
            await agent.send_str('{"type":"response.create"}')  # the agent speaks first
        except ConnectionError as exc:
            await agent.close()
            raise GatewayError(f"OpenAI Realtime closed the connection during set-up: {exc}") from None
        return agent

    async def _agent_reader(self) -> None:
        agent = self.agent
        assert agent is not None
        async for msg in agent:
            if msg.type != aiohttp.WSMsgType.TEXT:
                break
            try:
                event = json.loads(msg.data)
            except ValueError:
                log.warning("voice_agent_bad_event", call_id=str(self.call_id))
                continue
            await self._on_agent_event(event)
            if self._ended:
                return
        if not self._ended:
            code = agent.close_code
            self.end(f"ai_disconnected (code {code})" if code else "ai_disconnected")

    async def _on_agent_event(self, event: dict[str, Any]) -> None:
        kind = event.get("type")
        match kind:
            case "response.created":
                self._response_id = (event.get("response") or {}).get("id")
                self.stats.responses += 1
            case "response.audio.delta":
                item = str(event.get("item_id") or "")
                try:
                    audio = base64.b64decode(event.get("delta") or "")
                except ValueError:
                    return
                if item in self._cut:
                    return  # the rest of a reply the caller interrupted
                self._speaking_item = item
                for i in range(0, len(audio), FRAME_BYTES):
                    frame = audio[i : i + FRAME_BYTES]
                    self._out.append((item, frame.ljust(FRAME_BYTES, b"\xff")))
                self._out_ready.set()
            case "response.audio_transcript.done":
                if text := (event.get("transcript") or "").strip():
                    await self.record(
                        TranscriptTurn(call_id=self.call_id, account_id=self.info.account_id, role="agent", text=text)
                    )
            case "conversation.item.input_audio_transcription.completed":
                if text := (event.get("transcript") or "").strip():
                    await self.record(
                        TranscriptTurn(call_id=self.call_id, account_id=self.info.account_id, role="caller", text=text)
                    )
            case "input_audio_buffer.speech_started":
                self._speech_since_commit = True
                if self._agent_audible():
                    await self._barge_in()
            case "input_audio_buffer.committed":
                # The spec's rule: a commit of real audio is always answered.
                if self._speech_since_commit:
                    self._speech_since_commit = False
                    await self._tell_agent({"type": "response.create"})
            case "response.done":
                self._response_id = None
            case "response.function_call_arguments.done":
                await self._function_call(event)
            case "error":
                error = event.get("error") or {}
                log.warning("voice_agent_error", call_id=str(self.call_id), error=error)
                if error.get("type") == "server_error":
                    self.end(f"ai_error: {error.get('message') or error.get('code') or 'server error'}")

    def _agent_audible(self) -> bool:
        return bool(self._out) or self._play_at > anyio.current_time()

    async def _barge_in(self) -> None:
        """The caller talks over the agent: stop the audio now, and cut the reply where they stopped hearing."""
        item = self._speaking_item
        heard = self._heard.get(item, 0) if item else 0
        self._out.clear()
        self._play_at = anyio.current_time()
        await self._to_carrier(self.outbound.clear())
        if self._response_id:
            await self._tell_agent({"type": "response.cancel"})
        if item:
            self._cut.add(item)
            await self._tell_agent(
                {"type": "conversation.item.truncate", "item_id": item, "content_index": 0, "audio_end_ms": heard}
            )
        self.stats.barge_ins += 1
        await self.record(
            BargeIn(call_id=self.call_id, account_id=self.info.account_id, item_id=item, audio_end_ms=heard)
        )

    async def _function_call(self, event: dict[str, Any]) -> None:
        name, call_id = event.get("name"), event.get("call_id")
        try:
            arguments = json.loads(event.get("arguments") or "{}")
        except ValueError:
            arguments = {}
        output: dict[str, Any] = {"ok": False, "error": f"unknown function {name!r}"}
        if name == "handoff_to_dealer":
            reason = str(arguments.get("reason") or "hot lead")[:500]
            delivered = await self._post_handoff(reason)
            await self.record(
                HandoffRequested(
                    call_id=self.call_id,
                    account_id=self.info.account_id,
                    reason=reason,
                    lead_id=self.info.lead_id,
                    delivered=delivered,
                )
            )
            output = {"ok": True, "delivered": delivered}
        await self._tell_agent(
            {
                "type": "conversation.item.create",
                "item": {"type": "function_call_output", "call_id": call_id, "output": json.dumps(output)},
            }
        )
        await self._tell_agent({"type": "response.create"})

    async def _post_handoff(self, reason: str) -> bool | None:
        url = self.settings.handoff_url
        if not url:
            return None
        headers = {"Authorization": f"Bearer {self.settings.handoff_token}"} if self.settings.handoff_token else {}
        payload = {
            "call_id": str(self.call_id),
            "account_id": str(self.info.account_id),
            "lead_id": str(self.info.lead_id) if self.info.lead_id else None,
            "carrier": self.info.carrier,
            "carrier_call_id": self.info.carrier_call_id,
            "reason": reason,
        }
        try:
            with anyio.fail_after(5):
                async with self.http.post(url, json=payload, headers=headers) as resp:
                    ok = resp.status < 300
        except (TimeoutError, aiohttp.ClientError) as exc:
            log.warning("VOICE_HANDOFF_FAILED", call_id=str(self.call_id), error=f"{type(exc).__name__}: {exc}")
            return False
        log.info("VOICE_HANDOFF", call_id=str(self.call_id), status=resp.status)
        return ok

    # --- the carrier ----------------------------------------------------------------------------

    async def _carrier_reader(self) -> None:
        async for msg in self.ws:
            if msg.type == aiohttp.WSMsgType.TEXT:
                try:
                    frame = parse_frame(self.info.carrier, msg.data)
                except GatewayError as exc:
                    if await self._bad_frame(str(exc)):
                        return
                    continue
            elif msg.type == aiohttp.WSMsgType.BINARY:
                if await self._bad_frame("binary frame: carriers send JSON text frames"):
                    return
                continue
            else:
                break
            match frame:
                case Media():
                    self.stats.frames_in += 1
                    for media in self.reorder.push(frame):
                        if media.track in ("inbound", "inbound_track"):
                            await self._to_agent(media)
                    self.stats.late_frames, self.stats.lost_frames = self.reorder.late, self.reorder.lost
                case Dtmf(digit=digit):
                    await self.record(DtmfReceived(call_id=self.call_id, account_id=self.info.account_id, digit=digit))
                case Mark(name=name):
                    item, _, ms = name.rpartition(":")
                    if item and item not in self._cut and ms.isdigit():
                        self._heard[item] = max(self._heard.get(item, 0), int(ms))
                case Stop():
                    for media in self.reorder.flush():
                        await self._to_agent(media)
                    self.end("caller_hung_up")
                    return
        self.end("carrier_disconnected")

    async def _to_agent(self, media: Media) -> None:
        """The caller's audio into the agent's input buffer (built by hand: 50 times a second per call)."""
        audio = base64.b64encode(media.audio).decode()
        await self._tell_agent('{"type":"input_audio_buffer.append","audio":"' + audio + '"}')

    async def _tell_agent(self, message: dict[str, Any] | str) -> None:
        """One message to the agent; a socket that went away ends the session (the caller hears the fallback)."""
        agent = self.agent
        if agent is None or agent.closed:
            return
        try:
            await agent.send_str(message if isinstance(message, str) else json.dumps(message))
        except ConnectionError:
            self.end("ai_disconnected")

    async def _to_carrier(self, frame: str) -> bool:
        """One frame to the carrier; False once its socket is closing (the call is over, not the process)."""
        if self._carrier_gone or self.ws.closed:
            return False
        try:
            await self.ws.send_str(frame)
        except ConnectionError:
            self._carrier_gone = True
            self.end("carrier_disconnected")
            return False
        return True

    async def _bad_frame(self, why: str) -> bool:
        """Count a frame we could not read; True when there were too many and the session ends."""
        self.stats.bad_frames += 1
        log.warning("voice_bad_frame", call_id=str(self.call_id), error=why, count=self.stats.bad_frames)
        if self.stats.bad_frames > MAX_BAD_FRAMES:
            self.end(f"carrier_protocol_error: {why}")
            self._carrier_gone = True  # nothing more is written to a socket being closed
            await self.ws.close(code=1007, message=b"too many malformed frames")
            return True
        return False

    async def _pacer(self) -> None:
        lead = self.settings.playout_lead_ms / 1000
        frame_s = FRAME_MS / 1000
        while True:
            if not self._out:
                self._out_ready = anyio.Event()
                await self._out_ready.wait()
                continue
            now = anyio.current_time()
            if self._play_at < now:
                self._play_at = now  # the carrier ran dry: playback starts again now
            ahead = self._play_at - now
            if ahead > lead:
                await anyio.sleep(ahead - lead)
                continue
            item, frame = self._out.popleft()
            if not await self._to_carrier(self.outbound.media(frame)):
                return
            self.stats.frames_out += 1
            self._play_at += frame_s
            sent = self._sent.get(item, 0) + FRAME_MS
            self._sent[item] = sent
            next_item = self._out[0][0] if self._out else None
            at_mark = sent % self.settings.mark_every_ms == 0 or next_item != item
            if at_mark and not await self._to_carrier(self.outbound.mark(f"{item}:{sent}")):
                return

    # --- when the agent fails ---------------------------------------------------------------------

    async def _end_with_fallback(self, reason: str) -> str:
        """The caller hears a short message (TTS, else the carrier's own voice) and the call ends."""
        played = False
        try:
            audio = await self._tts(self.settings.fallback_text)
        except GatewayError as exc:
            log.warning("TTS_FAIL", call_id=str(self.call_id), error=str(exc))
        else:
            played = await self._play_to_end(audio)
        if not played and self.carrier_speak is not None:
            try:
                played = await self.carrier_speak(self.settings.fallback_text)
            except Exception as exc:
                log.warning(
                    "VOICE_FALLBACK_SPEAK_FAILED", call_id=str(self.call_id), error=f"{type(exc).__name__}: {exc}"
                )
        log.info("VOICE_FALLBACK", call_id=str(self.call_id), reason=reason, played=played)
        await self._finish(reason)
        return reason

    async def _tts(self, text: str) -> bytes:
        """OpenAI speech as 8 kHz μ-law (the model always named: without it the API answers 400)."""
        settings = self.settings
        if not settings.openai_api_key:
            raise GatewayError("no OpenAI key for text-to-speech")
        payload = {
            "model": settings.tts_model,
            "voice": settings.tts_voice,
            "input": text,
            "response_format": "pcm",
            "speed": settings.tts_speed,
        }
        headers = {"Authorization": f"Bearer {settings.openai_api_key}"}
        try:
            with anyio.fail_after(10):
                async with self.http.post(
                    f"{settings.openai_base_url}/audio/speech", json=payload, headers=headers
                ) as r:
                    body = await r.read()
                    if r.status != 200:
                        raise GatewayError(
                            f"text-to-speech answered HTTP {r.status}: {body[:200].decode(errors='replace')}"
                        )
        except TimeoutError:
            raise GatewayError("text-to-speech did not answer within 10 s") from None
        except aiohttp.ClientError as exc:
            raise GatewayError(f"cannot reach text-to-speech: {type(exc).__name__}") from None
        return pcm24k_to_ulaw8k(body)

    async def _play_to_end(self, audio: bytes) -> bool:
        if self.ws.closed or self._carrier_gone:
            return False
        for i in range(0, len(audio), FRAME_BYTES):
            self._out.append(("fallback", audio[i : i + FRAME_BYTES].ljust(FRAME_BYTES, b"\xff")))
        broken = False
        try:
            with anyio.move_on_after(len(audio) / 8000 + 2):
                async with anyio.create_task_group() as tg:
                    tg.start_soon(self._pacer)
                    while self._out and not (self.ws.closed or self._carrier_gone):  # noqa: ASYNC110 - a frame's time
                        await anyio.sleep(0.02)
                    await anyio.sleep(max(0.0, self._play_at - anyio.current_time()))
                    tg.cancel_scope.cancel()
        except* (ConnectionError, RuntimeError):  # the pacer's, so grouped: the message did not play out
            broken = True
        return not (broken or self._carrier_gone)


def pcm24k_to_ulaw8k(pcm: bytes) -> bytes:
    """OpenAI's `pcm` (24 kHz, 16-bit little-endian mono) as 8 kHz G.711 μ-law for the carrier."""
    if len(pcm) % 2:
        pcm = pcm[:-1]
    resampled, _ = audioop.ratecv(pcm, 2, 1, 24000, 8000, None)
    return audioop.lin2ulaw(resampled, 2)
