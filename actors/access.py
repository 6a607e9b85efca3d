"""API tokens (issue, revoke, list), decided from the account's `access-<account>` stream.

A token is `tl_` and 43 url-safe random characters (256 bits). Only its sha256 is appended; the
plaintext is handed back once, by `issue`, and nothing can show it again. The HTTP server looks
tokens up by that hash in `touchline.api_tokens`.
"""

from __future__ import annotations

import hashlib
import re
import secrets
import uuid
from datetime import datetime
from typing import Final
from uuid import UUID

import msgspec

from events.catalog import ApiTokenIssued, ApiTokenRevoked, access_stream
from events.envelope import Envelope
from events.errors import CommandRejected, NotFound
from events.store import EventStore

TOKEN_PREFIX: Final = "tl_"
# secrets.token_urlsafe(32): 32 random bytes are 43 base64url characters, unpadded.
TOKEN_PATTERN: Final = re.compile(r"^tl_[A-Za-z0-9_-]{43}$")
MAX_LABEL: Final = 100


def new_token() -> str:
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


def token_sha256(token: str) -> str:
    """The hex digest the log and the read model know a token by."""
    return hashlib.sha256(token.encode()).hexdigest()


def well_formed(token: str) -> bool:
    return TOKEN_PATTERN.match(token) is not None


class TokenState(msgspec.Struct, kw_only=True):
    token_id: UUID
    account_id: UUID
    token_sha256: str
    label: str | None
    issued_by: str | None
    issued_at: datetime
    revoked_at: datetime | None = None
    revoked_reason: str | None = None

    @property
    def revoked(self) -> bool:
        return self.revoked_at is not None


def fold_tokens(envelopes: list[Envelope]) -> dict[UUID, TokenState]:
    tokens: dict[UUID, TokenState] = {}
    for env in envelopes:
        match env.event:
            case ApiTokenIssued() as issued:
                tokens[issued.token_id] = TokenState(
                    token_id=issued.token_id,
                    account_id=issued.account_id,
                    token_sha256=issued.token_sha256,
                    label=issued.label,
                    issued_by=issued.issued_by,
                    issued_at=env.recorded_at,
                )
            case ApiTokenRevoked() as revoked if revoked.token_id in tokens:
                state = tokens[revoked.token_id]
                state.revoked_at = env.recorded_at
                state.revoked_reason = revoked.reason
    return tokens


def _check_label(command: str, label: str | None) -> str | None:
    text = " ".join((label or "").split()) or None  # control characters and runs of blanks: one space
    if text is not None and len(text) > MAX_LABEL:
        raise CommandRejected(command, f"is longer than {MAX_LABEL} characters", field="label")
    return text


class ApiTokens:
    """The API token commands of one store."""

    def __init__(self, store: EventStore) -> None:
        self.store = store

    async def _read(self, account_id: UUID) -> tuple[dict[UUID, TokenState], int]:
        envelopes = await self.store.read_stream(access_stream(account_id))
        return fold_tokens(envelopes), (envelopes[-1].version if envelopes else 0)

    async def issue(
        self, account_id: UUID, label: str | None = None, *, issued_by: str | None = None
    ) -> tuple[UUID, str]:
        """A new token for the account: its id and the token itself, which is returned only here."""
        checked = _check_label("token.issue", label)
        _, version = await self._read(account_id)
        token_id = uuid.uuid4()
        token = new_token()
        issued = ApiTokenIssued(
            token_id=token_id,
            account_id=account_id,
            token_sha256=token_sha256(token),
            label=checked,
            issued_by=issued_by,
        )
        await self.store.append(access_stream(account_id), [issued], expected_version=version)
        return token_id, token

    async def revoke(self, account_id: UUID, token_id: UUID, *, reason: str | None = None) -> TokenState:
        """Revoke one of the account's tokens; another account's (or an unknown) token is not found."""
        command = "token.revoke"
        tokens, version = await self._read(account_id)
        state = tokens.get(token_id)
        if state is None:
            raise NotFound(command, f"this account has no API token {token_id}", field="token_id")
        if state.revoked_at is not None:
            raise CommandRejected(
                command, f"token {token_id} was revoked already (at {state.revoked_at:%Y-%m-%d %H:%M} UTC)",
                field="token_id",
            )  # fmt: skip
        revoked = ApiTokenRevoked(token_id=token_id, account_id=account_id, reason=reason)
        await self.store.append(access_stream(account_id), [revoked], expected_version=version)
        tokens, _ = await self._read(account_id)
        return tokens[token_id]

    async def list(self, account_id: UUID) -> list[TokenState]:
        """The account's tokens, oldest first, revoked ones included (never the tokens themselves)."""
        tokens, _ = await self._read(account_id)
        return sorted(tokens.values(), key=lambda t: t.issued_at)
