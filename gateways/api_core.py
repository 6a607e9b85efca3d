"""The core API: campaigns, leads, org settings, runtime status, next actions, the audit log, metrics.

Every route answers for the token's account (`request[ACCOUNT]`) and no other: another account's
campaign or lead is a 404 worded exactly like one that does not exist. Reads come from the read
models, each answer from one read-only snapshot so its parts agree, except where the log is the
truth: the settings (folded from the org stream by `OrgSettings`), a lead's event history and the
audit query. Commands go through the actors, which decide from the log; what they refuse is a 400
naming the field (`CommandRejected`, mapped by the middleware of `gateways.http`).

Lists are paged: `limit`/`offset` with `next_offset` (null on the last page) over the read
models; the audit query by position (`after` = the last position seen, `next_after`), below the
log's safe horizon so that an event committed late is never skipped by a reader paging on.
"""

from __future__ import annotations

import contextlib
import os
import re
from collections.abc import AsyncIterator, Mapping
from datetime import UTC, datetime
from typing import Any, Final, TypeVar, get_args
from uuid import UUID

import asyncpg
import msgspec
from aiohttp import web

from actors.campaigns import Campaigns, CampaignState, StepSpec
from actors.org import OrgSettings, OrgState, fold_org
from events.catalog import LeadgenRouting, lead_stream, org_stream
from events.catalog.lead import LeadStatus
from events.errors import CommandRejected, ConcurrencyError
from events.memory import InMemoryEventStore
from events.postgres import PostgresEventStore
from events.store import NO_STREAM
from gateways.http import ACCOUNT, STORE, HttpError, health, json_response, read_json
from gateways.voice.settings import openai_key
from projections.model import Conn

T = TypeVar("T")

# The environment `/api/debug/openai-env` describes (os.environ unless add_routes was given one).
ENV: Final[web.AppKey[Mapping[str, str]]] = web.AppKey("api_core_env")
# Set once the routes are added: adding them twice is a no-op rather than a duplicate-route error.
ROUTES_ADDED: Final = web.AppKey("api_core_routes_added", bool)

LEADS_LIMIT: Final = (50, 200)  # default, most
NEXT_ACTIONS_LIMIT: Final = (50, 200)
AUDIT_LIMIT: Final = (100, 500)
MAX_OFFSET: Final = 1_000_000_000
MAX_POSITION: Final = 2**63 - 1

LEAD_STATUSES: Final = frozenset(get_args(LeadStatus))
TOUCH_RUN_STATUSES: Final = (
    "scheduled",
    "claimed",
    "dispatched",
    "retry_scheduled",
    "skipped",
    "failed",
    "dead_letter",
)
OPENAI_KEY_VARS: Final = ("OPENAI_API_KEY", "OPEN_AI_KEY", "OPEN_API_KEY")  # the lookup's order
OPENAI_VARS: Final = (*OPENAI_KEY_VARS, "OPENAI_BASE_URL", "OPENAI_TEXT_MODEL")
# A prefix is shown only of values at least this long, so that it never is the whole value.
PREFIX_MIN_LENGTH: Final = 8
PROMETHEUS_CONTENT_TYPE: Final = "text/plain; version=0.0.4; charset=utf-8"

# The log's safe horizon, as in events/postgres.py: only events below every running transaction.
_SAFE: Final = "tx_id < pg_snapshot_xmin(pg_current_snapshot())"
_DIGITS: Final = re.compile(r"[0-9]{1,19}")


# --- bodies ----------------------------------------------------------------------------------------


