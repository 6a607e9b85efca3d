"""`touchline bench hunter`: detail pages a minute in real Chromium, beside raw aiohttp fetch + parse."""

from __future__ import annotations

import tempfile
import time
import uuid
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Final

import aiohttp
import anyio
import msgspec
from playwright.async_api import async_playwright

from actors.crawl import CrawlTasks, fold_task
from actors.hunter import CHROMIUM_ARGS, Hunter, HunterSettings, browser_executable, open_hunter
from events.catalog import CrawlTaskClaimed, LeadIngested
from events.envelope import Envelope
from events.errors import TouchlineError
from events.postgres import open_postgres_store
from events.store import EventFilter, EventStore
from gateways.listings import Posting
from gateways.listings.craigslist import Craigslist
from gateways.listings.site import CRAIGSLIST_TEMPLATE_PATH, ListingSite, generate_listings, serve_listing_site

CITY: Final = "miami"
_BASELINE_MIN_SECONDS: Final = 2.0  # a baseline pass over 60 local pages takes well under a second: repeat it
_BASELINE_MAX_PASSES: Final = 50


class HunterBenchRun(msgspec.Struct, frozen=True, kw_only=True):
    """One hunter run with `contexts` browser contexts over the same postings (a fresh account)."""

    contexts: int
    details: int  # detail tasks that ended done
    failed: int  # detail tasks that ended failed (none, on a healthy run)
    leads: int
    seconds: float  # first detail task claimed → last detail task ended, by the log's own clock
    details_per_min: float
    leads_per_min: float
    events: int  # events the run appended to the log (tasks, claims, ends, leads)
    wall_seconds: float  # enqueue of the discover → every task ended, browser launch and discover included


class HunterBenchResult(msgspec.Struct, frozen=True, kw_only=True):
    postings: int
    city: str
    runs: list[HunterBenchRun]
    baseline_pages: int  # pages fetched and parsed by each baseline (whole passes over the postings)
    baseline_fetch_parse_per_min: float  # aiohttp GET + Craigslist.parse_detail, one page at a time
    baseline_fetch_parse_4x_per_min: float  # the same, four at a time
    baseline_browser_per_min: float  # Chromium alone: one context, one page reused, parse, no log
    chromium_version: str


Progress = Callable[[str], None]


class HunterBenchError(TouchlineError):
    """The bench could not measure: a run did not do its work (the figures would mean nothing)."""


async def run_hunter_bench(
    dsn: str,
    *,
    postings: int = 60,
    contexts: Sequence[int] = (1, 2, 4),
    progress: Progress | None = None,
) -> HunterBenchResult:
    """Serve `postings` Craigslist listings locally; time the hunter over them once per context count.

    `dsn` names an empty, migrated database (the CLI makes one and drops it after). Each run works
    for an account of its own, so its detail tasks and leads are new (both are unique per account
    and posting) and the runs do not see each other's work. The figure counts from the first detail
    task claimed, so the browser launch (which comes before any claim) and the search page are
    left out; `wall_seconds` has them in.
    """
    if postings < 1 or not contexts or min(contexts) < 1:
        raise ValueError("the hunter bench needs at least one posting and context counts of at least 1")
    site = ListingSite(page_size=120)
    site.add_all(generate_listings(CITY, postings, seed=11))
    async with serve_listing_site(site) as base_url:
        urls = [base_url + site.posting_path(listing) for listing in site.listings("craigslist", CITY)]
        if progress:
            progress(f"baseline: Chromium alone over {postings} pages")
        version, browser_rate = await _browser_baseline(urls)
        if progress:
            progress(f"baseline: aiohttp GET + parse_detail of {postings} pages")
        pages, sequential = await _fetch_parse_baseline(urls, concurrency=1)
        _, four = await _fetch_parse_baseline(urls, concurrency=4)
        runs: list[HunterBenchRun] = []
        with tempfile.TemporaryDirectory(prefix="touchline-hunter-bench-") as evidence:
            async with open_postgres_store(dsn, writers=2) as store:
                for n in contexts:
                    if progress:
                        progress(f"hunter with {n} context(s)")
                    runs.append(await _run_once(store, base_url, Path(evidence), postings, n))
    return HunterBenchResult(
        postings=postings,
        city=CITY,
        runs=runs,
        baseline_pages=pages,
        baseline_fetch_parse_per_min=round(sequential, 1),
        baseline_fetch_parse_4x_per_min=round(four, 1),
        baseline_browser_per_min=round(browser_rate, 1),
        chromium_version=version,
    )


async def _browser_baseline(urls: list[str]) -> tuple[str, float]:
    """Chromium's version, and pages a minute it opens and reads alone: one context and one page
    reused for every posting, as the hunter's slot does, no log. (Its launch also warms the disk cache.)"""
    source = Craigslist()
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(
            executable_path=browser_executable(None, playwright), headless=True, args=list(CHROMIUM_ARGS)
        )
        try:
            context = await browser.new_context()
            page = await context.new_page()
            started = time.perf_counter()
            for url in urls:
                response = await page.goto(url, wait_until="domcontentloaded")
                status = response.status if response is not None else 0
                result = source.parse_detail(await page.content(), url, status)
                if not isinstance(result, Posting):
                    raise HunterBenchError(f"Chromium read no posting at {url} (HTTP {status}): {result!r}")
            rate = len(urls) / (time.perf_counter() - started) * 60
            await context.close()
            return browser.version, rate
        finally:
            await browser.close()


