"""The OpenAPI document: served without a token, valid in shape, and naming every route the app serves."""

from __future__ import annotations

import aiohttp

from events.postgres import PostgresEventStore
from events.settings import Settings
from gateways.http import create_app, serve_http
from gateways.openapi import build_document

# Served, but not API operations a client calls: aiohttp's HEAD twins of GET routes.
_NOT_OPERATIONS = {"HEAD"}


def test_every_route_the_app_serves_is_in_the_document(pg_store: PostgresEventStore) -> None:
    app = create_app(pg_store, Settings(), {})
    served = set()
    for route in app.router.routes():
        info = route.resource.get_info() if route.resource is not None else {}
        path = info.get("path") or info.get("formatter")
        if route.method not in _NOT_OPERATIONS and path and not str(path).startswith("/console"):
            served.add((route.method.lower(), str(path)))
    document = build_document()
    documented = {(method, path) for path, ops in document["paths"].items() for method in ops}
    assert served - documented == set(), "serve these, document them"
    assert documented - served == set(), "documented but not served"


def test_the_document_describes_bodies_security_and_errors() -> None:
    document = build_document("https://touchline.example")
    assert document["openapi"] == "3.1.0" and document["servers"] == [{"url": "https://touchline.example"}]
    command = document["paths"]["/api/command-os"]["post"]
    assert command["security"] == [{"bearer": []}] and "401" in command["responses"]
    body = command["requestBody"]["content"]["application/json"]["schema"]
    assert body == {"$ref": "#/components/schemas/CommandBody"}
    schema = document["components"]["schemas"]["CommandBody"]
    assert schema["required"] == ["text"] and schema["properties"]["text"]["type"] == "string"
    assert document["paths"]["/webhooks/twilio/sms"]["post"]["security"] == []
    assert document["paths"]["/health"]["get"]["security"] == []
    ids = [op["operationId"] for ops in document["paths"].values() for op in ops.values()]
    assert len(ids) == len(set(ids))


async def test_it_is_served_without_a_token(pg_store: PostgresEventStore) -> None:
    async with (
        serve_http(pg_store, Settings(), host="127.0.0.1", port=0, env={}) as url,
        aiohttp.ClientSession() as http,
        http.get(f"{url}/api/openapi.json") as resp,
    ):
        assert resp.status == 200
        document = await resp.json()
    assert document["info"]["title"] == "Touchline" and "/api/programs/list" in document["paths"]
