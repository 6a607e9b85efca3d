"""What providers tell us, made into events: messages from leads, compliance keywords, delivery status.

An inbound message is recorded once per provider message id (a webhook the provider retries
appends nothing new and gets no second reply). Every lead with the sender's number hears it:
a reply takes the lead out of its cadence (the cadence runner reacts to `LeadReplied`), STOP
and its synonyms suppress the lead before its next touch, START resubscribes a lead that had
opted out, HELP gets the help text. Each keyword gets exactly one automatic answer.
"""

from __future__ import annotations

import re
import unicodedata
import uuid
from datetime import datetime
from typing import Final
from uuid import UUID

import asyncpg
import msgspec

from actors.cadence import LeadView, fold_lead
from actors.dispatch import load_touch
from actors.org import fold_org
from events.catalog import (
    AutoReplySent,
    Event,
    InboundMessageReceived,
    LeadContactInvalid,
    LeadReplied,
    LeadResubscribed,
    LeadSuppressed,
    TouchRunDeliveryStatus,
    inbound_stream,
    lead_stream,
    org_stream,
    touch_stream,
)
from events.errors import ConcurrencyError, NotFound
from events.store import ANY, NO_STREAM, EventStore, NewEvent, StreamAppend
from gateways.providers.base import Outcome
from projections.org_settings import account_by_sender

