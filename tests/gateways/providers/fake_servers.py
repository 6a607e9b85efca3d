"""Local stand-ins for Twilio, Telnyx, the WhatsApp Cloud API and ElasticEmail, speaking their real wire formats.

One aiohttp application on 127.0.0.1 serves all four under path prefixes, so Touchline's real provider clients can be
pointed at it through `FakeProviders.env()`:

- `/twilio/2010-04-01/Accounts/{sid}/...`  Twilio REST (form bodies, Basic auth, Twilio error bodies)
- `/telnyx/v2/...`                          Telnyx API v2 (JSON, Bearer auth, JSON:API style `errors`)
- `/meta/v21.0/{phone_number_id}/messages`  WhatsApp Cloud API (Graph API `error` objects)
- `/elastic/v4/emails/transactional`        ElasticEmail v4 (`X-ElasticEmail-ApiKey`)

Every request is recorded (`requests`, `sent()`), faults can be queued per provider and route (`fail()`, `error()`,
`slow()`), Twilio's list/fetch endpoints answer from what was created, and after a successful create the fake posts
signed status callbacks to the URL the request named, the way the real provider would.

Signatures follow the providers' documentation: Twilio's `X-Twilio-Signature` (HMAC-SHA1 over the URL followed by
the sorted POST parameters, keyed with the auth token, base64) and Telnyx's `telnyx-signature-ed25519` (Ed25519 over
`"{timestamp}|" + body`, base64) with `telnyx-timestamp`.

Recorded header names are lower-cased (`rec.headers["authorization"]`).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import hmac
import json as jsonlib
import math
import re
import secrets
import time
import uuid
from collections import deque
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from email.utils import format_datetime, parsedate_to_datetime
from http import HTTPStatus
from typing import Any, Final, Self
from urllib.parse import parse_qsl, urlencode

import aiohttp
import msgspec
from aiohttp import web
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

__all__ = ["PROVIDERS", "ROUTES", "FakeProviders", "Fault", "Recorded"]

PROVIDERS: Final = ("twilio", "telnyx", "meta", "elastic")
ROUTES: Final[dict[str, tuple[str, ...]]] = {
    "twilio": (
        "messages.create",
        "messages.list",
        "messages.fetch",
        "calls.create",
        "calls.list",
        "calls.fetch",
        "calls.update",
    ),
    "telnyx": ("messages.create", "messages.fetch", "calls.create", "calls.action"),
    "meta": ("messages.create",),
    "elastic": ("email.send",),
}
CREATE_ROUTES: Final = frozenset({"messages.create", "calls.create", "email.send"})
DEFAULT_ROUTE: Final = {
    "twilio": "messages.create",
    "telnyx": "messages.create",
    "meta": "messages.create",
    "elastic": "email.send",
}
TWILIO_API_VERSION: Final = "2010-04-01"
UNKNOWN_ROUTE: Final = "unknown"


class Recorded(msgspec.Struct, kw_only=True):
    """One request the fake received (header names lower-cased)."""

    provider: str
    route: str
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    form: dict[str, str]  # Twilio's form body (last value of a repeated name wins; see form_items), else {}
    json: Any  # the JSON body for Telnyx/Meta/Elastic (None when absent or unparseable)
    at: float  # time.time() on arrival
    body: bytes = b""  # the raw body as received
    form_items: list[tuple[str, str]] = msgspec.field(default_factory=list)  # every form pair, repeats kept
    fault: str | None = None  # description of the fault applied to this request, if any


class Fault(msgspec.Struct):
    """A misbehaviour queued for one request on (provider, route).

    `status=0` means "answer normally" (combine with `delay_s` for a slow success). `body` may also be a callable
    taking the `Recorded` request and returning the JSON body.
    """

    status: int = 500
    body: Any = None  # JSON body; None: the provider's own error shape for `status`
    delay_s: float = 0.0  # sleep before answering
    drop: bool = False  # close the TCP connection without any response (after the delay)
    headers: dict[str, str] = msgspec.field(default_factory=dict)
    after_create: bool = False  # create routes: the resource IS created (and listed, and called back), then the fault

    def describe(self) -> str:
        parts = ["drop" if self.drop else (f"status={self.status}" if self.status else "normal")]
        if self.delay_s:
            parts.append(f"delay={self.delay_s:g}s")
        if self.after_create:
            parts.append("after_create")
        return ",".join(parts)


# --- provider error catalogues ------------------------------------------------------------------------------------

# Twilio: code -> (HTTP status, message). `{to}`/`{from}` are filled from the request's form.
TWILIO_ERRORS: Final[dict[int, tuple[int, str]]] = {
    20003: (401, "Authenticate"),
    20404: (404, "The requested resource {path} was not found"),
    20429: (429, "Too Many Requests"),
    20500: (500, "Internal Server Error"),
    20503: (503, "Service Unavailable"),
    21211: (400, "The 'To' number {to} is not a valid phone number."),
    21212: (400, "The 'From' number {from} is not a valid phone number, shortcode, or alphanumeric sender ID."),
    21408: (400, "Permission to send an SMS has not been enabled for the region indicated by the 'To' number: {to}."),
    21602: (400, "Message body is required."),
    21603: (400, "A 'From' phone number is required."),
    21604: (400, "A 'To' phone number is required."),
    21606: (
        400,
        "The From phone number {from} is not a valid, SMS-capable inbound phone number or short code for your account.",
    ),
    21608: (400, "The number {to} is unverified. Trial accounts cannot send messages to unverified numbers."),
    21610: (400, "Attempt to send to unsubscribed recipient"),
    21612: (
        400,
        "The 'To' phone number: {to}, is not currently reachable using the 'From' phone number: {from} via SMS.",
    ),
    21614: (400, "'To' number is not a valid mobile number"),
    21635: (400, "'To' number cannot be a landline"),
    21656: (400, "The ContentVariables Parameter is invalid."),
    21201: (400, "No 'To' number is specified"),
    21213: (400, "No 'From' number is specified"),
    21205: (400, "Url is not a valid URL: "),
    63016: (
        400,
        "Failed to send freeform message because you are outside the allowed window. If you want to send "
        "messages outside a 24-hour window, please use a Message Template.",
    ),
}

# Telnyx: code -> (HTTP status, title, detail, source pointer or None).
TELNYX_ERRORS: Final[dict[str, tuple[int, str, str, str | None]]] = {
    "10004": (400, "Missing required parameter", "A required parameter was missing.", None),
    "10005": (404, "Resource not found", "The requested resource or URL could not be found.", None),
    "10007": (500, "Unexpected error", "An unexpected error occured.", None),
    "10009": (
        401,
        "Authentication failed",
        "The required authentication headers were either invalid or not included in the request.",
        None,
    ),
    "10010": (
        403,
        "Authorization failed",
        "You do not have permission to perform the requested action on the specified resource or resources.",
        None,
    ),
    "10011": (429, "Too many requests", "You have exceeded the maximum number of allowed requests.", None),
    "10015": (400, "Bad Request", "The request failed because it was not well-formed.", None),
    "10016": (
        400,
        "Phone number must be in +E.164 format",
        "The specified phone number parameter must be in +E.164 format.",
        "/to",
    ),
    # Telnyx lists 40001 as a carrier (delivery) error; when the API refuses the number up front the HTTP status
    # is not documented for it, 400 is a guess.
    "40001": (400, "Not routable", "The destination number is not routable (landline or non-routable number).", "/to"),
    # Telnyx's error page for 40300 documents HTTP 409.
    "40300": (
        409,
        "Blocked due to STOP message",
        "Messages cannot be sent from {from} to {to} due to an existing block rule.",
        "/to",
    ),
    "40305": (
        400,
        "Invalid 'from' address",
        "The 'from' address should be a phone number in +E.164 format, a "
        "short code, an alphanumeric sender ID or a number pool messaging profile.",
        "/from",
    ),
    "40310": (400, "Invalid 'to' address", "The 'to' address should be a phone number in +E.164 format.", "/to"),
}

# WhatsApp Cloud API: code -> (HTTP status, message, details).
META_ERRORS: Final[dict[int, tuple[int, str, str]]] = {
    100: (400, "(#100) Invalid parameter", "Invalid parameter"),
    190: (401, "Invalid OAuth access token - Cannot parse access token", ""),
    130429: (429, "(#130429) Rate limit hit", "Cloud API message throughput has been reached."),
    131000: (500, "(#131000) Something went wrong", "Message failed to send due to an unknown error."),
    131026: (
        400,
        "(#131026) Message Undeliverable",
        "Unable to deliver message. Reasons can include: the recipient "
        "phone number is not a WhatsApp phone number; the recipient has not accepted the new Terms of Service "
        "and Privacy Policy; the recipient is using an old WhatsApp version.",
    ),
    131030: (
        400,
        "(#131030) Recipient phone number not in allowed list",
        "Recipient phone number not in allowed list: Add recipient phone number to recipient list and try again.",
    ),
    131047: (
        400,
        "(#131047) Re-engagement message",
        "Message failed to send because more than 24 hours have passed since the customer last replied to this number.",
    ),
    131050: (
        400,
        "(#131050) Unable to deliver the message. This recipient has chosen to stop receiving marketing "
        "messages on WhatsApp from your business.",
        "Unable to deliver the message. This recipient has chosen "
        "to stop receiving marketing messages on WhatsApp from your business.",
    ),
    131056: (
        400,
        "(#131056) (Business Account, Consumer Account) pair rate limit hit",
        "Message failed to send "
        "because there were too many messages sent from this phone number to the same phone number in a short "
        "period of time.",
    ),
    132000: (
        400,
        "(#132000) Number of parameters does not match the expected number of params",
        "body: number of localizable_params does not match the expected number of params",
    ),
    132001: (
        404,
        "(#132001) Template name does not exist in the translation",
        "template name does not exist in the translation",
    ),
    133010: (400, "(#133010) Account not registered", "Phone number Not registered on the Whatsapp Business Platform."),
}

TWILIO_DEFAULT_CODE: Final = {401: 20003, 404: 20404, 429: 20429, 500: 20500, 503: 20503}
TELNYX_DEFAULT_CODE: Final = {401: "10009", 403: "10010", 404: "10005", 429: "10011"}
META_DEFAULT_CODE: Final = {401: 190, 429: 130429}

# GSM 03.38: the basic set (one septet each) and the extension table (two septets each).
GSM_BASIC: Final = frozenset(
    "@\u00a3$\u00a5\u00e8\u00e9\u00f9\u00ec\u00f2\u00c7\n\u00d8\u00f8\r\u00c5\u00e5\u0394_\u03a6\u0393\u039b\u03a9"
    "\u03a0\u03a8\u03a3\u0398\u039e\u00c6\u00e6\u00df\u00c9 !\"#\u00a4%&'()*+,-./0123456789:;<=>?\u00a1"
    "ABCDEFGHIJKLMNOPQRSTUVWXYZ\u00c4\u00d6\u00d1\u00dc\u00a7\u00bfabcdefghijklmnopqrstuvwxyz"
    "\u00e4\u00f6\u00f1\u00fc\u00e0"
)
GSM_EXTENSION: Final = frozenset("^{}\\[~]|\u20ac\f")


def sms_encoding(text: str) -> tuple[str, int]:
    """("GSM-7" | "UCS-2", number of segments) the way carriers count them."""
    if all(ch in GSM_BASIC or ch in GSM_EXTENSION for ch in text):
        septets = sum(2 if ch in GSM_EXTENSION else 1 for ch in text)
        return "GSM-7", 1 if septets <= 160 else math.ceil(septets / 153)
    units = len(text.encode("utf-16-le")) // 2
    return "UCS-2", 1 if units <= 70 else math.ceil(units / 67)


def _hex32() -> str:
    return secrets.token_hex(16)


def _digits(n: int) -> str:
    return str(secrets.randbelow(9) + 1) + "".join(str(secrets.randbelow(10)) for _ in range(n - 1))


def _rfc2822(moment: datetime) -> str:
    return format_datetime(moment.astimezone(UTC))


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="milliseconds")


def _now() -> datetime:
    return datetime.now(UTC)


def _fbtrace() -> str:
    return "A" + secrets.token_urlsafe(16)[:22]


def _retry_after(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else f"{value:g}"


@dataclass
class _Ctx:
    """What a provider handler needs about one request."""

    request: web.Request
    rec: Recorded
    args: dict[str, str]
    bad_json: bool = False
    multi: dict[str, list[str]] = field(default_factory=dict)


Handler = Callable[[_Ctx], Awaitable[web.Response]]


class FakeProviders:
    """All four fake providers on one local port. Use `async with FakeProviders() as fake:` or start()/close()."""

    def __init__(self, *, callbacks: bool = True, callback_delay_s: float = 0.05) -> None:
        self.callbacks = callbacks
        self.callback_delay_s = callback_delay_s
        self.requests: list[Recorded] = []
        self.callback_results: list[tuple[str, int]] = []
        # The providers' stored resources, newest last; tests may edit them (e.g. backdate `date_sent`).
        self.twilio_messages: list[dict[str, Any]] = []
        self.twilio_calls: list[dict[str, Any]] = []
        self.telnyx_messages: list[dict[str, Any]] = []
        self.telnyx_calls: list[dict[str, Any]] = []
        self.telnyx_actions: list[tuple[str, str, Any]] = []  # (call_control_id, action, JSON body)
        self.twilio_call_updates: list[tuple[str, dict[str, str]]] = []  # (CallSid, form)
        self.whatsapp_messages: list[dict[str, Any]] = []
        self.emails: list[dict[str, Any]] = []

        self.twilio_account_sid = "AC" + _hex32()
        self.twilio_auth_token = _hex32()
        self.twilio_from = "+13055550000"
        self.twilio_whatsapp_from = "whatsapp:+14155238886"
        self.telnyx_api_key = "KEY0" + secrets.token_hex(13).upper() + "_" + secrets.token_hex(11)
        self.telnyx_from = "+13055550001"
        self.telnyx_messaging_profile_id = str(uuid.uuid4())
        self.telnyx_connection_id = _digits(19)
        self._telnyx_key = Ed25519PrivateKey.generate()
        raw_public = self._telnyx_key.public_key().public_bytes(
            encoding=serialization.Encoding.Raw, format=serialization.PublicFormat.Raw
        )
        self.telnyx_public_key = base64.b64encode(raw_public).decode()
        self.whatsapp_access_token = "EAAG" + secrets.token_urlsafe(48).replace("-", "").replace("_", "")
        self.whatsapp_phone_number_id = _digits(15)
        self.whatsapp_display_number = "15550100001"  # as Meta writes numbers: digits, no plus
        self.whatsapp_business_account_id = _digits(15)
        self.whatsapp_app_secret = secrets.token_hex(16)
        self.whatsapp_verify_token = secrets.token_urlsafe(16)
        self.elastic_api_key = secrets.token_hex(48).upper()
        self.elastic_from = "ventas@dealer.example"
        self.elastic_webhook_token = secrets.token_urlsafe(24)

        self._faults: dict[tuple[str, str], deque[Fault]] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._closing = asyncio.Event()
        self._runner: web.AppRunner | None = None
        self._session: aiohttp.ClientSession | None = None
        self._base_url: str | None = None

    # --- lifecycle -------------------------------------------------------------------------------------------------

    async def start(self) -> None:
        if self._runner is not None:
            return
        self._closing = asyncio.Event()
        app = web.Application(client_max_size=10 * 1024 * 1024)
        app.router.add_route("*", "/twilio/{tail:.*}", self._serve_twilio)
        app.router.add_route("*", "/telnyx/v2/{tail:.*}", self._serve_telnyx)
        app.router.add_route("*", "/meta/v21.0/{tail:.*}", self._serve_meta)
        app.router.add_route("*", "/elastic/v4/{tail:.*}", self._serve_elastic)
        runner = web.AppRunner(app, access_log=None, shutdown_timeout=2.0)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        self._runner = runner
        port = next(iter(runner.addresses))[1]
        self._base_url = f"http://127.0.0.1:{port}"

    async def close(self) -> None:
        self._closing.set()  # wakes delayed handlers, which then drop their connection
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        if self._session is not None:
            await self._session.close()
            self._session = None
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    @property
    def base_url(self) -> str:
        if self._base_url is None:
            raise RuntimeError("FakeProviders is not started")
        return self._base_url

    def env(self) -> dict[str, str]:
        """Everything Touchline needs to talk to these fakes instead of the real providers."""
        base = self.base_url
        return {
            "TWILIO_API_BASE_URL": f"{base}/twilio",
            "TWILIO_ACCOUNT_SID": self.twilio_account_sid,
            "TWILIO_AUTH_TOKEN": self.twilio_auth_token,
            "TWILIO_FROM_NUMBER": self.twilio_from,
            "TWILIO_WHATSAPP_FROM": self.twilio_whatsapp_from,
            "TELNYX_API_BASE_URL": f"{base}/telnyx/v2",
            "TELNYX_API_KEY": self.telnyx_api_key,
            "TELNYX_FROM_NUMBER": self.telnyx_from,
            "TELNYX_MESSAGING_PROFILE_ID": self.telnyx_messaging_profile_id,
            "TELNYX_CONNECTION_ID": self.telnyx_connection_id,
            "TELNYX_PUBLIC_KEY": self.telnyx_public_key,
            "WHATSAPP_API_BASE_URL": f"{base}/meta/v21.0",
            "WHATSAPP_ACCESS_TOKEN": self.whatsapp_access_token,
            "WHATSAPP_PHONE_NUMBER_ID": self.whatsapp_phone_number_id,
            "WHATSAPP_APP_SECRET": self.whatsapp_app_secret,
            "WHATSAPP_VERIFY_TOKEN": self.whatsapp_verify_token,
            "ELASTIC_EMAIL_API_BASE_URL": f"{base}/elastic/v4",
            "ELASTIC_EMAIL_API_KEY": self.elastic_api_key,
            "ELASTIC_EMAIL_FROM": self.elastic_from,
            "ELASTIC_EMAIL_WEBHOOK_TOKEN": self.elastic_webhook_token,
        }

    # --- inspection and fault injection ----------------------------------------------------------------------------

    def sent(self, provider: str, route: str = "messages.create") -> list[Recorded]:
        """Every request received on (provider, route), faulted ones included, in arrival order."""
        if provider == "elastic" and route == "messages.create":
            route = "email.send"
        return [rec for rec in self.requests if rec.provider == provider and rec.route == route]

    def fail(
        self, provider: str, route: str, fault: Fault | None = None, *, times: int = 1, **fault_fields: Any
    ) -> None:
        """Queue `times` copies of a fault for (provider, route); route "*" matches any route of that provider.

        Faults are consumed one per matching request, FIFO; route-specific queues are used before "*".
        """
        self._check(provider, route)
        if fault is None:
            fault = Fault(**fault_fields)
        elif fault_fields:
            fault = msgspec.structs.replace(fault, **fault_fields)
        queue = self._faults.setdefault((provider, route), deque())
        for _ in range(times):
            queue.append(msgspec.structs.replace(fault))

    def slow(self, provider: str, route: str, delay_s: float, *, times: int = 1) -> None:
        """The next `times` requests on (provider, route) are answered normally, but only after `delay_s`."""
        self.fail(provider, route, Fault(status=0, delay_s=delay_s), times=times)

    def error(
        self,
        provider: str,
        code: str | int,
        *,
        status: int | None = None,
        times: int = 1,
        retry_after: float | None = None,
        route: str | None = None,
        after_create: bool = False,
    ) -> None:
        """Queue the provider's own error `code` (its real body; HTTP status from the catalogue unless given).

        For ElasticEmail `code` is the error message. `route` defaults to the provider's send route.
        """
        if route is None:
            route = DEFAULT_ROUTE.get(provider, "")
        self._check(provider, route)
        headers = {"Retry-After": _retry_after(retry_after)} if retry_after is not None else {}
        http_status, body = self._error_template(provider, code, status)
        self.fail(
            provider,
            route,
            Fault(status=http_status, body=body, headers=headers, after_create=after_create),
            times=times,
        )

    def pending_faults(self, provider: str, route: str) -> int:
        return len(self._faults.get((provider, route), ()))

    async def wait_callbacks(self, within_s: float = 5.0) -> None:
        """Wait until every status callback scheduled so far has been delivered (or failed)."""
        deadline = time.monotonic() + within_s
        while self._tasks:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError("status callbacks still pending")
            await asyncio.wait(set(self._tasks), timeout=remaining)

    # --- signing helpers --------------------------------------------------------------------------------------------

    def twilio_signature(self, url: str, params: dict[str, str]) -> str:
        """X-Twilio-Signature: base64(HMAC-SHA1(auth token, url + name1 + value1 + ... with names sorted))."""
        payload = url + "".join(name + params[name] for name in sorted(params))
        digest = hmac.new(self.twilio_auth_token.encode(), payload.encode("utf-8"), hashlib.sha1).digest()
        return base64.b64encode(digest).decode()

    def telnyx_headers(self, body: bytes, timestamp: int | None = None) -> dict[str, str]:
        """telnyx-signature-ed25519 (base64 Ed25519 over b"{timestamp}|" + body) and telnyx-timestamp."""
        ts = int(time.time()) if timestamp is None else timestamp
        signature = self._telnyx_key.sign(f"{ts}|".encode() + body)
        return {"telnyx-signature-ed25519": base64.b64encode(signature).decode(), "telnyx-timestamp": str(ts)}

    async def send_twilio_webhook(
        self, url: str, params: dict[str, str], *, signature: str | None = None
    ) -> tuple[int, str, dict[str, str]]:
        """POST `params` form-encoded to `url` as Twilio would (signed unless `signature` is given)."""
        headers = {
            "X-Twilio-Signature": self.twilio_signature(url, params) if signature is None else signature,
            "Content-Type": "application/x-www-form-urlencoded; charset=utf-8",
            "User-Agent": "TwilioProxy/1.1",
            "I-Twilio-Idempotency-Token": str(uuid.uuid4()),
        }
        async with self._client().post(url, data=urlencode(params).encode(), headers=headers) as resp:
            return resp.status, await resp.text(), dict(resp.headers.items())

    async def send_telnyx_webhook(
        self, url: str, payload: dict[str, Any], *, timestamp: int | None = None, sign: bool = True
    ) -> tuple[int, str]:
        """POST a Telnyx webhook envelope to `url`, signed (unless sign=False) with the key pair behind env()."""
        meta = payload.get("meta")
        if isinstance(meta, dict) and not meta.get("delivered_to"):
            payload = {**payload, "meta": {**meta, "delivered_to": url}}
        body = jsonlib.dumps(payload).encode()
        headers = {"Content-Type": "application/json", "User-Agent": "telnyx-webhooks"}
        if sign:
            headers.update(self.telnyx_headers(body, timestamp))
        async with self._client().post(url, data=body, headers=headers) as resp:
            return resp.status, await resp.text()

    # --- Meta webhooks (what graph.facebook.com POSTs to the app's callback URL) -------------------------------------

    def _meta_notification(self, value: dict[str, Any]) -> dict[str, Any]:
        return {
            "object": "whatsapp_business_account",
            "entry": [
                {
                    "id": self.whatsapp_business_account_id,
                    "changes": [
                        {
                            "value": {
                                "messaging_product": "whatsapp",
                                "metadata": {
                                    "display_phone_number": self.whatsapp_display_number,
                                    "phone_number_id": self.whatsapp_phone_number_id,
                                },
                                **value,
                            },
                            "field": "messages",
                        }
                    ],
                }
            ],
        }

    def meta_inbound(self, *, from_: str, text: str, kind: str = "text", name: str = "Cliente") -> dict[str, Any]:
        """A Cloud API notification of one inbound message (`text`, `button`, or a media kind such as `image`)."""
        wa_id = re.sub(r"\D", "", from_)
        message: dict[str, Any] = {
            "from": wa_id,
            "id": "wamid." + base64.b64encode(secrets.token_bytes(30)).decode().rstrip("="),
            "timestamp": str(int(time.time())),
            "type": kind,
        }
        if kind == "text":
            message["text"] = {"body": text}
        elif kind == "button":
            message["button"] = {"payload": text, "text": text}
        else:
            message[kind] = {"caption": text, "mime_type": "image/jpeg", "sha256": _hex32(), "id": _digits(16)}
        return self._meta_notification(
            {"contacts": [{"profile": {"name": name}, "wa_id": wa_id}], "messages": [message]}
        )

    def meta_status(
        self, *, message_id: str, status: str, recipient: str, touch: str | None, error_code: int | None = None
    ) -> dict[str, Any]:
        """A Cloud API status notification (sent, delivered, read, failed) for a message we sent."""
        item: dict[str, Any] = {
            "id": message_id,
            "status": status,
            "timestamp": str(int(time.time())),
            "recipient_id": re.sub(r"\D", "", recipient),
        }
        if touch is not None:
            item["biz_opaque_callback_data"] = touch
        if status != "failed":
            item["conversation"] = {"id": _hex32(), "origin": {"type": "marketing"}}
            item["pricing"] = {"billable": True, "pricing_model": "CBP", "category": "marketing"}
        if error_code is not None:
            item["errors"] = [
                {
                    "code": error_code,
                    "title": "Message failed to send",
                    "message": "Message failed to send",
                    "error_data": {"details": f"error {error_code}"},
                }
            ]
        return self._meta_notification({"statuses": [item]})

    def meta_signature(self, body: bytes) -> str:
        return "sha256=" + hmac.new(self.whatsapp_app_secret.encode(), body, hashlib.sha256).hexdigest()

    async def send_meta_webhook(self, url: str, payload: dict[str, Any], *, sign: bool = True) -> tuple[int, str]:
        """POST a Meta notification to `url`, signed with the app secret behind env() (unless sign=False)."""
        body = jsonlib.dumps(payload).encode()
        headers = {"Content-Type": "application/json", "User-Agent": "facebookexternalua"}
        if sign:
            headers["X-Hub-Signature-256"] = self.meta_signature(body)
        async with self._client().post(url, data=body, headers=headers) as resp:
            return resp.status, await resp.text()

    # --- ElasticEmail HTTP web notifications (a GET with the event in the query) -----------------------------------

    def elastic_notification(
        self,
        *,
        status: str,
        to: str,
        postback: str | None,
        message_id: str | None = None,
        transaction: str | None = None,
        category: str | None = None,
    ) -> dict[str, str]:
        """The query ElasticEmail appends to the notification URL for one email event."""
        params = {
            "transaction": transaction or str(uuid.uuid4()),
            "messageid": message_id or secrets.token_urlsafe(16),
            "to": to,
            "from": self.elastic_from,
            "date": datetime.now(UTC).strftime("%m/%d/%Y %I:%M:%S %p"),
            "subject": "Su vehículo",
            "status": status,
            "channel": "touchline",
            "account": "cuenta@dealer.example",
            "category": category or ("Unknown" if status == "Error" else ""),
            "target": "https://dealer.example/oferta" if status == "Clicked" else "",
        }
        if postback is not None:
            params["postback"] = postback
        return params

    async def send_elastic_webhook(
        self, url: str, params: dict[str, str], *, token: str | None = None
    ) -> tuple[int, str]:
        """GET the notification URL (`url?token=...` as configured in ElasticEmail) with the event's parameters."""
        query = {"token": self.elastic_webhook_token if token is None else token, **params}
        async with self._client().get(url, params=query, headers={"User-Agent": "ElasticEmail"}) as resp:
            return resp.status, await resp.text()

    def twilio_inbound(
        self, *, from_: str, body: str, to: str | None = None, whatsapp: bool = False, profile_name: str = "Cliente"
    ) -> dict[str, str]:
        """The parameters of Twilio's inbound-message webhook (SMS, or WhatsApp with whatsapp=True)."""
        sid = "SM" + _hex32()
        _, segments = sms_encoding(body)
        if whatsapp:
            to = to or self.twilio_whatsapp_from
            sender = from_ if from_.startswith("whatsapp:") else f"whatsapp:{from_}"
            to = to if to.startswith("whatsapp:") else f"whatsapp:{to}"
            return {
                "SmsMessageSid": sid,
                "NumMedia": "0",
                "ProfileName": profile_name,
                "MessageType": "text",
                "SmsSid": sid,
                "WaId": re.sub(r"\D", "", sender),
                "SmsStatus": "received",
                "Body": body,
                "To": to,
                "NumSegments": "1",
                "ReferralNumMedia": "0",
                "MessageSid": sid,
                "AccountSid": self.twilio_account_sid,
                "From": sender,
                "ApiVersion": TWILIO_API_VERSION,
            }
        return {
            "ToCountry": "US",
            "ToState": "FL",
            "SmsMessageSid": sid,
            "NumMedia": "0",
            "ToCity": "MIAMI",
            "FromZip": "",
            "SmsSid": sid,
            "FromState": "",
            "SmsStatus": "received",
            "FromCity": "",
            "Body": body,
            "FromCountry": "",
            "To": to or self.twilio_from,
            "ToZip": "33101",
            "NumSegments": str(segments),
            "MessageSid": sid,
            "AccountSid": self.twilio_account_sid,
            "From": from_,
            "ApiVersion": TWILIO_API_VERSION,
        }

    def telnyx_inbound(self, *, from_: str, text: str, to: str | None = None, delivered_to: str = "") -> dict[str, Any]:
        """A Telnyx v2 `message.received` webhook envelope (send_telnyx_webhook fills meta.delivered_to if empty)."""
        now = _now()
        encoding, parts = sms_encoding(text)
        payload = {
            "record_type": "message",
            "direction": "inbound",
            "id": str(uuid.uuid4()),
            "type": "SMS",
            "messaging_profile_id": self.telnyx_messaging_profile_id,
            "organization_id": str(uuid.uuid4()),
            "from": {"phone_number": from_, "carrier": "T-Mobile USA", "line_type": "Wireless"},
            "to": [
                {
                    "phone_number": to or self.telnyx_from,
                    "status": "webhook_delivered",
                    "carrier": "Telnyx",
                    "line_type": "Wireless",
                }
            ],
            "cc": [],
            "text": text,
            "media": [],
            "encoding": encoding,
            "parts": parts,
            "tags": [],
            "cost": None,
            "received_at": _iso(now),
            "sent_at": None,
            "completed_at": None,
            "valid_until": None,
            "webhook_url": delivered_to or None,
            "webhook_failover_url": None,
            "errors": [],
        }
        return {
            "data": {
                "event_type": "message.received",
                "id": str(uuid.uuid4()),
                "occurred_at": _iso(now),
                "payload": payload,
                "record_type": "event",
            },
            "meta": {"attempt": 1, "delivered_to": delivered_to},
        }

    # --- plumbing ---------------------------------------------------------------------------------------------------

    def _check(self, provider: str, route: str) -> None:
        if provider not in ROUTES:
            raise ValueError(f"unknown provider {provider!r}; expected one of {PROVIDERS}")
        if route != "*" and route not in ROUTES[provider]:
            raise ValueError(f"unknown route {route!r} for {provider}; expected one of {ROUTES[provider]} or '*'")

    def _client(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10))
        return self._session

    def _take_fault(self, provider: str, route: str) -> Fault | None:
        for key in ((provider, route), (provider, "*")):
            queue = self._faults.get(key)
            if queue:
                return queue.popleft()
        return None

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        if self._closing.is_set():
            coro.close()
            return
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _pause(self, delay_s: float) -> bool:
        """Sleep `delay_s` (cut short by close()); True when the fake is closing."""
        if delay_s > 0:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._closing.wait(), delay_s)
        return self._closing.is_set()

    @staticmethod
    def _drop(request: web.Request) -> web.Response:
        transport = request.transport
        if transport is not None:
            transport.close()
        return web.Response(status=204)  # never reaches the client: the connection is gone

    async def _serve(
        self,
        request: web.Request,
        provider: str,
        router: Callable[[str, str], tuple[str, dict[str, str]]],
        handler: Handler,
    ) -> web.StreamResponse:
        raw = await request.read()
        route, args = router(request.method, "/" + request.match_info["tail"])
        ctx_multi: dict[str, list[str]] = {}
        form_items: list[tuple[str, str]] = []
        body_json: Any = None
        bad_json = False
        if provider == "twilio":
            if raw:
                form_items = parse_qsl(raw.decode("utf-8", "replace"), keep_blank_values=True)
            for name, value in form_items:
                ctx_multi.setdefault(name, []).append(value)
        elif raw:
            try:
                body_json = jsonlib.loads(raw)
            except ValueError:
                bad_json = True
        fault = self._take_fault(provider, route)
        rec = Recorded(
            provider=provider,
            route=route,
            method=request.method,
            path=request.path,
            query=dict(request.query.items()),
            headers={name.lower(): value for name, value in request.headers.items()},
            form=dict(form_items),
            json=body_json,
            at=time.time(),
            body=raw,
            form_items=form_items,
            fault=fault.describe() if fault else None,
        )
        self.requests.append(rec)
        ctx = _Ctx(request=request, rec=rec, args=args, bad_json=bad_json, multi=ctx_multi)
        if fault is None:
            return await handler(ctx)
        if fault.after_create and route in CREATE_ROUTES:
            response = await handler(ctx)
            if not 200 <= response.status < 300:
                return response
            closing = await self._pause(fault.delay_s)
            return self._faulted(request, provider, fault, rec, closing, response)
        closing = await self._pause(fault.delay_s)
        if fault.status == 0 and not fault.drop and not closing:
            return await handler(ctx)
        return self._faulted(request, provider, fault, rec, closing, None)

    def _faulted(
        self,
        request: web.Request,
        provider: str,
        fault: Fault,
        rec: Recorded,
        closing: bool,
        normal: web.Response | None,
    ) -> web.Response:
        if fault.drop or closing:
            return self._drop(request)
        if fault.status == 0 and normal is not None:
            return normal
        status = fault.status or 500
        body = fault.body(rec) if callable(fault.body) else fault.body
        if body is None:
            body = self._error_template(provider, None, status)[1](rec)
        return web.json_response(body, status=status, headers=fault.headers)

    def _error_template(
        self, provider: str, code: str | int | None, status: int | None
    ) -> tuple[int, Callable[[Recorded], Any]]:
        """(HTTP status, body builder) for a provider error; code None picks the generic code for `status`."""
        if provider == "twilio":
            tw_code = int(code) if code is not None else TWILIO_DEFAULT_CODE.get(status or 500, status or 500)
            http_status, template = TWILIO_ERRORS.get(tw_code, (status or 400, _phrase(status or 400)))
            http_status = status or http_status
            return http_status, lambda rec: _twilio_error(tw_code, _fill(template, rec), http_status)
        if provider == "telnyx":
            if code is None:
                tx_code = TELNYX_DEFAULT_CODE.get(status or 500, "10007" if (status or 500) >= 500 else "10015")
            else:
                tx_code = str(code)
            default = (status or 400, _phrase(status or 400), _phrase(status or 400), None)
            http_status, title, detail, pointer = TELNYX_ERRORS.get(tx_code, default)
            http_status = status or http_status
            return http_status, lambda rec: _telnyx_error(tx_code, title, _fill(detail, rec), pointer)
        if provider == "meta":
            if code is None:
                st = status or 500
                fb_code = META_DEFAULT_CODE.get(st, 131000 if st >= 500 else 100)
            else:
                fb_code = int(code)
            http_status, message, details = META_ERRORS.get(fb_code, (status or 400, f"(#{fb_code}) Error", ""))
            http_status = status or http_status
            return http_status, lambda rec: _meta_error(fb_code, message, details)
        if provider == "elastic":
            message = str(code) if code is not None else _phrase(status or 500)
            http_status = status or (400 if code is not None else 500)
            return http_status, lambda rec: {"Error": message}
        raise ValueError(f"unknown provider {provider!r}")

    # --- callbacks --------------------------------------------------------------------------------------------------

    async def _deliver(self, url: str, *, data: bytes, headers: dict[str, str]) -> None:
        try:
            async with self._client().post(url, data=data, headers=headers) as resp:
                await resp.read()
                self.callback_results.append((url, resp.status))
        except (aiohttp.ClientError, TimeoutError, OSError):
            self.callback_results.append((url, 0))

    async def _twilio_callback(self, url: str, params: dict[str, str]) -> None:
        headers = {
            "X-Twilio-Signature": self.twilio_signature(url, params),
            "Content-Type": "application/x-www-form-urlencoded; charset=utf-8",
            "User-Agent": "TwilioProxy/1.1",
            "I-Twilio-Idempotency-Token": str(uuid.uuid4()),
        }
        await self._deliver(url, data=urlencode(params).encode(), headers=headers)

    async def _twilio_message_callbacks(self, url: str, message: dict[str, Any]) -> None:
        for status in ("sent", "delivered"):
            await asyncio.sleep(self.callback_delay_s)
            message["status"] = status
            message["date_updated"] = _rfc2822(_now())
            if message["from"] is None:  # a Messaging Service picked the sender from its pool
                message["from"] = self.twilio_from
            params = {
                "AccountSid": message["account_sid"],
                "ApiVersion": TWILIO_API_VERSION,
                "From": message["from"],
                "MessageSid": message["sid"],
                "MessageStatus": status,
                "SmsSid": message["sid"],
                "SmsStatus": status,
                "To": message["to"],
            }
            if message.get("messaging_service_sid"):
                params["MessagingServiceSid"] = message["messaging_service_sid"]
            await self._twilio_callback(url, params)

    async def _twilio_call_callbacks(self, url: str, call: dict[str, Any], events: list[str]) -> None:
        started = _now()
        for sequence, event in enumerate(events):
            await asyncio.sleep(self.callback_delay_s)
            status = {"answered": "in-progress"}.get(event, event)
            now = _now()
            call["status"] = status
            call["date_updated"] = _rfc2822(now)
            if event in ("answered", "completed") and call["start_time"] is None:
                call["start_time"] = _rfc2822(started)
            params = {
                "AccountSid": call["account_sid"],
                "ApiVersion": TWILIO_API_VERSION,
                "CallSid": call["sid"],
                "CallStatus": status,
                "Called": call["to"],
                "Caller": call["from"],
                "Direction": "outbound-api",
                "From": call["from"],
                "To": call["to"],
                "Timestamp": _rfc2822(now),
                "SequenceNumber": str(sequence),
                "CallbackSource": "call-progress-events",
            }
            if event == "completed":
                duration = 7
                call["duration"] = str(duration)
                call["end_time"] = _rfc2822(started + timedelta(seconds=duration))
                params["CallDuration"] = str(duration)
                params["Duration"] = "1"
            await self._twilio_callback(url, params)

    async def _telnyx_callbacks(
        self, url: str, steps: list[tuple[str, Callable[[], None]]], payload: Callable[[], dict[str, Any]]
    ) -> None:
        for event_type, mutate in steps:
            await asyncio.sleep(self.callback_delay_s)
            mutate()
            envelope = {
                "data": {
                    "event_type": event_type,
                    "id": str(uuid.uuid4()),
                    "occurred_at": _iso(_now()),
                    "payload": payload(),
                    "record_type": "event",
                },
                "meta": {"attempt": 1, "delivered_to": url},
            }
            body = jsonlib.dumps(envelope).encode()
            headers = {"Content-Type": "application/json", "User-Agent": "telnyx-webhooks", **self.telnyx_headers(body)}
            await self._deliver(url, data=body, headers=headers)

    # --- Twilio ------------------------------------------------------------------------------------------------------

    async def _serve_twilio(self, request: web.Request) -> web.StreamResponse:
        return await self._serve(request, "twilio", _twilio_route, self._twilio)

    def _twilio_json(self, body: Any, status: int = 200) -> web.Response:
        return web.json_response(body, status=status, headers={"Twilio-Request-Id": "RQ" + _hex32()})

    def _twilio_fail(self, code: int, rec: Recorded, status: int | None = None) -> web.Response:
        http_status, build = self._error_template("twilio", code, status)
        return self._twilio_json(build(rec), http_status)

    async def _twilio(self, ctx: _Ctx) -> web.Response:
        rec = ctx.rec
        login, password = _basic_credentials(ctx.request.headers.get("Authorization", ""))
        if login != self.twilio_account_sid or password != self.twilio_auth_token:
            return self._twilio_fail(20003, rec)
        if rec.route == UNKNOWN_ROUTE:
            return self._twilio_fail(20404, rec)
        if ctx.args["account"] != self.twilio_account_sid:
            return self._twilio_fail(20003, rec)
        if rec.route == "messages.create":
            return self._twilio_create_message(ctx)
        if rec.route == "calls.create":
            return self._twilio_create_call(ctx)
        if rec.route == "calls.update":
            self.twilio_call_updates.append((ctx.args["sid"], dict(rec.form)))
            return self._twilio_json({"sid": ctx.args["sid"], "status": "in-progress"})
        if rec.route in ("messages.fetch", "calls.fetch"):
            store = self.twilio_messages if rec.route == "messages.fetch" else self.twilio_calls
            for item in store:
                if item["sid"] == ctx.args["sid"]:
                    return self._twilio_json(item)
            return self._twilio_fail(20404, rec)
        return self._twilio_list(ctx)

    def _twilio_create_message(self, ctx: _Ctx) -> web.Response:
        rec, form = ctx.rec, ctx.rec.form
        to = form.get("To", "").strip()
        sender = form.get("From", "").strip()
        service = form.get("MessagingServiceSid", "").strip()
        body = form.get("Body", "")
        content_sid = form.get("ContentSid", "").strip()
        media = ctx.multi.get("MediaUrl", [])
        if not to:
            return self._twilio_fail(21604, rec)
        if not sender and not service:
            return self._twilio_fail(21603, rec)
        if not body and not content_sid and not media:
            return self._twilio_fail(21602, rec)
        if "ContentVariables" in form:
            try:
                variables = jsonlib.loads(form["ContentVariables"])
            except ValueError:
                return self._twilio_fail(21656, rec)
            if not isinstance(variables, dict):
                return self._twilio_fail(21656, rec)
        now = _now()
        sid = ("MM" if media else "SM") + _hex32()
        _, segments = sms_encoding(body) if body else ("GSM-7", 1)
        uri = f"/{TWILIO_API_VERSION}/Accounts/{self.twilio_account_sid}/Messages/{sid}"
        message: dict[str, Any] = {
            "account_sid": self.twilio_account_sid,
            "api_version": TWILIO_API_VERSION,
            "body": body,
            "date_created": _rfc2822(now),
            "date_sent": _rfc2822(now),
            "date_updated": _rfc2822(now),
            "direction": "outbound-api",
            "error_code": None,
            "error_message": None,
            "from": sender or None,
            "messaging_service_sid": service or None,
            "num_media": str(len(media)),
            "num_segments": str(segments),
            "price": None,
            "price_unit": "USD",
            "sid": sid,
            # Twilio answers "accepted" when a Messaging Service (not a From) will pick the sender.
            "status": "queued" if sender else "accepted",
            "subresource_uris": {"media": f"{uri}/Media.json", "feedback": f"{uri}/Feedback.json"},
            "to": to,
            "uri": f"{uri}.json",
        }
        self.twilio_messages.append(message)
        callback = form.get("StatusCallback", "").strip()
        if callback and self.callbacks:
            self._spawn(self._twilio_message_callbacks(callback, message))
        return self._twilio_json(message, 201)

    def _twilio_create_call(self, ctx: _Ctx) -> web.Response:
        rec, form = ctx.rec, ctx.rec.form
        to = form.get("To", "").strip()
        sender = form.get("From", "").strip()
        if not to:
            return self._twilio_fail(21201, rec)
        if not sender:
            return self._twilio_fail(21213, rec)
        if not form.get("Url", "").strip() and not form.get("Twiml", "").strip() and not form.get("ApplicationSid"):
            return self._twilio_fail(21205, rec)
        now = _now()
        sid = "CA" + _hex32()
        uri = f"/{TWILIO_API_VERSION}/Accounts/{self.twilio_account_sid}/Calls/{sid}"
        call: dict[str, Any] = {
            "account_sid": self.twilio_account_sid,
            "annotation": None,
            "answered_by": None,
            "api_version": TWILIO_API_VERSION,
            "caller_name": None,
            "date_created": _rfc2822(now),
            "date_updated": _rfc2822(now),
            "direction": "outbound-api",
            "duration": None,
            "end_time": None,
            "forwarded_from": None,
            "from": sender,
            "from_formatted": sender,
            "group_sid": None,
            "parent_call_sid": None,
            "phone_number_sid": "PN" + _hex32(),
            "price": None,
            "price_unit": "USD",
            "queue_time": "0",
            "sid": sid,
            "start_time": None,
            "status": "queued",
            "subresource_uris": {
                "notifications": f"{uri}/Notifications.json",
                "recordings": f"{uri}/Recordings.json",
                "payments": f"{uri}/Payments.json",
                "events": f"{uri}/Events.json",
                "siprec": f"{uri}/Siprec.json",
                "streams": f"{uri}/Streams.json",
            },
            "to": to,
            "to_formatted": to,
            "trunk_sid": None,
            "uri": f"{uri}.json",
        }
        self.twilio_calls.append(call)
        callback = form.get("StatusCallback", "").strip()
        if callback and self.callbacks:
            requested = {ev.lower() for value in ctx.multi.get("StatusCallbackEvent", []) for ev in value.split()}
            order = ("initiated", "ringing", "answered", "completed")
            events = [ev for ev in order if ev in requested] or ["completed"]
            if "completed" not in events:
                events.append("completed")  # Twilio always reports the final state
            self._spawn(self._twilio_call_callbacks(callback, call, events))
        return self._twilio_json(call, 201)

    def _twilio_list(self, ctx: _Ctx) -> web.Response:
        rec = ctx.rec
        messages = rec.route == "messages.list"
        store = self.twilio_messages if messages else self.twilio_calls
        date_field = "DateSent" if messages else "StartTime"
        query = ctx.request.query
        try:
            page_size = max(1, min(1000, int(query.get("PageSize", "50"))))
            page = max(0, int(query.get("Page", "0")))
        except ValueError:
            return self._twilio_json(_twilio_error(20001, "Invalid paging parameter", 400), 400)
        wanted: list[Callable[[dict[str, Any]], bool]] = []
        for name in ("To", "From", "Status"):
            if (value := query.get(name)) is not None:
                wanted.append(_field_equals(name.lower(), value))
        for suffix in ("", ">", "<"):
            raw_when = query.get(date_field + suffix)
            if raw_when is None:
                continue
            try:
                bound, day_only = _parse_when(raw_when)
            except ValueError:
                return self._twilio_json(_twilio_error(20001, f"Invalid {date_field}{suffix}: {raw_when}", 400), 400)
            wanted.append(_date_filter(messages, suffix, bound, day_only))
        matched = [item for item in reversed(store) if all(check(item) for check in wanted)]
        start = page * page_size
        items = matched[start : start + page_size]
        path = f"/{TWILIO_API_VERSION}/Accounts/{self.twilio_account_sid}/{'Messages' if messages else 'Calls'}.json"
        filters = [(k, v) for k, v in query.items() if k not in ("Page", "PageSize", "PageToken")]

        def page_uri(number: int) -> str:
            return f"{path}?{urlencode([*filters, ('PageSize', str(page_size)), ('Page', str(number))])}"

        has_next = start + page_size < len(matched)
        return self._twilio_json(
            {
                "messages" if messages else "calls": items,
                "end": start + len(items) - 1 if items else start,
                "first_page_uri": page_uri(0),
                "next_page_uri": page_uri(page + 1) if has_next else None,
                "page": page,
                "page_size": page_size,
                "previous_page_uri": page_uri(page - 1) if page > 0 else None,
                "start": start,
                "uri": page_uri(page),
            }
        )

    # --- Telnyx ------------------------------------------------------------------------------------------------------

    async def _serve_telnyx(self, request: web.Request) -> web.StreamResponse:
        return await self._serve(request, "telnyx", _telnyx_route, self._telnyx)

    def _telnyx_fail(
        self,
        code: str,
        rec: Recorded,
        *,
        pointer: str | None = None,
        detail: str | None = None,
        status: int | None = None,
    ) -> web.Response:
        http_status, build = self._error_template("telnyx", code, status)
        body = build(rec)
        error = body["errors"][0]
        if pointer is not None:
            error["source"] = {"pointer": pointer}
        if detail is not None:
            error["detail"] = detail
        return web.json_response(body, status=http_status)

    async def _telnyx(self, ctx: _Ctx) -> web.Response:
        rec = ctx.rec
        if ctx.request.headers.get("Authorization", "") != f"Bearer {self.telnyx_api_key}":
            return self._telnyx_fail("10009", rec)
        if rec.route == UNKNOWN_ROUTE:
            return self._telnyx_fail("10005", rec)
        if rec.route == "messages.fetch":
            for item in self.telnyx_messages:
                if item["id"] == ctx.args["id"]:
                    return web.json_response({"data": item})
            return self._telnyx_fail("10005", rec)
        if ctx.bad_json or not isinstance(rec.json, dict):
            return self._telnyx_fail("10015", rec)
        if rec.route == "messages.create":
            return self._telnyx_create_message(ctx, rec.json)
        if rec.route == "calls.action":
            # Call Control commands (answer, streaming_start, speak, hangup...): Telnyx answers
            # {"data": {"result": "ok"}}; the test reads what was asked from `requests`.
            self.telnyx_actions.append((ctx.args["id"], ctx.args["action"], rec.json))
            return web.json_response({"data": {"result": "ok"}})
        return self._telnyx_create_call(ctx, rec.json)

    def _telnyx_create_message(self, ctx: _Ctx, body: dict[str, Any]) -> web.Response:
        rec = ctx.rec
        to = body.get("to")
        sender = body.get("from")
        profile = body.get("messaging_profile_id")
        text = body.get("text")
        media = body.get("media_urls") or []
        if not to:
            return self._telnyx_fail("10004", rec, pointer="/to")
        if not isinstance(to, str) or not re.fullmatch(r"\+[1-9]\d{6,14}", to):
            return self._telnyx_fail("10016", rec, pointer="/to")
        if not sender and not profile:
            return self._telnyx_fail("10004", rec, pointer="/from")
        if not text and not media:
            return self._telnyx_fail("10004", rec, pointer="/text")
        now = _now()
        encoding, parts = sms_encoding(str(text or ""))
        message: dict[str, Any] = {
            "record_type": "message",
            "direction": "outbound",
            "id": str(uuid.uuid4()),
            "type": "MMS" if media else str(body.get("type") or "SMS"),
            "messaging_profile_id": profile or self.telnyx_messaging_profile_id,
            "organization_id": str(uuid.uuid4()),
            "from": {"phone_number": sender or self.telnyx_from, "carrier": "Telnyx", "line_type": "Wireless"},
            "to": [{"phone_number": to, "status": "queued", "carrier": "T-Mobile USA", "line_type": "Wireless"}],
            "cc": [],
            "text": text,
            "media": [{"url": url, "content_type": None, "sha256": None, "size": None} for url in media],
            "webhook_url": body.get("webhook_url"),
            "webhook_failover_url": body.get("webhook_failover_url"),
            "encoding": encoding,
            "parts": parts,
            "tags": [],
            "cost": None,
            "created_at": _iso(now),
            "received_at": _iso(now),
            "sent_at": None,
            "completed_at": None,
            "valid_until": _iso(now + timedelta(hours=1)),
            "errors": [],
        }
        self.telnyx_messages.append(message)
        url = body.get("webhook_url")
        if isinstance(url, str) and url and self.callbacks:

            def sent() -> None:
                message["to"][0]["status"] = "sent"
                message["sent_at"] = _iso(_now())

            def delivered() -> None:
                message["to"][0]["status"] = "delivered"
                message["completed_at"] = _iso(_now())

            steps = [("message.sent", sent), ("message.finalized", delivered)]
            self._spawn(self._telnyx_callbacks(url, steps, lambda: jsonlib.loads(jsonlib.dumps(message))))
        return web.json_response({"data": message})

    def _telnyx_create_call(self, ctx: _Ctx, body: dict[str, Any]) -> web.Response:
        rec = ctx.rec
        for name in ("connection_id", "to", "from"):
            if not body.get(name):
                return self._telnyx_fail("10004", rec, pointer=f"/{name}", status=422)
        if str(body["connection_id"]) != self.telnyx_connection_id:
            return self._telnyx_fail(
                "10005", rec, pointer="/connection_id", status=422, detail="The connection_id does not exist."
            )
        call: dict[str, Any] = {
            "record_type": "call",
            "call_control_id": "v3:" + secrets.token_urlsafe(36),
            "call_leg_id": str(uuid.uuid4()),
            "call_session_id": str(uuid.uuid4()),
            "is_alive": True,
        }
        stored = {
            **call,
            "connection_id": str(body["connection_id"]),
            "to": body["to"],
            "from": body["from"],
            "client_state": body.get("client_state"),
            "webhook_url": body.get("webhook_url"),
            "state": "parked",
            "start_time": _iso(_now()),
        }
        self.telnyx_calls.append(stored)
        url = body.get("webhook_url")
        if isinstance(url, str) and url and self.callbacks:

            def call_payload() -> dict[str, Any]:
                payload = {
                    k: stored[k]
                    for k in (
                        "call_control_id",
                        "call_leg_id",
                        "call_session_id",
                        "connection_id",
                        "client_state",
                        "from",
                        "to",
                        "state",
                        "start_time",
                    )
                }
                payload["direction"] = "outgoing"
                if stored["state"] == "hangup":
                    payload.update(
                        hangup_cause="normal_clearing",
                        hangup_source="callee",
                        sip_hangup_cause="200",
                        end_time=stored["end_time"],
                    )
                return payload

            def initiated() -> None:
                stored["state"] = "bridging"

            def hangup() -> None:
                stored.update(state="hangup", is_alive=False, end_time=_iso(_now()))

            steps = [("call.initiated", initiated), ("call.hangup", hangup)]
            self._spawn(self._telnyx_callbacks(url, steps, call_payload))
        return web.json_response({"data": call})

    # --- Meta (WhatsApp Cloud API) -----------------------------------------------------------------------------------

    async def _serve_meta(self, request: web.Request) -> web.StreamResponse:
        return await self._serve(request, "meta", _meta_route, self._meta)

    def _meta_fail(
        self,
        code: int,
        *,
        message: str | None = None,
        subcode: int | None = None,
        kind: str = "OAuthException",
        status: int | None = None,
    ) -> web.Response:
        default_status, default_message, details = META_ERRORS.get(code, (400, f"(#{code}) Error", ""))
        body = _meta_error(code, message or default_message, details if message is None else message, kind)
        if subcode is not None:
            body["error"]["error_subcode"] = subcode
        if code == 190:
            body["error"].pop("error_data", None)
        headers = {"WWW-Authenticate": 'OAuth "Facebook Platform" "invalid_token" "Invalid OAuth access token."'}
        return web.json_response(body, status=status or default_status, headers=headers if code == 190 else None)

    async def _meta(self, ctx: _Ctx) -> web.Response:
        rec = ctx.rec
        if ctx.request.headers.get("Authorization", "") != f"Bearer {self.whatsapp_access_token}":
            return self._meta_fail(190)
        if rec.route == UNKNOWN_ROUTE:
            return self._meta_fail(2500, message=f"Unknown path components: {ctx.args['tail']}", status=400)
        if ctx.args["phone_number_id"] != self.whatsapp_phone_number_id:
            return self._meta_fail(
                100,
                subcode=33,
                kind="GraphMethodException",
                message=f"Unsupported post request. Object with ID '{ctx.args['phone_number_id']}' does not exist, "
                "cannot be loaded due to missing permissions, or does not support this operation. Please read the "
                "Graph API documentation at https://developers.facebook.com/docs/graph-api",
            )
        if ctx.bad_json or not isinstance(rec.json, dict):
            return self._meta_fail(100, message="(#100) Invalid parameter")
        body = rec.json
        if body.get("messaging_product") != "whatsapp":
            if "messaging_product" not in body:
                return self._meta_fail(100, message="(#100) The parameter messaging_product is required.")
            return self._meta_fail(
                100,
                message="(#100) Param messaging_product must be one of {WHATSAPP} - got "
                f'"{body.get("messaging_product")}".',
            )
        to = body.get("to")
        if not to or not isinstance(to, str):
            return self._meta_fail(100, message="(#100) The parameter to is required.")
        kind = body.get("type", "text")
        if kind == "text":
            text = body.get("text")
            if not isinstance(text, dict) or not text.get("body"):
                return self._meta_fail(100, message="(#100) Param text['body'] is required.")
        elif kind == "template":
            template = body.get("template")
            if not isinstance(template, dict) or not template.get("name"):
                return self._meta_fail(100, message="(#100) Param template['name'] is required.")
            language = template.get("language")
            if not isinstance(language, dict) or not language.get("code"):
                return self._meta_fail(100, message="(#100) Param template['language']['code'] is required.")
        wa_id = re.sub(r"\D", "", to)
        entry: dict[str, Any] = {"id": "wamid." + base64.b64encode(secrets.token_bytes(30)).decode()}
        if kind == "template":
            entry["message_status"] = "accepted"
        self.whatsapp_messages.append({"id": entry["id"], "to": to, "wa_id": wa_id, "request": body})
        return web.json_response(
            {"messaging_product": "whatsapp", "contacts": [{"input": to, "wa_id": wa_id}], "messages": [entry]}
        )

    # --- ElasticEmail ------------------------------------------------------------------------------------------------

    async def _serve_elastic(self, request: web.Request) -> web.StreamResponse:
        return await self._serve(request, "elastic", _elastic_route, self._elastic)

    async def _elastic(self, ctx: _Ctx) -> web.Response:
        rec = ctx.rec
        if ctx.request.headers.get("X-ElasticEmail-ApiKey", "") != self.elastic_api_key:
            return web.json_response({"Error": "Access Denied."}, status=401)
        if rec.route == UNKNOWN_ROUTE:
            return web.json_response({"Error": "Not Found"}, status=404)
        if ctx.bad_json or not isinstance(rec.json, dict):
            return web.json_response({"Error": "Request body is not valid JSON."}, status=400)
        body = rec.json
        recipients = body.get("Recipients")
        to = recipients.get("To") if isinstance(recipients, dict) else None
        if not isinstance(to, list) or not to or not all(isinstance(x, str) and "@" in x for x in to):
            return web.json_response(
                {"Error": "Recipients.To: at least one valid email address is required."}, status=400
            )
        content = body.get("Content")
        if not isinstance(content, dict) or not content.get("From"):
            return web.json_response({"Error": "Content.From: a sender email address is required."}, status=400)
        parts = content.get("Body")
        if not content.get("TemplateName") and (not isinstance(parts, list) or not parts):
            return web.json_response({"Error": "Content.Body or Content.TemplateName is required."}, status=400)
        result = {"TransactionID": str(uuid.uuid4()), "MessageID": secrets.token_urlsafe(16)}
        self.emails.append({**result, "request": body})
        return web.json_response(result)


