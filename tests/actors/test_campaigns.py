"""Campaign commands on the real log: checked before anything is appended, decided from the log."""

from __future__ import annotations

import uuid

import pytest

from actors.campaigns import Campaigns, StepSpec
from events.catalog import campaign_stream
from events.errors import CommandRejected, NotFound
from events.postgres import PostgresEventStore
from events.store import EventFilter
from projections.campaigns import CampaignsProjection
from projections.touch_runs import TouchRunsProjection
from tests.projections.helpers import caught_up, running

ACCOUNT = uuid.UUID("00000000-0000-4000-8000-0000000000e1")
OTHER = uuid.UUID("00000000-0000-4000-8000-0000000000e2")
THREE_STEPS = [
    StepSpec(step=1, channel="sms"),
    StepSpec(step=2, channel="voice", delay_minutes=60),
    StepSpec(step=3, channel="whatsapp", delay_minutes=24 * 60, template="follow_up_v1"),
]


async def test_create_activate_pause_and_the_read_models(pg_store: PostgresEventStore) -> None:
    campaigns = Campaigns(pg_store)
    created = await campaigns.create(
        ACCOUNT, campaign_key="autos_outbound_miami", name="Autos Miami", steps=THREE_STEPS
    )
    assert created.is_active is False and [s.step for s in created.steps] == [1, 2, 3]
    assert await campaigns.activate(ACCOUNT, created.campaign_id) is True
    assert await campaigns.activate(ACCOUNT, created.campaign_id) is False  # already on: nothing appended
    assert await pg_store.stream_version(campaign_stream(created.campaign_id)) == 2
    async with running(pg_store, [CampaignsProjection(), TouchRunsProjection()]) as workers:
        await caught_up(pg_store, workers)
        row = await pg_store.pool.fetchrow(
            "select campaign_key, is_active, status from public.campaigns where id = $1", created.campaign_id
        )
        assert row is not None and tuple(row) == ("autos_outbound_miami", True, "active")
        steps = await pg_store.pool.fetch(
            "select step, channel, delay_minutes, template from public.campaign_steps "
            "where campaign_id = $1 order by 1",
            created.campaign_id,
        )
        assert [tuple(s) for s in steps] == [
            (1, "sms", 0, None),
            (2, "voice", 60, None),
            (3, "whatsapp", 1440, "follow_up_v1"),
        ]
        await campaigns.replace_steps(ACCOUNT, created.campaign_id, [StepSpec(step=1, channel="email")])
        assert await campaigns.pause(ACCOUNT, created.campaign_id, reason="operator") is True
        await caught_up(pg_store, workers)
        status = await pg_store.pool.fetchrow(
            "select is_active, status, last_touch_run_at, touch_runs_24h from public.v_campaign_runtime_status_v1 "
            "where campaign_id = $1",
            created.campaign_id,
        )
        assert status is not None and tuple(status) == (False, "paused", None, 0)
        assert (
            await pg_store.pool.fetchval(
                "select count(*) from public.campaign_steps where campaign_id = $1", created.campaign_id
            )
            == 1
        )


async def test_pause_all_pauses_every_running_campaign_in_one_correlated_append(pg_store: PostgresEventStore) -> None:
    campaigns = Campaigns(pg_store)
    ids = []
    for i in range(4):
        c = await campaigns.create(ACCOUNT, campaign_key=f"c{i}", name=f"C{i}", steps=THREE_STEPS[:1])
        ids.append(c.campaign_id)
        if i != 3:
            await campaigns.activate(ACCOUNT, c.campaign_id)
    theirs = await campaigns.create(OTHER, campaign_key="c0", name="Theirs", steps=THREE_STEPS[:1])
    await campaigns.activate(OTHER, theirs.campaign_id)
    paused = await campaigns.pause_all(ACCOUNT)
    assert sorted(paused) == sorted(ids[:3])
    events = [
        e
        async for batch in pg_store.read_all(0, filter=EventFilter(types=frozenset({"CampaignPaused"})))
        for e in batch
    ]
    assert len(events) == 3 and len({e.correlation_id for e in events}) == 1
    assert {s.campaign_id for s in await campaigns.all(OTHER) if s.is_active} == {theirs.campaign_id}
    assert await campaigns.pause_all(ACCOUNT) == []  # nothing running: nothing appended


@pytest.mark.parametrize(
    ("kwargs", "field", "message"),
    [
        ({"campaign_key": "Autos Miami"}, "campaign_key", "lower-case letters"),
        ({"name": "  "}, "name", "needs a name"),
        ({"steps": []}, "steps", "at least one step"),
        ({"steps": [StepSpec(step=1, channel="fax")]}, "steps[0].channel", "unknown channel 'fax'"),
        ({"steps": [StepSpec(step=0, channel="sms")]}, "steps[0].step", "start at 1"),
        ({"steps": [StepSpec(step=1, channel="sms", delay_minutes=-5)]}, "steps[0].delay_minutes", "delay must be"),
        ({"steps": [StepSpec(step=1, channel="sms"), StepSpec(step=1, channel="voice")]}, "steps", "repeat"),
    ],
)
async def test_bad_commands_are_refused_naming_the_field_and_append_nothing(
    pg_store: PostgresEventStore, kwargs: dict[str, object], field: str, message: str
) -> None:
    command: dict[str, object] = {"campaign_key": "autos_outbound_miami", "name": "Autos", "steps": THREE_STEPS}
    command |= kwargs
    with pytest.raises(CommandRejected, match=message) as caught:
        await Campaigns(pg_store).create(ACCOUNT, **command)  # type: ignore[arg-type]
    assert caught.value.field == field and str(caught.value).startswith(f"campaign.create: {field}: ")
    assert await pg_store.head_position() == 0


async def test_another_accounts_campaign_is_not_found(pg_store: PostgresEventStore) -> None:
    campaigns = Campaigns(pg_store)
    theirs = await campaigns.create(OTHER, campaign_key="x", name="X", steps=THREE_STEPS)
    for toggle in (campaigns.activate, campaigns.pause):
        with pytest.raises(NotFound, match=f"no campaign {theirs.campaign_id} in this account"):
            await toggle(ACCOUNT, theirs.campaign_id)
    with pytest.raises(NotFound):
        await campaigns.activate(ACCOUNT, uuid.uuid4())
    assert await pg_store.stream_version(campaign_stream(theirs.campaign_id)) == 1


async def test_create_returns_allow_concurrent_as_recorded(pg_store: PostgresEventStore) -> None:
    campaigns = Campaigns(pg_store)
    first = await campaigns.create(
        ACCOUNT,
        campaign_key="autos_outbound_miami",
        name="Autos Miami",
        steps=[StepSpec(step=1, channel="sms")],
        allow_concurrent=True,
    )
    assert first.allow_concurrent is True
    assert (await campaigns.get(ACCOUNT, first.campaign_id)).allow_concurrent is True
