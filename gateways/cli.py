"""The `touchline` command line: run the system, migrate, read and audit the log, benchmark."""

from __future__ import annotations

import contextlib
import gc
import json
import re
import signal
import sys
import time
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any, Final, NoReturn

import anyio
import asyncpg
import msgspec
import structlog
import typer
from rich.table import Table

from actors.access import ApiTokens, TokenState
from actors.autos import Autos, AutosResult
from actors.campaigns import Campaigns, CampaignState, StepSpec
from actors.hunter import Hunter
from actors.org import OrgSettings, OrgState
from actors.runtime import ActorRunner
from actors.supervisor import ChildStats, Supervisor
from events.bench import run_log_bench
from events.bus import connect as connect_bus
from events.catalog import LeadgenRouting, LeadIngested, enrollment_stream, lead_stream, touch_stream
from events.envelope import Envelope, envelope_encoder
from events.errors import ConcurrencyError, ConfigError, NotFound, TouchlineError
from events.postgres import open_postgres_store, redact_dsn
from events.relay import OutboxRelay
from events.settings import Settings
from events.store import NO_STREAM, EventFilter
from gateways.cli_common import (
    Account,
    DataDir,
    T,
    bench_database,
    cell,
    connect,
    database,
    err,
    load_settings,
    migrate_database,
    out,
    run,
    uuid_option,
    with_store,
)
from gateways.cli_dispatch import register as register_dispatch
from gateways.cli_programs import register as register_programs
from gateways.embedded import open_infrastructure
from gateways.http import run_http
from gateways.logs import configure_logging
from gateways.roles import known_roles, parse_roles, supervise_roles
from projections import ALL_PROJECTIONS, projection_classes
from projections.bench import run_projection_bench
from projections.runner import ProjectionWorker, RebuildProgress, all_views, projection_status, rebuild

log = structlog.get_logger("touchline")

app = typer.Typer(help="Touchline: leads, cadences and an AI voice agent, on an event log.", no_args_is_help=True)
events_app = typer.Typer(help="Read the event log.", no_args_is_help=True)
audit_app = typer.Typer(help="Audit the event log: histories and tamper evidence.", no_args_is_help=True)
bench_app = typer.Typer(help="Benchmarks, each printed beside its baseline.", no_args_is_help=True)
app.add_typer(events_app, name="events")
app.add_typer(audit_app, name="audit")
app.add_typer(bench_app, name="bench")
projections_app = typer.Typer(help="Read models: their checkpoints and health, and rebuilds.", no_args_is_help=True)
app.add_typer(projections_app, name="projections")
campaigns_app = typer.Typer(help="Outbound campaigns: list, create, switch on and off.", no_args_is_help=True)
app.add_typer(campaigns_app, name="campaigns")
settings_app = typer.Typer(help="Org settings: identity, contact and LeadGen routing.", no_args_is_help=True)
app.add_typer(settings_app, name="settings")
leads_app = typer.Typer(help="Leads: the read model, and each lead's whole history.", no_args_is_help=True)
app.add_typer(leads_app, name="leads")
autos_app = typer.Typer(help="The autos funnel of a city, switched on or off in one step.", no_args_is_help=True)
app.add_typer(autos_app, name="autos")
tokens_app = typer.Typer(help="API tokens: the bearer tokens of the HTTP API, per account.", no_args_is_help=True)
app.add_typer(tokens_app, name="tokens")

# --- up ----------------------------------------------------------------------------------


@app.command()
def up(
    data_dir: DataDir = None,
    role: Annotated[
        str | None,
        typer.Option(
            "--role",
            help=f"Run only these roles, comma-separated ({', '.join(known_roles())}, or projection:NAME)",
        ),
    ] = None,
    grace: Annotated[float, typer.Option(help="Seconds in-flight work gets to finish on shutdown")] = 10.0,
) -> None:
    """Start servers (embedded unless configured), migrate, and run every role until Ctrl-C."""
    configure_logging()
    settings = load_settings(data_dir)
    try:
        roles = parse_roles(role)
    except TouchlineError as exc:
        err.print(f"[bold red]error:[/] {exc}", highlight=False)
        raise typer.Exit(2) from None
    run(lambda: _up(settings, roles, grace))


