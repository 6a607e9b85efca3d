"""Carrier frames read and written, out-of-order media put back in order, garbage refused by name."""

from __future__ import annotations

import base64
import json

import pytest

from events.errors import GatewayError
from gateways.voice.frames import Dtmf, Mark, Media, Outbound, Reorder, Start, Stop, parse_frame


def _media(chunk: int) -> Media:  # chunks count from 1, as both carriers number them
    return Media(sequence=chunk + 1, chunk=chunk, audio=bytes([chunk % 256]) * 160)


def test_a_telnyx_start_frame_gives_the_call_the_codec_and_our_client_state() -> None:
    state = base64.b64encode(json.dumps({"touch_run_id": "t-1", "lead_id": "l-1"}).encode()).decode()
    frame = parse_frame(
        "telnyx",
        json.dumps(
            {
                "event": "start",
                "sequence_number": "1",
                "stream_id": "s-1",
                "start": {
                    "call_control_id": "v3:abc",
                    "from": "+13055550100",
                    "to": "+13055550000",
                    "client_state": state,
                    "media_format": {"encoding": "PCMU", "sample_rate": 8000, "channels": 1},
                },
            }
        ),
    )
    assert frame == Start(
        stream_id="s-1",
        carrier_call_id="v3:abc",
        codec="PCMU",
        sample_rate=8000,
        from_number="+13055550100",
        to_number="+13055550000",
        parameters={"touch_run_id": "t-1", "lead_id": "l-1"},
    )
    g729 = parse_frame(
        "telnyx",
        json.dumps(
            {
                "event": "start",
                "stream_id": "s",
                "start": {"call_control_id": "v3:x", "media_format": {"encoding": "G729", "sample_rate": 8000}},
            }
        ),
    )
    assert isinstance(g729, Start) and g729.codec == "G729"


def test_a_twilio_start_frame_normalises_mulaw_and_carries_the_custom_parameters() -> None:
    frame = parse_frame(
        "twilio",
        json.dumps(
            {
                "event": "start",
                "sequenceNumber": "1",
                "streamSid": "MZ1",
                "start": {
                    "streamSid": "MZ1",
                    "callSid": "CA1",
                    "tracks": ["inbound"],
                    "mediaFormat": {"encoding": "audio/x-mulaw", "sampleRate": 8000, "channels": 1},
                    "customParameters": {"touch_run_id": "t-9", "from": "+13055550101"},
                },
            }
        ),
    )
    assert isinstance(frame, Start)
    assert (frame.codec, frame.carrier_call_id, frame.stream_id) == ("PCMU", "CA1", "MZ1")
    assert frame.parameters == {"touch_run_id": "t-9", "from": "+13055550101"} and frame.from_number == "+13055550101"


def test_media_dtmf_mark_and_stop_frames_of_both_carriers() -> None:
    payload = base64.b64encode(b"\x7f" * 160).decode()
    twilio = parse_frame(
        "twilio",
        json.dumps(
            {
                "event": "media",
                "sequenceNumber": "7",
                "streamSid": "MZ1",
                "media": {"track": "inbound", "chunk": "5", "payload": payload},
            }
        ),
    )
    assert twilio == Media(sequence=7, chunk=5, audio=b"\x7f" * 160)
    telnyx = parse_frame(
        "telnyx",
        json.dumps(
            {"event": "media", "sequence_number": "4", "media": {"track": "inbound", "chunk": "2", "payload": payload}}
        ),
    )
    assert isinstance(telnyx, Media) and telnyx.chunk == 2
    assert parse_frame("telnyx", '{"event": "dtmf", "dtmf": {"digit": "5"}}') == Dtmf("5")
    assert parse_frame("twilio", '{"event": "mark", "mark": {"name": "item:100"}}') == Mark("item:100")
    assert parse_frame("twilio", '{"event": "stop", "stop": {}}') == Stop()


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ("not json", "frame is not JSON"),
        ("[1, 2]", "frame is not a JSON object"),
        ('{"event": "dance"}', "unknown frame event 'dance'"),
        ('{"event": "media", "media": {}}', "media frame has no media.payload"),
        ('{"event": "media", "media": {"payload": "%%%"}}', "media payload is not base64"),
        ('{"event": "dtmf", "dtmf": {"digit": "55"}}', "is not one of 0-9"),
        ('{"event": "start", "start": {"media_format": {}}}', "start frame names no call or stream id"),
        ("x" * 70_000, "over the 65536-byte limit"),
    ],
)
def test_garbage_frames_are_refused_saying_what_is_wrong(raw: str, message: str) -> None:
    with pytest.raises(GatewayError, match=message):
        parse_frame("telnyx", raw)


def test_outbound_frames_in_each_carriers_dialect() -> None:
    twilio, telnyx = Outbound("twilio", "MZ1"), Outbound("telnyx", "s-1")
    assert json.loads(twilio.clear()) == {"event": "clear", "streamSid": "MZ1"}
    assert json.loads(telnyx.clear()) == {"event": "clear"}
    assert json.loads(twilio.mark("i:20")) == {"event": "mark", "streamSid": "MZ1", "mark": {"name": "i:20"}}
    sent = json.loads(telnyx.media(b"\xff" * 160))
    assert sent["event"] == "media" and base64.b64decode(sent["media"]["payload"]) == b"\xff" * 160


def test_reorder_puts_frames_back_in_order_and_skips_a_gap_that_never_fills() -> None:
    reorder = Reorder(window=3)
    out = []
    for chunk in (2, 1, 3, 5, 4, 6):  # the first two swapped: 1 is still waited for
        out += [m.chunk for m in reorder.push(_media(chunk))]
    assert out == [1, 2, 3, 4, 5, 6]
    assert reorder.push(_media(2)) == [] and reorder.late == 1  # too late: already played past it
    out = []
    for chunk in (8, 9, 10, 11):  # 7 never comes: after the window the call moves on
        out += [m.chunk for m in reorder.push(_media(chunk))]
    assert out == [8, 9, 10, 11] and reorder.lost == 1
    assert [m.chunk for m in reorder.push(_media(13))] == []  # 12 may still come...
    assert [m.chunk for m in reorder.flush()] == [13] and reorder.lost == 2  # ...but the stream ended
