"""`/console/events`: the account's events, newest first, filtered by type and stream, paginated;
`/console/events.json?after=<position>`: what came since, for the page's "follow live".

Both read up to the log's safe head (`head_position`: no transaction still running below it), so
a row committed later with a lower position is never skipped by a follower that moved past it.
"""

from __future__ import annotations

from typing import Any, Final

from aiohttp import web

from events.codec import EVENT_TYPES
from gateways.console.layout import page, view
from gateways.console.markup import Safe, checked, fmt, join, selected, when
from gateways.console.session import Ctx, ctx_of
from gateways.http import STORE, json_response

PATH: Final = "/console/events"
JSON_PATH: Final = "/console/events.json"
PAGE_SIZE: Final = 50
LIVE_LIMIT: Final = 200
PREVIEW: Final = 600

_FILTER: Final = """
account_id = $1 and position <= $2
and ($3::text is null or event_type = $3)
and ($4::text is null or starts_with(stream_id, $4))
"""

_PAGE_SQL: Final = f"""
select position, stream_id, version, event_type, recorded_at, data::text as data
  from touchline.events
 where {_FILTER} and ($5::bigint is null or position < $5)
 order by position desc
 limit $6
"""

_LIVE_SQL: Final = f"""
select position, stream_id, version, event_type, recorded_at, data::text as data
  from touchline.events
 where {_FILTER} and position > $5
 order by position
 limit $6
"""


def _filters(request: web.Request) -> tuple[str | None, str | None]:
    kind = (request.query.get("type") or "").strip() or None
    stream = (request.query.get("stream") or "").strip()[:300] or None
    return kind, stream


def _int(raw: str | None) -> int | None:
    try:
        return int(raw) if raw else None
    except ValueError:
        return None


def _preview(data: str) -> str:
    return data if len(data) <= PREVIEW else data[:PREVIEW] + " …"


def _row(ctx: Ctx, r: Any) -> Safe:
    stream: str = r["stream_id"]
    stream_cell = (
        fmt('<a href="{h}">{s}</a>', h=ctx.url(f"/console/leads/{stream.split('-', 1)[1]}"), s=stream)
        if stream.startswith("lead-")
        else fmt("{s}", s=stream)
    )
    return fmt(
        '<tr data-type="{type}" data-position="{position}"><td class="num">{position}</td><td>{at}</td>'
        '<td>{type}</td><td>{stream}</td><td class="num">{version}</td><td><pre>{data}</pre></td></tr>',
        type=r["event_type"],
        position=r["position"],
        at=when(r["recorded_at"]),
        stream=stream_cell,
        version=r["version"],
        data=_preview(r["data"]),
    )


@view
async def events_page(request: web.Request) -> web.StreamResponse:
    ctx = ctx_of(request)
    kind, stream = _filters(request)
    before = _int(request.query.get("before"))
    store = request.app[STORE]
    head = await store.head_position()
    rows = await store.pool.fetch(_PAGE_SQL, ctx.account_id, head, kind, stream, before, PAGE_SIZE + 1)
    more = len(rows) > PAGE_SIZE
    rows = rows[:PAGE_SIZE]
    options = join(
        fmt('<option value="{v}"{sel}>{label}</option>', v=v, sel=selected(v == (kind or "")), label=label)
        for v, label in [("", ctx.t("any")), *((name, name) for name in sorted(EVENT_TYPES))]
    )
    form = fmt(
        '<form method="get" action="{action}" class="filters" id="event-filters">{lang}'
        '<label>{type_label}<select name="type" id="filter-type">{options}</select></label>'
        '<label>{stream_label}<input type="text" name="stream" id="filter-stream" value="{stream}"'
        ' placeholder="lead-"></label><button type="submit" class="secondary" id="filter-submit">{filter}</button>'
        '<label class="check"><input type="checkbox" id="follow"{follow}> {follow_label}</label></form>',
        action=PATH,
        lang=Safe('<input type="hidden" name="lang" value="en">') if ctx.lang == "en" else Safe(""),
        type_label=ctx.t("events.type"),
        options=options,
        stream_label=ctx.t("events.stream_filter"),
        stream=stream or "",
        filter=ctx.t("filter"),
        follow=checked(request.query.get("follow") == "1"),
        follow_label=ctx.t("events.follow"),
    )
    # Following live only makes sense from the newest page.
    src = ctx.url(JSON_PATH, type=kind, stream=stream) if before is None else ""
    headers = [
        ctx.t(k)
        for k in ("events.position", "events.recorded", "events.type", "events.stream", "events.version", "events.data")
    ]
    body_rows = [_row(ctx, r) for r in rows]
    listing = fmt(
        "<table><thead><tr>{head}</tr></thead>"
        '<tbody id="event-rows" data-after="{after}" data-src="{src}">{rows}</tbody></table>{empty}',
        head=join(fmt("<th>{h}</th>", h=h) for h in headers),
        after=head,
        src=src,
        rows=join(body_rows),
        empty=fmt('<p class="muted" id="events-empty">{m}</p>', m=ctx.t("events.none")) if not rows else Safe(""),
    )
    newer = (
        fmt('<a href="{h}" id="page-newer">{l}</a>', h=ctx.url(PATH, type=kind, stream=stream), l=ctx.t("newer"))
        if before is not None
        else Safe("")
    )
    older = (
        fmt(
            '<a href="{h}" id="page-older">{l}</a>',
            h=ctx.url(PATH, type=kind, stream=stream, before=rows[-1]["position"]),
            l=ctx.t("older"),
        )
        if more
        else Safe("")
    )
    body = fmt(
        '{form}<section class="card">{listing}</section><div class="pager">{newer}{older}</div>',
        form=form,
        listing=listing,
        newer=newer,
        older=older,
    )
    return page(ctx, ctx.t("events.title"), body, current="events")


@view
async def events_json(request: web.Request) -> web.StreamResponse:
    """`{"events": [...oldest first], "last": <position to ask after next>}`."""
    ctx = ctx_of(request)
    kind, stream = _filters(request)
    after = _int(request.query.get("after")) or 0
    store = request.app[STORE]
    head = await store.head_position()
    rows = await store.pool.fetch(_LIVE_SQL, ctx.account_id, head, kind, stream, after, LIVE_LIMIT)
    events = [
        {
            "position": r["position"],
            "stream_id": r["stream_id"],
            "version": r["version"],
            "type": r["event_type"],
            "recorded_at": when(r["recorded_at"]),
            "data": _preview(r["data"]),
        }
        for r in rows
    ]
    last = rows[-1]["position"] if len(rows) == LIVE_LIMIT else max(head, after)
    return json_response({"events": events, "last": last}, headers={"Cache-Control": "no-store"})
