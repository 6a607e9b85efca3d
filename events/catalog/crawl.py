"""Crawl task events: the Craigslist hunter's discover/detail queue (lead_hunter.craigslist_tasks_v1)."""

from __future__ import annotations

from datetime import datetime
from typing import Literal
from uuid import UUID

from events.catalog.base import Event

CATEGORY = "crawl_task"

TaskType = Literal["discover", "detail"]


def crawl_task_stream(task_id: UUID) -> str:
    return f"{CATEGORY}-{task_id}"


class CrawlTaskEnqueued(Event, frozen=True):
    task_id: UUID
    account_id: UUID
    task_type: TaskType
    city: str
    source: str = "craigslist"
    url: str | None = None
    posting_id: str | None = None
    enqueued_by: str = "command"
    # The discover task whose search found this posting (detail tasks only).
    parent_task_id: UUID | None = None


class CrawlTaskClaimed(Event, frozen=True):
    task_id: UUID
    account_id: UUID
    claimed_by: str
    lease_until: datetime
    attempt: int = 1


class CrawlTaskLeaseExtended(Event, frozen=True):
    """The worker holding the task is still at it (a long discover): its lease runs longer."""

    task_id: UUID
    account_id: UUID
    claimed_by: str
    lease_until: datetime


class CrawlTaskCompleted(Event, frozen=True):
    """Discover: `found` new detail tasks out of `seen` postings on `pages` result pages.
    Detail: the posting became `lead_id`, was a lead already (`duplicate`), or is `gone`."""

    task_id: UUID
    account_id: UUID
    found: int = 0
    seen: int = 0
    pages: int = 0
    lead_id: UUID | None = None
    duplicate: bool = False
    gone: str | None = None  # deleted, expired, flagged, not_found: the posting no longer exists


class CrawlTaskFailed(Event, frozen=True):
    task_id: UUID
    account_id: UUID
    error_kind: str
    last_error: str
    screenshot_path: str | None = None
    html_path: str | None = None
    attempt: int = 1


class CrawlTaskCancelled(Event, frozen=True):
    task_id: UUID
    account_id: UUID
    reason: str
