"""A local stand-in for the OpenAI Realtime API (beta wire protocol) and its TTS endpoint, for the voice gateway tests.

`FakeRealtime` serves, on 127.0.0.1 and a free port, what the gateway reaches under `OPENAI_BASE_URL`:

- `GET /v1/realtime?model=M` (WebSocket upgrade, `Authorization: Bearer <key>`): the Realtime session. It answers
  `session.created`, applies `session.update`, buffers `input_audio_buffer.append` audio (G.711 μ-law, 8000 bytes a
  second: every audio time here is counted from appended bytes, never from the wall clock), runs a small server VAD
  on it (mean absolute amplitude of the decoded samples), commits turns, transcribes them from a script and answers
  with scripted responses streamed as `response.audio.delta` events, honouring `response.cancel` and
  `conversation.item.truncate`; errors are the real server's `error` events (`invalid_request_error` + code).
- `POST /v1/audio/speech`: TTS; `pcm` (16-bit little-endian mono 24 kHz) and `wav` bodies of a short tone whose
  length follows the input text; a missing `model` gets the documented 400.

Every connection is recorded as a `RealtimeSession` in `sessions` (client events with their `time.perf_counter()`
arrival times, the events sent back with theirs, the session config, model, lower-cased headers, how it closed).
Faults: `refuse_connections`, `error_after_ms`, `drop_after_s`, `tts_status`; `echo` turns the Realtime socket into a
loopback for latency benchmarks. All attributes may be changed while the server runs; they apply to what follows.

The module also carries the μ-law helpers the tests use (`ulaw_encode`, `ulaw_decode`, `speech_frames`,
`silence_frames`, `is_speech`), written here from the G.711 definition (the stdlib `audioop` is deprecated).
"""

from __future__ import annotations

import array
import asyncio
import base64
import binascii
import contextlib
import io
import json
import math
import secrets
import sys
import time
import wave
from collections.abc import Callable, Coroutine, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final, Literal, Self

from aiohttp import WSMsgType, web

__all__ = [
    "BYTES_PER_MS",
    "FRAME_BYTES",
    "FRAME_MS",
    "SAMPLE_RATE",
    "TTS_SAMPLE_RATE",
    "ULAW_SILENCE",
    "FakeRealtime",
    "RealtimeSession",
    "TtsRequest",
    "is_speech",
    "mean_abs_amplitude",
    "silence_frames",
    "speech_frames",
    "tone",
    "ulaw_decode",
    "ulaw_encode",
]

# --- G.711 μ-law -----------------------------------------------------------------------------------------------------

SAMPLE_RATE: Final = 8000  # carrier audio: 8 kHz, one byte a sample
BYTES_PER_MS: Final = SAMPLE_RATE // 1000
FRAME_MS: Final = 20  # what carriers send: one frame every 20 ms
FRAME_BYTES: Final = FRAME_MS * BYTES_PER_MS  # 160
ULAW_SILENCE: Final = 0xFF  # μ-law of 0 (0x7F is "negative zero")
TTS_SAMPLE_RATE: Final = 24000  # OpenAI TTS `pcm`: 24 kHz, 16-bit little-endian, mono
DEFAULT_SPEECH_THRESHOLD: Final = 500.0  # mean |sample| on the 16-bit scale above which a frame is "speech"
MIN_COMMIT_MS: Final = 100.0

_BIAS: Final = 0x84
_CLIP: Final = 32635


def _decode_byte(value: int) -> int:
    u = ~value & 0xFF
    exponent = (u >> 4) & 0x07
    mantissa = u & 0x0F
    magnitude = (((mantissa << 3) + _BIAS) << exponent) - _BIAS
    return -magnitude if u & 0x80 else magnitude


_DECODED: Final = tuple(_decode_byte(b) for b in range(256))
_ABS_DECODED: Final = tuple(abs(s) for s in _DECODED)


def _encode_sample(sample: int) -> int:
    sign = 0x80 if sample < 0 else 0
    magnitude = min(abs(sample), _CLIP) + _BIAS  # 132 .. 32767
    exponent = magnitude.bit_length() - 8  # 0 .. 7
    mantissa = (magnitude >> (exponent + 3)) & 0x0F
    return ~(sign | (exponent << 4) | mantissa) & 0xFF


def ulaw_encode(samples: Iterable[int]) -> bytes:
    """16-bit linear samples to μ-law bytes."""
    return bytes(_encode_sample(int(s)) for s in samples)


def ulaw_decode(data: bytes) -> list[int]:
    """μ-law bytes to 16-bit linear samples."""
    return [_DECODED[b] for b in data]


def mean_abs_amplitude(data: bytes) -> float:
    """Mean absolute amplitude (16-bit scale) of μ-law audio; 0.0 for no audio."""
    return sum(_ABS_DECODED[b] for b in data) / len(data) if data else 0.0


def is_speech(data: bytes, threshold: float = DEFAULT_SPEECH_THRESHOLD) -> bool:
    return mean_abs_amplitude(data) > threshold


