"""Security properties over the whole app, real PostgreSQL underneath:

1. every route in the route table refuses a request without a valid token, except a short, named
   public list (each of which refuses in its own way: signatures, stream tokens, the login page);
2. another account's token sees nothing of an account and changes nothing in it;
3. secrets from the environment (and API tokens) never reach the logs, the event log, the read
   models or an HTTP answer;
4. the application's database role (`touchline_app`, migration 0004) cannot change the event log,
   and the append-only triggers refuse even its owner.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import hmac
import logging
import re
import uuid
from collections.abc import AsyncIterator, Iterator, MutableMapping
from datetime import UTC, datetime, timedelta
from typing import Any, Final
from urllib.parse import urlsplit, urlunsplit

import aiohttp
import anyio
import asyncpg
import msgspec
import pytest
import structlog
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from nats.aio.client import Client as NATS
from structlog.testing import capture_logs

from actors.access import ApiTokens, new_token
from actors.campaigns import Campaigns, StepSpec
from actors.clock import FakeClock
from actors.org import OrgSettings
from actors.programs import Programs
from events.catalog import LeadIngested, TouchRunScheduled, lead_stream, touch_stream
from events.postgres import PostgresEventStore, open_postgres_store
from events.settings import Settings
from events.store import NO_STREAM
from gateways.http import create_app, serve_http
from gateways.logs import configure_logging
from gateways.signatures import twilio_signature
from tests.actors.dispatch_support import NOON_MIAMI, Setup, engine, last_of
from tests.actors.support import relaying, start
from tests.gateways.providers.fake_servers import FakeProviders
from tests.projections.helpers import caught_up, every_projection, running

A: Final = uuid.UUID("00000000-0000-4000-8000-00000000a5a1")
B: Final = uuid.UUID("00000000-0000-4000-8000-00000000b5b2")

_PARAM: Final = re.compile(r"\{([^}:]+)(?::[^}]*)?\}")


def _routes(app: web.Application) -> list[tuple[str, str]]:
    """Every (method, canonical path) in the route table, in order, once each."""
    seen: dict[tuple[str, str], None] = {}
    for route in app.router.routes():
        resource = route.resource
        assert resource is not None, f"a route without a resource: {route}"
        seen[(route.method, resource.canonical)] = None
    return list(seen)


def _fill(path: str, values: dict[str, str] | None = None) -> str:
    """A concrete path for a route: each `{name}` replaced by a value (a fresh uuid by default)."""
    values = values or {}

    def one(m: re.Match[str]) -> str:
        name = m.group(1)
        if name in values:
            return values[name]
        if name == "key":
            return "craigslist"
        if name == "tail":
            return "nothing-here"
        return str(uuid.uuid4())

    return _PARAM.sub(one, path)


# --- 1. the route table --------------------------------------------------------------------------------------

# The only routes a request without a bearer token reaches (each checked below for how it refuses).
HEALTH: Final = frozenset(
    (m, p) for m in ("GET", "HEAD") for p in ("/health", "/healthz", "/api/openapi.json")
)  # fmt: skip
WEBHOOKS: Final = frozenset(
    {
        ("POST", "/webhooks/twilio/sms"),
        ("POST", "/webhooks/twilio/status"),
        ("POST", "/webhooks/twilio/voice"),
        ("POST", "/webhooks/telnyx/messaging"),
        ("POST", "/webhooks/telnyx/voice"),
        ("GET", "/webhooks/meta/whatsapp"),
        ("POST", "/webhooks/meta/whatsapp"),
        ("GET", "/webhooks/elastic"),
        ("POST", "/webhooks/elastic"),
    }
)
STREAMS: Final = frozenset({("GET", "/telnyx"), ("GET", "/twilio")})
LOGIN: Final = frozenset({("GET", "/console/login"), ("HEAD", "/console/login"), ("POST", "/console/login")})
PUBLIC: Final = HEALTH | WEBHOOKS | STREAMS | LOGIN
# Console routes that answer a script, so refuse with the app's JSON 401 instead of a redirect.
CONSOLE_JSON: Final = frozenset({"/console/events.json"})


async def _status(
    client: TestClient[web.Request, web.Application],
    method: str,
    path: str,
    headers: dict[str, str] | None = None,
    *,
    data: bytes | None = None,
) -> tuple[int, dict[str, str], str]:
    async with client.request(method, path, headers=headers or {}, data=data, allow_redirects=False) as response:
        return response.status, dict(response.headers), await response.text()


def _configured() -> dict[str, str]:
    """Every verifier configured, so a refusal is for the signature or token, not for a missing setting."""
    public = Ed25519PrivateKey.generate().public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    return {
        "TWILIO_ACCOUNT_SID": "AC" + uuid.uuid4().hex,
        "TWILIO_AUTH_TOKEN": uuid.uuid4().hex,
        "TELNYX_PUBLIC_KEY": base64.b64encode(public).decode(),
        "VOICE_GATEWAY_TOKEN": f"secret-{uuid.uuid4()}",
        "WHATSAPP_APP_SECRET": uuid.uuid4().hex,
        "WHATSAPP_VERIFY_TOKEN": uuid.uuid4().hex,
        "ELASTIC_EMAIL_WEBHOOK_TOKEN": uuid.uuid4().hex,
    }


@pytest.mark.parametrize("configured", [False, True], ids=["bare", "configured"])
async def test_every_route_outside_the_public_list_refuses_requests_without_a_valid_token(
    pg_store: PostgresEventStore, configured: bool
) -> None:
    app = create_app(pg_store, Settings(), _configured() if configured else {})
    routes = _routes(app)
    assert set(routes) >= PUBLIC, f"public routes that are gone (update the list): {sorted(PUBLIC - set(routes))}"
    bad_tokens = {
        "none": {},
        "empty": {"Authorization": ""},
        "basic": {"Authorization": "Basic dXNlcjpwdw=="},
        "malformed": {"Authorization": "Bearer tl_not-a-real-token"},
        "unknown": {"Authorization": f"Bearer {new_token()}"},
    }
    problems: list[str] = []
    checked: set[tuple[str, str]] = set()
    # The token read model is built, so an unknown token is unknown (not "not built yet": 503).
    async with running(pg_store, every_projection()) as workers, TestClient(TestServer(app)) as client:
        await caught_up(pg_store, workers)
        for method, canonical in routes:
            path = _fill(canonical)
            if (method, canonical) in HEALTH:
                status, _, _ = await _status(client, method, path)
                if status != 200:
                    problems.append(f"{method} {canonical}: public, answered {status} instead of 200")
            elif (method, canonical) in WEBHOOKS:
                for name, headers in {
                    "unsigned": {},
                    "forged": {
                        "X-Twilio-Signature": "Zm9yZ2Vk",
                        "telnyx-signature-ed25519": "Zm9yZ2Vk",
                        "telnyx-timestamp": str(int(datetime.now(UTC).timestamp())),
                        "X-Hub-Signature-256": "sha256=" + "0" * 64,
                    },
                    "a bearer token is no signature": {"Authorization": f"Bearer {new_token()}"},
                }.items():
                    form = b"MessageSid=SM1&From=%2B13055550100&To=%2B13055550199"
                    body = form if "twilio" in canonical else b"{}"
                    if "meta" in canonical and method == "GET":  # a subscription check: the token is in the query
                        path = f"{_fill(canonical)}?hub.mode=subscribe&hub.challenge=1&hub.verify_token=guess"
                    if "elastic" in canonical:  # a secret in the URL instead of a signature
                        path = f"{_fill(canonical)}?token=guess&status=Unsubscribed&postback={uuid.uuid4()}"
                    status, _, _ = await _status(client, method, path, headers, data=None if method == "GET" else body)
                    if status != 403:
                        problems.append(f"{method} {canonical} ({name}): answered {status}, not 403")
            elif (method, canonical) in STREAMS:
                for query in ("", "?token=", "?token=forged.token"):
                    status, _, _ = await _status(client, method, path + query)
                    if status != 401:
                        problems.append(f"{method} {canonical}{query}: answered {status}, not 401")
            elif (method, canonical) in LOGIN:
                # The form is served to anyone; posting it without a (valid) token logs no one in.
                for name, headers in bad_tokens.items():
                    status, got, _ = await _status(client, method, path, headers)
                    wanted = (200,) if method != "POST" else (400, 401, 403)
                    if status not in wanted or "touchline_token=tl_" in got.get("Set-Cookie", ""):
                        problems.append(f"{method} {canonical} ({name}): the login page answered {status}")
            elif canonical.startswith(("/webhooks/", "/console/login", "/console/static")):
                problems.append(
                    f"{method} {canonical}: a new route where public ones live; add it to this test's public "
                    "list with how it refuses, or guard it"
                )
                continue
            elif canonical.startswith("/console") and canonical not in CONSOLE_JSON:
                for name, headers in {
                    **bad_tokens,
                    "unknown cookie": {"Cookie": f"touchline_token={new_token()}"},
                }.items():
                    status, got, _ = await _status(client, method, path, headers)
                    location = got.get("Location", "")
                    if status not in (302, 303) or not location.startswith("/console/login"):
                        problems.append(f"{method} {canonical} ({name}): {status} to {location!r}, not the login page")
            else:
                for name, headers in bad_tokens.items():
                    status, _, text = await _status(client, method, path, headers)
                    if status != 401:
                        problems.append(f"{method} {canonical} ({name} token): answered {status}, not 401")
                    elif "tl_not-a-real-token" in text:
                        problems.append(f"{method} {canonical}: the 401 echoes the token")
            checked.add((method, canonical))
    assert not problems, "\n".join(problems)
    assert checked == set(routes), f"routes not checked: {sorted(set(routes) - checked)}"
    # The walk covered the API and the console, not an empty table.
    assert {("GET", "/api/campaigns"), ("POST", "/api/command-os"), ("GET", "/console/leads")} <= checked


# --- 2. accounts are isolated --------------------------------------------------------------------------------


class Client:
    """The served app with every read model caught up before each request."""

    def __init__(self, store: PostgresEventStore, session: aiohttp.ClientSession, workers: list[Any], url: str) -> None:
        self.store, self.session, self.workers, self.url = store, session, workers, url
        self.answers: list[str] = []

    async def token(self, account_id: uuid.UUID) -> str:
        _, token = await ApiTokens(self.store).issue(account_id, "security")
        return token

    async def request(
        self, method: str, path: str, token: str | None, *, body: Any = None, params: dict[str, str] | None = None
    ) -> tuple[int, str]:
        await caught_up(self.store, self.workers)
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        data = msgspec.json.encode(body) if body is not None else None
        async with self.session.request(
            method, path, headers=headers, data=data, params=params, allow_redirects=False
        ) as response:
            text = await response.text()
            self.answers.append(f"{response.status} {dict(response.headers)} {text}")
            return response.status, text


@contextlib.asynccontextmanager
async def serve(store: PostgresEventStore, env: dict[str, str] | None = None) -> AsyncIterator[Client]:
    async with (
        running(store, every_projection()) as workers,
        serve_http(store, Settings(), host="127.0.0.1", port=0, env=env or {}) as url,
        aiohttp.ClientSession(url) as session,
    ):
        yield Client(store, session, workers, url)


async def _streams_of(store: PostgresEventStore, account_id: uuid.UUID) -> dict[str, int]:
    rows = await store.pool.fetch(
        "select stream_id, max(version) as v from touchline.events where account_id = $1 group by 1", account_id
    )
    return {r["stream_id"]: r["v"] for r in rows}


async def test_another_accounts_token_sees_nothing_and_changes_nothing(pg_store: PostgresEventStore) -> None:
    tag = uuid.uuid4().hex[:8]
    campaign_key = f"alfa_secreta_{tag}"
    business = f"Autos Alfa {tag}"
    phone = f"+1305{uuid.uuid4().int % 10**7:07d}"
    await OrgSettings(pg_store).update(A, business_name=business, contact_email=f"alfa-{tag}@example.com")
    campaigns = Campaigns(pg_store)
    created = await campaigns.create(
        A, campaign_key=campaign_key, name=f"Alfa {tag}", steps=[StepSpec(step=1, channel="sms")]
    )
    await campaigns.activate(A, created.campaign_id)
    campaign_id = created.campaign_id
    lead_id = uuid.uuid4()
    await pg_store.append(
        lead_stream(lead_id),
        [
            LeadIngested(
                lead_id=lead_id, account_id=A, source="craigslist", external_id=f"cl-{tag}", city="miami",
                title=f"2014 Honda Civic {tag}", phone=phone, name=f"Vendedor {tag}",
            )
        ],
        expected_version=NO_STREAM,
    )  # fmt: skip
    touch_id = uuid.uuid4()
    await pg_store.append(
        touch_stream(touch_id),
        [
            TouchRunScheduled(
                touch_run_id=touch_id, account_id=A, lead_id=lead_id, campaign_id=campaign_id, step=1,
                channel="sms", scheduled_for=datetime.now(UTC) + timedelta(hours=1),
            )
        ],
        expected_version=NO_STREAM,
    )  # fmt: skip
    program = await Programs(pg_store).start(A, "craigslist", "miami", override_routing=True)
    assert program.discover_task_id is not None
    a_event_ids = [str(r["event_id"]) for r in await pg_store.pool.fetch(
        "select event_id from touchline.events where account_id = $1", A
    )]  # fmt: skip
    markers = {
        "account A": str(A),
        "campaign id": str(campaign_id),
        "campaign key": campaign_key,
        "lead id": str(lead_id),
        "lead phone": phone,
        "lead phone digits": phone.removeprefix("+1"),
        "business name": business,
        "touch run id": str(touch_id),
        "discover task id": str(program.discover_task_id),
        **{f"event {i}": e for i, e in enumerate(a_event_ids)},
    }

    def leaks(text: str, asked: str = "") -> list[str]:
        """A's markers in an answer, but for an id the request named itself (a 404 may echo it)."""
        return [name for name, value in markers.items() if value in text and value not in asked]

    async with serve(pg_store) as api:
        token_a, token_b = await api.token(A), await api.token(B)
        # A's own token does see its data (so the markers are findable where they are shown).
        status, text = await api.request("GET", "/api/campaigns", token_a)
        assert status == 200 and campaign_key in text
        status, text = await api.request("GET", f"/api/leads/{lead_id}", token_a)
        assert status == 200 and phone in text

        app = create_app(pg_store, Settings(), {})
        routes = _routes(app)
        before = await _streams_of(pg_store, A)
        problems: list[str] = []
        for method, canonical in routes:
            if method != "GET" or (method, canonical) in PUBLIC or canonical == "/console/{tail}":
                continue
            ids = {"lead_id": str(lead_id), "id": str(lead_id), "campaign_id": str(campaign_id)}
            path = _fill(canonical, ids)
            status, text = await api.request(method, path, token_b)
            if path != canonical and "{key}" not in canonical:
                if status != 404:
                    problems.append(f"GET {path} with B's token: {status}, not 404")
            elif status != 200 and not (status == 303 and canonical in ("/console", "/console/")):
                problems.append(f"GET {path} with B's token: {status}, not 200")
            if found := leaks(text, path):
                problems.append(f"GET {path} with B's token shows A's {', '.join(found)}")

        # Asking for A's things by name, with B's token.
        for params in (
            {"stream": f"campaign-{campaign_id}"},
            {"stream": lead_stream(lead_id)},
            {"correlation_id": str(campaign_id)},
            {"type": "LeadIngested,CampaignCreated,ProgramStarted"},
        ):
            status, text = await api.request("GET", "/api/audit", token_b, params=params)
            assert status == 200, text
            assert not leaks(text), (params, leaks(text))
        status, text = await api.request("GET", "/api/audit", token_b, params={"limit": "500"})
        assert status == 200, text
        audit = msgspec.json.decode(text)
        events = audit["events"] if isinstance(audit, dict) else audit
        assert events, "B's own token issue is in B's audit log"
        assert all(str(A) not in msgspec.json.encode(e).decode() for e in events)
        assert not leaks(text)
        for search in (phone, campaign_key, str(lead_id)):
            status, text = await api.request("GET", "/api/leads", token_b, params={"q": search})
            assert not leaks(text), (search, status, text)

        # Writes naming A's campaign: 404, nothing appended anywhere.
        head = await pg_store.head_position()
        for action in ("activate", "pause"):
            status, text = await api.request("POST", f"/api/campaigns/{campaign_id}/{action}", token_b)
            if status != 404:
                problems.append(f"POST /api/campaigns/<A's>/{action} with B's token: {status}, not 404")
            assert not leaks(text, str(campaign_id)), text
        assert await pg_store.head_position() == head, "a refused write appended something"
        # Account-wide writes with B's token: B's own streams only.
        await api.request("POST", "/api/campaigns/pause-all", token_b)
        await api.request("POST", "/api/programs/craigslist/stop", token_b)
        await api.request("PUT", "/api/settings", token_b, body={"business_name": "Beta", "contact_email": "b@b.io"})
        await api.request("POST", "/api/command-os", token_b, body={"text": "pause all campaigns"})
        await api.request("POST", f"/console/campaigns/{campaign_id}/toggle", token_b)
        await caught_up(pg_store, api.workers)
        assert await _streams_of(pg_store, A) == before, "B's requests changed A's streams"
        assert not problems, "\n".join(problems)
        # And A's campaign is still active, as A sees it.
        status, text = await api.request("GET", "/api/campaigns", token_a)
        campaign = next(c for c in msgspec.json.decode(text)["campaigns"] if c["campaign_id"] == str(campaign_id))
        assert campaign["is_active"] is True


