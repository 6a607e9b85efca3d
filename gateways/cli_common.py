"""What every `touchline` command group shares: consoles, options, settings, running, the database."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Annotated, Any, Final, TypeVar
from uuid import UUID

import anyio
import asyncpg
import typer
from rich.console import Console

from events.errors import DatabaseUnavailable, TouchlineError
from events.migrate import migrate
from events.postgres import PostgresEventStore, open_postgres_store, redact_dsn
from events.settings import Settings
from gateways.embedded import open_infrastructure, with_database

out = Console()
err = Console(stderr=True)

Account = Annotated[str, typer.Option("--account", help="The account (tenant) uuid")]

DataDir = Annotated[
    Path | None,
    typer.Option(
        "--data-dir", help="Where embedded servers keep their data [env TOUCHLINE_DATA_DIR; default ./.touchline]"
    ),
]

T = TypeVar("T")


def load_settings(data_dir: Path | None) -> Settings:
    """The settings from the environment; a bad value is one line on stderr and exit code 2."""
    try:
        return Settings.from_env(data_dir=data_dir)
    except TouchlineError as exc:
        err.print(f"[bold red]error:[/] {exc}", highlight=False)
        raise typer.Exit(2) from None


# uvloop (libuv) runs the event loop: every actor, the relay, asyncpg and nats-py share one loop
# per process, and its per-turn cost is what caps throughput on a busy process.
LOOP_OPTIONS: Final = {"use_uvloop": True}


def run(main: Callable[[], Awaitable[T]]) -> T:
    """Run a coroutine; a TouchlineError becomes one clear line and exit code 2."""
    try:
        return anyio.run(main, backend_options=LOOP_OPTIONS)
    except TouchlineError as exc:
        err.print(f"[bold red]error:[/] {exc}", highlight=False)
        raise typer.Exit(2) from None
    except BaseExceptionGroup as group:
        # A task group wraps what failed in it: one TouchlineError is still one clear line.
        leaf: BaseException = group
        while isinstance(leaf, BaseExceptionGroup) and len(leaf.exceptions) == 1:
            leaf = leaf.exceptions[0]
        if isinstance(leaf, TouchlineError):
            err.print(f"[bold red]error:[/] {leaf}", highlight=False)
            raise typer.Exit(2) from None
        raise
    except (asyncpg.UndefinedTableError, asyncpg.InvalidSchemaNameError) as exc:
        err.print(f"[bold red]error:[/] the database has no Touchline event log ({exc}): run `touchline migrate`")
        raise typer.Exit(2) from None


@contextlib.asynccontextmanager
async def database(settings: Settings) -> AsyncIterator[str]:
    """The configured database as it is, or the embedded one, migrated (so a fresh data dir works).

    Reading commands never change a configured database's schema: an auditor's role may not be
    allowed to, and should not have to.
    """
    async with open_infrastructure(settings, with_nats=False) as infra:
        if infra.embedded_postgres:
            await migrate_database(infra.database_url)
        yield infra.database_url


async def migrate_database(dsn: str) -> list[str]:
    conn = await connect(dsn)
    try:
        return await migrate(conn)
    finally:
        await conn.close()


async def connect(dsn: str) -> asyncpg.Connection:
    try:
        return await asyncpg.connect(dsn)
    except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError, ValueError) as exc:
        raise DatabaseUnavailable(redact_dsn(dsn), str(exc) or type(exc).__name__) from exc


@contextlib.asynccontextmanager
async def bench_database(server_dsn: str) -> AsyncIterator[str]:
    """A fresh, migrated database on the server for one benchmark run, dropped afterwards."""
    name = f"touchline_bench_{uuid.uuid4().hex[:12]}"
    admin = await connect(server_dsn)
    try:
        await admin.execute(f'create database "{name}"')
    finally:
        await admin.close()
    dsn = with_database(server_dsn, name)
    try:
        await migrate_database(dsn)
        yield dsn
    finally:
        admin = await connect(server_dsn)
        try:
            await admin.execute(f'drop database if exists "{name}" with (force)')
        finally:
            await admin.close()


def with_store(data_dir: Path | None, main: Callable[[PostgresEventStore], Awaitable[T]]) -> T:
    """Run `main` with an event store on the configured (or embedded, migrated) database."""
    settings = load_settings(data_dir)

    async def command() -> T:
        async with database(settings) as dsn, open_postgres_store(dsn, writers=1) as store:
            return await main(store)

    return run(command)


def uuid_option(name: str, value: str) -> UUID:
    try:
        return UUID(value)
    except ValueError:
        raise typer.BadParameter(f"{name} takes an account uuid, got {value!r}") from None


def cell(value: Any) -> str:
    """One value as a table shows it: ∅ for NULL, bytes as text where they are."""
    if value is None:
        return "∅"
    if isinstance(value, bytes | bytearray | memoryview):
        raw = bytes(value)
        try:
            return raw.decode()
        except UnicodeDecodeError:
            return "\\x" + raw.hex()
    return str(value)
