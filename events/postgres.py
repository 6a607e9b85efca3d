"""The PostgreSQL event store: group commit, gap-safe global order, LISTEN/NOTIFY tailing."""

from __future__ import annotations

import asyncio
import contextlib
import random
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from datetime import datetime
from typing import Any, Final, TypeVar
from uuid import UUID

import anyio
import asyncpg
import msgspec
import structlog

from events.envelope import Envelope
from events.errors import DatabaseUnavailable, LogError, StoreClosed
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
)

log = structlog.get_logger("touchline.log")

NOTIFY_CHANNEL: Final = "touchline_events"
_RACE_RETRIES: Final = 8

_COLUMNS: Final = (
    "position, stream_id, version, event_id, event_type, account_id, correlation_id, causation_id, recorded_at, data"
)
_SAFE: Final = "tx_id < pg_snapshot_xmin(pg_current_snapshot())"
# A batch of envelopes as JSON, built by PostgreSQL on its own core while the relay publishes,
# column by column: asyncpg decodes arrays in C, with no row objects to build.
_WIRE_SQL: Final = f"""
select array_agg(position order by position),
       array_agg(event_id::text order by position),
       array_agg(coalesce(account_id::text, '_') || '.' || split_part(stream_id, '-', 1) || '.' || event_type
                 order by position),
       array_agg(event_type order by position),
       array_agg(stream_id order by position),
       array_agg(convert_to(json_build_object(
           'event_id', event_id, 'stream_id', stream_id, 'version', version, 'position', position,
           'type', event_type, 'account_id', account_id, 'correlation_id', correlation_id,
           'causation_id', causation_id, 'recorded_at', recorded_at, 'data', data)::text, 'UTF8') order by position)
  from (select * from touchline.events where position > $1 and {_SAFE} order by position limit $2) e
"""


# A batch of (position, recorded_at, type, data) column by column, for rebuilding read models:
# only what a projection folds, decoded by asyncpg in C without row objects.
_FACTS_SQL: Final = f"""
select array_agg(position order by position), array_agg(recorded_at order by position),
       array_agg(event_type order by position), array_agg(data::text order by position)
  from (select position, recorded_at, event_type, data from touchline.events
         where position > $1 and position <= $3 and event_type = any($4) and {_SAFE}
         order by position limit $2) e
"""


class FactBatch(msgspec.Struct, frozen=True, gc=False):
    """Events as columns: positions, record times, types and stored JSON."""

    positions: list[int]
    recorded_at: list[datetime]
    types: list[str]
    data: list[str]  # JSON text: decoded in C, where a jsonb array would call a codec per element

    def __len__(self) -> int:
        return len(self.positions)


class WireBatch(msgspec.Struct, frozen=True, gc=False):
    """Events ready to publish, column by column: where each goes, and its JSON envelope."""

    positions: list[int]
    event_ids: list[str]
    subjects: list[str]  # {account}.{category}.{type}, after the `{prefix}.events.` part
    types: list[str]
    stream_ids: list[str]
    payloads: list[bytes]

    @property
    def last_position(self) -> int:
        return self.positions[-1]

    def __len__(self) -> int:
        return len(self.positions)


_Batch = TypeVar("_Batch")


class ScanBatch(msgspec.Struct, frozen=True, gc=False):
    """Matching events of a filtered read, and the position up to which the log was looked at."""

    events: list[Envelope]
    position: int
    full: bool  # the batch was cut at its size: more may be waiting


# How far a batch moves a tail from `after`: (new position, more waiting), or None for no progress.
def _envelopes_progress(batch: list[Envelope], after: int, size: int) -> tuple[int, bool] | None:
    return (batch[-1].position, len(batch) == size) if batch else None


def _wire_progress(batch: WireBatch, after: int, size: int) -> tuple[int, bool] | None:
    return (batch.last_position, len(batch) == size) if len(batch) else None


def _scan_progress(batch: ScanBatch, after: int, size: int) -> tuple[int, bool] | None:
    # An empty scan still moves the tail when it covered new (unmatched) events.
    return (batch.position, batch.full) if batch.position > after else None