class StepBody(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    step: int
    channel: str
    delay_minutes: int = 0
    template: str | None = None


class CreateCampaignBody(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    campaign_key: str
    name: str
    steps: list[StepBody]
    activate: bool = False
    allow_concurrent: bool = False


class ReasonBody(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    reason: str | None = None


class RoutingBody(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """LeadGen routing; a field left out keeps its value."""

    dealer_address: str | msgspec.UnsetType | None = msgspec.UNSET
    radius_miles: int | msgspec.UnsetType = msgspec.UNSET
    city_fallback: str | msgspec.UnsetType | None = msgspec.UNSET
    active: bool | msgspec.UnsetType = msgspec.UNSET


class SettingsBody(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """The onboarding settings; a field left out keeps its value, `daily_caps` and `senders` are replaced whole."""

    business_name: str | msgspec.UnsetType = msgspec.UNSET
    contact_email: str | msgspec.UnsetType = msgspec.UNSET
    contact_phone: str | msgspec.UnsetType | None = msgspec.UNSET
    contact_whatsapp: str | msgspec.UnsetType | None = msgspec.UNSET
    vertical: str | msgspec.UnsetType = msgspec.UNSET
    leadgen_routing: RoutingBody | msgspec.UnsetType = msgspec.UNSET
    daily_caps: dict[str, int] | msgspec.UnsetType = msgspec.UNSET
    senders: dict[str, str] | msgspec.UnsetType = msgspec.UNSET  # channel → the account's own sender


_IDENTITY: Final = ("business_name", "contact_email", "contact_phone", "contact_whatsapp", "vertical")


# --- request helpers -------------------------------------------------------------------------------


@contextlib.asynccontextmanager
async def _snapshot(request: web.Request) -> AsyncIterator[Conn]:
    """One read-only snapshot: every query of an answer sees the same state."""
    async with request.app[STORE].pool.acquire() as conn, conn.transaction(isolation="repeatable_read", readonly=True):
        yield conn


def _plain(record: asyncpg.Record) -> dict[str, Any]:
    """A row as a JSON object; jsonb (raw JSON bytes on these connections) passed through as it is."""
    return {k: msgspec.Raw(v) if isinstance(v, bytes) else v for k, v in record.items()}


def _only(request: web.Request, allowed: tuple[str, ...]) -> None:
    """400 for a query parameter the route does not know (a typo would otherwise filter nothing)."""
    for name in request.query:
        if name not in allowed:
            known = ", ".join(allowed) or "none"
            raise HttpError(400, f"unknown query parameter {name!r}; this route takes: {known}", field=name)


def _param(request: web.Request, name: str) -> str | None:
    """A single-valued query parameter, trimmed; absent or empty is None."""
    values = request.query.getall(name, [])
    if len(values) > 1:
        raise HttpError(400, f"{name} is given {len(values)} times: give it once", field=name)
    value = values[0].strip() if values else ""
    return value or None


def _int_param(request: web.Request, name: str, *, default: int, low: int, high: int) -> int:
    raw = _param(request, name)
    if raw is None:
        return default
    if not _DIGITS.fullmatch(raw.removeprefix("-")):
        raise HttpError(400, f"{name} must be a whole number from {low} to {high}, got {raw!r}", field=name)
    value = int(raw)
    if not low <= value <= high:
        raise HttpError(400, f"{name} must be from {low} to {high}, got {value}", field=name)
    return value


def _page(request: web.Request, limits: tuple[int, int]) -> tuple[int, int]:
    default, most = limits
    limit = _int_param(request, "limit", default=default, low=1, high=most)
    return limit, _int_param(request, "offset", default=0, low=0, high=MAX_OFFSET)


def _uuid(raw: str, field: str) -> UUID:
    try:
        return UUID(raw.strip())
    except ValueError:
        raise HttpError(400, f"{field} must be a UUID, e.g. 3f2b8c1e-…, got {raw!r}", field=field) from None


def _time_param(request: web.Request, name: str) -> datetime | None:
    """An ISO 8601 time (a date alone is its midnight; without an offset, UTC)."""
    raw = _param(request, name)
    if raw is None:
        return None
    text = raw
    if "T" in text and " " in text:
        text = text.replace(" ", "+")  # an unescaped `+00:00` arrives as ` 00:00`
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        raise HttpError(
            400, f"{name} must be an ISO 8601 time, e.g. 2025-01-31T09:30:00Z, got {raw!r}", field=name
        ) from None
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


def _next_offset(rows: list[asyncpg.Record], limit: int, offset: int) -> tuple[list[asyncpg.Record], int | None]:
    """The page (`limit + 1` rows were asked for) and where the next begins, None on the last."""
    return rows[:limit], (offset + limit if len(rows) > limit else None)


def _not_found(kind: str, ident: UUID, field: str) -> HttpError:
    return HttpError(404, f"no {kind} {ident} in this account", field=field)


# --- campaigns -------------------------------------------------------------------------------------

_CAMPAIGNS_SQL: Final = """
select id as campaign_id, campaign_key, name, is_active, status, allow_concurrent, steps,
       activated_at, paused_at, pause_reason, created_at, updated_at
  from public.campaigns
 where account_id = $1
 order by campaign_key, id
"""


def _campaign(state: CampaignState) -> dict[str, Any]:
    return {
        "campaign_id": state.campaign_id,
        "campaign_key": state.campaign_key,
        "name": state.name,
        "is_active": state.is_active,
        "status": "active" if state.is_active else "paused",
        "allow_concurrent": state.allow_concurrent,
        "steps": state.steps,
        "version": state.version,
    }


def _campaign_id(request: web.Request) -> UUID:
    return _uuid(request.match_info["campaign_id"], "campaign_id")


def _retry(exc: ConcurrencyError) -> HttpError:
    return HttpError(409, f"changed by someone else meanwhile ({exc.stream_id}): read it again and retry")


async def list_campaigns(request: web.Request) -> web.Response:
    async with _snapshot(request) as conn:
        rows = await conn.fetch(_CAMPAIGNS_SQL, request[ACCOUNT])
    return json_response({"campaigns": [_plain(r) for r in rows]})


async def create_campaign(request: web.Request) -> web.Response:
    body = await read_json(request, CreateCampaignBody)
    account_id = request[ACCOUNT]
    campaigns = Campaigns(request.app[STORE])
    steps = [
        StepSpec(step=s.step, channel=s.channel, delay_minutes=s.delay_minutes, template=s.template) for s in body.steps
    ]
    created = await campaigns.create(
        account_id, campaign_key=body.campaign_key, name=body.name, steps=steps, allow_concurrent=body.allow_concurrent
    )
    activated = False
    if body.activate:
        try:
            activated = await campaigns.activate(account_id, created.campaign_id, reason="activated at creation")
        except ConcurrencyError as exc:
            raise _retry(exc) from None
    state = await campaigns.get(account_id, created.campaign_id)
    return json_response({"campaign": _campaign(state), "activated": activated}, status=201)


async def _switch(request: web.Request, *, on: bool) -> web.Response:
    campaign_id = _campaign_id(request)
    body = await read_json(request, ReasonBody)
    campaigns = Campaigns(request.app[STORE])
    command = campaigns.activate if on else campaigns.pause
    try:
        changed = await command(request[ACCOUNT], campaign_id, reason=body.reason)
    except ConcurrencyError as exc:
        raise _retry(exc) from None
    return json_response(
        {"campaign_id": campaign_id, "changed": changed, "is_active": on, "status": "active" if on else "paused"}
    )


async def activate_campaign(request: web.Request) -> web.Response:
    """Switch a campaign on; `changed` is false when it was on already (nothing recorded)."""
    return await _switch(request, on=True)


async def pause_campaign(request: web.Request) -> web.Response:
    """Switch a campaign off; `changed` is false when it was off already (nothing recorded)."""
    return await _switch(request, on=False)


async def pause_all_campaigns(request: web.Request) -> web.Response:
    """Pause every running campaign of the account at once (one append, one correlation id)."""
    body = await read_json(request, ReasonBody)
    campaigns = Campaigns(request.app[STORE])
    try:
        if body.reason is None:
            paused = await campaigns.pause_all(request[ACCOUNT])
        else:
            paused = await campaigns.pause_all(request[ACCOUNT], reason=body.reason)
    except ConcurrencyError as exc:
        raise _retry(exc) from None
    return json_response({"paused": paused, "count": len(paused)})


# --- leads -----------------------------------------------------------------------------------------

_LEAD_COLUMNS: Final = """
       l.id as lead_id, l.source, l.external_id, l.status, l.lead_state, l.phone, l.email, l.name, l.title,
       l.price, l.country, l.city, l.url, l.body, l.attributes, l.neighborhood, l.latitude, l.longitude,
       l.posted_at, l.first_seen_at, l.invalid_channels, l.suppressed_at, l.suppression_reason,
       l.last_reply_at, l.last_reply_channel, l.created_at, l.updated_at, l.version"""

_LEADS_WHERE: Final = (
    "l.account_id = $1 and ($2::text is null or l.status = $2) and ($3::text is null or l.source = $3)"
)

_LEADS_SQL: Final = f"""
select {_LEAD_COLUMNS}
  from public.leads l
 where {_LEADS_WHERE}
 order by l.created_at desc, l.id desc
 limit $4 offset $5
"""

_LEADS_COUNT_SQL: Final = f"select count(*) from public.leads l where {_LEADS_WHERE}"

_LEAD_SQL: Final = f"select {_LEAD_COLUMNS} from public.leads l where l.id = $1 and l.account_id = $2"

_NEXT_ACTION_COLUMNS: Final = """
       n.lead_id, n.campaign_id, n.lead_state, n.priority_score, n.next_action, n.next_action_at,
       n.recommended_action, n.recommended_delay_minutes, n.recommended_channel, n.effective_channel"""

_LEAD_NEXT_ACTION_SQL: Final = f"""
select {_NEXT_ACTION_COLUMNS}
  from public.lead_next_action_view_v5 n
 where n.lead_id = $1 and n.account_id = $2
"""

_LEAD_TOUCH_RUNS_SQL: Final = """
select id as touch_run_id, campaign_id, step, channel, status, scheduled_for, scheduled_by, attempts,
       claimed_by, lease_until, provider, provider_message_id, sandbox, delivery_status, last_error,
       error_code, skip_reason, deferred_reason, dispatched_at, created_at, updated_at
  from public.touch_runs
 where lead_id = $1 and account_id = $2
 order by scheduled_for, step, id
"""

_LEAD_INBOX_SQL: Final = """
select direction, channel, body, occurred_at, touch_run_id, provider, delivery_status
  from public.inbox_events
 where lead_id = $1 and account_id = $2
 order by occurred_at, direction
"""

_LEAD_EVENTS_SQL: Final = """
select position, version, event_type as type, event_id, correlation_id, causation_id, recorded_at, data
  from touchline.events
 where stream_id = $1 and account_id = $2
 order by version
"""


async def list_leads(request: web.Request) -> web.Response:
    """The account's leads, newest first, optionally of one status and one source."""
    _only(request, ("status", "source", "limit", "offset"))
    status = _param(request, "status")
    if status is not None and status not in LEAD_STATUSES:
        known = ", ".join(sorted(LEAD_STATUSES))
        raise HttpError(400, f"unknown lead status {status!r}; use one of {known}", field="status")
    source = _param(request, "source")
    limit, offset = _page(request, LEADS_LIMIT)
    account_id = request[ACCOUNT]
    async with _snapshot(request) as conn:
        rows = await conn.fetch(_LEADS_SQL, account_id, status, source, limit + 1, offset)
        total = await conn.fetchval(_LEADS_COUNT_SQL, account_id, status, source)
    page, next_offset = _next_offset(rows, limit, offset)
    return json_response(
        {
            "leads": [_plain(r) for r in page],
            "total": total,
            "limit": limit,
            "offset": offset,
            "next_offset": next_offset,
        }
    )


async def lead_detail(request: web.Request) -> web.Response:
    """A lead, what to do next with it, its touch runs, its messages both ways and its stream's events."""
    lead_id = _uuid(request.match_info["lead_id"], "lead_id")
    account_id = request[ACCOUNT]
    async with _snapshot(request) as conn:
        lead = await conn.fetchrow(_LEAD_SQL, lead_id, account_id)
        if lead is None:
            raise _not_found("lead", lead_id, "lead_id")
        next_action = await conn.fetchrow(_LEAD_NEXT_ACTION_SQL, lead_id, account_id)
        touch_runs = await conn.fetch(_LEAD_TOUCH_RUNS_SQL, lead_id, account_id)
        inbox = await conn.fetch(_LEAD_INBOX_SQL, lead_id, account_id)
        events = await conn.fetch(_LEAD_EVENTS_SQL, lead_stream(lead_id), account_id)
    return json_response(
        {
            "lead": _plain(lead),
            "next_action": None if next_action is None else _plain(next_action),
            "touch_runs": [_plain(r) for r in touch_runs],
            "inbox": [_plain(r) for r in inbox],
            "events": [_plain(r) for r in events],
        }
    )


# --- settings --------------------------------------------------------------------------------------


def _settings(state: OrgState) -> dict[str, Any]:
    return {
        "account_id": state.account_id,
        "business_name": state.business_name,
        "contact_email": state.contact_email,
        "contact_phone": state.contact_phone,
        "contact_whatsapp": state.contact_whatsapp,
        "vertical": state.vertical,
        "leadgen_routing": state.leadgen_routing,
        "routing_active": state.routing_active,
        "daily_caps": state.daily_caps,
        "senders": state.senders,
        "version": state.version,
    }


def _rejected(exc: CommandRejected, prefix: str, strip: str = "") -> HttpError:
    """A refusal of an org command, its field named as the body names it."""
    inner = (exc.field or "").removeprefix(strip)
    field = f"{prefix}{inner}" if inner else (prefix.rstrip(".") or None)
    return HttpError(400, f"{field}: {exc.reason}" if field else str(exc), field=field)


def _or(value: T | msgspec.UnsetType, current: T) -> T:
    """What the body gives, or the current value when the body leaves the field out."""
    return current if isinstance(value, msgspec.UnsetType) else value


def _routing(current: LeadgenRouting | None, body: RoutingBody) -> LeadgenRouting:
    base = current or LeadgenRouting()
    return LeadgenRouting(
        dealer_address=_or(body.dealer_address, base.dealer_address),
        radius_miles=_or(body.radius_miles, base.radius_miles),
        city_fallback=_or(body.city_fallback, base.city_fallback),
        active=_or(body.active, base.active),
    )


async def _apply_settings(org: OrgSettings, state: OrgState, body: SettingsBody) -> None:
    """The body's sections as org commands, in order: identity, routing, daily caps, senders."""
    account_id = state.account_id
    if any(not isinstance(getattr(body, name), msgspec.UnsetType) for name in _IDENTITY):
        try:
            await org.update(
                account_id,
                business_name=_or(body.business_name, state.business_name) or "",
                contact_email=_or(body.contact_email, state.contact_email) or "",
                contact_phone=_or(body.contact_phone, state.contact_phone),
                contact_whatsapp=_or(body.contact_whatsapp, state.contact_whatsapp),
                vertical=_or(body.vertical, state.vertical),
            )
        except CommandRejected as exc:
            raise _rejected(exc, "") from None
    if not isinstance(body.leadgen_routing, msgspec.UnsetType):
        try:
            await org.set_routing(account_id, _routing(state.leadgen_routing, body.leadgen_routing))
        except CommandRejected as exc:
            raise _rejected(exc, "leadgen_routing.") from None
    if not isinstance(body.daily_caps, msgspec.UnsetType):
        try:
            await org.set_daily_caps(account_id, body.daily_caps)
        except CommandRejected as exc:
            raise _rejected(exc, "daily_caps.", strip="caps.") from None
    if not isinstance(body.senders, msgspec.UnsetType):
        try:
            await org.set_senders(account_id, body.senders)
        except CommandRejected as exc:
            raise _rejected(exc, "senders.") from None


async def get_settings(request: web.Request) -> web.Response:
    """The account's settings as its org stream says (never behind a read model)."""
    return json_response(_settings(await OrgSettings(request.app[STORE]).get(request[ACCOUNT])))


async def put_settings(request: web.Request) -> web.Response:
    """Change the settings the body names; all of it or nothing when any of it is refused."""
    body = await read_json(request, SettingsBody)
    if all(isinstance(getattr(body, name), msgspec.UnsetType) for name in SettingsBody.__struct_fields__):
        raise HttpError(
            400,
            "the body names nothing to change: send any of " + ", ".join(SettingsBody.__struct_fields__),
        )
    store: PostgresEventStore = request.app[STORE]
    account_id = request[ACCOUNT]
    history = await store.read_stream(org_stream(account_id))
    state = fold_org(account_id, [e.event for e in history])
    # Each section is its own command and append: run them all on a scratch copy of the org stream
    # first, so that a refusal of the last leaves the first unrecorded too.
    scratch = InMemoryEventStore()
    if history:
        await scratch.append(org_stream(account_id), [e.event for e in history], expected_version=NO_STREAM)
    await _apply_settings(OrgSettings(scratch), state, body)
    try:
        await _apply_settings(OrgSettings(store), state, body)
    except ConcurrencyError as exc:
        raise _retry(exc) from None
    return json_response(_settings(await OrgSettings(store).get(account_id)))


# --- runtime status, next actions ------------------------------------------------------------------

_RUNTIME_SQL: Final = """
select campaign_id, campaign_key, name, is_active, status, last_touch_run_at, touch_runs_24h,
       scheduled_24h, dispatched_24h, failed_24h, skipped_24h
  from public.v_campaign_runtime_status_v1
 where account_id = $1
 order by campaign_key, campaign_id
"""

_NEXT_ACTIONS_SQL: Final = f"""
select {_NEXT_ACTION_COLUMNS},
       l.source, l.status, l.city, l.title, l.name, l.phone
  from public.lead_next_action_view_v5 n
  join public.leads l on l.id = n.lead_id
 where n.account_id = $1
 order by n.priority_score desc, n.next_action_at nulls last, n.lead_id
 limit $2 offset $3
"""


async def runtime_status(request: web.Request) -> web.Response:
    """Each campaign's switch and its touch runs of the last 24 hours."""
    async with _snapshot(request) as conn:
        rows = await conn.fetch(_RUNTIME_SQL, request[ACCOUNT])
    return json_response({"campaigns": [_plain(r) for r in rows]})


async def next_actions(request: web.Request) -> web.Response:
    """The account's leads by what to do next, highest priority first (then soonest)."""
    _only(request, ("limit", "offset"))
    limit, offset = _page(request, NEXT_ACTIONS_LIMIT)
    async with _snapshot(request) as conn:
        rows = await conn.fetch(_NEXT_ACTIONS_SQL, request[ACCOUNT], limit + 1, offset)
    page, next_offset = _next_offset(rows, limit, offset)
    return json_response(
        {"next_actions": [_plain(r) for r in page], "limit": limit, "offset": offset, "next_offset": next_offset}
    )


# --- audit -----------------------------------------------------------------------------------------


async def audit(request: web.Request) -> web.Response:
    """The account's events in log order, filtered by stream, type(s), correlation and time."""
    _only(request, ("stream", "type", "correlation_id", "since", "until", "after", "limit"))
    where = ["account_id = $1", "position > $2", _SAFE]
    after = _int_param(request, "after", default=0, low=0, high=MAX_POSITION)
    args: list[Any] = [request[ACCOUNT], after]

    def condition(sql: str, value: Any) -> None:
        args.append(value)
        where.append(sql.format(f"${len(args)}"))

    if (stream := _param(request, "stream")) is not None:
        condition("stream_id = {}", stream)
    types = [t.strip() for raw in request.query.getall("type", []) for t in raw.split(",") if t.strip()]
    if types:
        condition("event_type = any({}::text[])", sorted(set(types)))
    if (correlation := _param(request, "correlation_id")) is not None:
        condition("correlation_id = {}", _uuid(correlation, "correlation_id"))
    since, until = _time_param(request, "since"), _time_param(request, "until")
    if since is not None and until is not None and until <= since:
        raise HttpError(400, f"until ({until.isoformat()}) must be after since ({since.isoformat()})", field="until")
    if since is not None:
        condition("recorded_at >= {}", since)
    if until is not None:
        condition("recorded_at < {}", until)
    default, most = AUDIT_LIMIT
    limit = _int_param(request, "limit", default=default, low=1, high=most)
    args.append(limit + 1)
    sql = (
        "select position, stream_id, version, event_id, event_type as type, correlation_id, causation_id, "
        f"recorded_at, data from touchline.events where {' and '.join(where)} order by position limit ${len(args)}"
    )
    rows = await request.app[STORE].pool.fetch(sql, *args)
    page = rows[:limit]
    next_after = page[-1]["position"] if len(rows) > limit else None
    return json_response({"events": [_plain(r) for r in page], "next_after": next_after})


# --- metrics, debug --------------------------------------------------------------------------------


def _metric(lines: list[str], name: str, kind: str, help_text: str, samples: list[tuple[str, int]]) -> None:
    lines.append(f"# HELP {name} {help_text}")
    lines.append(f"# TYPE {name} {kind}")
    lines.extend(f"{name}{labels} {value}" for labels, value in samples)


async def metrics(request: web.Request) -> web.Response:
    """Prometheus text: the log's size and head (the deployment's), and the token's account's counts."""
    account_id = request[ACCOUNT]
    async with _snapshot(request) as conn:
        events_total = await conn.fetchval("select count(*) from touchline.events")
        head = await conn.fetchval(
            f"select coalesce((select position from touchline.events where {_SAFE} order by position desc limit 1), 0)"
        )
        by_status = {
            r["status"]: r["n"]
            for r in await conn.fetch(
                "select status, count(*) as n from public.touch_runs where account_id = $1 group by status", account_id
            )
        }
        leads = await conn.fetchval("select count(*) from public.leads where account_id = $1", account_id)
        active = await conn.fetchval(
            "select count(*) from public.campaigns where account_id = $1 and is_active", account_id
        )
    statuses = [*TOUCH_RUN_STATUSES, *sorted(set(by_status) - set(TOUCH_RUN_STATUSES))]
    lines: list[str] = []
    _metric(
        lines, "touchline_events_total", "counter", "Events in the log (the whole deployment).", [("", events_total)]
    )
    _metric(
        lines,
        "touchline_log_head_position",
        "gauge",
        "Position of the last event below the log's safe horizon (the whole deployment).",
        [("", head)],
    )
    _metric(
        lines,
        "touchline_touch_runs",
        "gauge",
        "Touch runs of the token's account, by status.",
        [(f'{{status="{s}"}}', by_status.get(s, 0)) for s in statuses],
    )
    _metric(lines, "touchline_leads_total", "counter", "Leads of the token's account.", [("", leads)])
    _metric(lines, "touchline_campaigns_active", "gauge", "Active campaigns of the token's account.", [("", active)])
    return web.Response(body="\n".join(lines).encode() + b"\n", headers={"Content-Type": PROMETHEUS_CONTENT_TYPE})


def _describe(value: str | None) -> dict[str, Any]:
    trimmed = (value or "").strip()
    return {
        "exists": value is not None,
        "length": len(value or ""),
        "prefix": trimmed[:3] if len(trimmed) >= PREFIX_MIN_LENGTH else None,
    }


async def openai_env(request: web.Request) -> web.Response:
    """Which OpenAI variables are set and which the key lookup uses: never a value."""
    env = request.app[ENV]
    key = openai_key(env)
    source = next((n for n in OPENAI_KEY_VARS if key is not None and (env.get(n) or "").strip() == key), None)
    return json_response(
        {
            "variables": {name: _describe(env.get(name)) for name in OPENAI_VARS},
            "key_lookup": list(OPENAI_KEY_VARS),
            "key_source": source,
        }
    )


def add_routes(app: web.Application, env: Mapping[str, str] | None = None) -> None:
    """The core routes on `app` (once: a second call changes nothing)."""
    if app.get(ROUTES_ADDED):
        return
    app[ROUTES_ADDED] = True
    app[ENV] = os.environ if env is None else env
    router = app.router
    router.add_get("/healthz", health)
    router.add_get("/metrics", metrics)
    router.add_get("/api/campaigns", list_campaigns)
    router.add_post("/api/campaigns", create_campaign)
    router.add_post("/api/campaigns/pause-all", pause_all_campaigns)
    router.add_post("/api/campaigns/{campaign_id}/activate", activate_campaign)
    router.add_post("/api/campaigns/{campaign_id}/pause", pause_campaign)
    router.add_get("/api/leads", list_leads)
    router.add_get("/api/leads/{lead_id}", lead_detail)
    router.add_get("/api/settings", get_settings)
    router.add_put("/api/settings", put_settings)
    router.add_get("/api/runtime-status", runtime_status)
    router.add_get("/api/next-actions", next_actions)
    router.add_get("/api/audit", audit)
    router.add_get("/api/debug/openai-env", openai_env)
