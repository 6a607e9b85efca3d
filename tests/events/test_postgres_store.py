"""The PostgreSQL store against the store contract, plus what only PostgreSQL can promise."""

from __future__ import annotations

import uuid

import anyio
import asyncpg
import msgspec
import pytest

from events.catalog import LeadStatusChanged
from events.errors import DatabaseUnavailable, LogError, StoreClosed
from events.postgres import PostgresEventStore, open_postgres_store
from events.store import NO_STREAM, EventStore
from tests.events.store_contract import ACCOUNT, StoreContract, Tamper, lead, status


class TestPostgresEventStore(StoreContract):
    @pytest.fixture
    async def store(self, pg_store: PostgresEventStore) -> EventStore:
        return pg_store

    @pytest.fixture
    def tamper(self) -> Tamper:
        async def tamper(store: EventStore, position: int, data: bytes) -> None:
            assert isinstance(store, PostgresEventStore)
            await _superuser_update(
                store, "update touchline.events set data = $2::jsonb where position = $1", position, data
            )

        return tamper


async def _superuser_update(store: PostgresEventStore, sql: str, *args: object) -> None:
    """What an attacker with the superuser password could do: switch the guard off and write."""
    async with store.pool.acquire() as conn, conn.transaction():
        await conn.execute("alter table touchline.events disable trigger events_no_update")
        await conn.execute(sql, *args)
        await conn.execute("alter table touchline.events enable always trigger events_no_update")


# --- append-only, enforced by the database -----------------------------------------------------


@pytest.mark.parametrize(
    "statement",
    [
        "update touchline.events set event_type = 'X'",
        "delete from touchline.events",
        "truncate touchline.events",
    ],
)
async def test_the_database_refuses_to_change_the_log(pg_store: PostgresEventStore, statement: str) -> None:
    lead_id, stream = lead()
    await pg_store.append(stream, [status(lead_id)])
    with pytest.raises(asyncpg.InsufficientPrivilegeError, match="append-only"):
        await pg_store.pool.execute(statement)
    with pytest.raises(asyncpg.InsufficientPrivilegeError, match="append-only"):
        await pg_store.pool.execute(
            "set session_replication_role = replica; " + statement + "; set session_replication_role = origin"
        )
    assert len(await pg_store.read_stream(stream)) == 1


async def test_seals_cannot_be_changed_either(pg_store: PostgresEventStore) -> None:
    lead_id, stream = lead()
    await pg_store.append(stream, [status(lead_id)])
    assert await pg_store.seal() is not None
    with pytest.raises(asyncpg.InsufficientPrivilegeError):
        await pg_store.pool.execute("delete from touchline.seals")


# --- group commit ---------------------------------------------------------------------------


async def test_concurrent_appends_are_merged_into_fewer_transactions(pg_store: PostgresEventStore) -> None:
    streams = [lead() for _ in range(200)]
    async with anyio.create_task_group() as tg:
        for lead_id, stream in streams:
            tg.start_soon(pg_store.append, stream, [status(lead_id)])
    assert pg_store.requests_committed == 200
    assert pg_store.batches_committed < 200
    for _, stream in streams:
        assert await pg_store.stream_version(stream) == 1


async def test_a_conflict_inside_a_group_fails_only_its_own_append(pg_store: PostgresEventStore) -> None:
    lead_id, stream = lead()
    await pg_store.append(stream, [status(lead_id)])
    results: dict[str, str] = {}

    async def good(i: int) -> None:
        lid, s = lead()
        await pg_store.append(s, [status(lid)], expected_version=NO_STREAM)
        results[s] = "ok"

    async def bad() -> None:
        try:
            await pg_store.append(stream, [status(lead_id)], expected_version=7)
        except LogError as exc:
            results[stream] = type(exc).__name__

    async with anyio.create_task_group() as tg:
        for i in range(30):
            tg.start_soon(good, i)
        tg.start_soon(bad)
    assert results.pop(stream) == "ConcurrencyError"
    assert set(results.values()) == {"ok"} and len(results) == 30