# --- 3. secrets stay secret ----------------------------------------------------------------------------------


@contextlib.contextmanager
def printed_logs() -> Iterator[None]:
    """The app's own logging setup (console lines on stderr, every level)."""
    configure_logging(json=False, level="debug")
    try:
        yield
    finally:
        structlog.reset_defaults()


async def _dispatched(store: PostgresEventStore, touch: uuid.UUID, *, within: float = 15.0) -> str:
    """The touch's last event type once it is settled (dispatched, failed, skipped or dead-lettered)."""
    with anyio.fail_after(within):
        while True:
            last = await last_of(store, touch)
            if last.type in ("TouchRunDispatched", "TouchRunFailed", "TouchRunSkipped", "TouchRunDeadLettered"):
                return last.type
            await anyio.sleep(0.05)


async def _everything_stored(store: PostgresEventStore) -> str:
    """Every event (decoded, and as its raw row) and every row of every table, as text."""
    parts: list[str] = []
    async for batch in store.read_all(0):
        parts.extend(msgspec.json.encode(e.event).decode() + repr(e) for e in batch)
    tables = await store.pool.fetch(
        "select table_schema, table_name from information_schema.tables "
        "where table_schema not in ('pg_catalog', 'information_schema') and table_type = 'BASE TABLE'"
    )
    for t in tables:
        rows = await store.pool.fetch(f'select r::text as row from "{t["table_schema"]}"."{t["table_name"]}" r')
        parts.extend(r["row"] for r in rows)
    return "\n".join(parts)


