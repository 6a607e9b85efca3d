"""`public.inbox_messages` (what leads sent us) and the spec's `public.inbox_events` view (in and out)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import ClassVar
from uuid import UUID

import msgspec

from events.catalog import Event, LeadReplied
from projections.model import Db, Fact, Projection, RowSet, Table, View

INBOX_MESSAGES = Table(
    schema="public",
    name="inbox_messages",
    columns=(
        ("id", "bigint not null"),  # the log position of the message's event
        ("account_id", "uuid not null"),
        ("lead_id", "uuid not null"),
        ("channel", "text not null"),
        ("body", "text"),
        ("received_at", "timestamptz not null"),
        ("created_at", "timestamptz not null"),
    ),
    key="id",
    indexes=("(account_id, received_at)", "(lead_id)"),
)

INBOX_EVENTS = View(
    schema="public",
    name="inbox_events",
    sql="""
select 'inbound'::text as direction, m.account_id, m.lead_id, m.channel, m.body, m.received_at as occurred_at,
       null::uuid as touch_run_id, null::text as provider, null::text as delivery_status
  from public.inbox_messages m
union all
select 'outbound'::text, t.account_id, t.lead_id, t.channel, null::text, t.dispatched_at, t.id, t.provider,
       t.delivery_status
  from public.touch_runs t
 where t.dispatched_at is not null
""",
)


class MessageRow(msgspec.Struct, gc=False):
    id: int
    account_id: UUID
    lead_id: UUID
    channel: str
    body: str | None
    received_at: datetime
    created_at: datetime


class InboxProjection(Projection):
    name = "inbox"
    version = 1
    handles: ClassVar[tuple[type[Event], ...]] = (LeadReplied,)
    tables = (INBOX_MESSAGES,)
    views = (INBOX_EVENTS,)

    def __init__(self) -> None:
        self.messages = RowSet(INBOX_MESSAGES, MessageRow)

    async def apply(self, db: Db, batch: Sequence[Fact]) -> None:
        await self.messages.prefetch(db, (f.position for f in batch))
        for fact in batch:
            event = fact.event
            assert isinstance(event, LeadReplied)
            if self.messages.get(fact.position) is None:
                self.messages.put(
                    MessageRow(
                        fact.position, event.account_id, event.lead_id, event.channel, event.body,
                        event.received_at or fact.recorded_at, fact.recorded_at,
                    )
                )  # fmt: skip
