"""What every channel provider client shares: the message, the wire request, outcomes and failures.

A provider client turns an `OutboundMessage` into the exact HTTP request the provider expects
(`build`), sends it with `ProviderHttp`, and reads the answer: the provider's message (or call)
id, or a `ProviderFailure` whose `outcome` says what the dispatch engine should do. Without
credentials a client runs in sandbox mode: `send` returns the request it would have sent,
unsent, and the engine records it as an event.
"""

from __future__ import annotations

import abc
import base64
import json
from collections.abc import Mapping
from datetime import datetime
from typing import Any, Final, Literal
from urllib.parse import urlencode
from uuid import UUID

import aiohttp
import msgspec
import structlog

from events.errors import ProviderError

log = structlog.get_logger("touchline.providers")

# What a failure means for the touch:
#   retry              try again later (5xx, rate limited, a connection that never reached it)
#   suppress           the recipient opted out: the lead is suppressed
#   bad_data           the address is invalid or unreachable on this channel
#   template_required  WhatsApp outside the 24-hour window needs an approved template
#   rejected           the provider refused this request for good
#   unknown            the request may or may not have been acted on (timeout, dropped connection)
Outcome = Literal["retry", "suppress", "bad_data", "template_required", "rejected", "unknown"]
OUTCOMES: Final = frozenset({"retry", "suppress", "bad_data", "template_required", "rejected", "unknown"})

_REDACTED: Final = frozenset({"authorization", "x-elasticemail-apikey"})


class ProviderFailure(ProviderError):
    def __init__(
        self,
        provider: str,
        message: str,
        *,
        outcome: Outcome,
        code: str | None = None,
        status: int | None = None,
        retry_after_s: float | None = None,
    ) -> None:
        self.provider = provider
        self.message = message
        self.outcome: Outcome = outcome
        self.code = code
        self.status = status
        self.retry_after_s = retry_after_s
        details = [f"HTTP {status}"] if status else []
        details += [f"code {code}"] if code else []
        where = f" ({', '.join(details)})" if details else ""
        super().__init__(f"{provider}: {message}{where}")


class OutboundMessage(msgspec.Struct, frozen=True, kw_only=True):
    """One touch, ready for a provider: who, on what channel, saying what."""

    touch_run_id: UUID
    account_id: UUID
    lead_id: UUID
    channel: str
    to: str  # E.164 for phones, an address for email
    body: str
    subject: str | None = None  # email
    template: str | None = None  # WhatsApp: Twilio ContentSid (HX...) or Meta template name
    template_language: str = "es"
    template_variables: dict[str, str] = {}
    in_session: bool = False  # WhatsApp: the lead wrote within the last 24 hours
    attempt: int = 1
    # The account's own sender on this channel (its number, Meta phone number id or address);
    # None: the deployment's, from the provider's environment.
    sender: str | None = None


class WireRequest(msgspec.Struct, frozen=True, kw_only=True):
    """An HTTP request as it goes on the wire, minus its credentials (added when it is sent)."""

    method: str
    url: str
    headers: dict[str, str] = {}
    form: dict[str, str] | None = None
    json_body: str | None = None

    def body(self) -> bytes | None:
        if self.form is not None:
            return urlencode(self.form).encode()
        return self.json_body.encode() if self.json_body is not None else None

    def content_type(self) -> str | None:
        if self.form is not None:
            return "application/x-www-form-urlencoded"
        return "application/json" if self.json_body is not None else None


def json_request(method: str, url: str, payload: Any, headers: Mapping[str, str] | None = None) -> WireRequest:
    return WireRequest(
        method=method, url=url, headers=dict(headers or {}), json_body=json.dumps(payload, separators=(",", ":"))
    )


class Sent(msgspec.Struct, frozen=True, kw_only=True):
    provider: str
    message_id: str | None
    sandbox: bool = False
    request: WireRequest | None = None  # sandbox: what would have been sent


class Answer(msgspec.Struct, frozen=True):
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        try:
            return json.loads(self.body) if self.body else None
        except ValueError:
            return None


