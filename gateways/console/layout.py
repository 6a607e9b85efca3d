"""The page around every console view: nav bar, language toggle, flash, the Command OS box, CSS and JS.

Styles and the one script are inline, allowed by a per-response CSP nonce; nothing else runs.
"""

from __future__ import annotations

import functools
import secrets
from typing import Final

import asyncpg
import structlog
from aiohttp import web

from events.errors import CommandRejected, NotFound
from gateways.console.markup import Safe, fmt, hidden, join
from gateways.console.session import (
    COOKIE_PATH,
    CSRF_FIELD,
    FLASH_COOKIE,
    CsrfRefused,
    Ctx,
    Flash,
    Handler,
    ctx_of,
    wants_json,
)
from gateways.http import HttpError, error_response

log = structlog.get_logger("touchline.console")

NAV: Final = (
    ("programs", "/console/programs", "nav.programs"),
    ("campaigns", "/console/campaigns", "nav.campaigns"),
    ("leads", "/console/leads", "nav.leads"),
    ("events", "/console/events", "nav.events"),
    ("settings", "/console/settings", "nav.settings"),
    ("command", "/console/command", "nav.command"),
)

CSS: Final = """
:root { --fg: #1d2330; --muted: #5d6678; --line: #dfe3ea; --bg: #f6f7f9; --card: #fff;
        --ok: #137333; --warn: #a15c00; --bad: #b3261e; --accent: #1f5fbf; }
* { box-sizing: border-box; }
body { margin: 0; font: 15px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif;
       color: var(--fg); background: var(--bg); }
header { background: #16213a; color: #fff; }
nav { display: flex; flex-wrap: wrap; gap: .25rem 1rem; align-items: center; max-width: 1200px;
      margin: 0 auto; padding: .6rem 1rem; }
nav a { color: #cfd8ea; text-decoration: none; padding: .2rem 0; }
nav a.current, nav a:hover { color: #fff; border-bottom: 2px solid #7fb0ff; }
nav .brand { font-weight: 700; color: #fff; margin-right: 1rem; }
nav .spacer { flex: 1; }
nav form { margin: 0; }
nav button { background: none; border: 1px solid #50607f; color: #cfd8ea; border-radius: 4px; padding: .15rem .6rem; }
main, aside.command { max-width: 1200px; margin: 1rem auto; padding: 0 1rem; }
h1 { font-size: 1.45rem; margin: .5rem 0 1rem; }
h2 { font-size: 1.15rem; margin: 1.2rem 0 .5rem; }
section.card, aside.command > div { background: var(--card); border: 1px solid var(--line);
       border-radius: 8px; padding: .8rem 1rem; margin-bottom: 1rem; }
table { border-collapse: collapse; width: 100%; background: var(--card); }
th, td { text-align: left; vertical-align: top; border-bottom: 1px solid var(--line); padding: .4rem .5rem; }
th { font-size: .8rem; text-transform: uppercase; letter-spacing: .03em; color: var(--muted); }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
.muted { color: var(--muted); }
.badge { display: inline-block; padding: .05rem .5rem; border-radius: 999px; font-size: .8rem;
         border: 1px solid currentColor; white-space: nowrap; }
.status-Live, .state-active { color: var(--ok); }
.status-Degraded { color: var(--bad); }
.status-Pending { color: var(--warn); }
.status-Disabled, .state-paused { color: var(--muted); }
.flash { border-radius: 6px; padding: .6rem .8rem; margin-bottom: 1rem; border: 1px solid; background: #fff; }
.flash-ok { border-color: var(--ok); } .flash-warn { border-color: var(--warn); }
.flash-error { border-color: var(--bad); }
.flash small { display: block; color: var(--muted); white-space: pre-wrap; }
.flash form { display: inline-block; margin: .4rem .5rem 0 0; }
form.inline { display: inline; margin: 0; }
label { display: block; font-weight: 600; margin: .5rem 0 .15rem; }
label.check { display: flex; gap: .4rem; align-items: center; font-weight: 600; }
input[type=text], input[type=email], input[type=tel], input[type=password], input[type=number], select {
    font: inherit; padding: .35rem .5rem; border: 1px solid #b9c0cc; border-radius: 4px;
    width: 100%; max-width: 28rem; }
input[aria-invalid=true] { border-color: var(--bad); }
.field-error { color: var(--bad); margin: .15rem 0 0; font-size: .9rem; }
button { font: inherit; padding: .3rem .8rem; border-radius: 4px; border: 1px solid var(--accent);
         background: var(--accent); color: #fff; cursor: pointer; }
button.secondary { background: #fff; color: var(--accent); }
button.danger { background: #fff; color: var(--bad); border-color: var(--bad); }
.filters { display: flex; flex-wrap: wrap; gap: .5rem 1rem; align-items: end; margin-bottom: .8rem; }
.filters label { margin: 0; }
.pager { display: flex; gap: 1rem; margin: .8rem 0; align-items: center; }
pre { white-space: pre-wrap; word-break: break-word; margin: 0; font-size: .85rem; }
.steps { display: grid; gap: 1rem; grid-template-columns: repeat(auto-fit, minmax(300px, 1fr)); }
.error-list { margin: 0; padding-left: 1.1rem; }
.cmd-row { display: flex; gap: .5rem; }
.cmd-row input { max-width: none; flex: 1; }
.cmd-reply { display: block; white-space: pre-wrap; margin-top: .6rem; padding: .5rem .7rem;
             background: #eef3fb; border-radius: 6px; }
.cmd-reply[hidden] { display: none; }
.new-row { background: #fff8d6; }
"""

