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
