"""The event store contract: appends with expected versions, reads, tails, verification."""

from __future__ import annotations

import abc
import enum
import os
import re
import time
import uuid
from collections.abc import AsyncIterator, Sequence
from datetime import UTC, datetime
from typing import Final
from uuid import UUID

import anyio
import msgspec

from events.catalog import Event, event_type
from events.codec import decode_event, encode_event, try_decode_event
from events.envelope import Envelope
from events.errors import (
    AppendRejected,
    ConcurrencyError,
    IdempotencyConflict,
    InvalidStreamId,
    LogError,
)


class ExpectedVersion(enum.Enum):
    """What an append expects of its stream when not an exact version."""

    ANY = "any"
    NO_STREAM = "no stream"


ANY: Final = ExpectedVersion.ANY
NO_STREAM: Final = ExpectedVersion.NO_STREAM
Expected = int | ExpectedVersion


def new_event_id() -> UUID:
    """A UUIDv7: 48 bits of Unix milliseconds, then 74 random bits (RFC 9562).

    Time-ordered ids land at the right edge of the event-id index instead of at random pages,
    which keeps appends fast as the log grows; 74 random bits keep them unguessable.
    """
    ms = time.time_ns() // 1_000_000
    rand = int.from_bytes(os.urandom(10), "big")
    value = (ms & 0xFFFF_FFFF_FFFF) << 80 | 0x7 << 76 | (rand >> 62 & 0xFFF) << 64 | 0b10 << 62 | rand & (1 << 62) - 1
    return UUID(int=value)


class NewEvent(msgspec.Struct, frozen=True, kw_only=True):
    """An event to append, with the id it will be known by (fixed ids make appends idempotent)."""

    event: Event
    event_id: UUID = msgspec.field(default_factory=new_event_id)


class StreamAppend(msgspec.Struct, frozen=True, kw_only=True):
    """The events to add to one stream, and the version the stream must be at."""

    stream_id: str
    events: Sequence[Event | NewEvent]
    expected_version: Expected = ANY
    account_id: UUID | None = None


class AppendResult(msgspec.Struct, frozen=True, kw_only=True):
    stream_id: str
    first_version: int
    last_version: int
    first_position: int
    last_position: int
    duplicate: bool = False


class EventFilter(msgspec.Struct, frozen=True, kw_only=True):
    """Narrows a read of the whole log. Empty means everything."""

    types: frozenset[str] | None = None
    account_id: UUID | None = None
    stream_id: str | None = None
    category: str | None = None

    def matches(self, env: Envelope) -> bool:
        return (
            (self.types is None or env.type in self.types)
            and (self.account_id is None or env.account_id == self.account_id)
            and (self.stream_id is None or env.stream_id == self.stream_id)
            and (self.category is None or env.category == self.category)
        )


class BadEvent(msgspec.Struct, frozen=True, kw_only=True):
    position: int
    stream_id: str
    version: int
    event_id: UUID | None
    problem: str


class VerifyReport(msgspec.Struct, frozen=True, kw_only=True):
    events_checked: int
    streams_checked: int
    seals_checked: int = 0
    first_bad: BadEvent | None = None

    @property
    def ok(self) -> bool:
        return self.first_bad is None


# --- preparing appends (shared by every store) ---------------------------------------------

_STREAM_ID = re.compile(r"^[a-z][a-z0-9_]{0,62}(-[A-Za-z0-9_.:@+-]{1,200})?$")


class PreparedEvent(msgspec.Struct, frozen=True):
    event_id: UUID
    event_type: str
    data: bytes


class PreparedSegment(msgspec.Struct, frozen=True):
    stream_id: str
    expected: Expected
    account_id: UUID | None
    events: list[PreparedEvent]


def validate_stream_id(stream_id: str) -> str:
    if not _STREAM_ID.match(stream_id):
        raise InvalidStreamId(
            stream_id,
            "expected '<category>-<id>' with a lower-case category (letters, digits, _) "
            "and an id of letters, digits and _.:@+-",
        )
    return stream_id


def prepare(appends: Sequence[StreamAppend]) -> list[PreparedSegment]:
    """Validate and encode an append request before it reaches a store."""
    if not appends:
        raise LogError("an append needs at least one stream")
    seen: set[str] = set()
    segments = []
    for ap in appends:
        validate_stream_id(ap.stream_id)
        if ap.stream_id in seen:
            raise LogError(f"stream {ap.stream_id!r} appears twice in one append: merge its events")
        seen.add(ap.stream_id)
        if not ap.events:
            raise LogError(f"append to {ap.stream_id!r} has no events")
        if isinstance(ap.expected_version, int) and ap.expected_version < 0:
            raise LogError(
                f"expected version {ap.expected_version} for {ap.stream_id!r} is negative: use ANY or NO_STREAM"
            )
        prepared = []
        account_id = ap.account_id
        for item in ap.events:
            new = item if isinstance(item, NewEvent) else NewEvent(event=item)
            data = encode_event(new.event)
            # Structs do not check types when built: check what would be stored, so that nothing
            # enters the log that cannot be read back.
            tag = event_type(type(new.event))
            if try_decode_event(tag, data) is None:
                decode_event(tag, data, where=f"append to {ap.stream_id!r}")
            prepared.append(PreparedEvent(new.event_id, tag, data))
            if account_id is None:
                account_id = getattr(new.event, "account_id", None)
        segments.append(PreparedSegment(ap.stream_id, ap.expected_version, account_id, prepared))
    return segments