# Posts the Command OS box with fetch and shows the answer in place; follows the event log live.
# Without JS the forms post normally: the command page shows the answer, the log reloads by hand.
JS: Final = """
(function () {
  "use strict";
  for (const form of document.querySelectorAll("form[data-command]")) {
    form.addEventListener("submit", async function (ev) {
      ev.preventDefault();
      const out = form.querySelector("[data-reply]");
      const button = form.querySelector("button");
      out.hidden = false;
      out.textContent = form.dataset.waiting;
      out.dataset.outcome = "";
      button.disabled = true;
      try {
        const resp = await fetch(form.action, {
          method: "POST", body: new URLSearchParams(new FormData(form)),
          headers: {"Accept": "application/json"}, credentials: "same-origin"
        });
        const body = await resp.json();
        out.textContent = body.reply || body.error || resp.statusText;
        out.dataset.outcome = body.outcome || "error";
      } catch (err) {
        out.textContent = form.dataset.failed;
        out.dataset.outcome = "error";
      } finally {
        button.disabled = false;
      }
    });
  }
  const rows = document.getElementById("event-rows");
  const follow = document.getElementById("follow");
  if (rows && follow && rows.dataset.src) {
    let timer = null;
    const cell = function (text, cls) {
      const td = document.createElement("td");
      td.textContent = text;
      if (cls) { td.className = cls; }
      return td;
    };
    const poll = async function () {
      try {
        const url = new URL(rows.dataset.src, window.location.href);
        url.searchParams.set("after", rows.dataset.after);
        const resp = await fetch(url, {headers: {"Accept": "application/json"}, credentials: "same-origin"});
        if (!resp.ok) { return; }
        const body = await resp.json();
        for (const e of body.events) {
          const tr = document.createElement("tr");
          tr.className = "new-row";
          tr.dataset.type = e.type;
          tr.dataset.position = String(e.position);
          tr.append(cell(String(e.position), "num"), cell(e.recorded_at), cell(e.type), cell(e.stream_id),
                    cell(String(e.version), "num"));
          const data = document.createElement("td");
          const pre = document.createElement("pre");
          pre.textContent = e.data;
          data.append(pre);
          tr.append(data);
          rows.prepend(tr);
          const empty = document.getElementById("events-empty");
          if (empty) { empty.remove(); }
        }
        rows.dataset.after = String(body.last);
      } catch (err) { /* the next tick tries again */ }
    };
    const set = function () {
      if (follow.checked && timer === null) { poll(); timer = setInterval(poll, 2000); }
      if (!follow.checked && timer !== null) { clearInterval(timer); timer = null; }
    };
    follow.addEventListener("change", set);
    set();
  }
})();
"""


