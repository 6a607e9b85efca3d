"""The dispatch engine (the spec's dispatch-engine): claims due touch runs and sends them.

Each touch run's stream is its truth. When a touch comes due the engine checks the lead again
(suppressed, replied, bad data on the channel: skipped), claims the touch with a lease by an
append at the stream's version (so of several processes one wins), sends it through the
channel's provider, and records what happened:

- dispatched, with the provider's message or call id;
- failed: retried with exponential backoff and jitter (or after the provider's Retry-After),
  dead-lettered after the last attempt (`touchline touches requeue` sends it again);
- opted out → the lead is suppressed; invalid or unreachable number → bad data on the channel;
- outcome unknown (a timeout, a dropped connection, a claimant that died mid-send): the
  provider is asked where it can (Twilio lists what it sent); where it cannot, the touch is
  dead-lettered rather than sent twice.

A provider without credentials runs in sandbox mode: the exact request it would have sent is
recorded (`ProviderRequestRecorded`) with the dispatch in one append, so nothing leaves the
machine and nothing needs a claim. Touches due later wait on durable timers.
"""

from __future__ import annotations

import os
import random
import socket
import string
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import ClassVar, Final
from uuid import UUID

import asyncpg
import msgspec

from actors.cadence import LeadView, fold_lead
from actors.campaigns import CampaignState, fold_campaign
from actors.limits import Limits
from actors.org import OrgState, fold_org
from actors.runtime import Actor, ActorContext, ConsumerSettings, Reaction
from actors.send_window import lead_zone, next_allowed
from actors.warmup import EmailWarmup, WarmupSchedule
from events.catalog import (
    CampaignActivated,
    Event,
    LeadContacted,
    LeadContactInvalid,
    LeadSuppressed,
    ProviderRequestRecorded,
    TimerFired,
    TouchRunClaimed,
    TouchRunDeadLettered,
    TouchRunDeferred,
    TouchRunDeliveryStatus,
    TouchRunDispatched,
    TouchRunFailed,
    TouchRunRequeued,
    TouchRunRetryScheduled,
    TouchRunScheduled,
    TouchRunSkipped,
    campaign_stream,
    lead_stream,
    org_stream,
    touch_stream,
)
from events.envelope import Envelope
from events.errors import CommandRejected, ConcurrencyError, NotFound
from events.settings import env_int, env_number
from events.store import ANY, EventStore, StreamAppend
from gateways.providers import ChannelProviders
from gateways.providers.base import OutboundMessage, Provider, ProviderFailure, Sent

VERSION: Final = "dispatch-engine-v1"
DONE: Final = frozenset({"dispatched", "skipped", "dead_letter", "failed"})
CAMPAIGN_PAUSED: Final = "campaign paused"
PAUSED_RECHECK: Final = timedelta(hours=1)
WHATSAPP_WINDOW: Final = timedelta(hours=24)
PHONE_CHANNELS: Final = frozenset({"sms", "voice", "whatsapp"})

# The first touch's words when a step names no template. {name} {title} {price} {city} {source}
# {business} are filled in from the lead and the account.
DEFAULT_TEXT: Final = {
    "sms": "Hola{name}, vi tu {title} en {source}. ¿Sigue disponible? En {business} compramos autos de "
    "contado. Responde STOP para no recibir más mensajes.",
    "whatsapp": "Hola{name}, vi tu {title} en {source}. ¿Sigue disponible? En {business} compramos autos de "
    "contado y podemos verlo hoy mismo.",
    "email": "Hola{name},\n\nVi tu {title} en {source}. ¿Sigue disponible? En {business} compramos autos de "
    "contado y podemos verlo esta semana.\n\nSaludos,\n{business}",
    "voice": "Llamada sobre el {title} publicado en {source}.",
}
DEFAULT_SUBJECT: Final = "Tu {title}"
SOURCES: Final = {"craigslist": "Craigslist", "encuentra24": "Encuentra24"}


# --- settings -------------------------------------------------------------------------------


PROVIDER_NAMES: Final = ("twilio", "telnyx", "meta", "elastic")


