"""Call events: one voice session, from carrier webhook to hang-up."""

from __future__ import annotations

from typing import Literal
from uuid import UUID

from events.catalog.base import Event

CATEGORY = "call"


def call_stream(call_id: UUID) -> str:
    return f"{CATEGORY}-{call_id}"


class CallStarted(Event, frozen=True):
    call_id: UUID
    account_id: UUID
    carrier: Literal["telnyx", "twilio"]
    direction: Literal["inbound", "outbound"]
    carrier_call_id: str
    from_number: str | None = None
    to_number: str | None = None
    lead_id: UUID | None = None
    touch_run_id: UUID | None = None


class CallAnswered(Event, frozen=True):
    call_id: UUID
    account_id: UUID


class MediaStreamStarted(Event, frozen=True):
    call_id: UUID
    account_id: UUID
    stream_id: str
    codec: str
    sample_rate: int = 8000


class TranscriptTurn(Event, frozen=True):
    call_id: UUID
    account_id: UUID
    role: Literal["caller", "agent"]
    text: str


class BargeIn(Event, frozen=True):
    """The caller spoke over the agent: its audio was cleared at the carrier and its reply cut
    where the caller stopped hearing it."""

    call_id: UUID
    account_id: UUID
    item_id: str | None = None
    audio_end_ms: int | None = None  # how much of the agent's reply the caller heard


class MediaStreamRefused(Event, frozen=True):
    """A carrier stream the gateway would not take (a codec other than PCMU, ...): no AI session."""

    call_id: UUID
    account_id: UUID
    reason: str
    codec: str | None = None


class DtmfReceived(Event, frozen=True):
    call_id: UUID
    account_id: UUID
    digit: str


class HandoffRequested(Event, frozen=True):
    call_id: UUID
    account_id: UUID
    reason: str
    lead_id: UUID | None = None
    delivered: bool | None = None  # whether SUPABASE_VOICE_HANDOFF_URL took it (None: not configured)


class CallEnded(Event, frozen=True):
    call_id: UUID
    account_id: UUID
    reason: str
    duration_s: float = 0.0
