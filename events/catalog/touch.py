"""Touch run events: one planned contact (a step of a cadence) and its dispatch lifecycle."""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

from events.catalog.base import Event
from events.catalog.campaign import Channel

CATEGORY = "touch"


def touch_stream(touch_run_id: UUID) -> str:
    return f"{CATEGORY}-{touch_run_id}"


class TouchRunScheduled(Event, frozen=True):
    touch_run_id: UUID
    account_id: UUID
    lead_id: UUID
    campaign_id: UUID
    step: int
    channel: Channel
    scheduled_for: datetime
    scheduled_by: str = "touch-orchestrator"


class TouchRunSkipped(Event, frozen=True):
    touch_run_id: UUID
    account_id: UUID
    reason: str


class TouchRunClaimed(Event, frozen=True):
    touch_run_id: UUID
    account_id: UUID
    claimed_by: str
    lease_until: datetime
    attempt: int = 1


class TouchRunDispatched(Event, frozen=True):
    touch_run_id: UUID
    account_id: UUID
    provider: str
    provider_message_id: str | None = None
    sandbox: bool = False


class TouchRunFailed(Event, frozen=True):
    touch_run_id: UUID
    account_id: UUID
    error: str
    error_code: str | None = None
    retryable: bool = False
    attempt: int = 1


class TouchRunRetryScheduled(Event, frozen=True):
    touch_run_id: UUID
    account_id: UUID
    retry_at: datetime
    attempt: int


class TouchRunDeadLettered(Event, frozen=True):
    touch_run_id: UUID
    account_id: UUID
    error: str
    attempts: int


class TouchRunRequeued(Event, frozen=True):
    touch_run_id: UUID
    account_id: UUID
    requested_by: str


class TouchRunDeliveryStatus(Event, frozen=True):
    touch_run_id: UUID
    account_id: UUID
    provider: str
    status: str
    provider_message_id: str | None = None