class DispatchSettings(msgspec.Struct, frozen=True, kw_only=True):
    worker_id: str
    lease_s: float = 60.0
    max_attempts: int = 5
    backoff_base_s: float = 30.0
    backoff_max_s: float = 3600.0
    handlers: int = 64
    provider_rates: dict[str, float] = {}
    provider_concurrency: dict[str, int] = {}
    account_rate: float = 10.0
    account_concurrency: int = 10
    warmup: WarmupSchedule = WarmupSchedule()

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> DispatchSettings:
        """Every knob from `DISPATCH_*` / `PROVIDER_*` / `ACCOUNT_*` / `EMAIL_WARMUP_*`; a bad value names itself."""
        env = os.environ if env is None else env
        worker = (env.get("WORKER_ID") or "").strip() or f"{socket.gethostname()}:{os.getpid()}"
        rates = {p: env_number(env, f"PROVIDER_RATE_{p.upper()}", 20.0, low=0.01, high=10_000) for p in PROVIDER_NAMES}
        caps = {p: env_int(env, f"PROVIDER_CONCURRENCY_{p.upper()}", 20, low=1, high=1000) for p in PROVIDER_NAMES}
        return cls(
            worker_id=worker,
            lease_s=env_number(env, "DISPATCH_LEASE_S", 60.0, low=1.0, high=3600.0),
            max_attempts=env_int(env, "DISPATCH_MAX_ATTEMPTS", 5, low=1, high=50),
            backoff_base_s=env_number(env, "DISPATCH_BACKOFF_BASE_S", 30.0, low=0.0, high=86_400.0),
            backoff_max_s=env_number(env, "DISPATCH_BACKOFF_MAX_S", 3600.0, low=0.0, high=7 * 86_400.0),
            handlers=env_int(env, "DISPATCH_HANDLERS", 64, low=1, high=1024),
            provider_rates=rates,
            provider_concurrency=caps,
            account_rate=env_number(env, "ACCOUNT_RATE_PER_S", 10.0, low=0.01, high=10_000),
            account_concurrency=env_int(env, "ACCOUNT_CONCURRENCY", 10, low=1, high=1000),
            warmup=WarmupSchedule.from_env(env),
        )

    def backoff(self, attempt: int) -> float:
        """Seconds before attempt `attempt + 1`: exponential from the base, capped, jittered ±25 %."""
        base: float = min(self.backoff_max_s, self.backoff_base_s * float(2 ** max(0, attempt - 1)))
        return base * (0.75 + random.random() / 2)


# --- a touch run as its stream says it is -----------------------------------------------------


class TouchState(msgspec.Struct, kw_only=True):
    touch_run_id: UUID
    account_id: UUID
    lead_id: UUID
    campaign_id: UUID
    step: int
    channel: str
    status: str
    due: datetime
    version: int
    attempt: int = 1  # the attempt the next send is
    claimed_by: str | None = None
    claimed_at: datetime | None = None
    lease_until: datetime | None = None
    provider: str | None = None
    provider_message_id: str | None = None
    check_provider: bool = False  # the last attempt's outcome is unknown: ask before sending again
    unknown_since: datetime | None = None
    deferred_reason: str | None = None

    @property
    def done(self) -> bool:
        return self.status in DONE


def fold_touch(envelopes: Sequence[Envelope]) -> TouchState | None:
    state: TouchState | None = None
    for env in envelopes:
        event = env.event
        if isinstance(event, TouchRunScheduled):
            state = TouchState(
                touch_run_id=event.touch_run_id,
                account_id=event.account_id,
                lead_id=event.lead_id,
                campaign_id=event.campaign_id,
                step=event.step,
                channel=event.channel,
                status="scheduled",
                due=event.scheduled_for,
                version=env.version,
            )
            continue
        if state is None:
            continue
        state.version = env.version
        match event:
            case TouchRunClaimed():
                state.status = "claimed"
                state.claimed_by = event.claimed_by
                state.claimed_at = env.recorded_at
                state.lease_until = event.lease_until
                state.attempt = event.attempt
                state.provider = event.provider
            case TouchRunDispatched():
                state.status = "dispatched"
                state.provider = event.provider
                state.provider_message_id = event.provider_message_id
            case TouchRunFailed():
                state.status = "failed"
            case TouchRunRetryScheduled():
                state.status = "retry_scheduled"
                state.due = event.retry_at
                state.attempt = event.attempt
                state.check_provider = event.check_provider
                state.unknown_since = state.claimed_at if event.check_provider else None
                state.deferred_reason = None
            case TouchRunDeadLettered():
                state.status = "dead_letter"
            case TouchRunRequeued():
                state.status = "scheduled"
                state.due = event.requeued_at or env.recorded_at
                state.attempt = 1
                state.check_provider = False
                state.deferred_reason = None
            case TouchRunDeferred():
                state.status = "scheduled" if state.status != "retry_scheduled" else state.status
                state.due = event.until
                state.deferred_reason = event.reason
            case TouchRunSkipped():
                state.status = "skipped"
            case TouchRunDeliveryStatus():
                state.provider_message_id = state.provider_message_id or event.provider_message_id
    return state