def command_box(ctx: Ctx, text: str = "") -> Safe:
    """The Command OS box: a plain POST form; the script above sends it with fetch instead."""
    return fmt(
        '<div><form method="post" action="{action}" data-command data-waiting="{waiting}" data-failed="{failed}"'
        ' id="command-form">{csrf}<label for="command-text">{title}</label><div class="cmd-row">'
        '<input type="text" id="command-text" name="text" value="{text}" placeholder="{placeholder}"'
        ' maxlength="2000" autocomplete="off"><button type="submit">{send}</button></div>'
        '<output class="cmd-reply" data-reply id="command-reply" hidden></output></form></div>',
        action=ctx.url("/console/command"),
        waiting=ctx.t("command.waiting"),
        failed=ctx.t("command.failed"),
        csrf=hidden(CSRF_FIELD, ctx.csrf),
        title=ctx.t("command.title"),
        text=text,
        placeholder=ctx.t("command.placeholder"),
        send=ctx.t("command.send"),
    )


def flash_box(ctx: Ctx, flash: Flash) -> Safe:
    kind = flash.kind if flash.kind in ("ok", "warn", "error") else "ok"
    confirms = join(
        fmt(
            '<form method="post" action="{action}">{csrf}{fields}<button type="submit" class="secondary"'
            " data-confirm>{label}</button></form>",
            action=c.action,
            csrf=hidden(CSRF_FIELD, ctx.csrf),
            fields=join(hidden(name, value) for name, value in c.fields.items()),
            label=c.label,
        )
        for c in flash.confirm
    )
    link = (
        fmt(' <a href="{href}">{label}</a>', href=flash.link[0], label=flash.link[1])
        if flash.link and len(flash.link) == 2 and flash.link[0].startswith("/console/")
        else Safe("")
    )
    detail = fmt("<small>{d}</small>", d=flash.detail) if flash.detail else Safe("")
    return fmt(
        '<div class="flash flash-{kind}" id="flash" role="status" data-kind="{kind}">'
        "{text}{link}{detail}{confirms}</div>",
        kind=kind,
        text=flash.text,
        link=link,
        detail=detail,
        confirms=confirms,
    )


def _nav(ctx: Ctx, current: str | None) -> Safe:
    links = (
        join(
            fmt(
                '<a href="{href}" id="nav-{name}"{cls}>{label}</a>',
                href=ctx.url(path),
                name=name,
                cls=Safe(' class="current"' if name == current else ""),
                label=ctx.t(label),
            )
            for name, path, label in NAV
        )
        if ctx.account is not None
        else Safe("")
    )
    logout = (
        fmt(
            '<form method="post" action="{action}">{csrf}<button type="submit" id="logout">{label}</button></form>',
            action=ctx.url("/console/logout"),
            csrf=hidden(CSRF_FIELD, ctx.csrf),
            label=ctx.t("logout"),
        )
        if ctx.account is not None
        else Safe("")
    )
    other_lang = "en" if ctx.lang == "es" else "es"
    if ctx.request.method in ("GET", "HEAD"):
        other = ctx.other_lang_url()
    else:  # a page answering a POST: the toggle goes to its section (the POST's URL has no page)
        paths = {name: path for name, path, _ in NAV}
        other = f"{paths.get(current or '', ctx.request.path)}?lang={other_lang}"
    return fmt(
        '<nav><a class="brand" href="{home}">{brand}</a>{links}<span class="spacer"></span>'
        '<a href="{other}" id="lang-toggle" hreflang="{other_lang}">{toggle}</a>{logout}</nav>',
        home=ctx.url("/console/programs"),
        brand=ctx.t("brand"),
        links=links,
        other=other,
        other_lang=other_lang,
        toggle=ctx.t("lang.toggle"),
        logout=logout,
    )


