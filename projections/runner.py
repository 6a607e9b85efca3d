"""The projection runner: catch-up and live folding, exactly-once checkpoints, rebuild and swap."""

from __future__ import annotations

import asyncio
import gc
import time
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import Any, Final

import anyio
import asyncpg
import msgspec
import structlog
from anyio.abc import TaskStatus

from events.codec import decode_event, event_decoders
from events.envelope import Envelope
from events.errors import LogError
from events.postgres import FactBatch, PostgresEventStore
from events.store import EventFilter
from projections.model import Conn, Db, Fact, Projection, RowSet, Taken, View, quote

log = structlog.get_logger("touchline.projections")

_SLICE: Final = 1000
_READ_AHEAD: Final = 2
_DECODERS: Final = event_decoders()

_SETUP_LOCK: Final = 7245318290500  # one process at a time creates or swaps read-model tables
_REBUILD_LOCK: Final = 7245318290501  # (namespace, hashtext(name)): one rebuild per projection

# Failures of the connection or the server, not of an event: retry (the supervisor restarts).
TRANSIENT: Final = (
    OSError,
    TimeoutError,
    asyncpg.InterfaceError,
    asyncpg.PostgresConnectionError,
    asyncpg.CannotConnectNowError,
    asyncpg.TooManyConnectionsError,
    asyncpg.AdminShutdownError,
    asyncpg.DeadlockDetectedError,
    asyncpg.SerializationError,
    asyncpg.InvalidCachedStatementError,
    asyncpg.LockNotAvailableError,
)


class ProjectionFailed(LogError):
    def __init__(self, name: str, env: Envelope, reason: str) -> None:
        self.name = name
        self.env = env
        self.reason = reason
        super().__init__(
            f"projection {name!r} failed on event {env.event_id} ({env.type} at position {env.position}, "
            f"stream {env.stream_id!r}): {reason}"
        )


def live_names(projection: Projection) -> dict[str, tuple[str, str]]:
    return {t.qualified: (t.schema, t.name) for t in projection.tables}


def shadow_schema(projection: Projection) -> str:
    return f"touchline_rebuild_{projection.name}"


def shadow_names(projection: Projection) -> dict[str, tuple[str, str]]:
    return {t.qualified: (shadow_schema(projection), t.name) for t in projection.tables}


def all_views(projections: Sequence[Projection]) -> list[View]:
    seen: dict[str, View] = {}
    for p in projections:
        for v in p.views:
            seen.setdefault(v.qualified, v)
    return list(seen.values())


def to_fact(env: Envelope) -> Fact:
    return Fact(env.position, env.recorded_at, env.event)


def decode_facts(batch: FactBatch, start: int, stop: int, sinks: Mapping[str, Sequence[list[Fact]]]) -> int:
    """Decode events [start, stop) of a batch, appending each to the lists its type goes to."""
    decoders = _DECODERS
    for position, recorded_at, type_name, data in zip(
        batch.positions[start:stop],
        batch.recorded_at[start:stop],
        batch.types[start:stop],
        batch.data[start:stop],
        strict=True,
    ):
        try:
            event = decoders[type_name].decode(data)
        except (KeyError, msgspec.DecodeError):  # the slow path, to say exactly what is wrong and where
            event = decode_event(type_name, data, where=f"position {position}")
        fact = Fact(position, recorded_at, event)
        for sink in sinks[type_name]:
            sink.append(fact)
    return len(batch.positions[start:stop])


# --- setting up and swapping tables -------------------------------------------------------------


def _view_name(view: View) -> str:
    return f"{quote(view.schema)}.{quote(view.name)}"


async def drop_views(conn: Conn, views: Sequence[View]) -> None:
    for view in reversed(views):
        await conn.execute(f"drop view if exists {quote(view.schema)}.{quote(view.name)}")


async def create_views(conn: Conn, views: Sequence[View]) -> list[str]:
    """Create the views whose tables exist; the others wait for their projection's set-up."""
    created = []
    for view in views:
        try:
            async with conn.transaction():  # a savepoint: a missing table skips this view only
                await conn.execute(f"create or replace view {quote(view.schema)}.{quote(view.name)} as {view.sql}")
            created.append(view.qualified)
        except asyncpg.UndefinedTableError:
            continue
    return created


