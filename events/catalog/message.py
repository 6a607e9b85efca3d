"""Provider message events: what arrived from leads (inbound SMS and WhatsApp) and the automatic replies."""

from __future__ import annotations

import hashlib
import re
from datetime import date, datetime
from uuid import UUID

from events.catalog.base import Event

CATEGORY = "inbound"
WARMUP_CATEGORY = "email_warmup"

_SAFE_ID = re.compile(r"[A-Za-z0-9_.:@+-]{1,160}")


def inbound_stream(provider: str, provider_message_id: str) -> str:
    """One stream per provider message: a webhook the provider retries records it once.

    Ids that cannot be part of a stream id (Meta's base64 `wamid.…/…=` ones) go by their SHA-256;
    the event inside keeps the id as the provider wrote it.
    """
    if not _SAFE_ID.fullmatch(provider_message_id):
        provider_message_id = "sha256:" + hashlib.sha256(provider_message_id.encode()).hexdigest()
    return f"{CATEGORY}-{provider}:{provider_message_id}"


def warmup_stream(account_id: UUID, day: date | None = None) -> str:
    """The account's warmup (when it started), or one day's slots."""
    return f"{WARMUP_CATEGORY}-{account_id}" + (f":{day.isoformat()}" if day else "")


class InboundMessageReceived(Event, frozen=True):
    """A message a provider delivered to one of our numbers, verified, before anything is done with it."""

    provider: str
    provider_message_id: str
    channel: str  # sms | whatsapp
    from_number: str
    to_number: str
    body: str
    received_at: datetime
    keyword: str | None = None  # stop | start | help, when the body is one of the compliance keywords
    lead_ids: list[UUID] = []  # the leads with that number (in every account that has one)
    account_id: UUID | None = None  # set on the copy appended per account; None when no lead matched


class AutoReplySent(Event, frozen=True):
    """The one automatic answer to a compliance keyword (STOP confirmation, START, HELP)."""

    provider: str
    channel: str
    to_number: str
    from_number: str
    body: str
    kind: str  # stop | start | help
    in_reply_to: str  # the provider message id answered
    provider_message_id: str | None = None
    via: str = "api"  # api | twiml (in the webhook's own response)
    account_id: UUID | None = None


class EmailWarmupSlotTaken(Event, frozen=True):
    """One of the day's warmup allowance of emails went to this touch run (the stream's length is the count)."""

    account_id: UUID
    day: date
    touch_run_id: UUID
    allowance: int


class EmailWarmupStarted(Event, frozen=True):
    """The account's first email: its warmup ramp counts days from here."""

    account_id: UUID
    day: date
