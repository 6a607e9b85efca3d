"""Stream ids built by the catalog from what providers send."""

from __future__ import annotations

from events.catalog import inbound_stream
from events.store import validate_stream_id


def test_provider_message_ids_make_valid_stream_ids_and_distinct_ones_stay_distinct() -> None:
    plain = ["SM" + "a1" * 16, "b0c3c6fd-2f7b-4c39-9d5c-0d9e7f1a2b3c", "wamid.HBgLMTMwNTU1NTAxMjMVAgARGBI"]
    for message_id in plain:  # Twilio, Telnyx and most Meta ids are kept as they are
        assert inbound_stream("p", message_id) == f"inbound-p:{message_id}"
    awkward = ["wamid.NcWO/EKVAsXpi+K1jx==", "wamid.NcWO/EKVAsXpi+K1jy==", "id with spaces", "x" * 300, "ñ"]
    streams = [inbound_stream("meta", m) for m in awkward]
    for stream_id in streams:
        assert validate_stream_id(stream_id) == stream_id
    assert len(set(streams)) == len(awkward)
    assert inbound_stream("meta", awkward[0]) == streams[0]  # the same message: the same stream
