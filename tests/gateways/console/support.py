"""The console served for a test and a real Chromium driving it (Playwright), with screenshots kept.

The app is `create_app` with the console's routes added and its cookie middleware first, so the
tests pass whether or not `gateways.http` wires the console itself already.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Final

import anyio
import pytest
from aiohttp import web
from playwright.async_api import Browser, BrowserContext, Page, async_playwright

from actors.access import ApiTokens
from actors.hunter import CHROMIUM_ARGS, browser_executable
from events.errors import ConfigError
from events.postgres import PostgresEventStore
from events.settings import Settings
from gateways.console import add_routes, cookie_auth_middleware
from gateways.http import create_app
from projections.runner import ProjectionWorker
from tests.projections.helpers import caught_up, every_projection, running

ARTIFACTS: Final = Path(__file__).resolve().parents[3] / ".ci" / "artifacts" / "console"
ARGS: Final = list(dict.fromkeys([*CHROMIUM_ARGS, "--no-sandbox", "--disable-gpu", "--disable-background-networking"]))
TIMEOUT_MS: Final = 10_000


@contextlib.asynccontextmanager
async def serve_console(store: PostgresEventStore, *, middleware: str = "first") -> AsyncIterator[str]:
    """The app with the console, on 127.0.0.1 and a free port; yields its base URL.

    `middleware`: where the cookie middleware goes, "first" or "before_token_check" (right before
    the app's bearer-token middleware).
    """
    app = create_app(store, Settings(), env={})
    add_routes(app)
    add_routes(app)  # a second call (create_app may make the first one day) changes nothing
    if cookie_auth_middleware not in app.middlewares:
        names = [getattr(m, "__name__", "") for m in app.middlewares]
        at = names.index("_authenticate") if middleware == "before_token_check" else 0
        app.middlewares.insert(at, cookie_auth_middleware)
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0)
    await runner.setup()
    try:
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        host, port = runner.addresses[0][:2]
        yield f"http://{host}:{port}"
    finally:
        await runner.cleanup()


class Console:
    """One test's console: the store and read models, the served URL, a logged-out browser page."""

    def __init__(
        self,
        store: PostgresEventStore,
        workers: list[ProjectionWorker],
        url: str,
        browser: Browser,
        context: BrowserContext,
        page: Page,
        shots: Path,
        name: str,
    ) -> None:
        self.store = store
        self.workers = workers
        self.url = url
        self.browser = browser
        self.context = context
        self.page = page
        self.shots = shots
        self.name = name
        self._shot = 0

    async def caught_up(self) -> None:
        await caught_up(self.store, self.workers)

    async def token(self, account_id: uuid.UUID) -> str:
        _, token = await ApiTokens(self.store).issue(account_id, "console")
        await self.caught_up()
        return token

    async def new_context(self, *, javascript: bool = True) -> tuple[BrowserContext, Page]:
        context = await self.browser.new_context(base_url=self.url, java_script_enabled=javascript)
        context.set_default_timeout(TIMEOUT_MS)
        return context, await context.new_page()

    async def login(self, token: str, page: Page | None = None) -> None:
        page = page or self.page
        await page.goto("/console/login")
        await page.fill("#token", token)
        await page.click("#login-submit")
        await page.wait_for_url(re.compile(r"/console/programs"))

    async def shot(self, step: str, page: Page | None = None) -> Path:
        """A full-page PNG named after the step, kept under tmp_path and (best effort) in .ci/artifacts."""
        self._shot += 1
        path = self.shots / f"{self.name}-{self._shot:02d}-{step}.png"
        await (page or self.page).screenshot(path=str(path), full_page=True)
        with contextlib.suppress(OSError):
            ARTIFACTS.mkdir(parents=True, exist_ok=True)
            shutil.copy2(path, ARTIFACTS / path.name)
        return path

    async def reload_until(self, selector: str, *, within: float = 10.0, page: Page | None = None) -> None:
        """Reload until `selector` is on the page: a read model catching up with a change just made."""
        page = page or self.page
        deadline = time.monotonic() + within
        while await page.locator(selector).count() == 0:
            if time.monotonic() > deadline:
                raise AssertionError(f"{selector!r} not on {page.url} after {within:g} s")
            await anyio.sleep(0.2)
            await page.reload()


@contextlib.asynccontextmanager
async def open_console(store: PostgresEventStore, tmp_path: Path, name: str) -> AsyncIterator[Console]:
    shots = tmp_path / "screenshots"
    shots.mkdir(parents=True, exist_ok=True)
    async with (
        running(store, every_projection()) as workers,
        serve_console(store) as url,
        async_playwright() as playwright,
    ):
        try:
            executable = browser_executable(os.environ.get("CL_BROWSER_PATH"), playwright)
        except ConfigError as exc:
            pytest.skip(f"no Chromium: {exc}")
        browser = await playwright.chromium.launch(executable_path=executable, headless=True, args=ARGS)
        try:
            context = await browser.new_context(base_url=url)
            context.set_default_timeout(TIMEOUT_MS)
            page = await context.new_page()
            yield Console(store, workers, url, browser, context, page, shots, name)
        finally:
            await browser.close()
