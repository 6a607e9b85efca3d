"""The Programs API: the token's account's LeadGen programs, listed, in detail, started and stopped.

A program is a lead source (`craigslist`, `encuentra24`) and a program instance is a source
running for a city: `/api/programs/craigslist` is every city of it, `/api/programs/craigslist:miami`
(or `?city=miami`) one. Everything is read in one read-only snapshot, so the counts of one answer
agree with each other and share one `now()`:

- `public.v_lead_program_status_v1`: each city's status by the spec's Program ON definition
  (Disabled / Degraded / Live, and Pending where the spec says nothing: tasks, none ended);
- `lead_hunter.craigslist_tasks_v1`: tasks of the last 15 and 60 minutes, by status, type, error;
- `public.leads`, `public.v_craigslist_ssv_v0`: what the program brought in;
- `touchline.events`: the last events of the program's task streams and its own start/stop.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any, Final, Literal
from uuid import UUID

import msgspec
from aiohttp import web

from actors.crawl import SOURCES, normalise_city
from actors.programs import ProgramResult, Programs
from events.catalog import LeadgenRouting, program_stream
from gateways.http import ACCOUNT, STORE, HttpError, json_response, read_json
from projections.model import Conn

Status = Literal["Disabled", "Degraded", "Live", "Pending"]
ActionCode = Literal["enable_routing", "start_program", "start_hunter", "check_blocks", "wait", "none"]

# A queued task waits this long before an idle queue is blamed on a missing hunter: a running
# hunter follows the log and claims within a second or two, so a just-queued task is not a sign.
HUNTER_GRACE_S: Final = 60.0
RECENT_EVENTS: Final = 20
TOP_ERRORS: Final = 5

_START_STATUS: Final = {"started": 200, "discover_queued": 200, "needs_confirmation": 409, "needs_setup": 412}


# --- answers ---------------------------------------------------------------------------------------


class CityStatus(msgspec.Struct, kw_only=True):
    city: str
    running: bool
    status: Status
    routing_active: bool
    routing_override: bool
    tasks_60m: int
    done_60m: int
    failed_60m: int
    leads_24h: int
    last_success_at: datetime | None


class ProgramSummary(msgspec.Struct, kw_only=True):
    key: str
    running: bool
    status: Status
    cities: list[CityStatus]


class WorkerHealth(msgspec.Struct, kw_only=True):
    queued_15m: int
    claimed_15m: int
    done_15m: int
    failed_15m: int


class Health(msgspec.Struct, kw_only=True):
    routing_active: bool
    running: bool
    status: Status
    worker_health: WorkerHealth
    last_success_at: datetime | None


class TypeStatusCount(msgspec.Struct, kw_only=True):
    task_type: str
    status: str
    n: int


class TopError(msgspec.Struct, kw_only=True):
    error_kind: str
    n: int
    last_error: str | None
    last_at: datetime
    screenshot_path: str | None
    html_path: str | None


class Throughput(msgspec.Struct, kw_only=True):
    tasks_60m_by_status: dict[str, int]
    tasks_60m_by_type_status: list[TypeStatusCount]
    top_errors: list[TopError]


class SsvDay(msgspec.Struct, kw_only=True):
    day: date
    city: str | None
    leads: int


class Output(msgspec.Struct, kw_only=True):
    leads_60m: int
    leads_24h: int
    ssv: list[SsvDay] | None  # Supply Velocity: Craigslist only


class LogEvent(msgspec.Struct, kw_only=True):
    position: int
    type: str
    task_id: UUID | None
    task_type: str | None
    recorded_at: datetime
    data: msgspec.Raw


class NextAction(msgspec.Struct, kw_only=True):
    code: ActionCode
    text: str


class ProgramDetail(msgspec.Struct, kw_only=True):
    key: str
    city: str | None
    cities: list[CityStatus]
    health: Health
    throughput: Throughput
    output: Output
    events: list[LogEvent]
    next_action: NextAction


class StartBody(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    city: str | None = None
    override_routing: bool = False
    confirm: bool = False


class StopBody(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    city: str | None = None


# --- deciding the next action ---------------------------------------------------------------------


class Situation(msgspec.Struct, kw_only=True):
    """What the next action is decided from: one city, or every city of a program added up."""

    account_id: UUID
    program_key: str
    city: str | None
    routing_active: bool
    routing_configured: bool  # a dealer address is set: routing can be switched on
    running: bool
    routing_override: bool  # a running city was started with the routing override
    status: Status
    tasks_60m: int
    queued: int  # queued now, whenever queued
    claimed: int
    worked_15m: int  # tasks claimed, done or failed in the last 15 minutes
    oldest_queued_s: float | None
    leads_60m: int
    top_error: TopError | None


def next_action(s: Situation) -> NextAction:
    """The one concrete thing to do next, as a sentence and a code a UI can act on."""
    city = s.city or "<city>"
    if not (s.routing_active or (s.running and s.routing_override)):
        if not s.routing_configured:
            text = (
                f"Set up LeadGen routing (touchline settings set --account {s.account_id} "
                "--dealer-address '<address>' --radius-miles 10 --routing-active), then start the program"
            )
        else:
            text = (
                f"Turn LeadGen routing on in settings (touchline settings set --account {s.account_id} "
                "--routing-active), then start the program"
            )
        return NextAction(code="enable_routing", text=text)
    if not s.running:
        return NextAction(
            code="start_program",
            text=f"Start it: touchline programs start --account {s.account_id} --program {s.program_key} "
            f"--city {city}, or say 'prende {s.program_key} {city}'",
        )
    idle_queue = s.queued > 0 and s.worked_15m == 0 and (s.oldest_queued_s or 0.0) >= HUNTER_GRACE_S
    if idle_queue or s.tasks_60m == 0:
        why = (
            f"{s.queued} task(s) queued and none claimed in the last 15 minutes"
            if idle_queue
            else "no tasks in the last 60 minutes although the program runs"
        )
        return NextAction(
            code="start_hunter", text=f"No hunter is taking tasks ({why}): run touchline up (or --role hunter)"
        )
    if s.status == "Degraded":
        err = s.top_error
        if err is None:
            return NextAction(code="check_blocks", text="Tasks fail and none succeed: look at the failed tasks")
        evidence = ", ".join(
            f"{name} {path}" for name, path in (("screenshot", err.screenshot_path), ("html", err.html_path)) if path
        )
        return NextAction(
            code="check_blocks",
            text=f"Tasks fail and none succeed: {err.n} x {err.error_kind} in the last 60 minutes "
            f"(last: {err.last_error or 'no message'}); evidence: {evidence or 'none recorded'}",
        )
    if s.status == "Live":
        return NextAction(code="none", text=f"Running: {s.leads_60m} leads in the last 60 minutes")
    return NextAction(
        code="wait",
        text=f"Working: {s.queued} task(s) queued, {s.claimed} claimed; none finished in the last 60 minutes yet",
    )


def _overall(statuses: list[Status]) -> Status:
    """A program over its cities: the best any city does (Disabled without any)."""
    for status in ("Live", "Degraded", "Pending"):
        if status in statuses:
            return status
    return "Disabled"


# --- reading -------------------------------------------------------------------------------------

_CITIES_SQL: Final = """
select p.program_key, p.city, p.running, p.routing_override, p.routing_active, p.status,
       p.tasks_60m, p.done_60m, p.failed_60m, p.last_success_at,
       (select count(*) from public.leads l
         where l.account_id = p.account_id and l.source = p.program_key and l.city = p.city
           and l.created_at > now() - interval '24 hours') as leads_24h
  from public.v_lead_program_status_v1 p
 where p.account_id = $1 and ($2::text is null or p.program_key = $2) and ($3::text is null or p.city = $3)
 order by p.program_key, p.city
