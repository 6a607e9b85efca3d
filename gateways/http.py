"""The HTTP server: the app (bearer-token auth, JSON errors, health, the API routes) and serving it.

Every route needs `Authorization: Bearer <token>` naming one account, except `GET /health` and
the provider webhooks under `/webhooks/` (each of those verifies its provider's signature). The
token is looked up by its sha256 in `touchline.api_tokens`; the handler gets the account id as
`request[ACCOUNT]` and answers for that account only. Tokens are never logged or echoed.
"""

from __future__ import annotations

import contextlib
import re
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from typing import Any, Final, TypeVar
from uuid import UUID

import anyio
import asyncpg
import msgspec
import structlog
from aiohttp import web
from anyio.abc import TaskStatus

from actors.access import token_sha256, well_formed
from events.errors import CommandRejected, ConfigError, GatewayError, NotFound
from events.postgres import PostgresEventStore
from events.settings import Settings

log = structlog.get_logger("touchline.http")

STORE: Final = web.AppKey("store", PostgresEventStore)
SETTINGS: Final = web.AppKey("settings", Settings)
# The account the request's token belongs to: set by the auth middleware on every guarded route.
ACCOUNT: Final = web.RequestKey("account_id", UUID)

HEALTH_DB_TIMEOUT_S: Final = 2.0
_CREATE_TOKEN: Final = "create one with `touchline tokens create --account <account id>`"

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
B = TypeVar("B", bound=msgspec.Struct)


class HttpError(GatewayError):
    """A request refused at the edge: the HTTP status, what was wrong, and the field if one was."""

    def __init__(self, status: int, message: str, *, field: str | None = None) -> None:
        self.status = status
        self.field = field
        super().__init__(message)


class Unauthorized(HttpError):
    def __init__(self, message: str) -> None:
        super().__init__(401, message)


_encoder: Final = msgspec.json.Encoder()


