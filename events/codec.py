"""Encoding and decoding events: one msgspec decoder over the whole catalog, built once."""

from __future__ import annotations

from typing import Any, Final, Union

import msgspec

from events.catalog import ALL_EVENTS, Event, event_type
from events.errors import EventDataInvalid, UnknownEventType

EVENT_TYPES: Final[dict[str, type[Event]]] = {event_type(cls): cls for cls in ALL_EVENTS}

_AnyEvent: Any = Union[ALL_EVENTS]  # noqa: UP007 - a Union built from a tuple at runtime
_decoder: Final = msgspec.json.Decoder(_AnyEvent)
_encoder: Final = msgspec.json.Encoder()


def encode_event(event: Event) -> bytes:
    """The event as JSON, its type tag included (`{"type": "LeadIngested", ...}`)."""
    if type(event) not in _KNOWN_CLASSES:
        raise UnknownEventType(type(event).__name__, where="encode")
    return _encoder.encode(event)


def decode_event(type_name: str, data: bytes | msgspec.Raw | str, *, where: str = "") -> Event:
    """Decode stored data back into its event class, checking it against the schema."""
    if type_name not in EVENT_TYPES:
        raise UnknownEventType(type_name, where=where)
    try:
        event: Event = _decoder.decode(data)
    except msgspec.ValidationError as exc:
        raise EventDataInvalid(type_name, str(exc), where=where) from None
    except msgspec.DecodeError as exc:
        raise EventDataInvalid(type_name, f"not valid JSON: {exc}", where=where) from None
    if event_type(type(event)) != type_name:
        raise EventDataInvalid(type_name, f"data is tagged {event_type(type(event))!r}", where=where)
    return event


def try_decode_event(type_name: str, data: bytes | msgspec.Raw | str) -> Event | None:
    """Decode, or None when anything is wrong (then `decode_event` says what): the hot path.

    One decoder per type: PostgreSQL's jsonb reorders keys, so the tag is rarely first, and a
    decoder that knows the class need not look ahead for it (about 40 % faster than the union).
    """
    decoder = _DECODERS.get(type_name)
    if decoder is None:
        return None
    try:
        event: Event = decoder.decode(data)
    except (msgspec.ValidationError, msgspec.DecodeError):
        return None
    return event


def event_decoders() -> dict[str, msgspec.json.Decoder[Any]]:
    """Each type's own decoder, for loops that decode millions (a rebuild)."""
    return dict(_DECODERS)


def validate_event_data(type_name: str, data: bytes | str) -> Event:
    """Check external JSON (from a command or SQL) against an event type; the tag may be absent."""
    cls = EVENT_TYPES.get(type_name)
    if cls is None:
        raise UnknownEventType(type_name)
    try:
        raw = msgspec.json.decode(data)
        if not isinstance(raw, dict):
            raise EventDataInvalid(type_name, f"expected a JSON object, got {type(raw).__name__}")
        tag = raw.setdefault("type", type_name)
        if tag != type_name:
            raise EventDataInvalid(type_name, f"data is tagged {tag!r}")
        return msgspec.convert(raw, type=cls)
    except msgspec.ValidationError as exc:
        raise EventDataInvalid(type_name, str(exc)) from None
    except msgspec.DecodeError as exc:
        raise EventDataInvalid(type_name, f"not valid JSON: {exc}") from None


_KNOWN_CLASSES: Final = frozenset(ALL_EVENTS)
# A class's own decoder checks the tag too: data tagged as another type does not decode.
_DECODERS: Final[dict[str, msgspec.json.Decoder[Any]]] = {
    event_type(cls): msgspec.json.Decoder(cls) for cls in ALL_EVENTS
}