async def _stale(conn: Conn, projection: Projection) -> bool:
    version = await conn.fetchval("select version from touchline.projections where name = $1", projection.name)
    return version != projection.version or not await _tables_exist(conn, projection)


async def _tables_exist(conn: Conn, projection: Projection) -> bool:
    for table in projection.tables:
        if await conn.fetchval("select to_regclass($1)", f"{quote(table.schema)}.{quote(table.name)}") is None:
            return False
    return True


async def ensure_ready(
    store: PostgresEventStore, projection: Projection, views: Sequence[View], *, batch_size: int = 10_000
) -> None:
    """Create a new projection's tables, or rebuild one whose version changed (old copy serves meanwhile)."""
    async with store.pool.acquire() as conn, conn.transaction():
        await conn.execute("select pg_advisory_xact_lock($1)", _SETUP_LOCK)
        row = await conn.fetchrow("select version from touchline.projections where name = $1", projection.name)
        exists = await _tables_exist(conn, projection)
        if row is None and not exists:
            for table in projection.tables:
                for statement in table.ddl(table.schema):
                    await conn.execute(statement)
            await conn.execute(
                "insert into touchline.projections (name, version) values ($1, $2)",
                projection.name,
                projection.version,
            )
            await create_views(conn, views)
            log.info("projection_created", projection=projection.name, version=projection.version)
            return
        if row is not None and row["version"] == projection.version and exists:
            return
    reason = "tables missing" if not exists else f"version {row['version'] if row else None} → {projection.version}"
    log.info("projection_rebuild_needed", projection=projection.name, reason=reason)
    await rebuild_if_stale(store, type(projection)(), views, batch_size=batch_size)


class RebuildProgress(msgspec.Struct, kw_only=True):
    position: int
    head: int
    events: int
    seconds: float


class RebuildReport(msgspec.Struct, kw_only=True):
    projections: list[str]
    events: int  # events applied
    scanned_to: int  # log position the rebuild covered
    seconds: float

    @property
    def events_per_s(self) -> float:
        return self.events / self.seconds if self.seconds else 0.0


async def rebuild(
    store: PostgresEventStore,
    projections: Sequence[Projection],
    views: Sequence[View],
    *,
    batch_size: int = 10_000,
    flush_rows: int = 20_000,
    progress: Callable[[RebuildProgress], None] | None = None,
) -> RebuildReport:
    """Rebuild from position zero into shadow tables, then swap them in atomically (see `_rebuild`)."""
    report = await _rebuild(
        store, projections, views, batch_size=batch_size, flush_rows=flush_rows, progress=progress, if_stale=False
    )
    assert report is not None
    return report


async def rebuild_if_stale(
    store: PostgresEventStore, projection: Projection, views: Sequence[View], *, batch_size: int = 10_000
) -> RebuildReport | None:
    """Rebuild unless, once this process holds the rebuild lock, the projection is current after all.

    Several processes starting a new version at once rebuild it once; the others find it done.
    """
    return await _rebuild(
        store, [projection], views, batch_size=batch_size, flush_rows=20_000, progress=None, if_stale=True
    )


