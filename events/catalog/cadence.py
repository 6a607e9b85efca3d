"""Cadence events: a lead entering and leaving an outbound campaign."""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

from events.catalog.base import Event

CATEGORY = "enrollment"


def enrollment_stream(lead_id: UUID, campaign_id: UUID) -> str:
    return f"{CATEGORY}-{lead_id}:{campaign_id}"


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