async def _http_flow(api: Client, env: dict[str, str], token: str, url: str) -> None:
    """A token in use, the OpenAI debug route, forged and signed webhooks, a refused media stream."""
    status, _ = await api.request("GET", "/api/campaigns", token)
    assert status == 200
    status, text = await api.request("GET", "/api/debug/openai-env", token)
    assert status == 200 and "OPENAI_API_KEY" in text
    await api.request("GET", "/api/settings", token)
    await api.request("GET", "/api/audit", token, params={"limit": "500"})
    await api.request("GET", "/metrics", token)
    status, _ = await api.request("GET", "/api/leads", token[:-4] + "XXXX")  # unknown, like the real one
    assert status == 401
    form = [("MessageSid", f"SM{uuid.uuid4().hex}"), ("From", "+13055550123"), ("To", env["TWILIO_FROM_NUMBER"])]
    form.append(("Body", "me interesa"))
    body = "&".join(f"{k}={v.replace('+', '%2B')}" for k, v in form).encode()
    for signature in ("Zm9yZ2Vk", twilio_signature(env["TWILIO_AUTH_TOKEN"], url + "/webhooks/twilio/sms", form)):
        async with api.session.post(
            "/webhooks/twilio/sms",
            data=body,
            headers={"X-Twilio-Signature": signature, "Content-Type": "application/x-www-form-urlencoded"},
        ) as response:
            api.answers.append(f"{response.status} {dict(response.headers)} {await response.text()}")
            assert response.status == (403 if signature == "Zm9yZ2Vk" else 200), api.answers[-1]
    async with api.session.post(
        "/webhooks/telnyx/messaging",
        data=b'{"data": {"event_type": "message.received"}}',
        headers={"telnyx-signature-ed25519": "Zm9yZ2Vk", "telnyx-timestamp": "1"},
    ) as response:
        api.answers.append(f"{response.status} {await response.text()}")
        assert response.status == 403
    notification = msgspec.json.encode(
        {"object": "whatsapp_business_account", "entry": [{"id": "1", "changes": [{"field": "messages", "value": {}}]}]}
    )
    digest = hmac.new(env["WHATSAPP_APP_SECRET"].encode(), notification, hashlib.sha256).hexdigest()
    for signature in ("sha256=" + "0" * 64, f"sha256={digest}"):
        async with api.session.post(
            "/webhooks/meta/whatsapp", data=notification, headers={"X-Hub-Signature-256": signature}
        ) as response:
            api.answers.append(f"{response.status} {dict(response.headers)} {await response.text()}")
            assert response.status == (200 if digest in signature else 403), api.answers[-1]
    for token in ("guess", env["ELASTIC_EMAIL_WEBHOOK_TOKEN"]):  # ElasticEmail: the secret is in the URL
        query = {"token": token, "status": "Opened", "postback": "not-ours", "to": "a@example.com"}
        async with api.session.get("/webhooks/elastic", params=query) as response:
            api.answers.append(f"{response.status} {dict(response.headers)} {await response.text()}")
            assert response.status == (403 if token == "guess" else 200), api.answers[-1]
    async with api.session.get(f"/twilio?token={env['VOICE_GATEWAY_TOKEN']}x") as response:
        api.answers.append(f"{response.status} {await response.text()}")
        assert response.status == 401


