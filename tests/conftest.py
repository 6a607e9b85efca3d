"""Real PostgreSQL and NATS JetStream for every test, started here unless the environment names them."""

from __future__ import annotations

import contextlib
import itertools
import os
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import asyncpg
import pytest
import structlog
from nats.aio.client import Client as NATS
from nats.js.errors import NotFoundError

from events.bus import connect
from events.migrate import migrate
from events.postgres import PostgresEventStore, open_postgres_store
from events.settings import Settings
from gateways.embedded import NatsServer, start_postgres, stop_postgres, with_database

_counter = itertools.count()


@pytest.fixture(autouse=True)
def _default_logging() -> None:
    """Each test starts from structlog's defaults: a CLI test that set the level to warning must
    not hide the info lines (the spec's log markers) another test captures."""
    structlog.reset_defaults()


@pytest.fixture(scope="session")
def server_dsn(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A PostgreSQL server: TOUCHLINE_DATABASE_URL, or an embedded one for this test session."""
    if url := os.environ.get("TOUCHLINE_DATABASE_URL", "").strip():
        yield url
        return
    handle, dsn = start_postgres(tmp_path_factory.mktemp("pg") / "data")
    try:
        yield dsn
    finally:
        stop_postgres(handle)


@pytest.fixture(scope="session")
def nats_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A NATS server with JetStream: TOUCHLINE_NATS_URL, or one started for this test session."""
    if url := os.environ.get("TOUCHLINE_NATS_URL", "").strip():
        yield url
        return
    server = NatsServer(tmp_path_factory.mktemp("nats"))
    server.start()
    try:
        yield server.url
    finally:
        server.stop()


@pytest.fixture(scope="session")
def template_database(server_dsn: str) -> Iterator[str]:
    """A database with every migration applied, copied for each test (fast, isolated)."""
    import anyio

    name = f"tl_template_{os.getpid()}"

    async def create() -> None:
        admin = await asyncpg.connect(server_dsn)
        try:
            await admin.execute(f'drop database if exists "{name}"')
            await admin.execute(f'create database "{name}"')
        finally:
            await admin.close()
        conn = await asyncpg.connect(with_database(server_dsn, name))
        try:
            await migrate(conn)
        finally:
            await conn.close()

    async def drop() -> None:
        admin = await asyncpg.connect(server_dsn)
        try:
            await admin.execute(f'drop database if exists "{name}" with (force)')
        finally:
            await admin.close()

    anyio.run(create)
    yield name
    anyio.run(drop)


async def _admin(server_dsn: str, statement: str) -> None:
    admin = await asyncpg.connect(server_dsn)
    try:
        await admin.execute(statement)
    finally:
        await admin.close()


@pytest.fixture
async def database_url(server_dsn: str, template_database: str) -> AsyncIterator[str]:
    """A fresh, migrated database for one test."""
    name = f"tl_test_{os.getpid()}_{next(_counter)}"
    await _admin(server_dsn, f'create database "{name}" template "{template_database}"')
    yield with_database(server_dsn, name)
    await _admin(server_dsn, f'drop database if exists "{name}" with (force)')


@pytest.fixture
async def empty_database(server_dsn: str) -> AsyncIterator[str]:
    """A fresh database without the event log (not migrated)."""
    name = f"tl_empty_{os.getpid()}_{next(_counter)}"
    await _admin(server_dsn, f'create database "{name}"')
    yield with_database(server_dsn, name)
    await _admin(server_dsn, f'drop database if exists "{name}" with (force)')


@pytest.fixture
def settings(tmp_path: Path, database_url: str, nats_url: str) -> Settings:
    """Settings for one test: its own database, and its own subjects and stream on the shared NATS."""
    tag = uuid.uuid4().hex[:10]
    return Settings(
        data_dir=tmp_path / "data",
        database_url=database_url,
        nats_url=nats_url,
        subject_prefix=f"t{tag}",
        stream_name=f"T{tag.upper()}_EVENTS",
        stream_max_bytes=256 * 1024**2,
    )


@pytest.fixture
async def pg_store(database_url: str) -> AsyncIterator[PostgresEventStore]:
    async with open_postgres_store(database_url) as store:
        yield store


@pytest.fixture
async def nc(nats_url: str, settings: Settings) -> AsyncIterator[NATS]:
    client = await connect(nats_url, name="touchline-tests")
    try:
        yield client
    finally:
        js = client.jetstream()
        with contextlib.suppress(NotFoundError):  # the test may not have created it
            await js.delete_stream(settings.stream_name)
        await client.close()
