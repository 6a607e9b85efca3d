"""autos.activate / autos.deactivate: the full funnel for a city, switched on or off in one step.

The spec's contract: the outbound campaign is found only by `campaign_key = 'autos_outbound_<city>'`
(0 matches → `needs_setup`, more than 1 → `needs_confirmation`); activation turns LeadGen routing on
only when it is fully configured, enqueues a Craigslist discover for the city and activates the
campaign, all in one atomic append, or does nothing at all.
"""

from __future__ import annotations

import uuid
from typing import Literal
from uuid import UUID

import msgspec

from actors.campaigns import Campaigns, CampaignState
from actors.crawl import CrawlTasks, normalise_city
from actors.org import OrgSettings, check_routing
from events.catalog import (
    CampaignActivated,
    CampaignPaused,
    CrawlTaskCancelled,
    CrawlTaskEnqueued,
    LeadgenRoutingSet,
    campaign_stream,
    crawl_task_stream,
    org_stream,
)
from events.store import NO_STREAM, EventStore, StreamAppend

Outcome = Literal["activated", "deactivated", "needs_setup", "needs_confirmation"]


class AutosResult(msgspec.Struct, kw_only=True):
    outcome: Outcome
    city: str
    message: str
    campaign_id: UUID | None = None
    discover_task_id: UUID | None = None
    cancelled_tasks: list[UUID] = []
    candidates: list[UUID] = []


def campaign_key(city: str) -> str:
    return f"autos_outbound_{city}"


class Autos:
    def __init__(self, store: EventStore) -> None:
        self.store = store
        self.campaigns = Campaigns(store)
        self.org = OrgSettings(store)

    async def _the_campaign(self, account_id: UUID, city: str) -> tuple[CampaignState | None, AutosResult | None]:
        key = campaign_key(city)
        matches = [c for c in await self.campaigns.all(account_id) if c.campaign_key == key]
        if not matches:
            return None, AutosResult(
                outcome="needs_setup",
                city=city,
                message=f"no outbound campaign with campaign_key {key!r}: create it first",
            )
        if len(matches) > 1:
            return None, AutosResult(
                outcome="needs_confirmation",
                city=city,
                message=f"{len(matches)} campaigns have campaign_key {key!r}: say which one",
                candidates=[c.campaign_id for c in matches],
            )
        return matches[0], None

    async def activate(self, account_id: UUID, city: str) -> AutosResult:
        city = normalise_city("autos.activate", city)
        org = await self.org.get(account_id)
        routing = org.leadgen_routing
        if routing is None or not (routing.dealer_address or "").strip():
            return AutosResult(
                outcome="needs_setup",
                city=city,
                message="LeadGen routing is not configured (dealer address, radius): set it in settings first",
            )
        campaign, refusal = await self._the_campaign(account_id, city)
        if refusal is not None:
            return refusal
        assert campaign is not None
        appends: list[StreamAppend] = []
        if not routing.active:
            on = check_routing("autos.activate", msgspec.structs.replace(routing, active=True))
            appends.append(
                StreamAppend(
                    stream_id=org_stream(account_id),
                    events=[LeadgenRoutingSet(account_id=account_id, leadgen_routing=on)],
                    expected_version=org.version,
                )
            )
        task_id = uuid.uuid4()
        appends.append(
            StreamAppend(
                stream_id=crawl_task_stream(task_id),
                events=[
                    CrawlTaskEnqueued(
                        task_id=task_id,
                        account_id=account_id,
                        task_type="discover",
                        city=city,
                        enqueued_by="autos.activate",
                    )
                ],
                expected_version=NO_STREAM,
            )
        )
        if not campaign.is_active:
            appends.append(
                StreamAppend(
                    stream_id=campaign_stream(campaign.campaign_id),
                    events=[
                        CampaignActivated(
                            campaign_id=campaign.campaign_id, account_id=account_id, reason="autos.activate"
                        )
                    ],
                    expected_version=campaign.version,
                )
            )
        await self.store.append_many(appends, correlation_id=uuid.uuid4())
        return AutosResult(
            outcome="activated",
            city=city,
            message=f"autos {city}: routing on, Craigslist discover queued, {campaign.campaign_key} active",
            campaign_id=campaign.campaign_id,
            discover_task_id=task_id,
        )

    async def deactivate(self, account_id: UUID, city: str) -> AutosResult:
        """Routing off, the city's queued Craigslist tasks cancelled, the campaign paused.

        Stopping is fail-safe: routing and tasks stop even when the campaign is missing or
        ambiguous, and the result says so.
        """
        city = normalise_city("autos.deactivate", city)
        org = await self.org.get(account_id)
        appends: list[StreamAppend] = []
        if org.leadgen_routing is not None and org.leadgen_routing.active:
            off = msgspec.structs.replace(org.leadgen_routing, active=False)
            appends.append(
                StreamAppend(
                    stream_id=org_stream(account_id),
                    events=[LeadgenRoutingSet(account_id=account_id, leadgen_routing=off)],
                    expected_version=org.version,
                )
            )
        cancelled = []
        for task in await CrawlTasks(self.store).queued(account_id, city):
            cancelled.append(task.task_id)
            appends.append(
                StreamAppend(
                    stream_id=task.stream_id,
                    events=[CrawlTaskCancelled(task_id=task.task_id, account_id=account_id, reason="autos.deactivate")],
                    expected_version=task.version,
                )
            )
        campaign, refusal = await self._the_campaign(account_id, city)
        if campaign is not None and campaign.is_active:
            appends.append(
                StreamAppend(
                    stream_id=campaign_stream(campaign.campaign_id),
                    events=[
                        CampaignPaused(
                            campaign_id=campaign.campaign_id, account_id=account_id, reason="autos.deactivate"
                        )
                    ],
                    expected_version=campaign.version,
                )
            )
        if appends:
            await self.store.append_many(appends, correlation_id=uuid.uuid4())
        if refusal is not None:
            refusal.message = f"routing off and {len(cancelled)} queued task(s) cancelled; but {refusal.message}"
            refusal.cancelled_tasks = cancelled
            return refusal
        assert campaign is not None
        return AutosResult(
            outcome="deactivated",
            city=city,
            message=(
                f"autos {city}: routing off, {len(cancelled)} queued task(s) cancelled, {campaign.campaign_key} paused"
            ),
            campaign_id=campaign.campaign_id,
            cancelled_tasks=cancelled,
        )