async def _up(settings: Settings, roles: set[str], grace: float) -> None:
    started = time.monotonic()
    async with open_infrastructure(settings) as infra:
        applied = await migrate_database(infra.database_url)
        log.info("component_started", component="migrations", applied=applied)
        nc = await connect_bus(infra.nats_url, name="touchline-up", reconnect_forever=True)
        try:
            with anyio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
                async with open_postgres_store(infra.database_url) as store, anyio.create_task_group() as tg:
                    log.info("component_started", component="event_store")
                    if "relay" in roles:
                        # Not awaited to its start: a relay standing by (another process leads)
                        # must not keep this process's actors, projections and HTTP from starting.
                        relay = OutboxRelay(store, nc, settings)
                        tg.start_soon(relay.run)
                        log.info("component_started", component="relay", stream=settings.stream_name)
                    supervisor = supervise_roles(roles, store=store, nc=nc, settings=settings)
                    await tg.start(supervisor.run)
                    if "http" in roles:
                        url = await tg.start(run_http, store, settings)
                        log.info("component_started", component="http", url=url)
                    tg.start_soon(_report_periodically, supervisor)
                    log.info(
                        "touchline_ready",
                        seconds=round(time.monotonic() - started, 2),
                        roles=sorted(roles),
                        children=sorted(supervisor.stats),
                        database=redact_dsn(infra.database_url),
                        nats=infra.nats_url,
                    )
                    async for signum in signals:
                        log.info("touchline_stopping", signal=signal.Signals(signum).name)
                        # Actors stop taking work and finish (or hand back) what they hold first.
                        await supervisor.stop(grace)
                        tg.cancel_scope.cancel()
                        break
        finally:
            with anyio.CancelScope(shield=True):
                await nc.close()
    log.info("touchline_stopped")


_SUPERVISOR_FIELDS: Final = frozenset(ChildStats.__struct_fields__) | {"child"}


async def _report_periodically(supervisor: Supervisor, every_s: float = 60.0) -> None:
    """Each child's health in the log: restarts and crash loops are reported, never hidden."""
    while True:
        await anyio.sleep(every_s)
        for name, stats in sorted(supervisor.stats.items()):
            child = supervisor.child(name)
            extra = msgspec.structs.asdict(child.stats) if isinstance(child, ActorRunner) else {}
            if isinstance(child, ProjectionWorker):
                extra = {"position": child.position, "state": child.state}
            if isinstance(child, Hunter):
                extra = msgspec.structs.asdict(child.stats)
            level = log.error if stats.crash_looping else log.info
            # The child's own figures under their own names: both kinds of stats have a `state`.
            own = {f"child_{k}" if k in _SUPERVISOR_FIELDS else k: v for k, v in extra.items()}
            level("child_stats", child=name, **msgspec.structs.asdict(stats), **own)


# --- migrate, sql -----------------------------------------------------------------------------


@app.command("migrate")
def migrate_command(data_dir: DataDir = None) -> None:
    """Apply the SQL migrations that have not been applied yet."""
    configure_logging()
    settings = load_settings(data_dir)

    async def main() -> None:
        async with open_infrastructure(settings, with_nats=False) as infra:
            applied = await migrate_database(infra.database_url)
        out.print(f"applied {len(applied)} migration(s)" + (": " + ", ".join(applied) if applied else ": up to date"))

    run(main)


@app.command()
def sql(query: Annotated[str, typer.Argument(help="SQL to run")], data_dir: DataDir = None) -> None:
    """Run SQL against the configured or embedded database and print the result as a table."""
    configure_logging(level="warning")
    settings = load_settings(data_dir)

    async def main() -> None:
        async with database(settings) as dsn:
            conn = await connect(dsn)
            try:
                await _run_sql(conn, query)
            finally:
                await conn.close()

    run(main)


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
        table.add_row(*[cell(v) for v in row])
    out.print(table)
    out.print(f"({len(rows)} row{'s' if len(rows) != 1 else ''})")


