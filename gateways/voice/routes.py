"""The voice gateway's routes: the carriers' media-stream WebSockets and their call webhooks.

| route | who | does |
| --- | --- | --- |
| `GET /telnyx?token=T` (WebSocket) | Telnyx media streaming | one voice session |
| `GET /twilio?token=T` (WebSocket) | Twilio Media Streams | one voice session |
| `POST /webhooks/telnyx/voice` | Telnyx Call Control (Ed25519) | answer, then streaming_start; hangup |
| `POST /webhooks/twilio/voice` | Twilio (X-Twilio-Signature) | `<Connect><Stream>` TwiML to `/twilio` |

A stream needs the per-call token Touchline signed into the URL it gave the carrier
(`VOICE_GATEWAY_TOKEN`); without a valid one the upgrade is refused (401) before any audio.
`VOICE_ALLOW_UNAUTHENTICATED_TELNYX=1` keeps the spec's unauthenticated `/telnyx`, logging
`AUTH_BYPASS_TELNYX` for every such connection. Only PCMU is taken: any other codec logs
`ERROR_FATAL_CODEC`, is recorded, and closes the stream before an AI session opens.
"""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import Mapping
from typing import Any, Final
from urllib.parse import quote, urlsplit
from uuid import UUID
from xml.sax.saxutils import escape, quoteattr

import aiohttp
import anyio
import msgspec
import structlog
from aiohttp import web

from actors.cadence import fold_lead
from actors.campaigns import fold_campaign
from actors.dispatch import fold_touch
from actors.inbound import plain_number
from actors.org import fold_org
from events.catalog import (
    CallAnswered,
    CallEnded,
    CallStarted,
    MediaStreamRefused,
    call_stream,
    campaign_stream,
    lead_stream,
    org_stream,
    touch_stream,
)
from events.errors import ConcurrencyError, GatewayError
from events.postgres import PostgresEventStore
from events.settings import Settings
from events.store import NO_STREAM, NewEvent
from gateways.http import SETTINGS, STORE, HttpError, json_response
from gateways.providers.telnyx import TelnyxConfig
from gateways.providers.twilio import TwilioConfig
from gateways.signatures import SignatureRejected, telnyx_public_key, verify_telnyx
from gateways.voice.call_control import CallControl
from gateways.voice.frames import MAX_FRAME_BYTES, Carrier, Connected, Start, parse_frame, telnyx_client_state
from gateways.voice.session import CallInfo, VoiceSession
from gateways.voice.settings import VoiceSettings
from gateways.voice_token import sign_call_token, verify_call_token
from gateways.webhooks import read_body, twilio_form
from projections.org_settings import account_by_sender

log = structlog.get_logger("touchline.voice")

_CALLS: Final = uuid.UUID("3c1b0e9a-6d7f-4b8e-a2c5-7f9d1e0b4a62")
START_TIMEOUT_S: Final = 10.0
NO_ACCOUNT: Final = uuid.UUID(int=0)


def call_id_for(carrier: str, carrier_call_id: str) -> UUID:
    """One call id per carrier call, whoever sees it first (the webhook or the stream)."""
    return uuid.uuid5(_CALLS, f"{carrier}:{carrier_call_id}")


def _uuid(value: Any) -> UUID | None:
    try:
        return UUID(str(value)) if value else None
    except ValueError:
        return None


