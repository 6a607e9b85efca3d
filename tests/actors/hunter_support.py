"""Shared by the hunter tests: a local listings site, hunter settings pointing at it, and waits."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar
from uuid import UUID

import anyio

from actors.crawl import CrawlTasks, TaskState
from actors.hunter import Hunter, HunterSettings
from actors.org import OrgSettings
from events.catalog import Event, LeadgenRouting, LeadIngested
from events.envelope import Envelope
from events.postgres import PostgresEventStore
from events.store import EventFilter
from gateways.listings.site import CRAIGSLIST_TEMPLATE_PATH, ENCUENTRA24_TEMPLATE_PATH

ACCOUNT = uuid.UUID("00000000-0000-4000-8000-00000000c1a5")
OTHER = uuid.UUID("00000000-0000-4000-8000-00000000c1a6")


def hunter_settings(base_url: str, evidence: Path, **overrides: object) -> HunterSettings:
    """Fast knobs for tests: no jitter, no slow motion, short timeouts, headless."""
    values: dict[str, object] = {
        "headless": True,
        "slowmo_ms": 0,
        "hard_timeout_ms": 4000,
        "wait_selector_ms": 300,
        "jitter_min_ms": 0,
        "jitter_max_ms": 0,
        "screenshot_dir": evidence,
        "max_discover": 500,
        "lease_ms": 8000,
        "worker_id": "test-hunter",
        "templates": {
            "craigslist": base_url + CRAIGSLIST_TEMPLATE_PATH,
            "encuentra24": base_url + ENCUENTRA24_TEMPLATE_PATH,
        },
    }
    values.update(overrides)
    return HunterSettings(**values)  # type: ignore[arg-type]


async def route(store: PostgresEventStore, account: UUID = ACCOUNT, *, active: bool = True) -> None:
    org = OrgSettings(store)
    await org.update(account, business_name="Miami Motors", contact_email="sales@miamimotors.com")
    await org.set_routing(account, LeadgenRouting(dealer_address="1 Biscayne Blvd", radius_miles=20, active=active))


async def events(store: PostgresEventStore, category: str, account: UUID | None = None) -> list[Envelope]:
    wanted = EventFilter(category=category, account_id=account)
    return [e async for batch in store.read_all(0, filter=wanted) for e in batch]


async def leads(store: PostgresEventStore, account: UUID = ACCOUNT) -> list[LeadIngested]:
    return [e.event for e in await events(store, "lead", account) if isinstance(e.event, LeadIngested)]


async def tasks(store: PostgresEventStore, account: UUID = ACCOUNT) -> list[TaskState]:
    return await CrawlTasks(store).all(account)


async def settled(hunter: Hunter, store: PostgresEventStore, *, within: float = 60.0) -> list[TaskState]:
    """Until no task of the log is queued or claimed and the hunter holds none: every task ended."""

    def idle(h: Hunter) -> bool:
        return h.stats.in_flight == 0 and not h.board.tasks

    with anyio.fail_after(within):
        while True:
            await hunter.wait_until(idle)
            open_tasks = [t for t in await tasks(store) if not t.ended]
            if not open_tasks:
                return await tasks(store)
            with anyio.move_on_after(0.5):
                await hunter.wait_until(lambda h: not idle(h))


E = TypeVar("E", bound=Event)


def of_type(envelopes: list[Envelope], cls: type[E]) -> list[E]:
    return [e.event for e in envelopes if isinstance(e.event, cls)]


Predicate = Callable[[Hunter], bool]


def saved(path: str | None) -> bool:
    """Whether an evidence file was written (and is not empty)."""
    return path is not None and Path(path).is_file() and Path(path).stat().st_size > 0
