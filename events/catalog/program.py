"""LeadGen program events: a lead source (Craigslist, Encuentra24) running for a city."""

from __future__ import annotations

from uuid import UUID

from events.catalog.base import Event

CATEGORY = "program"


def program_stream(account_id: UUID, program_key: str, city: str) -> str:
    return f"{CATEGORY}-{account_id}:{program_key}:{city}"


class ProgramStarted(Event, frozen=True):
    account_id: UUID
    program_key: str
    city: str
    routing_override: bool = False
    started_by: str | None = None
    # How often the program looks for new listings while it runs (a discover every N seconds).
    discover_every_s: int = 900


class ProgramStopped(Event, frozen=True):
    account_id: UUID
    program_key: str
    city: str
    stopped_by: str | None = None
    reason: str | None = None
