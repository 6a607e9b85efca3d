"""The base class every event in the catalog derives from."""

from __future__ import annotations

import msgspec


class Event(msgspec.Struct, frozen=True, tag=True, tag_field="type", kw_only=True, gc=False):
    """An immutable fact. The tag (the class name) is the event type stored in the log.

    `gc=False`: events are frozen data and cannot form reference cycles, so the cycle collector
    need not track the millions of them a rebuild creates (a large share of read time otherwise).

    Schema evolution: add new fields with defaults, never change a field's type or meaning,
    never reuse a removed name. Old events decode into new classes with the defaults.
    """


def event_type(cls: type[Event]) -> str:
    tag = cls.__struct_config__.tag
    assert isinstance(tag, str)
    return tag
