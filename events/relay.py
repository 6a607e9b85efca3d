"""The outbox relay: publishes every committed event, in log order, to JetStream, exactly once."""

from __future__ import annotations

import asyncio
import contextlib
import random
from collections.abc import AsyncIterator
from typing import Final

import anyio
import asyncpg
import msgspec
import nats.errors
import structlog
from anyio.abc import TaskStatus
from anyio.streams.memory import MemoryObjectReceiveStream
from nats.aio.client import Client as NATS
from nats.js import JetStreamContext
from nats.js.api import PubAck
from nats.js.errors import NotFoundError

from events.bus import HEADER_POSITION, HEADER_STREAM, HEADER_TYPE, ensure_stream
from events.errors import BusError
from events.postgres import PostgresEventStore, WireBatch
from events.settings import Settings

log = structlog.get_logger("touchline.relay")

_LEADER_LOCK: Final = 7245318290419
# (last position, event count, acknowledgement futures) of one published batch
_InFlight = tuple[int, int, list["asyncio.Future[PubAck]"]]


_RETRYABLE: Final = (
    # BrokenResourceError: the publishing half of the pipeline, when the acknowledging half failed.
    anyio.BrokenResourceError,
    BusError,
    nats.errors.Error,
    OSError,
    TimeoutError,
    asyncpg.PostgresError,
    asyncpg.InterfaceError,
    # A pooled connection left mid-operation by a server that went away ("cannot switch to state
    # 12; another operation is in progress"): seen when PostgreSQL restarts under the relay.
    asyncpg.InternalClientError,
)
_ACK_TIMEOUT_S: Final = 5.0


def _retryable(exc: Exception) -> Exception | None:
    """The transient failure to retry after, also when a task group wrapped it; None when fatal."""
    if isinstance(exc, ExceptionGroup):
        matched, rest = exc.split(_RETRYABLE)
        if rest is not None or matched is None:
            return None
        leaf: Exception = matched
        while isinstance(leaf, ExceptionGroup):
            leaf = leaf.exceptions[0]
        return leaf
    return exc if isinstance(exc, _RETRYABLE) else None


class RelayStats(msgspec.Struct, kw_only=True):
    published: int = 0
    duplicates: int = 0
    position: int = 0
    retries: int = 0
    seals: int = 0
    leader: bool = False


async def load_checkpoint(conn: asyncpg.Connection | asyncpg.Pool, name: str) -> int:
    pos = await conn.fetchval("select position from touchline.checkpoints where name = $1", name)
    return int(pos or 0)


async def save_checkpoint(
    conn: asyncpg.Connection | asyncpg.Pool, name: str, position: int, *, durable: bool = True
) -> None:
    """Record how far `name` got. `durable=False` skips the wait for the WAL flush: for a
    checkpoint whose loss only means work done again (the relay's: its resume point is also
    read back from the stream, and JetStream drops a re-sent Nats-Msg-Id)."""
    if not durable:
        # One statement, its own transaction: the set_config is local to it and applies at its commit.
        await conn.execute(
            "with relaxed as (select set_config('synchronous_commit', 'off', true)) "
            "insert into touchline.checkpoints (name, position) select $1, $2 from relaxed "
            "on conflict (name) do update set position = excluded.position, updated_at = now() "
            "where touchline.checkpoints.position < excluded.position",
            name,
            position,
        )
        return
    await conn.execute(
        "insert into touchline.checkpoints (name, position) values ($1, $2) "
        "on conflict (name) do update set position = excluded.position, updated_at = now() "
        "where touchline.checkpoints.position < excluded.position",
        name,
        position,
    )


