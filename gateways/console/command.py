"""The Command OS box: `POST /console/command` → `CommandOS.handle(..., operator="console")`.

Without JS the form posts and the page shows the answer; the page's script posts the same form
with `Accept: application/json` and shows the answer in place.
"""

from __future__ import annotations

from typing import Any, Final

import msgspec
from aiohttp import web

from actors.command_parse import help_text
from gateways.api_command_os import COMMAND_OS, MAX_TEXT
from gateways.command_os import CommandOS
from gateways.console.layout import page, view
from gateways.console.markup import Safe, fmt
from gateways.console.session import Ctx, checked_form, ctx_of, wants_json
from gateways.http import error_response, json_response

PATH: Final = "/console/command"
# The console's own Command OS, made only when the app has none (`gateways.api_command_os` makes one).
CONSOLE_COMMAND_OS: Final = web.AppKey("console_command_os", CommandOS)


def command_os(app: web.Application) -> CommandOS:
    return app[COMMAND_OS] if COMMAND_OS in app else app[CONSOLE_COMMAND_OS]


def _body(ctx: Ctx, asked: str | None = None, reply: str | None = None, outcome: str = "") -> Safe:
    answer = (
        fmt(
            '<section class="card" id="command-answer" data-outcome="{outcome}"><p><strong>{you}:</strong> '
            '<span id="command-asked">{asked}</span></p><p><strong>{label}:</strong></p><pre id="command-answer-text">'
            "{reply}</pre></section>",
            outcome=outcome,
            you=ctx.t("command.you_asked"),
            asked=asked,
            label=ctx.t("command.answer"),
            reply=reply,
        )
        if asked is not None
        else Safe("")
    )
    return fmt(
        '{answer}<section class="card"><p class="muted">{intro}</p><pre id="command-help">{examples}</pre></section>',
        answer=answer,
        intro=ctx.t("command.intro"),
        examples=help_text(ctx.lang),
    )


@view
async def command_page(request: web.Request) -> web.StreamResponse:
    ctx = ctx_of(request)
    return page(ctx, ctx.t("nav.command"), _body(ctx), current="command")


@view
async def run_command(request: web.Request) -> web.StreamResponse:
    ctx = ctx_of(request)
    form = await checked_form(request)
    text = form.get("text", "").strip()
    problem = (
        ctx.t("command.empty")
        if not text
        else ctx.t("command.too_long", n=len(text), max=MAX_TEXT)
        if len(text) > MAX_TEXT
        else None
    )
    if problem is not None:
        if wants_json(request):
            return error_response(400, problem, field="text")
        body = _body(ctx, text[:200], problem, "rejected")
        return page(ctx, ctx.t("nav.command"), body, current="command", status=400)
    answer = await command_os(request.app).handle(ctx.account_id, text, operator="console")
    if wants_json(request):
        payload: dict[str, Any] = msgspec.to_builtins(answer)
        return json_response(payload)
    body = _body(ctx, text, answer.reply, answer.outcome)
    return page(ctx, ctx.t("nav.command"), body, current="command")
