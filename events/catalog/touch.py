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
    provider: str | None = None  # who the claimant sends through (an expired lease is resolved with it)


class TouchRunDispatched(Event, frozen=True):
    touch_run_id: UUID
    account_id: UUID
    provider: str
    provider_message_id: str | None = None
    sandbox: bool = False
    attempt: int = 1
    # When the engine saw the provider accept it (its clock), and how the outcome became known:
    # "sent" (the provider answered), "resolved" (an unknown outcome found at the provider).
    dispatched_at: datetime | None = None
    how: str = "sent"


class ProviderRequestRecorded(Event, frozen=True):
    """Sandbox mode: the exact request a provider without credentials would have been sent."""

    touch_run_id: UUID
    account_id: UUID
    provider: str
    method: str
    url: str
    headers: dict[str, str] = {}
    form: dict[str, str] | None = None
    json_body: str | None = None  # the JSON body as it would go on the wire


class TouchRunFailed(Event, frozen=True):
    touch_run_id: UUID
    account_id: UUID
    error: str
    error_code: str | None = None
    retryable: bool = False
    attempt: int = 1
    provider: str | None = None
    # What the failure means: retry, suppress (opted out), bad_data, template_required,
    # rejected (the provider refused it for good), unknown (sent or not: nobody can tell).
    outcome: str | None = None
    http_status: int | None = None


class TouchRunRetryScheduled(Event, frozen=True):
    touch_run_id: UUID
    account_id: UUID
    retry_at: datetime
    attempt: int  # the attempt the retry will be
    reason: str | None = None
    # The previous attempt's outcome is unknown: ask the provider before sending again.
    check_provider: bool = False


class TouchRunDeadLettered(Event, frozen=True):
    touch_run_id: UUID
    account_id: UUID
    error: str
    attempts: int
    error_code: str | None = None


class TouchRunRequeued(Event, frozen=True):
    """An operator sends a dead-lettered (or failed) touch run again, from attempt 1."""

    touch_run_id: UUID
    account_id: UUID
    requested_by: str
    requeued_at: datetime | None = None
    reason: str | None = None


class TouchRunDeferred(Event, frozen=True):
    """Not sent yet and not a failure: a limit (email warmup, a send window) moves it to `until`."""

    touch_run_id: UUID
    account_id: UUID
    until: datetime
    reason: str


class TouchRunDeliveryStatus(Event, frozen=True):
    touch_run_id: UUID
    account_id: UUID
    provider: str
    status: str
    provider_message_id: str | None = None
    error_code: str | None = None
    occurred_at: datetime | None = None
