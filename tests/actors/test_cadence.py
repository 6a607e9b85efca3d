"""Cadence runner and touch orchestrator together: enrollment, delays, send windows, email gating, stop on reply."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import pytest
from nats.aio.client import Client as NATS
from structlog.testing import capture_logs

from actors.cadence import CadenceRunner
from actors.campaigns import Campaigns, StepSpec
from actors.clock import FakeClock
from actors.orchestrator import TouchOrchestrator, touch_run_id
from actors.org import OrgSettings
from events.catalog import Event, LeadIngested, LeadReplied, LeadStateChanged, TouchRunScheduled, lead_stream
from events.errors import CommandRejected
from events.postgres import PostgresEventStore
from events.settings import Settings
from projections.leads import LeadsProjection
from tests.actors.support import events_of, relaying, start, until, wait_for_events
from tests.projections.helpers import caught_up, running

ACCOUNT = uuid.UUID("00000000-0000-4000-8000-0000000000a7")
NOON_UTC = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)  # 07:00 in Miami, 04:00 in Los Angeles


async def ingest(store: PostgresEventStore, city: str, phone: str | None, *, dead: bool = False) -> uuid.UUID:
    lead_id = uuid.uuid4()
    events: list[Event] = [
        LeadIngested(
            lead_id=lead_id, account_id=ACCOUNT, source="craigslist", external_id=str(lead_id.int % 10**9), city=city,
            phone=phone,
        )
    ]  # fmt: skip
    if dead:
        events.append(LeadStateChanged(lead_id=lead_id, account_id=ACCOUNT, lead_state="dead"))
    await store.append(lead_stream(lead_id), events)
    return lead_id


async def test_new_leads_get_their_campaigns_steps_in_their_send_window(
    pg_store: PostgresEventStore, nc: NATS, settings: Settings
) -> None:
    clock = FakeClock(NOON_UTC)
    campaigns = Campaigns(pg_store)
    autos = await campaigns.create(
        ACCOUNT,
        campaign_key="autos_outbound_miami",
        name="Autos Miami",
        steps=[
            StepSpec(step=1, channel="sms"),
            StepSpec(step=2, channel="voice", delay_minutes=60),
            StepSpec(step=3, channel="email", delay_minutes=120),
            StepSpec(step=4, channel="whatsapp", delay_minutes=24 * 60),
        ],
    )
    await campaigns.activate(ACCOUNT, autos.campaign_id)
    with capture_logs() as logs:
        async with relaying(pg_store, nc, settings) as tg:
            cadence = await start(tg, CadenceRunner(), pg_store, nc, settings, clock=clock)
            orchestrator = await start(tg, TouchOrchestrator(env={}), pg_store, nc, settings, clock=clock)
            miami = await ingest(pg_store, "miami", "+13055550100")
            la = await ingest(pg_store, "losangeles", "+13105550100")
            await ingest(pg_store, "miami", None)  # no phone: not eligible
            await ingest(pg_store, "miami", "+13055550101", dead=True)  # lead_state dead: not eligible
            scheduled = await wait_for_events(pg_store, 6, "TouchRunScheduled")
            # The lead replies: it leaves the cadence, and its waiting touches are skipped.
            await pg_store.append(lead_stream(miami), [LeadReplied(lead_id=miami, account_id=ACCOUNT, channel="sms")])
            skipped = await wait_for_events(pg_store, 3, "TouchRunSkipped")
            await cadence.stop()
            await orchestrator.stop()
    runs: dict[tuple[uuid.UUID, int], TouchRunScheduled] = {}
    for env in scheduled:
        assert isinstance(env.event, TouchRunScheduled)
        runs[(env.event.lead_id, env.event.step)] = env.event
    assert sorted(runs) == sorted((lead, n) for lead in (miami, la) for n in (1, 2, 4))  # no email step
    assert len(scheduled) == 6
    # Miami (UTC-5): 07:00 is before the window → 08:00; +60 min is 08:00 sharp; +1 day 07:00 → 08:00.
    assert runs[(miami, 1)].scheduled_for == datetime(2026, 11, 24, 13, 0, tzinfo=UTC)
    assert runs[(miami, 2)].scheduled_for == datetime(2026, 11, 24, 13, 0, tzinfo=UTC)
    assert runs[(miami, 4)].scheduled_for == datetime(2026, 11, 25, 13, 0, tzinfo=UTC)
    # Los Angeles (UTC-8): 04:00 and 05:00 wait for 08:00 there.
    assert runs[(la, 1)].scheduled_for == datetime(2026, 11, 24, 16, 0, tzinfo=UTC)
    assert runs[(la, 4)].scheduled_for == datetime(2026, 11, 25, 16, 0, tzinfo=UTC)
    assert runs[(miami, 1)].touch_run_id == touch_run_id(miami, autos.campaign_id, 1)
    markers = [e for e in logs if e["event"] == "ORCH_EMAIL_DISABLED_MISSING_ELASTIC_ENV"]
    assert [(m["campaign_id"], m["step"]) for m in markers] == [(str(autos.campaign_id), 3)]  # once, not per lead
    skipped_ids = {getattr(s.event, "touch_run_id") for s in skipped}  # noqa: B009
    assert skipped_ids == {touch_run_id(miami, autos.campaign_id, n) for n in (1, 2, 4)}
    enrolled = await events_of(pg_store, "LeadEnrolled")
    assert sorted(getattr(e.event, "lead_id") for e in enrolled) == sorted([miami, la])  # noqa: B009
    left = await events_of(pg_store, "LeadUnenrolled")
    assert [(getattr(e.event, "lead_id"), getattr(e.event, "reason")) for e in left] == [(miami, "replied")]  # noqa: B009


async def test_two_processes_and_a_full_replay_schedule_nothing_twice(
    pg_store: PostgresEventStore, nc: NATS, settings: Settings
) -> None:
    clock = FakeClock(NOON_UTC)
    campaigns = Campaigns(pg_store)
    steps = [StepSpec(step=1, channel="sms"), StepSpec(step=2, channel="voice", delay_minutes=30)]
    autos = await campaigns.create(ACCOUNT, campaign_key="autos_outbound_miami", name="Autos", steps=steps)
    await campaigns.activate(ACCOUNT, autos.campaign_id)
    async with relaying(pg_store, nc, settings) as tg:
        runners = [
            await start(tg, actor, pg_store, nc, settings, clock=clock)
            for actor in (CadenceRunner(), CadenceRunner(), TouchOrchestrator(env={}), TouchOrchestrator(env={}))
        ]
        for _ in range(20):
            await ingest(pg_store, "miami", "+13055550100")
        await wait_for_events(pg_store, 40, "TouchRunScheduled")
        for runner in runners:
            await runner.stop()
        before = await pg_store.head_position()
        # Replay: new consumers read the whole stream again, and decide the same things again.
        js = nc.jetstream()
        for name in ("cadence", "touch_orchestrator"):
            await js.delete_consumer(settings.stream_name, name)
        cadence = await start(tg, CadenceRunner(), pg_store, nc, settings, clock=clock)
        orchestrator = await start(tg, TouchOrchestrator(env={}), pg_store, nc, settings, clock=clock)
        await until(cadence, lambda s: s.handled == 22)  # 20 leads ingested, the campaign's 2 events
        await until(orchestrator, lambda s: s.handled == 20)  # 20 enrollments
        await cadence.stop()
        await orchestrator.stop()
    assert await pg_store.head_position() == before
    assert len(await events_of(pg_store, "LeadEnrolled")) == 20
    assert len(await events_of(pg_store, "TouchRunScheduled")) == 40


async def test_a_daily_cap_moves_the_extra_touches_to_the_next_day(
    pg_store: PostgresEventStore, nc: NATS, settings: Settings
) -> None:
    clock = FakeClock(datetime(2026, 11, 24, 15, 0, tzinfo=UTC))  # 10:00 in Miami: inside the window
    await OrgSettings(pg_store).set_daily_caps(ACCOUNT, {"sms": 2})
    campaigns = Campaigns(pg_store)
    autos = await campaigns.create(
        ACCOUNT, campaign_key="autos_outbound_miami", name="Autos", steps=[StepSpec(step=1, channel="sms")]
    )
    await campaigns.activate(ACCOUNT, autos.campaign_id)
    async with relaying(pg_store, nc, settings) as tg:
        runners = [
            await start(tg, actor, pg_store, nc, settings, clock=clock)
            for actor in (CadenceRunner(), TouchOrchestrator(env={}), TouchOrchestrator(env={}))
        ]
        for _ in range(5):
            await ingest(pg_store, "miami", "+13055550100")
        scheduled = await wait_for_events(pg_store, 5, "TouchRunScheduled")
        for runner in runners:
            await runner.stop()
    days = sorted(getattr(e.event, "scheduled_for") for e in scheduled)  # noqa: B009
    today, tomorrow, after = (
        datetime(2026, 11, 24, 15, 0, tzinfo=UTC),
        datetime(2026, 11, 25, 13, 0, tzinfo=UTC),  # 08:00 in Miami
        datetime(2026, 11, 26, 13, 0, tzinfo=UTC),
    )
    assert days == [today, today, tomorrow, tomorrow, after]  # two a day, never more, with two orchestrators
    slots = await events_of(pg_store, "DailyCapSlotTaken")
    assert len(slots) == 5


async def test_caps_are_checked(pg_store: PostgresEventStore) -> None:
    org = OrgSettings(pg_store)
    with pytest.raises(CommandRejected, match="unknown channel 'fax'"):
        await org.set_daily_caps(ACCOUNT, {"fax": 10})
    with pytest.raises(CommandRejected, match="must be 1 to 100000"):
        await org.set_daily_caps(ACCOUNT, {"sms": 0})
    assert (await org.set_daily_caps(ACCOUNT, {"voice": 50, "sms": 200})).daily_caps == {"sms": 200, "voice": 50}


async def test_a_campaign_switched_on_takes_the_leads_that_were_waiting(
    pg_store: PostgresEventStore, nc: NATS, settings: Settings
) -> None:
    clock = FakeClock(datetime(2026, 11, 24, 15, 0, tzinfo=UTC))
    campaigns = Campaigns(pg_store)
    first = await campaigns.create(
        ACCOUNT, campaign_key="a_first", name="First", steps=[StepSpec(step=1, channel="sms")]
    )
    later = await campaigns.create(
        ACCOUNT, campaign_key="b_later", name="Later", steps=[StepSpec(step=1, channel="sms")]
    )
    await campaigns.activate(ACCOUNT, first.campaign_id)
    async with relaying(pg_store, nc, settings) as tg, running(pg_store, [LeadsProjection()]) as workers:
        cadence = await start(tg, CadenceRunner(), pg_store, nc, settings, clock=clock)
        in_first = await ingest(pg_store, "miami", "+13055550100")  # enrolled in the first campaign at once
        await wait_for_events(pg_store, 1, "LeadEnrolled")
        await campaigns.pause(ACCOUNT, first.campaign_id)
        waiting = [await ingest(pg_store, "miami", "+13055550101") for _ in range(3)]  # nothing active: they wait
        await ingest(pg_store, "miami", None)  # no phone: never
        await until(cadence, lambda s: s.handled == 9)  # 3 campaign events, 1 pause, 5 ingested
        await caught_up(pg_store, workers)
        await campaigns.activate(ACCOUNT, later.campaign_id)
        enrolled = await wait_for_events(pg_store, 4, "LeadEnrolled")
        await cadence.stop()
    by_campaign = {(getattr(e.event, "lead_id"), getattr(e.event, "campaign_id")) for e in enrolled}  # noqa: B009
    assert by_campaign == {(in_first, first.campaign_id)} | {(lead, later.campaign_id) for lead in waiting}
