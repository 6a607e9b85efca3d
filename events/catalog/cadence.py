"""Cadence events: a lead entering and leaving an outbound campaign."""

from __future__ import annotations

from datetime import date, datetime
from uuid import UUID

from events.catalog.base import Event

CATEGORY = "enrollment"
CAP_CATEGORY = "daily_cap"


def enrollment_stream(lead_id: UUID, campaign_id: UUID) -> str:
    return f"{CATEGORY}-{lead_id}:{campaign_id}"


def daily_cap_stream(account_id: UUID, channel: str, day: date) -> str:
    return f"{CAP_CATEGORY}-{account_id}:{channel}:{day.isoformat()}"


class DailyCapSlotTaken(Event, frozen=True):
    """One of the day's touches on a capped channel went to this touch run (the stream's length is the count)."""

    account_id: UUID
    channel: str
    day: date
    touch_run_id: UUID


class LeadEnrolled(Event, frozen=True):
    """The cadence runner put an eligible lead into an active campaign; its steps follow."""

    lead_id: UUID
    account_id: UUID
    campaign_id: UUID
    enrolled_at: datetime
    enrolled_by: str = "cadence"


class LeadUnenrolled(Event, frozen=True):
    """The lead left the campaign (replied, suppressed, dead, no longer new): pending touches stop."""

    lead_id: UUID
    account_id: UUID
    campaign_id: UUID
    reason: str
