"""Applies the ordered SQL files in migrations/ once each, recorded, safe to run concurrently."""

from __future__ import annotations

import hashlib
import importlib.resources
import itertools
import re
from typing import Final

import asyncpg
import msgspec

from events.errors import MigrationError

_LOCK_KEY: Final = 7245318290400
_NAME = re.compile(r"^(\d{4})_[a-z0-9_]+\.sql$")


class Migration(msgspec.Struct, frozen=True):
    version: int
    name: str
    sql: str

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.sql.encode()).hexdigest()


def load_migrations() -> list[Migration]:
    found: list[Migration] = []
    for entry in importlib.resources.files("migrations").iterdir():
        if not entry.name.endswith(".sql"):
            continue
        m = _NAME.match(entry.name)
        if m is None:
            raise MigrationError(f"migration file {entry.name!r} must be named NNNN_lower_snake.sql")
        found.append(Migration(int(m.group(1)), entry.name, entry.read_text(encoding="utf-8")))
    found.sort(key=lambda m: m.version)
    for a, b in itertools.pairwise(found):
        if a.version == b.version:
            raise MigrationError(f"two migrations share version {a.version}: {a.name} and {b.name}")
    return found


async def migrate(conn: asyncpg.Connection) -> list[str]:
    """Apply what is missing; returns the names applied. Concurrent callers wait for each other."""
    migrations = load_migrations()
    await conn.execute("select pg_advisory_lock($1)", _LOCK_KEY)
    try:
        await conn.execute(
            "create schema if not exists touchline; "
            "create table if not exists touchline.schema_migrations ("
            " version int primary key, name text not null, checksum text not null,"
            " applied_at timestamptz not null default now())"
        )
        applied = {
            r["version"]: (r["name"], r["checksum"])
            for r in await conn.fetch("select version, name, checksum from touchline.schema_migrations")
        }
        done: list[str] = []
        for m in migrations:
            if m.version in applied:
                name, checksum = applied[m.version]
                if checksum != m.checksum:
                    raise MigrationError(
                        f"migration {m.name} was changed after it was applied (as {name}); "
                        "never edit an applied migration: add a new one"
                    )
                continue
            try:
                async with conn.transaction():
                    await conn.execute(m.sql)
                    await conn.execute(
                        "insert into touchline.schema_migrations (version, name, checksum) values ($1, $2, $3)",
                        m.version,
                        m.name,
                        m.checksum,
                    )
            except asyncpg.PostgresError as exc:
                raise MigrationError(f"migration {m.name} failed and was rolled back: {exc}") from exc
            done.append(m.name)
        return done
    finally:
        await conn.execute("select pg_advisory_unlock($1)", _LOCK_KEY)
