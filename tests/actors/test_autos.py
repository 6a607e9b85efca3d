"""autos.activate / autos.deactivate: the campaign found only by campaign_key, all or nothing."""

from __future__ import annotations

import uuid

import pytest

from actors.autos import Autos
from actors.campaigns import Campaigns, StepSpec
from actors.org import OrgSettings
from events.catalog import LeadgenRouting
from events.errors import CommandRejected
from events.postgres import PostgresEventStore
from events.store import EventFilter

ACCOUNT = uuid.UUID("00000000-0000-4000-8000-0000000000a9")
STEPS = [StepSpec(step=1, channel="sms")]


async def routed(store: PostgresEventStore, *, active: bool = False) -> None:
    org = OrgSettings(store)
    await org.update(ACCOUNT, business_name="Miami Motors", contact_email="sales@miamimotors.com")
    await org.set_routing(ACCOUNT, LeadgenRouting(dealer_address="1 Biscayne Blvd", radius_miles=20, active=active))


async def types_in_log(store: PostgresEventStore) -> list[str]:
    return [e.type async for batch in store.read_all(0) for e in batch]


async def test_activate_switches_the_whole_funnel_on_in_one_append(pg_store: PostgresEventStore) -> None:
    await routed(pg_store)
    campaign = await Campaigns(pg_store).create(ACCOUNT, campaign_key="autos_outbound_miami", name="Autos", steps=STEPS)
    await Campaigns(pg_store).create(ACCOUNT, campaign_key="autos_outbound_tampa", name="Tampa", steps=STEPS)
    result = await Autos(pg_store).activate(ACCOUNT, "Miami")
    assert result.outcome == "activated" and result.campaign_id == campaign.campaign_id
    assert (await OrgSettings(pg_store).get(ACCOUNT)).routing_active
    states = {c.campaign_key: c.is_active for c in await Campaigns(pg_store).all(ACCOUNT)}
    assert states == {"autos_outbound_miami": True, "autos_outbound_tampa": False}
    appended = [e async for batch in pg_store.read_all(0) for e in batch][-3:]
    assert [e.type for e in appended] == ["LeadgenRoutingSet", "CrawlTaskEnqueued", "CampaignActivated"]
    assert len({e.correlation_id for e in appended}) == 1
    assert getattr(appended[1].event, "city") == "miami" and getattr(appended[1].event, "task_type") == "discover"  # noqa: B009

    discover = result.discover_task_id
    result = await Autos(pg_store).deactivate(ACCOUNT, "miami")
    assert result.outcome == "deactivated" and result.cancelled_tasks == [discover]
    assert not (await OrgSettings(pg_store).get(ACCOUNT)).routing_active
    assert not any(c.is_active for c in await Campaigns(pg_store).all(ACCOUNT))
    cancelled = [
        e
        async for batch in pg_store.read_all(0, filter=EventFilter(types=frozenset({"CrawlTaskCancelled"})))
        for e in batch
    ]
    assert len(cancelled) == 1


async def test_no_campaign_is_needs_setup_and_changes_nothing(pg_store: PostgresEventStore) -> None:
    await routed(pg_store)
    await Campaigns(pg_store).create(ACCOUNT, campaign_key="autos_miami", name="Not the key", steps=STEPS)
    before = await types_in_log(pg_store)
    result = await Autos(pg_store).activate(ACCOUNT, "miami")
    assert result.outcome == "needs_setup" and "autos_outbound_miami" in result.message
    assert await types_in_log(pg_store) == before


async def test_two_campaigns_with_the_key_need_confirmation(pg_store: PostgresEventStore) -> None:
    await routed(pg_store)
    ids = [
        (
            await Campaigns(pg_store).create(ACCOUNT, campaign_key="autos_outbound_miami", name=n, steps=STEPS)
        ).campaign_id
        for n in ("A", "B")
    ]
    before = await types_in_log(pg_store)
    result = await Autos(pg_store).activate(ACCOUNT, "miami")
    assert result.outcome == "needs_confirmation" and sorted(result.candidates) == sorted(ids)
    assert await types_in_log(pg_store) == before


async def test_routing_must_be_configured_first(pg_store: PostgresEventStore) -> None:
    await Campaigns(pg_store).create(ACCOUNT, campaign_key="autos_outbound_miami", name="Autos", steps=STEPS)
    before = await types_in_log(pg_store)
    result = await Autos(pg_store).activate(ACCOUNT, "miami")
    assert result.outcome == "needs_setup" and "routing is not configured" in result.message
    assert await types_in_log(pg_store) == before
    with pytest.raises(CommandRejected, match="not a city name"):
        await Autos(pg_store).activate(ACCOUNT, "miami; drop table")
