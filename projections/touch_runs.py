"""`public.touch_runs`: each planned contact of a cadence, and where its dispatch stands."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import ClassVar
from uuid import UUID

import msgspec

from events.catalog import (
    Event,
    TouchRunClaimed,
    TouchRunDeadLettered,
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
    dispatched_at: datetime | None
    created_at: datetime
    updated_at: datetime
    version: int


class TouchRunsProjection(Projection):
    name = "touch_runs"
    version = 1
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
    )
    tables = (TOUCH_RUNS,)

    def __init__(self) -> None:
        self.touch_runs = RowSet(TOUCH_RUNS, TouchRunRow)

    async def apply(self, db: Db, batch: Sequence[Fact]) -> None:
        await self.touch_runs.prefetch(db, (getattr(e.event, "touch_run_id") for e in batch))  # noqa: B009
        for fact in batch:
            event = fact.event
            at = fact.recorded_at
            if isinstance(event, TouchRunScheduled):
                if self.touch_runs.get(event.touch_run_id) is None:
                    self.touch_runs.put(
                        TouchRunRow(
                            event.touch_run_id, event.account_id, event.lead_id, event.campaign_id, event.step,
                            event.channel, "scheduled", event.scheduled_for, event.scheduled_by, 0, None, None,
                            None, None, False, None, None, None, None, None, at, at, fact.position,
                        )
                    )  # fmt: skip
                continue
            row = self.touch_runs.get(getattr(event, "touch_run_id"))  # noqa: B009
            if row is None:
                continue
            match event:
                case TouchRunSkipped(reason=reason):
                    row.status = "skipped"
                    row.skip_reason = reason
                case TouchRunClaimed(claimed_by=by, lease_until=lease, attempt=attempt):
                    row.status = "claimed"
                    row.claimed_by = by
                    row.lease_until = lease
                    row.attempts = max(row.attempts, attempt)
                case TouchRunDispatched(provider=provider, provider_message_id=message_id, sandbox=sandbox):
                    row.status = "dispatched"
                    row.provider = provider
                    row.provider_message_id = message_id
                    row.sandbox = sandbox
                    row.dispatched_at = at
                    row.lease_until = None
                case TouchRunFailed(error=error, error_code=code):
                    row.status = "failed"
                    row.last_error = error
                    row.error_code = code
                    row.lease_until = None
                case TouchRunRetryScheduled(retry_at=retry_at):
                    row.status = "retry_scheduled"
                    row.scheduled_for = retry_at
                case TouchRunDeadLettered(error=error, attempts=attempts):
                    row.status = "dead_letter"
                    row.last_error = error
                    row.attempts = max(row.attempts, attempts)
                case TouchRunRequeued():
                    row.status = "scheduled"
                    row.scheduled_for = at
                case TouchRunDeliveryStatus(status=status, provider_message_id=message_id):
                    row.delivery_status = status
                    row.provider_message_id = row.provider_message_id or message_id
            row.updated_at = at
            row.version = fact.position
            self.touch_runs.put(row)
