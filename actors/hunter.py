"""The Craigslist hunter (and Encuentra24): claims crawl tasks and works them in real Chromium.

Every hunter process follows the crawl task and program streams of the log, so it knows what is
claimable: queued tasks, and claimed ones whose lease ran out (their worker died or hangs). A
claim is an append at the task's version: of several processes, one wins. Discover opens the
city's by-owner cars search, pages through it and queues one detail task per posting, ever
(the task id is derived from the account, the source and the posting id). Detail reads the
posting and ingests one lead per posting, ever (the lead id likewise), in the same atomic append
that ends the task. Failures end the task with their kind and evidence; gone postings end it
done, with no lead. While a program runs, the hunter queues its next discover every interval.
"""

from __future__ import annotations

import contextlib
import os
import random
import re
import socket
from collections.abc import AsyncIterator, Callable, Mapping
from datetime import timedelta
from html import escape
from pathlib import Path
from typing import Final

import anyio
import msgspec
import structlog
from anyio.abc import TaskStatus
from playwright.async_api import Browser, BrowserContext, Page, Playwright, async_playwright
from playwright.async_api import Error as PlaywrightError
from playwright.async_api import TimeoutError as PlaywrightTimeout

from actors.clock import Clock, SystemClock
from actors.crawl import CrawlTasks, LostTask, TaskState, detail_task_id, lead_id_for, task_from
from actors.programs import ProgramState, discover_task_id
from events.catalog import (
    CrawlTaskCancelled,
    CrawlTaskClaimed,
    CrawlTaskCompleted,
    CrawlTaskEnqueued,
    CrawlTaskFailed,
    CrawlTaskLeaseExtended,
    LeadIngested,
    ProgramStarted,
    ProgramStopped,
    crawl_task_stream,
    event_type,
)
from events.envelope import Envelope
from events.errors import ConcurrencyError, ConfigError
from events.settings import env_text, parse_flag, parse_int
from events.store import NO_STREAM, EventFilter, EventStore
from gateways.listings import Blocked, Gone, ListingSource, MissingDom, Posting, SearchPage
from gateways.listings.craigslist import Craigslist
from gateways.listings.encuentra24 import Encuentra24

log = structlog.get_logger("touchline.hunter")

SYSTEM_CHROMIUM: Final = "/usr/bin/chromium"
CHROMIUM_ARGS: Final = ("--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-dev-shm-usage")
_BODY_MAX: Final = 20_000
# What the hunter follows in the log: every crawl task's life, and programs starting and stopping.
_FOLLOWED: Final = frozenset(
    event_type(cls)
    for cls in (
        CrawlTaskEnqueued, CrawlTaskClaimed, CrawlTaskLeaseExtended, CrawlTaskCompleted, CrawlTaskFailed,
        CrawlTaskCancelled, ProgramStarted, ProgramStopped,
    )
)  # fmt: skip