class VoiceGateway:
    def __init__(self, store: PostgresEventStore, settings: Settings, env: Mapping[str, str]) -> None:
        self.store = store
        self.settings = settings
        self.voice = VoiceSettings.from_env(env)
        self.telnyx = TelnyxConfig.from_env(env)
        self.twilio = TwilioConfig.from_env(env)
        self.telnyx_key = telnyx_public_key(env)
        self.default_account = _uuid((env.get("TOUCHLINE_DEFAULT_ACCOUNT") or "").strip())
        self.sessions: dict[UUID, VoiceSession] = {}
        self._http: aiohttp.ClientSession | None = None

    @property
    def http(self) -> aiohttp.ClientSession:
        if self._http is None or self._http.closed:
            # One long-lived agent connection per call: no pool limit (aiohttp's default is 100).
            self._http = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0))
        return self._http

    @property
    def control(self) -> CallControl:
        return CallControl(self.http, self.telnyx, self.twilio)

    async def close(self) -> None:
        for session in list(self.sessions.values()):
            session.end("gateway_shutdown")
        if self._http is not None:
            await self._http.close()

    def stream_url(self, carrier: Carrier, ref: str) -> str | None:
        """wss://<public>/<carrier>?token=…, or None without TOUCHLINE_PUBLIC_URL or VOICE_GATEWAY_TOKEN."""
        public, secret = self.settings.public_url, self.voice.gateway_token
        if not public or not secret:
            return None
        parts = urlsplit(public)
        scheme = "wss" if parts.scheme == "https" else "ws"
        return (
            f"{scheme}://{parts.netloc}{parts.path.rstrip('/')}/{carrier}?token={quote(sign_call_token(secret, ref))}"
        )

    # --- calls ----------------------------------------------------------------------------------

    async def resolve(
        self,
        carrier: Carrier,
        carrier_call_id: str,
        caller: str | None,
        parameters: Mapping[str, str],
        called: str | None = None,
    ) -> CallInfo:
        """Who the call is about: what our own call carries (client state, stream parameters), else
        the account whose own number was called, and the lead with the caller's number (in that
        account when it is known), else TOUCHLINE_DEFAULT_ACCOUNT."""
        account, lead = _uuid(parameters.get("account_id")), _uuid(parameters.get("lead_id"))
        touch = _uuid(parameters.get("touch_run_id"))
        direction = "outbound" if touch else "inbound"
        if account is None and called:
            account = await account_by_sender(self.store.pool, plain_number(called), ("voice", "sms"))
        if lead is None and caller and direction == "inbound":
            try:
                row = await self.store.pool.fetchrow(
                    "select id, account_id from public.leads where phone = $1"
                    " and ($2::uuid is null or account_id = $2) order by created_at desc limit 1",
                    plain_number(caller),
                    account,
                )
            except Exception:  # no read model yet: the call still goes on, unassigned
                row = None
            if row is not None:
                lead, account = row["id"], row["account_id"]
        return CallInfo(
            call_id=call_id_for(carrier, carrier_call_id),
            account_id=account or self.default_account or NO_ACCOUNT,
            carrier=carrier,
            carrier_call_id=carrier_call_id,
            direction=direction,
            lead_id=lead,
            touch_run_id=touch,
        )

    async def started(self, info: CallInfo, from_number: str | None, to_number: str | None) -> None:
        """CallStarted, once per call (the webhook and the stream may both say it)."""
        event = CallStarted(
            call_id=info.call_id,
            account_id=info.account_id,
            carrier=info.carrier,
            direction="outbound" if info.direction == "outbound" else "inbound",
            carrier_call_id=info.carrier_call_id,
            from_number=from_number,
            to_number=to_number,
            lead_id=info.lead_id,
            touch_run_id=info.touch_run_id,
        )
        new = NewEvent(event=event, event_id=uuid.uuid5(info.call_id, "started"))
        with contextlib.suppress(ConcurrencyError):  # recorded already
            await self.store.append(call_stream(info.call_id), [new], expected_version=NO_STREAM)

    async def ended(self, info_call_id: UUID, account_id: UUID, reason: str) -> None:
        event = CallEnded(call_id=info_call_id, account_id=account_id, reason=reason)
        await self.store.append(
            call_stream(info_call_id), [NewEvent(event=event, event_id=uuid.uuid5(info_call_id, "ended"))]
        )

    async def instructions(self, info: CallInfo) -> str:
        wanted = [*([lead_stream(info.lead_id)] if info.lead_id else []), org_stream(info.account_id)]
        if info.touch_run_id:
            wanted.append(touch_stream(info.touch_run_id))
        streams = await self.store.read_streams(wanted)
        org = fold_org(info.account_id, [e.event for e in streams.get(org_stream(info.account_id), [])])
        lead = fold_lead([e.event for e in streams.get(lead_stream(info.lead_id), [])]) if info.lead_id else None
        business = org.business_name or "el concesionario"
        campaign = ""
        touch = fold_touch(streams.get(touch_stream(info.touch_run_id), [])) if info.touch_run_id else None
        if touch is not None:
            envelopes = await self.store.read_stream(campaign_stream(touch.campaign_id))
            state = fold_campaign([e.event for e in envelopes], len(envelopes))
            campaign = f" Esta llamada es el paso {touch.step} de la campaña «{state.name}»." if state else ""
        about = ""
        if lead is not None:
            price = f" a ${lead.price:,}" if lead.price else ""
            about = (
                f" Hablas con {lead.name or 'el vendedor'} sobre su {lead.title or 'auto'}{price}"
                f" publicado en {lead.source or 'internet'}{f' en {lead.city}' if lead.city else ''}."
            )
        return (
            f"Eres el asistente telefónico de {business}, que compra autos de particulares al contado.{about}{campaign}"
            " Habla en el idioma del vendedor (español o inglés), con frases cortas y naturales."
            " Confirma si el auto sigue disponible, su estado, kilometraje y precio, y ofrece verlo pronto."
            " Si el vendedor quiere vender ya o pide hablar con una persona, usa handoff_to_dealer."
            " Nunca inventes datos del auto."
        )


