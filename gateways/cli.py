"""The `touchline` command line: run the system, migrate, read and audit the log, benchmark."""

from __future__ import annotations

import contextlib
import gc
import json
import signal
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Annotated, Any, NoReturn, TypeVar
from uuid import UUID

import anyio
import asyncpg
import msgspec
import structlog
import typer
from rich.console import Console
from rich.table import Table

from events.bench import run_log_bench
from events.bus import connect as connect_bus
from events.envelope import Envelope, envelope_encoder
from events.errors import DatabaseUnavailable, TouchlineError
from events.migrate import migrate
from events.postgres import open_postgres_store, redact_dsn
from events.relay import OutboxRelay
from events.settings import Settings
from events.store import EventFilter
from gateways.embedded import open_infrastructure, with_database
from gateways.logs import configure_logging

log = structlog.get_logger("touchline")
out = Console()
err = Console(stderr=True)

app = typer.Typer(help="Touchline: leads, cadences and an AI voice agent, on an event log.", no_args_is_help=True)
events_app = typer.Typer(help="Read the event log.", no_args_is_help=True)
audit_app = typer.Typer(help="Audit the event log: histories and tamper evidence.", no_args_is_help=True)
bench_app = typer.Typer(help="Benchmarks, each printed beside its baseline.", no_args_is_help=True)
app.add_typer(events_app, name="events")
app.add_typer(audit_app, name="audit")
app.add_typer(bench_app, name="bench")

DataDir = Annotated[
    Path | None,
    typer.Option(
        "--data-dir", help="Where embedded servers keep their data [env TOUCHLINE_DATA_DIR; default ./.touchline]"
    ),
]

# Every role `touchline up` knows; later parts add actors and the HTTP server.
ROLES: dict[str, str] = {"relay": "publishes the event log to JetStream"}

T = TypeVar("T")


def _settings(data_dir: Path | None) -> Settings:
    try:
        return Settings.from_env(data_dir=data_dir)
    except TouchlineError as exc:
        err.print(f"[bold red]error:[/] {exc}", highlight=False)
        raise typer.Exit(2) from None


def _run(main: Callable[[], Awaitable[T]]) -> T:
    """Run a coroutine; a TouchlineError becomes one clear line and exit code 2."""
    try:
        return anyio.run(main)
    except TouchlineError as exc:
        err.print(f"[bold red]error:[/] {exc}", highlight=False)
        raise typer.Exit(2) from None
    except (asyncpg.UndefinedTableError, asyncpg.InvalidSchemaNameError) as exc:
        err.print(f"[bold red]error:[/] the database has no Touchline event log ({exc}): run `touchline migrate`")
        raise typer.Exit(2) from None


@contextlib.asynccontextmanager
async def _database(settings: Settings) -> AsyncIterator[str]:
    """The configured database as it is, or the embedded one, migrated (so a fresh data dir works).

    Reading commands never change a configured database's schema: an auditor's role may not be
    allowed to, and should not have to.
    """
    async with open_infrastructure(settings, with_nats=False) as infra:
        if infra.embedded_postgres:
            await _migrate(infra.database_url)
        yield infra.database_url


async def _migrate(dsn: str) -> list[str]:
    conn = await _connect(dsn)
    try:
        return await migrate(conn)
    finally:
        await conn.close()


async def _connect(dsn: str) -> asyncpg.Connection:
    try:
        return await asyncpg.connect(dsn)
    except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError, ValueError) as exc:
        raise DatabaseUnavailable(redact_dsn(dsn), str(exc) or type(exc).__name__) from exc


# --- up ----------------------------------------------------------------------------------


@app.command()
def up(
    data_dir: DataDir = None,
    role: Annotated[
        str | None, typer.Option("--role", help=f"Run only these roles, comma-separated ({', '.join(ROLES)})")
    ] = None,
) -> None:
    """Start servers (embedded unless configured), migrate, and run every role until Ctrl-C."""
    configure_logging()
    settings = _settings(data_dir)
    roles = _parse_roles(role)
    _run(lambda: _up(settings, roles))


def _parse_roles(value: str | None) -> set[str]:
    if not value:
        return set(ROLES)
    roles = {r.strip() for r in value.split(",") if r.strip()}
    unknown = roles - set(ROLES)
    if unknown:
        err.print(f"[bold red]error:[/] unknown role {', '.join(sorted(unknown))}; known roles: {', '.join(ROLES)}")
        raise typer.Exit(2)
    return roles


