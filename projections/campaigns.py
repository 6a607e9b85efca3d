"""`public.campaigns`: outbound cadences; `is_active` is the only truth, `status` derives from it."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import ClassVar
from uuid import UUID

import msgspec

from events.catalog import (
    CampaignActivated,
    CampaignCreated,
    CampaignPaused,
    CampaignStep,
    CampaignStepsReplaced,
    Event,
)
from projections.model import Db, Fact, Projection, RowSet, Table, View

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


CAMPAIGN_STEPS = Table(
    schema="public",
    name="campaign_steps",
    columns=(
        ("id", "text not null"),  # <campaign_id>:<step>
        ("campaign_id", "uuid not null"),
        ("account_id", "uuid not null"),
        ("step", "integer not null"),
        ("channel", "text not null"),
        ("delay_minutes", "integer not null"),
        ("template", "text"),
    ),
    key="id",
    constraints=(
        "unique (campaign_id, step)",
        "check (channel in ('voice', 'sms', 'whatsapp', 'email'))",
        "check (step >= 1 and delay_minutes >= 0)",
    ),
    indexes=("(account_id)",),
)

RUNTIME_STATUS = View(
    schema="public",
    name="v_campaign_runtime_status_v1",
    # The spec: last_touch_run_at = max(touch_runs.created_at) per (account_id, campaign_id); the
    # 24-hour counts from touch_runs.created_at within the last 24 hours.
    sql="""
select c.account_id, c.id as campaign_id, c.campaign_key, c.name, c.is_active, c.status,
       t.last_touch_run_at,
       coalesce(t.touch_runs_24h, 0) as touch_runs_24h,
       coalesce(t.scheduled_24h, 0) as scheduled_24h,
       coalesce(t.dispatched_24h, 0) as dispatched_24h,
       coalesce(t.failed_24h, 0) as failed_24h,
       coalesce(t.skipped_24h, 0) as skipped_24h
  from public.campaigns c
  left join (
        select account_id, campaign_id,
               max(created_at) as last_touch_run_at,
               count(*) filter (where created_at > now() - interval '24 hours') as touch_runs_24h,
               count(*) filter (where created_at > now() - interval '24 hours'
                                  and status in ('scheduled', 'claimed', 'retry_scheduled')) as scheduled_24h,
               count(*) filter (where created_at > now() - interval '24 hours'
                                  and status = 'dispatched') as dispatched_24h,
               count(*) filter (where created_at > now() - interval '24 hours'
                                  and status in ('failed', 'dead_letter')) as failed_24h,
               count(*) filter (where created_at > now() - interval '24 hours' and status = 'skipped') as skipped_24h
          from public.touch_runs
         group by account_id, campaign_id
       ) t on t.account_id = c.account_id and t.campaign_id = c.id
""",
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
    version = 2
    handles: ClassVar[tuple[type[Event], ...]] = (
        CampaignCreated,
        CampaignStepsReplaced,
        CampaignActivated,
        CampaignPaused,
    )
    tables = (CAMPAIGNS, CAMPAIGN_STEPS)
    views = (RUNTIME_STATUS,)

    def __init__(self) -> None:
        self.campaigns = RowSet(CAMPAIGNS, CampaignRow)

    async def apply(self, db: Db, batch: Sequence[Fact]) -> None:
        await self.campaigns.prefetch(db, (getattr(e.event, "campaign_id") for e in batch))  # noqa: B009
        steps: dict[UUID, tuple[UUID, list[CampaignStep]]] = {}
        for fact in batch:
            event = fact.event
            at = fact.recorded_at
            if isinstance(event, CampaignCreated):
                if self.campaigns.get(event.campaign_id) is None:
                    steps[event.campaign_id] = (event.account_id, event.steps)
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
                case CampaignStepsReplaced(steps=new_steps):
                    row.steps = _encode(new_steps)
                    steps[row.id] = (row.account_id, new_steps)
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
        if steps:
            await _write_steps(db, steps)


async def _write_steps(db: Db, steps: dict[UUID, tuple[UUID, list[CampaignStep]]]) -> None:
    """A campaign's steps are replaced whole: its old rows go, the new ones come in."""
    table = db.table(CAMPAIGN_STEPS)
    rows = [
        {
            "id": f"{campaign_id}:{s.step}",
            "campaign_id": campaign_id,
            "account_id": account_id,
            "step": s.step,
            "channel": s.channel,
            "delay_minutes": s.delay_minutes,
            "template": s.template,
        }
        for campaign_id, (account_id, campaign_steps) in steps.items()
        for s in campaign_steps
    ]
    await db.conn.execute(f"delete from {table} where campaign_id = any($1::uuid[])", list(steps))
    if rows:
        await db.conn.execute(
            f"insert into {table} select * from json_populate_recordset(null::{table}, $1::json)",
            msgspec.json.encode(rows).decode(),
        )
