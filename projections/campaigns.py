"""`public.campaigns`: outbound cadences; `is_active` is the only truth, `status` derives from it."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import ClassVar
from uuid import UUID

import msgspec

from events.catalog import CampaignActivated, CampaignCreated, CampaignPaused, CampaignStepsReplaced, Event
from projections.model import Db, Fact, Projection, RowSet, Table

CAMPAIGNS = Table(
    schema="public",
    name="campaigns",
    columns=(
        ("id", "uuid not null"),
        ("account_id", "uuid not null"),
        ("campaign_key", "text not null"),
        ("name", "text not null"),
        ("steps", "jsonb not null"),
        ("allow_concurrent", "boolean not null"),
        ("is_active", "boolean not null"),
        ("activated_at", "timestamptz"),
        ("paused_at", "timestamptz"),
        ("pause_reason", "text"),
        ("created_at", "timestamptz not null"),
        ("updated_at", "timestamptz not null"),
        ("version", "bigint not null"),
    ),
    key="id",
    # Derived by the database from is_active, so the two can never disagree (the spec's check).
    generated=("status text generated always as (case when is_active then 'active' else 'paused' end) stored",),
    indexes=("(account_id, is_active)", "(account_id, campaign_key)"),
)


class CampaignRow(msgspec.Struct, gc=False):
    id: UUID
    account_id: UUID
    campaign_key: str
    name: str
    steps: msgspec.Raw
    allow_concurrent: bool
    is_active: bool
    activated_at: datetime | None
    paused_at: datetime | None
    pause_reason: str | None
    created_at: datetime
    updated_at: datetime
    version: int


def _encode(value: object) -> msgspec.Raw:
    return msgspec.Raw(msgspec.json.encode(value))


class CampaignsProjection(Projection):
    name = "campaigns"
    version = 1
    handles: ClassVar[tuple[type[Event], ...]] = (
        CampaignCreated,
        CampaignStepsReplaced,
        CampaignActivated,
        CampaignPaused,
    )
    tables = (CAMPAIGNS,)

    def __init__(self) -> None:
        self.campaigns = RowSet(CAMPAIGNS, CampaignRow)

    async def apply(self, db: Db, batch: Sequence[Fact]) -> None:
        await self.campaigns.prefetch(db, (getattr(e.event, "campaign_id") for e in batch))  # noqa: B009
        for fact in batch:
            event = fact.event
            at = fact.recorded_at
            if isinstance(event, CampaignCreated):
                if self.campaigns.get(event.campaign_id) is None:
                    self.campaigns.put(
                        CampaignRow(
                            event.campaign_id, event.account_id, event.campaign_key, event.name,
                            _encode(event.steps), event.allow_concurrent, False, None, None, None, at, at,
                            fact.position,
                        )
                    )  # fmt: skip
                continue
            row = self.campaigns.get(getattr(event, "campaign_id"))  # noqa: B009
            if row is None:
                continue
            match event:
                case CampaignStepsReplaced(steps=steps):
                    row.steps = _encode(steps)
                case CampaignActivated():
                    row.is_active = True
                    row.activated_at = at
                    row.pause_reason = None
                case CampaignPaused(reason=reason):
                    row.is_active = False
                    row.paused_at = at
                    row.pause_reason = reason
            row.updated_at = at
            row.version = fact.position
            self.campaigns.put(row)