async def _up(settings: Settings, roles: set[str]) -> None:
    started = time.monotonic()
    async with open_infrastructure(settings) as infra:
        applied = await _migrate(infra.database_url)
        log.info("component_started", component="migrations", applied=applied)
        nc = await connect_bus(infra.nats_url, name="touchline-up", reconnect_forever=True)
        try:
            with anyio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
                async with open_postgres_store(infra.database_url) as store, anyio.create_task_group() as tg:
                    log.info("component_started", component="event_store")
                    if "relay" in roles:
                        relay = OutboxRelay(store, nc, settings)
                        await tg.start(relay.run)
                        log.info("component_started", component="relay", stream=settings.stream_name)
                    log.info(
                        "touchline_ready",
                        seconds=round(time.monotonic() - started, 2),
                        roles=sorted(roles),
                        database=redact_dsn(infra.database_url),
                        nats=infra.nats_url,
                    )
                    async for signum in signals:
                        log.info("touchline_stopping", signal=signal.Signals(signum).name)
                        tg.cancel_scope.cancel()
                        break
        finally:
            with anyio.CancelScope(shield=True):
                await nc.close()
    log.info("touchline_stopped")


# --- migrate, sql -----------------------------------------------------------------------------


@app.command("migrate")
def migrate_command(data_dir: DataDir = None) -> None:
    """Apply the SQL migrations that have not been applied yet."""
    configure_logging()
    settings = _settings(data_dir)

    async def main() -> None:
        async with open_infrastructure(settings, with_nats=False) as infra:
            applied = await _migrate(infra.database_url)
        out.print(f"applied {len(applied)} migration(s)" + (": " + ", ".join(applied) if applied else ": up to date"))

    _run(main)


@app.command()
def sql(query: Annotated[str, typer.Argument(help="SQL to run")], data_dir: DataDir = None) -> None:
    """Run SQL against the configured or embedded database and print the result as a table."""
    configure_logging(level="warning")
    settings = _settings(data_dir)

    async def main() -> None:
        async with _database(settings) as dsn:
            conn = await _connect(dsn)
            try:
                await _run_sql(conn, query)
            finally:
                await conn.close()

    _run(main)


async def _run_sql(conn: asyncpg.Connection, query: str) -> None:
    try:
        stmt = await conn.prepare(query)
        columns = [a.name for a in stmt.get_attributes()]
        if not columns:  # a command (insert, create, ...): print its status
            out.print(await conn.execute(query))
            return
        rows = await stmt.fetch()
    except asyncpg.PostgresError as exc:
        if "cannot insert multiple commands" not in str(exc):
            _sql_error(exc)
        try:  # several statements: run them as a script
            out.print(await conn.execute(query))
        except asyncpg.PostgresError as script_exc:
            _sql_error(script_exc)
        return
    table = Table(*columns)
    for row in rows:
        table.add_row(*[_cell(v) for v in row])
    out.print(table)
    out.print(f"({len(rows)} row{'s' if len(rows) != 1 else ''})")


def _sql_error(exc: asyncpg.PostgresError) -> NoReturn:
    err.print(f"[bold red]error:[/] PostgreSQL says: {exc}", highlight=False)
    raise typer.Exit(1)


def _cell(value: Any) -> str:
    if value is None:
        return "∅"
    if isinstance(value, bytes | bytearray | memoryview):
        raw = bytes(value)
        try:
            return raw.decode()
        except UnicodeDecodeError:
            return "\\x" + raw.hex()
    return str(value)


# --- events tail ------------------------------------------------------------------------


@events_app.command("tail")
def events_tail(
    stream: Annotated[str | None, typer.Option(help="Only this stream")] = None,
    type_: Annotated[list[str] | None, typer.Option("--type", help="Only these event types (repeatable)")] = None,
    account: Annotated[str | None, typer.Option(help="Only this account id")] = None,
    follow: Annotated[
        bool, typer.Option("--follow", "-f", help="Keep printing new events as they are committed")
    ] = False,
    from_position: Annotated[int, typer.Option("--from", help="Start after this global position")] = 0,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON envelope per line")] = False,
    data_dir: DataDir = None,
) -> None:
    """Print the log (or a filtered part of it), oldest first; --follow waits for more."""
    configure_logging(level="warning")
    settings = _settings(data_dir)
    account_id = _uuid_option("--account", account) if account else None
    flt = EventFilter(types=frozenset(type_) if type_ else None, account_id=account_id, stream_id=stream)

    async def main() -> None:
        async with _database(settings) as dsn, open_postgres_store(dsn, writers=1) as store:
            source = store.tail if follow else store.read_all
            with contextlib.suppress(KeyboardInterrupt, anyio.get_cancelled_exc_class()):
                async for batch in source(from_position, filter=flt):
                    for env in batch:
                        _print_event(env, as_json)

    _run(main)


def _uuid_option(name: str, value: str) -> UUID:
    try:
        return UUID(value)
    except ValueError:
        raise typer.BadParameter(f"{name} takes an account uuid, got {value!r}") from None


def _print_event(env: Envelope, as_json: bool) -> None:
    if as_json:
        sys.stdout.write(envelope_encoder.encode(env).decode() + "\n")
        sys.stdout.flush()
        return
    out.print(
        f"[dim]{env.position:>8}[/] {env.recorded_at:%Y-%m-%d %H:%M:%S} [cyan]{env.stream_id}[/]@{env.version} "
        f"[bold]{env.type}[/] {_data_without_tag(env)}",
        highlight=False,
        soft_wrap=True,
    )


