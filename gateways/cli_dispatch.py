"""`touchline touches ...` (the dispatch engine's work, requeueing dead letters) and `touchline bench e2e`."""

from __future__ import annotations

import json
from typing import Annotated

import asyncpg
import msgspec
import typer
from rich.table import Table

from actors.dispatch import requeue
from actors.e2e_bench import E2EResult, format_e2e_bench, run_e2e_bench
from events.postgres import PostgresEventStore
from gateways.cli_common import (
    Account,
    DataDir,
    bench_database,
    cell,
    database,
    err,
    load_settings,
    out,
    run,
    uuid_option,
    with_store,
)
from gateways.cli_common import connect as pg_connect
from gateways.embedded import open_infrastructure
from gateways.logs import configure_logging
from gateways.providers import ChannelProviders

touches_app = typer.Typer(
    help="Touch runs: what the dispatch engine sent, failed or dead-lettered.", no_args_is_help=True
)

STATUSES = ("scheduled", "skipped", "claimed", "dispatched", "failed", "retry_scheduled", "dead_letter")


@touches_app.command("list")
def touches_list(
    account: Account,
    status: Annotated[str | None, typer.Option(help=f"Only this status: {', '.join(STATUSES)}")] = None,
    limit: Annotated[int, typer.Option(help="At most this many, most recently changed first")] = 50,
    data_dir: DataDir = None,
) -> None:
    """The account's touch runs from `public.touch_runs`."""
    account_id = uuid_option("--account", account)
    if status is not None and status not in STATUSES:
        err.print(
            f"[bold red]error:[/] --status: unknown status {status!r}; use one of {', '.join(STATUSES)}",
            highlight=False,
        )
        raise typer.Exit(2)
    if not 1 <= limit <= 10_000:
        err.print("[bold red]error:[/] --limit must be 1 to 10000", highlight=False)
        raise typer.Exit(2)
    configure_logging(level="warning")
    settings = load_settings(data_dir)

    async def main() -> list[asyncpg.Record]:
        async with database(settings) as dsn:
            conn = await pg_connect(dsn)
            try:
                return list(
                    await conn.fetch(
                        "select id, channel, status, attempts, provider, provider_message_id, sandbox, "
                        "coalesce(last_error, skip_reason, deferred_reason), scheduled_for, updated_at "
                        "from public.touch_runs where account_id = $1 and ($2::text is null or status = $2) "
                        "order by updated_at desc limit $3",
                        account_id,
                        status,
                        limit,
                    )
                )
            finally:
                await conn.close()

    rows = run(main)
    table = Table("id", "channel", "status", "attempts", "provider", "message id", "sandbox", "why", "due", "updated")
    for row in rows:
        table.add_row(*[cell(v) for v in row])
    out.print(table)


@touches_app.command("requeue")
def touches_requeue(
    touch_run_id: Annotated[str, typer.Argument(help="The touch run to send again")],
    account: Account,
    reason: Annotated[str | None, typer.Option(help="Why (kept in the log)")] = None,
    by: Annotated[str, typer.Option(help="Who asks (kept in the log)")] = "cli",
    data_dir: DataDir = None,
) -> None:
    """Send a dead-lettered or failed touch run again, from attempt 1."""
    account_id = uuid_option("--account", account)
    touch = uuid_option("touch run id", touch_run_id)
    configure_logging(level="warning")
    with_store(data_dir, lambda store: requeue(store, account_id, touch, by=by, reason=reason))
    out.print(f"requeued {touch}: the dispatch engine sends it now")


@touches_app.command("providers")
def touches_providers() -> None:
    """Which provider each channel goes through, from the environment (sandbox without credentials)."""
    configure_logging(level="warning")

    async def main() -> dict[str, str]:
        providers = ChannelProviders()
        try:
            return providers.describe()
        finally:
            await providers.close()

    for channel, provider in run(main).items():
        out.print(f"{channel:<9} {provider}", highlight=False)


def bench_e2e(
    leads: Annotated[int, typer.Option(help="Leads to ingest")] = 10_000,
    timeout: Annotated[float, typer.Option(help="Give up waiting after this many seconds")] = 120.0,
    rate: Annotated[float, typer.Option(help="Ingest this many leads a second (0: all at once)")] = 0.0,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object")] = False,
    data_dir: DataDir = None,
) -> None:
    """Leads ingested → cadence → orchestrator → first touch dispatched (sandbox), on real PostgreSQL and NATS."""
    if not 1 <= leads <= 1_000_000:
        err.print("[bold red]error:[/] --leads must be 1 to 1000000", highlight=False)
        raise typer.Exit(2)
    if not 0 <= rate <= 1_000_000:
        err.print("[bold red]error:[/] --rate must be 0 (all at once) to 1000000 leads/s", highlight=False)
        raise typer.Exit(2)
    configure_logging(level="warning")
    settings = load_settings(data_dir)

    async def main() -> E2EResult:
        async with open_infrastructure(settings) as infra, bench_database(infra.database_url) as dsn:
            return await run_e2e_bench(dsn, infra.nats_url, leads=leads, timeout_s=timeout, rate=rate)

    result = run(main)
    if as_json:
        print(json.dumps(msgspec.to_builtins(result)))
        return
    for line in format_e2e_bench(result):
        out.print(line, highlight=False)


