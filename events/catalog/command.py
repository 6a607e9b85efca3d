"""Operator command events: what an operator typed into Command OS and what came of it."""

from __future__ import annotations

from typing import Literal
from uuid import UUID

from events.catalog.base import Event

CATEGORY = "operator_command"


def operator_command_stream(command_id: UUID) -> str:
    return f"{CATEGORY}-{command_id}"


class OperatorCommandReceived(Event, frozen=True):
    command_id: UUID
    account_id: UUID
    operator: str
    text: str
    intent: str | None = None
    resolved_by: Literal["rule", "model", "none"] = "none"
    outcome: str | None = None
