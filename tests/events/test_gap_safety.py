"""The PostgreSQL log's global order is gap-safe: a tailing reader never skips a late commit."""

from __future__ import annotations

import contextlib
import itertools
import math
import random
import uuid
from collections.abc import AsyncGenerator, Awaitable, Callable

import anyio
import asyncpg
import msgspec
import pytest
from anyio.abc import TaskStatus
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream

from events.catalog import LeadStatusChanged, event_type
from events.codec import encode_event
from events.envelope import Envelope
from events.postgres import PostgresEventStore, init_connection
from tests.events.store_contract import lead, status

_APPEND = "select * from touchline.append_events($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)"
_ANY = -2


async def raw_connection(dsn: str) -> asyncpg.Connection:
    conn: asyncpg.Connection = await asyncpg.connect(dsn)
    await init_connection(conn)
    return conn


async def raw_append(conn: asyncpg.Connection, stream_id: str, event: LeadStatusChanged) -> int:
    """One request, one segment, one event, any version: the arrays `PostgresEventStore._execute` builds."""
    event_id = uuid.uuid4()
    rows = await conn.fetch(
        _APPEND,
        [1],
        [stream_id],
        [_ANY],
        [1],
        [event_id],
        [event_type(type(event))],
        [event.account_id],
        [event_id],
        [None],
        [encode_event(event)],
    )
    (row,) = rows
    assert row["outcome"] == "ok", row
    return int(row["first_position"])


async def committed_positions(pool: asyncpg.Pool) -> list[int]:
    return [int(r[0]) for r in await pool.fetch("select position from touchline.events order by position")]


async def tail_into(
    store: PostgresEventStore,
    send: MemoryObjectSendStream[int],
    *,
    task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED,
) -> None:
    """Tail the log from the start and forward every position, in the order the tail yields them."""
    tail = store.tail(0, batch_size=7)  # small batches: more reads, more chances to get it wrong
    assert isinstance(tail, AsyncGenerator)
    async with send, contextlib.aclosing(tail):
        task_status.started()
        async for batch in tail:
            for env in batch:
                await send.send(env.position)


async def receive_until(receive: MemoryObjectReceiveStream[int], last: int) -> list[int]:
    seen: list[int] = []
    async for position in receive:
        seen.append(position)
        if position >= last:
            break
    return seen


def drain(receive: MemoryObjectReceiveStream[int]) -> list[int]:
    extra: list[int] = []
    while True:
        try:
            extra.append(receive.receive_nowait())
        except (anyio.WouldBlock, anyio.EndOfStream):
            return extra


class _Committed(msgspec.Struct, frozen=True):
    position: int
    commit_sent: int  # ticks of one counter: the order things happened in on the event loop
    commit_done: int


# --- racing writers against a tailing reader ---------------------------------------------------


@pytest.mark.slow
async def test_a_tailing_reader_sees_every_commit_once_in_order_while_writers_race(
    pg_store: PostgresEventStore, database_url: str
) -> None:
    writers, transactions_each = 8, 40
    ticks = itertools.count()
    committed: list[_Committed] = []
    rolled_back: list[int] = []
    send, receive = anyio.create_memory_object_stream[int](math.inf)

    async def writer(n: int) -> None:
        rng = random.Random(20240611 + n)  # each writer's own: its choices do not depend on scheduling
        conn = await raw_connection(database_url)
        lead_id, stream = lead()
        try:
            for _ in range(transactions_each):
                hold = rng.choice([0.0, 0.0, 0.001, 0.005, 0.02, 0.05])
                roll_back = rng.random() < 0.2
                tx = conn.transaction()
                await tx.start()
                position = await raw_append(conn, stream, status(lead_id))
                if hold:
                    await conn.execute("select pg_sleep($1)", hold)
                if roll_back:
                    await tx.rollback()
                    rolled_back.append(position)
                    continue
                sent = next(ticks)
                await tx.commit()
                committed.append(_Committed(position, sent, next(ticks)))
        finally:
            await conn.close()

    async def store_writer() -> None:
        # The store's own group-commit path races along with the raw transactions.
        for _ in range(transactions_each):
            lead_id, stream = lead()
            sent = next(ticks)
            result = await pg_store.append(stream, [status(lead_id)])
            committed.append(_Committed(result.first_position, sent, next(ticks)))

    with receive, anyio.fail_after(60):
        async with anyio.create_task_group() as readers:
            await readers.start(tail_into, pg_store, send)
            async with anyio.create_task_group() as tg:
                for n in range(writers):
                    tg.start_soon(writer, n)
                tg.start_soon(store_writer)

            in_log = await committed_positions(pg_store.pool)
            assert in_log == sorted(c.position for c in committed)
            seen = await receive_until(receive, in_log[-1])
            readers.cancel_scope.cancel()
        seen += drain(receive)

    # Not vacuous: a transaction often drew a lower position than one that had already committed
    # before it even sent COMMIT — exactly what a naive reader by position skips.
    overtaken = [
        (slow.position, fast.position)
        for slow in committed
        for fast in committed
        if slow.position < fast.position and fast.commit_done < slow.commit_sent
    ]
    assert overtaken, "no late commit with a lower position happened: the race proved nothing"
    assert rolled_back, "no transaction rolled back"

    assert seen == in_log, "the tail skipped, repeated or reordered events"
    assert all(a < b for a, b in itertools.pairwise(seen))
    assert not set(seen) & set(rolled_back)


