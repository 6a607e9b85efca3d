"""The HTTP server: health, bearer tokens (missing, malformed, unknown, revoked), JSON errors, serving."""

from __future__ import annotations

import contextlib
import socket
import uuid
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import msgspec
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from typer.testing import CliRunner

from actors.access import ApiTokens, new_token
from events.errors import ConfigError
from events.postgres import PostgresEventStore
from events.settings import Settings
from gateways.cli import app as cli
from gateways.http import create_app, serve_http
from projections.runner import ProjectionWorker
from tests.projections.helpers import caught_up, every_projection, running

ACCOUNT = uuid.UUID("00000000-0000-4000-8000-0000000000e1")


class Api:
    """A served app with every read model kept up to date, and a client for it."""

    def __init__(self, store: PostgresEventStore, session: aiohttp.ClientSession, workers: list[ProjectionWorker]):
        self.store = store
        self.session = session
        self.workers = workers

    async def caught_up(self) -> None:
        await caught_up(self.store, self.workers)

    async def token(self, account_id: uuid.UUID) -> str:
        _, token = await ApiTokens(self.store).issue(account_id, "test")
        await self.caught_up()
        return token

    async def call(
        self, method: str, path: str, token: str | None = None, *, body: Any = None, raw: bytes | None = None
    ) -> tuple[int, Any]:
        """The status and decoded JSON answer (the read models caught up first)."""
        await self.caught_up()
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        data = raw if raw is not None else (msgspec.json.encode(body) if body is not None else None)
        async with self.session.request(method, path, headers=headers, data=data) as response:
            assert response.content_type == "application/json", await response.text()
            return response.status, msgspec.json.decode(await response.read())


@contextlib.asynccontextmanager
async def open_api(store: PostgresEventStore) -> AsyncIterator[Api]:
    async with (
        running(store, every_projection()) as workers,
        serve_http(store, Settings(), host="127.0.0.1", port=0) as url,
        aiohttp.ClientSession(url) as session,
    ):
        yield Api(store, session, workers)


async def test_health_needs_no_token_and_pings_the_database(pg_store: PostgresEventStore) -> None:
    async with open_api(pg_store) as api:
        assert await api.call("GET", "/health") == (200, {"status": "ok", "database": "ok"})


async def test_missing_malformed_unknown_and_revoked_tokens_are_401_saying_why(pg_store: PostgresEventStore) -> None:
    async with open_api(pg_store) as api:
        status, body = await api.call("GET", "/api/programs/list")
        assert (
            status == 401
            and "missing Authorization header" in body["error"]
            and "touchline tokens create" in body["error"]
        )
        async with api.session.get("/api/programs/list", headers={"Authorization": "Basic dXNlcjpwdw=="}) as response:
            assert response.status == 401 and response.headers["WWW-Authenticate"].startswith("Bearer")
            assert "malformed Authorization header" in (await response.json())["error"]
        status, body = await api.call("GET", "/api/programs/list", "tl_too-short")
        assert status == 401 and "malformed API token" in body["error"] and "tl_too-short" not in body["error"]
        unknown = new_token()
        status, body = await api.call("GET", "/api/programs/list", unknown)
        assert status == 401 and "unknown API token" in body["error"] and unknown not in body["error"]

        token = await api.token(ACCOUNT)
        status, _ = await api.call("GET", "/api/programs/list", token)
        assert status == 200
        (listed,) = await ApiTokens(api.store).list(ACCOUNT)
        await ApiTokens(api.store).revoke(ACCOUNT, listed.token_id)
        status, body = await api.call("GET", "/api/programs/list", token)
        assert status == 401 and "revoked" in body["error"] and token not in body["error"]


async def test_unknown_routes_are_json_and_only_webhooks_skip_the_token(pg_store: PostgresEventStore) -> None:
    async with open_api(pg_store) as api:
        status, body = await api.call("GET", "/api/nothing-here")
        assert status == 401  # no route is named to someone without a token
        token = await api.token(ACCOUNT)
        status, body = await api.call("GET", "/api/nothing-here", token)
        assert status == 404 and "GET /api/nothing-here" in body["error"]
        status, body = await api.call("GET", "/webhooks/nobody")
        assert status == 404
        status, body = await api.call("DELETE", "/health", token)
        assert status == 405
        # A dot-segment path cannot smuggle a guarded route past the check.
        status, body = await api.call("GET", "/webhooks/../api/programs/list")
        assert status in (401, 404)


async def test_unexpected_errors_are_500_without_internals(pg_store: PostgresEventStore) -> None:
    async def boom(request: web.Request) -> web.Response:
        raise RuntimeError("password=hunter2 at /srv/secret.py")

    app = create_app(pg_store, Settings())
    app.router.add_get("/webhooks/boom", boom)  # public, so no token is needed to reach it
    async with TestClient(TestServer(app)) as client:
        response = await client.get("/webhooks/boom")
        body = await response.json()
    assert response.status == 500
    assert "internal error" in body["error"] and "hunter2" not in body["error"] and "secret" not in body["error"]


async def test_a_read_model_not_built_yet_is_503_saying_what_to_run(pg_store: PostgresEventStore) -> None:
    async with TestClient(TestServer(create_app(pg_store, Settings()))) as client:
        response = await client.get("/api/programs/list", headers={"Authorization": f"Bearer {new_token()}"})
        body = await response.json()
    assert response.status == 503 and "touchline up" in body["error"]


async def test_serve_http_on_a_taken_port_names_the_setting(pg_store: PostgresEventStore) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(ConfigError, match="TOUCHLINE_HTTP_PORT"):
            async with serve_http(pg_store, Settings(), host="127.0.0.1", port=port):
                pass


def test_tokens_cli_creates_lists_and_revokes(database_url: str) -> None:
    runner = CliRunner()
    env = {"TOUCHLINE_DATABASE_URL": database_url, "COLUMNS": "200"}
    created = runner.invoke(cli, ["tokens", "create", "--account", str(ACCOUNT), "--label", "dashboard"], env=env)
    assert created.exit_code == 0, created.output
    token = created.stdout.splitlines()[1]
    assert token.startswith("tl_") and len(token) == 46
    assert "shown only now" in created.stderr
    listed = runner.invoke(cli, ["tokens", "list", "--account", str(ACCOUNT)], env=env)
    assert listed.exit_code == 0 and "dashboard" in listed.stdout and token not in listed.stdout
    token_id = created.stdout.split()[3]
    revoked = runner.invoke(cli, ["tokens", "revoke", "--account", str(ACCOUNT), "--token-id", token_id], env=env)
    assert revoked.exit_code == 0 and f"revoked {token_id}" in revoked.stdout
    again = runner.invoke(cli, ["tokens", "revoke", "--account", str(ACCOUNT), "--token-id", token_id], env=env)
    assert again.exit_code == 2 and "revoked already" in again.stderr
    other = runner.invoke(cli, ["tokens", "revoke", "--account", str(uuid.uuid4()), "--token-id", token_id], env=env)
    assert other.exit_code == 2 and "no API token" in other.stderr
