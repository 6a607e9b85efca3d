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


class CrawlTaskClaimed(Event, frozen=True):
    task_id: UUID
    account_id: UUID
    claimed_by: str
    lease_until: datetime
    attempt: int = 1


class CrawlTaskCompleted(Event, frozen=True):
    task_id: UUID
    account_id: UUID
    found: int = 0


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