def bench_voice(
    calls: Annotated[int, typer.Option(help="Concurrent simulated calls")] = 200,
    seconds: Annotated[float, typer.Option(help="How long each call streams")] = 10.0,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object")] = False,
    data_dir: DataDir = None,
) -> None:
    """N concurrent calls through one voice gateway process: frame relay latency each way, frames lost, CPU."""
    from gateways.voice.bench import VoiceBenchResult, format_voice_bench, run_voice_bench

    if not 1 <= calls <= 5000 or not 0.2 <= seconds <= 3600:
        err.print("[bold red]error:[/] --calls must be 1 to 5000 and --seconds 0.2 to 3600", highlight=False)
        raise typer.Exit(2)
    configure_logging(level="warning")
    settings = load_settings(data_dir)

    async def main() -> VoiceBenchResult:
        async with open_infrastructure(settings, with_nats=False) as infra, bench_database(infra.database_url) as dsn:
            return await run_voice_bench(dsn, calls=calls, seconds=seconds)

    result = run(main)
    if as_json:
        print(json.dumps(msgspec.to_builtins(result)))
        return
    for line in format_voice_bench(result):
        out.print(line, highlight=False)


def bench_commands(
    commands: Annotated[int, typer.Option(help="lead.ingest commands to send")] = 5000,
    concurrency: Annotated[int, typer.Option(help="Requests in flight at once")] = 32,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object")] = False,
    data_dir: DataDir = None,
) -> None:
    """Bus commands answered with their events, beside raw nats-py request-reply + asyncpg, in one run."""
    from gateways.command_bench import CommandsBenchResult, format_commands_bench, run_commands_bench

    if not 1 <= commands <= 1_000_000 or not 1 <= concurrency <= 1024:
        err.print("[bold red]error:[/] --commands must be 1 to 1000000 and --concurrency 1 to 1024", highlight=False)
        raise typer.Exit(2)
    configure_logging(level="warning")
    settings = load_settings(data_dir)

    async def main() -> CommandsBenchResult:
        async with open_infrastructure(settings) as infra, bench_database(infra.database_url) as dsn:
            return await run_commands_bench(dsn, infra.nats_url, commands=commands, concurrency=concurrency)

    result = run(main)
    if as_json:
        print(json.dumps(msgspec.to_builtins(result)))
        return
    for line in format_commands_bench(result):
        out.print(line, highlight=False)


_DONE = frozenset({"ok", "started", "discover_queued", "stopped", "activated", "deactivated"})


def ask(
    text: Annotated[str, typer.Argument(help="What you want, in Spanish or English (quote it)")],
    account: Account,
    operator: Annotated[str, typer.Option(help="Who asks (kept in the log)")] = "cli",
    as_json: Annotated[bool, typer.Option("--json", help="Print the whole answer as JSON")] = False,
    data_dir: DataDir = None,
) -> None:
    """Command OS from the shell: «¿qué campañas están activas?», "start craigslist miami", ..."""
    from gateways.command_os import Answer, CommandOS
    from gateways.openai_chat import OpenAIChat

    account_id = uuid_option("--account", account)
    if not text.strip():
        err.print("[bold red]error:[/] say what you want, e.g. touchline ask '¿qué campañas están activas?'")
        raise typer.Exit(2)
    configure_logging(level="warning")

    async def main(store: PostgresEventStore) -> Answer:
        return await CommandOS(store, OpenAIChat.from_env()).handle(account_id, text, operator=operator)

    answer = with_store(data_dir, main)
    if as_json:
        print(json.dumps(msgspec.to_builtins(answer), ensure_ascii=False))
        return
    out.print(answer.reply, highlight=False)
    if answer.outcome not in _DONE:
        raise typer.Exit(1)  # needs_setup, needs_confirmation, not_found, unknown...: the reply says why


def register(app: typer.Typer, bench_app: typer.Typer) -> None:
    app.command("ask")(ask)
    app.add_typer(touches_app, name="touches")
    bench_app.command("e2e")(bench_e2e)
    bench_app.command("voice")(bench_voice)
    bench_app.command("commands")(bench_commands)
