"""The cadence runner (the spec's run-cadence): eligible new leads enter their account's active campaign."""

from __future__ import annotations

from datetime import datetime
from typing import ClassVar
from uuid import UUID

import asyncpg
import msgspec

from actors.campaigns import CampaignState, fold_campaign
from actors.runtime import Actor, ActorContext, ConsumerSettings, Reaction
from events.catalog import (
    CampaignActivated,
    CampaignCreated,
    CampaignPaused,
    CampaignStepsReplaced,
    Event,
    LeadContacted,
    LeadContactInvalid,
    LeadEnrolled,
    LeadIngested,
    LeadReplied,
    LeadResubscribed,
    LeadStateChanged,
    LeadStatusChanged,
    LeadSuppressed,
    LeadUnenrolled,
    campaign_stream,
    enrollment_stream,
    lead_stream,
)
from events.envelope import Envelope
from events.errors import ConcurrencyError
from events.store import NO_STREAM, EventFilter, EventStore

# Statuses that take a lead out of its cadence: it answered, or must not be contacted.
_LEAVES_CADENCE = frozenset({"replied", "qualified", "suppressed", "closed"})


class LeadView(msgspec.Struct, kw_only=True):
    """A lead as its stream says it is: what scheduling and send windows need."""

    lead_id: UUID
    account_id: UUID
    status: str = "new"
    lead_state: str = "cold"
    phone: str | None = None
    email: str | None = None
    city: str | None = None
    country: str | None = "US"
    longitude: float | None = None
    invalid_channels: frozenset[str] = frozenset()
    suppression_reason: str | None = None
    title: str | None = None
    name: str | None = None
    price: int | None = None
    source: str | None = None
    last_inbound: dict[str, datetime] = {}  # channel → when the lead last wrote to us on it

    def ineligible(self) -> str | None:
        """Why the spec's run-cadence would not schedule this lead; None when it would."""
        if self.status == "suppressed":
            return "suppressed"
        if self.status != "new":
            return f"status is {self.status!r}, not 'new'"
        if not self.phone:
            return "no phone"
        if self.lead_state == "dead":
            return "lead_state is 'dead'"
        return None


def fold_lead(events: list[Event]) -> LeadView | None:
    view: LeadView | None = None
    for event in events:
        match event:
            case LeadIngested() if view is None:
                view = LeadView(
                    lead_id=event.lead_id,
                    account_id=event.account_id,
                    phone=event.phone,
                    email=event.email,
                    city=event.city,
                    country=event.country,
                    longitude=event.longitude,
                    title=event.title,
                    name=event.name,
                    price=event.price,
                    source=event.source,
                )
            case LeadStatusChanged(status=status) if view is not None and view.status != "suppressed":
                view.status = status
            case LeadContacted() if view is not None and view.status == "new":
                view.status = "contacted"
            case LeadStateChanged(lead_state=state) if view is not None:
                view.lead_state = state
            case LeadSuppressed() if view is not None:
                view.status = "suppressed"
                view.suppression_reason = event.reason
            case LeadResubscribed() if view is not None and view.status == "suppressed":
                view.status = "replied"
                view.suppression_reason = None
            case LeadContactInvalid(channel=channel) if view is not None:
                view.invalid_channels = view.invalid_channels | {channel}
            case LeadReplied() if view is not None:
                if view.status in ("new", "contacted"):
                    view.status = "replied"
                at = event.received_at
                if at is not None and (event.channel not in view.last_inbound or view.last_inbound[event.channel] < at):
                    view.last_inbound = {**view.last_inbound, event.channel: at}
    return view


async def load_lead(store: EventStore, lead_id: UUID) -> LeadView | None:
    return fold_lead([e.event for e in await store.read_stream(lead_stream(lead_id))])


async def suppress_lead(store: EventStore, account_id: UUID, lead_id: UUID, reason: str) -> bool | None:
    """The operator's suppression of one of the account's leads (Command OS, bus commands).

    True when it is suppressed now, False when it was already; None when the account has no
    such lead (another account's is answered the same way).
    """
    lead = await load_lead(store, lead_id)
    if lead is None or lead.account_id != account_id:
        return None
    if lead.status == "suppressed":
        return False
    await store.append(lead_stream(lead_id), [LeadSuppressed(lead_id=lead_id, account_id=account_id, reason=reason)])
    return True


