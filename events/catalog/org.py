"""Org settings events: onboarding identity, contact and LeadGen routing (public.org_settings)."""

from __future__ import annotations

from uuid import UUID

import msgspec

from events.catalog.base import Event

CATEGORY = "org"


def org_stream(account_id: UUID) -> str:
    return f"{CATEGORY}-{account_id}"


class LeadgenRouting(msgspec.Struct, frozen=True, kw_only=True):
    dealer_address: str | None = None
    radius_miles: int = 10
    city_fallback: str | None = None
    active: bool = False


class OrgSettingsUpdated(Event, frozen=True):
    account_id: UUID
    business_name: str
    contact_email: str
    contact_phone: str | None = None
    contact_whatsapp: str | None = None
    vertical: str = "car_dealer"


class LeadgenRoutingSet(Event, frozen=True):
    account_id: UUID
    leadgen_routing: LeadgenRouting


class DailyCapsSet(Event, frozen=True):
    """How many touches per channel the account sends a day at most (a channel not named: no cap)."""

    account_id: UUID
    caps: dict[str, int]


class SendersSet(Event, frozen=True):
    """The account's own senders, per channel: `sms` and `voice` an E.164 number, `whatsapp` an
    E.164 number (Twilio) or a WhatsApp phone number id (Meta), `email` an address. A channel not
    named goes out from the deployment's sender (the provider's environment)."""

    account_id: UUID
    senders: dict[str, str]
