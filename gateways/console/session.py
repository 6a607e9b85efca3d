"""The console's session: the token cookie, CSRF codes, flash messages and the cookie middleware.

A browser cannot send `Authorization: Bearer` on navigation, so after `/console/login` the
token lives in the `touchline_token` cookie (HttpOnly, SameSite=Lax, path `/console`), and
`cookie_auth_middleware` copies it into the Authorization header of console requests before the
app's bearer middleware looks at them: one token check for the API and the console alike.

Every POST form carries `csrf`, an HMAC keyed by the session's token; a POST without it (or
with another) is refused with 403 before anything is done. A page on another site can neither
read the HttpOnly cookie nor compute the code from it, and since the code needs no server-side
secret it holds across restarts and across every HTTP process behind a load balancer.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Final
from urllib.parse import urlencode
from uuid import UUID

import msgspec
from aiohttp import web
from multidict import CIMultiDict

from gateways.console.i18n import Lang, parse_lang, t
from gateways.http import ACCOUNT, Unauthorized

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

TOKEN_COOKIE: Final = "touchline_token"
FLASH_COOKIE: Final = "touchline_flash"
COOKIE_PATH: Final = "/console"
SESSION_MAX_AGE_S: Final = 12 * 3600
CSRF_FIELD: Final = "csrf"

LOGIN_PATH: Final = "/console/login"
HOME_PATH: Final = "/console/programs"
# Console routes anyone may reach: the login itself (and any static files under this prefix).
PUBLIC_PATHS: Final = frozenset({LOGIN_PATH})
PUBLIC_PREFIX: Final = "/console/static/"
# Console routes a script calls: refused with the app's JSON 401, never sent to the login page.
JSON_PATHS: Final = frozenset({"/console/events.json"})



class CsrfRefused(Exception):
    """A POST without this session's CSRF code."""


# --- which requests are the console's ------------------------------------------------------------


def console_route(request: web.Request) -> str | None:
    """The console route a request matched (its canonical path), or None when it is not the console's.

    Decided by the matched route like the app's `_is_public`, so no spelling of a path brings the
    cookie to a route outside `/console`.
    """
    resource = request.match_info.route.resource
    if resource is None:
        return None
    path = resource.canonical
    return path if path == "/console" or path.startswith("/console/") else None


def is_public(route: str) -> bool:
    return route in PUBLIC_PATHS or route.startswith(PUBLIC_PREFIX)


def wants_json(request: web.Request) -> bool:
    return "application/json" in request.headers.get("Accept", "")


# --- the token and CSRF ----------------------------------------------------------------------------


def session_token(request: web.Request) -> str | None:
    """The token this request was authenticated with (the cookie's, once the middleware copied it)."""
    scheme, _, token = request.headers.get("Authorization", "").strip().partition(" ")
    token = token.strip()
    return token if scheme.lower() == "bearer" and token else None


def csrf_for(token: str) -> str:
    return hmac.new(token.encode(), b"touchline-console-csrf", hashlib.sha256).hexdigest()


def csrf_token(request: web.Request) -> str:
    token = session_token(request)
    return "" if token is None else csrf_for(token)


async def checked_form(request: web.Request) -> dict[str, str]:
    """The POST's form fields (text only; the first of each name), once its CSRF code is this session's."""
    raw = await request.post()
    # NUL cannot be stored as text (and no browser sends one): dropped rather than failing the write.
    form = {name: value.replace("\x00", "") for name, value in reversed(list(raw.items())) if isinstance(value, str)}
    expected = csrf_token(request)
    if not expected or not hmac.compare_digest(form.get(CSRF_FIELD, "").encode(), expected.encode()):
        raise CsrfRefused
    return form


def safe_next(raw: str | None) -> str:
    """Where to go after logging in: a console page of this server, never somewhere else."""
    target = (raw or "").strip()
    if (
        not target.startswith("/console/")
        or target.startswith("//")
        or "\\" in target
        or any(ord(c) < 0x21 for c in target)
        or target.split("?", 1)[0] == LOGIN_PATH
    ):
        return HOME_PATH
    return target


# --- flash messages --------------------------------------------------------------------------------


class Confirm(msgspec.Struct, frozen=True, kw_only=True):
    """A button the next page offers: a POST to `action` with `fields` (e.g. start with confirm=1)."""

    action: str
    label: str
    fields: dict[str, str] = {}


class Flash(msgspec.Struct, frozen=True, kw_only=True):
    kind: str  # ok | warn | error
    text: str
    detail: str | None = None
    confirm: list[Confirm] = []
    link: list[str] | None = None  # [href, label]


