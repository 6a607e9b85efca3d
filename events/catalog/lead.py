"""Lead events: a person found by a lead program, and what becomes of them."""

from __future__ import annotations

from datetime import datetime
from typing import Literal
from uuid import UUID

from events.catalog.base import Event

CATEGORY = "lead"

LeadStatus = Literal["new", "contacted", "replied", "qualified", "suppressed", "closed"]
LeadState = Literal["cold", "warm", "hot", "dead"]


def lead_stream(lead_id: UUID) -> str:
    return f"{CATEGORY}-{lead_id}"


class LeadIngested(Event, frozen=True):
    """One posting became a lead, once per (account, source, external id)."""

    lead_id: UUID
    account_id: UUID
    source: str
    external_id: str
    country: str = "US"
    city: str | None = None
    url: str | None = None
    title: str | None = None
    price: int | None = None
    body: str | None = None
    attributes: dict[str, str] = {}
    neighborhood: str | None = None
    latitude: float | None = None
    longitude: float | None = None
    posted_at: datetime | None = None
    first_seen_at: datetime | None = None
    phone: str | None = None
    email: str | None = None
    name: str | None = None


class LeadStatusChanged(Event, frozen=True):
    lead_id: UUID
    account_id: UUID
    status: LeadStatus
    reason: str | None = None


class LeadStateChanged(Event, frozen=True):
    lead_id: UUID
    account_id: UUID
    lead_state: LeadState
    reason: str | None = None


class LeadSuppressed(Event, frozen=True):
    """The lead must never be contacted again (opt-out, operator decision)."""

    lead_id: UUID
    account_id: UUID
    reason: str
    channel: str | None = None


class LeadContactInvalid(Event, frozen=True):
    """A channel's address for this lead is bad data (invalid or unreachable number)."""

    lead_id: UUID
    account_id: UUID
    channel: str
    error_code: str | None = None


class LeadResubscribed(Event, frozen=True):
    """The lead texted START (or YES, UNSTOP) after opting out: they may be contacted again."""

    lead_id: UUID
    account_id: UUID
    channel: str
    reason: str = "start keyword"


class LeadContacted(Event, frozen=True):
    """A touch reached the provider (or the sandbox): a new lead is now `contacted`.

    Its own type rather than a LeadStatusChanged: the cadence runner, which must hear every
    status an operator sets, need not hear of every touch sent.
    """

    lead_id: UUID
    account_id: UUID
    channel: str
    touch_run_id: UUID


class LeadReplied(Event, frozen=True):
    lead_id: UUID
    account_id: UUID
    channel: str
    body: str | None = None
    received_at: datetime | None = None