class HunterSettings(msgspec.Struct, frozen=True, kw_only=True):
    """The spec's worker knobs (`CL_*`, with its defaults) and the hunter's own."""

    headless: bool = False  # CL_HEADLESS "0"; without a display the browser runs headless anyway
    slowmo_ms: int = 150  # CL_SLOWMO
    hard_timeout_ms: int = 15_000  # CL_HARD_TIMEOUT_MS: a navigation taking longer fails the task
    wait_selector_ms: int = 12_000  # CL_WAIT_SELECTOR_MS: how long a page may take to show its DOM
    jitter_min_ms: int = 2_000  # CL_JITTER_MIN_MS / CL_JITTER_MAX_MS: pause before each navigation
    jitter_max_ms: int = 4_000
    screenshot_dir: Path = Path("/tmp")  # CL_SCREENSHOT_DIR: evidence (screenshot + HTML)
    max_discover: int = 50  # CL_MAX_DISCOVER: postings taken per discover
    log_evidence: bool = True  # CL_LOG_EVIDENCE: log EVIDENCE {screenshot, html} on failures
    browser_path: str | None = None  # CL_BROWSER_PATH: default Playwright's own browser, else /usr/bin/chromium
    contexts: int = 1  # CL_CONTEXTS: browser contexts working tasks side by side
    lease_ms: int = 60_000  # CL_LEASE_MS: how long a claim holds before another worker may take over
    max_attempts: int = 3  # CL_MAX_ATTEMPTS: claims of one task before it fails as lease_expired
    worker_id: str = ""  # WORKER_ID (the spec's claimed_by); default host:pid
    templates: dict[str, str] = {}  # source → base URL template with {city}

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, **overrides: object) -> HunterSettings:
        env = os.environ if env is None else env
        values: dict[str, object] = {}
        ints = {
            "CL_SLOWMO": "slowmo_ms",
            "CL_HARD_TIMEOUT_MS": "hard_timeout_ms",
            "CL_WAIT_SELECTOR_MS": "wait_selector_ms",
            "CL_JITTER_MIN_MS": "jitter_min_ms",
            "CL_JITTER_MAX_MS": "jitter_max_ms",
            "CL_MAX_DISCOVER": "max_discover",
            "CL_CONTEXTS": "contexts",
            "CL_LEASE_MS": "lease_ms",
            "CL_MAX_ATTEMPTS": "max_attempts",
        }
        for var, field in ints.items():
            if (raw := env_text(env, var)) is not None:
                at_least_one = field in ("contexts", "max_attempts", "max_discover")
                values[field] = parse_int(var, raw, low=1 if at_least_one else 0)
        for var, field in {"CL_HEADLESS": "headless", "CL_LOG_EVIDENCE": "log_evidence"}.items():
            if (raw := env_text(env, var)) is not None:
                values[field] = parse_flag(var, raw)
        if (raw := env_text(env, "CL_SCREENSHOT_DIR")) is not None:
            values["screenshot_dir"] = Path(raw)
        if (raw := env_text(env, "CL_BROWSER_PATH")) is not None:
            values["browser_path"] = raw
        values["worker_id"] = env_text(env, "WORKER_ID") or f"{socket.gethostname()}:{os.getpid()}"
        templates = {}
        for source in SOURCES.values():
            templates[source.key] = _template(
                source.base_url_env, env_text(env, source.base_url_env) or source.default_base_url
            )
        values["templates"] = templates
        values.update({k: v for k, v in overrides.items() if v is not None})
        settings = cls(**values)  # type: ignore[arg-type]
        if settings.jitter_max_ms < settings.jitter_min_ms:
            raise ConfigError(
                f"CL_JITTER_MAX_MS ({settings.jitter_max_ms}) is below CL_JITTER_MIN_MS ({settings.jitter_min_ms})"
            )
        if settings.lease_ms < settings.hard_timeout_ms + settings.wait_selector_ms:
            raise ConfigError(
                f"CL_LEASE_MS ({settings.lease_ms}) must cover a navigation and its wait "
                f"(CL_HARD_TIMEOUT_MS + CL_WAIT_SELECTOR_MS = {settings.hard_timeout_ms + settings.wait_selector_ms})"
            )
        return settings


def _template(name: str, raw: str) -> str:
    if "{city}" not in raw:
        raise ConfigError(f"{name} must contain {{city}} (e.g. https://{{city}}.craigslist.org), got {raw!r}")
    if not re.match(r"^https?://", raw):
        raise ConfigError(f"{name} must start with http:// or https://, got {raw!r}")
    try:
        raw.format(city="x")
    except (KeyError, IndexError, ValueError):
        raise ConfigError(f"{name} may hold only the {{city}} placeholder, got {raw!r}") from None
    return raw.rstrip("/")


SOURCES: Final[dict[str, ListingSource]] = {s.key: s for s in (Craigslist(), Encuentra24())}


def browser_executable(configured: str | None, playwright: Playwright) -> str:
    """CL_BROWSER_PATH, else Playwright's own Chromium when installed, else Debian's."""
    if configured:
        if not Path(configured).exists():
            raise ConfigError(f"CL_BROWSER_PATH names {configured!r}, which does not exist")
        return configured
    with contextlib.suppress(Exception):
        own = playwright.chromium.executable_path
        if own and Path(own).exists():
            return own
    if Path(SYSTEM_CHROMIUM).exists():
        return SYSTEM_CHROMIUM
    raise ConfigError(
        "no Chromium for the hunter: install Debian's chromium (apt-get install -y chromium) or set CL_BROWSER_PATH"
    )


