"""Crawl tasks (the hunter's discover/detail queue) as the log has them, and the commands on them.

A task is its own stream, `crawl_task-<id>`: enqueued, then claimed with a lease (again with the
next attempt when a lease expired), maybe extended, and ended once: completed, failed or
cancelled. Every command appends at the version it decided from, so two workers never both own a
task, and one whose lease was taken over cannot end it.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterable
from datetime import datetime
from typing import Final, Literal
from uuid import UUID

import msgspec

from events.catalog import (
    CrawlTaskCancelled,
    CrawlTaskClaimed,
    CrawlTaskCompleted,
    CrawlTaskEnqueued,
    CrawlTaskFailed,
    CrawlTaskLeaseExtended,
    Event,
    LeadIngested,
    crawl_task_stream,
    lead_stream,
)
from events.catalog.crawl import CATEGORY
from events.envelope import Envelope
from events.errors import CommandRejected, ConcurrencyError, NotFound
from events.store import NO_STREAM, EventFilter, EventStore, StreamAppend

TaskStatus = Literal["queued", "claimed", "done", "failed", "cancelled"]
SOURCES: Final = ("craigslist", "encuentra24")

_DETAIL_TASKS: Final = uuid.UUID("3d7c1f0e-8a44-4b7e-b2a9-5e0c6f1d2b77")
_CITY: Final = re.compile(r"^[a-z0-9]{2,40}$")  # the same rule as lead_hunter.enqueue_craigslist_discover_v1
_SLUG: Final = re.compile(r"^[a-z0-9][a-z0-9-]{1,40}$")


def detail_task_id(account_id: UUID, source: str, posting_id: str) -> UUID:
    """One detail task per (account, source, posting id), ever: reposts and later runs find it taken."""
    return uuid.uuid5(_DETAIL_TASKS, f"{account_id}:{source}:{posting_id}")


def lead_id_for(account_id: UUID, source: str, external_id: str) -> UUID:
    """One lead per (account, source, external id): the id says so, so nothing ingests it twice."""
    return uuid.uuid5(account_id, f"{source}:{external_id}")


def normalise_city(command: str, city: str, source: str = "craigslist") -> str:
    """The city as its site names it: Craigslist's subdomain (`New York` → `newyork`, as the spec's
    enqueue SQL does), Encuentra24's country slug (`Costa Rica` → `costa-rica`); refuses the rest."""
    words = (city or "").strip().lower().split()
    if source == "encuentra24":
        slug = "-".join(words)
        if not _SLUG.match(slug):
            raise CommandRejected(
                command, f"{city!r} is not a country slug (letters, digits and '-', e.g. costa-rica)", field="city"
            )
        return slug
    name = "".join(words)
    if not _CITY.match(name):
        raise CommandRejected(command, f"{city!r} is not a city name (letters and digits, e.g. miami)", field="city")
    return name


def check_source(command: str, source: str) -> str:
    if source not in SOURCES:
        raise CommandRejected(command, f"unknown program {source!r}; known: {', '.join(SOURCES)}", field="program")
    return source


class TaskState(msgspec.Struct, kw_only=True):
    """One crawl task folded from its stream."""

    task_id: UUID
    account_id: UUID
    task_type: str
    city: str
    source: str
    url: str | None
    posting_id: str | None
    parent_task_id: UUID | None
    enqueued_by: str
    enqueued_at: datetime
    status: TaskStatus = "queued"
    attempts: int = 0
    claimed_by: str | None = None
    lease_until: datetime | None = None
    last_error: str | None = None
    version: int = 1

    @property
    def stream_id(self) -> str:
        return crawl_task_stream(self.task_id)

    @property
    def ended(self) -> bool:
        return self.status in ("done", "failed", "cancelled")

    def claimable(self, now: datetime) -> bool:
        """Queued, or claimed by a worker whose lease ran out (it died, or hangs)."""
        if self.status == "queued":
            return True
        return self.status == "claimed" and self.lease_until is not None and self.lease_until <= now

    def apply(self, env: Envelope) -> None:
        event = env.event
        match event:
            case CrawlTaskClaimed():
                self.status = "claimed"
                self.claimed_by = event.claimed_by
                self.lease_until = event.lease_until
                self.attempts = max(self.attempts, event.attempt)
            case CrawlTaskLeaseExtended():
                self.lease_until = event.lease_until
            case CrawlTaskCompleted():
                self.status = "done"
                self.lease_until = None
            case CrawlTaskFailed():
                self.status = "failed"
                self.last_error = f"{event.error_kind}: {event.last_error}"
                self.lease_until = None
            case CrawlTaskCancelled():
                self.status = "cancelled"
                self.last_error = event.reason
                self.lease_until = None
        self.version = env.version


def task_from(env: Envelope) -> TaskState | None:
    """The task an enqueue starts (None for any other event)."""
    event = env.event
    if not isinstance(event, CrawlTaskEnqueued):
        return None
    return TaskState(
        task_id=event.task_id,
        account_id=event.account_id,
        task_type=event.task_type,
        city=event.city,
        source=event.source,
        url=event.url,
        posting_id=event.posting_id,
        parent_task_id=event.parent_task_id,
        enqueued_by=event.enqueued_by,
        enqueued_at=env.recorded_at,
        version=env.version,
    )


def fold_task(envelopes: Iterable[Envelope]) -> TaskState | None:
    state: TaskState | None = None
    for env in envelopes:
        if state is None:
            state = task_from(env)
        else:
            state.apply(env)
    return state