def json_response(payload: Any, *, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    """`payload` (Structs, dicts, lists; times as ISO 8601) as a JSON response."""
    return web.Response(body=_encoder.encode(payload), status=status, headers=headers, content_type="application/json")


def error_response(
    status: int, message: str, *, field: str | None = None, headers: dict[str, str] | None = None
) -> web.Response:
    body: dict[str, Any] = {"error": message}
    if field is not None:
        body["field"] = field
    return json_response(body, status=status, headers=headers)


_AT_PATH: Final = re.compile(r"at `\$\.([^`\[]+)")
_NAMED_FIELD: Final = re.compile(r"(?:unknown|required) field `([^`]+)`")


def has_nul(raw: bytes) -> bool:
    """A NUL in a JSON body, raw or escaped: PostgreSQL text cannot hold one."""
    return b"\\u0000" in raw or b"\x00" in raw


async def read_json(request: web.Request, body_type: type[B]) -> B:
    """The request body decoded into `body_type` (an empty body is `{}`); 400 naming what is wrong."""
    raw = await request.read()
    if not raw.strip():
        raw = b"{}"
    if has_nul(raw):
        # PostgreSQL text cannot hold NUL: refused here, by name, instead of failing the write.
        raise HttpError(400, "request body: text may not contain NUL characters (\\u0000)")
    try:
        return msgspec.json.decode(raw, type=body_type)
    except msgspec.ValidationError as exc:
        text = str(exc)
        found = _AT_PATH.search(text) or _NAMED_FIELD.search(text)
        raise HttpError(400, f"request body: {text}", field=found.group(1) if found else None) from None
    except msgspec.DecodeError as exc:
        raise HttpError(
            400, f'request body is not valid JSON ({exc}): send a JSON object, e.g. {{"city": "miami"}}'
        ) from None


# --- middleware ------------------------------------------------------------------------------------


def _is_public(request: web.Request) -> bool:
    """Health, the webhooks (which check their provider's signature instead of a token) and the
    carrier media streams `/telnyx` and `/twilio` (which check their per-call stream token).

    Decided by the route the request matched, not by the raw path, so no spelling of a path
    (`/webhooks/../api/...`) reaches a guarded handler without a token.
    """
    resource = request.match_info.route.resource
    path = resource.canonical if resource is not None else request.path
    if path in ("/health", "/healthz", "/api/openapi.json") and request.method in ("GET", "HEAD"):
        return True
    return path.startswith("/webhooks/") or (path in ("/telnyx", "/twilio") and request.method == "GET")


async def _account_for(request: web.Request) -> UUID:
    header = request.headers.get("Authorization")
    if header is None or not header.strip():
        raise Unauthorized(f"missing Authorization header: send `Authorization: Bearer <token>`; {_CREATE_TOKEN}")
    scheme, _, token = header.strip().partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        raise Unauthorized("malformed Authorization header: expected `Authorization: Bearer <token>`")
    if not well_formed(token):
        raise Unauthorized(
            "malformed API token: Touchline tokens are `tl_` followed by 43 letters, digits, '-' or '_'; "
            "check that it was copied whole"
        )
    row = await request.app[STORE].pool.fetchrow(
        "select account_id, revoked_at from touchline.api_tokens where token_sha256 = $1", token_sha256(token)
    )
    if row is None:
        raise Unauthorized(
            f"unknown API token: no account has it (a token just created may take a moment); {_CREATE_TOKEN}"
        )
    if row["revoked_at"] is not None:
        raise Unauthorized(f"this API token was revoked at {row['revoked_at']:%Y-%m-%d %H:%M} UTC; {_CREATE_TOKEN}")
    account_id: UUID = row["account_id"]
    return account_id


@web.middleware
async def _authenticate(request: web.Request, handler: Handler) -> web.StreamResponse:
    matched = request.match_info.http_exception is None  # a 404/405 is answered as such first
    if matched and ("\x00" in request.path or "\x00" in request.query_string or "%00" in request.raw_path):
        raise HttpError(400, "the URL may not contain NUL characters (%00)")
    if not _is_public(request):
        request[ACCOUNT] = await _account_for(request)
    return await handler(request)


@web.middleware
async def _errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Refusals become JSON naming what was wrong; anything unexpected a 500 that shows nothing inside."""
    try:
        return await handler(request)
    except Unauthorized as exc:
        challenge = 'Bearer realm="touchline"' + (
            ', error="invalid_token"' if "Authorization" in request.headers else ""
        )
        return error_response(401, str(exc), headers={"WWW-Authenticate": challenge})
    except HttpError as exc:
        return error_response(exc.status, str(exc), field=exc.field)
    except NotFound as exc:
        return error_response(404, str(exc), field=exc.field)
    except CommandRejected as exc:
        return error_response(400, str(exc), field=exc.field)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        headers = {"Allow": exc.headers["Allow"]} if "Allow" in exc.headers else None
        return error_response(exc.status, f"{exc.reason}: {request.method} {request.path}", headers=headers)
    except asyncpg.UndefinedTableError as exc:
        log.warning("http_read_model_missing", path=request.path, error=str(exc))
        return error_response(
            503, "a read model this needs is not built yet: run `touchline up` (with the projections role) and retry"
        )
    except (asyncpg.PostgresConnectionError, asyncpg.InterfaceError, ConnectionError) as exc:
        log.warning("http_database_unavailable", path=request.path, error=type(exc).__name__)
        return error_response(503, "the database is unavailable right now: retry in a moment")
    except Exception:
        request_id = uuid.uuid4()
        log.exception("http_request_failed", method=request.method, path=request.path, request_id=str(request_id))
        return error_response(500, f"internal error (request {request_id}): the server log has the details")


@web.middleware
async def _access_log(request: web.Request, handler: Handler) -> web.StreamResponse:
    # Method, path and status only: headers carry the token, queries may carry anything.
    started = time.perf_counter()
    response = await handler(request)
    log.info(
        "http_request",
        method=request.method,
        path=request.path,
        status=response.status,
        ms=round((time.perf_counter() - started) * 1000, 1),
        account=str(request[ACCOUNT]) if ACCOUNT in request else None,
    )
    return response


# --- routes ----------------------------------------------------------------------------------------


async def health(request: web.Request) -> web.Response:
    """`{"status": "ok"}` when PostgreSQL answers; 503 naming the problem when it does not."""
    try:
        with anyio.fail_after(HEALTH_DB_TIMEOUT_S):
            await request.app[STORE].pool.fetchval("select 1")
    except (TimeoutError, OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
        log.warning("http_health_database_unreachable", error=type(exc).__name__)
        return json_response(
            {
                "status": "unavailable",
                "database": "unreachable",
                "error": f"PostgreSQL did not answer within {HEALTH_DB_TIMEOUT_S:g} s: "
                "check that it runs and what TOUCHLINE_DATABASE_URL names",
            },
            status=503,
        )
    return json_response({"status": "ok", "database": "ok"})


def create_app(store: PostgresEventStore, settings: Settings, env: Mapping[str, str] | None = None) -> web.Application:
    # Imported here: the route modules use this module's keys and helpers.
    from gateways import api_command_os, api_commands, api_core, api_docs, api_programs, console, openapi, webhooks
    from gateways.console import cookie_auth_middleware
    from gateways.voice import routes as voice_routes

    # The console's pages carry the token in a cookie: its middleware turns it into the bearer
    # header (for `/console` routes only) before the token is checked.
    app = web.Application(middlewares=[_access_log, _errors, cookie_auth_middleware, _authenticate])
    app[STORE] = store
    app[SETTINGS] = settings
    app.router.add_get("/health", health)
    api_programs.add_routes(app)
    api_command_os.add_routes(app, env)
    api_commands.add_routes(app)
    api_core.add_routes(app, env)
    console.add_routes(app, env)  # last: it ends with a catch-all for the console's own 404 page
    openapi.add_routes(app)
    assert api_docs  # imported for the routes it documents
    webhooks.add_routes(app, env)
    voice_routes.add_routes(app, env)
    return app


def _base_url(host: str, port: int) -> str:
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


@contextlib.asynccontextmanager
async def serve_http(
    store: PostgresEventStore,
    settings: Settings,
    *,
    host: str | None = None,
    port: int | None = None,
    env: Mapping[str, str] | None = None,
) -> AsyncIterator[str]:
    """Serve the app on host:port (settings' by default; port 0 picks a free one); yields the base URL."""
    host = settings.http_host if host is None else host
    port = settings.http_port if port is None else port
    # aiohttp's access log is off (ours above leaves the headers out); open requests get 5 s at the end.
    runner = web.AppRunner(create_app(store, settings, env), access_log=None, shutdown_timeout=5.0)
    await runner.setup()
    try:
        site = web.TCPSite(runner, host, port)
        try:
            await site.start()
        except OSError as exc:
            raise ConfigError(
                f"cannot serve HTTP on {host}:{port}: {exc.strerror or exc}; set TOUCHLINE_HTTP_HOST / "
                "TOUCHLINE_HTTP_PORT to an address that is free (port 0 picks one)"
            ) from None
        bound = runner.addresses[0]
        yield _base_url(host or str(bound[0]), int(bound[1]))
    finally:
        with anyio.CancelScope(shield=True):
            await runner.cleanup()


async def run_http(
    store: PostgresEventStore, settings: Settings, *, task_status: TaskStatus[str] = anyio.TASK_STATUS_IGNORED
) -> None:
    """Serve until cancelled, for a task group: `url = await tg.start(run_http, store, settings)`."""
    async with serve_http(store, settings) as url:
        task_status.started(url)
        await anyio.sleep_forever()
