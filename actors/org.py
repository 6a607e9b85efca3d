"""Org settings commands (onboarding): identity, contact and LeadGen routing, checked and appended."""

from __future__ import annotations

import re
from typing import Final
from uuid import UUID

import msgspec

from actors.campaigns import CHANNELS
from events.catalog import (
    DailyCapsSet,
    Event,
    LeadgenRouting,
    LeadgenRoutingSet,
    OrgSettingsUpdated,
    SendersSet,
    org_stream,
)
from events.errors import CommandRejected
from events.store import EventStore

_EMAIL: Final = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s.]{2,}$")
_E164: Final = re.compile(r"^\+[1-9]\d{7,14}$")
_PHONE_NUMBER_ID: Final = re.compile(r"^\d{6,20}$")  # Meta's id of a WhatsApp sender number
_VERTICAL: Final = re.compile(r"^[a-z][a-z0-9_]{1,40}$")


class OrgState(msgspec.Struct, kw_only=True):
    account_id: UUID
    business_name: str | None = None
    contact_email: str | None = None
    contact_phone: str | None = None
    contact_whatsapp: str | None = None
    vertical: str = "car_dealer"
    leadgen_routing: LeadgenRouting | None = None
    daily_caps: dict[str, int] = {}
    senders: dict[str, str] = {}  # channel → the account's own sender (else the deployment's)
    version: int = 0

    @property
    def routing_active(self) -> bool:
        return bool(self.leadgen_routing and self.leadgen_routing.active)


def fold_org(account_id: UUID, events: list[Event]) -> OrgState:
    state = OrgState(account_id=account_id, version=len(events))
    for event in events:
        match event:
            case OrgSettingsUpdated():
                state.business_name = event.business_name
                state.contact_email = event.contact_email
                state.contact_phone = event.contact_phone
                state.contact_whatsapp = event.contact_whatsapp
                state.vertical = event.vertical
            case LeadgenRoutingSet(leadgen_routing=routing):
                state.leadgen_routing = routing
            case DailyCapsSet(caps=caps):
                state.daily_caps = dict(caps)
            case SendersSet(senders=senders):
                state.senders = dict(senders)
    return state


def check_routing(command: str, routing: LeadgenRouting) -> LeadgenRouting:
    """The spec's rule (also a CHECK constraint on the read model): radius 1 to 50; active needs an address."""
    if not 1 <= routing.radius_miles <= 50:
        raise CommandRejected(command, f"must be 1 to 50, got {routing.radius_miles}", field="radius_miles")
    address = (routing.dealer_address or "").strip() or None
    if routing.active and address is None:
        raise CommandRejected(command, "routing cannot be active without a dealer address", field="dealer_address")
    city = (routing.city_fallback or "").strip().lower() or None
    return LeadgenRouting(
        dealer_address=address, radius_miles=routing.radius_miles, city_fallback=city, active=routing.active
    )


class OrgSettings:
    """The org settings commands of one store."""

    def __init__(self, store: EventStore) -> None:
        self.store = store

    async def get(self, account_id: UUID) -> OrgState:
        envelopes = await self.store.read_stream(org_stream(account_id))
        return fold_org(account_id, [e.event for e in envelopes])

    async def update(
        self,
        account_id: UUID,
        *,
        business_name: str,
        contact_email: str,
        contact_phone: str | None = None,
        contact_whatsapp: str | None = None,
        vertical: str = "car_dealer",
    ) -> OrgState:
        command = "settings.update"
        name = business_name.strip()
        if not name:
            raise CommandRejected(command, "is required", field="business_name")
        if len(name) > 200:
            raise CommandRejected(command, "is longer than 200 characters", field="business_name")
        email = contact_email.strip().lower()
        if not _EMAIL.match(email):
            raise CommandRejected(command, f"{contact_email!r} is not an email address", field="contact_email")
        phones = {}
        for field, value in (("contact_phone", contact_phone), ("contact_whatsapp", contact_whatsapp)):
            number = re.sub(r"[\s().-]", "", value or "") or None
            if number is not None and not _E164.match(number):
                raise CommandRejected(command, f"{value!r} is not an E.164 number (e.g. +13055550100)", field=field)
            phones[field] = number
        if not _VERTICAL.match(vertical):
            raise CommandRejected(command, f"{vertical!r}: use lower-case letters, digits and _", field="vertical")
        state = await self.get(account_id)
        event = OrgSettingsUpdated(
            account_id=account_id,
            business_name=name,
            contact_email=email,
            contact_phone=phones["contact_phone"],
            contact_whatsapp=phones["contact_whatsapp"],
            vertical=vertical,
        )
        await self.store.append(org_stream(account_id), [event], expected_version=state.version)
        return await self.get(account_id)

    async def set_routing(self, account_id: UUID, routing: LeadgenRouting) -> OrgState:
        checked = check_routing("settings.routing", routing)
        state = await self.get(account_id)
        event = LeadgenRoutingSet(account_id=account_id, leadgen_routing=checked)
        await self.store.append(org_stream(account_id), [event], expected_version=state.version)
        return await self.get(account_id)

    async def set_daily_caps(self, account_id: UUID, caps: dict[str, int]) -> OrgState:
        """At most `caps[channel]` touches a day per channel (the day where each lead is); {} lifts them."""
        command = "settings.daily_caps"
        for channel, cap in caps.items():
            if channel not in CHANNELS:
                known = ", ".join(sorted(CHANNELS))
                raise CommandRejected(
                    command, f"unknown channel {channel!r}; use one of {known}", field=f"caps.{channel}"
                )
            if not 1 <= cap <= 100_000:
                message = f"must be 1 to 100000 a day, got {cap} (to stop a channel, take its steps out)"
                raise CommandRejected(command, message, field=f"caps.{channel}")
        state = await self.get(account_id)
        event = DailyCapsSet(account_id=account_id, caps=dict(sorted(caps.items())))
        await self.store.append(org_stream(account_id), [event], expected_version=state.version)
        return await self.get(account_id)

    async def set_senders(self, account_id: UUID, senders: dict[str, str]) -> OrgState:
        """The account's own sender per channel (replaced whole; {} goes back to the deployment's)."""
        command = "settings.senders"
        checked = {}
        for channel, raw in senders.items():
            if channel not in CHANNELS:
                known = ", ".join(sorted(CHANNELS))
                raise CommandRejected(command, f"unknown channel {channel!r}; use one of {known}", field=channel)
            value = raw.strip()
            if channel == "email":
                value = value.lower()
                if not _EMAIL.match(value):
                    raise CommandRejected(command, f"{raw!r} is not an email address", field=channel)
            else:
                value = re.sub(r"[\s().-]", "", value)
                meta_id = channel == "whatsapp" and _PHONE_NUMBER_ID.match(value)
                if not _E164.match(value) and not meta_id:
                    hint = " or a WhatsApp phone number id (digits)" if channel == "whatsapp" else ""
                    raise CommandRejected(
                        command, f"{raw!r} is not an E.164 number (e.g. +13055550100){hint}", field=channel
                    )
            checked[channel] = value
        state = await self.get(account_id)
        event = SendersSet(account_id=account_id, senders=dict(sorted(checked.items())))
        await self.store.append(org_stream(account_id), [event], expected_version=state.version)
        return await self.get(account_id)