def page(
    ctx: Ctx,
    title: str,
    body: Safe,
    *,
    current: str | None = None,
    status: int = 200,
    command_text: str = "",
    flash: Flash | None = None,
) -> web.Response:
    """A whole console page. The flash shown (the cookie's, or `flash`) is shown once: its cookie goes."""
    nonce = secrets.token_urlsafe(16)
    shown = flash or ctx.flash
    document = fmt(
        '<!doctype html><html lang="{lang}"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1"><link rel="icon" href="data:,">'
        '<title>{title} · Touchline</title><style nonce="{nonce}">{css}</style></head>'
        '<body data-page="{current}"><header>{nav}</header><main>{flash}<h1>{title}</h1>{body}</main>'
        "{command}"
        '<script nonce="{nonce}">{js}</script></body></html>',
        lang=ctx.lang,
        title=title,
        nonce=nonce,
        css=Safe(CSS),
        current=current or "",
        nav=_nav(ctx, current),
        flash=flash_box(ctx, shown) if shown is not None else Safe(""),
        body=body,
        command=fmt('<aside class="command">{box}</aside>', box=command_box(ctx, command_text))
        if ctx.account is not None
        else Safe(""),
        js=Safe(JS),
    )
    response = web.Response(text=document, status=status, content_type="text/html", charset="utf-8")
    response.headers.update(
        {
            "Content-Security-Policy": (
                f"default-src 'self'; script-src 'nonce-{nonce}'; style-src 'nonce-{nonce}'; img-src 'self' data:; "
                "form-action 'self'; frame-ancestors 'none'; base-uri 'none'; object-src 'none'"
            ),
            "X-Content-Type-Options": "nosniff",
            "Referrer-Policy": "same-origin",
            "X-Frame-Options": "DENY",
            "Cache-Control": "no-store",
        }
    )
    if ctx.request.method == "GET" and FLASH_COOKIE in ctx.request.cookies:  # shown now: not again
        response.del_cookie(FLASH_COOKIE, path=COOKIE_PATH)
    return response


def error_page(ctx: Ctx, status: int, title: str, message: str) -> web.Response:
    body = fmt('<section class="card" id="error" data-status="{status}"><p>{message}</p></section>',
               status=status, message=message)  # fmt: skip
    return page(ctx, title, body, status=status)


def table(headers: list[str], rows: list[Safe], *, tbody_attrs: Safe = Safe(""), empty: str = "") -> Safe:
    if not rows and empty:
        return fmt('<p class="muted" id="empty">{empty}</p>', empty=empty)
    return fmt(
        "<table><thead><tr>{head}</tr></thead><tbody{attrs}>{rows}</tbody></table>",
        head=join(fmt("<th>{h}</th>", h=h) for h in headers),
        attrs=tbody_attrs,
        rows=join(rows),
    )


def view(handler: Handler) -> Handler:
    """A console handler whose refusals are pages in the operator's language (JSON to a script)."""

    @functools.wraps(handler)
    async def wrapped(request: web.Request) -> web.StreamResponse:
        try:
            return await handler(request)
        except CsrfRefused:
            return _refusal(request, 403, "error.403.title", ctx_of(request).t("error.403"))
        except NotFound as exc:
            return _refusal(request, 404, "error.404.title", exc.reason or ctx_of(request).t("error.404"))
        except CommandRejected as exc:
            return _refusal(request, 400, "error.title", str(exc))
        except HttpError as exc:
            if exc.status == 401:
                raise
            title = "error.404.title" if exc.status == 404 else "error.title"
            return _refusal(request, exc.status, title, str(exc))
        except asyncpg.UndefinedTableError as exc:
            log.warning("console_read_model_missing", path=request.path, error=str(exc))
            return _refusal(request, 503, "error.503.title", ctx_of(request).t("error.503"))
        except (asyncpg.PostgresConnectionError, asyncpg.InterfaceError, ConnectionError) as exc:
            log.warning("console_database_unavailable", path=request.path, error=type(exc).__name__)
            return _refusal(request, 503, "error.503.title", ctx_of(request).t("error.db"))

    return wrapped


def _refusal(request: web.Request, status: int, title_key: str, message: str) -> web.Response:
    if wants_json(request):
        return error_response(status, message)
    ctx = ctx_of(request)
    return error_page(ctx, status, ctx.t(title_key), message)