_APPEND_SQL: Final = (
    "select req, stream_id, outcome, actual_version, first_version, last_version, first_position, last_position, "
    "last_hash from touchline.append_events($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)"
)
# Stream heads this process has seen (its own appends), passed as hints so that the append
# function can skip looking them up. Bounded: forgetting only costs a lookup.
_MAX_HINTS: Final = 200_000


async def init_connection(conn: asyncpg.Connection) -> None:
    """jsonb travels as raw JSON bytes both ways: no str round trip, no re-parsing."""
    await conn.set_type_codec(
        "jsonb",
        schema="pg_catalog",
        format="binary",
        encoder=lambda b: b"\x01" + b,
        decoder=lambda b: b[1:],
    )


async def _reset_connection(conn: asyncpg.Connection) -> None:
    """What a pooled connection needs before its next user: an open transaction rolled back, nothing else.

    asyncpg's default reset sends `pg_advisory_unlock_all(); CLOSE ALL; UNLISTEN *; RESET ALL`
    on every release, a round trip per query. Pooled connections here never hold session state:
    LISTEN, the relay's leader lock and the rebuild locks each live on a connection of their own,
    and the append function releases its advisory lock before it returns.
    """
    if conn.is_in_transaction():
        await conn.execute("rollback")


async def create_pool(dsn: str, *, min_size: int = 2, max_size: int = 10) -> asyncpg.Pool:
    try:
        pool = await asyncpg.create_pool(
            dsn,
            min_size=min_size,
            max_size=max_size,
            init=init_connection,
            reset=_reset_connection,
            # Every statement planned for its own parameters: a cached generic plan for
            # `position > $1` guesses a third of the log and scans it, each time, for ever.
            server_settings={"plan_cache_mode": "force_custom_plan"},
        )
    except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError, ValueError) as exc:
        raise DatabaseUnavailable(redact_dsn(dsn), str(exc) or type(exc).__name__) from exc
    assert pool is not None
    return pool


def redact_dsn(dsn: str) -> str:
    # Never print a password: postgresql://user:secret@host → postgresql://user:***@host
    if "@" in dsn and "://" in dsn:
        scheme, rest = dsn.split("://", 1)
        creds, host = rest.rsplit("@", 1)
        if ":" in creds:
            creds = creds.split(":", 1)[0] + ":***"
        return f"{scheme}://{creds}@{host}"
    return dsn


def row_to_envelope(row: asyncpg.Record) -> Envelope:
    return Envelope(
        position=row[0],
        stream_id=row[1],
        version=row[2],
        event_id=row[3],
        type=row[4],
        account_id=row[5],
        correlation_id=row[6],
        causation_id=row[7],
        recorded_at=row[8],
        data=msgspec.Raw(row[9]),
    )


def _expected_code(expected: object) -> int:
    if expected is ANY:
        return -2
    if expected is NO_STREAM:
        return -1
    assert isinstance(expected, int)
    return expected


class _Request:
    __slots__ = ("causation_id", "correlation_id", "future", "segments", "size")

    def __init__(self, segments: list[PreparedSegment], correlation_id: UUID, causation_id: UUID | None) -> None:
        self.segments = segments
        self.correlation_id = correlation_id
        self.causation_id = causation_id
        self.size = sum(len(s.events) for s in segments)
        self.future: asyncio.Future[list[AppendResult]] = asyncio.get_running_loop().create_future()


