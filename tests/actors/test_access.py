"""API tokens: issued once in plaintext, recorded by hash only, revoked per account, in the read model."""

from __future__ import annotations

import hashlib
import uuid

import pytest

from actors.access import ApiTokens, token_sha256, well_formed
from events.catalog import ApiTokenIssued, access_stream
from events.errors import CommandRejected, NotFound
from events.postgres import PostgresEventStore
from projections.api_tokens import ApiTokensProjection
from tests.projections.helpers import caught_up, running

ACCOUNT = uuid.UUID("00000000-0000-4000-8000-0000000000d1")
OTHER = uuid.UUID("00000000-0000-4000-8000-0000000000d2")


async def test_issue_returns_the_token_once_and_the_log_has_only_its_hash(pg_store: PostgresEventStore) -> None:
    token_id, token = await ApiTokens(pg_store).issue(ACCOUNT, "  dashboard\n", issued_by="test")
    assert well_formed(token) and token.startswith("tl_") and len(token) == 46
    history = await pg_store.read_stream(access_stream(ACCOUNT))
    assert [e.type for e in history] == ["ApiTokenIssued"]
    issued = history[0].event
    assert isinstance(issued, ApiTokenIssued)
    assert issued.token_id == token_id and issued.label == "dashboard" and issued.issued_by == "test"
    assert issued.token_sha256 == hashlib.sha256(token.encode()).hexdigest() == token_sha256(token)
    raw = await pg_store.pool.fetchval("select string_agg(data::text, ' ') from touchline.events")
    assert token not in raw and token.removeprefix("tl_") not in raw
    _, second = await ApiTokens(pg_store).issue(ACCOUNT)
    assert second != token


async def test_revoke_is_per_account_and_once(pg_store: PostgresEventStore) -> None:
    tokens = ApiTokens(pg_store)
    token_id, _ = await tokens.issue(ACCOUNT, "ci")
    with pytest.raises(NotFound) as missing:
        await tokens.revoke(OTHER, token_id)
    assert missing.value.field == "token_id" and str(token_id) in str(missing.value)
    with pytest.raises(NotFound):
        await tokens.revoke(ACCOUNT, uuid.uuid4())
    state = await tokens.revoke(ACCOUNT, token_id, reason="rotated")
    assert state.revoked and state.revoked_reason == "rotated"
    with pytest.raises(CommandRejected, match="revoked already"):
        await tokens.revoke(ACCOUNT, token_id)
    listed = await tokens.list(ACCOUNT)
    assert [(t.token_id, t.label, t.revoked) for t in listed] == [(token_id, "ci", True)]
    assert await tokens.list(OTHER) == []


async def test_a_label_too_long_is_refused_naming_the_field(pg_store: PostgresEventStore) -> None:
    with pytest.raises(CommandRejected) as refused:
        await ApiTokens(pg_store).issue(ACCOUNT, "x" * 101)
    assert refused.value.field == "label"
    assert await pg_store.read_stream(access_stream(ACCOUNT)) == []


async def test_the_read_model_knows_tokens_by_hash_and_their_revocation(pg_store: PostgresEventStore) -> None:
    tokens = ApiTokens(pg_store)
    kept_id, kept = await tokens.issue(ACCOUNT, "kept")
    gone_id, gone = await tokens.issue(ACCOUNT, "gone")
    other_id, _ = await tokens.issue(OTHER)
    await tokens.revoke(ACCOUNT, gone_id)
    async with running(pg_store, [ApiTokensProjection()]) as workers:
        await caught_up(pg_store, workers)
        rows = {
            r["token_id"]: r
            for r in await pg_store.pool.fetch(
                "select token_id, account_id, token_sha256, label, revoked_at from touchline.api_tokens"
            )
        }
    assert set(rows) == {kept_id, gone_id, other_id}
    assert rows[kept_id]["token_sha256"] == token_sha256(kept) and rows[kept_id]["revoked_at"] is None
    assert rows[gone_id]["token_sha256"] == token_sha256(gone) and rows[gone_id]["revoked_at"] is not None
    assert rows[other_id]["account_id"] == OTHER and rows[kept_id]["label"] == "kept"