"""

_SCOPE: Final = "account_id = $1 and source = $2 and ($3::text is null or city = $3)"

_COUNTS_SQL: Final = f"""
select count(*) filter (where created_at > now() - interval '60 minutes') as tasks_60m,
       count(*) filter (where created_at > now() - interval '60 minutes' and status = 'done') as done_60m,
       count(*) filter (where created_at > now() - interval '60 minutes' and status = 'failed') as failed_60m,
       count(*) filter (where created_at > now() - interval '15 minutes' and status = 'queued') as queued_15m,
       count(*) filter (where created_at > now() - interval '15 minutes' and status = 'claimed') as claimed_15m,
       count(*) filter (where created_at > now() - interval '15 minutes' and status = 'done') as done_15m,
       count(*) filter (where created_at > now() - interval '15 minutes' and status = 'failed') as failed_15m,
       count(*) filter (where status in ('claimed', 'done', 'failed')
                          and updated_at > now() - interval '15 minutes') as worked_15m,
       count(*) filter (where status = 'queued') as queued,
       count(*) filter (where status = 'claimed') as claimed,
       extract(epoch from now() - min(created_at) filter (where status = 'queued'))::float8 as oldest_queued_s,
       max(updated_at) filter (where status = 'done') as last_success_at
  from lead_hunter.craigslist_tasks_v1
 where {_SCOPE}
"""

# The spec's "tasks last 60m" query, scoped to the program.
_BY_TYPE_STATUS_SQL: Final = f"""
select status, task_type, count(*) as n
  from lead_hunter.craigslist_tasks_v1
 where {_SCOPE} and created_at > now() - interval '60 minutes'
 group by 1, 2
 order by 1, 2
