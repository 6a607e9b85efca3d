"""`/console/programs`: each LeadGen program and city with its status, the evidence and Start/Stop.

The numbers are the Programs API's (`gateways.api_programs`), read in one read-only snapshot;
Start/Stop are `actors.programs.Programs`, whose outcome comes back as a flash message (with a
confirm button when it needs setup or confirmation).
"""

from __future__ import annotations

from aiohttp import web

from actors.crawl import SOURCES
from actors.programs import ProgramResult, Programs
from events.errors import CommandRejected, NotFound
from gateways.api_programs import CityStatus, ProgramDetail, _cities, _detail
from gateways.console.layout import page, table, view
from gateways.console.markup import Safe, fmt, hidden, join, when
from gateways.console.session import CSRF_FIELD, Confirm, Ctx, Flash, checked_form, ctx_of, redirect
from gateways.http import STORE

PATH = "/console/programs"


def _badge(ctx: Ctx, status: str) -> Safe:
    return fmt(
        '<span class="badge status-{status}" data-status="{status}">{label}</span>',
        status=status,
        label=ctx.t(f"status.{status}"),
    )


def _tasks(ctx: Ctx, detail: ProgramDetail) -> Safe:
    counts = detail.throughput.tasks_60m_by_status
    if not counts:
        return Safe("0")
    return join(
        (fmt("<span>{n} {label}</span>", n=n, label=ctx.t(f"task.{status}")) for status, n in sorted(counts.items())),
        " · ",
    )


def _errors(detail: ProgramDetail) -> Safe:
    errors = detail.throughput.top_errors
    if not errors:
        return Safe("—")
    items = []
    for e in errors:
        evidence = " ".join(p for p in (e.screenshot_path, e.html_path) if p)
        items.append(
            fmt(
                "<li><strong>{kind}</strong> x{n}: {last}{evidence}</li>",
                kind=e.error_kind,
                n=e.n,
                last=e.last_error or "",
                evidence=fmt(' <span class="muted">({p})</span>', p=evidence) if evidence else Safe(""),
            )
        )
    return fmt('<ul class="error-list">{items}</ul>', items=join(items))


def _action_form(ctx: Ctx, key: str, city: str, verb: str, label: str, cls: str) -> Safe:
    return fmt(
        '<form class="inline" method="post" action="{action}">{csrf}{city}'
        '<button type="submit" class="{cls}" data-action="{verb}">{label}</button></form>',
        action=ctx.url(f"{PATH}/{key}/{verb}"),
        csrf=hidden(CSRF_FIELD, ctx.csrf),
        city=hidden("city", city),
        cls=cls,
        verb=verb,
        label=label,
    )


def _city_row(ctx: Ctx, key: str, city: CityStatus, detail: ProgramDetail) -> Safe:
    action = (
        _action_form(ctx, key, city.city, "stop", ctx.t("programs.stop"), "danger")
        if city.running
        else _action_form(ctx, key, city.city, "start", ctx.t("programs.start"), "secondary")
    )
    return fmt(
        '<tr data-program="{key}" data-city="{city}" data-status="{status}" data-running="{running}">'
        "<td><strong>{city}</strong></td><td>{badge}</td><td>{running_label}</td><td>{tasks}</td>"
        '<td class="num">{leads}</td><td>{last}</td><td>{errors}</td><td class="next-action">{next}</td>'
        "<td>{action}</td></tr>",
        key=key,
        city=city.city,
        status=city.status,
        running="true" if city.running else "false",
        badge=_badge(ctx, city.status),
        running_label=ctx.t("yes" if city.running else "no"),
        tasks=_tasks(ctx, detail),
        leads=city.leads_24h,
        last=when(city.last_success_at),
        errors=_errors(detail),
        next=detail.next_action.text,
        action=action,
    )