VOICE: Final = web.AppKey("voice_gateway", VoiceGateway)


# --- media streams ------------------------------------------------------------------------------


async def _refuse(request: web.Request, carrier: Carrier, why: str) -> web.Response:
    log.warning("VOICE_WS_REFUSED", carrier=carrier, reason=why, remote=request.remote)
    return json_response({"error": f"stream refused: {why}"}, status=401)


async def _read_start(ws: web.WebSocketResponse, carrier: Carrier) -> Start | str:
    """The stream's start frame, or why there is none (a garbage frame, a close, a timeout)."""
    try:
        with anyio.fail_after(START_TIMEOUT_S):
            async for msg in ws:
                if msg.type != aiohttp.WSMsgType.TEXT:
                    return "the stream closed (or sent binary) before its start frame"
                try:
                    frame = parse_frame(carrier, msg.data)
                except GatewayError as exc:
                    return f"bad frame before start: {exc}"
                if isinstance(frame, Start):
                    return frame
                if not isinstance(frame, Connected):
                    return f"{type(frame).__name__.lower()} frame before start"
    except TimeoutError:
        return f"no start frame within {START_TIMEOUT_S:g} s"
    return "the stream closed before its start frame"


async def _stream(request: web.Request, carrier: Carrier) -> web.StreamResponse:
    gateway = request.app[VOICE]
    token = request.query.get("token")
    ref: str | None = None
    if token:
        try:
            ref = verify_call_token(gateway.voice.gateway_token or "", token)
        except GatewayError as exc:
            return await _refuse(request, carrier, str(exc))
    elif carrier == "telnyx" and gateway.voice.allow_unauthenticated_telnyx:
        log.warning("AUTH_BYPASS_TELNYX", remote=request.remote)
    else:
        return await _refuse(request, carrier, "a stream token is required (?token=...)")
    ws = web.WebSocketResponse(max_msg_size=MAX_FRAME_BYTES, heartbeat=30.0)
    await ws.prepare(request)
    start = await _read_start(ws, carrier)
    if isinstance(start, str):
        log.warning("voice_stream_no_start", carrier=carrier, reason=start)
        await ws.close(code=1002, message=start[:120].encode())
        return ws
    if ref is not None and ref not in (start.carrier_call_id, start.parameters.get("touch_run_id")):
        log.warning("VOICE_WS_REFUSED", carrier=carrier, reason="the token names another call")
        await ws.close(code=4003, message=b"stream token is for another call")
        return ws
    called = start.to_number or start.parameters.get("to")
    info = await gateway.resolve(carrier, start.carrier_call_id, start.from_number, start.parameters, called)
    await gateway.started(info, start.from_number, start.to_number)
    if start.codec != "PCMU":
        log.error("ERROR_FATAL_CODEC", carrier=carrier, codec=start.codec, call_id=str(info.call_id), supported="PCMU")
        refused = MediaStreamRefused(
            call_id=info.call_id,
            account_id=info.account_id,
            reason=f"unsupported codec {start.codec}: PCMU only",
            codec=start.codec,
        )
        await gateway.store.append(call_stream(info.call_id), [refused])
        await gateway.ended(info.call_id, info.account_id, f"codec_unsupported: {start.codec}")
        await ws.close(code=1003, message=f"unsupported codec {start.codec}: PCMU only".encode())
        return ws
    log.info(
        "TELNYX_START" if carrier == "telnyx" else "TWILIO_START",
        call_id=str(info.call_id),
        media_format={"encoding": start.codec, "sample_rate": start.sample_rate},
    )

    async def speak(text: str) -> bool:
        return await gateway.control.speak(carrier, start.carrier_call_id, text)

    session = VoiceSession(
        ws=ws,
        start=start,
        info=info,
        store=gateway.store,
        settings=gateway.voice,
        http=gateway.http,
        instructions=await gateway.instructions(info),
        carrier_speak=speak,
    )
    gateway.sessions[info.call_id] = session
    try:
        await session.run()
    finally:
        gateway.sessions.pop(info.call_id, None)
    return ws


async def telnyx_stream(request: web.Request) -> web.StreamResponse:
    return await _stream(request, "telnyx")


async def twilio_stream(request: web.Request) -> web.StreamResponse:
    return await _stream(request, "twilio")


# --- call webhooks ------------------------------------------------------------------------------


