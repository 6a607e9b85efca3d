"""`public.org_settings`: each account's identity, contact and LeadGen routing (one row per account)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any, ClassVar, Final
from uuid import UUID

import asyncpg
import msgspec

from events.catalog import Event, LeadgenRoutingSet, OrgSettingsUpdated, SendersSet
from projections.model import Db, Fact, Projection, RowSet, Table

ORG_SETTINGS = Table(
    schema="public",
    name="org_settings",
    columns=(
        ("account_id", "uuid not null"),
        ("business_name", "text"),
        ("contact_email", "text"),
        ("contact_phone", "text"),
        ("contact_whatsapp", "text"),
        ("vertical", "text not null"),
        ("leadgen_routing", "jsonb"),
        ("senders", "jsonb not null default '{}'"),  # channel → the account's own sender (not in the spec)
        ("created_at", "timestamptz not null"),
        ("updated_at", "timestamptz not null"),
        ("version", "bigint not null"),
    ),
    key="account_id",
    constraints=(
        # The spec's server-side rule, here too: radius 1 to 50; active routing needs an address.
        "constraint leadgen_routing_valid check (leadgen_routing is null or ("
        "(leadgen_routing->>'radius_miles')::int between 1 and 50 and ("
        "not coalesce((leadgen_routing->>'active')::boolean, false) "
        "or coalesce(btrim(leadgen_routing->>'dealer_address'), '') <> '')))",
    ),
)


_NO_SENDERS: Final = msgspec.Raw(b"{}")


class OrgRow(msgspec.Struct, gc=False):
    account_id: UUID
    business_name: str | None
    contact_email: str | None
    contact_phone: str | None
    contact_whatsapp: str | None
    vertical: str
    leadgen_routing: msgspec.Raw | None
    senders: msgspec.Raw
    created_at: datetime
    updated_at: datetime
    version: int


class OrgSettingsProjection(Projection):
    name = "org_settings"
    version = 2  # 2: the senders
    handles: ClassVar[tuple[type[Event], ...]] = (OrgSettingsUpdated, LeadgenRoutingSet, SendersSet)
    tables = (ORG_SETTINGS,)

    def __init__(self) -> None:
        self.orgs = RowSet(ORG_SETTINGS, OrgRow)

    async def apply(self, db: Db, batch: Sequence[Fact]) -> None:
        await self.orgs.prefetch(db, (getattr(f.event, "account_id") for f in batch))  # noqa: B009
        for fact in batch:
            event = fact.event
            at = fact.recorded_at
            account_id: UUID = getattr(event, "account_id")  # noqa: B009
            row = self.orgs.get(account_id) or OrgRow(
                account_id, None, None, None, None, "car_dealer", None, _NO_SENDERS, at, at, fact.position
            )
            match event:
                case OrgSettingsUpdated():
                    row.business_name = event.business_name
                    row.contact_email = event.contact_email
                    row.contact_phone = event.contact_phone
                    row.contact_whatsapp = event.contact_whatsapp
                    row.vertical = event.vertical
                case LeadgenRoutingSet(leadgen_routing=routing):
                    row.leadgen_routing = msgspec.Raw(msgspec.json.encode(routing))
                case SendersSet(senders=senders):
                    row.senders = msgspec.Raw(msgspec.json.encode(senders))
            row.updated_at = at
            row.version = fact.position
            self.orgs.put(row)


_BY_SENDER: Final = """
select account_id from public.org_settings
 where senders @> jsonb_build_object($2::text, $1::text)
 order by created_at limit 1
"""


async def account_by_sender(pool: Any, number: str | None, channels: tuple[str, ...]) -> UUID | None:
    """The account whose own sender on one of `channels` is `number` (a call or message to the
    dealer's number belongs to that dealer); None when nobody's is, or before the read model exists."""
    if not number:
        return None
    for channel in channels:
        try:
            found = await pool.fetchval(_BY_SENDER, number, channel)
        except (asyncpg.UndefinedTableError, asyncpg.UndefinedColumnError):  # not built (or not rebuilt) yet
            return None
        if found is not None:
            return UUID(str(found))
    return None
