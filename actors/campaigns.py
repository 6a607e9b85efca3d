"""Campaign commands: create, activate, pause and pause-all, decided from the log and appended."""

from __future__ import annotations

import re
import uuid
from collections.abc import Sequence
from typing import Final, cast, get_args
from uuid import UUID

import msgspec

from events.catalog import (
    CampaignActivated,
    CampaignCreated,
    CampaignPaused,
    CampaignStep,
    CampaignStepsReplaced,
    Channel,
    Event,
    campaign_stream,
)
from events.errors import CommandRejected, NotFound
from events.store import NO_STREAM, EventFilter, EventStore, NewEvent, StreamAppend

CHANNELS: Final = frozenset(get_args(Channel))
_KEY: Final = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,79}$")


class StepSpec(msgspec.Struct, frozen=True, kw_only=True):
    """A step as a command gives it, checked before it becomes a CampaignStep."""

    step: int
    channel: str
    delay_minutes: int = 0
    template: str | None = None


class CampaignState(msgspec.Struct, kw_only=True):
    """One campaign as its stream says it is."""

    campaign_id: UUID
    account_id: UUID
    campaign_key: str
    name: str
    is_active: bool
    steps: list[CampaignStep]
    version: int
    allow_concurrent: bool = False


def fold_campaign(events: Sequence[Event], version: int) -> CampaignState | None:
    state: CampaignState | None = None
    for event in events:
        match event:
            case CampaignCreated():
                state = CampaignState(
                    campaign_id=event.campaign_id,
                    account_id=event.account_id,
                    campaign_key=event.campaign_key,
                    name=event.name,
                    is_active=False,
                    steps=list(event.steps),
                    version=0,
                    allow_concurrent=event.allow_concurrent,
                )
            case CampaignActivated() if state is not None:
                state.is_active = True
            case CampaignPaused() if state is not None:
                state.is_active = False
            case CampaignStepsReplaced(steps=steps) if state is not None:
                state.steps = list(steps)
    if state is not None:
        state.version = version
    return state


def check_steps(command: str, steps: Sequence[StepSpec]) -> list[CampaignStep]:
    if not steps:
        raise CommandRejected(command, "a campaign needs at least one step", field="steps")
    checked = []
    for i, spec in enumerate(steps):
        where = f"steps[{i}]"
        if spec.channel not in CHANNELS:
            known = ", ".join(sorted(CHANNELS))
            raise CommandRejected(
                command, f"unknown channel {spec.channel!r}; use one of {known}", field=f"{where}.channel"
            )
        if spec.step < 1:
            raise CommandRejected(command, f"step numbers start at 1, got {spec.step}", field=f"{where}.step")
        if not 0 <= spec.delay_minutes <= 60 * 24 * 90:
            message = f"delay must be 0 to 129600 minutes (90 days), got {spec.delay_minutes}"
            raise CommandRejected(command, message, field=f"{where}.delay_minutes")
        channel = cast(Channel, spec.channel)
        checked.append(
            CampaignStep(step=spec.step, channel=channel, delay_minutes=spec.delay_minutes, template=spec.template)
        )
    numbers = [s.step for s in checked]
    if len(set(numbers)) != len(numbers):
        raise CommandRejected(command, f"step numbers repeat: {numbers}", field="steps")
    return sorted(checked, key=lambda s: s.step)


