"""`/console/settings`: the three onboarding steps, a form each (identity, contact, LeadGen routing),
and the account's own senders.

Each step posts to `actors.org.OrgSettings` (`update` for identity and contact, `set_routing`
for routing). A refusal (`CommandRejected`) is shown next to the field it names, with every
value as typed. Identity and contact are one event (`OrgSettingsUpdated` needs the email), so a
first step 1 is checked by the same rules and carried into step 2, where both are saved.
"""

from __future__ import annotations

from typing import Final

from aiohttp import web

from actors.org import OrgSettings, OrgState
from events.catalog import LeadgenRouting
from events.errors import CommandRejected
from events.memory import InMemoryEventStore
from gateways.console.layout import page, view
from gateways.console.markup import Safe, checked, fmt, hidden, join
from gateways.console.session import CSRF_FIELD, Ctx, Flash, checked_form, ctx_of, redirect
from gateways.http import STORE

PATH: Final = "/console/settings"
DEFAULT_VERTICAL: Final = "car_dealer"
# Stands in for the email while step 1 alone is checked (it is never stored).
_PLACEHOLDER_EMAIL: Final = "onboarding-check@example.com"

STEP_FIELDS: Final = {
    1: ("business_name", "vertical"),
    2: ("contact_email", "contact_phone", "contact_whatsapp"),
    3: ("dealer_address", "radius_miles", "city_fallback", "active"),
}
SENDER_FIELDS: Final = ("sender_sms", "sender_voice", "sender_whatsapp", "sender_email")
_TYPES: Final = {
    "contact_email": "email",
    "contact_phone": "tel",
    "contact_whatsapp": "tel",
    "radius_miles": "number",
    "sender_sms": "tel",
    "sender_voice": "tel",
    "sender_email": "email",
}


def _current(state: OrgState) -> dict[str, str]:
    routing = state.leadgen_routing or LeadgenRouting()
    return {
        "business_name": state.business_name or "",
        "vertical": state.vertical or DEFAULT_VERTICAL,
        "contact_email": state.contact_email or "",
        "contact_phone": state.contact_phone or "",
        "contact_whatsapp": state.contact_whatsapp or "",
        "dealer_address": routing.dealer_address or "",
        "radius_miles": str(routing.radius_miles),
        "city_fallback": routing.city_fallback or "",
        "active": "1" if routing.active else "",
        **{f"sender_{channel}": value for channel, value in state.senders.items()},
    }


def _field(ctx: Ctx, name: str, value: str, error: str | None) -> Safe:
    message = (
        fmt('<p class="field-error" id="error-{name}" role="alert">{e}</p>', name=name, e=error) if error else Safe("")
    )
    if name == "active":
        return fmt(
            '<label class="check"><input type="checkbox" name="active" value="1" id="field-active"{c}> {label}</label>'
            "{message}",
            c=checked(value == "1"),
            label=ctx.t("settings.active"),
            message=message,
        )
    return fmt(
        '<label for="field-{name}">{label}</label><input type="{type}" name="{name}" id="field-{name}" value="{value}"'
        ' aria-invalid="{invalid}"{extra}>{message}',
        name=name,
        label=ctx.t(f"settings.{name}"),
        type=_TYPES.get(name, "text"),
        value=value,
        invalid="true" if error else "false",
        extra=Safe(' step="1"' if name == "radius_miles" else ""),
        message=message,
    )


def _render(
    ctx: Ctx,
    state: OrgState,
    *,
    typed: dict[str, str] | None = None,
    errors: dict[str, str] | None = None,
    draft: dict[str, str] | None = None,
    flash: Flash | None = None,
    status: int = 200,
) -> web.Response:
    values = {**_current(state), **(draft or {}), **(typed or {})}
    errors = errors or {}
    done = {
        1: bool(state.business_name),
        2: bool(state.contact_email),
        3: state.leadgen_routing is not None,
    }
    actions = {1: "identity", 2: "contact", 3: "routing"}
    steps = []
    for step, fields in STEP_FIELDS.items():
        carried = join(hidden(name, value) for name, value in draft.items()) if step == 2 and draft else Safe("")
        steps.append(
            fmt(
                '<section class="card" id="step-{step}" data-done="{done}"><h2>{title} '
                '<span class="badge {cls}">{state}</span></h2>'
                '<form method="post" action="{action}" id="form-step-{step}" novalidate>{csrf}{carried}{fields}'
                '<p><button type="submit" id="save-step-{step}">{save}</button></p></form></section>',
                step=step,
                done="true" if done[step] else "false",
                title=ctx.t(f"settings.step{step}"),
                cls="state-active" if done[step] else "state-paused",
                state=ctx.t("settings.done" if done[step] else "settings.todo"),
                action=ctx.url(f"{PATH}/{actions[step]}"),
                csrf=hidden(CSRF_FIELD, ctx.csrf),
                carried=carried,
                fields=join(_field(ctx, name, values.get(name, ""), errors.get(name)) for name in fields),
                save=ctx.t("save"),
            )
        )
    steps.append(
        fmt(
            '<section class="card" id="senders"><h2>{title}</h2><p class="muted">{help}</p>'
            '<form method="post" action="{action}" id="form-senders" novalidate>{csrf}{fields}'
            '<p><button type="submit" id="save-senders">{save}</button></p></form></section>',
            title=ctx.t("settings.senders"),
            help=ctx.t("settings.senders_help"),
            action=ctx.url(f"{PATH}/senders"),
            csrf=hidden(CSRF_FIELD, ctx.csrf),
            fields=join(_field(ctx, name, values.get(name, ""), errors.get(name)) for name in SENDER_FIELDS),
            save=ctx.t("save"),
        )
    )
    body = fmt('<div class="steps">{steps}</div>', steps=join(steps))
    return page(ctx, ctx.t("settings.title"), body, current="settings", status=status, flash=flash)