async def telnyx_voice(request: web.Request) -> web.Response:
    log.info("VOICE_WEBHOOK_HIT", carrier="telnyx", path=request.path)
    gateway = request.app[VOICE]
    body = await read_body(request)
    try:
        verify_telnyx(
            gateway.telnyx_key,
            body,
            request.headers.get("telnyx-signature-ed25519"),
            request.headers.get("telnyx-timestamp"),
        )
    except SignatureRejected as exc:
        log.warning("webhook_refused", provider="telnyx", path=request.path, reason=str(exc))
        return json_response({"error": f"webhook refused: {exc}"}, status=403)
    try:
        data = msgspec.json.decode(body)["data"]
        kind, payload = str(data["event_type"]), data["payload"]
        call_control_id = str(payload["call_control_id"])
    except (msgspec.DecodeError, KeyError, TypeError) as exc:
        raise HttpError(
            400, f"not a Telnyx call webhook (data.event_type, data.payload.call_control_id): {exc}"
        ) from None
    log.info("VOICE_WEBHOOK_EVENT", event_type=kind, call_control_id=call_control_id)
    state = telnyx_client_state(payload.get("client_state"))
    caller = payload.get("from") if isinstance(payload.get("from"), str) else None
    callee = payload.get("to") if isinstance(payload.get("to"), str) else None
    info = await gateway.resolve("telnyx", call_control_id, caller if not state else None, state, callee)
    match kind:
        case "call.initiated":
            await gateway.started(info, caller, callee)
            log.info("STREAMING_WAIT_STATE", call_control_id=call_control_id, waiting_for="call.answered")
            if payload.get("direction") == "incoming":
                await gateway.control.answer(call_control_id)
        case "call.answered":
            await gateway.store.append(
                call_stream(info.call_id), [CallAnswered(call_id=info.call_id, account_id=info.account_id)]
            )
            url = gateway.stream_url("telnyx", call_control_id)
            if url is None:
                log.error(
                    "TELNYX_STREAMING_START_ERR",
                    call_control_id=call_control_id,
                    error="set TOUCHLINE_PUBLIC_URL and VOICE_GATEWAY_TOKEN: the stream URL needs both",
                )
            else:
                log.info("STREAMING_START_AFTER_ANSWER", call_control_id=call_control_id)
                await gateway.control.streaming_start(call_control_id, url)
        case "call.hangup":
            cause = str(payload.get("hangup_cause") or "hangup")
            session = gateway.sessions.get(info.call_id)
            if session is not None:
                session.end(f"hangup: {cause}")
            else:
                await gateway.ended(info.call_id, info.account_id, f"hangup: {cause}")
        case _:
            pass  # streaming.started / streaming.stopped / call.speak.ended ...: logged above
    return json_response({"ok": True, "event_type": kind})


async def twilio_voice(request: web.Request) -> web.Response:
    """Twilio's voice webhook for a call to our number: TwiML that streams it to `/twilio`."""
    log.info("VOICE_WEBHOOK_HIT", carrier="twilio", path=request.path)
    form = await twilio_form(request)
    if isinstance(form, web.Response):
        return form
    sid = form.get("CallSid")
    if not sid:
        raise HttpError(400, "missing CallSid in the Twilio voice webhook", field="CallSid")
    log.info("VOICE_WEBHOOK_EVENT", carrier="twilio", call_sid=sid, status=form.get("CallStatus"))
    gateway = request.app[VOICE]
    info = await gateway.resolve("twilio", sid, form.get("From"), {}, form.get("To"))
    await gateway.started(info, form.get("From"), form.get("To"))
    url = gateway.stream_url("twilio", sid)
    if url is None:
        log.error("VOICE_STREAM_UNCONFIGURED", call_sid=sid, error="set TOUCHLINE_PUBLIC_URL and VOICE_GATEWAY_TOKEN")
        twiml = f"<Response><Say>{escape(gateway.voice.fallback_text)}</Say><Hangup/></Response>"
    else:
        params = "".join(
            f"<Parameter name={quoteattr(k)} value={quoteattr(v)}/>"
            for k, v in (("from", form.get("From") or ""), ("to", form.get("To") or ""))
            if v
        )
        twiml = f"<Response><Connect><Stream url={quoteattr(url)}>{params}</Stream></Connect></Response>"
    return web.Response(text=f'<?xml version="1.0" encoding="UTF-8"?>{twiml}', content_type="text/xml")


def add_routes(app: web.Application, env: Mapping[str, str] | None = None) -> None:
    env = os.environ if env is None else env
    app[VOICE] = VoiceGateway(app[STORE], app[SETTINGS], env)

    async def close(app: web.Application) -> None:
        await app[VOICE].close()

    app.on_shutdown.append(close)
    app.router.add_get("/telnyx", telnyx_stream)
    app.router.add_get("/twilio", twilio_stream)
    app.router.add_post("/webhooks/telnyx/voice", telnyx_voice)
    app.router.add_post("/webhooks/twilio/voice", twilio_voice)