async def _rebuild(
    store: PostgresEventStore,
    projections: Sequence[Projection],
    views: Sequence[View],
    *,
    batch_size: int,
    flush_rows: int,
    progress: Callable[[RebuildProgress], None] | None,
    if_stale: bool,
) -> RebuildReport | None:
    """Rebuild from position zero into shadow tables, then swap them in atomically.

    The live tables keep serving (and their runners keep folding) until the swap, a short
    transaction that takes each projection's checkpoint row, folds the events that arrived
    since, and moves the shadow tables in. One pass over the log feeds every projection.
    """
    started = time.perf_counter()
    names = {p.name: shadow_names(p) for p in projections}
    types = {p.name: p.types() for p in projections}
    wanted = EventFilter(types=frozenset().union(*types.values()))
    lock_conn: asyncpg.Connection = await asyncpg.connect(store.dsn)
    try:
        for p in sorted(projections, key=lambda p: p.name):  # one rebuild of a projection at a time
            await lock_conn.execute("select pg_advisory_lock($1, hashtext($2))", _REBUILD_LOCK >> 32, p.name)
        if if_stale and not [p for p in projections if await _stale(lock_conn, p)]:
            return None
        async with store.pool.acquire() as conn:
            for p in projections:
                schema = quote(shadow_schema(p))
                await conn.execute(f"drop schema if exists {schema} cascade")
                await conn.execute(f"create schema {schema}")
                for table in p.tables:
                    # Secondary indexes come after the bulk load: building one is faster than
                    # keeping it up to date row by row.
                    for statement in table.ddl(shadow_schema(p), indexes=False):
                        await conn.execute(statement)
                p.reset(fresh=True)

            targets = [(p, types[p.name], Db(conn, names[p.name])) for p in projections]
            route: dict[str, list[int]] = {}
            for i, (_, mine, _) in enumerate(targets):
                for t in mine:
                    route.setdefault(t, []).append(i)

            def sinks() -> tuple[list[list[Fact]], dict[str, list[list[Fact]]]]:
                parts: list[list[Fact]] = [[] for _ in targets]
                return parts, {t: [parts[i] for i in targets_of] for t, targets_of in route.items()}

            async def fold(parts: list[list[Fact]]) -> None:
                for (p, _, db), part in zip(targets, parts, strict=True):
                    if part:
                        await p.apply(db, part)

            # Rows go to the shadow tables from a task of their own, on a second connection:
            # PostgreSQL loads one slice while the next is folded.
            send_rows, receive_rows = anyio.create_memory_object_stream[
                list[tuple[Db, list[tuple[RowSet[Any], Taken]]]]
            ](1)

            async def write_rows(flush_conn: Conn) -> None:
                async with receive_rows:
                    async for work in receive_rows:
                        async with flush_conn.transaction():
                            for db, taken in work:
                                for rows, pending in taken:
                                    await rows.write(Db(flush_conn, db.names), pending)

            def take_all() -> list[tuple[Db, list[tuple[RowSet[Any], Taken]]]]:
                return [(db, p.take()) for p, _, db in targets]

            head = await store.head_position()
            all_types = sorted(route)
            applied = 0
            position = 0

            # The log is read in ranges of positions, several at once on their own connections:
            # PostgreSQL prepares the next ranges on its core while this one is folded here.
            starts = iter(range(0, head, batch_size))
            reading: deque[tuple[int, asyncio.Task[FactBatch]]] = deque()

            def read_ahead() -> None:
                start = next(starts, None)
                if start is not None:
                    end = min(start + batch_size, head)
                    read = store.read_facts(start, batch_size, upto=end, types=all_types)
                    reading.append((end, asyncio.ensure_future(read)))

            for _ in range(_READ_AHEAD):
                read_ahead()
            # Millions of short-lived objects and no cycles among them: the cycle collector would
            # only slow the fold down (by a third, measured). It runs again right after.
            gc_was_enabled = gc.isenabled()
            gc.disable()
            try:
                async with store.pool.acquire() as flush_conn, anyio.create_task_group() as tg:
                    tg.start_soon(write_rows, flush_conn)
                    async with send_rows:
                        while reading:
                            end, task = reading.popleft()
                            batch = await task
                            read_ahead()
                            # In slices, with the event loop let in between: it takes the next batches
                            # off the sockets meanwhile, so PostgreSQL never stalls on a full buffer.
                            for start in range(0, len(batch), _SLICE):
                                parts, by_type = sinks()
                                applied += decode_facts(batch, start, start + _SLICE, by_type)
                                await fold(parts)
                                await asyncio.sleep(0)
                            position = end
                            if sum(p.dirty() for p in projections) >= flush_rows:
                                await send_rows.send(take_all())
                            if progress is not None:
                                elapsed = time.perf_counter() - started
                                progress(RebuildProgress(position=position, head=head, events=applied, seconds=elapsed))
                        await send_rows.send(take_all())
            finally:
                for _, task in reading:
                    task.cancel()
                if gc_was_enabled:
                    gc.enable()
            # Index builds, two at a time: each one keeps a PostgreSQL core busy on its own.
            statements = [st for p in projections for t in p.tables for st in t.index_ddl(shadow_schema(p))]
            limiter = anyio.CapacityLimiter(2)

            async def build(statement: str) -> None:
                async with limiter:
                    await store.pool.execute(statement)

            async with anyio.create_task_group() as builds:
                for statement in statements:
                    builds.start_soon(build, statement)
            position = head

            async with conn.transaction():
                await conn.execute("select pg_advisory_xact_lock($1)", _SETUP_LOCK)
                for p in sorted(projections, key=lambda p: p.name):
                    await conn.execute(
                        "insert into touchline.projections (name, version) values ($1, $2) on conflict do nothing",
                        p.name,
                        p.version,
                    )
                    await conn.fetchval("select position from touchline.projections where name = $1 for update", p.name)
                # Live runners wait on those rows now: fold what arrived since the scan, then swap.
                while True:
                    scan = await store.scan_batch(position, batch_size, wanted)
                    if scan.events:
                        parts, by_type = sinks()
                        for env in scan.events:
                            for sink in by_type[env.type]:
                                sink.append(to_fact(env))
                        await fold(parts)
                        applied += len(scan.events)
                    position = scan.position
                    if not scan.full:
                        break
                for p, _, db in targets:
                    await p.flush(db)
                await drop_views(conn, views)
                for p in projections:
                    for table in p.tables:
                        await conn.execute(f"drop table if exists {quote(table.schema)}.{quote(table.name)}")
                        shadow = f"{quote(shadow_schema(p))}.{quote(table.name)}"
                        await conn.execute(f"alter table {shadow} set schema {quote(table.schema)}")
                    await conn.execute(f"drop schema {quote(shadow_schema(p))}")
                    await conn.execute(
                        "update touchline.projections set version = $2, position = $3, events_applied = $4, "
                        "rebuilt_at = now(), updated_at = now(), rate = null, error = null, error_position = null, "
                        "error_event_id = null, error_at = null where name = $1",
                        p.name,
                        p.version,
                        position,
                        applied,
                    )
                await create_views(conn, views)
    finally:
        await lock_conn.close()
    seconds = time.perf_counter() - started
    report = RebuildReport(
        projections=[p.name for p in projections], events=applied, scanned_to=position, seconds=seconds
    )
    log.info(
        "projections_rebuilt",
        projections=report.projections,
        events=applied,
        position=position,
        events_per_s=round(report.events_per_s),
    )
    return report