class ProviderHttp:
    """One aiohttp session for every provider, with the timeout and failure mapping they share.

    A connection that could not be made means nothing was sent (retry). A timeout or a
    connection dropped after the request went out means nobody knows (unknown): the engine then
    asks the provider, where it can, before it sends again.
    """

    def __init__(self, *, timeout_s: float = 15.0, connect_timeout_s: float = 5.0) -> None:
        self.timeout = aiohttp.ClientTimeout(total=timeout_s, sock_connect=connect_timeout_s)
        self._session: aiohttp.ClientSession | None = None

    @property
    def session(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            connector = aiohttp.TCPConnector(limit=200, limit_per_host=100)
            self._session = aiohttp.ClientSession(timeout=self.timeout, connector=connector)
        return self._session

    async def close(self) -> None:
        if self._session is not None and not self._session.closed:
            await self._session.close()

    async def execute(self, provider: str, request: WireRequest, auth: Mapping[str, str]) -> Answer:
        headers = {**request.headers, **auth}
        if (kind := request.content_type()) is not None:
            headers["Content-Type"] = kind
        try:
            async with self.session.request(request.method, request.url, data=request.body(), headers=headers) as resp:
                body = await resp.read()
                return Answer(resp.status, dict(resp.headers), body)
        except aiohttp.ClientConnectorError as exc:
            raise ProviderFailure(provider, f"could not connect to {request.url}: {exc}", outcome="retry") from exc
        except TimeoutError as exc:
            message = f"no answer within {self.timeout.total:g} s from {request.url}"
            raise ProviderFailure(provider, message, outcome="unknown") from exc
        except (aiohttp.ServerDisconnectedError, aiohttp.ClientOSError, aiohttp.ClientPayloadError) as exc:
            message = f"connection dropped before the answer from {request.url}: {type(exc).__name__}"
            raise ProviderFailure(provider, message, outcome="unknown") from exc
        except aiohttp.ClientError as exc:
            raise ProviderFailure(provider, f"{type(exc).__name__}: {exc}", outcome="unknown") from exc


def retry_after(headers: Mapping[str, str]) -> float | None:
    """Seconds from a Retry-After header (delta seconds; an HTTP date is read as 'soon')."""
    value = next((v for k, v in headers.items() if k.lower() == "retry-after"), None)
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        return 1.0


def http_outcome(status: int) -> Outcome:
    """The outcome an HTTP status means when the provider's own code says nothing more."""
    if status == 429 or status >= 500 or status in (401, 403, 408):
        # Credentials can be fixed and the touch then goes; after the last attempt it is dead-lettered.
        return "retry"
    return "rejected"


def basic_auth(user: str, password: str) -> dict[str, str]:
    token = base64.b64encode(f"{user}:{password}".encode()).decode()
    return {"Authorization": f"Basic {token}"}


def redacted(headers: Mapping[str, str]) -> dict[str, str]:
    return {k: ("<redacted>" if k.lower() in _REDACTED else v) for k, v in headers.items()}


class Provider(abc.ABC):
    """A provider client for one channel. Subclasses build the request and read the answer."""

    name: str
    channel: str
    # Whether `lookup` can tell if a message was created (so an unknown outcome can be resolved).
    can_lookup: bool = False

    def __init__(self, http: ProviderHttp, *, sandbox: bool) -> None:
        self.http = http
        self.sandbox = sandbox

    @abc.abstractmethod
    def build(self, message: OutboundMessage) -> WireRequest: ...

    @abc.abstractmethod
    def auth(self) -> dict[str, str]: ...

    @abc.abstractmethod
    def message_id(self, answer: Answer) -> str | None: ...

    @abc.abstractmethod
    def failure(self, answer: Answer) -> ProviderFailure: ...

    async def send(self, message: OutboundMessage) -> Sent:
        request = self.build(message)
        if self.sandbox:
            return Sent(provider=self.name, message_id=None, sandbox=True, request=request)
        answer = await self.http.execute(self.name, request, self.auth())
        if 200 <= answer.status < 300:
            return Sent(provider=self.name, message_id=self.message_id(answer))
        failure = self.failure(answer)
        log.warning(
            "provider_refused",
            provider=self.name,
            channel=self.channel,
            touch_run_id=str(message.touch_run_id),
            status=answer.status,
            code=failure.code,
            outcome=failure.outcome,
        )
        raise failure

    async def lookup(self, message: OutboundMessage, since: datetime) -> str | None:
        """The provider's id of `message` if it was created at or after `since`, else None."""
        raise NotImplementedError(f"{self.name} cannot be asked whether a message was sent")