class CadenceRunner(Actor):
    """Puts each eligible new lead into its account's active outbound campaign, and takes it out
    when it replies, is suppressed, dies or leaves 'new' for good.

    A lead is in at most one exclusive campaign at a time (the first active one by
    campaign_key); campaigns that allow it (`allow_concurrent`) take it as well. Enrollment ids
    derive from the ingest event, so a replay or a second process enrolls nobody twice.
    """

    name = "cadence"
    # Many leads at once: handlers wait on the database, so more of them run side by side.
    consumer_settings = ConsumerSettings(concurrency=64, max_ack_pending=4096)
    handles: ClassVar[tuple[type[Event], ...]] = (
        LeadIngested,
        LeadStatusChanged,
        LeadStateChanged,
        LeadSuppressed,
        LeadReplied,
        CampaignCreated,
        CampaignActivated,
        CampaignPaused,
        CampaignStepsReplaced,
    )

    def __init__(self) -> None:
        self.campaigns: dict[UUID, CampaignState] = {}
        self._account_of: dict[UUID, UUID] = {}  # lead → account while its ingest is handled

    async def start(self, ctx: ActorContext) -> None:
        streams: dict[str, list[Event]] = {}
        async for batch in ctx.store.read_all(0, filter=EventFilter(category="campaign")):
            for env in batch:
                streams.setdefault(env.stream_id, []).append(env.event)
        self.campaigns = {}
        for events in streams.values():
            state = fold_campaign(events, len(events))
            if state is not None:
                self.campaigns[state.campaign_id] = state

    async def handle(self, event: Event, env: Envelope, reaction: Reaction) -> None:
        match event:
            case CampaignActivated():
                await self._refresh(reaction, event.campaign_id)
                await self._enroll_waiting(reaction, event.campaign_id)
            case CampaignCreated() | CampaignPaused() | CampaignStepsReplaced():
                await self._refresh(reaction, event.campaign_id)
            case LeadIngested():
                self._account_of[event.lead_id] = event.account_id
                try:
                    await self._enroll(reaction, event.lead_id)
                finally:
                    self._account_of.pop(event.lead_id, None)
            case LeadReplied():
                await self._leave(reaction, event.lead_id, event.account_id, "replied")
            case LeadSuppressed():
                await self._leave(reaction, event.lead_id, event.account_id, "suppressed")
            case LeadStateChanged(lead_state="dead"):
                await self._leave(reaction, event.lead_id, event.account_id, "lead_state dead")
            case LeadStatusChanged(status=status) if status in _LEAVES_CADENCE:
                await self._leave(reaction, event.lead_id, event.account_id, f"status {status}")

    async def _refresh(self, reaction: Reaction, campaign_id: UUID) -> None:
        envelopes = await reaction.ctx.store.read_stream(campaign_stream(campaign_id))
        state = fold_campaign([e.event for e in envelopes], len(envelopes))
        if state is not None:
            self.campaigns[campaign_id] = state

    def _active(self, account_id: UUID) -> list[CampaignState]:
        active = [c for c in self.campaigns.values() if c.account_id == account_id and c.is_active]
        exclusive = sorted((c for c in active if not c.allow_concurrent), key=lambda c: c.campaign_key)[:1]
        return exclusive + [c for c in active if c.allow_concurrent]

    async def _enroll(self, reaction: Reaction, lead_id: UUID) -> None:
        # The lead and its account's campaigns in one read. The log decides, not this actor's
        # copy: a pause handled on another slot a moment later must not let a lead into a
        # campaign that is already off.
        account = self._account_of.get(lead_id)
        candidates = [c.campaign_id for c in self.campaigns.values() if account is None or c.account_id == account]
        streams = await reaction.ctx.store.read_streams([lead_stream(lead_id), *map(campaign_stream, candidates)])
        lead = fold_lead([e.event for e in streams[lead_stream(lead_id)]])
        if lead is None:
            return
        if (why := lead.ineligible()) is not None:
            reaction.ctx.log.info("cadence_not_eligible", lead_id=str(lead_id), reason=why)
            return
        for campaign_id in candidates:
            envelopes = streams[campaign_stream(campaign_id)]
            state = fold_campaign([e.event for e in envelopes], len(envelopes))
            if state is not None:
                self.campaigns[campaign_id] = state
        campaigns = self._active(lead.account_id)
        if not campaigns:
            reaction.ctx.log.info("cadence_no_active_campaign", lead_id=str(lead_id), account_id=str(lead.account_id))
            return
        for campaign in campaigns:
            enrolled = LeadEnrolled(
                lead_id=lead_id,
                account_id=lead.account_id,
                campaign_id=campaign.campaign_id,
                enrolled_at=reaction.ctx.clock.now(),
            )
            try:
                await reaction.emit(
                    enrollment_stream(lead_id, campaign.campaign_id),
                    [enrolled],
                    expected_version=NO_STREAM,
                    key=f"enroll:{campaign.campaign_id}",
                )
            except ConcurrencyError:
                continue  # already in it

    async def _enroll_waiting(self, reaction: Reaction, campaign_id: UUID) -> None:
        """A campaign switched on takes the account's eligible leads that are in no campaign yet.

        The leads read model finds the candidates; each is checked against its own stream before
        it is enrolled (the read model may be a moment behind).
        """
        campaign = self.campaigns.get(campaign_id)
        if campaign is None or not campaign.is_active:
            return
        store = reaction.ctx.store
        pool = getattr(store, "pool", None)
        if pool is None:
            return  # no read models beside this store (the in-memory one): new leads still enroll
        try:
            rows = await pool.fetch(
                "select id from public.leads where account_id = $1 and status = 'new' and phone is not null "
                "and lead_state <> 'dead' order by created_at",
                campaign.account_id,
            )
        except asyncpg.UndefinedTableError as exc:  # the leads read model is not built yet
            reaction.ctx.log.warning("cadence_backfill_skipped", campaign_id=str(campaign_id), error=str(exc))
            return
        others = [c for c in self.campaigns.values() if c.account_id == campaign.account_id and c is not campaign]
        enrolled = 0
        for row in rows:
            lead = await load_lead(store, row["id"])
            if lead is None or lead.ineligible() is not None:
                continue
            if not campaign.allow_concurrent and await self._in_a_campaign(store, lead.lead_id, others):
                continue
            event = LeadEnrolled(
                lead_id=lead.lead_id,
                account_id=lead.account_id,
                campaign_id=campaign_id,
                enrolled_at=reaction.ctx.clock.now(),
            )
            try:
                await reaction.emit(
                    enrollment_stream(lead.lead_id, campaign_id),
                    [event],
                    expected_version=NO_STREAM,
                    key=f"enroll:{lead.lead_id}",
                )
                enrolled += 1
            except ConcurrencyError:
                continue
        reaction.ctx.log.info("cadence_backfill", campaign_id=str(campaign_id), enrolled=enrolled)

    async def _in_a_campaign(self, store: EventStore, lead_id: UUID, campaigns: list[CampaignState]) -> bool:
        for other in campaigns:
            if await store.stream_version(enrollment_stream(lead_id, other.campaign_id)) == 1:
                return True
        return False

    async def _leave(self, reaction: Reaction, lead_id: UUID, account_id: UUID, reason: str) -> None:
        for campaign in [c for c in self.campaigns.values() if c.account_id == account_id]:
            stream = enrollment_stream(lead_id, campaign.campaign_id)
            if await reaction.ctx.store.stream_version(stream) != 1:
                continue  # never enrolled, or already out
            left = LeadUnenrolled(
                lead_id=lead_id, account_id=account_id, campaign_id=campaign.campaign_id, reason=reason
            )
            try:
                await reaction.emit(stream, [left], expected_version=1, key=f"leave:{campaign.campaign_id}")
            except ConcurrencyError:
                continue