class Campaigns:
    """The campaign commands of one store. Each decides from the log and appends, or rejects."""

    def __init__(self, store: EventStore) -> None:
        self.store = store

    async def get(self, account_id: UUID, campaign_id: UUID, *, command: str = "campaign") -> CampaignState:
        envelopes = await self.store.read_stream(campaign_stream(campaign_id))
        state = fold_campaign([e.event for e in envelopes], len(envelopes))
        # Another account's campaign is answered exactly like a missing one: nothing leaks.
        if state is None or state.account_id != account_id:
            raise NotFound(command, f"no campaign {campaign_id} in this account", field="campaign_id")
        return state

    async def all(self, account_id: UUID) -> list[CampaignState]:
        """Every campaign of the account, from the log (the truth, never behind)."""
        by_stream: dict[str, list[Event]] = {}
        wanted = EventFilter(account_id=account_id, category="campaign")
        async for batch in self.store.read_all(0, filter=wanted):
            for env in batch:
                by_stream.setdefault(env.stream_id, []).append(env.event)
        states = [fold_campaign(events, len(events)) for events in by_stream.values()]
        return sorted((s for s in states if s is not None), key=lambda s: (s.campaign_key, str(s.campaign_id)))

    async def create(
        self,
        account_id: UUID,
        *,
        campaign_key: str,
        name: str,
        steps: Sequence[StepSpec],
        allow_concurrent: bool = False,
        campaign_id: UUID | None = None,
    ) -> CampaignState:
        command = "campaign.create"
        if not _KEY.match(campaign_key):
            message = "use lower-case letters, digits and _.- (up to 80), e.g. autos_outbound_miami"
            raise CommandRejected(command, message, field="campaign_key")
        if not name.strip():
            raise CommandRejected(command, "a campaign needs a name", field="name")
        checked = check_steps(command, steps)
        campaign_id = campaign_id or uuid.uuid4()
        created = CampaignCreated(
            campaign_id=campaign_id,
            account_id=account_id,
            campaign_key=campaign_key,
            name=name.strip(),
            steps=checked,
            allow_concurrent=allow_concurrent,
        )
        await self.store.append(campaign_stream(campaign_id), [created], expected_version=NO_STREAM)
        return CampaignState(
            campaign_id=campaign_id,
            account_id=account_id,
            campaign_key=campaign_key,
            name=created.name,
            is_active=False,
            steps=checked,
            version=1,
            allow_concurrent=allow_concurrent,
        )

    async def activate(self, account_id: UUID, campaign_id: UUID, *, reason: str | None = None) -> bool:
        """Switch a campaign on; False when it already was (nothing appended)."""
        state = await self.get(account_id, campaign_id, command="campaign.activate")
        if state.is_active:
            return False
        event = CampaignActivated(campaign_id=campaign_id, account_id=account_id, reason=reason)
        await self.store.append(campaign_stream(campaign_id), [event], expected_version=state.version)
        return True

    async def pause(self, account_id: UUID, campaign_id: UUID, *, reason: str | None = None) -> bool:
        """Switch a campaign off; False when it already was (nothing appended)."""
        state = await self.get(account_id, campaign_id, command="campaign.pause")
        if not state.is_active:
            return False
        event = CampaignPaused(campaign_id=campaign_id, account_id=account_id, reason=reason)
        await self.store.append(campaign_stream(campaign_id), [event], expected_version=state.version)
        return True

    async def pause_all(self, account_id: UUID, *, reason: str = "pause all running") -> list[UUID]:
        """Pause every running campaign in one atomic append: one event each, one correlation id."""
        running = [s for s in await self.all(account_id) if s.is_active]
        if not running:
            return []
        correlation = uuid.uuid4()
        await self.store.append_many(
            [
                StreamAppend(
                    stream_id=campaign_stream(s.campaign_id),
                    events=[
                        NewEvent(event=CampaignPaused(campaign_id=s.campaign_id, account_id=account_id, reason=reason))
                    ],
                    expected_version=s.version,
                )
                for s in running
            ],
            correlation_id=correlation,
        )
        return [s.campaign_id for s in running]

    async def replace_steps(self, account_id: UUID, campaign_id: UUID, steps: Sequence[StepSpec]) -> None:
        state = await self.get(account_id, campaign_id, command="campaign.steps")
        checked = check_steps("campaign.steps", steps)
        event = CampaignStepsReplaced(campaign_id=campaign_id, account_id=account_id, steps=checked)
        await self.store.append(campaign_stream(campaign_id), [event], expected_version=state.version)
