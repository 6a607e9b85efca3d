"""Outbound campaign events: a cadence of steps, switched on and off by `is_active`."""

from __future__ import annotations

from typing import Literal
from uuid import UUID

import msgspec

from events.catalog.base import Event

CATEGORY = "campaign"

Channel = Literal["voice", "sms", "whatsapp", "email"]


def campaign_stream(campaign_id: UUID) -> str:
    return f"{CATEGORY}-{campaign_id}"


class CampaignStep(msgspec.Struct, frozen=True, kw_only=True):
    step: int
    channel: Channel
    delay_minutes: int = 0
    template: str | None = None


class CampaignCreated(Event, frozen=True):
    campaign_id: UUID
    account_id: UUID
    campaign_key: str
    name: str
    steps: list[CampaignStep] = []
    allow_concurrent: bool = False


class CampaignStepsReplaced(Event, frozen=True):
    campaign_id: UUID
    account_id: UUID
    steps: list[CampaignStep]


class CampaignActivated(Event, frozen=True):
    campaign_id: UUID
    account_id: UUID
    reason: str | None = None


class CampaignPaused(Event, frozen=True):
    campaign_id: UUID
    account_id: UUID
    reason: str | None = None