# --- the negative control: why the horizon is needed ------------------------------------------


async def test_a_naive_reader_by_position_skips_a_late_commit_the_store_does_not(
    pg_store: PostgresEventStore, database_url: str
) -> None:
    naive_sql = "select position from touchline.events where position > $1 order by position"
    slow_conn = await raw_connection(database_url)
    fast_conn = await raw_connection(database_url)
    try:
        slow = slow_conn.transaction()
        await slow.start()
        slow_position = await raw_append(slow_conn, "lead-slow", status(uuid.uuid4()))

        fast = fast_conn.transaction()
        await fast.start()
        fast_position = await raw_append(fast_conn, "lead-fast", status(uuid.uuid4()))
        await fast.commit()
        assert slow_position < fast_position

        naive_seen = [int(r[0]) for r in await pg_store.pool.fetch(naive_sql, 0)]
        assert naive_seen == [fast_position]
        # The store holds the later commit back while an earlier position may still commit.
        assert await pg_store.read_batch(0, 100) == []
        assert await pg_store.head_position() == 0

        await slow.commit()

        naive_seen += [int(r[0]) for r in await pg_store.pool.fetch(naive_sql, naive_seen[-1])]
        assert naive_seen == [fast_position], "the naive reader resumed after the late commit"
        assert slow_position not in naive_seen  # skipped, for good

        assert [e.position for e in await pg_store.read_batch(0, 100)] == [slow_position, fast_position]
        assert await pg_store.head_position() == fast_position
    finally:
        await slow_conn.close()
        await fast_conn.close()


# --- append_events guards its precondition ----------------------------------------------------


async def _insert_elsewhere(conn: asyncpg.Connection) -> None:
    await conn.execute("insert into touchline.checkpoints (name) values ('someone')")


async def _take_an_xid(conn: asyncpg.Connection) -> None:
    await conn.fetchval("select pg_current_xact_id()")


async def _append_once(conn: asyncpg.Connection) -> None:
    await raw_append(conn, "lead-a", status(uuid.uuid4()))


@pytest.mark.parametrize("first_write", [_insert_elsewhere, _take_an_xid, _append_once])
async def test_append_events_refuses_to_run_after_another_write_in_its_transaction(
    pg_store: PostgresEventStore,
    database_url: str,
    first_write: Callable[[asyncpg.Connection], Awaitable[None]],
) -> None:
    conn = await raw_connection(database_url)
    try:
        tx = conn.transaction()
        await tx.start()
        await first_write(conn)
        with pytest.raises(asyncpg.ObjectNotInPrerequisiteStateError, match="must be the first write") as info:
            await raw_append(conn, "lead-b", status(uuid.uuid4()))
        assert "gap-safe" in (info.value.hint or "")
        await tx.rollback()
    finally:
        await conn.close()
    assert await pg_store.stream_version("lead-b") == 0
    assert await pg_store.read_batch(0, 10) == []


async def test_append_events_runs_after_reads_in_its_transaction(
    pg_store: PostgresEventStore, database_url: str
) -> None:
    conn = await raw_connection(database_url)
    try:
        async with conn.transaction():
            await conn.fetchval("select count(*) from touchline.events")
            position = await raw_append(conn, "lead-c", status(uuid.uuid4()))
    finally:
        await conn.close()
    assert [e.position for e in await pg_store.read_batch(0, 10)] == [position]


# --- tailing: woken by NOTIFY, and not fooled by a rollback ---------------------------------------