def tone(ms: float, *, freq: float = 440.0, amplitude: int = 8000, rate: int = SAMPLE_RATE) -> list[int]:
    """A sine of `ms` milliseconds as 16-bit linear samples."""
    count = round(ms * rate / 1000)
    step = 2 * math.pi * freq / rate
    return [round(amplitude * math.sin(step * i)) for i in range(count)]


def _split_frames(data: bytes) -> list[bytes]:
    return [data[i : i + FRAME_BYTES] for i in range(0, len(data), FRAME_BYTES)]


def speech_frames(ms: float, *, freq: float = 440.0, amplitude: int = 8000) -> list[bytes]:
    """`ms` of loud μ-law audio (a continuous tone) in 160-byte 20 ms frames (rounded up to whole frames)."""
    count = math.ceil(ms / FRAME_MS)
    return _split_frames(ulaw_encode(tone(count * FRAME_MS, freq=freq, amplitude=amplitude)))


def silence_frames(ms: float) -> list[bytes]:
    """`ms` of μ-law digital silence (0xFF) in 160-byte 20 ms frames (rounded up to whole frames)."""
    return [bytes([ULAW_SILENCE]) * FRAME_BYTES for _ in range(math.ceil(ms / FRAME_MS))]


def _pcm16le(samples: Sequence[int]) -> bytes:
    pcm = array.array("h", samples)
    if sys.byteorder == "big":
        pcm.byteswap()
    return pcm.tobytes()


# --- records ---------------------------------------------------------------------------------------------------------

_SESSION_KEYS: Final = frozenset(
    {
        "model",
        "modalities",
        "instructions",
        "voice",
        "input_audio_format",
        "output_audio_format",
        "input_audio_transcription",
        "input_audio_noise_reduction",
        "turn_detection",
        "tools",
        "tool_choice",
        "temperature",
        "max_response_output_tokens",
        "speed",
        "tracing",
        "include",
    }
)
_AUDIO_FORMATS: Final = ("pcm16", "g711_ulaw", "g711_alaw")
_VAD_DEFAULTS: Final[Mapping[str, Any]] = {
    "type": "server_vad",
    "threshold": 0.5,
    "prefix_padding_ms": 300,
    "silence_duration_ms": 200,
    "create_response": True,
    "interrupt_response": True,
}
_CLIENT_EVENTS: Final = (
    "session.update",
    "input_audio_buffer.append",
    "input_audio_buffer.commit",
    "input_audio_buffer.clear",
    "conversation.item.create",
    "conversation.item.truncate",
    "conversation.item.delete",
    "response.create",
    "response.cancel",
)


def _id(prefix: str) -> str:
    return f"{prefix}_{secrets.token_hex(11)}"


def _error_body(message: str, type_: str, *, code: str | None = None, param: str | None = None) -> dict[str, Any]:
    return {"error": {"message": message, "type": type_, "param": param, "code": code}}


@dataclass(eq=False)
class RealtimeSession:
    """One Realtime WebSocket connection as the fake saw it."""

    id: str
    model: str
    headers: dict[str, str]  # lower-cased names: headers["openai-beta"]
    session: dict[str, Any]  # the current session config (as in session.created / session.updated)
    received: list[dict[str, Any]] = field(default_factory=list)  # client events in order ({"_raw": text} if not JSON)
    received_at: list[float] = field(default_factory=list)  # time.perf_counter() of each, parallel to `received`
    sent: list[dict[str, Any]] = field(default_factory=list)  # server events in order
    sent_at: list[float] = field(default_factory=list)  # time.perf_counter() just before each was written
    connected_at: float = field(default_factory=time.perf_counter)
    audio_ms: float = 0.0  # all audio appended during the session
    buffer_ms: float = 0.0  # audio in the input buffer not yet committed or cleared
    responses: int = 0  # responses started (by response.create or by server VAD)
    closed: bool = False
    close_code: int | None = None  # the close handshake's code (the fake's own when it closed first); None if dropped
    dropped: bool = False  # the fake cut the TCP connection (drop_after_s)
    failed: bool = False  # the fake sent a server_error and closed with 1011 (error_after_ms)

    def of_type(self, type_: str) -> list[dict[str, Any]]:
        """Received client events of one type."""
        return [e for e in self.received if e.get("type") == type_]

    def sent_of_type(self, type_: str) -> list[dict[str, Any]]:
        """Sent server events of one type."""
        return [e for e in self.sent if e.get("type") == type_]

    @property
    def truncations(self) -> list[dict[str, Any]]:
        return self.of_type("conversation.item.truncate")

    @property
    def appended_audio(self) -> bytes:
        """Every byte appended to the input buffer, decoded from base64, in order."""
        chunks = []
        for event in self.of_type("input_audio_buffer.append"):
            with contextlib.suppress(binascii.Error, TypeError, ValueError):
                chunks.append(base64.b64decode(event.get("audio", ""), validate=True))
        return b"".join(chunks)


@dataclass(eq=False)
class TtsRequest:
    """One POST /v1/audio/speech."""

    json: Any  # the parsed body (None when it was not JSON)
    headers: dict[str, str]  # lower-cased names
    at: float  # time.perf_counter() on arrival
    status: int = 0  # the status answered