def describe_expected(expected: Expected) -> str:
    if expected is ANY:
        return "any version"
    if expected is NO_STREAM:
        return "no stream (version 0)"
    return f"version {expected}"


def outcome_error(stream_id: str, outcome: str, expected: Expected, actual: int, event_ids: list[UUID]) -> LogError:
    if outcome == "conflict":
        return ConcurrencyError(stream_id, describe_expected(expected), actual)
    if outcome == "partial_duplicate":
        return IdempotencyConflict(stream_id, event_ids)
    return LogError(f"append to {stream_id!r} failed: {outcome}")


def raise_for_segments(segments: Sequence[PreparedSegment], outcomes: Sequence[tuple[str, int]]) -> None:
    """Raise the error of the first failed segment; the others of an atomic append are rejected."""
    for seg, (outcome, actual) in zip(segments, outcomes, strict=True):
        if outcome not in ("ok", "duplicate", "rejected"):
            err = outcome_error(seg.stream_id, outcome, seg.expected, actual, [e.event_id for e in seg.events])
            others = [s.stream_id for s in segments if s is not seg]
            if others:
                err.add_note(f"nothing was written to {', '.join(others)} either (the append is atomic)")
            raise err
    for seg, (outcome, _) in zip(segments, outcomes, strict=True):
        if outcome == "rejected":
            raise AppendRejected(seg.stream_id, LogError("another stream failed"))


def caused_event_id(causation_id: UUID, key: str) -> UUID:
    """A deterministic event id for an event emitted in reaction to another.

    Reprocessing the cause yields the same id, so the re-append is an idempotent no-op.
    """
    return uuid.uuid5(causation_id, key)


# --- the contract ---------------------------------------------------------------------------


class EventStore(abc.ABC):
    """An append-only log of streams. Memory and Postgres implement it; one test suite checks both."""

    async def append(
        self,
        stream_id: str,
        events: Sequence[Event | NewEvent],
        *,
        expected_version: Expected = ANY,
        account_id: UUID | None = None,
        correlation_id: UUID | None = None,
        causation_id: UUID | None = None,
    ) -> AppendResult:
        """Append to one stream; raises ConcurrencyError when it is not at `expected_version`."""
        (result,) = await self.append_many(
            [
                StreamAppend(
                    stream_id=stream_id, events=events, expected_version=expected_version, account_id=account_id
                )
            ],
            correlation_id=correlation_id,
            causation_id=causation_id,
        )
        return result

    @abc.abstractmethod
    async def append_many(
        self,
        appends: Sequence[StreamAppend],
        *,
        correlation_id: UUID | None = None,
        causation_id: UUID | None = None,
    ) -> list[AppendResult]:
        """Append to several streams atomically: all are written or none is."""

    @abc.abstractmethod
    async def read_stream(self, stream_id: str, *, from_version: int = 1, limit: int | None = None) -> list[Envelope]:
        """One stream's events in version order."""

    async def read_streams(self, stream_ids: Sequence[str]) -> dict[str, list[Envelope]]:
        """Several whole streams at once (one round trip where the store can): id → events in version order."""
        return {stream_id: await self.read_stream(stream_id) for stream_id in dict.fromkeys(stream_ids)}

    @abc.abstractmethod
    def read_all(
        self, from_position: int = 0, *, batch_size: int = 1000, filter: EventFilter | None = None
    ) -> AsyncIterator[list[Envelope]]:
        """Every event after `from_position`, in global order, in batches; ends at the safe head."""

    @abc.abstractmethod
    def tail(
        self,
        from_position: int = 0,
        *,
        batch_size: int = 1000,
        filter: EventFilter | None = None,
        pace_s: float = 0.0,
    ) -> AsyncIterator[list[Envelope]]:
        """Like read_all, then waits for new events and goes on, forever.

        `pace_s`: once caught up, wait this long after a wake-up before reading, so a busy log's
        many commits are read in one go (readers that need not be the first to know).
        """

    async def follow(
        self, filter: EventFilter, loaded: anyio.Event, *, pace_s: float = 0.0
    ) -> AsyncIterator[list[Envelope]]:
        """The log as it is now from position zero, then live, forever; `loaded` is set in between.

        For whoever keeps state folded from the log (timers, the hunter's board): it knows when
        the state it rebuilt is whole, and misses nothing committed meanwhile.
        """
        head = await self.head_position()
        async for batch in self.read_all(0, filter=filter):
            if past := [env for env in batch if env.position <= head]:  # later ones come from the tail
                yield past
        loaded.set()
        async for batch in self.tail(head, filter=filter, pace_s=pace_s):
            yield batch

    @abc.abstractmethod
    async def stream_version(self, stream_id: str) -> int:
        """The stream's current version; 0 when it has no events."""

    @abc.abstractmethod
    async def head_position(self) -> int:
        """The highest position a reader can safely have read up to now."""

    @abc.abstractmethod
    async def verify(self) -> VerifyReport:
        """Check the hash chain of every stream (and seals); report the first bad event."""


def new_correlation(segments: Sequence[PreparedSegment]) -> UUID:
    return segments[0].events[0].event_id


def utc_now() -> datetime:
    return datetime.now(UTC)
