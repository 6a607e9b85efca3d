"""The in-memory event store: the same contract as Postgres, for tests and single-process tools."""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator, Sequence
from uuid import UUID

import anyio
import msgspec

from events.envelope import Envelope
from events.store import (
    ANY,
    NO_STREAM,
    AppendResult,
    BadEvent,
    EventFilter,
    EventStore,
    PreparedSegment,
    StreamAppend,
    VerifyReport,
    new_correlation,
    prepare,
    raise_for_segments,
    utc_now,
)


def _hash(prev: bytes, env: Envelope) -> bytes:
    parts = (
        str(env.event_id),
        env.stream_id,
        str(env.version),
        env.type,
        str(env.account_id or ""),
        str(env.correlation_id),
        str(env.causation_id or ""),
        bytes(env.data).decode(),
        str(int(env.recorded_at.timestamp() * 1_000_000)),
    )
    return hashlib.sha256(prev + "\x1f".join(parts).encode()).digest()


class InMemoryEventStore(EventStore):
    def __init__(self) -> None:
        self._log: list[Envelope] = []
        self._hashes: list[bytes] = []
        self._streams: dict[str, list[int]] = {}  # stream id -> indexes into _log
        self._by_id: dict[UUID, int] = {}
        self._lock = anyio.Lock()
        self._changed = anyio.Event()

    async def append_many(
        self,
        appends: Sequence[StreamAppend],
        *,
        correlation_id: UUID | None = None,
        causation_id: UUID | None = None,
    ) -> list[AppendResult]:
        segments = prepare(appends)
        async with self._lock:
            return self._append_locked(segments, correlation_id or new_correlation(segments), causation_id)

    def _append_locked(
        self, segments: list[PreparedSegment], correlation_id: UUID, causation_id: UUID | None
    ) -> list[AppendResult]:
        outcomes: list[tuple[str, int]] = []
        for seg in segments:
            current = len(self._streams.get(seg.stream_id, ()))
            known = [e.event_id in self._by_id for e in seg.events]
            if all(known):
                outcomes.append(("duplicate", current))
            elif any(known):
                outcomes.append(("partial_duplicate", current))
            elif (seg.expected is NO_STREAM and current != 0) or (
                isinstance(seg.expected, int) and seg.expected != current
            ):
                outcomes.append(("conflict", current))
            else:
                outcomes.append(("ok", current))
        if any(o not in ("ok", "duplicate") for o, _ in outcomes):
            raise_for_segments(segments, outcomes)

        now = utc_now()
        results = []
        for seg, (outcome, current) in zip(segments, outcomes, strict=True):
            if outcome == "duplicate":
                first = self._log[self._by_id[seg.events[0].event_id]]
                last = self._log[self._by_id[seg.events[-1].event_id]]
                results.append(
                    AppendResult(
                        stream_id=seg.stream_id,
                        first_version=first.version,
                        last_version=last.version,
                        first_position=first.position,
                        last_position=last.position,
                        duplicate=True,
                    )
                )
                continue
            indexes = self._streams.setdefault(seg.stream_id, [])
            prev = self._hashes[indexes[-1]] if indexes else b""
            first_position = len(self._log) + 1
            for ev in seg.events:
                env = Envelope(
                    event_id=ev.event_id,
                    stream_id=seg.stream_id,
                    version=len(indexes) + 1,
                    position=len(self._log) + 1,
                    type=ev.event_type,
                    account_id=seg.account_id,
                    correlation_id=correlation_id,
                    causation_id=causation_id,
                    recorded_at=now,
                    data=msgspec.Raw(ev.data),
                )
                prev = _hash(prev, env)
                self._by_id[ev.event_id] = len(self._log)
                indexes.append(len(self._log))
                self._log.append(env)
                self._hashes.append(prev)
            results.append(
                AppendResult(
                    stream_id=seg.stream_id,
                    first_version=current + 1,
                    last_version=len(indexes),
                    first_position=first_position,
                    last_position=len(self._log),
                )
            )
        self._changed.set()
        self._changed = anyio.Event()
        return results

    async def read_stream(self, stream_id: str, *, from_version: int = 1, limit: int | None = None) -> list[Envelope]:
        indexes = self._streams.get(stream_id, [])[max(from_version, 1) - 1 :]
        if limit is not None:
            indexes = indexes[:limit]
        return [self._log[i] for i in indexes]

    async def read_all(
        self, from_position: int = 0, *, batch_size: int = 1000, filter: EventFilter | None = None
    ) -> AsyncIterator[list[Envelope]]:
        position = from_position
        end = len(self._log)
        while position < end:
            chunk = self._log[position : min(position + batch_size, end)]
            position += len(chunk)
            batch = chunk if filter is None else [e for e in chunk if filter.matches(e)]
            if batch:
                yield batch
            await anyio.lowlevel.checkpoint()

    async def tail(
        self,
        from_position: int = 0,
        *,
        batch_size: int = 1000,
        filter: EventFilter | None = None,
        pace_s: float = 0.0,  # nothing to save here: reading memory costs no round trip
    ) -> AsyncIterator[list[Envelope]]:
        position = from_position
        while True:
            changed = self._changed
            if position >= len(self._log):
                await changed.wait()
                continue
            chunk = self._log[position : position + batch_size]
            position += len(chunk)
            batch = chunk if filter is None else [e for e in chunk if filter.matches(e)]
            if batch:
                yield batch
            await anyio.lowlevel.checkpoint()

    async def stream_version(self, stream_id: str) -> int:
        return len(self._streams.get(stream_id, ()))

    async def head_position(self) -> int:
        return len(self._log)

    async def verify(self) -> VerifyReport:
        last: dict[str, bytes] = {}
        for env, stored in zip(self._log, self._hashes, strict=True):
            expected = _hash(last.get(env.stream_id, b""), env)
            if expected != stored:
                bad = BadEvent(
                    position=env.position,
                    stream_id=env.stream_id,
                    version=env.version,
                    event_id=env.event_id,
                    problem="content does not match its hash: the event was changed after it was written",
                )
                return VerifyReport(events_checked=env.position, streams_checked=len(last), first_bad=bad)
            last[env.stream_id] = stored
        return VerifyReport(events_checked=len(self._log), streams_checked=len(self._streams))

    def _tamper(self, position: int, data: bytes) -> None:
        """Tests only: overwrite an event's data behind the store's back."""
        env = self._log[position - 1]
        self._log[position - 1] = msgspec.structs.replace(env, data=msgspec.Raw(data))


__all__ = ["ANY", "NO_STREAM", "InMemoryEventStore"]
