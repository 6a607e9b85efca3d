"""`touchline programs` and `touchline crawl`: LeadGen programs and the hunter's task queue."""

from __future__ import annotations

import contextlib
import json
from typing import Annotated

import anyio
import asyncpg
import msgspec
import typer
from rich.table import Table

from actors.crawl import CrawlTasks
from actors.hunter_bench import HunterBenchResult, format_hunter_bench, run_hunter_bench
from actors.programs import ProgramResult, Programs
from events.errors import ConfigError
from gateways.cli_common import (
    LOOP_OPTIONS,
    Account,
    DataDir,
    bench_database,
    cell,
    connect,
    database,
    err,
    load_settings,
    out,
    run,
    uuid_option,
    with_store,
)
from gateways.embedded import open_infrastructure
from gateways.listings.site import (
    CRAIGSLIST_TEMPLATE_PATH,
    ENCUENTRA24_TEMPLATE_PATH,
    ListingSite,
    generate_listings,
    serve_listing_site,
)
from gateways.logs import configure_logging

programs_app = typer.Typer(
    help="LeadGen programs (Craigslist, Encuentra24) per city: start, stop, status.", no_args_is_help=True
)
crawl_app = typer.Typer(help="The hunter's crawl tasks: list, enqueue a discover, cancel.", no_args_is_help=True)

Program = Annotated[str, typer.Option("--program", help="craigslist or encuentra24")]
City = Annotated[str, typer.Option("--city", help="e.g. miami (Encuentra24: a country, e.g. costa-rica)")]


def _print_result(result: ProgramResult, ok: tuple[str, ...]) -> None:
    color = "green" if result.outcome in ok else "yellow"
    out.print(f"[{color}]{result.outcome}[/]: {result.message}", highlight=False)
    if result.discover_task_id:
        out.print(f"  discover task {result.discover_task_id}")
    if result.outcome not in ok:
        raise typer.Exit(1)


@programs_app.command("start")
def programs_start(
    account: Account,
    city: City,
    program: Program = "craigslist",
    override_routing: Annotated[
        bool, typer.Option("--override-routing", help="Start even though LeadGen routing is not active")
    ] = False,
    confirm: Annotated[bool, typer.Option("--confirm", help="It runs already: look for new listings now")] = False,
    every: Annotated[int, typer.Option("--every", help="Seconds between discovers while it runs")] = 900,
    data_dir: DataDir = None,
) -> None:
    """Start a program for a city: its first discover is queued at once, then one every --every seconds."""
    account_id = uuid_option("--account", account)
    configure_logging(level="warning")
    result = with_store(
        data_dir,
        lambda store: Programs(store).start(
            account_id, program, city, override_routing=override_routing, confirm=confirm,
            discover_every_s=every, started_by="cli",
        ),
    )  # fmt: skip
    _print_result(result, ("started", "discover_queued"))


@programs_app.command("stop")
def programs_stop(account: Account, city: City, program: Program = "craigslist", data_dir: DataDir = None) -> None:
    """Stop a program for a city and cancel its queued tasks."""
    account_id = uuid_option("--account", account)
    configure_logging(level="warning")
    result = with_store(data_dir, lambda store: Programs(store).stop(account_id, program, city, stopped_by="cli"))
    _print_result(result, ("stopped",))


_NO_MODEL = "the programs read models are not built yet: run `touchline up` (or `touchline projections rebuild --all`)"


async def _fetch(dsn: str, query: str, *args: object) -> list[asyncpg.Record]:
    conn = await connect(dsn)
    try:
        return list(await conn.fetch(query, *args))
    except asyncpg.UndefinedTableError:
        raise ConfigError(_NO_MODEL) from None
    finally:
        await conn.close()