@dataclass(eq=False)
class _Response:
    id: str
    item_id: str
    kind: Literal["audio", "function_call"]
    cancel_reason: str | None = None
    task: asyncio.Task[None] | None = None


# --- the server ------------------------------------------------------------------------------------------------------


class FakeRealtime:
    """The fake OpenAI server; `async with FakeRealtime(...) as fake:` or `await start()` / `await close()`."""

    def __init__(
        self,
        *,
        api_key: str = "sk-test",
        replies: Sequence[str] = ("Hola, ¿sigue disponible el Corolla?",),
        transcripts: Sequence[str] = ("Sí, todavía está disponible.",),
        reply_ms: float = 1500.0,
        chunk_ms: float = 100.0,
        delta_interval_s: float = 0.0,
        speech_threshold: float = DEFAULT_SPEECH_THRESHOLD,
        function_call: Mapping[str, Any] | None = None,
        function_call_on_response: int = 2,
        refuse_connections: bool = False,
        error_after_ms: float | None = None,
        drop_after_s: float | None = None,
        echo: bool = False,
        tts_status: int | None = None,
        tts_delay_s: float = 0.0,
    ) -> None:
        if not replies or not transcripts:
            raise ValueError("replies and transcripts need at least one entry each")
        self.api_key = api_key
        self.replies = list(replies)  # assistant transcripts, cycled per session
        self.transcripts = list(transcripts)  # caller transcripts, cycled per session
        self.reply_ms = reply_ms  # length of each reply's audio
        self.chunk_ms = chunk_ms  # audio per response.audio.delta
        self.delta_interval_s = delta_interval_s  # pause between deltas (0: as fast as the socket takes them)
        self.speech_threshold = speech_threshold
        self.function_call = dict(function_call) if function_call is not None else None
        self.function_call_on_response = function_call_on_response  # 1-based, per session
        self.refuse_connections = refuse_connections
        self.error_after_ms = error_after_ms
        self.drop_after_s = drop_after_s
        self.echo = echo
        self.tts_status = tts_status
        self.tts_delay_s = tts_delay_s
        self.sessions: list[RealtimeSession] = []
        self.tts_requests: list[TtsRequest] = []
        self.refused: list[tuple[int, dict[str, str]]] = []  # (status, lower-cased headers) of refused upgrades
        self._connections: set[_Connection] = set()
        self._tick = asyncio.Event()
        self._runner: web.AppRunner | None = None
        self._port = 0

    # lifecycle

    async def start(self) -> None:
        app = web.Application()
        app.router.add_get("/v1/realtime", self._realtime)
        app.router.add_post("/v1/audio/speech", self._speech)
        self._runner = web.AppRunner(app, handle_signals=False)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", 0).start()
        self._port = int(self._runner.addresses[0][1])

    async def close(self) -> None:
        for conn in list(self._connections):
            await conn.shutdown()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    # addresses

    @property
    def port(self) -> int:
        return self._port

    @property
    def base_url(self) -> str:
        """What OPENAI_BASE_URL is set to."""
        return f"http://127.0.0.1:{self._port}/v1"

    @property
    def realtime_url(self) -> str:
        """The Realtime endpoint without the model query."""
        return f"ws://127.0.0.1:{self._port}/v1/realtime"

    def env(self) -> dict[str, str]:
        return {"OPENAI_BASE_URL": self.base_url, "OPENAI_API_KEY": self.api_key}

    # observation

    @property
    def last(self) -> RealtimeSession:
        if not self.sessions:
            raise LookupError("no Realtime connection yet")
        return self.sessions[-1]

    @property
    def received(self) -> list[dict[str, Any]]:
        """Every client event of every session, session by session."""
        return [e for s in self.sessions for e in s.received]

    def _notify(self) -> None:
        tick, self._tick = self._tick, asyncio.Event()
        tick.set()

    async def wait_for(self, predicate: Callable[[FakeRealtime], bool], timeout: float = 5.0) -> None:  # noqa: ASYNC109
        """Wait until `predicate(self)` holds; re-checked on every event received or sent and every (dis)connect."""
        try:
            async with asyncio.timeout(timeout):
                while True:
                    tick = self._tick
                    if predicate(self):
                        return
                    await tick.wait()
        except TimeoutError:
            summary = [[e.get("type") for e in s.received][-20:] for s in self.sessions]
            raise TimeoutError(
                f"FakeRealtime: condition not met in {timeout}s; received per session: {summary}"
            ) from None

    # handlers

    def _authorized(self, request: web.Request) -> bool:
        return request.headers.get("Authorization", "") == f"Bearer {self.api_key}"

    def _refuse(self, request: web.Request, status: int, body: dict[str, Any]) -> web.Response:
        self.refused.append((status, {k.lower(): v for k, v in request.headers.items()}))
        self._notify()
        return web.json_response(body, status=status)

    async def _realtime(self, request: web.Request) -> web.StreamResponse:
        if self.refuse_connections:
            body = _error_body("The server is overloaded or not ready yet.", "server_error")
            return self._refuse(request, 503, body)
        if not self._authorized(request):
            body = _error_body("Incorrect API key provided", "invalid_request_error", code="invalid_api_key")
            return self._refuse(request, 401, body)
        model = request.query.get("model", "")
        if not model:
            body = _error_body(
                "Missing required parameter: 'model'.",
                "invalid_request_error",
                code="missing_required_parameter",
                param="model",
            )
            return self._refuse(request, 400, body)
        ws = web.WebSocketResponse(timeout=2.0, max_msg_size=16 * 1024 * 1024)
        if not ws.can_prepare(request).ok:
            body = _error_body("Expected a WebSocket upgrade request.", "invalid_request_error")
            return self._refuse(request, 400, body)
        await ws.prepare(request)
        rec = RealtimeSession(
            id=_id("sess"),
            model=model,
            headers={k.lower(): v for k, v in request.headers.items()},
            session={},
        )
        rec.session = _initial_session(rec.id, model)
        self.sessions.append(rec)
        conn = _Connection(self, rec, ws, request)
        self._connections.add(conn)
        try:
            await conn.run()
        finally:
            self._connections.discard(conn)
            self._notify()
        return ws

    async def _speech(self, request: web.Request) -> web.Response:
        rec = TtsRequest(json=None, headers={k.lower(): v for k, v in request.headers.items()}, at=time.perf_counter())
        with contextlib.suppress(ValueError):
            rec.json = await request.json()
        self.tts_requests.append(rec)
        response = await self._speech_response(request, rec)
        rec.status = response.status
        self._notify()
        return response

    async def _speech_response(self, request: web.Request, rec: TtsRequest) -> web.Response:
        if not self._authorized(request):
            body = _error_body("Incorrect API key provided", "invalid_request_error", code="invalid_api_key")
            return web.json_response(body, status=401)
        if self.tts_delay_s:
            await asyncio.sleep(self.tts_delay_s)
        if self.tts_status is not None and self.tts_status >= 400:
            message, type_ = {
                429: ("Rate limit reached for requests", "requests"),
                500: ("The server had an error while processing your request. Sorry about that!", "server_error"),
                503: ("The server is overloaded or not ready yet.", "server_error"),
            }.get(self.tts_status, ("The fake was told to fail this request.", "server_error"))
            return web.json_response(_error_body(message, type_), status=self.tts_status)
        body = rec.json

        def invalid(message: str, param: str | None = None, code: str | None = None) -> web.Response:
            return web.json_response(
                _error_body(message, "invalid_request_error", param=param, code=code),
                status=400,
            )

        if not isinstance(body, dict):
            return invalid("We could not parse the JSON body of your request.")
        if not body.get("model"):
            return invalid("you must provide a model parameter")
        text = body.get("input")
        if not isinstance(text, str) or not text:
            return invalid("Missing required parameter: 'input'.", "input", "missing_required_parameter")
        if not body.get("voice"):
            return invalid("Missing required parameter: 'voice'.", "voice", "missing_required_parameter")
        fmt = body.get("response_format", "mp3")  # the real API's default
        if fmt not in ("pcm", "wav"):
            return invalid(
                f"Unsupported response_format {fmt!r} in the fake: only 'pcm' and 'wav' are served.",
                "response_format",
                "unsupported_value",
            )
        speed = body.get("speed", 1.0)
        if not isinstance(speed, int | float) or not 0.25 <= speed <= 4.0:
            return invalid(f"Invalid 'speed': {speed!r}. Expected a number from 0.25 to 4.0.", "speed", "invalid_value")
        duration_ms = min(max(200.0, 60.0 * len(text)) / float(speed), 30_000.0)
        pcm = _pcm16le(tone(duration_ms, freq=220.0, amplitude=4000, rate=TTS_SAMPLE_RATE))
        if fmt == "pcm":
            return web.Response(body=pcm, content_type="audio/pcm")
        out = io.BytesIO()
        with wave.open(out, "wb") as wav:
            wav.setnchannels(1)
            wav.setsampwidth(2)
            wav.setframerate(TTS_SAMPLE_RATE)
            wav.writeframes(pcm)
        return web.Response(body=out.getvalue(), content_type="audio/wav")


