"""The operator console: server-rendered HTML pages under `/console/`, served by the HTTP app.

Programs, campaigns, leads, the event log, settings (onboarding) and a Command OS box on every
page, in Spanish (the default) or English (`?lang=en`). The pages read the read models and the
log; changes go through the actors' commands, like the API's.

Wiring (`gateways.http.create_app`): `add_routes(app)` registers the routes (a second call does
nothing), and `cookie_auth_middleware` must be in the app's middleware list, first, so a
browser's session cookie reaches the app's bearer-token check as `Authorization: Bearer`.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Final

from aiohttp import web

from gateways.api_command_os import COMMAND_OS
from gateways.command_os import CommandOS
from gateways.console import auth, campaigns, command, eventlog, leads, programs, settings
from gateways.console.layout import error_page, view
from gateways.console.session import (
    HOME_PATH,
    LOGIN_PATH,
    PUBLIC_PATHS,
    TOKEN_COOKIE,
    cookie_auth_middleware,
    ctx_of,
    redirect,
)
from gateways.http import STORE
from gateways.openai_chat import OpenAIChat

__all__ = ["LOGIN_PATH", "PUBLIC_PATHS", "TOKEN_COOKIE", "add_routes", "cookie_auth_middleware"]

REGISTERED: Final = web.AppKey("console_registered", bool)


async def _home(request: web.Request) -> web.StreamResponse:
    return redirect(ctx_of(request).url(HOME_PATH))


@view
async def _not_found(request: web.Request) -> web.StreamResponse:
    ctx = ctx_of(request)
    return error_page(ctx, 404, ctx.t("error.404.title"), ctx.t("error.404"))


def add_routes(app: web.Application, env: Mapping[str, str] | None = None) -> None:
    """The console's routes on `app` (once: a second call changes nothing).

    Command OS is the app's own (`gateways.api_command_os`) when it has one; otherwise the console
    makes one from `env` (default: the process environment).
    """
    if app.get(REGISTERED):
        return
    app[REGISTERED] = True
    if COMMAND_OS not in app:
        chat = OpenAIChat.from_env(os.environ if env is None else env)
        app[command.CONSOLE_COMMAND_OS] = CommandOS(app[STORE], chat)
    r = app.router
    r.add_get(LOGIN_PATH, auth.login_form)
    r.add_post(LOGIN_PATH, auth.login)
    r.add_post("/console/logout", auth.logout)
    r.add_get("/console", _home)
    r.add_get("/console/", _home)
    r.add_get(programs.PATH, programs.programs_page)
    r.add_post(programs.PATH + "/{key}/start", programs.start_program)
    r.add_post(programs.PATH + "/{key}/stop", programs.stop_program)
    r.add_get(campaigns.PATH, campaigns.campaigns_page)
    r.add_post(campaigns.PATH + "/pause-all", campaigns.pause_all)
    r.add_post(campaigns.PATH + "/{id}/toggle", campaigns.toggle_campaign)
    r.add_get(leads.PATH, leads.leads_page)
    r.add_get(leads.PATH + "/{id}", leads.lead_page)
    r.add_get(eventlog.PATH, eventlog.events_page)
    r.add_get(eventlog.JSON_PATH, eventlog.events_json)
    r.add_get(settings.PATH, settings.settings_page)
    r.add_post(settings.PATH + "/identity", settings.save_identity)
    r.add_post(settings.PATH + "/contact", settings.save_contact)
    r.add_post(settings.PATH + "/routing", settings.save_routing)
    r.add_post(settings.PATH + "/senders", settings.save_senders)
    r.add_get(command.PATH, command.command_page)
    r.add_post(command.PATH, command.run_command)
    r.add_get("/console/{tail:.*}", _not_found)  # last: any other console page is an HTML 404
