"""`touchline.api_tokens`: every account's API tokens by their sha256, for the HTTP server to check."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import ClassVar
from uuid import UUID

import msgspec

from events.catalog import ApiTokenIssued, ApiTokenRevoked, Event
from projections.model import Db, Fact, Projection, RowSet, Table

API_TOKENS = Table(
    schema="touchline",
    name="api_tokens",
    columns=(
        ("token_id", "uuid not null"),
        ("account_id", "uuid not null"),
        ("token_sha256", "text not null"),  # the token's sha256, hex; the token itself is nowhere
        ("label", "text"),
        ("revoked_at", "timestamptz"),
        ("created_at", "timestamptz not null"),
        ("updated_at", "timestamptz not null"),
        ("version", "bigint not null"),
    ),
    key="token_id",
    # One hash, one token: a lookup by hash names exactly one account.
    constraints=("unique (token_sha256)",),
    indexes=("(account_id)",),
)


class TokenRow(msgspec.Struct, gc=False):
    token_id: UUID
    account_id: UUID
    token_sha256: str
    label: str | None
    revoked_at: datetime | None
    created_at: datetime
    updated_at: datetime
    version: int


class ApiTokensProjection(Projection):
    name = "api_tokens"
    version = 1
    handles: ClassVar[tuple[type[Event], ...]] = (ApiTokenIssued, ApiTokenRevoked)
    tables = (API_TOKENS,)

    def __init__(self) -> None:
        self.tokens = RowSet(API_TOKENS, TokenRow)

    async def apply(self, db: Db, batch: Sequence[Fact]) -> None:
        await self.tokens.prefetch(db, (getattr(f.event, "token_id") for f in batch))  # noqa: B009
        for fact in batch:
            event = fact.event
            at = fact.recorded_at
            match event:
                case ApiTokenIssued():
                    if self.tokens.get(event.token_id) is not None:
                        continue  # issued once; a replayed id changes nothing
                    row = TokenRow(
                        event.token_id, event.account_id, event.token_sha256, event.label, None, at, at, fact.position
                    )
                case ApiTokenRevoked():
                    found = self.tokens.get(event.token_id)
                    # Only the account that holds the token can revoke it, and only once.
                    if found is None or found.account_id != event.account_id or found.revoked_at is not None:
                        continue
                    row = found
                    row.revoked_at = at
                    row.updated_at = at
                    row.version = fact.position
                case _:
                    continue
            self.tokens.put(row)
