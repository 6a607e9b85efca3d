"""`/console/leads` (the account's leads with their next action, paginated) and one lead's page.

The list is `public.leads` joined with `public.lead_next_action_view_v5` (the same truth Command
OS answers from); a lead's page adds its whole history from the log (`lead-<id>`). Another
account's lead is answered exactly like a missing one.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any, Final
from uuid import UUID

from aiohttp import web

from events.catalog import lead_stream
from events.errors import NotFound
from gateways.console.layout import page, table, view
from gateways.console.markup import Safe, fmt, join, selected, when
from gateways.console.session import ctx_of
from gateways.http import STORE

PATH: Final = "/console/leads"
PAGE_SIZE: Final = 25
STATUSES: Final = ("new", "contacted", "replied", "qualified", "suppressed", "closed")

_LIST_SQL: Final = """
select l.id, l.title, l.name, l.phone, l.source, l.city, l.status, l.lead_state, l.created_at,
       n.next_action, n.next_action_at, n.priority_score, n.effective_channel
  from public.leads l
  left join public.lead_next_action_view_v5 n on n.lead_id = l.id
 where l.account_id = $1 and ($2::text is null or l.status = $2)
 order by l.created_at desc, l.id
 limit $3 offset $4
"""

_COUNT_SQL: Final = "select count(*) from public.leads where account_id = $1 and ($2::text is null or status = $2)"

_LEAD_SQL: Final = """
select l.*, n.next_action, n.next_action_at, n.priority_score, n.recommended_channel, n.effective_channel,
       n.campaign_id
  from public.leads l
  left join public.lead_next_action_view_v5 n on n.lead_id = l.id
 where l.account_id = $1 and l.id = $2
