"""`public.leads`: every lead a program found, with its status, lead state and contactability."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import ClassVar
from uuid import UUID

import msgspec

from events.catalog import (
    Event,
    LeadContacted,
    LeadContactInvalid,
    LeadIngested,
    LeadReplied,
    LeadResubscribed,
    LeadStateChanged,
    LeadStatusChanged,
    LeadSuppressed,
)
from projections.model import Db, Fact, Projection, RowSet, Table
from projections.views import LEAD_VIEWS

LEADS = Table(
    schema="public",
    name="leads",
    columns=(
        ("id", "uuid not null"),
        ("account_id", "uuid not null"),
        ("source", "text not null"),
        ("external_id", "text not null"),
        ("status", "text not null"),
        ("lead_state", "text not null"),
        ("phone", "text"),
        ("email", "text"),
        ("name", "text"),
        ("title", "text"),
        ("price", "integer"),
        ("country", "text"),
        ("city", "text"),
        ("url", "text"),
        ("body", "text"),
        ("attributes", "jsonb not null"),
        ("neighborhood", "text"),
        ("latitude", "double precision"),
        ("longitude", "double precision"),
        ("posted_at", "timestamptz"),
        ("first_seen_at", "timestamptz"),
        ("invalid_channels", "jsonb not null"),  # channels whose address is bad data, a JSON array
        ("suppressed_at", "timestamptz"),
        ("suppression_reason", "text"),
        ("last_reply_at", "timestamptz"),
        ("last_reply_channel", "text"),
        ("created_at", "timestamptz not null"),
        ("updated_at", "timestamptz not null"),
        ("version", "bigint not null"),  # the log position of the last event folded in
    ),
    key="id",
    constraints=(
        "check (status in ('new', 'contacted', 'replied', 'qualified', 'suppressed', 'closed'))",
        "check (lead_state in ('cold', 'warm', 'hot', 'dead'))",
    ),
    # The spec's dedupe on (account_id, source, external_id) is enforced where leads are written:
    # the lead id is derived from the three and its stream is created at "no stream" (the log's
    # unique (stream_id, version)). A read model must not refuse what the log holds, so no unique
    # constraint here.
    indexes=("(account_id, status)", "(account_id, source, external_id)", "(created_at)", "(source, created_at)"),
)


class LeadRow(msgspec.Struct, gc=False):
    id: UUID
    account_id: UUID
    source: str
    external_id: str
    status: str
    lead_state: str
    phone: str | None
    email: str | None
    name: str | None
    title: str | None
    price: int | None
    country: str | None
    city: str | None
    url: str | None
    body: str | None
    attributes: msgspec.Raw
    neighborhood: str | None
    latitude: float | None
    longitude: float | None
    posted_at: datetime | None
    first_seen_at: datetime | None
    invalid_channels: msgspec.Raw
    suppressed_at: datetime | None
    suppression_reason: str | None
    last_reply_at: datetime | None
    last_reply_channel: str | None
    created_at: datetime
    updated_at: datetime
    version: int


def _encode(value: object) -> msgspec.Raw:
    return msgspec.Raw(msgspec.json.encode(value))


_EMPTY = msgspec.Raw(b"[]")


class LeadsProjection(Projection):
    name = "leads"
    version = 3
    handles: ClassVar[tuple[type[Event], ...]] = (
        LeadIngested,
        LeadStatusChanged,
        LeadStateChanged,
        LeadSuppressed,
        LeadContactInvalid,
        LeadReplied,
        LeadResubscribed,
        LeadContacted,
    )
    tables = (LEADS,)
    views = LEAD_VIEWS

    def __init__(self) -> None:
        self.leads = RowSet(LEADS, LeadRow)

    async def apply(self, db: Db, batch: Sequence[Fact]) -> None:
        await self.leads.prefetch(db, (getattr(e.event, "lead_id") for e in batch))  # noqa: B009 - every handled type has it
        for fact in batch:
            self._fold(fact, fact.event)

    def _fold(self, fact: Fact, event: Event) -> None:
        at = fact.recorded_at
        match event:
            case LeadIngested() as e:
                if self.leads.get(e.lead_id) is not None:
                    return  # the first ingest of a lead is its truth
                self.leads.put(
                    LeadRow(
                        e.lead_id, e.account_id, e.source, e.external_id, "new", "cold", e.phone, e.email, e.name,
                        e.title, e.price, e.country, e.city, e.url, e.body, _encode(e.attributes), e.neighborhood,
                        e.latitude, e.longitude, e.posted_at, e.first_seen_at or at, _EMPTY, None, None, None, None,
                        at, at, fact.position,
                    )
                )  # fmt: skip
                return
        row = self.leads.get(getattr(event, "lead_id"))  # noqa: B009
        if row is None:
            return  # about a lead never ingested: nothing to show
        match event:
            case LeadStatusChanged(status=status):
                if row.status != "suppressed":  # suppression is final
                    row.status = status
            case LeadStateChanged(lead_state=state):
                row.lead_state = state
            case LeadSuppressed(reason=reason):
                row.status = "suppressed"
                row.suppressed_at = row.suppressed_at or at
                row.suppression_reason = reason
            case LeadContacted():
                if row.status == "new":
                    row.status = "contacted"
            case LeadResubscribed():
                if row.status == "suppressed":
                    row.status = "replied"  # they wrote to us (START): no longer new, may be contacted
                    row.suppressed_at = None
                    row.suppression_reason = None
            case LeadContactInvalid(channel=channel):
                channels = msgspec.json.decode(row.invalid_channels, type=list[str])
                if channel not in channels:
                    row.invalid_channels = _encode([*channels, channel])
            case LeadReplied(channel=channel, received_at=received_at):
                row.last_reply_at = received_at or at
                row.last_reply_channel = channel
                if row.status in ("new", "contacted"):
                    row.status = "replied"
        row.updated_at = at
        row.version = fact.position
        self.leads.put(row)