class HunterStats(msgspec.Struct, kw_only=True):
    claimed: int = 0
    discovers: int = 0
    details: int = 0
    leads: int = 0
    duplicates: int = 0
    gone: int = 0
    failed: dict[str, int] = {}
    lost: int = 0  # tasks taken over by another worker after our lease ran out
    cancelled: int = 0
    in_flight: int = 0
    state: str = "new"


class TaskFailure(Exception):
    """A task cannot be done: its kind (`blocked_403`, `goto_timeout`, ...) and what happened."""

    def __init__(self, kind: str, message: str, *, page: Page | None = None) -> None:
        super().__init__(f"{kind}: {message}")
        self.kind = kind
        self.message = message
        self.page = page


class Board:
    """The tasks and programs this process knows, folded from the log and followed live."""

    def __init__(self) -> None:
        self.tasks: dict[str, TaskState] = {}  # open tasks by stream id (ended ones are dropped)
        self.programs: dict[tuple[str, str, str], ProgramState] = {}  # (account, source, city)
        self.changed = anyio.Event()

    def apply(self, env: Envelope) -> None:
        event = env.event
        if isinstance(event, ProgramStarted | ProgramStopped):
            key = (str(event.account_id), event.program_key, event.city)
            state = self.programs.get(key)
            if state is None:
                state = self.programs[key] = ProgramState(
                    account_id=event.account_id, program_key=event.program_key, city=event.city
                )
            state.apply(env)
            return
        if isinstance(event, CrawlTaskEnqueued):
            task = task_from(env)
            if task is not None:
                self.tasks[env.stream_id] = task
            return
        task = self.tasks.get(env.stream_id)
        if task is None or env.version <= task.version:
            return
        task.apply(env)
        if task.ended:
            del self.tasks[env.stream_id]

    def wake(self) -> None:
        self.changed.set()
        self.changed = anyio.Event()

    def program_of(self, task: TaskState) -> ProgramState | None:
        return self.programs.get((str(task.account_id), task.source, task.city))