class LostTask(ConcurrencyError):
    """The task moved on without us (another worker took it over after our lease ran out, or it
    was cancelled): our result is dropped, theirs stands."""

    def __init__(self, task: TaskState, actual: int) -> None:
        super().__init__(task.stream_id, f"version {task.version}", actual)
        self.task = task


class CrawlTasks:
    """The crawl task commands of one store."""

    def __init__(self, store: EventStore) -> None:
        self.store = store

    async def get(self, task_id: UUID) -> TaskState | None:
        return fold_task(await self.store.read_stream(crawl_task_stream(task_id)))

    async def enqueue_discover(
        self,
        account_id: UUID,
        city: str,
        *,
        source: str = "craigslist",
        enqueued_by: str = "command",
        task_id: UUID | None = None,
    ) -> UUID:
        """Queue a search of the city's by-owner cars; returns the task id."""
        check_source("crawl.enqueue_discover", source)
        city = normalise_city("crawl.enqueue_discover", city, source)
        task_id = task_id or uuid.uuid4()
        enqueued = CrawlTaskEnqueued(
            task_id=task_id, account_id=account_id, task_type="discover", city=city, source=source,
            enqueued_by=enqueued_by,
        )  # fmt: skip
        await self.store.append(crawl_task_stream(task_id), [enqueued], expected_version=NO_STREAM)
        return task_id

    async def claim(self, task: TaskState, worker: str, lease_until: datetime, now: datetime) -> TaskState:
        """Take the task for `worker` until `lease_until`; LostTask when someone else was quicker."""
        if not task.claimable(now):
            raise LostTask(task, task.version)
        claimed = CrawlTaskClaimed(
            task_id=task.task_id, account_id=task.account_id, claimed_by=worker, lease_until=lease_until,
            attempt=task.attempts + 1,
        )  # fmt: skip
        result = await self._append(task, [claimed])
        return msgspec.structs.replace(
            task, status="claimed", claimed_by=worker, lease_until=lease_until, attempts=task.attempts + 1,
            version=result,
        )  # fmt: skip

    async def extend(self, task: TaskState, lease_until: datetime) -> TaskState:
        assert task.claimed_by is not None
        extended = CrawlTaskLeaseExtended(
            task_id=task.task_id, account_id=task.account_id, claimed_by=task.claimed_by, lease_until=lease_until
        )
        version = await self._append(task, [extended])
        return msgspec.structs.replace(task, lease_until=lease_until, version=version)

    async def complete(self, task: TaskState, done: CrawlTaskCompleted, lead: LeadIngested | None = None) -> bool:
        """End the task; with `lead`, the lead is ingested in the same atomic append. Returns
        whether a lead was ingested.

        A lead that exists already (the same posting, found again) makes the task a duplicate
        instead: `complete` then ends the task alone and returns False.
        """
        if lead is None:
            await self._append(task, [done])
            return False
        appends = [
            StreamAppend(stream_id=lead_stream(lead.lead_id), events=[lead], expected_version=NO_STREAM),
            StreamAppend(stream_id=task.stream_id, events=[done], expected_version=task.version),
        ]
        try:
            await self.store.append_many(appends)
        except ConcurrencyError as exc:
            if exc.stream_id != lead_stream(lead.lead_id):
                raise LostTask(task, exc.actual) from None
            await self._append(task, [msgspec.structs.replace(done, lead_id=lead.lead_id, duplicate=True)])
            return False
        return True

    async def fail(self, task: TaskState, failed: CrawlTaskFailed) -> None:
        await self._append(task, [failed])

    async def cancel(self, account_id: UUID, task_id: UUID, reason: str) -> TaskState:
        """Cancel a task that has not ended; another account's task is not found."""
        task = await self.get(task_id)
        if task is None or task.account_id != account_id:
            raise NotFound("crawl.cancel", f"no crawl task {task_id}", field="task_id")
        if task.ended:
            raise CommandRejected("crawl.cancel", f"task {task_id} is {task.status} already", field="task_id")
        await self.cancel_task(task, reason)
        task.status = "cancelled"
        return task

    async def cancel_task(self, task: TaskState, reason: str) -> None:
        """Cancel a task as it was folded; LostTask when it moved on meanwhile."""
        await self._append(task, [CrawlTaskCancelled(task_id=task.task_id, account_id=task.account_id, reason=reason)])

    async def all(self, account_id: UUID) -> list[TaskState]:
        """Every task of the account, folded from the log, in the order they were enqueued."""
        streams: dict[str, list[Envelope]] = {}
        async for batch in self.store.read_all(0, filter=EventFilter(account_id=account_id, category=CATEGORY)):
            for env in batch:
                streams.setdefault(env.stream_id, []).append(env)
        return [t for t in map(fold_task, streams.values()) if t is not None]

    async def queued(self, account_id: UUID, city: str, *, source: str | None = None) -> list[TaskState]:
        """The account's tasks for `city` (of `source`, or any) still waiting: enqueued, nothing since.

        Read from the log, so a caller can cancel them at the versions it saw.
        """
        return [
            t
            for t in await self.all(account_id)
            if t.status == "queued" and t.city == city and source in (None, t.source)
        ]

    async def _append(self, task: TaskState, events: list[Event]) -> int:
        try:
            result = await self.store.append(task.stream_id, events, expected_version=task.version)
        except ConcurrencyError as exc:
            raise LostTask(task, exc.actual) from None
        return result.last_version