def _data_without_tag(env: Envelope) -> str:
    data = msgspec.json.decode(env.data)
    if isinstance(data, dict):
        data.pop("type", None)
    return json.dumps(data, ensure_ascii=False)


# --- audit -------------------------------------------------------------------------------------


@audit_app.command("stream")
def audit_stream(
    stream_id: Annotated[str, typer.Argument(help="The stream, e.g. lead-<uuid>")],
    data_dir: DataDir = None,
) -> None:
    """One stream's whole history, human readable."""
    configure_logging(level="warning")
    settings = _settings(data_dir)

    async def main() -> None:
        async with _database(settings) as dsn, open_postgres_store(dsn, writers=1) as store:
            events = await store.read_stream(stream_id)
        if not events:
            err.print(f"stream {stream_id!r} has no events")
            raise typer.Exit(1)
        table = Table("v", "position", "recorded at (UTC)", "type", "correlation / causation", "data", title=stream_id)
        for env in events:
            table.add_row(
                str(env.version),
                str(env.position),
                f"{env.recorded_at:%Y-%m-%d %H:%M:%S.%f}",
                env.type,
                f"{env.correlation_id}\n{env.causation_id or '-'}",
                json.dumps(
                    {k: v for k, v in msgspec.json.decode(env.data).items() if k != "type"},
                    indent=1,
                    ensure_ascii=False,
                ),
            )
        out.print(table)

    _run(main)


@audit_app.command("verify")
def audit_verify(data_dir: DataDir = None) -> None:
    """Check every stream's hash chain and every seal; exit 1 naming the first bad event."""
    configure_logging(level="warning")
    settings = _settings(data_dir)

    async def main() -> int:
        async with _database(settings) as dsn, open_postgres_store(dsn, writers=1) as store:
            report = await store.verify()
        if report.first_bad is None:
            out.print(
                f"[green]ok[/]: {report.events_checked} events in {report.streams_checked} streams and "
                f"{report.seals_checked} seals verified"
            )
            return 0
        bad = report.first_bad
        where = f"position {bad.position}" + (
            f", stream {bad.stream_id} version {bad.version}" if bad.stream_id else ""
        )
        ident = f", event {bad.event_id}" if bad.event_id else ""
        err.print(f"[bold red]TAMPERED[/]: {where}{ident}: {bad.problem}", highlight=False)
        return 1

    code = _run(main)
    if code:
        raise typer.Exit(code)


# --- bench -----------------------------------------------------------------------------------


@bench_app.command("log")
def bench_log(
    events: Annotated[int, typer.Option(help="Events to append")] = 100_000,
    writers: Annotated[int, typer.Option(help="Concurrent writers")] = 64,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object")] = False,
    data_dir: DataDir = None,
) -> None:
    """Append, read and relay throughput beside raw asyncpg and raw nats-py, in one run."""
    configure_logging(level="warning")
    settings = _settings(data_dir)

    async def main() -> dict[str, Any]:
        async with open_infrastructure(settings) as infra:
            admin = await _connect(infra.database_url)
            name = f"touchline_bench_{int(time.time())}"
            try:
                await admin.execute(f'create database "{name}"')
            finally:
                await admin.close()
            dsn = with_database(infra.database_url, name)
            try:
                await _migrate(dsn)
                bench_settings = msgspec.structs.replace(
                    settings, subject_prefix=f"bench{int(time.time())}", stream_name=f"BENCH_{int(time.time())}"
                )
                return await run_log_bench(dsn, infra.nats_url, bench_settings, events=events, writers=writers)
            finally:
                admin = await _connect(infra.database_url)
                try:
                    await admin.execute(f'drop database if exists "{name}" with (force)')
                finally:
                    await admin.close()

    result = _run(main)
    if as_json:
        print(json.dumps(result))
        return
    table = Table("measure", "touchline", "baseline", "ratio")
    pairs = [
        ("append (events/s) vs executemany (rows/s)", "append_events_per_s", "baseline_executemany_rows_per_s"),
        ("relay (events/s) vs raw publish (msg/s)", "relay_events_per_s", "baseline_publish_per_s"),
    ]
    for label, mine, base in pairs:
        table.add_row(label, f"{result[mine]:,.0f}", f"{result[base]:,.0f}", f"{result[mine] / result[base]:.2f}")
    table.add_row("read all + decode (events/s), first pass", f"{result['read_first_pass_events_per_s']:,.0f}", "", "")
    table.add_row("read all + decode (events/s), warm", f"{result['read_events_per_s']:,.0f}", "", "")
    table.add_row(
        "append latency p50 / p99 (ms)", f"{result['append_p50_ms']:.1f} / {result['append_p99_ms']:.1f}", "", ""
    )
    out.print(table)


def main() -> None:
    # Touchline allocates many short-lived rows, envelopes and futures; with CPython's default
    # first-generation threshold (700) the cycle collector runs thousands of times a second under
    # load. Events and envelopes are untracked (gc=False); a larger first generation does the rest.
    gc.set_threshold(50_000, 20, 100)
    app()


if __name__ == "__main__":
    main()
