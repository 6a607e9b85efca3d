"""The touch orchestrator (the spec's touch-orchestrator-v7): an enrollment's steps become touch runs."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from datetime import datetime, time, timedelta
from typing import ClassVar, Final
from uuid import UUID
from zoneinfo import ZoneInfo

from actors.cadence import fold_lead
from actors.campaigns import fold_campaign
from actors.org import fold_org
from actors.runtime import Actor, ConsumerSettings, Reaction
from actors.send_window import lead_zone, next_allowed
from events.catalog import (
    DailyCapSlotTaken,
    Event,
    LeadEnrolled,
    LeadUnenrolled,
    TouchRunScheduled,
    TouchRunSkipped,
    campaign_stream,
    daily_cap_stream,
    lead_stream,
    org_stream,
    touch_stream,
)
from events.envelope import Envelope
from events.errors import ConcurrencyError
from events.store import NO_STREAM
from gateways.elastic import elastic_env

VERSION: Final = "touch-orchestrator-v7"
_TOUCH_RUNS: Final = uuid.UUID("6f0f4d1e-3c53-4f0e-9a51-0d1b7e3c2a10")


def touch_run_id(lead_id: UUID, campaign_id: UUID, step: int) -> UUID:
    """One touch run per (lead, campaign, step), ever: the id says so, so nothing schedules it twice."""
    return uuid.uuid5(_TOUCH_RUNS, f"{lead_id}:{campaign_id}:{step}")


class TouchOrchestrator(Actor):
    """Schedules a touch run per campaign step when a lead is enrolled, and skips the ones still
    waiting when it leaves.

    A step's delay counts from the enrollment; calls and texts then wait for the send window
    where the lead is (08:00 to 21:00). Email steps are skipped while email is not configured
    (EMAIL_READY false), logged once per (campaign, step) as the spec's
    `ORCH_EMAIL_DISABLED_MISSING_ELASTIC_ENV`.
    """

    name = "touch_orchestrator"
    # Many leads at once: handlers wait on the database, so more of them run side by side.
    consumer_settings = ConsumerSettings(concurrency=32, max_ack_pending=4096)
    handles: ClassVar[tuple[type[Event], ...]] = (LeadEnrolled, LeadUnenrolled)

    def __init__(self, env: Mapping[str, str] | None = None) -> None:
        self.email_ready = elastic_env(env).email_ready
        self._reported: set[tuple[UUID, int]] = set()

    async def handle(self, event: Event, env: Envelope, reaction: Reaction) -> None:
        match event:
            case LeadEnrolled():
                await self._schedule(reaction, event)
            case LeadUnenrolled():
                await self._skip_waiting(reaction, event)

    async def _schedule(self, reaction: Reaction, enrolled: LeadEnrolled) -> None:
        # The campaign, the lead and the account's settings in one read.
        wanted = (campaign_stream(enrolled.campaign_id), lead_stream(enrolled.lead_id), org_stream(enrolled.account_id))
        streams = await reaction.ctx.store.read_streams(wanted)
        envelopes = streams[wanted[0]]
        campaign = fold_campaign([e.event for e in envelopes], len(envelopes))
        lead = fold_lead([e.event for e in streams[wanted[1]]])
        if campaign is None or lead is None:
            return
        zone = lead_zone(lead.city, lead.country, lead.longitude)
        caps = fold_org(enrolled.account_id, [e.event for e in streams[wanted[2]]]).daily_caps
        for step in campaign.steps:
            if step.channel == "email" and not self.email_ready:
                if (campaign.campaign_id, step.step) not in self._reported:
                    self._reported.add((campaign.campaign_id, step.step))
                    reaction.ctx.log.warning(
                        "ORCH_EMAIL_DISABLED_MISSING_ELASTIC_ENV",
                        campaign_id=str(campaign.campaign_id),
                        step=step.step,
                        version=VERSION,
                    )
                continue
            due = next_allowed(enrolled.enrolled_at + timedelta(minutes=step.delay_minutes), step.channel, zone)
            touch_id = touch_run_id(enrolled.lead_id, enrolled.campaign_id, step.step)
            if (cap := caps.get(step.channel)) is not None:
                due = await self._take_slot(reaction, enrolled.account_id, step.channel, cap, due, zone, touch_id)
            scheduled = TouchRunScheduled(
                touch_run_id=touch_id,
                account_id=enrolled.account_id,
                lead_id=enrolled.lead_id,
                campaign_id=enrolled.campaign_id,
                step=step.step,
                channel=step.channel,
                scheduled_for=due,
                scheduled_by=VERSION,
            )
            try:
                await reaction.emit(
                    touch_stream(touch_id), [scheduled], expected_version=NO_STREAM, key=f"step:{step.step}"
                )
            except ConcurrencyError:
                continue  # this (lead, campaign, step) is scheduled already

    async def _take_slot(
        self,
        reaction: Reaction,
        account_id: UUID,
        channel: str,
        cap: int,
        due: datetime,
        zone: ZoneInfo,
        touch_id: UUID,
    ) -> datetime:
        """The first day from `due` with a free slot under the account's cap; the touch takes it.

        The day's slots are a stream whose length is the count, appended at an expected version:
        processes scheduling at once never give out more than the cap.
        """
        store = reaction.ctx.store
        for _ in range(400):
            day = due.astimezone(zone).date()
            stream = daily_cap_stream(account_id, channel, day)
            taken = await store.read_stream(stream)
            if any(getattr(e.event, "touch_run_id", None) == touch_id for e in taken):
                return due  # this touch has its slot already (a redelivery)
            if len(taken) < cap:
                slot = DailyCapSlotTaken(account_id=account_id, channel=channel, day=day, touch_run_id=touch_id)
                try:
                    await reaction.emit(stream, [slot], expected_version=len(taken), key=f"cap:{day.isoformat()}")
                except ConcurrencyError:
                    continue  # another touch took one meanwhile: count again
                return due
            due = next_allowed(datetime.combine(day + timedelta(days=1), time(0, 0), tzinfo=zone), channel, zone)
        raise RuntimeError(f"no day with a free {channel} slot in 400 days (cap {cap})")

    async def _skip_waiting(self, reaction: Reaction, left: LeadUnenrolled) -> None:
        envelopes = await reaction.ctx.store.read_stream(campaign_stream(left.campaign_id))
        campaign = fold_campaign([e.event for e in envelopes], len(envelopes))
        if campaign is None:
            return
        for step in campaign.steps:
            touch_id = touch_run_id(left.lead_id, left.campaign_id, step.step)
            skipped = TouchRunSkipped(
                touch_run_id=touch_id, account_id=left.account_id, reason=f"lead left: {left.reason}"
            )
            try:
                # Version 1: scheduled and nothing since. A touch already claimed is the dispatch
                # engine's to settle (it checks the lead again before sending).
                await reaction.emit(touch_stream(touch_id), [skipped], expected_version=1, key=f"skip:{step.step}")
            except ConcurrencyError:
                continue
