"""Provider webhooks: inbound messages and delivery status, each verified before anything is recorded.

| path                          | provider | verified by                              | carries                      |
| ----------------------------- | -------- | ---------------------------------------- | ---------------------------- |
| `/webhooks/twilio/sms`        | Twilio   | X-Twilio-Signature (HMAC-SHA1)            | inbound SMS and WhatsApp     |
| `/webhooks/twilio/status`     | Twilio   | X-Twilio-Signature                        | message and call status      |
| `/webhooks/telnyx/messaging`  | Telnyx   | Ed25519 over `timestamp|body`, ≤ 5 min old | inbound SMS, message status |

A forged, unsigned or stale webhook gets 403 and records nothing. Twilio's compliance replies
(STOP, START, HELP) go back as TwiML in the response; Telnyx's are sent through its API.
"""

from __future__ import annotations

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

from actors.inbound import receive_inbound, record_auto_reply, record_delivery
from gateways.http import SETTINGS, STORE, HttpError, json_response
from gateways.providers import ChannelProviders
from gateways.providers.base import OutboundMessage, ProviderFailure
from gateways.providers.telnyx import OUTCOMES as TELNYX_OUTCOMES
from gateways.providers.twilio import twilio_outcome
from gateways.signatures import SignatureRejected, telnyx_public_key, verify_telnyx, verify_twilio

log = structlog.get_logger("touchline.webhooks")

MAX_WEBHOOK_BYTES: Final = 64 * 1024


class WebhookConfig(msgspec.Struct, frozen=True, kw_only=True):
    twilio_auth_token: str | None
    telnyx_key: Ed25519PublicKey | None

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> WebhookConfig:
        return cls(
            twilio_auth_token=(env.get("TWILIO_AUTH_TOKEN") or "").strip() or None,
            telnyx_key=telnyx_public_key(env),
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
    if result.reply is not None and result.keyword is not None:
        await _telnyx_reply(request, message_id, sender, to, result.reply, result.keyword, result.account_id)
    return json_response({"recorded": not result.duplicate, "keyword": result.keyword})


async def _telnyx_reply(
    request: web.Request, in_reply_to: str, to: str, ours: str, text: str, kind: str, account_id: UUID | None
) -> None:
    providers = request.app[PROVIDERS]
    sms = providers.sms if providers.sms.name == "telnyx" else None
    if sms is None:
        log.warning("webhook_reply_unsent", provider="telnyx", reason="SMS goes through Twilio (SMS_PROVIDER)")
        return
    reply = OutboundMessage(
        touch_run_id=uuid.uuid5(uuid.NAMESPACE_URL, f"telnyx-reply:{in_reply_to}"),
        account_id=account_id or uuid.UUID(int=0),
        lead_id=uuid.UUID(int=0),
        channel="sms",
        to=to,
        body=text,
    )
    try:
        sent = await sms.send(reply)
    except ProviderFailure as exc:
        log.warning("webhook_reply_failed", provider="telnyx", error=str(exc))
        return
    await record_auto_reply(
        request.app[STORE],
        provider="telnyx",
        channel="sms",
        in_reply_to=in_reply_to,
        to_number=to,
        from_number=ours,
        body=text,
        kind=kind,
        provider_message_id=sent.message_id,
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
