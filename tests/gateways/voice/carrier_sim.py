"""Carrier-side WebSocket clients calling the voice gateway the way Twilio Media Streams and Telnyx Media Streaming do.

`TwilioCall(ws_url)` / `TelnyxCall(ws_url)` connect with aiohttp (`async with ... as call:`), never raising on a
refused upgrade (`connect_status` keeps the HTTP status, `connect_error` the reason when nothing answered), and then:

- `start()` sends the carrier's `connected` and `start` frames; `send_audio()` sends `media` frames (base64 μ-law,
  track "inbound", increasing sequence number / chunk / timestamp), paced every 20 ms or as fast as possible, in
  order or shuffled within windows; `dtmf()`, `stop()` (stop frame, then a clean close), `drop()` (TCP cut, no stop
  and no close frame), `send_raw()` for garbage.
- A background reader keeps what the gateway sends (`received`, `media_out`, `marks_out`, `clears`) and plays it out
  the way a phone line does: each media payload adds its length (8 bytes a millisecond) to a playout queue drained in
  real time; a `mark` is echoed back (as the carrier's own `mark` event) once everything queued before it has played,
  at once if nothing is queued; a `clear` empties the queue and echoes every pending mark immediately, as Twilio
  documents. `played_ms` is what the callee has heard so far.
- `wait_for(predicate, timeout)` waits on the reader's notifications (and, while audio is playing, on the 20 ms
  playout clock) until `predicate(call)` holds.

Frames the gateway sends that break the carrier's protocol (unknown event, Twilio frames without the right
`streamSid`, media that is not base64, a mark without a name, Telnyx RTP chunks under 20 ms) are listed in
`protocol_errors`; the sim still handles what it can of them, the way a lenient carrier would.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import json
import random
import secrets
import socket
import struct
import time
import uuid
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, ClassVar, Self

import aiohttp

from tests.gateways.voice.fake_openai import BYTES_PER_MS, FRAME_BYTES, FRAME_MS, ULAW_SILENCE

__all__ = ["CarrierCall", "TelnyxCall", "TwilioCall"]

FRAME_S = FRAME_MS / 1000


def _sid(prefix: str) -> str:
    return prefix + secrets.token_hex(16)


class CarrierCall:
    """What both carriers share; use `TwilioCall` or `TelnyxCall`."""

    carrier: ClassVar[str] = ""
    outbound_events: ClassVar[frozenset[str]] = frozenset({"media", "mark", "clear"})

    def __init__(
        self,
        ws_url: str,
        *,
        headers: Mapping[str, str] | None = None,
        idle_silence: bool = False,
        connect_timeout: float = 5.0,
    ) -> None:
        self.ws_url = ws_url
        self.headers = dict(headers or {})
        self.idle_silence = idle_silence  # after start(), send 20 ms silence frames whenever send_audio is idle
        self.connect_timeout = connect_timeout
        # connection
        self.connect_status: int | None = None  # 101 when upgraded, else the refusing HTTP status
        self.connect_error: str | None = None  # why there was no HTTP answer at all
        self.closed = False
        self.closed_by: str | None = None  # "gateway" (close frame), "sim" (stop/close), "lost" (no close frame)
        self.closed_code: int | None = None
        self.close_reason = ""
        self.closed_at: float | None = None
        self.dropped = False
        # what the sim sent
        self.sent: list[Any] = []  # frames as sent (dicts for JSON, raw str/bytes for send_raw)
        self.sent_at: list[float] = []
        self.media_sent = 0  # media frames sent
        # what the gateway sent
        self.received: list[dict[str, Any]] = []
        self.received_at: list[float] = []
        self.garbage: list[str | bytes] = []  # frames that were not a JSON object
        self.media_out: list[bytes] = []
        self.media_out_at: list[float] = []
        self.marks_out: list[str] = []  # mark names the gateway sent
        self.mark_echoes: list[str] = []  # mark names the sim echoed, in order
        self.mark_echoes_at: list[float] = []
        self.clears: list[float] = []  # time.perf_counter() of each clear (len() is the count)
        self.protocol_errors: list[str] = []
        # internals
        self._http: aiohttp.ClientSession | None = None
        self._ws: aiohttp.ClientWebSocketResponse | None = None
        self._reader: asyncio.Task[None] | None = None
        self._player: asyncio.Task[None] | None = None
        self._filler: asyncio.Task[None] | None = None
        self._send_lock = asyncio.Lock()
        self._pace_lock = asyncio.Lock()
        self._next_due: float | None = None
        self._seq = 0
        self._chunk = 0
        self._audio_ms = 0  # timestamp of the next inbound media frame
        self._started = False
        self._segments: list[list[float]] = []  # playout [start, end] in perf_counter seconds, merged when contiguous
        self._queued_until = 0.0
        self._pending_marks: deque[tuple[float, str]] = deque()
        self._tick = asyncio.Event()
        self._player_wake = asyncio.Event()

    # --- carrier specifics (overridden) ------------------------------------------------------------------------------

    def _media_frame(self, seq: int, chunk: int, timestamp: int, payload: str) -> dict[str, Any]:
        raise NotImplementedError

    def _dtmf_frame(self, seq: int, digit: str) -> dict[str, Any]:
        raise NotImplementedError

    def _stop_frame(self, seq: int) -> dict[str, Any]:
        raise NotImplementedError

    def _mark_frame(self, seq: int, name: str) -> dict[str, Any]:
        raise NotImplementedError

    def _check_outbound(self, event: dict[str, Any]) -> None:
        """Append to protocol_errors what the carrier would reject in a frame from the gateway."""

    # --- connection --------------------------------------------------------------------------------------------------

    async def __aenter__(self) -> Self:
        timeout = aiohttp.ClientTimeout(total=None, connect=self.connect_timeout, sock_connect=self.connect_timeout)
        self._http = aiohttp.ClientSession(timeout=timeout)
        try:
            self._ws = await self._http.ws_connect(
                self.ws_url,
                headers=self.headers,
                timeout=aiohttp.ClientWSTimeout(ws_close=2.0),
                autoclose=True,
                autoping=True,
            )
        except aiohttp.WSServerHandshakeError as exc:
            self.connect_status = exc.status
            self.connect_error = exc.message
        except (aiohttp.ClientError, OSError, TimeoutError) as exc:
            self.connect_error = f"{type(exc).__name__}: {exc}"
        if self._ws is None:
            self.closed = True
            await self._http.close()
            self._http = None
            return self
        self.connect_status = 101
        self._reader = asyncio.create_task(self._read())
        self._player = asyncio.create_task(self._play())
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close without a stop frame (if still open) and release everything."""
        await self._stop_filler()
        if self._ws is not None and not self._ws.closed:
            if self.closed_by is None:
                self.closed_by = "sim"
            with contextlib.suppress(aiohttp.ClientError, OSError):
                await self._ws.close()
        for task in (self._reader, self._player):
            if task is not None and not task.done():
                if task is self._player:
                    task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        self._reader = self._player = None
        if self._http is not None:
            await self._http.close()
            self._http = None

    @property
    def connected(self) -> bool:
        return self._ws is not None and not self._ws.closed

    def _require_ws(self) -> aiohttp.ClientWebSocketResponse:
        if self._ws is None:
            raise RuntimeError(
                f"{self.carrier} call is not connected (status {self.connect_status}, {self.connect_error})"
            )
        return self._ws

    # --- sending -----------------------------------------------------------------------------------------------------

    def _next_seq(self) -> int:
        self._seq += 1
        return self._seq

    async def _send(self, frame: dict[str, Any] | str | bytes) -> None:
        ws = self._require_ws()
        async with self._send_lock:
            self.sent.append(frame)
            self.sent_at.append(time.perf_counter())
            if isinstance(frame, bytes):
                await ws.send_bytes(frame)
            elif isinstance(frame, str):
                await ws.send_str(frame)
            else:
                await ws.send_str(json.dumps(frame))

    async def _send_connected_and_start(self, connected: dict[str, Any], start: dict[str, Any]) -> None:
        if connected:
            await self._send(connected)
        await self._send(start)
        self._started = True
        if self.idle_silence and self._filler is None:
            self._filler = asyncio.create_task(self._fill())

    def _build_media(self, frames: Sequence[bytes]) -> list[dict[str, Any]]:
        built = []
        for frame in frames:
            self._chunk += 1
            payload = base64.b64encode(frame).decode()
            built.append(self._media_frame(self._next_seq(), self._chunk, self._audio_ms, payload))
            self._audio_ms += len(frame) // BYTES_PER_MS
        return built

    async def _paced(self, frame: dict[str, Any]) -> None:
        now = time.perf_counter()
        if self._next_due is None or self._next_due < now - FRAME_S:
            self._next_due = now  # idle for a while: the 20 ms clock starts again from now
        if self._next_due > now:
            await asyncio.sleep(self._next_due - now)
        await self._send(frame)
        self.media_sent += 1
        self._next_due += FRAME_S

    async def send_audio(
        self,
        frames: Sequence[bytes],
        *,
        realtime: bool = True,
        shuffle_window: int = 0,
        shuffle_seed: int = 0,
    ) -> None:
        """Send μ-law frames as media events (every 20 ms when `realtime`); `shuffle_window` > 1 sends them out of
        order within consecutive windows of that size, each frame keeping the sequence number / chunk / timestamp of
        its place in the original order (as Telnyx warns can happen)."""
        self._require_ws()
        built = self._build_media(frames)
        if shuffle_window > 1:
            rng = random.Random(shuffle_seed)
            shuffled: list[dict[str, Any]] = []
            for i in range(0, len(built), shuffle_window):
                window = built[i : i + shuffle_window]
                order = window[:]
                rng.shuffle(order)
                if len(window) > 1 and order == window:
                    order = window[1:] + window[:1]  # never the original order
                shuffled.extend(order)
            built = shuffled
        async with self._pace_lock:
            for frame in built:
                if realtime:
                    await self._paced(frame)
                else:
                    await self._send(frame)
                    self.media_sent += 1

    async def send_silence(self, ms: float, *, realtime: bool = True) -> None:
        count = max(1, round(ms / FRAME_MS))
        await self.send_audio([bytes([ULAW_SILENCE]) * FRAME_BYTES] * count, realtime=realtime)

    async def _fill(self) -> None:
        silence = bytes([ULAW_SILENCE]) * FRAME_BYTES
        with contextlib.suppress(aiohttp.ClientError, ConnectionError, RuntimeError):
            while True:
                async with self._pace_lock:
                    if not self.connected:
                        return
                    (frame,) = self._build_media([silence])
                    await self._paced(frame)

    async def _stop_filler(self) -> None:
        if self._filler is not None:
            self._filler.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._filler
            self._filler = None

    async def dtmf(self, digit: str) -> None:
        await self._send(self._dtmf_frame(self._next_seq(), digit))

    async def send_raw(self, data: str | bytes) -> None:
        """Send a frame exactly as given (text for str, binary for bytes)."""
        await self._send(data)

    async def stop(self) -> None:
        """The call ended: the carrier's stop frame, then a clean close; waits for the reader to finish."""
        await self._stop_filler()
        if not self.connected:
            return
        await self._send(self._stop_frame(self._next_seq()))
        if self.closed_by is None:
            self.closed_by = "sim"
        ws = self._require_ws()
        with contextlib.suppress(aiohttp.ClientError, OSError):
            await ws.close()
        if self._reader is not None:
            await self._reader

    async def drop(self) -> None:
        """Cut the TCP connection: no stop frame, no WebSocket close frame (RST once the socket is released)."""
        await self._stop_filler()
        ws = self._require_ws()
        self.dropped = True
        if self.closed_by is None:
            self.closed_by = "lost"
        sock = ws.get_extra_info("socket")
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                sock.shutdown(socket.SHUT_RDWR)
        if self._reader is not None:
            await self._reader

    # --- receiving ---------------------------------------------------------------------------------------------------

    def _notify(self) -> None:
        tick, self._tick = self._tick, asyncio.Event()
        tick.set()

    def _wake_player(self) -> None:
        wake, self._player_wake = self._player_wake, asyncio.Event()
        wake.set()

    async def _read(self) -> None:
        ws = self._require_ws()
        try:
            while True:
                msg = await ws.receive()
                now = time.perf_counter()
                if msg.type is aiohttp.WSMsgType.TEXT:
                    self._on_text(msg.data, now)
                elif msg.type is aiohttp.WSMsgType.BINARY:
                    self.garbage.append(msg.data)
                    self.protocol_errors.append("binary frame (carriers take JSON text frames)")
                elif msg.type is aiohttp.WSMsgType.CLOSE:
                    if self.closed_by is None:
                        self.closed_by = "gateway"
                    self.close_reason = msg.extra or ""
                    break
                elif msg.type in (aiohttp.WSMsgType.ERROR, aiohttp.WSMsgType.CLOSING, aiohttp.WSMsgType.CLOSED):
                    if self.closed_by is None:
                        self.closed_by = "lost"
                    break
                self._notify()
        finally:
            if not ws.closed:
                with contextlib.suppress(aiohttp.ClientError, OSError):
                    await ws.close()
            self.closed = True
            self.closed_code = ws.close_code
            self.closed_at = time.perf_counter()
            self._notify()

    def _on_text(self, text: str, now: float) -> None:
        try:
            event = json.loads(text)
        except ValueError:
            event = None
        if not isinstance(event, dict):
            self.garbage.append(text)
            self.protocol_errors.append(f"not a JSON object: {text[:80]!r}")
            return
        self.received.append(event)
        self.received_at.append(now)
        kind = event.get("event")
        if kind not in self.outbound_events:
            self.protocol_errors.append(f"unknown event {kind!r}")
            return
        self._check_outbound(event)
        if kind == "media":
            media = event.get("media")
            payload = media.get("payload") if isinstance(media, dict) else None
            try:
                audio = base64.b64decode(payload, validate=True) if isinstance(payload, str) else None
            except (binascii.Error, ValueError):
                audio = None
            if not audio:
                self.protocol_errors.append("media without a base64 payload")
                return
            self.media_out.append(audio)
            self.media_out_at.append(now)
            self._enqueue(len(audio) / BYTES_PER_MS, now)
        elif kind == "mark":
            mark = event.get("mark")
            name = mark.get("name") if isinstance(mark, dict) else None
            if not isinstance(name, str) or not name:
                self.protocol_errors.append("mark without a name")
                return
            self.marks_out.append(name)
            self._pending_marks.append((max(now, self._queued_until), name))
            self._wake_player()
        else:  # clear
            self.clears.append(now)
            self._clear_playout(now)
            self._pending_marks = deque((now, name) for _, name in self._pending_marks)
            self._wake_player()

    # --- playout -----------------------------------------------------------------------------------------------------

    def _enqueue(self, ms: float, now: float) -> None:
        start = max(now, self._queued_until)
        end = start + ms / 1000
        if self._segments and self._segments[-1][1] == start:
            self._segments[-1][1] = end
        else:
            self._segments.append([start, end])
        self._queued_until = end

    def _clear_playout(self, now: float) -> None:
        kept = []
        for seg in self._segments:
            if seg[0] >= now:
                continue
            seg[1] = min(seg[1], now)
            kept.append(seg)
        self._segments = kept
        self._queued_until = now

    @property
    def played_ms(self) -> float:
        """Milliseconds of the gateway's audio "played" to the callee so far (cleared audio never plays)."""
        now = time.perf_counter()
        return sum(max(0.0, min(end, now) - start) for start, end in self._segments) * 1000

    @property
    def queued_ms(self) -> float:
        """Audio received but not yet played."""
        return max(0.0, self._queued_until - time.perf_counter()) * 1000

    @property
    def media_out_bytes(self) -> bytes:
        return b"".join(self.media_out)

    @property
    def media_out_ms(self) -> float:
        return sum(len(m) for m in self.media_out) / BYTES_PER_MS

    async def _play(self) -> None:
        while True:
            wake = self._player_wake
            if not self._pending_marks:
                await wake.wait()
                continue
            due, name = self._pending_marks[0]
            delay = due - time.perf_counter()
            if delay > 0:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(wake.wait(), delay)
                continue
            self._pending_marks.popleft()
            if not self.connected:
                continue
            with contextlib.suppress(aiohttp.ClientError, ConnectionError, RuntimeError):
                await self._send(self._mark_frame(self._next_seq(), name))
            self.mark_echoes.append(name)
            self.mark_echoes_at.append(time.perf_counter())
            self._notify()

    # --- waiting -----------------------------------------------------------------------------------------------------

    async def wait_for(self, predicate: Callable[[Self], bool], timeout: float = 5.0) -> None:  # noqa: ASYNC109
        """Wait until `predicate(self)` holds, re-checked on each frame from the gateway, each mark echoed, the close,
        and every 20 ms of playout while audio is queued; TimeoutError (with what was received) otherwise."""
        deadline = time.perf_counter() + timeout
        while True:
            tick = self._tick
            if predicate(self):
                return
            now = time.perf_counter()
            remaining = deadline - now
            if remaining <= 0:
                kinds = [e.get("event") for e in self.received][-20:]
                raise TimeoutError(
                    f"{self.carrier} call: condition not met in {timeout}s; last events {kinds}, "
                    f"played {self.played_ms:.0f} ms, closed={self.closed} ({self.closed_code})"
                )
            step = min(remaining, FRAME_S) if self._queued_until > now else remaining
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(tick.wait(), step)


