"""The event catalog and codec: one decoder, tagged Structs, clear errors, schema evolution."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import msgspec
import pytest

from events.catalog import (
    ALL_EVENTS,
    CampaignCreated,
    CampaignStep,
    Event,
    LeadgenRouting,
    LeadgenRoutingSet,
    LeadIngested,
    event_type,
)
from events.codec import EVENT_TYPES, decode_event, encode_event, validate_event_data
from events.envelope import Envelope, envelope_decoder, envelope_encoder, stream_category
from events.errors import EventDataInvalid, UnknownEventType

ACCOUNT = uuid.uuid4()


def test_every_event_is_frozen_tagged_and_registered_once() -> None:
    assert len(EVENT_TYPES) == len(ALL_EVENTS)
    for cls in ALL_EVENTS:
        config = cls.__struct_config__
        assert config.frozen, cls
        assert config.tag == cls.__name__
        assert config.tag_field == "type"
        assert issubclass(cls, Event)


def test_round_trip_keeps_nested_structs_and_times() -> None:
    event = CampaignCreated(
        campaign_id=uuid.uuid4(),
        account_id=ACCOUNT,
        campaign_key="autos_outbound_miami",
        name="Autos Miami",
        steps=[
            CampaignStep(step=1, channel="sms", delay_minutes=0),
            CampaignStep(step=2, channel="voice", delay_minutes=90),
        ],
    )
    data = encode_event(event)
    assert msgspec.json.decode(data)["type"] == "CampaignCreated"
    assert decode_event("CampaignCreated", data) == event

    ingested = LeadIngested(
        lead_id=uuid.uuid4(),
        account_id=ACCOUNT,
        source="craigslist",
        external_id="7712345678",
        posted_at=datetime(2026, 1, 9, 21, 36, tzinfo=UTC),
        attributes={"odometer": "120000"},
        latitude=25.76,
    )
    assert decode_event("LeadIngested", encode_event(ingested)) == ingested


def test_unknown_type_is_named() -> None:
    with pytest.raises(UnknownEventType, match=r"'LeadTeleported'.*position 9"):
        decode_event("LeadTeleported", b"{}", where="position 9")


def test_data_not_matching_the_schema_says_which_field() -> None:
    data = encode_event(LeadgenRoutingSet(account_id=ACCOUNT, leadgen_routing=LeadgenRouting(radius_miles=10)))
    broken = data.replace(b'"radius_miles":10', b'"radius_miles":"ten"')
    with pytest.raises(EventDataInvalid, match=r"radius_miles"):
        decode_event("LeadgenRoutingSet", broken)
    with pytest.raises(EventDataInvalid, match="not valid JSON"):
        decode_event("LeadgenRoutingSet", b"{not json")


def test_data_tagged_as_another_type_is_refused() -> None:
    data = encode_event(LeadgenRoutingSet(account_id=ACCOUNT, leadgen_routing=LeadgenRouting()))
    with pytest.raises(EventDataInvalid, match="tagged 'LeadgenRoutingSet'"):
        decode_event("OrgSettingsUpdated", data)


def test_old_events_decode_into_newer_classes_with_defaults() -> None:
    """Schema evolution: an event stored before a field existed gets the field's default."""
    stored = msgspec.json.encode(
        {
            "type": "CampaignCreated",
            "campaign_id": str(uuid.uuid4()),
            "account_id": str(ACCOUNT),
            "campaign_key": "autos_outbound_miami",
            "name": "old",
        }
    )
    event = decode_event("CampaignCreated", stored)
    assert isinstance(event, CampaignCreated)
    assert event.steps == [] and event.allow_concurrent is False


def test_fields_added_by_a_newer_writer_are_ignored_by_older_readers() -> None:
    data = msgspec.json.decode(encode_event(LeadgenRoutingSet(account_id=ACCOUNT, leadgen_routing=LeadgenRouting())))
    data["field_from_the_future"] = 1
    assert isinstance(decode_event("LeadgenRoutingSet", msgspec.json.encode(data)), LeadgenRoutingSet)


def test_external_json_is_validated_with_or_without_its_tag() -> None:
    raw = {"account_id": str(ACCOUNT), "leadgen_routing": {"dealer_address": "1 Main St", "active": True}}
    event = validate_event_data("LeadgenRoutingSet", msgspec.json.encode(raw))
    assert isinstance(event, LeadgenRoutingSet) and event.leadgen_routing.active
    with pytest.raises(EventDataInvalid, match="expected a JSON object"):
        validate_event_data("LeadgenRoutingSet", b"[1, 2]")
    with pytest.raises(UnknownEventType):
        validate_event_data("Nope", b"{}")


def test_encoding_an_event_outside_the_catalog_is_refused() -> None:
    class Stray(Event, frozen=True):
        x: int

    with pytest.raises(UnknownEventType, match="Stray"):
        encode_event(Stray(x=1))


def test_envelope_travels_with_its_data_inline() -> None:
    event = LeadgenRoutingSet(account_id=ACCOUNT, leadgen_routing=LeadgenRouting(dealer_address="x", active=True))
    env = Envelope(
        event_id=uuid.uuid4(),
        stream_id=f"org-{ACCOUNT}",
        version=1,
        position=42,
        type=event_type(LeadgenRoutingSet),
        account_id=ACCOUNT,
        correlation_id=uuid.uuid4(),
        causation_id=None,
        recorded_at=datetime.now(UTC),
        data=msgspec.Raw(encode_event(event)),
    )
    wire = envelope_encoder.encode(env)
    assert msgspec.json.decode(wire)["data"]["leadgen_routing"]["dealer_address"] == "x"
    back = envelope_decoder.decode(wire)
    assert back.event == event and back.position == 42 and back.category == "org"
    assert stream_category("touch-1-2") == "touch"