def _initial_session(session_id: str, model: str) -> dict[str, Any]:
    return {
        "id": session_id,
        "object": "realtime.session",
        "model": model,
        "expires_at": int(time.time()) + 30 * 60,
        "modalities": ["text", "audio"],
        "instructions": "",
        "voice": "alloy",
        "input_audio_format": "pcm16",
        "output_audio_format": "pcm16",
        "input_audio_transcription": None,
        "turn_detection": dict(_VAD_DEFAULTS),
        "tools": [],
        "tool_choice": "auto",
        "temperature": 0.8,
        "max_response_output_tokens": "inf",
    }


class _Connection:
    """The protocol state of one Realtime socket."""

    def __init__(
        self, fake: FakeRealtime, rec: RealtimeSession, ws: web.WebSocketResponse, request: web.Request
    ) -> None:
        self.fake = fake
        self.rec = rec
        self.ws = ws
        self.request = request
        self.lock = asyncio.Lock()
        self.tasks: set[asyncio.Task[None]] = set()
        self.active: _Response | None = None
        self.last_item_id: str | None = None
        self.audio_items: dict[str, float] = {}  # assistant item id -> ms of audio sent
        self.replies = 0
        self.turns = 0
        # VAD
        self.in_speech = False
        self.speech_item: str | None = None
        self.silence_run_ms = 0.0
        self.buffer_start_ms = 0.0
        self.stopping = False
        self.closed_with: int | None = None  # the code the fake closed with, when it closed first

    # plumbing

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> asyncio.Task[None]:
        task: asyncio.Task[None] = asyncio.create_task(coro)
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)
        return task

    async def send(self, type_: str, **fields: Any) -> None:
        if self.ws.closed or self.stopping:
            return
        event = {"type": type_, "event_id": _id("event"), **fields}
        async with self.lock:
            self.rec.sent.append(event)
            self.rec.sent_at.append(time.perf_counter())
            try:
                await self.ws.send_str(json.dumps(event))
            except ConnectionError:
                return
        self.fake._notify()

    async def error(
        self,
        message: str,
        *,
        code: str | None = None,
        param: str | None = None,
        event_id: str | None = None,
        type_: str = "invalid_request_error",
    ) -> None:
        err = {"type": type_, "code": code, "message": message, "param": param, "event_id": event_id}
        await self.send("error", error=err)

    async def run(self) -> None:
        if self.fake.drop_after_s is not None:
            self._spawn(self._drop_later(self.fake.drop_after_s))
        await self.send("session.created", session=dict(self.rec.session))
        try:
            async for msg in self.ws:
                if msg.type is WSMsgType.TEXT:
                    await self.on_text(msg.data)
                elif msg.type is WSMsgType.BINARY:
                    self._record({"_raw": msg.data})
                    await self.error("The server expects text frames carrying JSON events.", code="invalid_json")
                else:
                    break
                if self.rec.failed:
                    break
        finally:
            await self._finish()

    async def _finish(self) -> None:
        self.stopping = True
        for task in list(self.tasks):
            if task is not asyncio.current_task():
                task.cancel()
        for task in list(self.tasks):
            if task is not asyncio.current_task():
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        if not self.ws.closed:
            with contextlib.suppress(ConnectionError):
                await self.ws.close()
        self.rec.closed = True
        if not self.rec.dropped:
            code = self.closed_with if self.closed_with is not None else self.ws.close_code
            self.rec.close_code = None if code is None else int(code)
        self.fake._notify()

    async def shutdown(self) -> None:
        """The fake is closing: say goodbye with 1001 (going away)."""
        if not self.ws.closed:
            self.closed_with = 1001
            with contextlib.suppress(ConnectionError):
                await self.ws.close(code=1001, message=b"server shutting down")

    async def _drop_later(self, delay: float) -> None:
        await asyncio.sleep(delay)
        self.rec.dropped = True
        self.stopping = True
        transport = self.request.transport
        if transport is not None:
            transport.abort()
        self.fake._notify()

    def _record(self, event: dict[str, Any]) -> None:
        self.rec.received.append(event)
        self.rec.received_at.append(time.perf_counter())
        self.fake._notify()

    # dispatch

    async def on_text(self, text: str) -> None:
        try:
            event = json.loads(text)
        except ValueError as exc:
            self._record({"_raw": text})
            await self.error(f"Invalid JSON: {exc}", code="invalid_json")
            return
        if not isinstance(event, dict):
            self._record({"_raw": text})
            await self.error("Expected a JSON object as the event.", code="invalid_type")
            return
        self._record(event)
        type_ = event.get("type")
        event_id = event.get("event_id")
        if not isinstance(type_, str) or not type_:
            await self.error(
                "Missing required parameter: 'type'.",
                code="missing_required_parameter",
                param="type",
                event_id=event_id,
            )
            return
        if type_ not in _CLIENT_EVENTS:
            supported = ", ".join(f"'{t}'" for t in _CLIENT_EVENTS)
            await self.error(
                f"Invalid value: '{type_}'. Supported values are: {supported}.",
                code="invalid_value",
                param="type",
                event_id=event_id,
            )
            return
        handler = {
            "session.update": self.on_session_update,
            "input_audio_buffer.append": self.on_append,
            "input_audio_buffer.commit": self.on_commit,
            "input_audio_buffer.clear": self.on_clear,
            "conversation.item.create": self.on_item_create,
            "conversation.item.truncate": self.on_truncate,
            "conversation.item.delete": self.on_item_delete,
            "response.create": self.on_response_create,
            "response.cancel": self.on_response_cancel,
        }[type_]
        await handler(event)

    # session

    async def on_session_update(self, event: dict[str, Any]) -> None:
        event_id = event.get("event_id")
        update = event.get("session")
        if not isinstance(update, dict):
            await self.error(
                "Missing required parameter: 'session'.",
                code="missing_required_parameter",
                param="session",
                event_id=event_id,
            )
            return
        for key in update:
            if key not in _SESSION_KEYS:
                await self.error(
                    f"Unknown parameter: 'session.{key}'.",
                    code="unknown_parameter",
                    param=f"session.{key}",
                    event_id=event_id,
                )
                return
        for key in ("input_audio_format", "output_audio_format"):
            if key in update and update[key] not in _AUDIO_FORMATS:
                supported = ", ".join(f"'{f}'" for f in _AUDIO_FORMATS)
                await self.error(
                    f"Invalid value: '{update[key]}'. Supported values are: {supported}.",
                    code="invalid_value",
                    param=f"session.{key}",
                    event_id=event_id,
                )
                return
        merged = dict(self.rec.session)
        for key, value in update.items():
            if key == "turn_detection" and isinstance(value, dict):
                value = {**_VAD_DEFAULTS, **value} if value.get("type", "server_vad") == "server_vad" else dict(value)
            merged[key] = value
        self.rec.session = merged
        await self.send("session.updated", session=dict(merged))

    def _vad(self) -> dict[str, Any] | None:
        td = self.rec.session.get("turn_detection")
        if isinstance(td, dict) and td.get("type") == "server_vad":
            return td
        return None

    # input audio

    async def on_append(self, event: dict[str, Any]) -> None:
        event_id = event.get("event_id")
        audio_b64 = event.get("audio")
        if not isinstance(audio_b64, str):
            await self.error(
                "Missing required parameter: 'audio'.",
                code="missing_required_parameter",
                param="audio",
                event_id=event_id,
            )
            return
        try:
            audio = base64.b64decode(audio_b64, validate=True)
        except (binascii.Error, ValueError):
            await self.error(
                "Invalid 'audio'. Expected base64-encoded audio bytes.",
                code="invalid_value",
                param="audio",
                event_id=event_id,
            )
            return
        if self.fake.echo:
            self.rec.audio_ms += len(audio) / BYTES_PER_MS
            self.audio_items["echo"] = self.audio_items.get("echo", 0.0) + len(audio) / BYTES_PER_MS
            await self.send(
                "response.audio.delta",
                response_id="resp_echo",
                item_id="echo",
                output_index=0,
                content_index=0,
                delta=audio_b64,
            )
            return
        vad = self._vad()
        for offset in range(0, len(audio), FRAME_BYTES):
            piece = audio[offset : offset + FRAME_BYTES]
            duration = len(piece) / BYTES_PER_MS
            start = self.rec.audio_ms
            self.rec.audio_ms += duration
            self.rec.buffer_ms += duration
            limit = self.fake.error_after_ms
            if limit is not None and self.rec.audio_ms >= limit:
                await self._server_error()
                return
            if vad is not None:
                await self._vad_step(vad, piece, start, self.rec.audio_ms)

    async def _server_error(self) -> None:
        await self.error(
            "The server had an error while processing your request. Sorry about that! "
            "You can retry your request, or contact us through our help center if the error persists.",
            type_="server_error",
        )
        self.rec.failed = True
        self.stopping = True
        self.closed_with = 1011
        with contextlib.suppress(ConnectionError):
            await self.ws.close(code=1011, message=b"server_error")

    async def _vad_step(self, vad: dict[str, Any], piece: bytes, start: float, end: float) -> None:
        if is_speech(piece, self.fake.speech_threshold):
            self.silence_run_ms = 0.0
            if not self.in_speech:
                self.in_speech = True
                self.speech_item = _id("item")
                padding = float(vad.get("prefix_padding_ms", 300))
                audio_start = max(self.buffer_start_ms, start - padding)
                await self.send(
                    "input_audio_buffer.speech_started",
                    audio_start_ms=round(audio_start),
                    item_id=self.speech_item,
                )
                if self.active is not None and vad.get("interrupt_response", True):
                    self.active.cancel_reason = "turn_detected"
            return
        if not self.in_speech:
            return
        self.silence_run_ms += end - start
        if self.silence_run_ms < float(vad.get("silence_duration_ms", 200)):
            return
        item_id = self.speech_item or _id("item")
        self.in_speech = False
        self.speech_item = None
        self.silence_run_ms = 0.0
        await self.send("input_audio_buffer.speech_stopped", audio_end_ms=round(end), item_id=item_id)
        await self._commit(item_id)
        if vad.get("create_response", True) and self.active is None:  # never a second one while one is active
            await self._start_response({})

    async def _commit(self, item_id: str) -> None:
        previous, self.last_item_id = self.last_item_id, item_id
        self.rec.buffer_ms = 0.0
        self.buffer_start_ms = self.rec.audio_ms
        await self.send("input_audio_buffer.committed", previous_item_id=previous, item_id=item_id)
        item = {
            "id": item_id,
            "object": "realtime.item",
            "type": "message",
            "status": "completed",
            "role": "user",
            "content": [{"type": "input_audio", "transcript": None}],
        }
        await self.send("conversation.item.created", previous_item_id=previous, item=item)
        transcript = self.fake.transcripts[self.turns % len(self.fake.transcripts)]
        self.turns += 1
        await self.send(
            "conversation.item.input_audio_transcription.completed",
            item_id=item_id,
            content_index=0,
            transcript=transcript,
        )

    async def on_commit(self, event: dict[str, Any]) -> None:
        if self.rec.buffer_ms < MIN_COMMIT_MS:
            await self.error(
                "Error committing input audio buffer: buffer too small. Expected at least 100ms of audio, "
                f"but buffer only has {self.rec.buffer_ms:.2f}ms of audio.",
                code="input_audio_buffer_commit_empty",
                event_id=event.get("event_id"),
            )
            return
        item_id = self.speech_item or _id("item")
        self.in_speech = False
        self.speech_item = None
        self.silence_run_ms = 0.0
        await self._commit(item_id)

    async def on_clear(self, event: dict[str, Any]) -> None:
        self.rec.buffer_ms = 0.0
        self.buffer_start_ms = self.rec.audio_ms
        self.in_speech = False
        self.speech_item = None
        self.silence_run_ms = 0.0
        await self.send("input_audio_buffer.cleared")

    # conversation items

    async def on_item_create(self, event: dict[str, Any]) -> None:
        event_id = event.get("event_id")
        item = event.get("item")
        if not isinstance(item, dict) or not isinstance(item.get("type"), str):
            await self.error(
                "Missing required parameter: 'item.type'.",
                code="missing_required_parameter",
                param="item.type",
                event_id=event_id,
            )
            return
        if item["type"] == "function_call_output":
            for key in ("call_id", "output"):
                if not isinstance(item.get(key), str):
                    await self.error(
                        f"Missing required parameter: 'item.{key}'.",
                        code="missing_required_parameter",
                        param=f"item.{key}",
                        event_id=event_id,
                    )
                    return
        created = {**item, "id": item.get("id") or _id("item"), "object": "realtime.item"}
        created.setdefault("status", "completed")
        previous = event.get("previous_item_id", self.last_item_id)
        self.last_item_id = created["id"]
        await self.send("conversation.item.created", previous_item_id=previous, item=created)

    async def on_item_delete(self, event: dict[str, Any]) -> None:
        await self.send("conversation.item.deleted", item_id=event.get("item_id"))

    async def on_truncate(self, event: dict[str, Any]) -> None:
        event_id = event.get("event_id")
        item_id = event.get("item_id")
        content_index = event.get("content_index", 0)
        audio_end_ms = event.get("audio_end_ms")
        if not isinstance(audio_end_ms, int) or isinstance(audio_end_ms, bool) or audio_end_ms < 0:
            await self.error(
                f"Invalid 'audio_end_ms': {audio_end_ms!r}. Expected a non-negative integer.",
                code="invalid_value",
                param="audio_end_ms",
                event_id=event_id,
            )
            return
        if not isinstance(item_id, str) or item_id not in self.audio_items:
            await self.error(
                f"Invalid 'item_id': no assistant audio item {item_id!r} in the conversation.",
                code="invalid_value",
                param="item_id",
                event_id=event_id,
            )
            return
        sent_ms = self.audio_items[item_id]
        if audio_end_ms > sent_ms:
            await self.error(
                f"Audio content of {round(sent_ms)}ms is already shorter than {audio_end_ms}ms",
                code="invalid_value",
                param="audio_end_ms",
                event_id=event_id,
            )
            return
        await self.send(
            "conversation.item.truncated",
            item_id=item_id,
            content_index=content_index,
            audio_end_ms=audio_end_ms,
        )

    # responses

    async def on_response_create(self, event: dict[str, Any]) -> None:
        if self.active is not None:
            await self.error(
                f"Conversation already has an active response in progress: {self.active.id}. "
                "Wait until the response is finished before creating a new one.",
                code="conversation_already_has_active_response",
                event_id=event.get("event_id"),
            )
            return
        params = event.get("response")
        await self._start_response(params if isinstance(params, dict) else {})

    async def on_response_cancel(self, event: dict[str, Any]) -> None:
        wanted = event.get("response_id")
        if self.active is None or (wanted is not None and wanted != self.active.id):
            await self.error(
                "Cancellation failed: no active response found",
                code="response_cancel_not_active",
                event_id=event.get("event_id"),
            )
            return
        self.active.cancel_reason = "client_cancelled"

    async def _start_response(self, params: dict[str, Any]) -> None:
        self.rec.responses += 1
        fc = self.fake.function_call
        kind: Literal["audio", "function_call"] = "audio"
        if fc is not None and self.rec.responses == self.fake.function_call_on_response:
            kind = "function_call"
        resp = _Response(id=_id("resp"), item_id=_id("item"), kind=kind)
        self.active = resp
        await self.send("response.created", response=self._response_obj(resp, "in_progress", []))
        resp.task = self._spawn(self._run_response(resp))

    def _response_obj(
        self,
        resp: _Response,
        status: str,
        output: list[dict[str, Any]],
    ) -> dict[str, Any]:
        details: dict[str, Any] | None = None
        if status == "cancelled":
            details = {"type": "cancelled", "reason": resp.cancel_reason}
        return {
            "object": "realtime.response",
            "id": resp.id,
            "status": status,
            "status_details": details,
            "output": output,
            "modalities": ["text", "audio"],
            "voice": self.rec.session.get("voice", "alloy"),
            "output_audio_format": self.rec.session.get("output_audio_format", "pcm16"),
            "usage": None if status == "in_progress" else {"total_tokens": 0, "input_tokens": 0, "output_tokens": 0},
        }

    async def _run_response(self, resp: _Response) -> None:
        try:
            if resp.kind == "function_call":
                await self._stream_function_call(resp)
            else:
                await self._stream_audio(resp)
        finally:
            if self.active is resp:
                self.active = None

    async def _finish_response(self, resp: _Response, status: str, output: list[dict[str, Any]]) -> None:
        if self.active is resp:
            self.active = None
        await self.send("response.done", response=self._response_obj(resp, status, output))
        await self.send(
            "rate_limits.updated",
            rate_limits=[
                {"name": "requests", "limit": 5000, "remaining": 4999, "reset_seconds": 0.012},
                {"name": "tokens", "limit": 400000, "remaining": 399000, "reset_seconds": 0.15},
            ],
        )

    async def _stream_audio(self, resp: _Response) -> None:
        transcript = self.fake.replies[self.replies % len(self.fake.replies)]
        self.replies += 1
        audio = ulaw_encode(tone(self.fake.reply_ms, freq=300.0, amplitude=6000))
        item: dict[str, Any] = {
            "id": resp.item_id,
            "object": "realtime.item",
            "type": "message",
            "status": "in_progress",
            "role": "assistant",
            "content": [],
        }
        where = {"response_id": resp.id, "item_id": resp.item_id, "output_index": 0, "content_index": 0}
        await self.send("response.output_item.added", response_id=resp.id, output_index=0, item=dict(item))
        previous, self.last_item_id = self.last_item_id, resp.item_id
        await self.send("conversation.item.created", previous_item_id=previous, item=dict(item))
        await self.send("response.content_part.added", **where, part={"type": "audio", "transcript": ""})
        self.audio_items[resp.item_id] = 0.0
        chunk = max(1, round(self.fake.chunk_ms * BYTES_PER_MS))
        pieces = [audio[i : i + chunk] for i in range(0, len(audio), chunk)] or [b""]
        words = transcript.split(" ")
        said = 0
        spoken: list[str] = []
        for index, piece in enumerate(pieces):
            if resp.cancel_reason is not None:
                break
            due = math.ceil((index + 1) * len(words) / len(pieces))
            while said < due:
                delta = words[said] + (" " if said < len(words) - 1 else "")
                spoken.append(delta)
                said += 1
                await self.send("response.audio_transcript.delta", **where, delta=delta)
            await self.send("response.audio.delta", **where, delta=base64.b64encode(piece).decode())
            self.audio_items[resp.item_id] += len(piece) / BYTES_PER_MS
            await asyncio.sleep(self.fake.delta_interval_s)
        if resp.cancel_reason is not None:
            item.update(status="incomplete", content=[{"type": "audio", "transcript": "".join(spoken)}])
            await self.send("response.output_item.done", response_id=resp.id, output_index=0, item=item)
            await self._finish_response(resp, "cancelled", [item])
            return
        await self.send("response.audio.done", **where)
        await self.send("response.audio_transcript.done", **where, transcript=transcript)
        part = {"type": "audio", "transcript": transcript}
        await self.send("response.content_part.done", **where, part=part)
        item.update(status="completed", content=[part])
        await self.send("response.output_item.done", response_id=resp.id, output_index=0, item=item)
        await self._finish_response(resp, "completed", [item])

    async def _stream_function_call(self, resp: _Response) -> None:
        fc = self.fake.function_call or {}
        name = str(fc.get("name", "function"))
        raw = fc.get("arguments", {})
        arguments = raw if isinstance(raw, str) else json.dumps(raw, ensure_ascii=False)
        call_id = _id("call")
        item: dict[str, Any] = {
            "id": resp.item_id,
            "object": "realtime.item",
            "type": "function_call",
            "status": "in_progress",
            "name": name,
            "call_id": call_id,
            "arguments": "",
        }
        await self.send("response.output_item.added", response_id=resp.id, output_index=0, item=dict(item))
        previous, self.last_item_id = self.last_item_id, resp.item_id
        await self.send("conversation.item.created", previous_item_id=previous, item=dict(item))
        where = {"response_id": resp.id, "item_id": resp.item_id, "output_index": 0, "call_id": call_id}
        await self.send("response.function_call_arguments.delta", **where, delta=arguments)
        await asyncio.sleep(self.fake.delta_interval_s)
        if resp.cancel_reason is not None:
            item.update(status="incomplete")
            await self.send("response.output_item.done", response_id=resp.id, output_index=0, item=item)
            await self._finish_response(resp, "cancelled", [item])
            return
        await self.send("response.function_call_arguments.done", **where, name=name, arguments=arguments)
        item.update(status="completed", arguments=arguments)
        await self.send("response.output_item.done", response_id=resp.id, output_index=0, item=item)
        await self._finish_response(resp, "completed", [item])
