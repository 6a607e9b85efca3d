"""Program commands: start needs active routing (or the override), runs once, stop cancels; discovers recur."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import anyio
import pytest

from actors.clock import FakeClock
from actors.crawl import CrawlTasks, normalise_city
from actors.hunter import open_hunter
from actors.programs import Programs, discover_task_id
from events.catalog import CrawlTaskEnqueued, ProgramStarted, program_stream
from events.errors import CommandRejected, NotFound
from events.postgres import PostgresEventStore
from gateways.listings.site import ListingSite, generate_listings, serve_listing_site
from tests.actors.hunter_support import ACCOUNT, OTHER, events, hunter_settings, of_type, route


async def test_start_needs_active_routing_unless_overridden(pg_store: PostgresEventStore) -> None:
    programs = Programs(pg_store)
    refused = await programs.start(ACCOUNT, "craigslist", "miami")
    assert refused.outcome == "needs_setup" and "not configured" in refused.message
    await route(pg_store, active=False)
    refused = await programs.start(ACCOUNT, "craigslist", "miami")
    assert refused.outcome == "needs_setup" and "configured but not active" in refused.message
    assert of_type(await events(pg_store, "program"), ProgramStarted) == []
    assert await events(pg_store, "crawl_task") == []
    started = await programs.start(ACCOUNT, "craigslist", "miami", override_routing=True, started_by="ops")
    assert started.outcome == "started"
    (event,) = of_type(await events(pg_store, "program"), ProgramStarted)
    assert event.routing_override and event.started_by == "ops"
    (task,) = of_type(await events(pg_store, "crawl_task"), CrawlTaskEnqueued)
    assert (
        task.task_id
        == started.discover_task_id
        == discover_task_id(program_stream(ACCOUNT, "craigslist", "miami"), 1, 0)
    )


async def test_a_running_program_asks_for_confirmation_and_is_never_started_twice(pg_store: PostgresEventStore) -> None:
    await route(pg_store)
    programs = Programs(pg_store)
    assert (await programs.start(ACCOUNT, "craigslist", "miami")).outcome == "started"
    before = len(await events(pg_store, "crawl_task"))
    again = await programs.start(ACCOUNT, "craigslist", "Miami")
    assert again.outcome == "needs_confirmation" and "runs already" in again.message
    assert len(await events(pg_store, "crawl_task")) == before
    assert len(of_type(await events(pg_store, "program"), ProgramStarted)) == 1
    # Another account's program of the same city is its own.
    await route(pg_store, OTHER)
    assert (await programs.start(OTHER, "craigslist", "miami")).outcome == "started"


@pytest.mark.parametrize(
    ("program", "city", "says"),
    [
        ("facebook", "miami", "program.start: program: unknown program 'facebook'"),
        ("craigslist", "mi/ami", "program.start: city: 'mi/ami' is not a city name"),
        ("craigslist", "", "program.start: city: '' is not a city name"),
    ],
)
async def test_bad_programs_and_cities_are_refused_naming_the_field(
    pg_store: PostgresEventStore, program: str, city: str, says: str
) -> None:
    with pytest.raises(CommandRejected, match=says.replace("(", r"\(")):
        await Programs(pg_store).start(ACCOUNT, program, city, override_routing=True)
    assert [e async for batch in pg_store.read_all(0) for e in batch] == []


async def test_cancelling_another_accounts_task_is_not_found(pg_store: PostgresEventStore) -> None:
    task_id = await CrawlTasks(pg_store).enqueue_discover(ACCOUNT, "miami")
    with pytest.raises(NotFound):
        await CrawlTasks(pg_store).cancel(OTHER, task_id, "nope")
    cancelled = await CrawlTasks(pg_store).cancel(ACCOUNT, task_id, "operator")
    assert cancelled.status == "cancelled"
    with pytest.raises(CommandRejected, match="cancelled already"):
        await CrawlTasks(pg_store).cancel(ACCOUNT, task_id, "again")


@pytest.fixture
async def base_url() -> AsyncIterator[str]:
    site = ListingSite(page_size=5)
    site.add_all(generate_listings("miami", 3, seed=9))
    async with serve_listing_site(site) as url:
        yield url


async def test_a_running_program_gets_one_discover_per_interval_whatever_the_number_of_hunters(
    pg_store: PostgresEventStore, base_url: str, tmp_path: Path
) -> None:
    await route(pg_store)
    started = await Programs(pg_store).start(ACCOUNT, "craigslist", "miami", discover_every_s=60)
    clock = FakeClock(start=(await pg_store.read_stream(program_stream(ACCOUNT, "craigslist", "miami")))[0].recorded_at)
    clock.advance(timedelta(seconds=61))
    one = hunter_settings(base_url, tmp_path, worker_id="a")
    two = hunter_settings(base_url, tmp_path, worker_id="b")
    async with open_hunter(pg_store, one, clock=clock) as a, open_hunter(pg_store, two, clock=clock):
        slot1 = discover_task_id(program_stream(ACCOUNT, "craigslist", "miami"), 1, 1)
        with anyio.fail_after(30):
            await a.wait_until(
                lambda h: any(t.task_id == slot1 for t in h.board.tasks.values()) or h.stats.discovers > 1
            )
    discovers = [
        e for e in of_type(await events(pg_store, "crawl_task"), CrawlTaskEnqueued) if e.task_type == "discover"
    ]
    assert [d.task_id for d in discovers] == [started.discover_task_id, slot1]


def test_cities_are_named_as_their_site_names_them() -> None:
    # Craigslist subdomains have no separators (the spec's enqueue SQL strips spaces the same way);
    # Encuentra24's countries are hyphenated slugs.
    assert normalise_city("program.start", " New York ") == "newyork"
    assert normalise_city("program.start", "Costa Rica", "encuentra24") == "costa-rica"
    with pytest.raises(CommandRejected, match="city: 'new-york' is not a city name"):
        normalise_city("program.start", "new-york")
    with pytest.raises(CommandRejected, match="city: 'costa/rica' is not a country slug"):
        normalise_city("program.start", "costa/rica", "encuentra24")