async def test_appends_from_two_store_instances_to_one_stream_stay_consistent(database_url: str) -> None:
    """Two processes' worth of writers: optimistic heads, retried on a unique violation."""
    lead_id, stream = lead()
    async with open_postgres_store(database_url) as a, open_postgres_store(database_url) as b:

        async def writer(store: PostgresEventStore) -> None:
            for _ in range(20):
                await store.append(stream, [status(lead_id)])

        async with anyio.create_task_group() as tg:
            for store in (a, b, a, b):
                tg.start_soon(writer, store)
        events = await a.read_stream(stream)
        assert [e.version for e in events] == list(range(1, 81))
        assert (await a.verify()).ok


# --- tamper evidence beyond a changed event -----------------------------------------------------


async def test_verify_detects_a_removed_event(pg_store: PostgresEventStore) -> None:
    lead_id, stream = lead()
    await pg_store.append(stream, [status(lead_id) for _ in range(3)])
    victim = (await pg_store.read_stream(stream))[1]
    async with pg_store.pool.acquire() as conn, conn.transaction():
        await conn.execute("alter table touchline.events disable trigger events_no_update")
        await conn.execute("delete from touchline.events where position = $1", victim.position)
        await conn.execute("alter table touchline.events enable always trigger events_no_update")
    report = await pg_store.verify()
    assert report.first_bad is not None
    assert report.first_bad.version == 3 and "removed" in report.first_bad.problem


async def test_verify_detects_a_rewritten_chain_through_the_seal(pg_store: PostgresEventStore) -> None:
    lead_id, stream = lead()
    await pg_store.append(stream, [status(lead_id) for _ in range(3)])
    assert await pg_store.seal() is not None
    last = (await pg_store.read_stream(stream))[-1]
    # A careful forger rewrites the last event *and* recomputes its hash: the chain alone looks fine.
    forged = msgspec.json.encode(status(lead_id, "suppressed"))
    await _superuser_update(
        pg_store,
        """update touchline.events e set data = $2::jsonb,
               hash = touchline.event_hash(p.hash, e.event_id, e.stream_id, e.version, e.event_type, e.account_id,
                                           e.correlation_id, e.causation_id, $2::jsonb, e.recorded_at)
             from touchline.events p
            where e.position = $1 and p.stream_id = e.stream_id and p.version = e.version - 1""",
        last.position,
        forged,
    )
    report = await pg_store.verify()
    assert report.first_bad is not None
    assert "seal" in report.first_bad.problem


async def test_seal_covers_only_what_is_safe_to_read(pg_store: PostgresEventStore) -> None:
    for _ in range(5):
        lead_id, stream = lead()
        await pg_store.append(stream, [status(lead_id)])
    first = await pg_store.seal()
    assert first is not None
    assert await pg_store.seal() is None  # nothing new to seal
    lead_id, stream = lead()
    await pg_store.append(stream, [status(lead_id)])
    assert await pg_store.seal(min_events=2) is None
    assert await pg_store.seal() is not None
    report = await pg_store.verify()
    assert report.ok and report.seals_checked == 2


# --- bad configuration and lifecycle ---------------------------------------------------------


async def test_unreachable_database_is_one_clear_error() -> None:
    with pytest.raises(DatabaseUnavailable, match=r"cannot reach PostgreSQL at postgresql://u:\*\*\*@127\.0\.0\.1:1/x"):
        async with open_postgres_store("postgresql://u:secret@127.0.0.1:1/x"):
            pass


async def test_malformed_dsn_is_one_clear_error() -> None:
    with pytest.raises(DatabaseUnavailable, match="cannot reach PostgreSQL"):
        async with open_postgres_store("postgresql://[broken"):
            pass


async def test_a_closed_store_refuses_appends(database_url: str) -> None:
    async with open_postgres_store(database_url) as store:
        pass
    with pytest.raises(StoreClosed):
        await store.append("lead-1", [LeadStatusChanged(lead_id=uuid.uuid4(), account_id=ACCOUNT, status="new")])


async def test_appends_queued_at_close_still_complete(database_url: str) -> None:
    results = []
    async with open_postgres_store(database_url) as store, anyio.create_task_group() as tg:
        for _ in range(50):
            lead_id, stream = lead()

            async def one(lid: uuid.UUID = lead_id, s: str = stream) -> None:
                results.append(await store.append(s, [status(lid)]))

            tg.start_soon(one)
    assert len(results) == 50