async def _fetch_parse_baseline(urls: list[str], *, concurrency: int) -> tuple[int, float]:
    """Pages a minute fetched by raw aiohttp and parsed (no browser, no log), in whole passes."""
    source = Craigslist()

    async def one(session: aiohttp.ClientSession, url: str) -> None:
        async with session.get(url) as response:
            html = await response.text()
            status = response.status
        result = source.parse_detail(html, url, status)
        if isinstance(result, Posting):
            return
        raise HunterBenchError(f"the baseline read no posting at {url} (HTTP {status}): {result!r}")

    async def worker(session: aiohttp.ClientSession, queue: list[str]) -> None:
        while queue:
            await one(session, queue.pop())

    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector) as session:
        await one(session, urls[0])  # the connection opened before the clock starts
        done = passes = 0
        started = time.perf_counter()
        while passes < _BASELINE_MAX_PASSES and (passes == 0 or time.perf_counter() - started < _BASELINE_MIN_SECONDS):
            queue = list(reversed(urls))
            async with anyio.create_task_group() as tg:
                for _ in range(concurrency):
                    tg.start_soon(worker, session, queue)
            done += len(urls)
            passes += 1
        seconds = time.perf_counter() - started
    return done, done / seconds * 60


async def _run_once(store: EventStore, base_url: str, evidence: Path, postings: int, contexts: int) -> HunterBenchRun:
    account = uuid.uuid4()
    settings = HunterSettings(
        headless=True,
        slowmo_ms=0,
        jitter_min_ms=0,
        jitter_max_ms=0,
        screenshot_dir=evidence,
        max_discover=postings,
        contexts=contexts,
        worker_id=f"bench-hunter-{contexts}",
        templates={"craigslist": base_url + CRAIGSLIST_TEMPLATE_PATH},
    )

    def finished(hunter: Hunter) -> bool:
        # The discover leaves the board only once the log delivered its end, which comes after every
        # detail task it queued: no task of the account left open means every one of them ended.
        ended = hunter.stats.discovers + sum(hunter.stats.failed.values()) > 0
        open_tasks = any(t.account_id == account for t in hunter.board.tasks.values())
        return ended and not open_tasks and hunter.stats.in_flight == 0

    async with open_hunter(store, settings) as hunter:
        started = time.perf_counter()
        await CrawlTasks(store).enqueue_discover(account, CITY, enqueued_by="bench")
        with anyio.fail_after(60 + postings * 5 / contexts):
            await hunter.wait_until(finished)
        wall = time.perf_counter() - started
    envelopes = [e async for batch in store.read_all(0, filter=EventFilter(account_id=account)) for e in batch]
    streams: dict[str, list[Envelope]] = {}
    for env in envelopes:
        if env.category == "crawl_task":
            streams.setdefault(env.stream_id, []).append(env)
    tasks = {stream: fold_task(envs) for stream, envs in streams.items()}
    discovers = [t for t in tasks.values() if t is not None and t.task_type == "discover"]
    if not any(t.status == "done" for t in discovers):
        raise HunterBenchError(
            f"the bench's discover did not succeed ({[t.last_error for t in discovers]}): check that Chromium "
            "starts (apt-get install -y chromium, or set CL_BROWSER_PATH)"
        )
    details = {stream: t for stream, t in tasks.items() if t is not None and t.task_type == "detail"}
    if not details:
        raise HunterBenchError("the bench's discover queued no detail task: the local site served no search results")
    # A task's stream ends with its end (completed or failed); its claims come before.
    claimed = [e.recorded_at for s in details for e in streams[s] if isinstance(e.event, CrawlTaskClaimed)]
    ended = [streams[s][-1].recorded_at for s in details]
    seconds = max((max(ended) - min(claimed)).total_seconds(), 1e-6)
    done = sum(t.status == "done" for t in details.values())
    leads = sum(isinstance(e.event, LeadIngested) for e in envelopes)
    return HunterBenchRun(
        contexts=contexts,
        details=done,
        failed=sum(t.status == "failed" for t in details.values()),
        leads=leads,
        seconds=round(seconds, 3),
        details_per_min=round(done / seconds * 60, 1),
        leads_per_min=round(leads / seconds * 60, 1),
        events=len(envelopes),
        wall_seconds=round(wall, 3),
    )


def format_hunter_bench(result: HunterBenchResult) -> list[str]:
    """The figures as lines for a terminal: each run beside the baselines, as ratios."""
    seq, four = result.baseline_fetch_parse_per_min, result.baseline_fetch_parse_4x_per_min
    alone = result.baseline_browser_per_min
    lines = [
        f"hunter over {result.postings} local Craigslist postings ({result.city}), Chromium {result.chromium_version}, "
        "headless, no jitter, no slow motion",
        f"{'contexts':>8}  {'details/min':>11}  {'leads/min':>9}  {'seconds':>7}  {'events':>6}  "
        f"{'vs Chromium alone':>17}  {'vs fetch+parse':>14}  {'vs 4x fetch+parse':>17}",
    ]
    for run in result.runs:
        lines.append(
            f"{run.contexts:>8}  {run.details_per_min:>11,.0f}  {run.leads_per_min:>9,.0f}  {run.seconds:>7.2f}  "
            f"{run.events:>6,}  {run.details_per_min / alone:>17.2f}  {run.details_per_min / seq:>14.3f}  "
            f"{run.details_per_min / four:>17.3f}"
        )
    lines.append(f"baseline Chromium alone (one context, one page reused, no log): {alone:,.0f} pages/min")
    lines.append(
        f"baseline (raw aiohttp GET + Craigslist.parse_detail, no browser, no log, {result.baseline_pages} pages): "
        f"{seq:,.0f} pages/min one at a time, {four:,.0f} pages/min four at a time"
    )
    lines.append("timed from the first detail task claimed to the last one ended (browser launch and search excluded)")
    return lines


__all__ = ["HunterBenchError", "HunterBenchResult", "HunterBenchRun", "format_hunter_bench", "run_hunter_bench"]