class TwilioCall(CarrierCall):
    """A Twilio Media Streams call (bidirectional `<Connect><Stream>`)."""

    carrier = "twilio"

    def __init__(
        self,
        ws_url: str,
        *,
        account_sid: str | None = None,
        call_sid: str | None = None,
        stream_sid: str | None = None,
        headers: Mapping[str, str] | None = None,
        idle_silence: bool = False,
        connect_timeout: float = 5.0,
    ) -> None:
        super().__init__(ws_url, headers=headers, idle_silence=idle_silence, connect_timeout=connect_timeout)
        self.account_sid = account_sid or _sid("AC")
        self.call_sid = call_sid or _sid("CA")
        self.stream_sid = stream_sid or _sid("MZ")

    async def start(
        self,
        custom_parameters: Mapping[str, str] | None = None,
        *,
        encoding: str = "audio/x-mulaw",
        sample_rate: int = 8000,
        channels: int = 1,
        tracks: Sequence[str] = ("inbound",),
        send_connected: bool = True,
    ) -> None:
        connected = {"event": "connected", "protocol": "Call", "version": "1.0.0"} if send_connected else {}
        start = {
            "event": "start",
            "sequenceNumber": str(self._next_seq()),
            "start": {
                "accountSid": self.account_sid,
                "streamSid": self.stream_sid,
                "callSid": self.call_sid,
                "tracks": list(tracks),
                "mediaFormat": {"encoding": encoding, "sampleRate": sample_rate, "channels": channels},
                "customParameters": dict(custom_parameters or {}),
            },
            "streamSid": self.stream_sid,
        }
        await self._send_connected_and_start(connected, start)

    def _media_frame(self, seq: int, chunk: int, timestamp: int, payload: str) -> dict[str, Any]:
        return {
            "event": "media",
            "sequenceNumber": str(seq),
            "media": {"track": "inbound", "chunk": str(chunk), "timestamp": str(timestamp), "payload": payload},
            "streamSid": self.stream_sid,
        }

    def _dtmf_frame(self, seq: int, digit: str) -> dict[str, Any]:
        return {
            "event": "dtmf",
            "streamSid": self.stream_sid,
            "sequenceNumber": str(seq),
            "dtmf": {"track": "inbound_track", "digit": digit},
        }

    def _stop_frame(self, seq: int) -> dict[str, Any]:
        return {
            "event": "stop",
            "sequenceNumber": str(seq),
            "streamSid": self.stream_sid,
            "stop": {"accountSid": self.account_sid, "callSid": self.call_sid},
        }

    def _mark_frame(self, seq: int, name: str) -> dict[str, Any]:
        return {"event": "mark", "sequenceNumber": str(seq), "streamSid": self.stream_sid, "mark": {"name": name}}

    def _check_outbound(self, event: dict[str, Any]) -> None:
        sid = event.get("streamSid")
        if sid != self.stream_sid:
            self.protocol_errors.append(f"{event.get('event')} with streamSid {sid!r}, expected {self.stream_sid!r}")


