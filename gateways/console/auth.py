"""`/console/login` (public: a form for the API token, which becomes the session cookie) and logout.

The token is checked by the rules the app's bearer middleware applies (well formed, known by its
sha256 in `touchline.api_tokens`, not revoked); it is never shown back, logged or put in a URL.
"""

from __future__ import annotations

from uuid import UUID

from aiohttp import web

from actors.access import token_sha256, well_formed
from gateways.console.layout import page, view
from gateways.console.markup import Safe, fmt, hidden
from gateways.console.session import (
    COOKIE_PATH,
    LOGIN_PATH,
    SESSION_MAX_AGE_S,
    TOKEN_COOKIE,
    Ctx,
    Flash,
    checked_form,
    ctx_of,
    redirect,
    safe_next,
)
from gateways.http import STORE


async def account_for_token(request: web.Request, token: str) -> tuple[UUID | None, str, dict[str, object]]:
    """The account a token belongs to, or None and the label key (with values) saying why not."""
    if not token:
        return None, "login.missing", {}
    if not well_formed(token):
        return None, "login.malformed", {}
    row = await request.app[STORE].pool.fetchrow(
        "select account_id, revoked_at from touchline.api_tokens where token_sha256 = $1", token_sha256(token)
    )
    if row is None:
        return None, "login.unknown", {}
    if row["revoked_at"] is not None:
        return None, "login.revoked", {"at": f"{row['revoked_at']:%Y-%m-%d %H:%M} UTC"}
    account: UUID = row["account_id"]
    return account, "", {}


def _login_page(ctx: Ctx, next_url: str, *, error: str | None = None, status: int = 200) -> web.Response:
    notice = (
        fmt('<p class="field-error" id="login-error" role="alert">{e}</p>', e=error) if error is not None else Safe("")
    )
    expired = ctx.request.query.get("expired") == "1" and error is None
    body = fmt(
        '<section class="card"><form method="post" action="{action}" id="login-form">{next}'
        '<p class="muted">{help}</p><label for="token">{label}</label>'
        '<input type="password" id="token" name="token" autocomplete="current-password" required'
        ' aria-invalid="{invalid}" aria-describedby="login-error">{notice}'
        '<p><button type="submit" id="login-submit">{submit}</button></p></form></section>',
        action=ctx.url(LOGIN_PATH),
        next=hidden("next", next_url),
        help=ctx.t("login.help"),
        label=ctx.t("login.token"),
        invalid="true" if error else "false",
        notice=notice,
        submit=ctx.t("login.submit"),
    )
    flash = Flash(kind="warn", text=ctx.t("login.expired")) if expired else None
    return page(ctx, ctx.t("login.title"), body, current="login", status=status, flash=flash)


@view
async def login_form(request: web.Request) -> web.StreamResponse:
    ctx = ctx_of(request)
    return _login_page(ctx, safe_next(request.query.get("next")))


@view
async def login(request: web.Request) -> web.StreamResponse:
    ctx = ctx_of(request)
    raw = await request.post()
    token = raw.get("token")
    token = token.strip() if isinstance(token, str) else ""
    raw_next = raw.get("next")
    next_url = safe_next(raw_next if isinstance(raw_next, str) else None)
    account, why, values = await account_for_token(request, token)
    if account is None:
        return _login_page(ctx, next_url, error=ctx.t(why, **values), status=401)
    if ctx.lang != "es" and "lang=" not in next_url:
        next_url += ("&" if "?" in next_url else "?") + f"lang={ctx.lang}"
    response = redirect(next_url)
    response.set_cookie(
        TOKEN_COOKIE,
        token,
        path=COOKIE_PATH,
        httponly=True,
        samesite="Lax",
        secure=request.secure,
        max_age=SESSION_MAX_AGE_S,
    )
    return response


@view
async def logout(request: web.Request) -> web.StreamResponse:
    ctx = ctx_of(request)
    await checked_form(request)
    response = redirect(ctx.url(LOGIN_PATH), Flash(kind="ok", text=ctx.t("logged_out")))
    response.del_cookie(TOKEN_COOKIE, path=COOKIE_PATH)
    return response
