"""`POST /api/command-os`: the operator's words in, the answer (and what was done) out."""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any, Final

import msgspec
from aiohttp import web

from gateways.command_os import CommandOS
from gateways.http import ACCOUNT, STORE, HttpError, json_response, read_json
from gateways.openai_chat import OpenAIChat

MAX_TEXT: Final = 2000
COMMAND_OS: Final = web.AppKey("command_os", CommandOS)


class CommandBody(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    text: str
    operator: str | None = None


async def command_os(request: web.Request) -> web.Response:
    body = await read_json(request, CommandBody)
    text = body.text.strip()
    if not text:
        raise HttpError(400, "text is empty: type what you want, e.g. «¿qué campañas están activas?»", field="text")
    if len(text) > MAX_TEXT:
        raise HttpError(400, f"text is {len(text)} characters; at most {MAX_TEXT}", field="text")
    operator = (body.operator or "api").strip()[:120] or "api"
    answer = await request.app[COMMAND_OS].handle(request[ACCOUNT], text, operator=operator)
    payload: dict[str, Any] = msgspec.to_builtins(answer)
    return json_response(payload)


def add_routes(app: web.Application, env: Mapping[str, str] | None = None) -> None:
    env = os.environ if env is None else env
    app[COMMAND_OS] = CommandOS(app[STORE], OpenAIChat.from_env(env))
    app.router.add_post("/api/command-os", command_os)