"""


def _page_number(raw: str | None) -> int:
    try:
        return max(1, int(raw or "1"))
    except ValueError:
        return 1


@view
async def leads_page(request: web.Request) -> web.StreamResponse:
    ctx = ctx_of(request)
    status = request.query.get("status") or None
    if status not in STATUSES:
        status = None
    number = _page_number(request.query.get("page"))
    pool = request.app[STORE].pool
    total = int(await pool.fetchval(_COUNT_SQL, ctx.account_id, status) or 0)
    pages = max(1, -(-total // PAGE_SIZE))
    number = min(number, pages)
    rows = await pool.fetch(_LIST_SQL, ctx.account_id, status, PAGE_SIZE, (number - 1) * PAGE_SIZE)
    lines = [
        fmt(
            '<tr data-lead="{id}"><td><a href="{href}" class="lead-link">{title}</a></td><td>{phone}</td>'
            "<td>{source}</td><td>{city}</td><td>{status}</td><td>{state}</td><td>{next}</td><td>{at}</td>"
            '<td class="num">{priority}</td><td>{created}</td></tr>',
            id=r["id"],
            href=ctx.url(f"{PATH}/{r['id']}"),
            title=r["title"] or r["name"] or str(r["id"])[:8],
            phone=r["phone"] or "—",
            source=r["source"],
            city=r["city"] or "—",
            status=r["status"],
            state=r["lead_state"],
            next=r["next_action"] or "—",
            at=when(r["next_action_at"]),
            priority="—" if r["priority_score"] is None else r["priority_score"],
            created=when(r["created_at"]),
        )
        for r in rows
    ]
    headers = [
        ctx.t(k)
        for k in (
            "leads.lead", "leads.phone", "leads.source", "leads.city", "leads.status", "leads.state",
            "leads.next_action", "leads.when", "leads.priority", "leads.created",
        )
    ]  # fmt: skip
    options = join(
        fmt('<option value="{v}"{sel}>{label}</option>', v=v, sel=selected(v == (status or "")), label=label)
        for v, label in [("", ctx.t("any")), *((s, s) for s in STATUSES)]
    )
    filters = fmt(
        '<form method="get" action="{action}" class="filters" id="lead-filters">{lang}'
        '<label>{status_label}<select name="status">{options}</select></label>'
        '<button type="submit" class="secondary">{filter}</button></form>',
        action=PATH,
        lang=Safe('<input type="hidden" name="lang" value="en">') if ctx.lang == "en" else Safe(""),
        status_label=ctx.t("leads.status"),
        options=options,
        filter=ctx.t("filter"),
    )
    prev = (
        fmt('<a href="{h}" id="page-prev">{l}</a>', h=ctx.url(PATH, status=status, page=number - 1), l=ctx.t("prev"))
        if number > 1
        else Safe("")
    )
    nxt = (
        fmt('<a href="{h}" id="page-next">{l}</a>', h=ctx.url(PATH, status=status, page=number + 1), l=ctx.t("next"))
        if number < pages
        else Safe("")
    )
    pager = fmt(
        '<div class="pager">{prev}<span class="muted" id="page-info">{info}</span>{next}</div>',
        prev=prev,
        info=ctx.t("page_of", page=number, pages=pages, total=total),
        next=nxt,
    )
    body = fmt(
        "{filters}{table}{pager}",
        filters=filters,
        table=table(headers, lines, tbody_attrs=Safe(' id="lead-rows"'), empty=ctx.t("leads.none")),
        pager=pager,
    )
    return page(ctx, ctx.t("leads.title"), body, current="leads")


def _pretty(raw: bytes | str) -> str:
    try:
        return json.dumps(json.loads(raw), indent=2, ensure_ascii=False, sort_keys=True)
    except ValueError:
        return raw.decode(errors="replace") if isinstance(raw, bytes) else raw


def _details(row: dict[str, Any]) -> Safe:
    shown = (
        "id", "title", "name", "phone", "email", "source", "external_id", "city", "country", "price", "status",
        "lead_state", "url", "posted_at", "first_seen_at", "suppressed_at", "suppression_reason", "last_reply_at",
        "created_at", "updated_at",
    )  # fmt: skip
    return join(fmt("<tr><th>{k}</th><td>{v}</td></tr>", k=k, v=_value(row.get(k))) for k in shown if k in row)


def _value(value: object) -> str:
    if value is None:
        return "—"
    return when(value) if isinstance(value, datetime) else str(value)


@view
async def lead_page(request: web.Request) -> web.StreamResponse:
    ctx = ctx_of(request)
    raw_id = request.match_info["id"]
    try:
        lead_id = UUID(raw_id)
    except ValueError:
        raise NotFound("lead", ctx.t("leads.not_found", id=raw_id), field="id") from None
    store = request.app[STORE]
    history = await store.read_stream(lead_stream(lead_id))
    if not history or history[0].account_id != ctx.account_id:
        raise NotFound("lead", ctx.t("leads.not_found", id=lead_id), field="id")
    record = await store.pool.fetchrow(_LEAD_SQL, ctx.account_id, lead_id)
    row: dict[str, Any] | None = dict(record) if record is not None else None
    if row is None:
        summary = fmt('<p class="muted" id="not-projected">{m}</p>', m=ctx.t("leads.not_projected"))
    else:
        summary = fmt(
            '<section class="card" id="lead-next"><p><strong>{label}:</strong> <span id="next-action">{next}</span>'
            " · {when_label}: {at} · {channel_label}: {channel} · {priority_label}: {priority}</p></section>"
            '<section class="card"><h2>{details}</h2><table id="lead-details">{rows}</table></section>',
            label=ctx.t("leads.next_action"),
            next=row.get("next_action") or "—",
            when_label=ctx.t("leads.when"),
            at=when(row.get("next_action_at")),
            channel_label=ctx.t("leads.channel"),
            channel=row.get("effective_channel") or "—",
            priority_label=ctx.t("leads.priority"),
            priority="—" if row.get("priority_score") is None else row["priority_score"],
            details=ctx.t("leads.details"),
            rows=_details(row),
        )
    events = [
        fmt(
            '<tr data-type="{type}" data-version="{version}"><td class="num">{version}</td><td>{at}</td>'
            '<td><strong>{type}</strong></td><td class="num">{position}</td><td><pre>{data}</pre></td></tr>',
            version=env.version,
            at=when(env.recorded_at),
            type=env.type,
            position=env.position,
            data=_pretty(bytes(env.data)),
        )
        for env in history
    ]
    headers = [ctx.t(k) for k in ("events.version", "events.recorded", "events.type", "events.position", "events.data")]
    title = (row.get("title") or row.get("name")) if row else None
    body = fmt(
        '<p><a href="{back}">{back_label}</a></p>{summary}<section class="card"><h2>{history}</h2>{table}</section>',
        back=ctx.url(PATH),
        back_label=ctx.t("leads.back"),
        summary=summary,
        history=ctx.t("leads.history"),
        table=table(headers, events, tbody_attrs=Safe(' id="lead-history"')),
    )
    return page(ctx, f"{ctx.t('leads.lead')}: {title or lead_id}", body, current="leads")
