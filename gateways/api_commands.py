"""`POST /api/commands/{name}`: the bus's commands over HTTP, for services that do not speak NATS.

The same commands, checks and answer as `{prefix}.commands.{account}.{name}` on the bus
(`gateways.command_bus`), for the account of the bearer token. `Idempotency-Key` (or
`command_id` in the body) makes a retried request answer from the log instead of acting twice.
A refusal is a 400 (404 when the command names something the account does not have) with the
same body: `{"ok": false, "error", "field"}`.
"""

from __future__ import annotations

from typing import Final

from aiohttp import web

from events.postgres import PostgresEventStore
from gateways.command_bus import Commands, command_id_from
from gateways.http import ACCOUNT, STORE, json_response

COMMANDS: Final = web.AppKey("commands", Commands)


async def command(request: web.Request) -> web.Response:
    name = request.match_info["name"]
    data = await request.read()
    given = command_id_from(request.headers.get("Idempotency-Key"), "idempotency-key")
    answer = await request.app[COMMANDS].carry_out(request[ACCOUNT], name, data, given)
    if answer["ok"]:
        return json_response(answer)
    return json_response(answer, status=404 if answer.get("not_found") else 400)


def add_routes(app: web.Application) -> None:
    store: PostgresEventStore = app[STORE]
    app[COMMANDS] = Commands(store)
    app.router.add_post("/api/commands/{name}", command)
