"""The envelope: an event as recorded in the log, with its position and identity."""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

import msgspec

from events.catalog import Event
from events.codec import decode_event, try_decode_event


class Envelope(msgspec.Struct, frozen=True, kw_only=True, gc=False):
    """One recorded event. `data` is the stored JSON, decoded on demand by `.event`."""

    event_id: UUID
    stream_id: str
    version: int
    position: int
    type: str
    account_id: UUID | None
    correlation_id: UUID
    causation_id: UUID | None
    recorded_at: datetime
    data: msgspec.Raw

    @property
    def event(self) -> Event:
        """The typed event; raises UnknownEventType / EventDataInvalid naming this position."""
        event = try_decode_event(self.type, self.data)
        if event is None:  # the slow path only to say precisely what is wrong
            return decode_event(self.type, self.data, where=f"position {self.position}, stream {self.stream_id!r}")
        return event

    @property
    def category(self) -> str:
        return stream_category(self.stream_id)


def stream_category(stream_id: str) -> str:
    """`lead-0b9e…` → `lead`: the aggregate kind, used in bus subjects."""
    return stream_id.split("-", 1)[0]


envelope_encoder = msgspec.json.Encoder()
envelope_decoder = msgspec.json.Decoder(Envelope)