# --- running live -------------------------------------------------------------------------------


class ProjectionWorker:
    """Keeps one projection's tables up to date: catch-up from its checkpoint, then live.

    Each batch is folded and its checkpoint written in one transaction, under the projection's
    row lock, so two processes running the same projection (or a rebuild swapping it) never
    apply an event twice. An event the projection cannot fold stops it there: the events before
    it are committed, the error (which event, why) is recorded, and the worker waits.
    """

    def __init__(
        self,
        projection: Projection,
        store: PostgresEventStore,
        *,
        views: Sequence[View] = (),
        batch_size: int = 2000,
    ) -> None:
        self.projection = projection
        self.name = f"projection:{projection.name}"
        self.store = store
        self.views = views
        self.batch_size = batch_size
        self.position = 0
        self.state = "new"
        self.failure: ProjectionFailed | None = None
        self._names = live_names(projection)
        self._rate: deque[tuple[float, int]] = deque(maxlen=64)
        self._progress = anyio.Event()
        self._scope: anyio.CancelScope | None = None

    async def run(self, *, task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
        with anyio.CancelScope() as self._scope:
            self.state = "starting"
            await ensure_ready(self.store, self.projection, self.views)
            self.position = int(
                await self.store.pool.fetchval(
                    "select position from touchline.projections where name = $1", self.projection.name
                )
            )
            self.projection.reset()
            self.state = "running"
            task_status.started()
            wanted = EventFilter(types=self.projection.types())
            async for scan in self.store.tail_scan(self.position, batch_size=self.batch_size, filter=wanted):
                if not await self.commit(scan.events, scan.position):
                    self.state = "failed"
                    await anyio.sleep_forever()

    async def stop(self, grace: float = 10.0) -> None:
        if self._scope is not None:
            self._scope.cancel()

    async def wait_position(self, position: int) -> None:
        """Tests: until everything up to `position` is folded (or the projection failed)."""
        while self.position < position and self.failure is None:
            await self._progress.wait()

    def _moved(self) -> None:
        self._progress.set()
        self._progress = anyio.Event()

    async def commit(self, events: list[Envelope], upto: int) -> bool:
        """Fold and checkpoint; on a bad event, commit the good ones before it. False: stopped."""
        try:
            with anyio.CancelScope(shield=True):  # a commit is short: let it finish on shutdown
                await self._fold(events, upto)
            return True
        except TRANSIENT:
            self.projection.reset()
            raise
        except Exception:  # some event in this batch: find it
            self.projection.reset()
        for env in events:
            try:
                with anyio.CancelScope(shield=True):
                    await self._fold([env], env.position)
            except TRANSIENT:
                self.projection.reset()
                raise
            except Exception as exc:  # this one: record it and stop here
                self.projection.reset()
                await self._record_failure(env, exc)
                return False
        await self._fold([], upto)
        return True

    async def _fold(self, events: list[Envelope], upto: int) -> None:
        async with self.store.pool.acquire() as conn, conn.transaction():
            stored = await conn.fetchval(
                "select position from touchline.projections where name = $1 for update", self.projection.name
            )
            if stored is None:
                raise asyncpg.InterfaceError(f"projection {self.projection.name!r} has no checkpoint row any more")
            if stored != self.position:
                # A rebuild swapped new tables in, or another process folded these: follow it.
                self.projection.reset()
                if stored < self.position:
                    raise asyncpg.InterfaceError(
                        f"projection {self.projection.name!r} checkpoint moved back to {stored}: starting over"
                    )
            if events and events[0].position <= stored:
                # This process's tail is behind the checkpoint (another one moved it): skip what is in.
                events = [e for e in events if e.position > stored]
            upto = max(upto, stored)
            if events:
                db = Db(conn, self._names)
                await self.projection.apply(db, [to_fact(e) for e in events])
                await self.projection.flush(db)
            now = time.monotonic()
            self._rate.append((now, len(events)))
            first = self._rate[0][0]
            rate = sum(n for _, n in self._rate) / (now - first) if now - first > 0.5 else None
            await conn.execute(
                "update touchline.projections set position = $2, events_applied = events_applied + $3, "
                "rate = coalesce($4, rate), updated_at = now(), error = null, error_position = null, "
                "error_event_id = null, error_at = null where name = $1",
                self.projection.name,
                upto,
                len(events),
                rate,
            )
        self.position = upto
        self.failure = None
        self._moved()

    async def _record_failure(self, env: Envelope, exc: Exception) -> None:
        reason = f"{type(exc).__name__}: {exc}"
        self.failure = ProjectionFailed(self.projection.name, env, reason)
        await self.store.pool.execute(
            "update touchline.projections set error = $2, error_position = $3, error_event_id = $4, "
            "error_at = now(), updated_at = now() where name = $1",
            self.projection.name,
            reason,
            env.position,
            env.event_id,
        )
        log.error(
            "projection_failed",
            projection=self.projection.name,
            position=env.position,
            event_id=str(env.event_id),
            event_type=env.type,
            error=reason,
        )
        self._moved()


# --- status ---------------------------------------------------------------------------------


class ProjectionStatus(msgspec.Struct, kw_only=True):
    name: str
    version: int  # the code's
    stored_version: int | None
    position: int
    lag: int  # events in the log after the checkpoint
    rate: float | None
    events_applied: int
    updated_at: datetime | None
    rebuilt_at: datetime | None
    error: str | None
    error_position: int | None
    error_event_id: str | None

    @property
    def state(self) -> str:
        if self.stored_version is None:
            return "not started"
        if self.error:
            return "failed"
        if self.stored_version != self.version:
            return "needs rebuild"
        return "live" if self.lag == 0 else "behind"


async def projection_status(store: PostgresEventStore, projections: Sequence[Projection]) -> list[ProjectionStatus]:
    head = await store.head_position()
    rows = {
        r["name"]: r
        for r in await store.pool.fetch(
            "select name, version, position, events_applied, rate, updated_at, rebuilt_at, error, error_position, "
            "error_event_id from touchline.projections"
        )
    }
    result = []
    for p in projections:
        r = rows.get(p.name)
        position = int(r["position"]) if r else 0
        lag = 0
        if head > position:
            lag = int(
                await store.pool.fetchval(
                    "select count(*) from touchline.events where position > $1 and position <= $2", position, head
                )
            )
        result.append(
            ProjectionStatus(
                name=p.name,
                version=p.version,
                stored_version=r["version"] if r else None,
                position=position,
                lag=lag,
                rate=r["rate"] if r else None,
                events_applied=int(r["events_applied"]) if r else 0,
                updated_at=r["updated_at"] if r else None,
                rebuilt_at=r["rebuilt_at"] if r else None,
                error=r["error"] if r else None,
                error_position=r["error_position"] if r else None,
                error_event_id=str(r["error_event_id"]) if r and r["error_event_id"] else None,
            )
        )
    return result
