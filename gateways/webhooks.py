"""Provider webhooks: inbound messages and delivery status, each verified before anything is recorded.

| path                          | provider | verified by                              | carries                      |
| ----------------------------- | -------- | ---------------------------------------- | ---------------------------- |
| `/webhooks/twilio/sms`        | Twilio   | X-Twilio-Signature (HMAC-SHA1)            | inbound SMS and WhatsApp     |
| `/webhooks/twilio/status`     | Twilio   | X-Twilio-Signature                        | message and call status      |
| `/webhooks/telnyx/messaging`  | Telnyx   | Ed25519 over `timestamp|body`, ≤ 5 min old | inbound SMS, message status |
| `/webhooks/meta/whatsapp`     | Meta     | X-Hub-Signature-256 (HMAC-SHA256)         | inbound WhatsApp, statuses   |
| `/webhooks/elastic?token=`    | Elastic  | the URL's token (ElasticEmail signs none) | sent, opened, bounce, unsub. |

A forged, unsigned or stale webhook gets 403 and records nothing. Twilio's compliance replies
(STOP, START, HELP) go back as TwiML in the response; Telnyx's and Meta's are sent through their
APIs. `GET /webhooks/meta/whatsapp` answers Meta's subscription check (`hub.verify_token` against
WHATSAPP_VERIFY_TOKEN).
"""

from __future__ import annotations

import hmac
import os
import uuid
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, Final
from urllib.parse import parse_qsl
from uuid import UUID
from xml.sax.saxutils import escape

import msgspec
import structlog
from aiohttp import web
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from actors.inbound import InboundResult, receive_inbound, record_auto_reply, record_delivery
from events.errors import NotFound
from gateways.http import SETTINGS, STORE, HttpError, json_response
from gateways.providers import ChannelProviders
from gateways.providers.base import OutboundMessage, Outcome, ProviderFailure
from gateways.providers.meta import OUTCOMES as META_OUTCOMES
from gateways.providers.telnyx import OUTCOMES as TELNYX_OUTCOMES
from gateways.providers.twilio import twilio_outcome
from gateways.signatures import SignatureRejected, telnyx_public_key, verify_meta, verify_telnyx, verify_twilio

log = structlog.get_logger("touchline.webhooks")

MAX_WEBHOOK_BYTES: Final = 64 * 1024


class WebhookConfig(msgspec.Struct, frozen=True, kw_only=True):
    twilio_auth_token: str | None
    telnyx_key: Ed25519PublicKey | None
    meta_app_secret: str | None = None
    meta_verify_token: str | None = None
    elastic_token: str | None = None

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> WebhookConfig:
        def first(*names: str) -> str | None:
            return next((v for n in names if (v := (env.get(n) or "").strip())), None)

        return cls(
            twilio_auth_token=first("TWILIO_AUTH_TOKEN"),
            telnyx_key=telnyx_public_key(env),
            meta_app_secret=first("WHATSAPP_APP_SECRET", "META_APP_SECRET"),
            meta_verify_token=first("WHATSAPP_VERIFY_TOKEN", "META_VERIFY_TOKEN"),
            elastic_token=first("ELASTIC_EMAIL_WEBHOOK_TOKEN", "ELASTICEMAIL_WEBHOOK_TOKEN"),
        )


CONFIG: Final = web.AppKey("webhook_config", WebhookConfig)
PROVIDERS: Final = web.AppKey("webhook_providers", ChannelProviders)

_TWIML_EMPTY: Final = '<?xml version="1.0" encoding="UTF-8"?><Response/>'


def _twiml(reply: str | None) -> web.Response:
    text = (
        _TWIML_EMPTY
        if reply is None
        else f'<?xml version="1.0" encoding="UTF-8"?><Response><Message>{escape(reply)}</Message></Response>'
    )
    return web.Response(text=text, content_type="text/xml")


def _refused(request: web.Request, provider: str, exc: SignatureRejected) -> web.Response:
    log.warning("webhook_refused", provider=provider, path=request.path, reason=str(exc))
    return json_response({"error": f"webhook refused: {exc}"}, status=403)


def _public_url(request: web.Request) -> str:
    """The URL the provider called: TOUCHLINE_PUBLIC_URL + path (+ query) when set, else the request's own."""
    base = request.app[SETTINGS].public_url
    if base:
        return base.rstrip("/") + request.path_qs
    return str(request.url)