@programs_app.command("list")
def programs_list(account: Account, data_dir: DataDir = None) -> None:
    """Each program and city with its status (the spec's Disabled / Degraded / Live, or Pending)."""
    account_id = uuid_option("--account", account)
    configure_logging(level="warning")
    settings = load_settings(data_dir)

    async def main() -> list[asyncpg.Record]:
        async with database(settings) as dsn:
            return await _fetch(
                dsn,
                "select program_key, city, running, status, routing_active, tasks_60m, done_60m, failed_60m, "
                "last_success_at from public.v_lead_program_status_v1 where account_id = $1 order by 1, 2",
                account_id,
            )

    rows = run(main)
    columns = ("program", "city", "running", "status", "routing", "tasks_60m", "done_60m", "failed_60m", "last_ok")
    table = Table(*columns)
    for row in rows:
        table.add_row(*[cell(v) for v in row])
    out.print(table)
    if not rows:
        out.print("(no programs yet: touchline programs start --account … --city miami)")


@crawl_app.command("tasks")
def crawl_tasks(
    account: Account,
    city: Annotated[str | None, typer.Option(help="Only this city")] = None,
    status: Annotated[str | None, typer.Option(help="queued, claimed, done, failed or cancelled")] = None,
    limit: Annotated[int, typer.Option(help="At most this many, newest first")] = 50,
    data_dir: DataDir = None,
) -> None:
    """The account's crawl tasks from `lead_hunter.craigslist_tasks_v1`, newest first."""
    account_id = uuid_option("--account", account)
    if status is not None and status not in ("queued", "claimed", "done", "failed", "cancelled"):
        err.print(f"[bold red]error:[/] --status: unknown status {status!r}", highlight=False)
        raise typer.Exit(2)
    configure_logging(level="warning")
    settings = load_settings(data_dir)

    async def main() -> list[asyncpg.Record]:
        async with database(settings) as dsn:
            return await _fetch(
                dsn,
                "select id, source, task_type, city, status, attempts, claimed_by, coalesce(error_kind, gone_reason), "
                "coalesce(external_id, url), created_at from lead_hunter.craigslist_tasks_v1 "
                "where account_id = $1 and ($2::text is null or city = $2) and ($3::text is null or status = $3) "
                "order by created_at desc limit $4",
                account_id,
                city,
                status,
                limit,
            )

    rows = run(main)
    columns = ("id", "source", "type", "city", "status", "attempts", "claimed_by", "error/gone", "posting", "created")
    table = Table(*columns)
    for row in rows:
        table.add_row(*[cell(v) for v in row])
    out.print(table)


@crawl_app.command("enqueue")
def crawl_enqueue(account: Account, city: City, program: Program = "craigslist", data_dir: DataDir = None) -> None:
    """Queue one discover for a city (what the spec's enqueue SQL does), without starting a program."""
    account_id = uuid_option("--account", account)
    configure_logging(level="warning")
    task_id = with_store(
        data_dir, lambda store: CrawlTasks(store).enqueue_discover(account_id, city, source=program, enqueued_by="cli")
    )
    out.print(f"queued discover {task_id}")


@crawl_app.command("cancel")
def crawl_cancel(
    account: Account,
    task_id: Annotated[str, typer.Option("--task-id", help="The task's id")],
    data_dir: DataDir = None,
) -> None:
    """Cancel a task that has not ended."""
    account_id = uuid_option("--account", account)
    task = uuid_option("--task-id", task_id)
    configure_logging(level="warning")
    with_store(data_dir, lambda store: CrawlTasks(store).cancel(account_id, task, "cancelled from the CLI"))
    out.print(f"cancelled {task}")





# --- the hunter's benchmark and the demo site ---------------------------------------------------