async def test_secrets_never_reach_logs_events_read_models_or_answers(
    pg_store: PostgresEventStore,
    nc: NATS,
    settings: Settings,
    capfd: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    async with FakeProviders(callbacks=False) as fake:
        env = {
            **fake.env(),
            "PROVIDER_TIMEOUT_S": "2",
            "OPENAI_API_KEY": f"secret-{uuid.uuid4()}",
            "VOICE_GATEWAY_TOKEN": f"secret-{uuid.uuid4()}",
            "TOUCHLINE_DEFAULT_ACCOUNT": str(A),
        }
        secret_names = (
            "TWILIO_AUTH_TOKEN",
            "TELNYX_API_KEY",
            "OPENAI_API_KEY",
            "VOICE_GATEWAY_TOKEN",
            "ELASTIC_EMAIL_API_KEY",
            "WHATSAPP_ACCESS_TOKEN",
            "WHATSAPP_APP_SECRET",
            "WHATSAPP_VERIFY_TOKEN",
            "ELASTIC_EMAIL_WEBHOOK_TOKEN",
        )
        secrets = {name: env[name] for name in secret_names}
        assert len(set(secrets.values())) == len(secrets) and all(len(v) >= 20 for v in secrets.values())
        sandbox_env = {k: env[k] for k in ("OPENAI_API_KEY", "VOICE_GATEWAY_TOKEN")}

        setup = Setup(pg_store)
        await setup.campaign(StepSpec(step=1, channel="sms"), StepSpec(step=2, channel="email"))
        tokens: list[str] = []
        structured: list[MutableMapping[str, Any]] = []
        outcomes: list[str] = []
        async with serve(pg_store, env) as api:
            for mode in ("printed", "captured"):
                with contextlib.ExitStack() as stack:
                    if mode == "printed":
                        stack.enter_context(printed_logs())
                    else:
                        structured = stack.enter_context(capture_logs())
                    token = await api.token(A)
                    tokens.append(token)
                    await _http_flow(api, env, token, api.url)
                    lead = await setup.lead(f"+1305555{uuid.uuid4().int % 10**4:04d}")
                    clock = FakeClock(NOON_MIAMI)
                    async with relaying(pg_store, nc, settings) as tg:
                        await start(tg, engine(env, worker_id=f"real-{mode}"), pg_store, nc, settings, clock=clock)
                        sms = await setup.touch(lead)
                        email = await setup.touch(lead, "email", step=2)
                        outcomes += [await _dispatched(pg_store, sms), await _dispatched(pg_store, email)]
                    async with relaying(pg_store, nc, settings) as tg:
                        sandbox = engine(sandbox_env, worker_id=f"sandbox-{mode}")
                        await start(tg, sandbox, pg_store, nc, settings, clock=clock)
                        outcomes.append(await _dispatched(pg_store, await setup.touch(lead)))
                    await caught_up(pg_store, api.workers)
        stored = await _everything_stored(pg_store)
        assert fake.sent("twilio"), "the SMS went out through the fake Twilio"

    assert outcomes == ["TouchRunDispatched"] * 6, outcomes
    sandboxed = [e.event for b in [x async for x in pg_store.read_all(0)] for e in b if e.type == "TouchRunDispatched"]
    assert sorted(bool(getattr(e, "sandbox", False)) for e in sandboxed) == [False] * 4 + [True] * 2
    printed = capfd.readouterr()
    texts = {
        "printed logs (stdout)": printed.out,
        "printed logs (stderr)": printed.err,
        "stdlib logging": caplog.text + "".join(repr(r.__dict__) for r in caplog.records),
        "structured logs": repr(structured),
        "the event log and every table": stored,
        "HTTP answers": "\n".join(api.answers),
    }
    assert "http_request" in printed.err and any(e.get("event") == "http_request" for e in structured)
    assert "TouchRunDispatched" in stored
    hidden = {**secrets, **{f"API token {i}": t for i, t in enumerate(tokens)}}

    def found_in(texts: dict[str, str]) -> list[str]:
        return [
            f"{name} in {where}" for where, text in texts.items() for name, value in hidden.items() if value in text
        ]

    # The search finds them where they are (the environment, the tokens as issued) ...
    assert len(found_in({"env": repr(env) + repr(tokens)})) == len(hidden)
    # ... and nowhere the application writes.
    assert not found_in(texts), found_in(texts)


# --- 4. the application's database role ----------------------------------------------------------------------


def _as_user(dsn: str, user: str, password: str) -> str:
    parts = urlsplit(dsn)
    host = parts.netloc.rpartition("@")[2]
    return urlunsplit(parts._replace(netloc=f"{user}:{password}@{host}"))


_APPEND_DISCOVER: Final = "select lead_hunter.enqueue_craigslist_discover_v1($1, 'miami')"


async def test_the_app_role_appends_but_cannot_change_the_log_and_the_triggers_refuse_even_the_owner(
    pg_store: PostgresEventStore, database_url: str
) -> None:
    assert await pg_store.pool.fetchval("select rolcanlogin from pg_roles where rolname = 'touchline_app'") is False
    pool = pg_store.pool
    async with pool.acquire() as conn:
        # As touchline_app (SET ROLE, as a member login role would be): appends work ...
        async with conn.transaction():
            await conn.execute("set local role touchline_app")
            assert await conn.fetchval("select current_user") == "touchline_app"
            task = await conn.fetchval(_APPEND_DISCOVER, A)
            assert await conn.fetchval("select count(*) from touchline.events where data->>'task_id' = $1", str(task))
        async with conn.transaction():  # sealing reads below the oldest running transaction: a new one
            await conn.execute("set local role touchline_app")
            assert await conn.fetchval("select touchline.seal()") is not None
        # ... and every change to the log is refused for want of the privilege.
        for statement in (
            "update touchline.events set data = '{}'::jsonb",
            "delete from touchline.events",
            "truncate touchline.events",
            "update touchline.seals set hash = ''::bytea",
            "delete from touchline.seals",
            "truncate touchline.seals",
            "alter table touchline.events disable trigger events_no_update",
            "drop trigger events_no_update on touchline.events",
        ):
            async with conn.transaction():
                await conn.execute("set local role touchline_app")
                with pytest.raises(asyncpg.InsufficientPrivilegeError) as refused:
                    await conn.execute(statement)
            assert "append-only" not in str(refused.value), statement  # refused before any trigger
            assert re.search(r"permission denied|must be owner", str(refused.value)), (statement, refused.value)

        # The owner has the privileges, and the append-only triggers refuse it all the same.
        assert await conn.fetchval("select count(*) from touchline.seals") >= 1
        for statement in (
            "update touchline.events set data = '{}'::jsonb",
            "delete from touchline.events",
            "truncate touchline.events",
            "update touchline.seals set hash = ''::bytea",
            "delete from touchline.seals",
            "truncate touchline.seals",
        ):
            with pytest.raises(asyncpg.InsufficientPrivilegeError, match="append-only"):
                await conn.execute(statement)
        # Even with triggers switched to replica mode ("always" triggers still fire; superusers only).
        is_super = await conn.fetchval("select rolsuper from pg_roles where rolname = current_user")
        if is_super:
            async with conn.transaction():
                await conn.execute("set local session_replication_role = replica")
                with pytest.raises(asyncpg.InsufficientPrivilegeError, match="append-only"):
                    await conn.execute("delete from touchline.events")

    # The documented use: a LOGIN role that is a member of touchline_app runs the event store.
    login = f"tl_app_test_{uuid.uuid4().hex[:10]}"
    password = uuid.uuid4().hex
    await pool.execute(f"create role {login} login password '{password}' in role touchline_app")
    try:
        async with open_postgres_store(_as_user(database_url, login, password)) as app_store:
            lead_id = uuid.uuid4()
            ingested = LeadIngested(
                lead_id=lead_id, account_id=A, source="craigslist", external_id="cl-role", city="miami",
                phone="+13055550142",
            )  # fmt: skip
            await app_store.append(lead_stream(lead_id), [ingested], expected_version=NO_STREAM)
            assert [e.type for e in await app_store.read_stream(lead_stream(lead_id))] == ["LeadIngested"]
            with pytest.raises(asyncpg.InsufficientPrivilegeError, match="permission denied"):
                await app_store.pool.execute("delete from touchline.events")
            with pytest.raises(asyncpg.InsufficientPrivilegeError, match="permission denied"):
                await app_store.pool.execute("update touchline.events set data = '{}'::jsonb")
    finally:
        await pool.execute(f"drop role if exists {login}")
    assert await pg_store.pool.fetchval(
        "select count(*) from touchline.events where stream_id = $1", lead_stream(lead_id)
    )
