"""Actor runtime events: inputs an actor parked, and durable timers."""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

from events.catalog.base import Event


def parked_stream(actor: str) -> str:
    return f"parked-{actor}"


def timer_category(actor: str) -> str:
    # One category per actor, so the bus subject alone routes a fired timer to its actor.
    return f"timer_{actor}"


def timer_stream(actor: str, timer_id: UUID) -> str:
    return f"{timer_category(actor)}-{timer_id}"


class EventParked(Event, frozen=True):
    """An actor gave up on an input (it kept failing, or cannot be read) and moved on."""

    actor: str
    parked_event_id: UUID | None
    position: int | None
    stream_id: str | None
    event_type: str | None
    attempts: int
    reason: str
    account_id: UUID | None = None


class TimerScheduled(Event, frozen=True):
    """Wake `actor` at `due_at` about `key` ("touch:<id>", "lease:<id>")."""

    timer_id: UUID
    actor: str
    key: str
    due_at: datetime
    account_id: UUID | None = None
    data: dict[str, str] = {}


class TimerFired(Event, frozen=True):
    timer_id: UUID
    actor: str
    key: str
    due_at: datetime
    fired_at: datetime
    account_id: UUID | None = None
    data: dict[str, str] = {}


class TimerCancelled(Event, frozen=True):
    timer_id: UUID
    actor: str
    key: str
    account_id: UUID | None = None
