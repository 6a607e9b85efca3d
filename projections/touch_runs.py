"""`public.touch_runs`: each planned contact of a cadence, and where its dispatch stands."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any, ClassVar
from uuid import UUID

import msgspec

from events.catalog import (
    Event,
    TouchRunClaimed,
    TouchRunDeadLettered,
    TouchRunDeferred,
    TouchRunDeliveryStatus,
    TouchRunDispatched,
    TouchRunFailed,
    TouchRunRequeued,
    TouchRunRetryScheduled,
    TouchRunScheduled,
    TouchRunSkipped,
)
from projections.model import Db, Fact, Projection, RowSet, Table

TOUCH_RUNS = Table(
    schema="public",
    name="touch_runs",
    columns=(
        ("id", "uuid not null"),
        ("account_id", "uuid not null"),
        ("lead_id", "uuid not null"),
        ("campaign_id", "uuid not null"),
        ("step", "integer not null"),
        ("channel", "text not null"),
        ("status", "text not null"),
        ("scheduled_for", "timestamptz not null"),
        ("scheduled_by", "text not null"),
        ("attempts", "integer not null"),
        ("claimed_by", "text"),
        ("lease_until", "timestamptz"),
        ("provider", "text"),
        ("provider_message_id", "text"),
        ("sandbox", "boolean not null"),
        ("delivery_status", "text"),
        ("last_error", "text"),
        ("error_code", "text"),
        ("skip_reason", "text"),
        ("deferred_reason", "text"),
        ("dispatched_at", "timestamptz"),
        ("created_at", "timestamptz not null"),
        ("updated_at", "timestamptz not null"),
        ("version", "bigint not null"),
    ),
    key="id",
    constraints=(
        "check (channel in ('voice', 'sms', 'whatsapp', 'email'))",
        "check (status in ('scheduled', 'skipped', 'claimed', 'dispatched', 'failed', 'retry_scheduled', "
        "'dead_letter'))",
    ),
    indexes=("(account_id, campaign_id, created_at)", "(lead_id)", "(status, scheduled_for)"),
)


class TouchRunRow(msgspec.Struct, gc=False):
    id: UUID
    account_id: UUID
    lead_id: UUID
    campaign_id: UUID
    step: int
    channel: str
    status: str
    scheduled_for: datetime
    scheduled_by: str
    attempts: int
    claimed_by: str | None
    lease_until: datetime | None
    provider: str | None
    provider_message_id: str | None
    sandbox: bool
    delivery_status: str | None
    last_error: str | None
    error_code: str | None
    skip_reason: str | None
    deferred_reason: str | None
    dispatched_at: datetime | None
    created_at: datetime
    updated_at: datetime
    version: int


class TouchRunsProjection(Projection):
    name = "touch_runs"
    version = 2
    handles: ClassVar[tuple[type[Event], ...]] = (
        TouchRunScheduled,
        TouchRunSkipped,
        TouchRunClaimed,
        TouchRunDispatched,
        TouchRunFailed,
        TouchRunRetryScheduled,
        TouchRunDeadLettered,
        TouchRunRequeued,
        TouchRunDeliveryStatus,
        TouchRunDeferred,
    )
    tables = (TOUCH_RUNS,)

    def __init__(self) -> None:
        self.touch_runs = RowSet(TOUCH_RUNS, TouchRunRow)

    async def apply(self, db: Db, batch: Sequence[Fact]) -> None:
        rows = self.touch_runs
        await rows.prefetch(db, (getattr(f.event, "touch_run_id") for f in batch))  # noqa: B009
        get, put = rows.get, rows.put
        for fact in batch:
            event: Any = fact.event
            kind = type(event)
            if kind is TouchRunScheduled:
                if get(event.touch_run_id) is None:
                    at = fact.recorded_at
                    put(
                        TouchRunRow(
                            event.touch_run_id, event.account_id, event.lead_id, event.campaign_id, event.step,
                            event.channel, "scheduled", event.scheduled_for, event.scheduled_by, 0, None, None,
                            None, None, False, None, None, None, None, None, None, at, at, fact.position,
                        )
                    )  # fmt: skip
                continue
            row = get(event.touch_run_id)
            if row is None:
                continue  # about a touch run never scheduled: nothing to show
            _FOLD[kind](row, event, fact.recorded_at)
            row.updated_at = fact.recorded_at
            row.version = fact.position
            put(row)


# One function per event type, looked up by type: a rebuild folds millions of these.


def _skipped(row: TouchRunRow, e: TouchRunSkipped, at: datetime) -> None:
    row.status = "skipped"
    row.skip_reason = e.reason


def _claimed(row: TouchRunRow, e: TouchRunClaimed, at: datetime) -> None:
    row.status = "claimed"
    row.claimed_by = e.claimed_by
    row.lease_until = e.lease_until
    row.attempts = max(row.attempts, e.attempt)
    row.provider = e.provider or row.provider
    row.deferred_reason = None


def _dispatched(row: TouchRunRow, e: TouchRunDispatched, at: datetime) -> None:
    row.status = "dispatched"
    row.provider = e.provider
    row.provider_message_id = e.provider_message_id
    row.sandbox = e.sandbox
    row.dispatched_at = e.dispatched_at or at
    row.lease_until = None
    row.attempts = max(row.attempts, e.attempt)
    row.deferred_reason = None


def _failed(row: TouchRunRow, e: TouchRunFailed, at: datetime) -> None:
    row.status = "failed"
    row.last_error = e.error
    row.error_code = e.error_code
    row.lease_until = None
    row.provider = e.provider or row.provider
    row.attempts = max(row.attempts, e.attempt)


def _retry_scheduled(row: TouchRunRow, e: TouchRunRetryScheduled, at: datetime) -> None:
    row.status = "retry_scheduled"
    row.scheduled_for = e.retry_at


def _dead_lettered(row: TouchRunRow, e: TouchRunDeadLettered, at: datetime) -> None:
    row.status = "dead_letter"
    row.last_error = e.error
    row.attempts = max(row.attempts, e.attempts)
    row.error_code = e.error_code or row.error_code


def _requeued(row: TouchRunRow, e: TouchRunRequeued, at: datetime) -> None:
    row.status = "scheduled"
    row.scheduled_for = e.requeued_at or at
    row.attempts = 0


def _deferred(row: TouchRunRow, e: TouchRunDeferred, at: datetime) -> None:
    if row.status != "retry_scheduled":
        row.status = "scheduled"
    row.scheduled_for = e.until
    row.deferred_reason = e.reason


def _delivery_status(row: TouchRunRow, e: TouchRunDeliveryStatus, at: datetime) -> None:
    row.delivery_status = e.status
    row.provider_message_id = row.provider_message_id or e.provider_message_id
    row.error_code = e.error_code or row.error_code


_FOLD: dict[type[Event], Callable[[TouchRunRow, Any, datetime], None]] = {
    TouchRunSkipped: _skipped,
    TouchRunClaimed: _claimed,
    TouchRunDispatched: _dispatched,
    TouchRunFailed: _failed,
    TouchRunRetryScheduled: _retry_scheduled,
    TouchRunDeadLettered: _dead_lettered,
    TouchRunRequeued: _requeued,
    TouchRunDeliveryStatus: _delivery_status,
    TouchRunDeferred: _deferred,
}
