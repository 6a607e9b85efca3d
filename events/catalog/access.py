"""Access events: the API tokens an account's operators and integrations call the HTTP API with."""

from __future__ import annotations

from uuid import UUID

from events.catalog.base import Event

CATEGORY = "access"


def access_stream(account_id: UUID) -> str:
    return f"{CATEGORY}-{account_id}"


class ApiTokenIssued(Event, frozen=True):
    """A bearer token for one account. Only its sha256 (hex) is recorded: the token itself is
    shown once to whoever asked for it and is never stored or logged."""

    token_id: UUID
    account_id: UUID
    token_sha256: str
    label: str | None = None
    issued_by: str | None = None


class ApiTokenRevoked(Event, frozen=True):
    """The token no longer opens anything (for good: a revoked token is never restored)."""

    token_id: UUID
    account_id: UUID
    reason: str | None = None