def _sql_error(exc: asyncpg.PostgresError) -> NoReturn:
    err.print(f"[bold red]error:[/] PostgreSQL says: {exc}", highlight=False)
    raise typer.Exit(1)


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
    settings = load_settings(data_dir)
    account_id = uuid_option("--account", account) if account else None
    flt = EventFilter(types=frozenset(type_) if type_ else None, account_id=account_id, stream_id=stream)

    async def main() -> None:
        async with database(settings) as dsn, open_postgres_store(dsn, writers=1) as store:
            source = store.tail if follow else store.read_all
            with contextlib.suppress(KeyboardInterrupt, anyio.get_cancelled_exc_class()):
                async for batch in source(from_position, filter=flt):
                    for env in batch:
                        _print_event(env, as_json)

    run(main)


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
    settings = load_settings(data_dir)

    async def main() -> None:
        async with database(settings) as dsn, open_postgres_store(dsn, writers=1) as store:
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

    run(main)


@audit_app.command("verify")
def audit_verify(data_dir: DataDir = None) -> None:
    """Check every stream's hash chain and every seal; exit 1 naming the first bad event."""
    configure_logging(level="warning")
    settings = load_settings(data_dir)

    async def main() -> int:
        async with database(settings) as dsn, open_postgres_store(dsn, writers=1) as store:
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

    code = run(main)
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
    settings = load_settings(data_dir)

    async def main() -> dict[str, Any]:
        async with open_infrastructure(settings) as infra, bench_database(infra.database_url) as dsn:
            bench_settings = msgspec.structs.replace(
                settings, subject_prefix=f"bench{int(time.time())}", stream_name=f"BENCH_{int(time.time())}"
            )
            return await run_log_bench(dsn, infra.nats_url, bench_settings, events=events, writers=writers)

    result = run(main)
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


# --- projections ------------------------------------------------------------------------------


@projections_app.command("status")
def projections_status(
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object per projection")] = False,
    data_dir: DataDir = None,
) -> None:
    """Each projection's checkpoint, lag (events in the log after it), rate, and any failure."""
    configure_logging(level="warning")
    settings = load_settings(data_dir)

    async def main() -> list[Any]:
        async with database(settings) as dsn, open_postgres_store(dsn, writers=1) as store:
            return await projection_status(store, [cls() for cls in ALL_PROJECTIONS])

    statuses = run(main)
    if as_json:
        for st in statuses:
            print(json.dumps({**msgspec.to_builtins(st), "state": st.state}))
        return
    table = Table("projection", "state", "version", "checkpoint", "lag", "events/s", "updated", "error")
    for st in statuses:
        version = str(st.version) if st.stored_version in (None, st.version) else f"{st.stored_version}→{st.version}"
        error = f"at position {st.error_position} (event {st.error_event_id}): {st.error}" if st.error else ""
        color = {"live": "green", "behind": "yellow", "failed": "red"}.get(st.state, "dim")
        table.add_row(
            st.name,
            f"[{color}]{st.state}[/]",
            version,
            f"{st.position:,}",
            f"{st.lag:,}",
            f"{st.rate:,.0f}" if st.rate else "",
            f"{st.updated_at:%Y-%m-%d %H:%M:%S}" if st.updated_at else "",
            error,
        )
    out.print(table)
    if any(st.state == "failed" for st in statuses):
        raise typer.Exit(1)


