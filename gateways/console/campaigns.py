"""`/console/campaigns`: the outbound campaigns, a toggle per row and "Pause all running".

Which campaigns there are comes from `public.campaigns`; the on/off state shown is each one's
stream (the log: never behind, so the page read right after a toggle shows it). The 24-hour
touch counts come from `public.v_campaign_runtime_status_v1` when that read model is there.
"""

from __future__ import annotations

from typing import Any
from uuid import UUID

import asyncpg
from aiohttp import web

from actors.campaigns import Campaigns, CampaignState, fold_campaign
from events.catalog import campaign_stream
from events.errors import NotFound
from events.postgres import PostgresEventStore
from gateways.console.layout import page, table, view
from gateways.console.markup import Safe, fmt, hidden, when
from gateways.console.session import CSRF_FIELD, Ctx, Flash, checked_form, ctx_of, redirect
from gateways.http import STORE

PATH = "/console/campaigns"

_RUNTIME_SQL = """
select campaign_id, last_touch_run_at, dispatched_24h, failed_24h
  from public.v_campaign_runtime_status_v1
 where account_id = $1
"""


async def campaign_states(store: PostgresEventStore, account: UUID) -> list[CampaignState]:
    """The account's campaigns as their streams say now: which ones from `public.campaigns`, their
    state from the log (one round trip), so a toggle just made shows; the whole log without it."""
    try:
        rows = await store.pool.fetch("select id from public.campaigns where account_id = $1", account)
    except asyncpg.UndefinedTableError:
        return await Campaigns(store).all(account)
    streams = await store.read_streams([campaign_stream(r["id"]) for r in rows])
    states = [fold_campaign([e.event for e in envs], len(envs)) for envs in streams.values()]
    return sorted(
        (s for s in states if s is not None and s.account_id == account),
        key=lambda s: (s.campaign_key, str(s.campaign_id)),
    )


async def _runtime(request: web.Request, account: UUID) -> dict[UUID, dict[str, Any]]:
    try:
        rows = await request.app[STORE].pool.fetch(_RUNTIME_SQL, account)
    except asyncpg.UndefinedTableError:
        return {}
    return {r["campaign_id"]: dict(r) for r in rows}


def _row(ctx: Ctx, c: CampaignState, runtime: dict[str, Any] | None) -> Safe:
    state = "active" if c.is_active else "paused"
    toggle = fmt(
        '<form class="inline" method="post" action="{action}">{csrf}{active}'
        '<button type="submit" class="{cls}" data-toggle="{key}">{label}</button></form>',
        action=ctx.url(f"{PATH}/{c.campaign_id}/toggle"),
        csrf=hidden(CSRF_FIELD, ctx.csrf),
        active=hidden("active", "0" if c.is_active else "1"),
        cls="danger" if c.is_active else "secondary",
        key=c.campaign_key,
        label=ctx.t("campaigns.pause" if c.is_active else "campaigns.activate"),
    )
    steps = ", ".join(f"{s.step}:{s.channel}" + (f"+{s.delay_minutes}m" if s.delay_minutes else "") for s in c.steps)
    touches = f"{runtime['dispatched_24h']} / {runtime['failed_24h']}" if runtime else "—"
    return fmt(
        '<tr data-key="{key}" data-id="{id}" data-active="{active}"><td><strong>{name}</strong></td>'
        "<td><code>{key}</code></td>"
        '<td><span class="badge state-{state}" data-state="{state}">{state_label}</span></td>'
        '<td>{steps}</td><td class="num">{touches}</td><td>{last}</td><td>{toggle}</td></tr>',
        key=c.campaign_key,
        id=c.campaign_id,
        active="true" if c.is_active else "false",
        name=c.name,
        state=state,
        state_label=ctx.t(f"campaigns.{state}"),
        steps=steps,
        touches=touches,
        last=when(runtime["last_touch_run_at"] if runtime else None),
        toggle=toggle,
    )


@view
async def campaigns_page(request: web.Request) -> web.StreamResponse:
    ctx = ctx_of(request)
    campaigns = await campaign_states(request.app[STORE], ctx.account_id)
    runtime = await _runtime(request, ctx.account_id)
    headers = [
        ctx.t(k)
        for k in (
            "campaigns.name", "campaigns.key", "campaigns.state", "campaigns.steps", "campaigns.touches_24h",
            "campaigns.last_touch", "campaigns.toggle",
        )
    ]  # fmt: skip
    running = sum(1 for c in campaigns if c.is_active)
    pause_all = fmt(
        '<form method="post" action="{action}" id="pause-all">{csrf}'
        '<button type="submit" class="danger"{disabled}>{label} ({n})</button></form>',
        action=ctx.url(f"{PATH}/pause-all"),
        csrf=hidden(CSRF_FIELD, ctx.csrf),
        disabled=Safe(" disabled" if running == 0 else ""),
        label=ctx.t("campaigns.pause_all"),
        n=running,
    )
    body = fmt(
        '<p class="muted">{intro}</p><section class="card">{table}</section>{pause_all}',
        intro=ctx.t("campaigns.intro"),
        table=table(
            headers,
            [_row(ctx, c, runtime.get(c.campaign_id)) for c in campaigns],
            tbody_attrs=Safe(' id="campaign-rows"'),
            empty=ctx.t("campaigns.none"),
        ),
        pause_all=pause_all,
    )
    return page(ctx, ctx.t("campaigns.title"), body, current="campaigns")


@view
async def toggle_campaign(request: web.Request) -> web.StreamResponse:
    ctx = ctx_of(request)
    form = await checked_form(request)
    try:
        campaign_id = UUID(request.match_info["id"])
    except ValueError:
        raise NotFound("campaign", f"no campaign {request.match_info['id']} in this account", field="id") from None
    campaigns = Campaigns(request.app[STORE])
    state = await campaigns.get(ctx.account_id, campaign_id)
    active = form.get("active", "1" if not state.is_active else "0") == "1"
    if active:
        changed = await campaigns.activate(ctx.account_id, campaign_id, reason="console")
    else:
        changed = await campaigns.pause(ctx.account_id, campaign_id, reason="console")
    key = ("campaigns.activated" if active else "campaigns.paused_one") if changed else "campaigns.unchanged"
    return redirect(ctx.url(PATH), Flash(kind="ok" if changed else "warn", text=ctx.t(key, name=state.name)))


@view
async def pause_all(request: web.Request) -> web.StreamResponse:
    ctx = ctx_of(request)
    await checked_form(request)
    paused = await Campaigns(request.app[STORE]).pause_all(ctx.account_id, reason="console: pause all running")
    return redirect(ctx.url(PATH), Flash(kind="ok", text=ctx.t("campaigns.paused_all", n=len(paused))))
