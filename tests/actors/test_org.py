"""Org settings and LeadGen routing: checked on the command side, and again by the read model's CHECK."""

from __future__ import annotations

import uuid

import asyncpg
import msgspec
import pytest

from actors.org import OrgSettings
from events.catalog import LeadgenRouting
from events.errors import CommandRejected
from events.postgres import PostgresEventStore
from projections.org_settings import OrgSettingsProjection
from tests.projections.helpers import caught_up, running

ACCOUNT = uuid.UUID("00000000-0000-4000-8000-0000000000f1")


async def test_onboarding_then_routing_shows_in_org_settings(pg_store: PostgresEventStore) -> None:
    org = OrgSettings(pg_store)
    state = await org.update(
        ACCOUNT,
        business_name="  Miami Motors ",
        contact_email="Sales@MiamiMotors.com",
        contact_phone="+1 (305) 555-0100",
    )
    assert (state.business_name, state.contact_email, state.contact_phone, state.vertical) == (
        "Miami Motors",
        "sales@miamimotors.com",
        "+13055550100",
        "car_dealer",
    )
    assert not state.routing_active
    routing = LeadgenRouting(dealer_address="1 Biscayne Blvd", radius_miles=25, city_fallback="Miami", active=True)
    state = await org.set_routing(ACCOUNT, routing)
    assert state.routing_active and state.leadgen_routing is not None and state.leadgen_routing.city_fallback == "miami"
    async with running(pg_store, [OrgSettingsProjection()]) as workers:
        await caught_up(pg_store, workers)
    row = await pg_store.pool.fetchrow(
        "select business_name, contact_email, vertical, leadgen_routing->>'active', "
        "(leadgen_routing->>'radius_miles')::int from public.org_settings where account_id = $1",
        ACCOUNT,
    )
    assert row is not None and tuple(row) == ("Miami Motors", "sales@miamimotors.com", "car_dealer", "true", 25)
    # The spec's verification query runs as written.
    routing_json = await pg_store.pool.fetchval("select leadgen_routing from public.org_settings limit 1")
    assert msgspec.json.decode(routing_json) == {
        "dealer_address": "1 Biscayne Blvd",
        "radius_miles": 25,
        "city_fallback": "miami",
        "active": True,
    }


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"business_name": " "}, "business_name"),
        ({"contact_email": "sales at miami"}, "contact_email"),
        ({"contact_phone": "305-555"}, "contact_phone"),
        ({"contact_whatsapp": "whatsapp me"}, "contact_whatsapp"),
        ({"vertical": "Car Dealer"}, "vertical"),
    ],
)
async def test_invalid_settings_name_the_field_and_append_nothing(
    pg_store: PostgresEventStore, kwargs: dict[str, str], field: str
) -> None:
    command = {"business_name": "Miami Motors", "contact_email": "sales@miamimotors.com"} | kwargs
    with pytest.raises(CommandRejected) as caught:
        await OrgSettings(pg_store).update(ACCOUNT, **command)
    assert caught.value.field == field and field in str(caught.value)
    assert await pg_store.head_position() == 0


@pytest.mark.parametrize(
    ("routing", "field", "message"),
    [
        (LeadgenRouting(dealer_address="1 Main St", radius_miles=0), "radius_miles", "must be 1 to 50, got 0"),
        (LeadgenRouting(dealer_address="1 Main St", radius_miles=51), "radius_miles", "must be 1 to 50, got 51"),
        (LeadgenRouting(dealer_address="  ", active=True), "dealer_address", "cannot be active without"),
    ],
)
async def test_invalid_routing_is_refused(
    pg_store: PostgresEventStore, routing: LeadgenRouting, field: str, message: str
) -> None:
    with pytest.raises(CommandRejected, match=message) as caught:
        await OrgSettings(pg_store).set_routing(ACCOUNT, routing)
    assert caught.value.field == field
    assert await pg_store.head_position() == 0


async def test_the_read_model_enforces_the_same_rule(pg_store: PostgresEventStore) -> None:
    async with running(pg_store, [OrgSettingsProjection()]):
        pass
    with pytest.raises(asyncpg.CheckViolationError, match="leadgen_routing_valid"):
        await pg_store.pool.execute(
            "insert into public.org_settings (account_id, vertical, leadgen_routing, created_at, updated_at, version) "
            """values ($1, 'car_dealer', '{"radius_miles": 10, "active": true}', now(), now(), 1)""",
            ACCOUNT,
        )


async def test_senders_are_checked_per_channel_replaced_whole_and_cleared_with_nothing(
    pg_store: PostgresEventStore,
) -> None:
    org = OrgSettings(pg_store)
    state = await org.set_senders(
        ACCOUNT, {"sms": "+1 (305) 555-0100", "whatsapp": "106540352242922", "email": " Ventas@Dealer.example "}
    )
    assert state.senders == {"email": "ventas@dealer.example", "sms": "+13055550100", "whatsapp": "106540352242922"}
    before = await pg_store.stream_version(f"org-{ACCOUNT}")
    for senders, field, message in (
        ({"fax": "+13055550100"}, "fax", "unknown channel 'fax'"),
        ({"sms": "305-555-0100"}, "sms", "not an E.164 number"),
        ({"voice": "106540352242922"}, "voice", "not an E.164 number"),  # an id is WhatsApp's only
        ({"email": "ventas"}, "email", "not an email address"),
    ):
        with pytest.raises(CommandRejected, match=message) as caught:
            await org.set_senders(ACCOUNT, senders)
        assert caught.value.field == field
    assert await pg_store.stream_version(f"org-{ACCOUNT}") == before
    assert (await org.set_senders(ACCOUNT, {"voice": "+13055550101"})).senders == {"voice": "+13055550101"}
    assert (await org.set_senders(ACCOUNT, {})).senders == {}
