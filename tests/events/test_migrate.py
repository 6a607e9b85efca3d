"""Migrations: applied once each, in order, recorded, and safe to run concurrently."""

from __future__ import annotations

import anyio
import asyncpg
import pytest

from events.errors import MigrationError
from events.migrate import load_migrations, migrate


def test_migration_files_are_ordered_and_named() -> None:
    migrations = load_migrations()
    assert migrations[0].name == "0001_event_log.sql"
    versions = [m.version for m in migrations]
    assert versions == sorted(set(versions))


async def test_concurrent_migrators_apply_each_file_once(empty_database: str) -> None:
    results: list[list[str]] = []

    async def run() -> None:
        conn = await asyncpg.connect(empty_database)
        try:
            results.append(await migrate(conn))
        finally:
            await conn.close()

    async with anyio.create_task_group() as tg:
        for _ in range(4):
            tg.start_soon(run)
    applied = [names for names in results if names]
    assert len(applied) == 1
    assert applied[0] == [m.name for m in load_migrations()]
    conn = await asyncpg.connect(empty_database)
    try:
        rows = await conn.fetch("select version, name from touchline.schema_migrations order by version")
        assert [r["name"] for r in rows] == applied[0]
        assert await migrate(conn) == []
    finally:
        await conn.close()


async def test_an_edited_applied_migration_is_refused(database_url: str) -> None:
    conn = await asyncpg.connect(database_url)
    try:
        await conn.execute("update touchline.schema_migrations set checksum = 'x' where version = 1")
        with pytest.raises(MigrationError, match="was changed after it was applied"):
            await migrate(conn)
    finally:
        await conn.close()


async def test_an_accounts_audit_and_a_correlation_are_found_by_index_not_by_walking_the_log(
    database_url: str,
) -> None:
    # 20,000 events over 200 accounts: the shapes GET /api/audit sends must not scan them all.
    conn = await asyncpg.connect(database_url)
    try:
        await conn.execute(
            "insert into touchline.events (stream_id, version, event_id, event_type, account_id, correlation_id,"
            " data, recorded_at, hash)"
            " select 'lead-' || g, 1, gen_random_uuid(), 'LeadIngested',"
            " ('00000000-0000-4000-8000-' || lpad((g % 200)::text, 12, '0'))::uuid, gen_random_uuid(),"
            " '{}'::jsonb, now(), '\\x00' from generate_series(1, 20000) g"
        )
        await conn.execute("analyze touchline.events")
        account = "00000000-0000-4000-8000-000000000007"
        where = "account_id = $1::uuid and position > 0"
        shapes = {
            "events_account_position_idx": (f"{where} order by position limit 101", [account]),
            "events_correlation_idx": (f"{where} and correlation_id = $2::uuid order by position limit 101", [
                account,
                await conn.fetchval("select correlation_id from touchline.events order by position desc limit 1"),
            ]),
        }  # fmt: skip
        for index, (condition, args) in shapes.items():
            plan = "\n".join(
                r[0] for r in await conn.fetch(f"explain select * from touchline.events where {condition}", *args)
            )
            assert index in plan, plan
    finally:
        await conn.close()