# --- routing -------------------------------------------------------------------------------------------------------

_TW_BASE = r"^/2010-04-01/Accounts/(?P<account>[^/]+)"
_TWILIO_ROUTES: Final = (
    (re.compile(_TW_BASE + r"/Messages\.json$"), {"POST": "messages.create", "GET": "messages.list"}),
    (re.compile(_TW_BASE + r"/Messages/(?P<sid>[^/]+)\.json$"), {"GET": "messages.fetch"}),
    (re.compile(_TW_BASE + r"/Calls\.json$"), {"POST": "calls.create", "GET": "calls.list"}),
    (re.compile(_TW_BASE + r"/Calls/(?P<sid>[^/]+)\.json$"), {"GET": "calls.fetch", "POST": "calls.update"}),
)


def _twilio_route(method: str, path: str) -> tuple[str, dict[str, str]]:
    for pattern, methods in _TWILIO_ROUTES:
        if (match := pattern.match(path)) and method in methods:
            return methods[method], match.groupdict()
    return UNKNOWN_ROUTE, {"tail": path}


def _telnyx_route(method: str, path: str) -> tuple[str, dict[str, str]]:
    path = path.rstrip("/")
    if path == "/messages" and method == "POST":
        return "messages.create", {}
    if (match := re.fullmatch(r"/messages/(?P<id>[^/]+)", path)) and method == "GET":
        return "messages.fetch", match.groupdict()
    if path == "/calls" and method == "POST":
        return "calls.create", {}
    if (match := re.fullmatch(r"/calls/(?P<id>[^/]+)/actions/(?P<action>[a-z_]+)", path)) and method == "POST":
        return "calls.action", match.groupdict()
    return UNKNOWN_ROUTE, {"tail": path}