async def load_touch(store: EventStore, touch_run_id: UUID) -> TouchState | None:
    return fold_touch(await store.read_stream(touch_stream(touch_run_id)))


# --- composing the message --------------------------------------------------------------------


class _Blank(dict[str, str]):
    def __missing__(self, key: str) -> str:
        return ""


def render(template: str, values: Mapping[str, str]) -> str:
    """`template` with {placeholders} filled in; unknown ones become empty, broken braces stay as written."""
    try:
        return string.Formatter().vformat(template, (), _Blank(values)).strip()
    except (ValueError, IndexError):
        return template.strip()


def message_values(lead: LeadView, org: OrgState) -> dict[str, str]:
    price = f"${lead.price:,}" if lead.price else ""
    return {
        "name": f" {lead.name.split()[0]}" if lead.name and lead.name.split() else "",
        "first_name": lead.name.split()[0] if lead.name and lead.name.split() else "",
        "title": lead.title or "auto",
        "price": price,
        "city": lead.city or "",
        "source": SOURCES.get(lead.source or "", lead.source or "tu anuncio"),
        "business": org.business_name or "nuestro concesionario",
    }


def compose(
    touch: TouchState, lead: LeadView, org: OrgState, step_template: str | None, now: datetime
) -> OutboundMessage:
    values = message_values(lead, org)
    channel = touch.channel
    is_template_ref = bool(step_template) and channel == "whatsapp" and _template_ref(step_template or "")
    text = render(step_template if step_template and not is_template_ref else DEFAULT_TEXT[channel], values)
    last = lead.last_inbound.get("whatsapp")
    return OutboundMessage(
        touch_run_id=touch.touch_run_id,
        account_id=touch.account_id,
        lead_id=touch.lead_id,
        channel=channel,
        to=(lead.email or "") if channel == "email" else (lead.phone or ""),
        body=text,
        subject=render(DEFAULT_SUBJECT, values) if channel == "email" else None,
        template=step_template if is_template_ref else None,
        template_variables={"1": values["first_name"] or "", "2": values["title"]} if channel == "whatsapp" else {},
        in_session=last is not None and now - last < WHATSAPP_WINDOW,
        attempt=touch.attempt,
        sender=org.senders.get(channel),
    )


def _template_ref(template: str) -> bool:
    """A WhatsApp step's template names an approved template (ContentSid HX..., or a Meta name), not text."""
    return template.startswith("HX") or (template.replace("_", "").isalnum() and template.lower() == template)


def why_skip(lead: LeadView | None, channel: str) -> str | None:
    """Why this lead must not get this touch now; None when it may."""
    if lead is None:
        return "lead not found"
    if lead.status == "suppressed":
        return f"lead suppressed ({lead.suppression_reason})" if lead.suppression_reason else "lead suppressed"
    if lead.status in ("replied", "qualified", "closed"):
        return f"lead {lead.status}"
    if lead.lead_state == "dead":
        return "lead_state is 'dead'"
    if channel in lead.invalid_channels:
        return f"bad data: the lead's {'email' if channel == 'email' else 'number'} is invalid for {channel}"
    if channel in PHONE_CHANNELS and not lead.phone:
        return "no phone"
    if channel == "email" and not lead.email:
        return "no email"
    return None


# --- the actor --------------------------------------------------------------------------------


