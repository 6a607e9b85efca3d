"""Carrier media-stream frames: Telnyx media streaming and Twilio Media Streams, read and written.

Both carriers send JSON text frames over the WebSocket: `connected`, `start` (the call, the
stream id, the codec), `media` (20 ms of base64 μ-law, numbered), `dtmf`, `mark` (the echo of a
mark we sent, once the audio before it has played) and `stop`. We send `media`, `mark` and
`clear` back. A frame that is not one of these is refused with a `GatewayError` saying what is
wrong; the session decides what that costs (the frame, or the call).
"""

from __future__ import annotations

import base64
import binascii
import heapq
import itertools
import json
from typing import Any, Final, Literal

import msgspec

from events.errors import GatewayError

Carrier = Literal["telnyx", "twilio"]
MAX_FRAME_BYTES: Final = 64 * 1024  # a 20 ms μ-law frame is 160 bytes (216 in base64)
FRAME_BYTES: Final = 160
FRAME_MS: Final = 20


class Start(msgspec.Struct, frozen=True, kw_only=True):
    stream_id: str
    carrier_call_id: str  # Telnyx call_control_id, Twilio CallSid
    codec: str  # normalised: PCMU for μ-law, else what the carrier said
    sample_rate: int
    from_number: str | None = None
    to_number: str | None = None
    parameters: dict[str, str] = {}  # Twilio customParameters / Telnyx client_state (decoded)


class Media(msgspec.Struct, frozen=True, kw_only=True):
    sequence: int
    chunk: int
    audio: bytes
    track: str = "inbound"


class Dtmf(msgspec.Struct, frozen=True):
    digit: str


class Mark(msgspec.Struct, frozen=True):
    name: str


class Stop(msgspec.Struct, frozen=True):
    pass


class Connected(msgspec.Struct, frozen=True):
    pass


Frame = Start | Media | Dtmf | Mark | Stop | Connected


def _field(data: dict[str, Any], *names: str) -> Any:
    for name in names:
        if name in data:
            return data[name]
    return None


def _int(value: Any, what: str) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        raise GatewayError(f"{what} must be a number, got {value!r}") from None


def _codec(encoding: Any) -> str:
    text = str(encoding or "").strip().lower().removeprefix("audio/x-").removeprefix("audio/")
    return "PCMU" if text in ("pcmu", "mulaw", "ulaw", "g711_ulaw", "basic") else text.upper()


_decode: Final = msgspec.json.Decoder()


def parse_frame(carrier: Carrier, raw: str | bytes) -> Frame:
    """One carrier frame, or GatewayError naming what is wrong with it."""
    if len(raw) > MAX_FRAME_BYTES:
        raise GatewayError(f"frame of {len(raw)} bytes is over the {MAX_FRAME_BYTES}-byte limit")
    try:
        data = _decode.decode(raw)
    except msgspec.DecodeError as exc:
        raise GatewayError(f"frame is not JSON: {exc}") from None
    except RecursionError:
        raise GatewayError("frame is JSON nested too deeply to be a carrier frame") from None
    if not isinstance(data, dict):
        raise GatewayError("frame is not a JSON object")
    event = data.get("event")
    seq_key = "sequence_number" if carrier == "telnyx" else "sequenceNumber"
    match event:
        case "connected":
            return Connected()
        case "start":
            start = data.get("start")
            if not isinstance(start, dict):
                raise GatewayError("start frame has no 'start' object")
            if carrier == "telnyx":
                media_format = start.get("media_format") or {}
                call_id = start.get("call_control_id")
                stream_id = data.get("stream_id") or start.get("stream_id")
                parameters = telnyx_client_state(start.get("client_state"))
                from_, to = start.get("from"), start.get("to")
            else:
                media_format = start.get("mediaFormat") or {}
                call_id = start.get("callSid")
                stream_id = data.get("streamSid") or start.get("streamSid")
                custom = start.get("customParameters") or {}
                parameters = {str(k): str(v) for k, v in custom.items()} if isinstance(custom, dict) else {}
                from_, to = parameters.get("from"), parameters.get("to")
            if not isinstance(media_format, dict):
                raise GatewayError("start frame's media format is not an object")
            if not call_id or not stream_id:
                raise GatewayError("start frame names no call or stream id")
            return Start(
                stream_id=str(stream_id),
                carrier_call_id=str(call_id),
                codec=_codec(media_format.get("encoding")),
                sample_rate=_int(_field(media_format, "sample_rate", "sampleRate") or 8000, "sample rate"),
                from_number=str(from_) if from_ else None,
                to_number=str(to) if to else None,
                parameters=parameters,
            )
        case "media":
            media = data.get("media")
            if not isinstance(media, dict) or not isinstance(media.get("payload"), str):
                raise GatewayError("media frame has no media.payload")
            try:
                audio = base64.b64decode(media["payload"], validate=True)
            except (binascii.Error, ValueError):
                raise GatewayError("media payload is not base64") from None
            sequence = _int(data.get(seq_key, 0), seq_key)
            chunk = _int(media.get("chunk", sequence), "media.chunk")
            return Media(sequence=sequence, chunk=chunk, audio=audio, track=str(media.get("track") or "inbound"))
        case "dtmf":
            dtmf = data.get("dtmf")
            digit = dtmf.get("digit") if isinstance(dtmf, dict) else None
            if not isinstance(digit, str) or len(digit) != 1 or digit not in "0123456789*#ABCD":
                raise GatewayError(f"dtmf frame's digit {digit!r} is not one of 0-9 * # A-D")
            return Dtmf(digit)
        case "mark":
            mark = data.get("mark")
            name = mark.get("name") if isinstance(mark, dict) else None
            if not isinstance(name, str):
                raise GatewayError("mark frame has no mark.name")
            return Mark(name)
        case "stop":
            return Stop()
        case _:
            raise GatewayError(f"unknown frame event {event!r}")


