"""`lead_hunter.craigslist_tasks_v1`: the Craigslist hunter's discover/detail queue, task by task."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any, ClassVar
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
)
from projections.model import Db, Fact, Projection, RowSet, Table

CRAWL_TASKS = Table(
    schema="lead_hunter",
    name="craigslist_tasks_v1",
    columns=(
        ("id", "uuid not null"),
        ("account_id", "uuid not null"),
        ("task_type", "text not null"),
        ("city", "text not null"),
        ("status", "text not null"),
        ("source", "text not null"),
        ("url", "text"),
        ("posting_id", "text"),
        ("external_id", "text"),  # the spec's name for the posting id (detail tasks)
        ("attempts", "integer not null"),
        ("claimed_by", "text"),
        ("lease_until", "timestamptz"),
        ("found", "integer"),
        ("error_kind", "text"),
        ("last_error", "text"),
        ("screenshot_path", "text"),
        ("html_path", "text"),
        ("enqueued_by", "text"),
        ("parent_task_id", "uuid"),
        ("lead_id", "uuid"),  # detail: the lead the posting became (or was already)
        ("gone_reason", "text"),  # detail: deleted, expired, flagged, not_found
        ("pages", "integer"),  # discover: result pages read
        ("created_at", "timestamptz not null"),
        ("updated_at", "timestamptz not null"),
        ("version", "bigint not null"),
    ),
    key="id",
    constraints=(
        "check (task_type in ('discover', 'detail'))",
        "check (status in ('queued', 'claimed', 'done', 'failed', 'cancelled'))",
    ),
    indexes=("(account_id, city, created_at)", "(status, created_at)", "(created_at)"),
)


class TaskRow(msgspec.Struct, gc=False):
    id: UUID
    account_id: UUID
    task_type: str
    city: str
    status: str
    source: str
    url: str | None
    posting_id: str | None
    external_id: str | None
    attempts: int
    claimed_by: str | None
    lease_until: datetime | None
    found: int | None
    error_kind: str | None
    last_error: str | None
    screenshot_path: str | None
    html_path: str | None
    enqueued_by: str | None
    parent_task_id: UUID | None
    lead_id: UUID | None
    gone_reason: str | None
    pages: int | None
    created_at: datetime
    updated_at: datetime
    version: int


class CrawlTasksProjection(Projection):
    name = "craigslist_tasks"
    version = 2
    handles: ClassVar[tuple[type[Event], ...]] = (
        CrawlTaskEnqueued,
        CrawlTaskClaimed,
        CrawlTaskCompleted,
        CrawlTaskFailed,
        CrawlTaskCancelled,
        CrawlTaskLeaseExtended,
    )
    tables = (CRAWL_TASKS,)

    def __init__(self) -> None:
        self.tasks = RowSet(CRAWL_TASKS, TaskRow)

    async def apply(self, db: Db, batch: Sequence[Fact]) -> None:
        await self.tasks.prefetch(db, (getattr(f.event, "task_id") for f in batch))  # noqa: B009
        for fact in batch:
            event: Any = fact.event
            at = fact.recorded_at
            if isinstance(event, CrawlTaskEnqueued):
                if self.tasks.get(event.task_id) is None:
                    self.tasks.put(
                        TaskRow(
                            event.task_id, event.account_id, event.task_type, event.city, "queued", event.source,
                            event.url, event.posting_id, event.posting_id, 0, None, None, None, None, None, None,
                            None, event.enqueued_by, event.parent_task_id, None, None, None, at, at, fact.position,
                        )
                    )  # fmt: skip
                continue
            row = self.tasks.get(event.task_id)
            if row is None:
                continue
            match event:
                case CrawlTaskClaimed():
                    row.status = "claimed"
                    row.claimed_by = event.claimed_by
                    row.lease_until = event.lease_until
                    row.attempts = max(row.attempts, event.attempt)
                case CrawlTaskLeaseExtended():
                    row.lease_until = event.lease_until
                case CrawlTaskCompleted():
                    row.status = "done"
                    row.found = event.found
                    row.lease_until = None
                    row.lead_id = event.lead_id
                    row.gone_reason = event.gone
                    row.pages = event.pages if row.task_type == "discover" else None
                case CrawlTaskFailed():
                    row.status = "failed"
                    row.error_kind = event.error_kind
                    row.last_error = event.last_error
                    row.screenshot_path = event.screenshot_path
                    row.html_path = event.html_path
                    row.lease_until = None
                    row.attempts = max(row.attempts, event.attempt)
                case CrawlTaskCancelled():
                    row.status = "cancelled"
                    row.last_error = event.reason
            row.updated_at = at
            row.version = fact.position
            self.tasks.put(row)