STOP_WORDS: Final = frozenset({"STOP", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT", "REVOKE", "OPTOUT"})
START_WORDS: Final = frozenset({"START", "YES", "UNSTOP"})
HELP_WORDS: Final = frozenset({"HELP", "INFO"})
_NAMESPACE: Final = uuid.UUID("0b6c1f7e-52a4-4f43-8f0c-5b1d3a9e7c21")

REPLIES: Final = {
    "stop": "{business}: te has dado de baja y no recibirás más mensajes. Responde START para volver. / "
    "You are unsubscribed and will get no more messages. Reply START to resubscribe.",
    "start": "{business}: te has vuelto a suscribir. Responde STOP para darte de baja. / "
    "You are resubscribed. Reply STOP to unsubscribe.",
    "help": "{business}: mensajes sobre tu anuncio de auto.{contact} Responde STOP para darte de baja. / "
    "Messages about your car listing. Reply STOP to opt out.",
}


def keyword_of(body: str) -> str | None:
    """`stop`, `start` or `help` when the whole message is one of the keywords (any case, spaces, punctuation)."""
    text = unicodedata.normalize("NFKC", body).strip().upper()
    text = re.sub(r"[\s.!¡?¿,;:'\"-]+", "", text)
    if text in STOP_WORDS:
        return "stop"
    if text in START_WORDS:
        return "start"
    if text in HELP_WORDS:
        return "help"
    return None


def plain_number(address: str) -> str:
    """`whatsapp:+1305...` → `+1305...`; spaces and dashes out."""
    return re.sub(r"[\s().-]", "", address.removeprefix("whatsapp:"))


class InboundResult(msgspec.Struct, frozen=True, kw_only=True):
    duplicate: bool
    keyword: str | None
    lead_ids: list[UUID]
    reply: str | None  # the automatic answer to send (None: none, or already sent for this message)
    account_id: UUID | None = None  # the account whose name signs the reply


async def leads_with_number(store: EventStore, number: str) -> list[LeadView]:
    """Every lead (in any account) with this phone, as their streams say they are."""
    pool = getattr(store, "pool", None)
    if pool is None:
        return []
    try:
        rows = await pool.fetch("select id from public.leads where phone = $1 order by created_at", number)
    except asyncpg.UndefinedTableError:
        return []
    leads = []
    for row in rows:
        lead = fold_lead([e.event for e in await store.read_stream(lead_stream(row["id"]))])
        if lead is not None:
            leads.append(lead)
    return leads


async def reply_text(store: EventStore, kind: str, account_id: UUID | None) -> str:
    business, contact = "Touchline", ""
    if account_id is not None:
        org = fold_org(account_id, [e.event for e in await store.read_stream(org_stream(account_id))])
        business = org.business_name or business
        contact = f" Ayuda/help: {org.contact_email}." if org.contact_email else ""
    return REPLIES[kind].format(business=business, contact=contact)


async def receive_inbound(
    store: EventStore,
    *,
    provider: str,
    provider_message_id: str,
    channel: str,
    from_number: str,
    to_number: str,
    body: str,
    received_at: datetime,
    reply_via: str = "api",
) -> InboundResult:
    """Record one inbound message and what it means for every lead with that number, atomically.

    With `reply_via="twiml"` the automatic reply is recorded here (it goes back in the webhook's
    own response); with `"api"` the caller sends it and records it with `record_auto_reply`.
    """
    number = plain_number(from_number)
    keyword = keyword_of(body)
    stream = inbound_stream(provider, provider_message_id)
    if await store.stream_version(stream) > 0:  # the provider retried a webhook we recorded
        return await _retried(store, stream, number, reply_via)
    leads = await leads_with_number(store, number)
    account_id = leads[0].account_id if leads else None
    pool = getattr(store, "pool", None)
    if account_id is None and pool is not None:  # not a lead: the account whose own number was written to
        account_id = await account_by_sender(pool, plain_number(to_number), (channel, "sms"))
    received = InboundMessageReceived(
        provider=provider,
        provider_message_id=provider_message_id,
        channel=channel,
        from_number=number,
        to_number=plain_number(to_number),
        body=body,
        received_at=received_at,
        keyword=keyword,
        lead_ids=[lead.lead_id for lead in leads],
    )
    reply = await reply_text(store, keyword, account_id) if keyword else None
    events: list[Event] = [received]
    if reply is not None and reply_via == "twiml":
        events.append(
            AutoReplySent(
                provider=provider,
                channel=channel,
                to_number=number,
                from_number=plain_number(to_number),
                body=reply,
                kind=keyword or "",
                in_reply_to=provider_message_id,
                via="twiml",
            )
        )
    appends = [StreamAppend(stream_id=stream, events=[_ided(e, stream) for e in events], expected_version=NO_STREAM)]
    for lead in leads:
        lead_events = _lead_events(lead, keyword, channel, body, received_at)
        appends.append(
            StreamAppend(
                stream_id=lead_stream(lead.lead_id),
                events=[_ided(e, f"{stream}:{lead.lead_id}") for e in lead_events],
                expected_version=ANY,
            )
        )
    try:
        results = await store.append_many(appends)
    except ConcurrencyError:
        results = []
    if not results or results[0].duplicate:  # a retry that raced the first delivery
        return await _retried(store, stream, number, reply_via)
    return InboundResult(
        duplicate=False, keyword=keyword, lead_ids=received.lead_ids, reply=reply, account_id=account_id
    )


async def _retried(store: EventStore, stream: str, number: str, reply_via: str) -> InboundResult:
    """A message recorded before: nothing new is recorded, and its answer is owed only if it never went out.

    A confirmation sent through the provider's API can fail after the message was recorded; the
    webhook is then answered with an error so the provider delivers it again, and this is where
    the retry gets its second chance to send it.
    """
    events = [e.event for e in await store.read_stream(stream)]
    received = next((e for e in events if isinstance(e, InboundMessageReceived)), None)
    if received is None:  # the racing first delivery has not committed yet: it answers
        return InboundResult(duplicate=True, keyword=None, lead_ids=[], reply=None)
    answered = any(isinstance(e, AutoReplySent) for e in events)
    keyword, reply, account_id = received.keyword, None, None
    if keyword and not answered and reply_via == "api":
        leads = await leads_with_number(store, number)
        account_id = leads[0].account_id if leads else None
        reply = await reply_text(store, keyword, account_id)
    return InboundResult(
        duplicate=True, keyword=keyword, lead_ids=received.lead_ids, reply=reply, account_id=account_id
    )


def _lead_events(lead: LeadView, keyword: str | None, channel: str, body: str, at: datetime) -> list[Event]:
    events: list[Event] = []
    if keyword == "stop" and lead.status != "suppressed":
        events.append(
            LeadSuppressed(
                lead_id=lead.lead_id,
                account_id=lead.account_id,
                reason=f"opted_out: {body.strip().upper()[:20]} via {channel}",
                channel=channel,
            )
        )
    if keyword == "start" and lead.status == "suppressed" and (lead.suppression_reason or "").startswith("opted_out"):
        events.append(LeadResubscribed(lead_id=lead.lead_id, account_id=lead.account_id, channel=channel))
    events.append(
        LeadReplied(lead_id=lead.lead_id, account_id=lead.account_id, channel=channel, body=body, received_at=at)
    )
    return events


def _ided(event: Event, key: str) -> NewEvent:
    """The same id each time this (message, stream, event type) is recorded: a retried webhook adds nothing."""
    return NewEvent(event=event, event_id=uuid.uuid5(_NAMESPACE, f"{key}:{type(event).__name__}"))


async def record_auto_reply(
    store: EventStore,
    *,
    provider: str,
    channel: str,
    in_reply_to: str,
    to_number: str,
    from_number: str,
    body: str,
    kind: str,
    provider_message_id: str | None,
) -> None:
    stream = inbound_stream(provider, in_reply_to)
    sent = AutoReplySent(
        provider=provider,
        channel=channel,
        to_number=plain_number(to_number),
        from_number=plain_number(from_number),
        body=body,
        kind=kind,
        in_reply_to=in_reply_to,
        provider_message_id=provider_message_id,
        via="api",
    )
    await store.append(stream, [_ided(sent, f"{stream}:reply")], expected_version=ANY)


# --- delivery status --------------------------------------------------------------------------


async def record_delivery(
    store: EventStore,
    *,
    touch_run_id: UUID,
    provider: str,
    status: str,
    provider_message_id: str | None,
    error_code: str | None,
    outcome: Outcome | None,
    occurred_at: datetime | None,
) -> bool:
    """A provider's status callback for a touch; False when it was recorded already (a retried callback)."""
    touch = await load_touch(store, touch_run_id)
    if touch is None:
        raise NotFound("webhook.status", f"no touch run {touch_run_id}", field="touch")
    if touch.provider_message_id and provider_message_id and touch.provider_message_id != provider_message_id:
        raise NotFound(
            "webhook.status",
            f"touch run {touch_run_id} was sent as {touch.provider_message_id}, not {provider_message_id}",
            field="touch",
        )
    key = f"delivery:{touch_run_id}:{provider}:{provider_message_id}:{status}:{error_code}"
    stream = touch_stream(touch_run_id)
    event = TouchRunDeliveryStatus(
        touch_run_id=touch_run_id,
        account_id=touch.account_id,
        provider=provider,
        status=status,
        provider_message_id=provider_message_id,
        error_code=error_code,
        occurred_at=occurred_at,
    )
    appends = [StreamAppend(stream_id=stream, events=[_ided(event, key)], expected_version=ANY)]
    lead_events: list[Event] = []
    if outcome == "suppress":
        lead_events.append(
            LeadSuppressed(
                lead_id=touch.lead_id,
                account_id=touch.account_id,
                reason=f"opted_out: {provider} {error_code}",
                channel=touch.channel,
            )
        )
    elif outcome == "bad_data":
        lead_events.append(
            LeadContactInvalid(
                lead_id=touch.lead_id, account_id=touch.account_id, channel=touch.channel, error_code=error_code
            )
        )
    if lead_events:
        appends.append(
            StreamAppend(
                stream_id=lead_stream(touch.lead_id), events=[_ided(e, key) for e in lead_events], expected_version=ANY
            )
        )
    results = await store.append_many(appends)
    return not results[0].duplicate