class Hunter:
    """The hunter role: one browser, `contexts` slots each working one task at a time."""

    name = "hunter"

    def __init__(
        self,
        store: EventStore,
        settings: HunterSettings | None = None,
        *,
        clock: Clock | None = None,
        sources: Mapping[str, ListingSource] | None = None,
    ) -> None:
        self.store = store
        self.settings = settings or HunterSettings.from_env()
        self.clock = clock or SystemClock()
        self.sources = dict(sources or SOURCES)
        self.tasks = CrawlTasks(store)
        self.board = Board()
        self.stats = HunterStats()
        self.log = log.bind(worker=self.settings.worker_id)
        self._taking: set[str] = set()
        self._draining = False  # stopping: no new task is taken
        self._stopping = anyio.Event()
        self._stopped = anyio.Event()
        self._cancel: anyio.CancelScope | None = None
        self._browser: Browser | None = None
        self._playwright: Playwright | None = None
        self._launching = anyio.Lock()
        self._pages: dict[int, Page] = {}  # by id() of the browser context it belongs to
        self._progress = anyio.Event()

    # --- lifecycle -----------------------------------------------------------------------------

    async def run(self, *, task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
        self.stats.state = "starting"
        try:
            async with async_playwright() as playwright:
                self._playwright = playwright
                try:
                    async with anyio.create_task_group() as tg:
                        self._cancel = tg.cancel_scope
                        loaded = anyio.Event()
                        tg.start_soon(self._follow, loaded)
                        await loaded.wait()
                        tg.start_soon(self._schedule_discovers)
                        for n in range(self.settings.contexts):
                            tg.start_soon(self._slot, n)
                        self.stats.state = "running"
                        self.log.info(
                            "hunter_started", contexts=self.settings.contexts, open_tasks=len(self.board.tasks),
                            programs=sum(p.running for p in self.board.programs.values()),
                        )  # fmt: skip
                        task_status.started()
                        await self._stopping.wait()
                        tg.cancel_scope.cancel()
                finally:
                    if self._browser is not None:
                        with anyio.CancelScope(shield=True), anyio.move_on_after(5), contextlib.suppress(Exception):
                            await self._browser.close()
        finally:
            self.stats.state = "stopped"
            self._stopped.set()

    async def stop(self, grace: float = 10.0) -> None:
        """Stop taking tasks; tasks in flight get `grace` seconds to end, then are let go (their
        lease runs out and another worker takes them over)."""
        if self._stopping.is_set():
            return
        self.stats.state = "stopping"
        self._draining = True
        with anyio.move_on_after(grace):
            while self.stats.in_flight:
                await self._progressed()
        self._stopping.set()
        if self._cancel is not None:
            with anyio.move_on_after(grace):
                await self._stopped.wait()

    async def _launch(self) -> Browser:
        """The browser, launched when the first task comes (a hunter with nothing to do needs none)."""
        async with self._launching:
            if self._browser is None or not self._browser.is_connected():
                assert self._playwright is not None
                self._browser = await self._start_browser(self._playwright)
            return self._browser

    async def _start_browser(self, playwright: Playwright) -> Browser:
        headless = self.settings.headless
        if not headless and not os.environ.get("DISPLAY"):
            self.log.warning("CL_HEADLESS_NO_DISPLAY", message="CL_HEADLESS=0 but there is no display: headless")
            headless = True
        path = browser_executable(self.settings.browser_path, playwright)
        return await playwright.chromium.launch(
            executable_path=path, headless=headless, slow_mo=self.settings.slowmo_ms, args=list(CHROMIUM_ARGS)
        )

    async def wait_until(self, condition: Callable[[Hunter], bool]) -> None:
        """Until `condition(self)` holds, woken whenever the hunter made progress (tests, bench)."""
        while not condition(self):
            await self._progressed()

    async def _progressed(self) -> None:
        await self._progress.wait()

    def _moved(self) -> None:
        self._progress.set()
        self._progress = anyio.Event()

    # --- knowing the work ----------------------------------------------------------------------

    async def _follow(self, loaded: anyio.Event) -> None:
        async for batch in self.store.follow(EventFilter(types=_FOLLOWED), loaded, pace_s=0.05):
            for env in batch:
                self.board.apply(env)
            self.board.wake()
            self._moved()

    async def _schedule_discovers(self) -> None:
        """Queue each running program's discover of the current time slot (the same task id in
        every process: whichever appends first queues it, the others find it there)."""
        queued: set[str] = set()
        while True:
            now = self.clock.now()
            for program in list(self.board.programs.values()):
                slot = program.discover_slot(now)
                if slot < 1:
                    continue
                task_id = discover_task_id(program.stream_id, program.started_version, slot)
                stream = crawl_task_stream(task_id)
                if stream in queued:
                    continue
                enqueued = CrawlTaskEnqueued(
                    task_id=task_id, account_id=program.account_id, task_type="discover", city=program.city,
                    source=program.program_key, enqueued_by=f"program:{program.discover_every_s}s",
                )  # fmt: skip
                with contextlib.suppress(ConcurrencyError):
                    await self.store.append(stream, [enqueued], expected_version=NO_STREAM)
                queued.add(stream)
            await self._sleep(5.0)

    async def _sleep(self, seconds: float) -> None:
        await self.clock.sleep_until(self.clock.now() + timedelta(seconds=seconds))

    def _next(self) -> TaskState | None:
        if self._draining:
            return None
        now = self.clock.now()
        for stream, task in self.board.tasks.items():
            if stream not in self._taking and task.claimable(now) and task.source in self.sources:
                return task
        return None

    async def _wait_for_work(self) -> TaskState:
        while True:
            task = self._next()
            if task is not None:
                self._taking.add(task.stream_id)
                # A copy: the board folds other workers' claims into its own object meanwhile.
                return msgspec.structs.replace(task)
            changed = self.board.changed
            # A lease running out makes a task claimable without any event: look again soon.
            with anyio.move_on_after(1.0):
                await changed.wait()

    # --- working a task ------------------------------------------------------------------------

    async def _slot(self, n: int) -> None:
        context: BrowserContext | None = None
        try:
            while True:
                task = await self._wait_for_work()
                try:
                    if context is None:
                        context = await self._new_context()
                    context = await self._work(task, context, f"{self.settings.worker_id}#{n}")
                finally:
                    self._taking.discard(task.stream_id)
        finally:
            if context is not None:
                with anyio.CancelScope(shield=True), contextlib.suppress(PlaywrightError), anyio.move_on_after(5):
                    await context.close()

    async def _new_context(self) -> BrowserContext:
        browser = await self._launch()
        return await browser.new_context(
            user_agent=(
                "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0 Safari/537.36"
            ),
            viewport={"width": 1280, "height": 900},
            locale="en-US",
        )

    async def _work(self, task: TaskState, context: BrowserContext, worker: str) -> BrowserContext:
        """Claim and do one task; returns the context to go on with (a fresh one after a reset)."""
        now = self.clock.now()
        program = self.board.program_of(task)
        try:
            if program is not None and not program.running and (program.stopped_at or now) > task.enqueued_at:
                await self.tasks.cancel_task(task, "program stopped")
                self.stats.cancelled += 1
                return context
            if task.attempts >= self.settings.max_attempts:
                await self.tasks.fail(
                    task,
                    CrawlTaskFailed(
                        task_id=task.task_id, account_id=task.account_id, error_kind="lease_expired",
                        last_error=f"claimed {task.attempts} times, last by {task.claimed_by}, and never finished",
                        attempt=task.attempts,
                    ),
                )  # fmt: skip
                self.stats.failed["lease_expired"] = self.stats.failed.get("lease_expired", 0) + 1
                return context
            lease_until = now + timedelta(milliseconds=self.settings.lease_ms)
            task = await self.tasks.claim(task, worker, lease_until, now)
        except LostTask:
            return context
        self.stats.claimed += 1
        self.stats.in_flight += 1
        holder = _Held(task)
        try:
            async with anyio.create_task_group() as tg:
                tg.start_soon(self._keep_lease, holder)
                try:
                    context = await self._do(holder, context)
                finally:
                    tg.cancel_scope.cancel()
        except* LostTask:  # raised inside the task group, so it arrives grouped
            self.stats.lost += 1
            self.log.warning("crawl_task_lost", task_id=str(task.task_id), reason="lease taken over or task ended")
        finally:
            self.stats.in_flight -= 1
            self._moved()
        return context

    async def _keep_lease(self, holder: _Held) -> None:
        """Extend the lease at a third of its length while the task is worked (a long discover)."""
        third = self.settings.lease_ms / 3000
        while True:
            await self._sleep(third)
            async with holder.lock:
                if holder.ended:  # its outcome is recorded: nothing left to hold (the page may still be closing)
                    return
                until = self.clock.now() + timedelta(milliseconds=self.settings.lease_ms)
                holder.task = await self.tasks.extend(holder.task, until)

    async def _do(self, holder: _Held, context: BrowserContext) -> BrowserContext:
        task = holder.task
        source = self.sources[task.source]
        # One page per context, reused task after task: opening a page costs more than loading one.
        page = self._pages.get(id(context))
        if page is None or page.is_closed():
            page = self._pages[id(context)] = await context.new_page()
        try:
            if task.task_type == "discover":
                done, lead = await self._discover(task, source, page), None
            else:
                done, lead = await self._detail(task, source, page)
            async with holder.lock:
                ingested = await self.tasks.complete(holder.task, done, lead)
                holder.ended = True
            self._count(task, done, lead, ingested=ingested)
            return context
        except TaskFailure as failure:
            reset = failure.kind == "goto_timeout"
            screenshot, html = await self._evidence(task, failure.page or page, str(failure))
            if self.settings.log_evidence:
                self.log.warning(
                    "EVIDENCE", task_id=str(task.task_id), kind=failure.kind, screenshot=screenshot, html=html
                )
            failed = CrawlTaskFailed(
                task_id=task.task_id, account_id=task.account_id, error_kind=failure.kind,
                last_error=failure.message[:2000], screenshot_path=screenshot, html_path=html, attempt=task.attempts,
            )  # fmt: skip
            async with holder.lock:
                await self.tasks.fail(holder.task, failed)
                holder.ended = True
            self.stats.failed[failure.kind] = self.stats.failed.get(failure.kind, 0) + 1
            self.log.warning("crawl_task_failed", task_id=str(task.task_id), kind=failure.kind, error=failure.message)
            if reset:
                # A page that timed out may keep its context busy: start over with a clean one.
                self._pages.pop(id(context), None)
                with anyio.CancelScope(shield=True), contextlib.suppress(PlaywrightError), anyio.move_on_after(5):
                    await page.close()
                    await context.close()
                return await self._new_context()
            return context

    def _count(self, task: TaskState, done: CrawlTaskCompleted, lead: LeadIngested | None, *, ingested: bool) -> None:
        if task.task_type == "discover":
            self.stats.discovers += 1
        else:
            self.stats.details += 1
            if done.gone:
                self.stats.gone += 1
            elif ingested:
                self.stats.leads += 1
            elif lead is not None:
                self.stats.duplicates += 1
        self.log.info(
            "crawl_task_done", task_id=str(task.task_id), task_type=task.task_type, city=task.city,
            found=done.found, seen=done.seen, gone=done.gone, lead_id=str(lead.lead_id) if lead else None,
        )  # fmt: skip

    async def _open(self, page: Page, url: str, source: ListingSource) -> tuple[int, str]:
        """Navigate (after the jitter pause) and return the HTTP status and the HTML."""
        low, high = self.settings.jitter_min_ms, self.settings.jitter_max_ms
        if high > 0:
            await anyio.sleep(random.uniform(low, high) / 1000)
        try:
            response = await page.goto(url, timeout=self.settings.hard_timeout_ms, wait_until="domcontentloaded")
        except PlaywrightTimeout:
            raise TaskFailure(
                "goto_timeout",
                f"{url} did not load within CL_HARD_TIMEOUT_MS={self.settings.hard_timeout_ms}",
                page=page,
            ) from None
        except PlaywrightError as exc:
            raise TaskFailure("goto_error", f"{url}: {str(exc).splitlines()[0]}", page=page) from None
        status = response.status if response is not None else 0
        html = await self._content(page)
        if (blocked := source.check_block(html, status)) is not None:
            raise TaskFailure(blocked.kind, f"{url}: HTTP {blocked.status}: {blocked.message}", page=page)
        return status, html

    async def _content(self, page: Page) -> str:
        try:
            with anyio.fail_after(self.settings.hard_timeout_ms / 1000):
                return await page.content()
        except TimeoutError:
            raise TaskFailure("goto_timeout", f"{page.url}: the page never settled", page=page) from None

    async def _discover(self, task: TaskState, source: ListingSource, page: Page) -> CrawlTaskCompleted:
        base = self.settings.templates[source.key].format(city=task.city)
        url: str | None = source.search_url(base)
        postings: dict[str, str] = {}
        pages = 0
        visited: set[str] = set()
        while url and url not in visited and len(postings) < self.settings.max_discover:
            visited.add(url)
            status, html = await self._open(page, url, source)
            if status >= 400:
                raise TaskFailure(f"http_{status}", f"{url}: the search answered HTTP {status}", page=page)
            results = await self._parse_search(source, page, html, url)
            pages += 1
            for posting_url in results.posting_urls:
                posting_id = source.posting_id(posting_url)
                if posting_id is not None and posting_id not in postings:
                    postings[posting_id] = posting_url
                    if len(postings) >= self.settings.max_discover:
                        break
            url = results.next_url
        found = 0
        for posting_id, posting_url in postings.items():
            detail_id = detail_task_id(task.account_id, source.key, posting_id)
            enqueued = CrawlTaskEnqueued(
                task_id=detail_id, account_id=task.account_id, task_type="detail", city=task.city, source=source.key,
                url=posting_url, posting_id=posting_id, enqueued_by="hunter", parent_task_id=task.task_id,
            )  # fmt: skip
            try:
                await self.store.append(crawl_task_stream(detail_id), [enqueued], expected_version=NO_STREAM)
            except ConcurrencyError:
                continue  # found before: on an earlier run, an earlier page, or reposted
            found += 1
        return CrawlTaskCompleted(
            task_id=task.task_id, account_id=task.account_id, found=found, seen=len(postings), pages=pages
        )

    async def _parse_search(self, source: ListingSource, page: Page, html: str, url: str) -> SearchPage:
        try:
            return source.parse_search(html, url)
        except ValueError as exc:
            problem = str(exc)
        if await self._appears(page, source.search_ready):
            try:
                return source.parse_search(await self._content(page), url)
            except ValueError as exc:
                problem = str(exc)
        raise TaskFailure("search_missing_dom", problem, page=page)

    async def _appears(self, page: Page, selector: str) -> bool:
        """Whether the page shows `selector` within CL_WAIT_SELECTOR_MS (pages that render late)."""
        if self.settings.wait_selector_ms == 0:
            return False
        try:
            await page.wait_for_selector(selector, timeout=self.settings.wait_selector_ms, state="attached")
        except (PlaywrightTimeout, PlaywrightError):
            return False
        return True

    async def _detail(
        self, task: TaskState, source: ListingSource, page: Page
    ) -> tuple[CrawlTaskCompleted, LeadIngested | None]:
        assert task.url is not None and task.posting_id is not None
        status, html = await self._open(page, task.url, source)
        result = source.parse_detail(html, task.url, status)
        if isinstance(result, MissingDom) and status < 400 and await self._appears(page, source.detail_ready):
            result = source.parse_detail(await self._content(page), task.url, status)
        done = CrawlTaskCompleted(task_id=task.task_id, account_id=task.account_id)
        match result:
            case Gone():
                self.log.info("posting_gone", task_id=str(task.task_id), reason=result.reason, status=result.status)
                return msgspec.structs.replace(done, gone=result.reason), None
            case Blocked():
                raise TaskFailure(result.kind, f"{task.url}: HTTP {result.status}: {result.message}", page=page)
            case MissingDom():
                raise TaskFailure("detail_missing_dom", f"{task.url}: {result.message}", page=page)
            case Posting():
                if status >= 400:
                    raise TaskFailure(f"http_{status}", f"{task.url}: answered HTTP {status}", page=page)
                lead = self._lead(task, source, result)
                return msgspec.structs.replace(done, found=1, lead_id=lead.lead_id), lead
        raise AssertionError(f"unexpected parse result {result!r}")

    def _lead(self, task: TaskState, source: ListingSource, posting: Posting) -> LeadIngested:
        assert task.posting_id is not None
        return LeadIngested(
            lead_id=lead_id_for(task.account_id, source.key, task.posting_id),
            account_id=task.account_id,
            source=source.key,
            external_id=task.posting_id,
            country=posting.country,
            city=task.city,
            url=task.url,
            title=posting.title,
            price=posting.price,
            body=posting.body[:_BODY_MAX],
            attributes=posting.attributes,
            neighborhood=posting.neighborhood,
            latitude=posting.latitude,
            longitude=posting.longitude,
            posted_at=posting.posted_at,
            first_seen_at=task.enqueued_at,
            phone=posting.phones[0] if posting.phones else None,
            email=posting.emails[0] if posting.emails else None,
            name=posting.name,
        )

    async def _evidence(self, task: TaskState, page: Page, failure: str) -> tuple[str | None, str | None]:
        """Screenshot and HTML of the page as it was when the task failed (best effort, bounded)."""
        directory = self.settings.screenshot_dir
        stem = f"touchline-{task.source}-{task.task_type}-{task.task_id}-a{task.attempts}"
        screenshot: str | None = str(directory / f"{stem}.png")
        html: str | None = str(directory / f"{stem}.html")
        with anyio.CancelScope(shield=True):
            try:
                directory.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                self.log.warning("evidence_unwritable", directory=str(directory), error=str(exc))
                return None, None
            try:
                with anyio.fail_after(4):
                    await page.screenshot(path=screenshot, timeout=3000)
            except (PlaywrightError, TimeoutError):
                screenshot = None
            try:
                with anyio.fail_after(3):
                    content = await page.content()
            except (PlaywrightError, TimeoutError):
                # A navigation that never answered leaves no document to save: say so instead.
                content = f"<!-- touchline: no document: {escape(failure)} at {escape(page.url)} -->\n"
            try:
                assert html is not None
                await anyio.Path(html).write_text(content)
            except OSError:
                html = None
        return screenshot, html


class _Held:
    """The task a slot works, as the last append left it (the lease keeper extends it meanwhile)."""

    def __init__(self, task: TaskState) -> None:
        self.task = task
        self.lock = anyio.Lock()
        self.ended = False  # completed or failed: the lease keeper stops


@contextlib.asynccontextmanager
async def open_hunter(
    store: EventStore, settings: HunterSettings | None = None, *, clock: Clock | None = None
) -> AsyncIterator[Hunter]:
    """A running hunter for the duration of the block (tests, the bench, the demo)."""
    hunter = Hunter(store, settings, clock=clock)
    async with anyio.create_task_group() as tg:
        await tg.start(hunter.run)
        try:
            yield hunter
        finally:
            await hunter.stop(grace=5)
            tg.cancel_scope.cancel()


__all__ = ["Hunter", "HunterSettings", "HunterStats", "TaskFailure", "open_hunter"]
