"""The OpenAPI 3.1 document of the HTTP API, served at `/api/openapi.json`.

Each route is listed once here with its parameters and the msgspec types of its body; the
schemas come from those types (`msgspec.json.schema_components`), so the document and the
validation cannot drift apart. A test checks that every route the app serves is documented.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Final

import msgspec
from aiohttp import web

from gateways.http import json_response


class Param(msgspec.Struct, frozen=True, kw_only=True):
    name: str
    where: str = "query"  # query | path | header
    type: str = "string"  # string | integer | boolean
    required: bool = False
    description: str = ""
    repeat: bool = False


class Operation(msgspec.Struct, frozen=True, kw_only=True):
    method: str
    path: str
    summary: str
    tag: str
    auth: str = "bearer"  # bearer | none | twilio | telnyx | meta | elastic | stream-token
    body: Any = None  # a msgspec Struct type
    params: Sequence[Param] = ()
    produces: str = "application/json"


_OPERATIONS: list[Operation] = []


def document_routes(*operations: Operation) -> None:
    """Route modules describe what they serve (called when they are imported)."""
    known = {(o.method, o.path) for o in _OPERATIONS}
    _OPERATIONS.extend(o for o in operations if (o.method, o.path) not in known)


def operations() -> list[Operation]:
    return list(_OPERATIONS)


_ERROR: Final = {
    "type": "object",
    "required": ["error"],
    "properties": {"error": {"type": "string"}, "field": {"type": ["string", "null"]}},
}


def build_document(server_url: str | None = None) -> dict[str, Any]:
    bodies = sorted({o.body for o in _OPERATIONS if o.body is not None}, key=lambda t: t.__name__)
    schemas: dict[str, Any] = {}
    refs: dict[Any, Any] = {}
    if bodies:
        refs_list, components = msgspec.json.schema_components(bodies, ref_template="#/components/schemas/{name}")
        schemas.update(components)
        refs = dict(zip(bodies, refs_list, strict=True))
    schemas["Error"] = _ERROR
    paths: dict[str, dict[str, Any]] = {}
    for op in sorted(_OPERATIONS, key=lambda o: (o.path, o.method)):
        entry: dict[str, Any] = {
            "summary": op.summary,
            "tags": [op.tag],
            "operationId": _operation_id(op),
            "responses": {
                "200": {"description": "OK", "content": {op.produces: {}}},
                "400": {"description": "bad input, naming the field", "content": _json_error()},
                "404": {"description": "not this account's, or unknown", "content": _json_error()},
            },
        }
        if op.auth == "bearer":
            entry["security"] = [{"bearer": []}]
            entry["responses"]["401"] = {"description": "no valid token for an account", "content": _json_error()}
        elif op.auth in ("twilio", "telnyx", "meta", "elastic"):
            entry["security"] = []
            entry["description"] = (
                "Verified by the secret token in its URL instead of a bearer token."
                if op.auth == "elastic"
                else f"Verified by the {op.auth.title()} signature instead of a token."
            )
            entry["responses"]["403"] = {"description": "forged, unsigned or stale", "content": _json_error()}
        else:
            entry["security"] = []
        if op.params:
            entry["parameters"] = [
                {
                    "name": p.name,
                    "in": p.where,
                    "required": p.required or p.where == "path",
                    "description": p.description,
                    "schema": {"type": "array", "items": {"type": p.type}} if p.repeat else {"type": p.type},
                    **({"explode": True} if p.repeat else {}),
                }
                for p in op.params
            ]
        if op.body is not None:
            entry["requestBody"] = {"required": True, "content": {"application/json": {"schema": refs[op.body]}}}
        paths.setdefault(op.path, {})[op.method.lower()] = entry
    doc: dict[str, Any] = {
        "openapi": "3.1.0",
        "info": {
            "title": "Touchline",
            "version": "1",
            "description": "Lead generation and outreach for car dealers: campaigns, LeadGen programs, leads, "
            "Command OS, the event log. Every route needs `Authorization: Bearer <token>` of one account "
            "(`touchline tokens create --account A`) unless it says otherwise.",
        },
        "paths": paths,
        "components": {
            "schemas": schemas,
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer", "bearerFormat": "tl_…"}},
        },
    }
    if server_url:
        doc["servers"] = [{"url": server_url}]
    return doc


def _operation_id(op: Operation) -> str:
    path = op.path.strip("/").replace("/", "_").replace("{", "").replace("}", "").replace(".", "_").replace("-", "_")
    return f"{op.method.lower()}_{path}"


def _json_error() -> dict[str, Any]:
    return {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}


async def openapi_json(request: web.Request) -> web.Response:
    return json_response(build_document(f"{request.scheme}://{request.host}"))


def add_routes(app: web.Application) -> None:
    app.router.add_get("/api/openapi.json", openapi_json)