class PostgresEventStore(EventStore):
    """Use through `open_postgres_store`, which runs the group-commit writers."""

    def __init__(self, pool: asyncpg.Pool, dsn: str, *, writers: int = 4, max_batch_events: int = 1000) -> None:
        self.pool = pool
        self.dsn = dsn
        self._writers = writers
        self._max_batch = max_batch_events
        self._min_share = 32
        self._queue: deque[_Request] = deque()
        self._queued_size = 0  # events waiting in _queue
        self._work = asyncio.Event()
        self._closed = False
        self._in_flight = 0
        self._tasks: list[asyncio.Task[None]] = []
        self._batch_done = asyncio.Event()
        self._heads: dict[str, tuple[int, bytes]] = {}
        self.batches_committed = 0
        self.requests_committed = 0

    # --- appending (group commit) -------------------------------------------------------

    async def append_many(
        self,
        appends: Sequence[StreamAppend],
        *,
        correlation_id: UUID | None = None,
        causation_id: UUID | None = None,
    ) -> list[AppendResult]:
        if self._closed:
            raise StoreClosed()
        segments = prepare(appends)
        request = _Request(segments, correlation_id or new_correlation(segments), causation_id)
        self._queue.append(request)
        self._queued_size += request.size
        self._work.set()
        return await request.future

    # The writers are plain tasks owned by the store rather than a task group spanning the
    # caller's `async with`: the store may be opened and closed from different tasks (fixtures,
    # servers), and no caller's task group should be torn down by a writer's failure.
    def _start(self) -> None:
        loop = asyncio.get_running_loop()
        self._tasks = [loop.create_task(self._writer(), name=f"touchline-writer-{i}") for i in range(self._writers)]

    async def _close(self) -> None:
        self._closed = True
        self._work.set()
        while self._queue or self._in_flight:
            self._batch_done.clear()
            await self._batch_done.wait()
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    async def _writer(self) -> None:
        while True:
            await self._work.wait()
            batch: list[_Request] = []
            size = 0
            # Spread a burst over the writers so that commits overlap instead of queueing.
            limit = min(self._max_batch, max(self._min_share, -(-self._queued_size // self._writers)))
            while self._queue and (not batch or size + self._queue[0].size <= limit):
                req = self._queue.popleft()
                self._queued_size -= req.size
                if req.future.cancelled():
                    continue
                batch.append(req)
                size += req.size
            if not self._queue:
                self._work.clear()
            if batch:
                self._in_flight += 1
                try:
                    await self._commit_group(batch)
                except Exception as exc:  # a bug must fail these appends, not hang them or the writer
                    log.exception("append_group_failed", requests=len(batch))
                    for req in batch:
                        _fail(req, exc)
                finally:
                    self._in_flight -= 1
                    self._batch_done.set()

    async def _commit_group(self, batch: list[_Request]) -> None:
        try:
            rows = await self._execute(batch)
        except (asyncpg.PostgresError, asyncpg.InterfaceError, OSError) as exc:
            # One bad or raced request must not fail its neighbours: retry each on its own.
            for req in batch:
                await self._commit_alone(req, exc if len(batch) == 1 else None)
            return
        by_req: dict[int, list[asyncpg.Record]] = {}
        for row in rows:
            by_req.setdefault(row[0], []).append(row)
        for i, req in enumerate(batch, start=1):
            _resolve(req, by_req[i])
        self.batches_committed += 1
        self.requests_committed += len(batch)

    async def _commit_alone(self, req: _Request, first_error: BaseException | None) -> None:
        error = first_error
        for _attempt in range(_RACE_RETRIES):
            if error is not None and not isinstance(error, asyncpg.UniqueViolationError):
                break
            try:
                _resolve(req, await self._execute([req]))
            except (asyncpg.PostgresError, asyncpg.InterfaceError, OSError) as exc:
                # A unique violation means another process appended to the same stream (or the
                # same event ids) and has committed by now: run the checks again against it.
                error = exc
                await asyncio.sleep(random.uniform(0, 0.002 * (_attempt + 1)))
            else:
                self.batches_committed += 1
                self.requests_committed += 1
                return
        assert error is not None
        _fail(req, error)

    async def _execute(self, batch: list[_Request]) -> list[asyncpg.Record]:
        p_req: list[int] = []
        p_stream: list[str] = []
        p_expected: list[int] = []
        p_seg: list[int] = []
        p_event_id: list[UUID] = []
        p_type: list[str] = []
        p_account: list[UUID | None] = []
        p_corr: list[UUID] = []
        p_cause: list[UUID | None] = []
        p_data: list[bytes] = []
        for r, req in enumerate(batch, start=1):
            for seg in req.segments:
                p_req.append(r)
                p_stream.append(seg.stream_id)
                p_expected.append(_expected_code(seg.expected))
                p_account.append(seg.account_id)
                p_corr.append(req.correlation_id)
                p_cause.append(req.causation_id)
                s = len(p_stream)
                for ev in seg.events:
                    p_seg.append(s)
                    p_event_id.append(ev.event_id)
                    p_type.append(ev.event_type)
                    p_data.append(ev.data)
        hint_version: list[int] | None = []
        hint_hash: list[bytes] | None = []
        for req in batch:
            for seg in req.segments:
                head = self._heads.get(seg.stream_id)
                if head is None and seg.expected is NO_STREAM:
                    head = (0, b"")
                if head is None:
                    hint_version = hint_hash = None
                    break
                assert hint_version is not None and hint_hash is not None
                hint_version.append(head[0])
                hint_hash.append(head[1])
            if hint_version is None:
                break
        async with self.pool.acquire() as conn:
            # One statement in autocommit: one round trip, and the function is the first write.
            rows = await conn.fetch(
                _APPEND_SQL,
                p_req,
                p_stream,
                p_expected,
                p_seg,
                p_event_id,
                p_type,
                p_account,
                p_corr,
                p_cause,
                p_data,
                hint_version,
                hint_hash,
            )
        self._remember_heads(rows)
        return rows

    def _remember_heads(self, rows: list[asyncpg.Record]) -> None:
        if len(self._heads) > _MAX_HINTS:
            self._heads.clear()
        for row in rows:
            if row["outcome"] == "ok":
                self._heads[row["stream_id"]] = (row["last_version"], row["last_hash"])
            else:
                self._heads.pop(row["stream_id"], None)

    # --- reading ----------------------------------------------------------------------

    async def read_stream(self, stream_id: str, *, from_version: int = 1, limit: int | None = None) -> list[Envelope]:
        rows = await self.pool.fetch(
            f"select {_COLUMNS} from touchline.events where stream_id = $1 and version >= $2 order by version limit $3",
            stream_id,
            from_version,
            limit,
        )
        return [row_to_envelope(r) for r in rows]

    async def read_streams(self, stream_ids: Sequence[str]) -> dict[str, list[Envelope]]:
        wanted = list(dict.fromkeys(stream_ids))
        found: dict[str, list[Envelope]] = {stream_id: [] for stream_id in wanted}
        rows = await self.pool.fetch(
            f"select {_COLUMNS} from touchline.events where stream_id = any($1::text[]) order by stream_id, version",
            wanted,
        )
        for row in rows:
            env = row_to_envelope(row)
            found[env.stream_id].append(env)
        return found

    async def read_correlated(self, correlation_id: UUID, *, limit: int = 1000) -> list[Envelope]:
        """The events that share one correlation id (what one command caused), in log order."""
        rows = await self.pool.fetch(
            f"select {_COLUMNS} from touchline.events where correlation_id = $1 order by position limit $2",
            correlation_id,
            limit,
        )
        return [row_to_envelope(r) for r in rows]

    async def read_batch(self, after: int, limit: int, filter: EventFilter | None = None) -> list[Envelope]:
        """Up to `limit` safe events after position `after` (filter pushed down into SQL)."""
        where = [f"position > $1 and {_SAFE}"]
        args: list[Any] = [after, limit]
        if filter is not None:
            if filter.types is not None:
                args.append(list(filter.types))
                where.append(f"event_type = any(${len(args)})")
            if filter.account_id is not None:
                args.append(filter.account_id)
                where.append(f"account_id = ${len(args)}")
            if filter.stream_id is not None:
                args.append(filter.stream_id)
                where.append(f"stream_id = ${len(args)}")
            if filter.category is not None:
                args.append(filter.category + "-%")
                where.append(f"(stream_id like ${len(args)})")
        sql = f"select {_COLUMNS} from touchline.events where {' and '.join(where)} order by position limit $2"
        rows = await self.pool.fetch(sql, *args)
        return [row_to_envelope(r) for r in rows]

    async def read_all(
        self, from_position: int = 0, *, batch_size: int = 1000, filter: EventFilter | None = None
    ) -> AsyncIterator[list[Envelope]]:
        # The next batch is fetched while the caller works on this one: PostgreSQL runs on
        # another core, so reading and decoding overlap.
        pending: asyncio.Task[list[Envelope]] | None = asyncio.ensure_future(
            self.read_batch(from_position, batch_size, filter)
        )
        try:
            while pending is not None:
                batch = await pending
                pending = None
                if not batch:
                    return
                if len(batch) == batch_size:
                    pending = asyncio.ensure_future(self.read_batch(batch[-1].position, batch_size, filter))
                yield batch
        finally:
            if pending is not None:
                pending.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await pending

    async def tail(
        self,
        from_position: int = 0,
        *,
        batch_size: int = 1000,
        filter: EventFilter | None = None,
        pace_s: float = 0.0,
    ) -> AsyncIterator[list[Envelope]]:
        if filter is not None:
            async for scan in self.tail_scan(from_position, batch_size=batch_size, filter=filter, pace_s=pace_s):
                if scan.events:
                    yield scan.events
            return
        async for batch in self._follow(from_position, batch_size, self.read_batch, _envelopes_progress, pace_s):
            yield batch

    def tail_scan(
        self,
        from_position: int = 0,
        *,
        batch_size: int = 1000,
        filter: EventFilter | None = None,
        pace_s: float = 0.0,
    ) -> AsyncIterator[ScanBatch]:
        """Tail the events `filter` selects, with how far the log has been looked at.

        The filter runs in PostgreSQL; batches with no events still say how far the scan got,
        so a reader of rare events can record its progress without reading everything else.
        """

        async def fetch(after: int, limit: int) -> ScanBatch:
            return await self.scan_batch(after, limit, filter)

        return self._follow(from_position, batch_size, fetch, _scan_progress, pace_s)

    async def scan_batch(self, after: int, limit: int, filter: EventFilter | None = None) -> ScanBatch:
        """Up to `limit` matching events after `after`, and the safe position the scan covered."""
        head = await self.head_position()
        if head <= after:
            return ScanBatch([], after, False)
        events = [e for e in await self.read_batch(after, limit, filter) if e.position <= head]
        if len(events) == limit:
            return ScanBatch(events, events[-1].position, True)
        return ScanBatch(events, head, False)

    def tail_wire(
        self, from_position: int = 0, *, batch_size: int = 1000, pace_s: float = 0.0
    ) -> AsyncIterator[WireBatch]:
        """Tail the log as ready-to-publish envelopes, serialised by PostgreSQL (for the relay)."""
        return self._follow(from_position, batch_size, self.read_wire_batch, _wire_progress, pace_s)

    async def read_facts(self, after: int, limit: int, *, upto: int, types: Sequence[str]) -> FactBatch:
        """Up to `limit` events of `types` in (after, upto], as columns (the rebuild fast path)."""
        row = await self.pool.fetchrow(_FACTS_SQL, after, limit, upto, list(types))
        assert row is not None
        if row[0] is None:
            return FactBatch([], [], [], [])
        return FactBatch(*row)

    async def read_wire_batch(self, after: int, limit: int) -> WireBatch:
        row = await self.pool.fetchrow(_WIRE_SQL, after, limit)
        assert row is not None
        if row[0] is None:
            return WireBatch([], [], [], [], [], [])
        return WireBatch(*row)

    async def _follow(
        self,
        position: int,
        batch_size: int,
        fetch: Callable[[int, int], Awaitable[_Batch]],
        progress: Callable[[_Batch, int, int], tuple[int, bool] | None],
        pace_s: float = 0.0,
    ) -> AsyncIterator[_Batch]:
        """Read batches after `position` for ever, waking on LISTEN/NOTIFY when caught up.

        With `pace_s`, a wake-up is followed by that long a pause before the read: the commits
        of a busy moment are read together instead of one query each.
        """
        wake = asyncio.Event()
        lost = False

        def on_notify(*_: object) -> None:
            wake.set()

        def on_lost(_: object) -> None:
            # A failover, an idle timeout, an operator: without its LISTEN connection the tail
            # would never wake again. Wake now, reconnect, and read what was missed meanwhile.
            nonlocal lost
            lost = True
            wake.set()

        async def listen() -> asyncpg.Connection:
            delay = 0.05
            while True:
                conn: asyncpg.Connection | None = None
                try:
                    conn = await asyncpg.connect(self.dsn)
                    await conn.add_listener(NOTIFY_CHANNEL, on_notify)
                    conn.add_termination_listener(on_lost)
                    return conn
                except BaseException as exc:
                    # Never leave the connection behind: not when LISTEN fails, not when the
                    # reader is cancelled between connecting and listening.
                    if conn is not None:
                        conn.terminate()
                    if not isinstance(exc, (OSError, asyncpg.PostgresError, asyncpg.InterfaceError)):
                        raise
                await anyio.sleep(delay)
                delay = min(delay * 2, 2.0)

        held_back_delay = 0.005
        listener = await listen()
        pending: asyncio.Task[_Batch] | None = None
        try:
            while True:
                wake.clear()
                if lost or listener.is_closed():
                    listener.terminate()
                    listener, lost = await listen(), False
                if pending is not None:
                    batch, pending = await pending, None
                else:
                    batch = await fetch(position, batch_size)
                moved = progress(batch, position, batch_size)
                if moved is not None:
                    position, full = moved
                    held_back_delay = 0.005
                    if full:
                        # More is waiting: fetch it while the caller works on this batch.
                        pending = asyncio.ensure_future(fetch(position, batch_size))
                    yield batch
                    if pending is not None:
                        continue
                if await self._held_back(position):
                    # A slower transaction below us has not finished: our events are committed but
                    # not yet safe to read. Its commit (or rollback) sends no notice we can count
                    # on, so look again shortly.
                    with anyio.move_on_after(held_back_delay):
                        await wake.wait()
                    held_back_delay = min(held_back_delay * 2, 0.5)
                else:
                    await wake.wait()
                    if pace_s:
                        await anyio.sleep(pace_s)
        finally:
            with anyio.CancelScope(shield=True):
                if pending is not None:
                    pending.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await pending
                await listener.close()

    async def _held_back(self, position: int) -> bool:
        # `order by position limit 1` walks the primary key from `position`. (As `exists(... where
        # position > $1)`, a cached generic plan estimates a third of the table and scans it all.)
        found = await self.pool.fetchval(
            "select position from touchline.events where position > $1 order by position limit 1", position
        )
        return found is not None

    async def stream_version(self, stream_id: str) -> int:
        version = await self.pool.fetchval("select max(version) from touchline.events where stream_id = $1", stream_id)
        return int(version or 0)

    async def head_position(self) -> int:
        pos = await self.pool.fetchval(
            f"select position from touchline.events where {_SAFE} order by position desc limit 1"
        )
        return int(pos or 0)

    async def seal(self, *, max_events: int = 100_000, min_events: int = 1) -> int | None:
        """Seal the global order up to the safe horizon; the seal id, or None if too few events."""
        seal_id = await self.pool.fetchval("select touchline.seal($1, $2)", max_events, min_events)
        return int(seal_id) if seal_id is not None else None

    async def verify(self) -> VerifyReport:
        async with self.pool.acquire() as conn, conn.transaction(isolation="repeatable_read", readonly=True):
            counts = await conn.fetchrow("select count(*), count(distinct stream_id) from touchline.events")
            assert counts is not None
            n_events, n_streams = int(counts[0]), int(counts[1])
            n_seals = int(await conn.fetchval("select count(*) from touchline.seals") or 0)

            def report(bad: BadEvent | None) -> VerifyReport:
                return VerifyReport(
                    events_checked=n_events, streams_checked=n_streams, seals_checked=n_seals, first_bad=bad
                )

            row = await conn.fetchrow(_VERIFY_CHAIN_SQL)
            if row is not None:
                gap = row["version"] != (row["prev_version"] or 0) + 1
                problem = (
                    f"version {row['version']} follows version {row['prev_version'] or 0}: "
                    "an event before it was removed"
                    if gap
                    else "content does not match its hash: the event was changed after it was written"
                )
                return report(
                    BadEvent(
                        position=row["position"],
                        stream_id=row["stream_id"],
                        version=row["version"],
                        event_id=row["event_id"],
                        problem=problem,
                    )
                )
            seal = await conn.fetchrow(_VERIFY_SEALS_SQL)
            if seal is not None:
                return report(
                    BadEvent(
                        position=int(seal["from_position"]),
                        stream_id="",
                        version=0,
                        event_id=None,
                        problem=f"seal {seal['seal_id']} over positions {seal['from_position']}.."
                        f"{seal['to_position']} does not match the events there: an event was removed, "
                        "inserted or rewritten",
                    )
                )
            return report(None)


_VERIFY_CHAIN_SQL: Final = """
select position, stream_id, version, event_id, hash_ok, prev_version from (
    select position, stream_id, version, event_id,
           hash = touchline.event_hash(coalesce(lag(hash) over w, ''::bytea), event_id, stream_id, version,
                  event_type, account_id, correlation_id, causation_id, data, recorded_at) as hash_ok,
           lag(version) over w as prev_version
      from touchline.events
    window w as (partition by stream_id order by version)
) x
where not hash_ok or version <> coalesce(prev_version, 0) + 1
order by position
limit 1
"""

_VERIFY_SEALS_SQL: Final = """
select s.seal_id, s.from_position, s.to_position from touchline.seals s
 where s.hash <> (select sha256(s.prev_hash || string_agg(e.hash, ''::bytea order by e.position))
                    from touchline.events e where e.position between s.from_position and s.to_position)
    or s.event_count <> (select count(*) from touchline.events e
                          where e.position between s.from_position and s.to_position)
    or s.prev_hash <> coalesce((select p.hash from touchline.seals p where p.seal_id < s.seal_id
                                 order by p.seal_id desc limit 1), ''::bytea)
 order by s.seal_id
 limit 1
"""


def _resolve(req: _Request, rows: list[asyncpg.Record]) -> None:
    if req.future.done():
        return
    outcomes = [(str(r["outcome"]), int(r["actual_version"] or 0)) for r in rows]
    try:
        raise_for_segments(req.segments, outcomes)
    except LogError as exc:
        req.future.set_exception(exc)
        return
    req.future.set_result(
        [
            AppendResult(
                stream_id=r["stream_id"],
                first_version=int(r["first_version"]),
                last_version=int(r["last_version"]),
                first_position=int(r["first_position"]),
                last_position=int(r["last_position"]),
                duplicate=r["outcome"] == "duplicate",
            )
            for r in rows
        ]
    )


def _fail(req: _Request, exc: BaseException) -> None:
    if not req.future.done():
        err = LogError(f"append to {', '.join(s.stream_id for s in req.segments)} failed in PostgreSQL: {exc}")
        err.__cause__ = exc
        req.future.set_exception(err)


@contextlib.asynccontextmanager
async def open_postgres_store(
    dsn: str, *, writers: int = 4, pool_size: int = 10, max_batch_events: int = 1000
) -> AsyncIterator[PostgresEventStore]:
    """Connect, start the group-commit writers, and stop them cleanly on exit."""
    pool = await create_pool(dsn, min_size=min(writers, pool_size), max_size=max(pool_size, writers + 2))
    store = PostgresEventStore(pool, dsn, writers=writers, max_batch_events=max_batch_events)
    store._start()
    try:
        yield store
    finally:
        with anyio.CancelScope(shield=True):
            await store._close()
            await pool.close()


__all__ = ["PostgresEventStore", "create_pool", "init_connection", "open_postgres_store", "row_to_envelope"]