def _program(ctx: Ctx, key: str, overall: ProgramDetail, rows: list[Safe]) -> Safe:
    headers = [
        ctx.t(k)
        for k in (
            "programs.city", "programs.status", "programs.running", "programs.tasks_60m", "programs.leads_24h",
            "programs.last_success", "programs.errors", "programs.next_action", "programs.actions",
        )
    ]  # fmt: skip
    start = fmt(
        '<form method="post" action="{action}" class="filters" data-start="{key}">{csrf}'
        '<label>{label}<input type="text" name="city" placeholder="miami" required></label>'
        '<button type="submit">{start}</button></form>',
        action=ctx.url(f"{PATH}/{key}/start"),
        key=key,
        csrf=hidden(CSRF_FIELD, ctx.csrf),
        label=ctx.t("programs.start_city"),
        start=ctx.t("programs.start"),
    )
    return fmt(
        '<section class="card" id="program-{key}" data-status="{status}"><h2>{key} {badge}</h2>'
        '<p><strong>{next_label}:</strong> <span class="next-action">{next}</span></p>{table}{start}</section>',
        key=key,
        status=overall.health.status,
        badge=_badge(ctx, overall.health.status),
        next_label=ctx.t("programs.next_action"),
        next=overall.next_action.text,
        table=table(headers, rows, empty=ctx.t("programs.no_cities")),
        start=start,
    )


@view
async def programs_page(request: web.Request) -> web.StreamResponse:
    ctx = ctx_of(request)
    sections = []
    async with (
        request.app[STORE].pool.acquire() as conn,
        conn.transaction(isolation="repeatable_read", readonly=True),
    ):
        by_program = await _cities(conn, ctx.account_id, None, None)
        for key, cities in by_program.items():
            overall = await _detail(conn, ctx.account_id, key, None)
            rows = [_city_row(ctx, key, c, await _detail(conn, ctx.account_id, key, c.city)) for c in cities]
            sections.append(_program(ctx, key, overall, rows))
    body = fmt('<p class="muted">{intro}</p>{sections}', intro=ctx.t("programs.intro"), sections=join(sections))
    return page(ctx, ctx.t("programs.title"), body, current="programs")


def _key(request: web.Request) -> str:
    key = request.match_info["key"]
    if key not in SOURCES:
        raise NotFound("program", f"unknown program {key!r}; known programs: {', '.join(SOURCES)}", field="key")
    return key


def _flash(ctx: Ctx, result: ProgramResult) -> Flash:
    names = {"program": result.program_key, "city": result.city}
    action = ctx.url(f"{PATH}/{result.program_key}/start")
    match result.outcome:
        case "started" | "discover_queued" | "stopped":
            return Flash(kind="ok", text=ctx.t(f"programs.{result.outcome}", **names), detail=result.message)
        case "needs_setup":
            return Flash(
                kind="warn",
                text=ctx.t("programs.needs_setup", **names),
                detail=result.message,
                confirm=[
                    Confirm(
                        action=action,
                        label=ctx.t("programs.confirm_override"),
                        fields={"city": result.city, "override_routing": "1"},
                    )
                ],
                link=[ctx.url("/console/settings") + "#step-3", ctx.t("programs.go_settings")],
            )
        case "needs_confirmation":
            return Flash(
                kind="warn",
                text=ctx.t("programs.needs_confirmation", **names),
                detail=result.message,
                confirm=[
                    Confirm(
                        action=action,
                        label=ctx.t("programs.confirm_discover"),
                        fields={"city": result.city, "confirm": "1"},
                    )
                ],
            )
    return Flash(kind="warn", text=ctx.t("programs.not_running", **names), detail=result.message)


@view
async def start_program(request: web.Request) -> web.StreamResponse:
    ctx = ctx_of(request)
    key = _key(request)
    form = await checked_form(request)
    try:
        result = await Programs(request.app[STORE]).start(
            ctx.account_id,
            key,
            form.get("city", ""),
            override_routing=form.get("override_routing") == "1",
            confirm=form.get("confirm") == "1",
            started_by="console",
        )
    except CommandRejected as exc:
        return redirect(ctx.url(PATH), Flash(kind="error", text=ctx.t("programs.rejected", message=exc.reason)))
    return redirect(ctx.url(PATH), _flash(ctx, result))


@view
async def stop_program(request: web.Request) -> web.StreamResponse:
    ctx = ctx_of(request)
    key = _key(request)
    form = await checked_form(request)
    try:
        result = await Programs(request.app[STORE]).stop(
            ctx.account_id, key, form.get("city", ""), stopped_by="console"
        )
    except CommandRejected as exc:
        return redirect(ctx.url(PATH), Flash(kind="error", text=ctx.t("programs.rejected", message=exc.reason)))
    return redirect(ctx.url(PATH), _flash(ctx, result))