"""

# Counted over the tasks of the last 60 minutes like the status is, so the numbers add up; the
# message and evidence are the latest failure's of each kind.
_TOP_ERRORS_SQL: Final = f"""
select error_kind, n, last_error, last_at, screenshot_path, html_path
  from (select coalesce(error_kind, 'unknown') as error_kind,
               count(*) over (partition by coalesce(error_kind, 'unknown')) as n,
               last_error, updated_at as last_at, screenshot_path, html_path,
               row_number() over (partition by coalesce(error_kind, 'unknown') order by updated_at desc, id) as nth
          from lead_hunter.craigslist_tasks_v1
         where {_SCOPE} and status = 'failed' and created_at > now() - interval '60 minutes') f
 where nth = 1
 order by n desc, last_at desc
 limit {TOP_ERRORS}
"""

_LEADS_SQL: Final = f"""
select count(*) filter (where created_at > now() - interval '60 minutes') as leads_60m, count(*) as leads_24h
  from public.leads
 where {_SCOPE} and created_at > now() - interval '24 hours'
"""

_SSV_SQL: Final = """
select day, city, leads
  from public.v_craigslist_ssv_v0
 where account_id = $1 and ($2::text is null or city = $2) and day > (now() at time zone 'UTC')::date - 7
 order by day, city
"""

# The latest events are those of the tasks whose last event is latest (`version` is that event's
# position): of any other task, 20 later events exist already. So 20 tasks are enough to look at.
_EVENTS_SQL: Final = f"""
with recent as (
    select id, task_type
      from lead_hunter.craigslist_tasks_v1
     where {_SCOPE}
     order by version desc
     limit {RECENT_EVENTS}
)
select e.position, e.event_type, r.id as task_id, r.task_type, e.recorded_at, e.data
  from recent r
  join touchline.events e on e.stream_id = 'crawl_task-' || r.id::text and e.account_id = $1
union all
select e.position, e.event_type, null::uuid, null::text, e.recorded_at, e.data
  from touchline.events e
 where e.stream_id = any($4::text[]) and e.account_id = $1
 order by 1 desc
 limit {RECENT_EVENTS}