_flash_decoder: Final = msgspec.json.Decoder(Flash)
MAX_FLASH: Final = 1500


def set_flash(response: web.StreamResponse, flash: Flash) -> None:
    detail = flash.detail[:MAX_FLASH] if flash.detail else None
    clipped = msgspec.structs.replace(flash, text=flash.text[:MAX_FLASH], detail=detail)
    value = base64.urlsafe_b64encode(msgspec.json.encode(clipped)).decode()
    response.set_cookie(FLASH_COOKIE, value, path=COOKIE_PATH, httponly=True, samesite="Lax", max_age=60)


def read_flash(request: web.Request) -> Flash | None:
    raw = request.cookies.get(FLASH_COOKIE)
    if not raw:
        return None
    try:
        flash = _flash_decoder.decode(base64.urlsafe_b64decode(raw.encode()))
    except (binascii.Error, ValueError, msgspec.DecodeError):
        return None
    # Only this console's own forms are offered again.
    return msgspec.structs.replace(flash, confirm=[c for c in flash.confirm if c.action.startswith("/console/")])


# --- the request context ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Ctx:
    """What every console page needs: the request, its language, the account and the CSRF code."""

    request: web.Request
    lang: Lang
    account: UUID | None
    csrf: str
    flash: Flash | None

    def t(self, key: str, **values: object) -> str:
        return t(self.lang, key, **values)

    def url(self, path: str, **query: object) -> str:
        """A console URL in this language, with the query's non-empty values."""
        params = {k: str(v) for k, v in query.items() if v is not None and v != ""}
        if self.lang != "es":
            params["lang"] = self.lang
        return path + ("?" + urlencode(params) if params else "")

    def other_lang_url(self) -> str:
        other = "en" if self.lang == "es" else "es"
        return str(self.request.rel_url.update_query(lang=other))

    @property
    def account_id(self) -> UUID:
        assert self.account is not None, "a guarded console route always has an account"
        return self.account


def ctx_of(request: web.Request) -> Ctx:
    return Ctx(
        request=request,
        lang=parse_lang(request.query.get("lang")),
        account=request.get(ACCOUNT),
        csrf=csrf_token(request),
        flash=read_flash(request) if request.method == "GET" else None,
    )


def redirect(location: str, flash: Flash | None = None) -> web.Response:
    """303 See Other (a POST's answer: the browser GETs the page again, reading what is now true)."""
    response = web.Response(status=303, headers={"Location": location, "Cache-Control": "no-store"})
    if flash is not None:
        set_flash(response, flash)
    return response


# --- the middleware --------------------------------------------------------------------------------


def _to_login(request: web.Request, route: str) -> web.Response:
    """A console page refused for want of a valid token: to the login page, where it can be given."""
    lang = parse_lang(request.query.get("lang"))
    query = {"next": request.path_qs} if request.method == "GET" and route != "/console" else {}
    if TOKEN_COOKIE in request.cookies:
        query["expired"] = "1"
    if lang != "es":
        query["lang"] = lang
    response = web.Response(
        status=303,
        headers={"Location": LOGIN_PATH + ("?" + urlencode(query) if query else ""), "Cache-Control": "no-store"},
    )
    if TOKEN_COOKIE in request.cookies:
        response.del_cookie(TOKEN_COOKIE, path=COOKIE_PATH)
    return response


@web.middleware
async def cookie_auth_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Console requests with the `touchline_token` cookie get it as `Authorization: Bearer`.

    - Routes outside `/console`: untouched (the cookie never authenticates the API).
    - The login page: answered here, without the token check (it is where a token is given).
    - A console page refused with 401 (no cookie, a revoked or unknown token): a redirect to the
      login page, dropping the cookie; `/console/events.json` and requests that accept JSON (the
      page's scripts) keep the app's JSON 401.
    - A request that brings its own Authorization header keeps it.

    Works first in the app's middleware list (then the 401 comes back as the JSON answer of the
    app's error middleware) or right before the bearer middleware (then as `Unauthorized`).
    """
    route = console_route(request)
    if route is None:
        return await handler(request)
    if is_public(route):
        return await request.match_info.handler(request)
    token = request.cookies.get(TOKEN_COOKIE, "").strip()
    if token and "Authorization" not in request.headers:
        headers = CIMultiDict(request.headers)
        headers["Authorization"] = f"Bearer {token}"
        request = request.clone(headers=headers)
    try:
        response = await handler(request)
    except Unauthorized:
        if route in JSON_PATHS or wants_json(request):
            raise
        return _to_login(request, route)
    if response.status == 401 and route not in JSON_PATHS and not wants_json(request):
        return _to_login(request, route)
    return response