def _refused(
    ctx: Ctx, state: OrgState, typed: dict[str, str], exc: CommandRejected, draft: dict[str, str] | None = None
) -> web.Response:
    shown = {name for fields in STEP_FIELDS.values() for name in fields} | set(SENDER_FIELDS)
    field = exc.field if exc.field in shown else None
    if exc.command == "settings.senders" and f"sender_{exc.field}" in shown:
        field = f"sender_{exc.field}"  # the command names the channel
    return _render(
        ctx,
        state,
        typed=typed,
        errors={field: exc.reason} if field else {},
        draft=draft,
        # A refusal naming no field of the form is said in full above the form.
        flash=Flash(kind="error", text=ctx.t("settings.fix"), detail=None if field else str(exc)),
        status=400,
    )


def _take(form: dict[str, str], step: int) -> dict[str, str]:
    return {name: form.get(name, "").strip() for name in STEP_FIELDS[step]}


@view
async def settings_page(request: web.Request) -> web.StreamResponse:
    ctx = ctx_of(request)
    return _render(ctx, await OrgSettings(request.app[STORE]).get(ctx.account_id))


@view
async def save_identity(request: web.Request) -> web.StreamResponse:
    ctx = ctx_of(request)
    form = await checked_form(request)
    typed = _take(form, 1)
    vertical = typed["vertical"] or DEFAULT_VERTICAL
    org = OrgSettings(request.app[STORE])
    state = await org.get(ctx.account_id)
    if state.contact_email is None:
        # Not saved yet: checked by the same rules, then carried into step 2.
        try:
            await OrgSettings(InMemoryEventStore()).update(
                ctx.account_id,
                business_name=typed["business_name"],
                contact_email=_PLACEHOLDER_EMAIL,
                vertical=vertical,
            )
        except CommandRejected as exc:
            return _refused(ctx, state, typed, exc)
        draft = {"business_name": typed["business_name"], "vertical": vertical}
        return _render(ctx, state, draft=draft, flash=Flash(kind="ok", text=ctx.t("settings.draft1")))
    try:
        await org.update(
            ctx.account_id,
            business_name=typed["business_name"],
            vertical=vertical,
            contact_email=state.contact_email,
            contact_phone=state.contact_phone,
            contact_whatsapp=state.contact_whatsapp,
        )
    except CommandRejected as exc:
        return _refused(ctx, state, typed, exc)
    return redirect(ctx.url(PATH) + "#step-2", Flash(kind="ok", text=ctx.t("settings.saved1")))


@view
async def save_contact(request: web.Request) -> web.StreamResponse:
    ctx = ctx_of(request)
    form = await checked_form(request)
    typed = _take(form, 2)
    org = OrgSettings(request.app[STORE])
    state = await org.get(ctx.account_id)
    # Step 1 as carried from a first step 1, else as saved.
    draft = {name: form[name].strip() for name in STEP_FIELDS[1] if name in form}
    name = draft.get("business_name", state.business_name or "")
    vertical = draft.get("vertical") or state.vertical or DEFAULT_VERTICAL
    try:
        await org.update(
            ctx.account_id,
            business_name=name,
            vertical=vertical,
            contact_email=typed["contact_email"],
            contact_phone=typed["contact_phone"] or None,
            contact_whatsapp=typed["contact_whatsapp"] or None,
        )
    except CommandRejected as exc:
        return _refused(ctx, state, typed, exc, draft=draft)
    return redirect(ctx.url(PATH) + "#step-3", Flash(kind="ok", text=ctx.t("settings.saved2")))


@view
async def save_routing(request: web.Request) -> web.StreamResponse:
    ctx = ctx_of(request)
    form = await checked_form(request)
    typed = _take(form, 3)
    typed["active"] = "1" if typed["active"] else ""
    org = OrgSettings(request.app[STORE])
    state = await org.get(ctx.account_id)
    try:
        radius = int(typed["radius_miles"])
    except ValueError:
        rejected = CommandRejected("settings.routing", ctx.t("settings.radius_number"), field="radius_miles")
        return _refused(ctx, state, typed, rejected)
    routing = LeadgenRouting(
        dealer_address=typed["dealer_address"] or None,
        radius_miles=radius,
        city_fallback=typed["city_fallback"] or None,
        active=typed["active"] == "1",
    )
    try:
        await org.set_routing(ctx.account_id, routing)
    except CommandRejected as exc:
        return _refused(ctx, state, typed, exc)
    return redirect(ctx.url(PATH) + "#step-3", Flash(kind="ok", text=ctx.t("settings.saved3")))


@view
async def save_senders(request: web.Request) -> web.StreamResponse:
    ctx = ctx_of(request)
    form = await checked_form(request)
    typed = {name: form.get(name, "").strip() for name in SENDER_FIELDS}
    org = OrgSettings(request.app[STORE])
    state = await org.get(ctx.account_id)
    senders = {name.removeprefix("sender_"): value for name, value in typed.items() if value}
    try:
        await org.set_senders(ctx.account_id, senders)
    except CommandRejected as exc:
        return _refused(ctx, state, typed, exc)
    return redirect(ctx.url(PATH) + "#senders", Flash(kind="ok", text=ctx.t("settings.saved_senders")))