def _watch(
    monkeypatch: pytest.MonkeyPatch, store: PostgresEventStore
) -> tuple[list[int], Callable[[bool], Awaitable[None]]]:
    """Count the tail's reads, and let the test wait until it has decided to wait (held back or idle)."""
    reads: list[int] = []
    decided: dict[bool, anyio.Event] = {True: anyio.Event(), False: anyio.Event()}
    read_batch, held_back = store.read_batch, store._held_back

    async def counting_read_batch(after: int, limit: int, filter: object = None) -> list[Envelope]:
        reads.append(after)
        return await read_batch(after, limit)

    async def signalling_held_back(position: int) -> bool:
        answer = await held_back(position)
        decided[answer].set()
        return answer

    async def until(answer: bool) -> None:
        await decided[answer].wait()
        decided[answer] = anyio.Event()

    monkeypatch.setattr(store, "read_batch", counting_read_batch)
    monkeypatch.setattr(store, "_held_back", signalling_held_back)
    return reads, until


async def test_an_idle_tail_is_woken_by_notify_not_by_polling(
    pg_store: PostgresEventStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    reads, until = _watch(monkeypatch, pg_store)
    send, receive = anyio.create_memory_object_stream[int](math.inf)
    with receive, anyio.fail_after(10):
        async with anyio.create_task_group() as tg:
            await tg.start(tail_into, pg_store, send)
            # Empty log, nothing committed above us: the tail now waits on NOTIFY with no timeout.
            await until(False)
            assert reads == [0]
            lead_id, stream = lead()
            result = await pg_store.append(stream, [status(lead_id)])
            assert await receive.receive() == result.first_position
            assert reads == [0, 0], "the tail read more than once to find one notified event"
            tg.cancel_scope.cancel()


@contextlib.asynccontextmanager
async def held_back(
    pg_store: PostgresEventStore, database_url: str
) -> AsyncGenerator[tuple[asyncpg.transaction.Transaction, int, int], None]:
    """A slow transaction holds a lower position open while a later append has committed.

    Yields (the slow transaction, its position, the committed append's position).
    """
    slow_conn = await raw_connection(database_url)
    try:
        slow = slow_conn.transaction()
        await slow.start()
        slow_position = await raw_append(slow_conn, "lead-slow", status(uuid.uuid4()))
        lead_id, stream = lead()
        fast_position = (await pg_store.append(stream, [status(lead_id)])).first_position
        yield slow, slow_position, fast_position
    finally:
        await slow_conn.close()


async def test_a_tail_held_back_by_an_open_transaction_delivers_once_it_rolls_back(
    pg_store: PostgresEventStore, database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    _reads, until = _watch(monkeypatch, pg_store)
    async with held_back(pg_store, database_url) as (slow, slow_position, fast_position):
        assert slow_position < fast_position
        send, receive = anyio.create_memory_object_stream[int](math.inf)
        with receive, anyio.fail_after(10):
            async with anyio.create_task_group() as tg:
                await tg.start(tail_into, pg_store, send)
                await until(True)  # it read nothing, and knows a committed event waits above it
                assert drain(receive) == []
                # A rollback sends no notification: the tail must find out by itself.
                await slow.rollback()
                assert await receive.receive() == fast_position
                tg.cancel_scope.cancel()
            assert drain(receive) == []


async def test_a_tail_held_back_by_an_open_transaction_delivers_both_in_order_once_it_commits(
    pg_store: PostgresEventStore, database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    _reads, until = _watch(monkeypatch, pg_store)
    async with held_back(pg_store, database_url) as (slow, slow_position, fast_position):
        send, receive = anyio.create_memory_object_stream[int](math.inf)
        with receive, anyio.fail_after(10):
            async with anyio.create_task_group() as tg:
                await tg.start(tail_into, pg_store, send)
                await until(True)
                assert drain(receive) == []
                await slow.commit()
                assert await receive_until(receive, fast_position) == [slow_position, fast_position]
                tg.cancel_scope.cancel()


async def test_a_tail_whose_listen_connection_is_lost_still_delivers(
    pg_store: PostgresEventStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    _reads, until = _watch(monkeypatch, pg_store)
    send, receive = anyio.create_memory_object_stream[int](math.inf)
    with receive, anyio.fail_after(10):
        async with anyio.create_task_group() as tg:
            await tg.start(tail_into, pg_store, send)
            await until(False)  # idle: only a NOTIFY on its LISTEN connection can wake it
            # A failover, an idle-session timeout, an operator: the LISTEN connection goes away.
            killed = await pg_store.pool.fetchval(
                "select count(pg_terminate_backend(pid)) from pg_stat_activity "
                "where datname = current_database() and query like 'LISTEN %'"
            )
            assert killed == 1
            lead_id, stream = lead()
            result = await pg_store.append(stream, [status(lead_id)])
            assert await receive.receive() == result.first_position
            tg.cancel_scope.cancel()