def _meta_route(method: str, path: str) -> tuple[str, dict[str, str]]:
    if (match := re.fullmatch(r"/(?P<phone_number_id>[^/]+)/messages/?", path)) and method == "POST":
        return "messages.create", match.groupdict()
    return UNKNOWN_ROUTE, {"tail": path}


def _elastic_route(method: str, path: str) -> tuple[str, dict[str, str]]:
    if path.rstrip("/") == "/emails/transactional" and method == "POST":
        return "email.send", {}
    return UNKNOWN_ROUTE, {"tail": path}


# --- error bodies and helpers ----------------------------------------------------------------------------------------


def _basic_credentials(header: str) -> tuple[str | None, str | None]:
    """(login, password) from an HTTP Basic Authorization header, (None, None) when absent or malformed."""
    scheme, _, encoded = header.strip().partition(" ")
    if scheme.lower() != "basic":
        return None, None
    try:
        decoded = base64.b64decode(encoded.strip(), validate=True).decode("latin-1")
    except ValueError:
        return None, None
    login, sep, password = decoded.partition(":")
    return (login, password) if sep else (None, None)


def _phrase(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Error"


def _fill(template: str, rec: Recorded) -> str:
    """Fill {to}/{from}/{path} from the request, the way the providers echo them in messages."""
    values = {"path": rec.path.removeprefix("/twilio"), "to": "", "from": ""}
    if rec.form:
        values["to"] = rec.form.get("To", "")
        values["from"] = rec.form.get("From", "")
    elif isinstance(rec.json, dict):
        values["to"] = str(rec.json.get("to", ""))
        values["from"] = str(rec.json.get("from", ""))
    return re.sub(r"\{(to|from|path)\}", lambda m: values[m.group(1)], template)


def _twilio_error(code: int, message: str, status: int) -> dict[str, Any]:
    return {
        "code": code,
        "message": message,
        "more_info": f"https://www.twilio.com/docs/errors/{code}",
        "status": status,
    }


def _telnyx_error(code: str, title: str, detail: str, pointer: str | None) -> dict[str, Any]:
    error: dict[str, Any] = {"code": code, "title": title, "detail": detail}
    if pointer is not None:
        error["source"] = {"pointer": pointer}
    error["meta"] = {"url": f"https://developers.telnyx.com/docs/overview/errors/{code}"}
    return {"errors": [error]}


def _meta_error(code: int, message: str, details: str, kind: str = "OAuthException") -> dict[str, Any]:
    return {
        "error": {
            "message": message,
            "type": kind,
            "code": code,
            "error_data": {"messaging_product": "whatsapp", "details": details},
            "fbtrace_id": _fbtrace(),
        }
    }


def _parse_when(value: str) -> tuple[datetime, bool]:
    """A Twilio date filter: YYYY-MM-DD (a whole day) or an ISO 8601 date-time (UTC when no offset)."""
    value = value.strip()
    if re.fullmatch(r"\d{4}-\d{2}-\d{2}", value):
        return datetime.combine(date.fromisoformat(value), datetime.min.time(), UTC), True
    moment = datetime.fromisoformat(value)
    return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)), False


def _field_equals(key: str, value: str) -> Callable[[dict[str, Any]], bool]:
    return lambda item: item.get(key) == value


def _date_filter(messages: bool, suffix: str, bound: datetime, day_only: bool) -> Callable[[dict[str, Any]], bool]:
    """DateSent / StartTime filters as Twilio documents them: exact (that day), `>` on or after, `<` on or before.

    Calls that have not started yet are filtered on date_created.
    """

    def check(item: dict[str, Any]) -> bool:
        raw = item.get("date_sent") if messages else (item.get("start_time") or item.get("date_created"))
        if not raw:
            return False
        moment = parsedate_to_datetime(raw).astimezone(UTC)
        if suffix == ">":
            return moment.date() >= bound.date() if day_only else moment >= bound
        if suffix == "<":
            return moment.date() <= bound.date() if day_only else moment <= bound
        return moment.date() == bound.date()

    return check