def bench_hunter(
    postings: Annotated[int, typer.Option(help="Listings on the local site")] = 60,
    contexts: Annotated[str, typer.Option(help="Browser context counts to measure, comma-separated")] = "1,2,4",
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object")] = False,
    data_dir: DataDir = None,
) -> None:
    """Detail pages per minute with 1, 2 and 4 browser contexts (jitter off), beside fetch+parse without a browser."""

    try:
        counts = [int(c) for c in contexts.split(",") if c.strip()]
    except ValueError:
        err.print(f"[bold red]error:[/] --contexts: expected numbers like 1,2,4, got {contexts!r}", highlight=False)
        raise typer.Exit(2) from None
    if not counts or min(counts) < 1 or postings < 1:
        err.print("[bold red]error:[/] --contexts and --postings must be at least 1", highlight=False)
        raise typer.Exit(2)
    configure_logging(level="warning")
    settings = load_settings(data_dir)

    async def main() -> HunterBenchResult:
        async with open_infrastructure(settings, with_nats=False) as infra, bench_database(infra.database_url) as dsn:
            return await run_hunter_bench(dsn, postings=postings, contexts=counts)

    result = run(main)
    if as_json:
        print(json.dumps(msgspec.to_builtins(result)))
        return
    for line in format_hunter_bench(result):
        out.print(line, highlight=False)


demo_app = typer.Typer(
    help="The whole pipeline on the embedded default (and `demo site`: just the listings site).",
    invoke_without_command=True,
)


@demo_app.callback()
def demo(
    ctx: typer.Context,
    listings: Annotated[int, typer.Option(help="Listings on the bundled Miami site")] = 30,
    seconds: Annotated[float | None, typer.Option(help="Stop after this many seconds (default: Ctrl-C)")] = None,
    data_dir: DataDir = None,
) -> None:
    """Seed a demo account, crawl a bundled listings site, send sandbox touches, serve the console."""
    if ctx.invoked_subcommand is not None:
        return
    from gateways.demo import run_demo

    if not 1 <= listings <= 500:
        err.print("[bold red]error:[/] --listings must be 1 to 500", highlight=False)
        raise typer.Exit(2)
    configure_logging(level="warning")
    settings = load_settings(data_dir)

    def say(line: str) -> None:
        out.print(line, highlight=False, soft_wrap=True)

    final = run(lambda: run_demo(settings, listings=listings, seconds=seconds, say=say))
    say(f"demo stopped: {final.leads} leads, {final.touch_runs} touch runs ({final.dispatched} dispatched)")


@demo_app.command("site")
def demo_site(
    port: Annotated[int, typer.Option(help="Port to serve on (0: any free one)")] = 8099,
    cities: Annotated[str, typer.Option(help="Craigslist cities, comma-separated")] = "miami",
    listings: Annotated[int, typer.Option(help="Listings per city")] = 40,
    encuentra24: Annotated[str, typer.Option(help="Encuentra24 countries, comma-separated")] = "costa-rica",
    page_size: Annotated[int, typer.Option(help="Results per search page")] = 20,
) -> None:
    """Serve realistic by-owner car listings (Craigslist's and Encuentra24's DOM) until Ctrl-C."""
    site = ListingSite(page_size=page_size)
    try:
        for n, city in enumerate(c.strip() for c in cities.split(",") if c.strip()):
            site.add_all(generate_listings(city, listings, seed=n, start_id=7700000000 + n * 1_000_000))
        for n, country in enumerate(c.strip() for c in encuentra24.split(",") if c.strip()):
            site.add_all(
                generate_listings(country, listings, seed=n, source="encuentra24", start_id=31000000 + n * 100_000)
            )
    except ValueError as exc:
        err.print(f"[bold red]error:[/] {exc}", highlight=False)
        raise typer.Exit(2) from None

    async def main() -> None:
        async with serve_listing_site(site, port=port) as base:
            out.print(f"listings site at {base}", highlight=False)
            out.print(f"  export CL_BASE_URL_TEMPLATE='{base}{CRAIGSLIST_TEMPLATE_PATH}'", highlight=False)
            out.print(f"  export E24_BASE_URL_TEMPLATE='{base}{ENCUENTRA24_TEMPLATE_PATH}'", highlight=False)
            await anyio.sleep_forever()

    with contextlib.suppress(KeyboardInterrupt):
        anyio.run(main, backend_options=LOOP_OPTIONS)


def register(app: typer.Typer, bench_app: typer.Typer) -> None:
    app.add_typer(programs_app, name="programs")
    app.add_typer(crawl_app, name="crawl")
    app.add_typer(demo_app, name="demo")
    bench_app.command("hunter")(bench_hunter)