class DispatchEngine(Actor):
    """Claims due touch runs and sends them through the channel providers (sandbox without credentials)."""

    name = "dispatch"
    handles: ClassVar[tuple[type[Event], ...]] = (
        TouchRunScheduled,
        TouchRunRetryScheduled,
        TouchRunRequeued,
        TouchRunDeferred,
        CampaignActivated,
    )
    timers = True
    max_attempts = 8
    consumer_settings = ConsumerSettings(concurrency=64, fetch_batch=32, max_ack_pending=4096)

    def __init__(
        self,
        providers: ChannelProviders | None = None,
        settings: DispatchSettings | None = None,
        env: Mapping[str, str] | None = None,
    ) -> None:
        self.env = os.environ if env is None else env
        self.settings = settings or DispatchSettings.from_env(self.env)
        self._given = providers
        self.providers: ChannelProviders | None = providers
        self.limits = Limits(
            self.settings.provider_rates,
            self.settings.provider_concurrency,
            account_rate=self.settings.account_rate,
            account_concurrency=self.settings.account_concurrency,
        )
        self.warmup: EmailWarmup | None = None
        self.sent = 0

    async def start(self, ctx: ActorContext) -> None:
        if self.providers is None:
            self.providers = ChannelProviders(self.env, ctx.settings)
        self.warmup = EmailWarmup(ctx.store, self.settings.warmup, self.env)
        ctx.log.info(
            "dispatch_providers",
            version=VERSION,
            worker=self.settings.worker_id,
            **self.providers.describe(),
        )

    async def close(self) -> None:
        if self.providers is not None and self._given is None:
            await self.providers.close()
            self.providers = None

    async def handle(self, event: Event, env: Envelope, reaction: Reaction) -> None:
        match event:
            case CampaignActivated():
                await self._resume_campaign(reaction, event.campaign_id)
            case TimerFired(data=data):
                if "touch_run_id" in data:
                    known = None
                    if {"lead_id", "campaign_id", "account_id"} <= data.keys():
                        known = (UUID(data["lead_id"]), UUID(data["campaign_id"]), UUID(data["account_id"]))
                    await self.consider(reaction, UUID(data["touch_run_id"]), known)
            case TouchRunScheduled():
                await self.consider(reaction, event.touch_run_id, (event.lead_id, event.campaign_id, event.account_id))
            case _:
                await self.consider(reaction, getattr(event, "touch_run_id"))  # noqa: B009

    # --- deciding -------------------------------------------------------------------------------

    async def consider(
        self, reaction: Reaction, touch_run_id: UUID, known: tuple[UUID, UUID, UUID] | None = None
    ) -> None:
        """Do what the touch needs now: nothing, wait for its time, settle an expired claim, or send it.

        `known` (lead, campaign, account), when the input names them, lets the touch and what
        sending it decides on be read in one round trip.
        """
        store, now = reaction.ctx.store, reaction.ctx.clock.now()
        streams: dict[str, list[Envelope]] | None = None
        if known is not None:
            lead_id, campaign_id, account_id = known
            wanted = [
                touch_stream(touch_run_id),
                campaign_stream(campaign_id),
                lead_stream(lead_id),
                org_stream(account_id),
            ]
            streams = await store.read_streams(wanted)
            touch = fold_touch(streams[wanted[0]])
        else:
            touch = await load_touch(store, touch_run_id)
        if touch is None or touch.done:
            return
        if touch.status == "claimed":
            assert touch.lease_until is not None
            if touch.lease_until > now:  # someone is at it: come back when the lease runs out
                await self._wake(reaction, touch, touch.lease_until, "lease")
                return
            await self._settle_expired(reaction, touch, now)
            return
        # The touch's campaign, lead and account in one read: what sending decides on.
        if streams is None or campaign_stream(touch.campaign_id) not in streams:
            streams = await store.read_streams(
                [campaign_stream(touch.campaign_id), lead_stream(touch.lead_id), org_stream(touch.account_id)]
            )
        campaign_events = streams[campaign_stream(touch.campaign_id)]
        campaign = fold_campaign([e.event for e in campaign_events], len(campaign_events))
        if touch.deferred_reason == CAMPAIGN_PAUSED and campaign is not None and campaign.is_active:
            touch.due = min(touch.due, now)  # resumed: no need to wait out the recheck
        if touch.due > now:
            await self._wake(reaction, touch, touch.due, "due")
            return
        lead = fold_lead([e.event for e in streams[lead_stream(touch.lead_id)]])
        org = fold_org(touch.account_id, [e.event for e in streams[org_stream(touch.account_id)]])
        await self._dispatch(reaction, touch, campaign, lead, org, now)

    async def _wake(self, reaction: Reaction, touch: TouchState, at: datetime, why: str) -> None:
        await reaction.schedule(
            f"{why}:{touch.touch_run_id}:{touch.version}",
            at,
            account_id=touch.account_id,
            data={
                "touch_run_id": str(touch.touch_run_id),
                "lead_id": str(touch.lead_id),
                "campaign_id": str(touch.campaign_id),
                "account_id": str(touch.account_id),
            },
        )

    async def _dispatch(
        self,
        reaction: Reaction,
        touch: TouchState,
        campaign: CampaignState | None,
        lead: LeadView | None,
        org: OrgState,
        now: datetime,
    ) -> None:
        stream = touch_stream(touch.touch_run_id)
        if (why := why_skip(lead, touch.channel)) is not None:
            await self._append(
                reaction,
                touch,
                [TouchRunSkipped(touch_run_id=touch.touch_run_id, account_id=touch.account_id, reason=why)],
                "skip",
            )
            return
        assert lead is not None
        if campaign is not None and not campaign.is_active:
            await self._defer(reaction, touch, now + PAUSED_RECHECK, CAMPAIGN_PAUSED)
            return
        window = next_allowed(now, touch.channel, lead_zone(lead.city, lead.country, lead.longitude))
        if window > now:
            await self._defer(reaction, touch, window, "outside the send window (08:00-21:00 where the lead is)")
            return
        providers = self.providers
        assert providers is not None
        provider = providers.for_channel(touch.channel)
        step = next((s for s in campaign.steps if s.step == touch.step), None) if campaign else None
        message = compose(touch, lead, org, step.template if step else None, now)

        if provider.sandbox:
            await self._send_sandbox(reaction, touch, provider, message, lead, now)
            return
        if touch.channel == "email" and self.warmup is not None and self.warmup.ready:
            decision = await self.warmup.take(touch.account_id, touch.touch_run_id, now)
            if not decision.allowed:
                assert decision.next_day is not None
                reason = f"email warmup: {decision.used} of {decision.allowance} sent on {decision.day.isoformat()}"
                await self._defer(reaction, touch, decision.next_day, reason)
                return
        claim = TouchRunClaimed(
            touch_run_id=touch.touch_run_id,
            account_id=touch.account_id,
            claimed_by=self.settings.worker_id,
            lease_until=now + timedelta(seconds=self.settings.lease_s),
            attempt=touch.attempt,
            provider=provider.name,
        )
        try:
            await reaction.emit(stream, [claim], expected_version=touch.version, key=f"claim:{touch.version}")
        except ConcurrencyError:
            return  # another process claimed it (or it changed): that one settles it
        touch.version += 1
        touch.claimed_at = now

        try:
            found = await self._resolve_unknown(provider, touch, message)
            if found is not None:
                sent = Sent(provider=provider.name, message_id=found)
                await self._record_sent(reaction, touch, sent, lead, reaction.ctx.clock.now(), how="resolved")
                return
            async with self.limits.hold(provider.name, touch.account_id):
                sent = await provider.send(message)
        except ProviderFailure as failure:
            await self._record_failure(reaction, touch, lead, failure, reaction.ctx.clock.now())
            return
        await self._record_sent(reaction, touch, sent, lead, reaction.ctx.clock.now(), how="sent")

    async def _resolve_unknown(self, provider: Provider, touch: TouchState, message: OutboundMessage) -> str | None:
        """When the last attempt may have gone out: the provider's id of it if it did, else None."""
        if not touch.check_provider:
            return None
        if not provider.can_lookup:  # never happens: such touches are dead-lettered, not retried
            raise ProviderFailure(provider.name, "outcome unknown and the provider cannot be asked", outcome="unknown")
        since = touch.unknown_since or touch.claimed_at or touch.due
        return await provider.lookup(message, since)

    async def _send_sandbox(
        self,
        reaction: Reaction,
        touch: TouchState,
        provider: Provider,
        message: OutboundMessage,
        lead: LeadView,
        now: datetime,
    ) -> None:
        try:
            sent = await provider.send(message)
        except ProviderFailure as failure:  # the request cannot even be built (no template...)
            await self._record_failure(reaction, touch, lead, failure, now)
            return
        request = sent.request
        assert request is not None
        recorded = ProviderRequestRecorded(
            touch_run_id=touch.touch_run_id,
            account_id=touch.account_id,
            provider=provider.name,
            method=request.method,
            url=request.url,
            headers=request.headers,
            form=request.form,
            json_body=request.json_body,
        )
        sandboxed = Sent(provider=provider.name, message_id=f"sandbox:{touch.touch_run_id}", sandbox=True)
        await self._record_sent(reaction, touch, sandboxed, lead, now, how="sent", before=[recorded])

    # --- recording ------------------------------------------------------------------------------

    async def _append(
        self,
        reaction: Reaction,
        touch: TouchState,
        events: Sequence[Event],
        key: str,
        lead_events: Sequence[Event] = (),
    ) -> bool:
        appends = [
            StreamAppend(
                stream_id=touch_stream(touch.touch_run_id), events=list(events), expected_version=touch.version
            )
        ]
        if lead_events:
            appends.append(
                StreamAppend(stream_id=lead_stream(touch.lead_id), events=list(lead_events), expected_version=ANY)
            )
        try:
            await reaction.emit_many(appends, key=f"{key}:{touch.version}")
        except ConcurrencyError:
            reaction.ctx.log.warning(
                "dispatch_record_superseded",
                touch_run_id=str(touch.touch_run_id),
                what=key,
                note="the touch changed meanwhile (another worker took over an expired lease)",
            )
            return False
        return True

    async def _record_sent(
        self,
        reaction: Reaction,
        touch: TouchState,
        sent: Sent,
        lead: LeadView,
        at: datetime,
        *,
        how: str,
        before: Sequence[Event] = (),
    ) -> None:
        dispatched = TouchRunDispatched(
            touch_run_id=touch.touch_run_id,
            account_id=touch.account_id,
            provider=sent.provider,
            provider_message_id=sent.message_id,
            sandbox=sent.sandbox,
            attempt=touch.attempt,
            dispatched_at=at,
            how=how,
        )
        lead_events: list[Event] = []
        if lead.status == "new":
            contacted = LeadContacted(
                lead_id=touch.lead_id,
                account_id=touch.account_id,
                channel=touch.channel,
                touch_run_id=touch.touch_run_id,
            )
            lead_events.append(contacted)
        if await self._append(reaction, touch, [*before, dispatched], "sent", lead_events):
            self.sent += 1

    async def _record_failure(
        self, reaction: Reaction, touch: TouchState, lead: LeadView, failure: ProviderFailure, now: datetime
    ) -> None:
        failed = TouchRunFailed(
            touch_run_id=touch.touch_run_id,
            account_id=touch.account_id,
            error=str(failure),
            error_code=failure.code,
            retryable=failure.outcome in ("retry", "unknown"),
            attempt=touch.attempt,
            provider=failure.provider,
            outcome=failure.outcome,
            http_status=failure.status,
        )
        events: list[Event] = [failed]
        lead_events: list[Event] = []
        match failure.outcome:
            case "suppress":
                lead_events.append(
                    LeadSuppressed(
                        lead_id=touch.lead_id,
                        account_id=touch.account_id,
                        reason=f"opted_out: {failure.provider} {failure.code or ''}".strip(),
                        channel=touch.channel,
                    )
                )
            case "bad_data":
                lead_events.append(
                    LeadContactInvalid(
                        lead_id=touch.lead_id,
                        account_id=touch.account_id,
                        channel=touch.channel,
                        error_code=failure.code,
                    )
                )
            case "retry" | "unknown":
                events.append(self._next_attempt(touch, failure, now))
        reaction.ctx.log.warning(
            "dispatch_failed",
            touch_run_id=str(touch.touch_run_id),
            channel=touch.channel,
            provider=failure.provider,
            attempt=touch.attempt,
            outcome=failure.outcome,
            code=failure.code,
            then=type(events[-1]).__name__,
        )
        await self._append(reaction, touch, events, "failed", lead_events)

    def _next_attempt(self, touch: TouchState, failure: ProviderFailure, now: datetime) -> Event:
        """A retry, or the dead letter: after the last attempt, or an unknown outcome nobody can check."""
        providers = self.providers
        assert providers is not None
        current = providers.for_channel(touch.channel)
        # Only the provider it went to can say whether it was sent (the channel may have moved since).
        can_check = current.can_lookup and current.name == failure.provider and not current.sandbox
        if failure.outcome == "unknown" and not can_check:
            return TouchRunDeadLettered(
                touch_run_id=touch.touch_run_id,
                account_id=touch.account_id,
                error=f"outcome unknown ({failure}); {failure.provider} cannot be asked whether it was sent, so it "
                "is not sent again: check with the provider, then requeue",
                attempts=touch.attempt,
                error_code="outcome_unknown",
            )
        if touch.attempt >= self.settings.max_attempts:
            return TouchRunDeadLettered(
                touch_run_id=touch.touch_run_id,
                account_id=touch.account_id,
                error=f"gave up after {touch.attempt} attempts: {failure}",
                attempts=touch.attempt,
                error_code=failure.code,
            )
        delay = self.settings.backoff(touch.attempt)
        if failure.retry_after_s is not None:
            delay = max(failure.retry_after_s, 0.05)
        return TouchRunRetryScheduled(
            touch_run_id=touch.touch_run_id,
            account_id=touch.account_id,
            retry_at=now + timedelta(seconds=delay),
            attempt=touch.attempt + 1,
            reason=failure.outcome + (f" {failure.code}" if failure.code else ""),
            check_provider=failure.outcome == "unknown" or touch.check_provider,
        )

    async def _settle_expired(self, reaction: Reaction, touch: TouchState, now: datetime) -> None:
        """The claimant's lease ran out before it recorded an outcome: it died, or hung, mid-send."""
        providers = self.providers
        assert providers is not None
        provider = providers.for_channel(touch.channel)
        lost = f"the lease of {touch.claimed_by} expired before it recorded an outcome"
        if provider.sandbox and touch.provider == provider.name:
            # Sandbox sends are recorded in the same append as the dispatch: nothing went out.
            failure = ProviderFailure(provider.name, lost, outcome="retry", code="lease_expired")
        else:
            failure = ProviderFailure(touch.provider or provider.name, lost, outcome="unknown", code="lease_expired")
        reaction.ctx.log.warning(
            "dispatch_lease_expired",
            touch_run_id=str(touch.touch_run_id),
            claimed_by=touch.claimed_by,
            provider=touch.provider,
        )
        events: list[Event] = [
            TouchRunFailed(
                touch_run_id=touch.touch_run_id,
                account_id=touch.account_id,
                error=str(failure),
                error_code="lease_expired",
                retryable=True,
                attempt=touch.attempt,
                provider=failure.provider,
                outcome=failure.outcome,
            ),
            self._next_attempt(touch, failure, now),
        ]
        if isinstance(events[-1], TouchRunRetryScheduled):
            # No backoff: nothing failed at the provider; the retry asks it first where it can.
            events[-1] = msgspec.structs.replace(events[-1], retry_at=now)
        await self._append(reaction, touch, events, "expired")

    async def _defer(self, reaction: Reaction, touch: TouchState, until: datetime, reason: str) -> None:
        deferred = TouchRunDeferred(
            touch_run_id=touch.touch_run_id, account_id=touch.account_id, until=until, reason=reason
        )
        await self._append(reaction, touch, [deferred], "defer")

    async def _resume_campaign(self, reaction: Reaction, campaign_id: UUID) -> None:
        """A campaign switched back on: its touches held while it was paused go now."""
        pool = getattr(reaction.ctx.store, "pool", None)
        if pool is None:
            return  # no read models beside this store: the held touches recheck on their own
        try:
            rows = await pool.fetch(
                "select id from public.touch_runs where campaign_id = $1 and status = 'scheduled'", campaign_id
            )
        except asyncpg.UndefinedTableError:
            return
        for row in rows:
            await self.consider(reaction, row["id"])


# --- operator commands ------------------------------------------------------------------------


async def requeue(
    store: EventStore,
    account_id: UUID,
    touch_run_id: UUID,
    *,
    by: str,
    reason: str | None,
    at: datetime | None = None,
) -> int:
    """Send a dead-lettered or failed touch run again from attempt 1; returns the stream's new version."""
    touch = await load_touch(store, touch_run_id)
    if touch is None or touch.account_id != account_id:
        raise NotFound("touches.requeue", f"no touch run {touch_run_id} in this account", field="touch_run_id")
    if touch.status not in ("dead_letter", "failed"):
        raise CommandRejected(
            "touches.requeue",
            f"touch run {touch_run_id} is {touch.status}: only dead-lettered or failed touch runs are requeued",
            field="touch_run_id",
        )
    event = TouchRunRequeued(
        touch_run_id=touch_run_id,
        account_id=account_id,
        requested_by=by,
        reason=reason,
        requeued_at=at or datetime.now(UTC),
    )
    await store.append(touch_stream(touch_run_id), [event], expected_version=touch.version)
    return touch.version + 1