async def read_body(request: web.Request) -> bytes:
    if request.content_length is not None and request.content_length > MAX_WEBHOOK_BYTES:
        raise HttpError(413, f"webhook body over {MAX_WEBHOOK_BYTES} bytes")
    # `read(n)` returns what has arrived so far: a body in several pieces needs the loop.
    chunks, size = [], 0
    while chunk := await request.content.read(MAX_WEBHOOK_BYTES + 1 - size):
        size += len(chunk)
        if size > MAX_WEBHOOK_BYTES:
            raise HttpError(413, f"webhook body over {MAX_WEBHOOK_BYTES} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


async def twilio_form(request: web.Request) -> dict[str, str] | web.Response:
    """The verified form of a Twilio webhook, or the 403 that refuses it."""
    body = await read_body(request)

    try:
        pairs = parse_qsl(body.decode(), keep_blank_values=True, strict_parsing=bool(body))
    except (UnicodeDecodeError, ValueError):
        raise HttpError(400, "Twilio webhooks are application/x-www-form-urlencoded; this body is not") from None
    try:
        verify_twilio(
            request.app[CONFIG].twilio_auth_token,
            _public_url(request),
            pairs,
            request.headers.get("X-Twilio-Signature"),
        )
    except SignatureRejected as exc:
        return _refused(request, "twilio", exc)
    return dict(pairs)


def _required(form: Mapping[str, str], *names: str) -> None:
    missing = [n for n in names if not form.get(n)]
    if missing:
        raise HttpError(400, f"missing {', '.join(missing)} in the Twilio webhook", field=missing[0])


async def twilio_sms(request: web.Request) -> web.Response:
    form = await twilio_form(request)
    if isinstance(form, web.Response):
        return form
    _required(form, "MessageSid", "From", "To")
    sender = form["From"]
    channel = "whatsapp" if sender.startswith("whatsapp:") else "sms"
    result = await receive_inbound(
        request.app[STORE],
        provider="twilio",
        provider_message_id=form["MessageSid"],
        channel=channel,
        from_number=sender,
        to_number=form["To"],
        body=form.get("Body", ""),
        received_at=datetime.now(UTC),
        reply_via="twiml",
    )
    log.info(
        "webhook_inbound",
        provider="twilio",
        channel=channel,
        keyword=result.keyword,
        leads=len(result.lead_ids),
        duplicate=result.duplicate,
    )
    return _twiml(result.reply)


def _touch_param(request: web.Request) -> UUID:
    raw = request.query.get("touch", "")
    try:
        return UUID(raw)
    except ValueError:
        raise HttpError(400, "the callback URL names no touch run (?touch=<uuid>)", field="touch") from None


async def twilio_status(request: web.Request) -> web.Response:
    form = await twilio_form(request)
    if isinstance(form, web.Response):
        return form
    touch = _touch_param(request)
    sid = form.get("MessageSid") or form.get("CallSid")
    status = form.get("MessageStatus") or form.get("SmsStatus") or form.get("CallStatus")
    if not sid or not status:
        raise HttpError(400, "a Twilio status callback carries MessageSid/CallSid and MessageStatus/CallStatus")
    code = (form.get("ErrorCode") or "").strip() or None
    outcome = twilio_outcome(int(code), 400) if code and code.isdigit() else None
    recorded = await record_delivery(
        request.app[STORE],
        touch_run_id=touch,
        provider="twilio",
        status=status,
        provider_message_id=sid,
        error_code=code,
        outcome=outcome if outcome in ("suppress", "bad_data") else None,
        occurred_at=datetime.now(UTC),
    )
    log.info("webhook_status", provider="twilio", touch_run_id=str(touch), status=status, code=code, new=recorded)
    return web.Response(status=204)


async def telnyx_messaging(request: web.Request) -> web.Response:
    body = await read_body(request)
    try:
        verify_telnyx(
            request.app[CONFIG].telnyx_key,
            body,
            request.headers.get("telnyx-signature-ed25519"),
            request.headers.get("telnyx-timestamp"),
        )
    except SignatureRejected as exc:
        return _refused(request, "telnyx", exc)
    try:
        envelope = msgspec.json.decode(body)
        data = envelope["data"]
        kind, payload = str(data["event_type"]), data["payload"]
        if not isinstance(payload, dict):
            raise TypeError("payload is not an object")
    except (msgspec.DecodeError, KeyError, TypeError) as exc:
        raise HttpError(400, f"not a Telnyx v2 webhook envelope (data.event_type, data.payload): {exc}") from None
    if kind == "message.received":
        return await _telnyx_inbound(request, payload)
    if kind in ("message.sent", "message.finalized"):
        return await _telnyx_status(request, payload)
    log.info("webhook_ignored", provider="telnyx", event_type=kind)
    return json_response({"ignored": kind})


def _phone(value: Any) -> str:
    if isinstance(value, dict):
        value = value.get("phone_number")
    if isinstance(value, list) and value:
        return _phone(value[0])
    return value if isinstance(value, str) else ""


async def _telnyx_inbound(request: web.Request, payload: dict[str, Any]) -> web.Response:
    message_id, sender, to = payload.get("id"), _phone(payload.get("from")), _phone(payload.get("to"))
    if not isinstance(message_id, str) or not sender:
        raise HttpError(400, "a Telnyx message.received payload carries id and from.phone_number")
    store = request.app[STORE]
    result = await receive_inbound(
        store,
        provider="telnyx",
        provider_message_id=message_id,
        channel="sms",
        from_number=sender,
        to_number=to,
        body=str(payload.get("text") or ""),
        received_at=datetime.now(UTC),
    )
    log.info(
        "webhook_inbound",
        provider="telnyx",
        keyword=result.keyword,
        leads=len(result.lead_ids),
        duplicate=result.duplicate,
    )
    answer = {"recorded": not result.duplicate, "keyword": result.keyword}
    failed = await _api_reply(
        request, result, provider="telnyx", channel="sms", in_reply_to=message_id, to=sender, ours=to
    )
    if failed is not None:
        return _reply_failed("telnyx", failed, answer)
    return json_response(answer)


async def _api_reply(
    request: web.Request, result: InboundResult, *, provider: str, channel: str, in_reply_to: str, to: str, ours: str
) -> str | None:
    """The STOP/START/HELP answer `result` owes, sent through the provider's API (when that provider
    carries the channel).

    None when it went out, or none is owed, or it cannot go out this way at all; else why it
    failed, for the webhook to answer 503 so the provider delivers it again and the retry sends it.
    """
    text, kind, account_id = result.reply, result.keyword, result.account_id
    if text is None or kind is None:
        return None
    client = request.app[PROVIDERS].for_channel(channel)
    if client.name != provider:
        log.warning(
            "webhook_reply_unsent",
            provider=provider,
            channel=channel,
            reason=f"{channel} goes out through {client.name}, not {provider}",
        )
        return None
    reply = OutboundMessage(
        touch_run_id=uuid.uuid5(uuid.NAMESPACE_URL, f"{provider}-reply:{in_reply_to}"),
        account_id=account_id or uuid.UUID(int=0),
        lead_id=uuid.UUID(int=0),
        channel=channel,
        to=to,
        body=text,
        in_session=True,  # they just wrote: a free-form answer is allowed
    )
    try:
        sent = await client.send(reply)
    except ProviderFailure as exc:
        log.warning("webhook_reply_failed", provider=provider, error=str(exc))
        return str(exc)
    await record_auto_reply(
        request.app[STORE],
        provider=provider,
        channel=channel,
        in_reply_to=in_reply_to,
        to_number=to,
        from_number=ours,
        body=text,
        kind=kind,
        provider_message_id=sent.message_id,
    )
    return None


def _reply_failed(provider: str, why: str, answer: dict[str, Any]) -> web.Response:
    """The message is recorded but its compliance answer did not go out: ask the provider to retry."""
    log.warning("webhook_retry_requested", provider=provider, reason=why)
    return json_response(
        {**answer, "error": f"recorded, but the automatic answer could not be sent ({why}); deliver again to retry"},
        status=503,
        headers={"Retry-After": "60"},
    )


async def _telnyx_status(request: web.Request, payload: dict[str, Any]) -> web.Response:
    touch = _touch_param(request)
    recipients = payload.get("to")
    first = recipients[0] if isinstance(recipients, list) and recipients and isinstance(recipients[0], dict) else {}
    status = str(first.get("status") or "unknown")
    errors = payload.get("errors")
    code = None
    if isinstance(errors, list) and errors and isinstance(errors[0], dict) and errors[0].get("code") is not None:
        code = str(errors[0]["code"])
    outcome = TELNYX_OUTCOMES.get(code or "")
    recorded = await record_delivery(
        request.app[STORE],
        touch_run_id=touch,
        provider="telnyx",
        status=status,
        provider_message_id=payload.get("id") if isinstance(payload.get("id"), str) else None,
        error_code=code,
        outcome=outcome if outcome in ("suppress", "bad_data") else None,
        occurred_at=datetime.now(UTC),
    )
    log.info("webhook_status", provider="telnyx", touch_run_id=str(touch), status=status, code=code, new=recorded)
    return json_response({"recorded": recorded})


# --- Meta (WhatsApp Cloud API) ----------------------------------------------------------------


async def meta_subscribe(request: web.Request) -> web.Response:
    """Meta's subscription check: echo `hub.challenge` when `hub.verify_token` is ours."""
    expected = request.app[CONFIG].meta_verify_token
    given = request.query.get("hub.verify_token", "")
    if not expected:
        reason = "WHATSAPP_VERIFY_TOKEN is not set, so no Meta subscription can be confirmed"
    elif request.query.get("hub.mode") != "subscribe":
        reason = "hub.mode must be subscribe"
    elif not hmac.compare_digest(expected.encode(), given.encode()):
        reason = "hub.verify_token does not match WHATSAPP_VERIFY_TOKEN"
    else:
        log.info("webhook_subscribed", provider="meta")
        return web.Response(text=request.query.get("hub.challenge", ""), content_type="text/plain")
    return _refused(request, "meta", SignatureRejected(reason))


class _MetaBatch(msgspec.Struct, kw_only=True):
    messages: int = 0
    statuses: int = 0
    duplicates: int = 0
    skipped: list[str] = []
    unanswered: list[str] = []  # inbound messages whose STOP/START/HELP answer could not be sent


async def meta_whatsapp(request: web.Request) -> web.Response:
    """One Meta notification: every change's inbound messages and delivery statuses.

    Meta batches several changes in one POST and retries the whole POST until it gets a 200, so
    each item is recorded once (by its message id) and an item we cannot place (a status for a
    touch we never sent) is skipped with its reason rather than failing its neighbours.
    """
    body = await read_body(request)
    try:
        verify_meta(request.app[CONFIG].meta_app_secret, body, request.headers.get("X-Hub-Signature-256"))
    except SignatureRejected as exc:
        return _refused(request, "meta", exc)
    values = _meta_values(body)
    batch = _MetaBatch()
    for value in values:
        ours = _meta_phone((value.get("metadata") or {}).get("display_phone_number"))
        for message in _meta_list(value, "messages"):
            await _meta_inbound(request, message, ours, batch)
        for status in _meta_list(value, "statuses"):
            await _meta_status(request, status, batch)
    log.info("webhook_meta", **msgspec.structs.asdict(batch))
    answer = msgspec.to_builtins(batch)
    if batch.unanswered:  # Meta retries the whole POST: what is recorded stays recorded once
        return _reply_failed("meta", "; ".join(batch.unanswered), answer)
    return json_response(answer)


def _meta_values(body: bytes) -> list[dict[str, Any]]:
    """The `value` of every `messages` change, or a 400 naming what is not Meta's shape."""
    try:
        envelope = msgspec.json.decode(body)
    except msgspec.DecodeError as exc:
        raise HttpError(400, f"a Meta webhook is JSON: {exc}") from None
    if not isinstance(envelope, dict) or envelope.get("object") != "whatsapp_business_account":
        raise HttpError(400, 'not a WhatsApp Business webhook: "object" must be "whatsapp_business_account"')
    entries = envelope.get("entry")
    if not isinstance(entries, list):
        raise HttpError(400, 'a Meta webhook carries an "entry" list')
    values = []
    for entry in entries:
        changes = entry.get("changes") if isinstance(entry, dict) else None
        if not isinstance(changes, list):
            raise HttpError(400, 'every Meta webhook entry carries a "changes" list')
        for change in changes:
            if not isinstance(change, dict) or not isinstance(change.get("value"), dict):
                raise HttpError(400, 'every Meta webhook change carries a "value" object')
            if change.get("field") == "messages":
                values.append(change["value"])
    return values


def _meta_list(value: dict[str, Any], name: str) -> list[dict[str, Any]]:
    items = value.get(name) or []
    if not isinstance(items, list) or not all(isinstance(i, dict) for i in items):
        raise HttpError(400, f'"{name}" in a Meta webhook is a list of objects')
    return items


def _meta_phone(value: Any) -> str:
    """Meta writes numbers as digits (`13055550123`): E.164 with its plus, as leads keep them."""
    digits = "".join(ch for ch in str(value or "") if ch.isdigit())
    return f"+{digits}" if digits else ""


def _meta_time(value: Any) -> datetime | None:
    try:
        return datetime.fromtimestamp(int(value), UTC)
    except (TypeError, ValueError, OverflowError, OSError):
        return None


def _meta_text(message: dict[str, Any]) -> str:
    """What the person wrote: text, a quick-reply button, an interactive choice; `[image]` for media."""
    kind = str(message.get("type") or "")
    found = message.get(kind)
    part: dict[str, Any] = found if isinstance(found, dict) else {}
    if kind == "text":
        return str(part.get("body") or "")
    if kind == "button":
        return str(part.get("text") or part.get("payload") or "")
    if kind == "interactive":
        for reply in ("button_reply", "list_reply"):
            if isinstance(part.get(reply), dict):
                return str(part[reply].get("title") or "")
    caption = part.get("caption") if isinstance(part.get("caption"), str) else ""
    return f"[{kind or 'message'}] {caption}".strip()


async def _meta_inbound(request: web.Request, message: dict[str, Any], ours: str, batch: _MetaBatch) -> None:
    message_id, sender = message.get("id"), _meta_phone(message.get("from"))
    if not isinstance(message_id, str) or not message_id or not sender:
        raise HttpError(400, "a Meta inbound message carries id and from")
    result = await receive_inbound(
        request.app[STORE],
        provider="meta",
        provider_message_id=message_id,
        channel="whatsapp",
        from_number=sender,
        to_number=ours,
        body=_meta_text(message),
        received_at=_meta_time(message.get("timestamp")) or datetime.now(UTC),
    )
    if result.duplicate:
        batch.duplicates += 1
    else:
        batch.messages += 1
    failed = await _api_reply(
        request, result, provider="meta", channel="whatsapp", in_reply_to=message_id, to=sender, ours=ours
    )
    if failed is not None:
        batch.unanswered.append(f"{message_id}: {failed}")


async def _meta_status(request: web.Request, status: dict[str, Any], batch: _MetaBatch) -> None:
    message_id, state = status.get("id"), status.get("status")
    if not isinstance(message_id, str) or not isinstance(state, str):
        raise HttpError(400, "a Meta status carries id and status")
    try:
        touch = UUID(str(status.get("biz_opaque_callback_data") or ""))
    except ValueError:
        batch.skipped.append(f"{message_id}: no touch run in biz_opaque_callback_data")
        return
    errors = status.get("errors")
    first = errors[0] if isinstance(errors, list) and errors and isinstance(errors[0], dict) else {}
    code = str(first["code"]) if isinstance(first.get("code"), int) else None
    outcome = META_OUTCOMES.get(int(code)) if code else None
    try:
        recorded = await record_delivery(
            request.app[STORE],
            touch_run_id=touch,
            provider="meta",
            status=state,
            provider_message_id=message_id,
            error_code=code,
            outcome=outcome if outcome in ("suppress", "bad_data") else None,
            occurred_at=_meta_time(status.get("timestamp")),
        )
    except NotFound as exc:
        batch.skipped.append(f"{message_id}: {exc.reason}")
        return
    if recorded:
        batch.statuses += 1
    else:
        batch.duplicates += 1


# --- ElasticEmail ------------------------------------------------------------------------------

# What a notification's `status` (and for an Error, its bounce `category`) means for the lead.
# Hard bounces say the address is no good; a complaint or an unsubscribe is an opt-out. The other
# bounce categories (Spam, BlackListed, Throttled, ...) are about the sender or the moment.
ELASTIC_HARD_BOUNCES: Final = frozenset({"NoMailbox", "DNSProblem"})
ELASTIC_STATUSES: Final = frozenset({"Sent", "Opened", "Clicked", "Error", "AbuseReport", "Unsubscribed"})


async def elastic_notification(request: web.Request) -> web.Response:
    """ElasticEmail's HTTP web notification: a GET (or a form POST) whose parameters say what happened.

    ElasticEmail signs nothing, so the notification URL carries a secret:
    `{TOUCHLINE_PUBLIC_URL}/webhooks/elastic?token={ELASTIC_EMAIL_WEBHOOK_TOKEN}`. The touch comes
    back as `postback` (sent with every email). Anything we cannot place is answered 200 with the
    reason: ElasticEmail switches notifications off after 1,000 failures.
    """
    expected = request.app[CONFIG].elastic_token
    if not expected:
        return _refused(request, "elastic", SignatureRejected("ELASTIC_EMAIL_WEBHOOK_TOKEN is not set"))
    if not hmac.compare_digest(expected.encode(), request.query.get("token", "").encode()):
        return _refused(request, "elastic", SignatureRejected("the notification URL's token does not match"))
    params: dict[str, str] = dict(request.query)
    if request.method == "POST":
        body = await read_body(request)
        try:
            params |= dict(parse_qsl(body.decode(), keep_blank_values=True))
        except (UnicodeDecodeError, ValueError):
            raise HttpError(400, "an ElasticEmail notification POST is form-encoded; this body is not") from None
    status = params.get("status", "").strip()
    if status not in ELASTIC_STATUSES:
        raise HttpError(400, f"status must be one of {', '.join(sorted(ELASTIC_STATUSES))}", field="status")
    try:
        touch = UUID(params.get("postback", "").strip())
    except ValueError:
        log.info("webhook_skipped", provider="elastic", status=status, reason="no touch run in postback")
        return json_response({"recorded": False, "skipped": "no touch run in postback (not sent by Touchline)"})
    category = params.get("category", "").strip() or None
    outcome: Outcome | None = None
    if status in ("AbuseReport", "Unsubscribed"):
        outcome = "suppress"
    elif status == "Error" and category in ELASTIC_HARD_BOUNCES:
        outcome = "bad_data"
    try:
        recorded = await record_delivery(
            request.app[STORE],
            touch_run_id=touch,
            provider="elastic",
            status=status.lower() if status != "Error" else "bounced",
            provider_message_id=(params.get("messageid") or params.get("transaction") or "").strip() or None,
            error_code=category if status == "Error" else (status if outcome else None),
            outcome=outcome,
            occurred_at=_elastic_time(params.get("date", "")),
        )
    except NotFound as exc:
        log.info("webhook_skipped", provider="elastic", status=status, reason=exc.reason)
        return json_response({"recorded": False, "skipped": exc.reason})
    log.info("webhook_status", provider="elastic", touch_run_id=str(touch), status=status, code=category, new=recorded)
    return json_response({"recorded": recorded})


def _elastic_time(value: str) -> datetime | None:
    """ElasticEmail writes `date` in UTC, as `2026-12-01T15:04:05` or `12/1/2026 3:04:05 PM`."""
    value = value.strip()
    for pattern in ("%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M:%S", "%m/%d/%Y %I:%M:%S %p"):
        try:
            return datetime.strptime(value, pattern).replace(tzinfo=UTC)
        except ValueError:
            continue
    return None


def add_routes(app: web.Application, env: Mapping[str, str] | None = None) -> None:
    env = os.environ if env is None else env
    app[CONFIG] = WebhookConfig.from_env(env)  # a malformed TELNYX_PUBLIC_KEY stops the start, named
    app[PROVIDERS] = ChannelProviders(env, app[SETTINGS])

    async def close_providers(app: web.Application) -> None:
        await app[PROVIDERS].close()

    app.on_cleanup.append(close_providers)
    app.router.add_post("/webhooks/twilio/sms", twilio_sms)
    app.router.add_post("/webhooks/twilio/status", twilio_status)
    app.router.add_post("/webhooks/telnyx/messaging", telnyx_messaging)
    app.router.add_get("/webhooks/meta/whatsapp", meta_subscribe, allow_head=False)
    app.router.add_post("/webhooks/meta/whatsapp", meta_whatsapp)
    app.router.add_get("/webhooks/elastic", elastic_notification, allow_head=False)
    app.router.add_post("/webhooks/elastic", elastic_notification)