@projections_app.command("rebuild")
def projections_rebuild(
    names: Annotated[list[str] | None, typer.Argument(help="Projections to rebuild")] = None,
    all_: Annotated[bool, typer.Option("--all", help="Rebuild every projection")] = False,
    data_dir: DataDir = None,
) -> None:
    """Rebuild from position zero into shadow tables while the live ones serve, then swap them in."""
    configure_logging(level="warning")
    settings = load_settings(data_dir)
    if all_ == bool(names):
        err.print("[bold red]error:[/] name the projections to rebuild, or pass --all (not both)")
        raise typer.Exit(2)
    try:
        classes = projection_classes(None if all_ else names)
    except KeyError as exc:
        err.print(f"[bold red]error:[/] {exc.args[0]}", highlight=False)
        raise typer.Exit(2) from None

    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    async def main() -> Any:
        async with database(settings) as dsn, open_postgres_store(dsn, writers=1) as store:
            projections = [cls() for cls in classes]
            every = [cls() for cls in ALL_PROJECTIONS]
            with Progress(
                TextColumn("[bold]{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                TextColumn("{task.fields[rate]} events/s"),
                TimeElapsedColumn(),
                console=err,
            ) as bar:
                task = bar.add_task("rebuild " + ", ".join(p.name for p in projections), total=None, rate="-")

                def progress(p: RebuildProgress) -> None:
                    rate = f"{p.events / p.seconds:,.0f}" if p.seconds else "-"
                    bar.update(task, completed=p.position, total=p.head, rate=rate)

                report = await rebuild(store, projections, all_views(every), progress=progress)
                bar.update(task, completed=report.scanned_to, total=report.scanned_to)
            return report

    report = run(main)
    out.print(
        f"rebuilt {', '.join(report.projections)}: {report.events:,} events up to position {report.scanned_to:,} "
        f"in {report.seconds:.2f} s ({report.events_per_s:,.0f} events/s), swapped in"
    )


@bench_app.command("projections")
def bench_projections(
    events: Annotated[int, typer.Option(help="Events to generate")] = 1_000_000,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object")] = False,
    data_dir: DataDir = None,
) -> None:
    """Rebuild every read model from a realistic log, beside the raw read rate of the same log."""
    configure_logging(level="warning")
    settings = load_settings(data_dir)

    async def main() -> dict[str, Any]:
        async with open_infrastructure(settings, with_nats=False) as infra, bench_database(infra.database_url) as dsn:
            return await run_projection_bench(dsn, events=events)

    result = run(main)
    if as_json:
        print(json.dumps(result))
        return
    table = Table("measure", "touchline", "baseline", "ratio")
    table.add_row(
        "rebuild all projections (events/s) vs raw read of the same log",
        f"{result['rebuild_events_per_s']:,.0f}",
        f"{result['read_events_per_s']:,.0f}",
        f"{result['rebuild_vs_read']:.2f}",
    )
    table.add_row("events in the log", f"{result['events']:,}", "", "")
    for qualified, rows in result["rows"].items():
        table.add_row(f"rows in {qualified}", f"{rows:,}", "", "")
    out.print(table)


# --- campaigns -----------------------------------------------------------------------------------


def _parse_step(number: int, text: str) -> StepSpec:
    """`CHANNEL[:DELAY_MINUTES[:TEMPLATE]]`, e.g. `sms`, `voice:60`, `whatsapp:1440:follow_up_v1`."""
    parts = text.split(":", 2)
    try:
        delay = int(parts[1]) if len(parts) > 1 and parts[1] else 0
    except ValueError:
        raise typer.BadParameter(f"step {number} {text!r}: the delay must be whole minutes") from None
    return StepSpec(
        step=number,
        channel=parts[0].strip().lower(),
        delay_minutes=delay,
        template=(parts[2] if len(parts) > 2 else None),
    )


def _campaign_command(main: Callable[[Campaigns], Awaitable[T]], data_dir: Path | None) -> T:
    configure_logging(level="warning")
    return with_store(data_dir, lambda store: main(Campaigns(store)))


@campaigns_app.command("list")
def campaigns_list(account: Account, data_dir: DataDir = None) -> None:
    """The account's outbound campaigns (LeadGen programs are not campaigns: see the programs)."""
    account_id = uuid_option("--account", account)
    states = _campaign_command(lambda c: c.all(account_id), data_dir)
    table = Table("campaign_key", "name", "status", "steps", "id")
    for st in states:
        steps = ", ".join(f"{s.step}:{s.channel}+{s.delay_minutes}m" for s in st.steps)
        table.add_row(
            st.campaign_key, st.name, "[green]active[/]" if st.is_active else "paused", steps, str(st.campaign_id)
        )
    out.print(table)
    out.print(f"({len(states)} campaign{'s' if len(states) != 1 else ''})")


@campaigns_app.command("create")
def campaigns_create(
    account: Account,
    key: Annotated[str, typer.Option("--key", help="campaign_key, e.g. autos_outbound_miami")],
    name: Annotated[str, typer.Option("--name", help="What operators call it")],
    step: Annotated[list[str], typer.Option("--step", help="CHANNEL[:DELAY_MINUTES[:TEMPLATE]], in order; repeat")],
    allow_concurrent: Annotated[bool, typer.Option(help="Leads may be in another campaign at the same time")] = False,
    activate: Annotated[bool, typer.Option("--activate", help="Switch it on right away")] = False,
    data_dir: DataDir = None,
) -> None:
    """Create a campaign (paused unless --activate)."""
    account_id = uuid_option("--account", account)
    steps = [_parse_step(i, text) for i, text in enumerate(step, 1)]

    async def main(campaigns: Campaigns) -> CampaignState:
        state = await campaigns.create(
            account_id, campaign_key=key, name=name, steps=steps, allow_concurrent=allow_concurrent
        )
        if activate:
            await campaigns.activate(account_id, state.campaign_id)
        return state

    state = _campaign_command(main, data_dir)
    out.print(f"created {state.campaign_key} ({state.campaign_id}), {'active' if activate else 'paused'}")


def _toggle(account: str, campaign: str, data_dir: Path | None, *, on: bool) -> None:
    account_id = uuid_option("--account", account)
    campaign_id = uuid_option("CAMPAIGN_ID", campaign)

    async def main(campaigns: Campaigns) -> bool:
        if on:
            return await campaigns.activate(account_id, campaign_id, reason="cli")
        return await campaigns.pause(account_id, campaign_id, reason="cli")

    changed = _campaign_command(main, data_dir)
    word = "activated" if on else "paused"
    out.print(f"{word} {campaign_id}" if changed else f"{campaign_id} was already {'active' if on else 'paused'}")


@campaigns_app.command("activate")
def campaigns_activate(
    campaign: Annotated[str, typer.Argument(help="Campaign id")], account: Account, data_dir: DataDir = None
) -> None:
    """Switch a campaign on (is_active = true)."""
    _toggle(account, campaign, data_dir, on=True)


@campaigns_app.command("pause")
def campaigns_pause(
    campaign: Annotated[str, typer.Argument(help="Campaign id")], account: Account, data_dir: DataDir = None
) -> None:
    """Switch a campaign off (is_active = false)."""
    _toggle(account, campaign, data_dir, on=False)


@campaigns_app.command("pause-all")
def campaigns_pause_all(account: Account, data_dir: DataDir = None) -> None:
    """Pause every running campaign of the account at once (one event each, one correlation id)."""
    account_id = uuid_option("--account", account)
    paused = _campaign_command(lambda c: c.pause_all(account_id, reason="cli: pause all running"), data_dir)
    out.print(f"paused {len(paused)} campaign{'s' if len(paused) != 1 else ''}" + "".join(f"\n  {p}" for p in paused))


# --- settings ------------------------------------------------------------------------------------


@settings_app.command("show")
def settings_show(
    account: Account, as_json: Annotated[bool, typer.Option("--json")] = False, data_dir: DataDir = None
) -> None:
    """The account's org settings and LeadGen routing, as the log has them."""
    account_id = uuid_option("--account", account)
    configure_logging(level="warning")
    settings = load_settings(data_dir)

    async def main() -> OrgState:
        async with database(settings) as dsn, open_postgres_store(dsn, writers=1) as store:
            return await OrgSettings(store).get(account_id)

    state = run(main)
    if as_json:
        print(json.dumps(msgspec.to_builtins(state)))
        return
    table = Table("setting", "value")
    for field in ("business_name", "contact_email", "contact_phone", "contact_whatsapp", "vertical"):
        table.add_row(field, cell(getattr(state, field)))
    table.add_row("daily_caps", ", ".join(f"{k}={v}" for k, v in state.daily_caps.items()) or "none")
    routing = state.leadgen_routing
    table.add_row(
        "leadgen_routing", json.dumps(msgspec.to_builtins(routing)) if routing else "∅ (not set: LeadGen cannot start)"
    )
    out.print(table)


@settings_app.command("set")
def settings_set(
    account: Account,
    business_name: Annotated[str | None, typer.Option(help="Business name (required the first time)")] = None,
    contact_email: Annotated[str | None, typer.Option(help="Primary contact email (required the first time)")] = None,
    contact_phone: Annotated[str | None, typer.Option(help="E.164, e.g. +13055550100")] = None,
    contact_whatsapp: Annotated[str | None, typer.Option(help="E.164")] = None,
    vertical: Annotated[str | None, typer.Option(help="Default car_dealer")] = None,
    dealer_address: Annotated[str | None, typer.Option(help="LeadGen routing: the dealer's address")] = None,
    radius_miles: Annotated[int | None, typer.Option(help="LeadGen routing: 1 to 50")] = None,
    city_fallback: Annotated[str | None, typer.Option(help="LeadGen routing: city when no address match")] = None,
    routing_active: Annotated[bool | None, typer.Option("--routing-active/--routing-inactive")] = None,
    daily_cap: Annotated[
        list[str] | None, typer.Option("--daily-cap", help="CHANNEL=N touches a day at most; repeat; CHANNEL= lifts it")
    ] = None,
    data_dir: DataDir = None,
) -> None:
    """Change org settings and/or LeadGen routing; what is not given stays as it is."""
    account_id = uuid_option("--account", account)
    configure_logging(level="warning")
    settings = load_settings(data_dir)
    identity = (business_name, contact_email, contact_phone, contact_whatsapp, vertical)
    routing_given = (dealer_address, radius_miles, city_fallback, routing_active)
    caps_given: dict[str, int | None] = {}
    for item in daily_cap or []:
        channel, _, value = item.partition("=")
        try:
            caps_given[channel.strip().lower()] = int(value) if value.strip() else None
        except ValueError:
            raise typer.BadParameter(f"--daily-cap {item!r}: expected CHANNEL=N, e.g. sms=200") from None
    if all(v is None for v in identity + routing_given) and not caps_given:
        err.print("[bold red]error:[/] nothing to set: give at least one option (see --help)")
        raise typer.Exit(2)

    async def main() -> OrgState:
        async with database(settings) as dsn, open_postgres_store(dsn, writers=1) as store:
            org = OrgSettings(store)
            state = await org.get(account_id)
            if any(v is not None for v in identity):
                state = await org.update(
                    account_id,
                    business_name=business_name if business_name is not None else state.business_name or "",
                    contact_email=contact_email if contact_email is not None else state.contact_email or "",
                    contact_phone=contact_phone if contact_phone is not None else state.contact_phone,
                    contact_whatsapp=contact_whatsapp if contact_whatsapp is not None else state.contact_whatsapp,
                    vertical=vertical or state.vertical,
                )
            if caps_given:
                caps = {**state.daily_caps, **{k: v for k, v in caps_given.items() if v is not None}}
                caps = {k: v for k, v in caps.items() if caps_given.get(k, v) is not None}
                state = await org.set_daily_caps(account_id, caps)
            if any(v is not None for v in routing_given):
                current = state.leadgen_routing or LeadgenRouting()
                state = await org.set_routing(
                    account_id,
                    LeadgenRouting(
                        dealer_address=dealer_address if dealer_address is not None else current.dealer_address,
                        radius_miles=radius_miles if radius_miles is not None else current.radius_miles,
                        city_fallback=city_fallback if city_fallback is not None else current.city_fallback,
                        active=routing_active if routing_active is not None else current.active,
                    ),
                )
            return state

    state = run(main)
    out.print(f"saved settings of {account_id}" + (" (LeadGen routing active)" if state.routing_active else ""))


# --- autos ---------------------------------------------------------------------------------------


def _autos(account: str, city: str, data_dir: Path | None, *, on: bool) -> None:
    account_id = uuid_option("--account", account)
    configure_logging(level="warning")
    settings = load_settings(data_dir)

    async def main() -> AutosResult:
        async with database(settings) as dsn, open_postgres_store(dsn, writers=1) as store:
            autos = Autos(store)
            return await (autos.activate(account_id, city) if on else autos.deactivate(account_id, city))

    result = run(main)
    color = "green" if result.outcome in ("activated", "deactivated") else "yellow"
    out.print(f"[{color}]{result.outcome}[/]: {result.message}", highlight=False)
    for candidate in result.candidates:
        out.print(f"  candidate campaign {candidate}")
    if result.outcome not in ("activated", "deactivated"):
        raise typer.Exit(1)


@autos_app.command("activate")
def autos_activate(
    account: Account, city: Annotated[str, typer.Option(help="e.g. miami")], data_dir: DataDir = None
) -> None:
    """Routing on, a Craigslist discover queued, campaign autos_outbound_<city> on: all, or nothing."""
    _autos(account, city, data_dir, on=True)


@autos_app.command("deactivate")
def autos_deactivate(
    account: Account, city: Annotated[str, typer.Option(help="e.g. miami")], data_dir: DataDir = None
) -> None:
    """Routing off, the city's queued Craigslist tasks cancelled, campaign autos_outbound_<city> paused."""
    _autos(account, city, data_dir, on=False)


# --- tokens --------------------------------------------------------------------------------------


def _tokens_command(main: Callable[[ApiTokens], Awaitable[T]], data_dir: Path | None) -> T:
    configure_logging(level="warning")
    return with_store(data_dir, lambda store: main(ApiTokens(store)))


@tokens_app.command("create")
def tokens_create(
    account: Account,
    label: Annotated[str | None, typer.Option(help="What the token is for, e.g. 'dashboard'")] = None,
    data_dir: DataDir = None,
) -> None:
    """Create an API token for the account and print it: the only time it is shown."""
    account_id = uuid_option("--account", account)
    token_id, token = _tokens_command(lambda t: t.issue(account_id, label, issued_by="cli"), data_dir)
    out.print(f"created API token {token_id}" + (f" ({label})" if label else ""), highlight=False)
    print(token)  # plain: nothing may wrap or colour it
    err.print(
        "[yellow]warning:[/] the token is shown only now: Touchline keeps only its sha256. Store it where "
        "secrets go; if it is lost, revoke it and create another."
    )


@tokens_app.command("list")
def tokens_list(account: Account, data_dir: DataDir = None) -> None:
    """The account's API tokens (ids and labels; the tokens themselves are not kept)."""
    account_id = uuid_option("--account", account)
    tokens: list[TokenState] = _tokens_command(lambda t: t.list(account_id), data_dir)
    table = Table("token_id", "label", "created_at", "by", "status")
    for tok in tokens:
        revoked = f"revoked {tok.revoked_at:%Y-%m-%d %H:%M}" if tok.revoked_at else "[green]active[/]"
        issued = f"{tok.issued_at:%Y-%m-%d %H:%M}"
        table.add_row(str(tok.token_id), cell(tok.label), issued, cell(tok.issued_by), revoked)
    out.print(table)
    out.print(f"({len(tokens)} token{'s' if len(tokens) != 1 else ''})")


@tokens_app.command("revoke")
def tokens_revoke(
    account: Account,
    token_id: Annotated[str, typer.Option("--token-id", help="The id `tokens list` shows")],
    data_dir: DataDir = None,
) -> None:
    """Revoke one of the account's API tokens: it opens nothing from then on."""
    account_id = uuid_option("--account", account)
    tid = uuid_option("--token-id", token_id)
    _tokens_command(lambda t: t.revoke(account_id, tid, reason="cli"), data_dir)
    out.print(f"revoked {tid}")


# --- leads ---------------------------------------------------------------------------------------

_NO_LEADS_MODEL = "the leads read model is not built yet: run `touchline up` or `touchline projections rebuild leads`"


@leads_app.command("list")
def leads_list(
    account: Account,
    status: Annotated[str | None, typer.Option(help="Only leads with this status (new, contacted, ...)")] = None,
    limit: Annotated[int, typer.Option(help="At most this many, newest first")] = 50,
    data_dir: DataDir = None,
) -> None:
    """The account's leads from `public.leads`, newest first."""
    account_id = uuid_option("--account", account)
    configure_logging(level="warning")
    settings = load_settings(data_dir)

    async def main() -> list[asyncpg.Record]:
        async with database(settings) as dsn:
            conn = await connect(dsn)
            try:
                return await conn.fetch(
                    "select id, status, lead_state, phone, city, title, price, created_at from public.leads "
                    "where account_id = $1 and ($2::text is null or status = $2) order by created_at desc limit $3",
                    account_id,
                    status,
                    limit,
                )
            except asyncpg.UndefinedTableError:
                raise ConfigError(_NO_LEADS_MODEL) from None
            finally:
                await conn.close()

    rows = run(main)
    table = Table("id", "status", "lead_state", "phone", "city", "title", "price", "created_at")
    for row in rows:
        table.add_row(*[cell(v) for v in row])
    out.print(table)
    out.print(f"({len(rows)} lead{'s' if len(rows) != 1 else ''})")


@leads_app.command("add")
def leads_add(
    account: Account,
    phone: Annotated[str, typer.Option(help="E.164, e.g. +13055550100")],
    city: Annotated[str, typer.Option(help="Where the lead is (sets its send window), e.g. miami")],
    name: Annotated[str | None, typer.Option(help="The person's name")] = None,
    email: Annotated[str | None, typer.Option(help="Email address")] = None,
    title: Annotated[str | None, typer.Option(help="What they sell or want, e.g. 2014 Toyota Camry")] = None,
    price: Annotated[int | None, typer.Option(help="Asking price")] = None,
    data_dir: DataDir = None,
) -> None:
    """Add a lead by hand (source `manual`); the same phone twice in one account is one lead."""
    account_id = uuid_option("--account", account)
    number = re.sub(r"[\s().-]", "", phone)
    if not re.fullmatch(r"\+[1-9]\d{7,14}", number):
        err.print(f"[bold red]error:[/] leads.add: phone: {phone!r} is not an E.164 number (e.g. +13055550100)")
        raise typer.Exit(2)
    configure_logging(level="warning")
    settings = load_settings(data_dir)
    lead_id = uuid.uuid5(account_id, f"manual:{number}")
    ingested = LeadIngested(
        lead_id=lead_id, account_id=account_id, source="manual", external_id=number, city=city.strip().lower(),
        phone=number, email=email, name=name, title=title, price=price, first_seen_at=datetime.now(UTC),
    )  # fmt: skip

    async def main() -> bool:
        async with database(settings) as dsn, open_postgres_store(dsn, writers=1) as store:
            try:
                await store.append(lead_stream(lead_id), [ingested], expected_version=NO_STREAM)
            except ConcurrencyError:
                return False
            return True

    added = run(main)
    out.print(f"added lead {lead_id}" if added else f"lead {lead_id} already exists (same phone in this account)")


@leads_app.command("show")
def leads_show(
    lead: Annotated[str, typer.Argument(help="Lead id")],
    account: Account,
    as_json: Annotated[bool, typer.Option("--json", help="The row and the events as JSON lines")] = False,
    data_dir: DataDir = None,
) -> None:
    """A lead as the read model shows it, then everything that happened to it, oldest first."""
    account_id = uuid_option("--account", account)
    lead_id = uuid_option("LEAD_ID", lead)
    configure_logging(level="warning")
    settings = load_settings(data_dir)

    async def main() -> tuple[dict[str, Any], list[Envelope]]:
        async with database(settings) as dsn, open_postgres_store(dsn, writers=1) as store:
            try:
                row = await store.pool.fetchrow(
                    "select * from public.leads where id = $1 and account_id = $2", lead_id, account_id
                )
            except asyncpg.UndefinedTableError:
                raise ConfigError(_NO_LEADS_MODEL) from None
            history = await store.read_stream(lead_stream(lead_id))
            if row is None or (history and history[0].account_id != account_id):
                raise NotFound("leads.show", f"no lead {lead_id} in this account")
            # Its enrollments and touch runs, each a stream of its own.
            streams: list[str] = []
            for r in await store.pool.fetch("select id from public.campaigns where account_id = $1", account_id):
                streams.append(enrollment_stream(lead_id, r["id"]))
            try:
                for r in await store.pool.fetch("select id from public.touch_runs where lead_id = $1", lead_id):
                    streams.append(touch_stream(r["id"]))
            except asyncpg.UndefinedTableError:
                pass
            for stream in streams:
                history += await store.read_stream(stream)
            history.sort(key=lambda e: e.position)
            return dict(row), history

    row, history = run(main)
    if as_json:
        print(json.dumps({"lead": {k: cell(v) for k, v in row.items()}}))
        for env in history:
            print(envelope_encoder.encode(env).decode())
        return
    table = Table("field", "value")
    for key, value in row.items():
        table.add_row(key, cell(value))
    out.print(table)
    events = Table("position", "recorded_at", "stream", "type", "data")
    for env in history:
        events.add_row(
            str(env.position), f"{env.recorded_at:%Y-%m-%d %H:%M:%S}", env.stream_id, env.type, _data_without_tag(env)
        )
    out.print(events)


register_programs(app, bench_app)
register_dispatch(app, bench_app)


def main() -> None:
    # Touchline allocates many short-lived rows, envelopes and futures; with CPython's default
    # first-generation threshold (700) the cycle collector runs thousands of times a second under
    # load. Events and envelopes are untracked (gc=False); a larger first generation does the rest.
    gc.set_threshold(50_000, 20, 100)
    app()


if __name__ == "__main__":
    main()