class TelnyxCall(CarrierCall):
    """A Telnyx Media Streaming call (Call Control `stream_url`, `stream_bidirectional_mode: rtp`)."""

    carrier = "telnyx"
    MIN_CHUNK_MS: ClassVar[float] = 20.0  # Telnyx: RTP chunks sent back carry 20 ms to 30 s of audio
    MAX_CHUNK_MS: ClassVar[float] = 30_000.0

    def __init__(
        self,
        ws_url: str,
        *,
        call_control_id: str | None = None,
        call_session_id: str | None = None,
        user_id: str | None = None,
        stream_id: str | None = None,
        from_number: str = "+13055550100",
        to_number: str = "+13055550199",
        headers: Mapping[str, str] | None = None,
        idle_silence: bool = False,
        connect_timeout: float = 5.0,
    ) -> None:
        super().__init__(ws_url, headers=headers, idle_silence=idle_silence, connect_timeout=connect_timeout)
        self.call_control_id = call_control_id or "v3:" + base64.urlsafe_b64encode(secrets.token_bytes(30)).decode()
        self.call_session_id = call_session_id or str(uuid.uuid4())
        self.user_id = user_id or str(uuid.uuid4())
        self.stream_id = stream_id or str(uuid.uuid4())
        self.from_number = from_number
        self.to_number = to_number

    async def start(
        self,
        *,
        client_state: str | bytes | None = None,
        encoding: str = "PCMU",
        sample_rate: int = 8000,
        channels: int = 1,
        send_connected: bool = True,
    ) -> None:
        """`client_state`: already base64 text, or bytes to encode."""
        if isinstance(client_state, bytes):
            client_state = base64.b64encode(client_state).decode()
        connected = {"event": "connected", "version": "1.0.0"} if send_connected else {}
        start = {
            "event": "start",
            "sequence_number": str(self._next_seq()),
            "start": {
                "user_id": self.user_id,
                "call_control_id": self.call_control_id,
                "call_session_id": self.call_session_id,
                "from": self.from_number,
                "to": self.to_number,
                "client_state": client_state,
                "media_format": {"encoding": encoding, "sample_rate": sample_rate, "channels": channels},
            },
            "stream_id": self.stream_id,
        }
        await self._send_connected_and_start(connected, start)

    def _media_frame(self, seq: int, chunk: int, timestamp: int, payload: str) -> dict[str, Any]:
        return {
            "event": "media",
            "sequence_number": str(seq),
            "media": {"track": "inbound", "chunk": str(chunk), "timestamp": str(timestamp), "payload": payload},
            "stream_id": self.stream_id,
        }

    def _dtmf_frame(self, seq: int, digit: str) -> dict[str, Any]:
        return {
            "event": "dtmf",
            "stream_id": self.stream_id,
            "occurred_at": datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            "sequence_number": str(seq),
            "dtmf": {"digit": digit},
        }

    def _stop_frame(self, seq: int) -> dict[str, Any]:
        return {
            "event": "stop",
            "sequence_number": str(seq),
            "stream_id": self.stream_id,
            "stop": {"user_id": self.user_id, "call_control_id": self.call_control_id},
        }

    def _mark_frame(self, seq: int, name: str) -> dict[str, Any]:
        return {"event": "mark", "sequence_number": str(seq), "stream_id": self.stream_id, "mark": {"name": name}}

    def _check_outbound(self, event: dict[str, Any]) -> None:
        sid = event.get("stream_id")
        if sid is not None and sid != self.stream_id:
            self.protocol_errors.append(f"{event.get('event')} with stream_id {sid!r}, expected {self.stream_id!r}")
        if event.get("event") == "media":
            media = event.get("media")
            payload = media.get("payload") if isinstance(media, dict) else None
            if isinstance(payload, str):
                with contextlib.suppress(binascii.Error, ValueError):
                    ms = len(base64.b64decode(payload, validate=True)) / BYTES_PER_MS
                    if not self.MIN_CHUNK_MS <= ms <= self.MAX_CHUNK_MS:
                        self.protocol_errors.append(f"media chunk of {ms:g} ms (Telnyx takes 20 ms to 30 s)")
