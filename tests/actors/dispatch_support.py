"""Shared by the dispatch tests: an account with a campaign, leads, touch runs, and the log's answers."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta

from actors.campaigns import Campaigns, StepSpec
from actors.dispatch import DispatchEngine, DispatchSettings
from actors.org import OrgSettings
from actors.warmup import WarmupSchedule
from events.catalog import Event, LeadIngested, TouchRunScheduled, lead_stream, touch_stream
from events.envelope import Envelope
from events.postgres import PostgresEventStore
from tests.actors.support import events_of

ACCOUNT = uuid.UUID("00000000-0000-4000-8000-00000000d15a")
# 17:00 UTC is noon in Miami: inside the send window.
NOON_MIAMI = datetime(2026, 11, 24, 17, 0, tzinfo=UTC)


class Setup:
    def __init__(self, store: PostgresEventStore) -> None:
        self.store = store
        self.campaign_id: uuid.UUID | None = None

    async def campaign(self, *steps: StepSpec, active: bool = True, account: uuid.UUID = ACCOUNT) -> uuid.UUID:
        await OrgSettings(self.store).update(
            account, business_name="Autos Brickell", contact_email="ventas@brickell.example"
        )
        campaigns = Campaigns(self.store)
        created = await campaigns.create(
            account, campaign_key=f"autos_{uuid.uuid4().hex[:6]}", name="Autos Miami",
            steps=list(steps) or [StepSpec(step=1, channel="sms")],
        )  # fmt: skip
        if active:
            await campaigns.activate(account, created.campaign_id)
        self.campaign_id = created.campaign_id
        return created.campaign_id

    async def lead(
        self,
        phone: str | None = "+13055550123",
        *,
        email: str | None = "seller@example.com",
        city: str = "miami",
        extra: list[Event] | None = None,
        account: uuid.UUID = ACCOUNT,
    ) -> uuid.UUID:
        lead_id = uuid.uuid4()
        ingested = LeadIngested(
            lead_id=lead_id, account_id=account, source="craigslist", external_id=str(lead_id.int % 10**10),
            city=city, phone=phone, email=email, title="2016 Toyota Corolla LE", price=9500, name="Ana Pérez",
        )  # fmt: skip
        await self.store.append(lead_stream(lead_id), [ingested, *(extra or [])])
        return lead_id

    async def touch(
        self,
        lead_id: uuid.UUID,
        channel: str = "sms",
        *,
        due: datetime = NOON_MIAMI,
        step: int = 1,
        account: uuid.UUID = ACCOUNT,
    ) -> uuid.UUID:
        assert self.campaign_id is not None
        touch_id = uuid.uuid4()
        scheduled = TouchRunScheduled(
            touch_run_id=touch_id, account_id=account, lead_id=lead_id, campaign_id=self.campaign_id, step=step,
            channel=channel, scheduled_for=due,  # type: ignore[arg-type]
        )  # fmt: skip
        await self.store.append(touch_stream(touch_id), [scheduled])
        return touch_id


def engine(env: Mapping[str, str] | None = None, **settings: object) -> DispatchEngine:
    """An engine with quick retries (tests move a fake clock) and warmup off unless asked for."""
    values: dict[str, object] = {
        "worker_id": "test-worker",
        "backoff_base_s": 10.0,
        "backoff_max_s": 60.0,
        "lease_s": 30.0,
        "warmup": WarmupSchedule(enabled=False),
    }
    values.update(settings)
    return DispatchEngine(env=dict(env or {}), settings=DispatchSettings(**values))  # type: ignore[arg-type]


async def touch_events(store: PostgresEventStore, touch_id: uuid.UUID) -> list[str]:
    return [e.type for e in await store.read_stream(touch_stream(touch_id))]


async def last_of(store: PostgresEventStore, touch_id: uuid.UUID) -> Envelope:
    return (await store.read_stream(touch_stream(touch_id)))[-1]


async def lead_types(store: PostgresEventStore, lead_id: uuid.UUID) -> list[str]:
    return [e.type for e in await store.read_stream(lead_stream(lead_id))]


async def all_of(store: PostgresEventStore, *types: str) -> list[Envelope]:
    return await events_of(store, *types)


def later(minutes: float) -> datetime:
    return NOON_MIAMI + timedelta(minutes=minutes)