def telnyx_client_state(value: Any) -> dict[str, str]:
    """Telnyx passes our client_state back base64-encoded; ours is a JSON object."""
    if not isinstance(value, str) or not value:
        return {}
    try:
        decoded = json.loads(base64.b64decode(value))
    except (ValueError, binascii.Error, RecursionError):
        return {}  # not ours: a client state we did not write carries nothing we use
    return {str(k): str(v) for k, v in decoded.items()} if isinstance(decoded, dict) else {}


class Outbound:
    """What we send a carrier, in its dialect."""

    def __init__(self, carrier: Carrier, stream_id: str) -> None:
        self.carrier = carrier
        self.stream_id = stream_id
        self._media_head = (
            '{"event":"media","streamSid":' + json.dumps(stream_id) + ',"media":{"payload":"'
            if carrier == "twilio"
            else '{"event":"media","media":{"payload":"'
        )

    def media(self, audio: bytes) -> str:
        # Built by hand: base64 needs no escaping, and this runs 50 times a second per call.
        payload = base64.b64encode(audio).decode()
        return f'{self._media_head}{payload}"}}}}'

    def mark(self, name: str) -> str:
        if self.carrier == "twilio":
            return json.dumps({"event": "mark", "streamSid": self.stream_id, "mark": {"name": name}})
        return json.dumps({"event": "mark", "mark": {"name": name}})

    def clear(self) -> str:
        if self.carrier == "twilio":
            return json.dumps({"event": "clear", "streamSid": self.stream_id})
        return json.dumps({"event": "clear"})


class Reorder:
    """Media frames back in order by chunk number, waiting at most `window` frames for a gap.

    A frame older than what was already handed on is dropped (counted); a gap that does not
    fill within the window is skipped (counted as lost), so one missing frame never stalls a call.
    """

    def __init__(self, window: int = 5) -> None:
        self.window = window
        self.next: int | None = None
        self._heap: list[tuple[int, int, Media]] = []
        self._seen = 0
        self.late = 0
        self.lost = 0

    def push(self, media: Media) -> list[Media]:
        if self.next is None:
            # Both carriers number chunks from 1: a first frame a little past it may be the
            # second of a swapped pair, so wait for 1; far past it, the stream joined mid-way.
            self.next = 1 if 1 < media.chunk <= self.window + 1 else media.chunk
        if media.chunk < self.next:
            self.late += 1
            return []
        self._seen += 1
        heapq.heappush(self._heap, (media.chunk, self._seen, media))
        out: list[Media] = []
        while self._heap:
            chunk = self._heap[0][0]
            if chunk == self.next or len(self._heap) > self.window:
                _, _, frame = heapq.heappop(self._heap)
                if frame.chunk < self.next:  # a duplicate of one handed on
                    self.late += 1
                    continue
                self.lost += frame.chunk - self.next
                out.append(frame)
                self.next = frame.chunk + 1
            else:
                break
        return out

    def flush(self) -> list[Media]:
        """What is still held (the stream ended): in order, gaps and all, each chunk once."""
        out: list[Media] = []
        for _, _, frame in sorted(self._heap):
            if (self.next is not None and frame.chunk < self.next) or (out and frame.chunk == out[-1].chunk):
                self.late += 1  # a duplicate (or one handed on already)
                continue
            out.append(frame)
        self._heap.clear()
        if out and self.next is not None:
            chunks = [self.next - 1, *(frame.chunk for frame in out)]
            self.lost += sum(b - a - 1 for a, b in itertools.pairwise(chunks))
            self.next = out[-1].chunk + 1
        return out
