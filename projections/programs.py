"""`public.lead_programs` (LeadGen programs by account and city), program status and the SSV view."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import ClassVar, Final
from uuid import UUID

import msgspec

from events.catalog import Event, ProgramStarted, ProgramStopped, program_stream
from projections.model import Db, Fact, Projection, RowSet, Table, View

_PROGRAM_ROWS: Final = uuid.UUID("c4a1e7d2-5b36-4f89-9e0a-7d2b4c6f1e35")


def program_row_id(account_id: UUID, program_key: str, city: str) -> UUID:
    return uuid.uuid5(_PROGRAM_ROWS, program_stream(account_id, program_key, city))


LEAD_PROGRAMS = Table(
    schema="public",
    name="lead_programs",
    columns=(
        ("id", "uuid not null"),
        ("account_id", "uuid not null"),
        ("program_key", "text not null"),
        ("city", "text not null"),
        ("running", "boolean not null"),
        ("routing_override", "boolean not null"),
        ("discover_every_s", "integer not null"),
        ("started_at", "timestamptz"),
        ("started_by", "text"),
        ("stopped_at", "timestamptz"),
        ("stopped_by", "text"),
        ("created_at", "timestamptz not null"),
        ("updated_at", "timestamptz not null"),
        ("version", "bigint not null"),
    ),
    key="id",
    constraints=("unique (account_id, program_key, city)",),
)

# The spec's Supply Velocity: Craigslist leads per UTC day and city, counted at
# coalesce(first_seen_at, created_at). (Time zones per US city are unresolved in the spec.)
CRAIGSLIST_SSV: Final = View(
    schema="public",
    name="v_craigslist_ssv_v0",
    sql="""
select (coalesce(l.first_seen_at, l.created_at) at time zone 'UTC')::date as day,
       l.city,
       count(*) as leads,
       l.account_id
  from public.leads l
 where l.source = 'craigslist'
 group by 1, 2, 4
""",
)

# The spec's Program ON definition, per program and city, over the last 60 minutes of tasks:
#   Disabled: routing_active = false OR no tasks in the last 60m
#   Degraded: routing_active AND failed > 0 AND done = 0
#   Live:     routing_active AND done > 0
# and, where the spec says nothing: a stopped program is Disabled; tasks queued or claimed with
# none ended is Pending. A program started with the routing override counts as routed. A city
# with tasks but no program (autos.activate, the spec's enqueue SQL) has a row too, by the
# spec's rule alone.
PROGRAM_STATUS: Final = View(
    schema="public",
    name="v_lead_program_status_v1",
    sql="""
with t as (
    select account_id, source, city,
           count(*) filter (where created_at > now() - interval '60 minutes') as tasks_60m,
           count(*) filter (where created_at > now() - interval '60 minutes' and status = 'queued') as queued_60m,
           count(*) filter (where created_at > now() - interval '60 minutes' and status = 'claimed') as claimed_60m,
           count(*) filter (where created_at > now() - interval '60 minutes' and status = 'done') as done_60m,
           count(*) filter (where created_at > now() - interval '60 minutes' and status = 'failed') as failed_60m,
           count(*) filter (where created_at > now() - interval '60 minutes' and status = 'cancelled') as cancelled_60m,
           max(updated_at) filter (where status = 'done') as last_success_at
      from lead_hunter.craigslist_tasks_v1
     group by account_id, source, city
)
select coalesce(p.account_id, t.account_id) as account_id,
       coalesce(p.program_key, t.source) as program_key,
       coalesce(p.city, t.city) as city,
       coalesce(p.running, false) as running,
       coalesce(p.routing_override, false) as routing_override,
       coalesce((o.leadgen_routing->>'active')::boolean, false) as routing_active,
       coalesce(t.tasks_60m, 0) as tasks_60m,
       coalesce(t.queued_60m, 0) as queued_60m,
       coalesce(t.claimed_60m, 0) as claimed_60m,
       coalesce(t.done_60m, 0) as done_60m,
       coalesce(t.failed_60m, 0) as failed_60m,
       coalesce(t.cancelled_60m, 0) as cancelled_60m,
       t.last_success_at,
       case
         when p.running is false
              or not (coalesce((o.leadgen_routing->>'active')::boolean, false) or coalesce(p.routing_override, false))
              or coalesce(t.tasks_60m, 0) = 0 then 'Disabled'
         when t.done_60m > 0 then 'Live'
         when t.failed_60m > 0 then 'Degraded'
         else 'Pending'
       end as status,
       p.started_at, p.stopped_at, p.discover_every_s
  from public.lead_programs p
  full join t on t.account_id = p.account_id and t.source = p.program_key and t.city = p.city
  left join public.org_settings o on o.account_id = coalesce(p.account_id, t.account_id)
""",
)


class ProgramRow(msgspec.Struct, gc=False):
    id: UUID
    account_id: UUID
    program_key: str
    city: str
    running: bool
    routing_override: bool
    discover_every_s: int
    started_at: datetime | None
    started_by: str | None
    stopped_at: datetime | None
    stopped_by: str | None
    created_at: datetime
    updated_at: datetime
    version: int


class LeadProgramsProjection(Projection):
    name = "lead_programs"
    version = 1  # (the views are recreated on every start; only table changes need a new version)
    handles: ClassVar[tuple[type[Event], ...]] = (ProgramStarted, ProgramStopped)
    tables = (LEAD_PROGRAMS,)
    views = (CRAIGSLIST_SSV, PROGRAM_STATUS)

    def __init__(self) -> None:
        self.programs = RowSet(LEAD_PROGRAMS, ProgramRow)

    async def apply(self, db: Db, batch: Sequence[Fact]) -> None:
        ids = [self._id(f.event) for f in batch]
        await self.programs.prefetch(db, ids)
        for row_id, fact in zip(ids, batch, strict=True):
            event = fact.event
            at = fact.recorded_at
            assert isinstance(event, ProgramStarted | ProgramStopped)
            row = self.programs.get(row_id) or ProgramRow(
                row_id, event.account_id, event.program_key, event.city, False, False, 900, None, None, None, None,
                at, at, fact.position,
            )  # fmt: skip
            match event:
                case ProgramStarted():
                    row.running = True
                    row.routing_override = event.routing_override
                    row.discover_every_s = event.discover_every_s
                    row.started_at = at
                    row.started_by = event.started_by
                case ProgramStopped():
                    row.running = False
                    row.stopped_at = at
                    row.stopped_by = event.stopped_by
            row.updated_at = at
            row.version = fact.position
            self.programs.put(row)

    @staticmethod
    def _id(event: Event) -> UUID:
        assert isinstance(event, ProgramStarted | ProgramStopped)
        return program_row_id(event.account_id, event.program_key, event.city)