class OutboxRelay:
    """Tails the log and publishes to JetStream with `Nats-Msg-Id` = event id.

    Resumes from the later of its checkpoint and the last position already in the stream, so a
    crash between publish and checkpoint re-sends nothing the stream has. One relay per log leads
    (a PostgreSQL advisory lock); others wait as standbys.
    """

    crash_delay_s = 10.0  # after a failure that is not a known transient one

    def __init__(
        self,
        store: PostgresEventStore,
        nc: NATS,
        settings: Settings,
        *,
        name: str = "relay",
        batch_size: int = 4000,
        window: int = 4,
        seal_every: int = 10_000,
        seal_interval_s: float = 30.0,
        pace_s: float = 0.002,
    ) -> None:
        self.store = store
        self.nc = nc
        self.js: JetStreamContext = nc.jetstream(publish_async_max_pending=batch_size * window)
        self.settings = settings
        self.name = name
        self.batch_size = batch_size
        self.window = window
        self.seal_every = seal_every
        self.seal_interval_s = seal_interval_s
        # After a wake-up, 2 ms for more commits to land: a busy log is read and published in
        # larger batches, at a cost of 2 ms latency when it is quiet.
        self.pace_s = pace_s
        self.stats = RelayStats()
        self._progress = anyio.Event()
        self._last_msg_id: str | None = None
        self._attempt = 0  # consecutive failed attempts; back to 0 once the relay has resumed

    async def run(self, *, task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
        """Relay forever; transient NATS or PostgreSQL failures are retried with backoff, anything
        else is logged as a crash and retried after 10 s (it never takes its process down)."""
        started = False
        while True:
            try:
                async with self._leadership():
                    if not started:
                        task_status.started()
                        started = True
                    await self._relay()
            except Exception as caught:
                exc = _retryable(caught)
                self._attempt += 1
                self.stats.retries += 1
                delay = min(10.0, 0.2 * 2 ** min(self._attempt, 6)) * (0.5 + random.random())
                if exc is None:
                    # Not a known transient failure: a bug to see in the log, but the relay (and
                    # the process it lives in) goes on: the log is the truth, it resumes from it.
                    delay = self.crash_delay_s
                    log.exception("relay_crashed", attempt=self._attempt, retry_in_s=delay)
                else:
                    log.warning(
                        "relay_retry",
                        error=str(exc) or type(exc).__name__,
                        attempt=self._attempt,
                        retry_in_s=round(delay, 2),
                    )
                if not started:
                    task_status.started()
                    started = True
                await anyio.sleep(delay)

    async def wait_caught_up(self, position: int) -> None:
        """Tests and benchmarks: wait until everything up to `position` is acknowledged."""
        while self.stats.position < position:
            await self._progress.wait()

    @contextlib.asynccontextmanager
    async def _leadership(self) -> AsyncIterator[None]:
        conn: asyncpg.Connection = await asyncpg.connect(self.store.dsn)
        try:
            while not await conn.fetchval(
                "select pg_try_advisory_lock($1, hashtext($2))", _LEADER_LOCK >> 32, self.name
            ):
                if self.stats.leader:
                    log.info("relay_standby", name=self.name)
                self.stats.leader = False
                await anyio.sleep(1.0)
            self.stats.leader = True
            log.info("relay_leader", name=self.name)
            # The lock lives as long as this connection: if it goes, so does the leadership, and
            # another relay may already lead. Stop at once, and stand by again.
            with anyio.CancelScope() as leading:
                conn.add_termination_listener(lambda _conn: leading.cancel())
                yield
            if leading.cancelled_caught:
                raise asyncpg.ConnectionDoesNotExistError("lost the connection holding the relay's leader lock")
        finally:
            self.stats.leader = False
            with anyio.CancelScope(shield=True):
                await conn.close()

    async def _resume_position(self) -> int:
        checkpoint = await load_checkpoint(self.store.pool, self.name)
        self._last_msg_id = None
        try:
            info = await self.js.stream_info(self.settings.stream_name)
        except NotFoundError:
            return checkpoint
        if info.state.messages == 0:
            return checkpoint
        last = await self.js.get_msg(self.settings.stream_name, seq=info.state.last_seq)
        headers = last.headers or {}
        self._last_msg_id = headers.get("Nats-Msg-Id")
        in_stream = int(headers.get(HEADER_POSITION, 0))
        return max(checkpoint, in_stream)

    async def _relay(self) -> None:
        await ensure_stream(self.js, self.settings)
        position = await self._resume_position()
        self.stats.position = position
        self._progress.set()  # waiters for what the stream already has are caught up now
        self._progress = anyio.Event()
        self._attempt = 0  # recovered: the next failure starts its backoff from the beginning
        log.info("relay_resumed", name=self.name, position=position)
        send, receive = anyio.create_memory_object_stream[_InFlight](self.window)
        async with anyio.create_task_group() as tg:
            tg.start_soon(self._acknowledge, receive)
            tg.start_soon(self._seal_periodically)
            async with send:
                async for batch in self.store.tail_wire(position, batch_size=self.batch_size, pace_s=self.pace_s):
                    futures = await self._publish_batch(batch)
                    await send.send((batch.last_position, len(batch), futures))

    async def _publish_batch(self, batch: WireBatch) -> list[asyncio.Future[PubAck]]:
        prefix = f"{self.settings.subject_prefix}.events."
        publish = self.js.publish_async
        futures = []
        columns = (batch.positions, batch.event_ids, batch.subjects, batch.types, batch.stream_ids, batch.payloads)
        for position, event_id, subject, type_, stream_id, payload in zip(*columns, strict=True):
            headers = {
                "Nats-Msg-Id": event_id,
                HEADER_POSITION: str(position),
                HEADER_TYPE: type_,
                HEADER_STREAM: stream_id,
            }
            # Each message names the one before it: if a publish is lost on a broken connection,
            # the server refuses everything after it instead of storing a gap, and the relay
            # starts over. (No expected-stream header: the relay made the stream own its subjects.)
            if self._last_msg_id is not None:
                headers["Nats-Expected-Last-Msg-Id"] = self._last_msg_id
            self._last_msg_id = event_id
            futures.append(await publish(prefix + subject, payload, headers=headers))
        return futures

    async def _acknowledge(self, receive: MemoryObjectReceiveStream[_InFlight]) -> None:
        last_sealed = self.stats.position
        async with receive:
            async for position, count, futures in receive:
                with anyio.fail_after(_ACK_TIMEOUT_S):
                    # Every future retrieved, failed ones too (no "exception never retrieved"
                    # noise); the first failure is raised and the relay starts over from the log.
                    answers = await asyncio.gather(*futures, return_exceptions=True)
                failures = [a for a in answers if isinstance(a, BaseException)]
                if failures:
                    raise failures[0]
                acks = [a for a in answers if not isinstance(a, BaseException)]
                self.stats.duplicates += sum(1 for a in acks if a.duplicate)
                self.stats.published += count
                await save_checkpoint(self.store.pool, self.name, position, durable=False)
                self.stats.position = position
                self._progress.set()
                self._progress = anyio.Event()
                if position - last_sealed >= self.seal_every:
                    if await self.store.seal(min_events=self.seal_every) is not None:
                        self.stats.seals += 1
                    last_sealed = position

    async def _seal_periodically(self) -> None:
        while True:
            await anyio.sleep(self.seal_interval_s)
            if await self.store.seal(min_events=1) is not None:
                self.stats.seals += 1
