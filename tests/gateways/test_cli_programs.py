"""`touchline programs|crawl`: start and stop from the shell, the queue as a table, clear errors."""

from __future__ import annotations

import anyio
from typer.testing import CliRunner

from events.postgres import open_postgres_store
from gateways.cli import app
from projections.runner import all_views, rebuild
from tests.projections.helpers import every_projection

runner = CliRunner()
ACCOUNT = "00000000-0000-4000-8000-0000000000d7"


def invoke(database_url: str, *args: str, **env: str) -> tuple[int, str, str]:
    result = runner.invoke(app, list(args), env={"TOUCHLINE_DATABASE_URL": database_url, "COLUMNS": "250", **env})
    return result.exit_code, result.stdout, result.stderr


def test_start_asks_for_routing_then_starts_once_and_stops(database_url: str) -> None:
    code, out, _ = invoke(database_url, "programs", "start", "--account", ACCOUNT, "--city", "miami")
    assert code == 1 and "needs_setup" in out and "LeadGen routing is not configured" in out
    code, out, _ = invoke(
        database_url, "settings", "set", "--account", ACCOUNT, "--business-name", "Miami Motors",
        "--contact-email", "sales@miamimotors.com", "--dealer-address", "1 Biscayne Blvd", "--radius-miles", "20",
        "--routing-active",
    )  # fmt: skip
    assert code == 0, out
    code, out, _ = invoke(database_url, "programs", "start", "--account", ACCOUNT, "--city", "Miami")
    assert code == 0 and "started: craigslist miami started" in out and "discover task" in out
    code, out, _ = invoke(database_url, "programs", "start", "--account", ACCOUNT, "--city", "miami")
    assert code == 1 and "needs_confirmation" in out
    code, out, _ = invoke(database_url, "crawl", "enqueue", "--account", ACCOUNT, "--city", "tampa")
    assert code == 0 and out.startswith("queued discover ")

    async def build() -> None:
        async with open_postgres_store(database_url) as store:
            projections = every_projection()
            await rebuild(store, projections, all_views(projections))

    anyio.run(build)
    code, out, _ = invoke(database_url, "crawl", "tasks", "--account", ACCOUNT)
    assert code == 0 and out.count("discover") == 2 and "queued" in out
    code, out, _ = invoke(database_url, "programs", "list", "--account", ACCOUNT)
    assert code == 0 and "craigslist" in out and "miami" in out and "Pending" in out
    code, out, _ = invoke(database_url, "programs", "stop", "--account", ACCOUNT, "--city", "miami")
    assert code == 0 and "stopped; 1 queued task(s) cancelled" in out


def test_bad_input_is_one_line_naming_what_was_wrong(database_url: str) -> None:
    code, _, err = invoke(database_url, "programs", "start", "--account", ACCOUNT, "--city", "mi/ami")
    assert code == 2 and "city: 'mi/ami' is not a city name" in err
    code, _, err = invoke(database_url, "programs", "start", "--account", ACCOUNT, "--city", "x", "--program", "ebay")
    assert code == 2 and "unknown program 'ebay'" in err
    code, _, err = invoke(database_url, "crawl", "tasks", "--account", ACCOUNT, "--status", "lost")
    assert code == 2 and "unknown status 'lost'" in err
    code, _, err = invoke(database_url, "crawl", "cancel", "--account", ACCOUNT, "--task-id", ACCOUNT)
    assert code == 2 and "no crawl task" in err