"""


async def _routing(conn: Conn, account_id: UUID) -> LeadgenRouting | None:
    raw = await conn.fetchval("select leadgen_routing from public.org_settings where account_id = $1", account_id)
    return None if raw is None else msgspec.json.decode(raw, type=LeadgenRouting)


async def _cities(conn: Conn, account_id: UUID, key: str | None, city: str | None) -> dict[str, list[CityStatus]]:
    by_program: dict[str, list[CityStatus]] = {k: [] for k in SOURCES}
    for r in await conn.fetch(_CITIES_SQL, account_id, key, city):
        by_program.setdefault(r["program_key"], []).append(
            CityStatus(**{name: r[name] for name in CityStatus.__struct_fields__})
        )
    return by_program


async def _detail(conn: Conn, account_id: UUID, key: str, city: str | None) -> ProgramDetail:
    routing = await _routing(conn, account_id)
    routing_active = bool(routing and routing.active)
    cities = (await _cities(conn, account_id, key, city))[key]
    counts = await conn.fetchrow(_COUNTS_SQL, account_id, key, city)
    assert counts is not None  # an aggregate without group by: always one row
    by_type_status = [
        TypeStatusCount(task_type=r["task_type"], status=r["status"], n=r["n"])
        for r in await conn.fetch(_BY_TYPE_STATUS_SQL, account_id, key, city)
    ]
    by_status: dict[str, int] = {}
    for row in by_type_status:
        by_status[row.status] = by_status.get(row.status, 0) + row.n
    top_errors = [TopError(**dict(r)) for r in await conn.fetch(_TOP_ERRORS_SQL, account_id, key, city)]
    leads = await conn.fetchrow(_LEADS_SQL, account_id, key, city)
    assert leads is not None
    ssv = None
    if key == "craigslist":
        ssv = [
            SsvDay(day=r["day"], city=r["city"], leads=r["leads"]) for r in await conn.fetch(_SSV_SQL, account_id, city)
        ]
    streams = [program_stream(account_id, key, c.city) for c in cities]
    if city is not None and not streams:
        streams = [program_stream(account_id, key, city)]
    events = [
        LogEvent(
            position=r["position"],
            type=r["event_type"],
            task_id=r["task_id"],
            task_type=r["task_type"],
            recorded_at=r["recorded_at"],
            data=msgspec.Raw(r["data"]),
        )
        for r in await conn.fetch(_EVENTS_SQL, account_id, key, city, streams)
    ]
    running = any(c.running for c in cities)
    status = _overall([c.status for c in cities])  # no row: neither a program nor a task, Disabled
    situation = Situation(
        account_id=account_id,
        program_key=key,
        city=city,
        routing_active=routing_active,
        routing_configured=bool(routing and routing.dealer_address),
        running=running,
        routing_override=any(c.running and c.routing_override for c in cities),
        status=status,
        tasks_60m=counts["tasks_60m"],
        queued=counts["queued"],
        claimed=counts["claimed"],
        worked_15m=counts["worked_15m"],
        oldest_queued_s=counts["oldest_queued_s"],
        leads_60m=leads["leads_60m"],
        top_error=top_errors[0] if top_errors else None,
    )
    return ProgramDetail(
        key=key,
        city=city,
        cities=cities,
        health=Health(
            routing_active=routing_active,
            running=running,
            status=status,
            worker_health=WorkerHealth(
                queued_15m=counts["queued_15m"],
                claimed_15m=counts["claimed_15m"],
                done_15m=counts["done_15m"],
                failed_15m=counts["failed_15m"],
            ),
            last_success_at=counts["last_success_at"],
        ),
        throughput=Throughput(
            tasks_60m_by_status=by_status, tasks_60m_by_type_status=by_type_status, top_errors=top_errors
        ),
        output=Output(leads_60m=leads["leads_60m"], leads_24h=leads["leads_24h"], ssv=ssv),
        events=events,
        next_action=next_action(situation),
    )


# --- handlers --------------------------------------------------------------------------------------


def _program(request: web.Request, body_city: str | None = None) -> tuple[str, str | None]:
    """The program key and city a request names: `craigslist`, `craigslist:miami`, `?city=`, the body."""
    key, colon, path_city = request.match_info["key"].partition(":")
    if key not in SOURCES:
        raise HttpError(404, f"unknown program {key!r}; known programs: {', '.join(SOURCES)}", field="key")
    named = [c for c in (path_city if colon else None, request.query.get("city"), body_city) if c is not None]
    cities = {normalise_city("program", c, key) for c in named}
    if len(cities) > 1:
        raise HttpError(
            400, f"the request names more than one city ({', '.join(sorted(cities))}): name one", field="city"
        )
    return key, (cities.pop() if cities else None)


async def list_programs(request: web.Request) -> web.Response:
    """Every known program with its cities and their health; a program never started has none."""
    async with request.app[STORE].pool.acquire() as conn, conn.transaction(isolation="repeatable_read", readonly=True):
        by_program = await _cities(conn, request[ACCOUNT], None, None)
    programs = [
        ProgramSummary(
            key=key,
            running=any(c.running for c in cities),
            status=_overall([c.status for c in cities]),
            cities=cities,
        )
        for key, cities in by_program.items()
    ]
    return json_response({"programs": programs})


async def program_detail(request: web.Request) -> web.Response:
    key, city = _program(request)
    async with request.app[STORE].pool.acquire() as conn, conn.transaction(isolation="repeatable_read", readonly=True):
        detail = await _detail(conn, request[ACCOUNT], key, city)
    return json_response(detail)


def _city_required(key: str, city: str | None) -> str:
    if city is None:
        raise HttpError(
            400,
            f'city is required: name it in the body ({{"city": "miami"}}) or the path (/api/programs/{key}:miami)',
            field="city",
        )
    return city


def _result(result: ProgramResult, status: int) -> web.Response:
    payload: dict[str, Any] = msgspec.to_builtins(result)
    return json_response(payload, status=status)


async def start_program(request: web.Request) -> web.Response:
    """Start a program instance; 409 when it runs already (confirm to queue a discover), 412 without routing."""
    _program(request)  # an unknown program is a 404 before the body is looked at
    body = await read_json(request, StartBody)
    key, city = _program(request, body.city)
    result = await Programs(request.app[STORE]).start(
        request[ACCOUNT],
        key,
        _city_required(key, city),
        override_routing=body.override_routing,
        confirm=body.confirm,
        started_by="api",
    )
    return _result(result, _START_STATUS.get(result.outcome, 200))


async def stop_program(request: web.Request) -> web.Response:
    """Stop a program instance and cancel its queued tasks (`not_running` when it was not running)."""
    _program(request)
    body = await read_json(request, StopBody)
    key, city = _program(request, body.city)
    result = await Programs(request.app[STORE]).stop(request[ACCOUNT], key, _city_required(key, city), stopped_by="api")
    return _result(result, 200)


def add_routes(app: web.Application) -> None:
    app.router.add_get("/api/programs/list", list_programs)
    app.router.add_get("/api/programs/{key}", program_detail)
    app.router.add_post("/api/programs/{key}/start", start_program)
    app.router.add_post("/api/programs/{key}/stop", stop_program)
