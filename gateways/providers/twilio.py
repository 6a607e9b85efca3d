"""Twilio (REST API 2010-04-01): SMS, WhatsApp (`whatsapp:` addressing, ContentSid templates) and calls.

Requests are form-encoded with HTTP Basic auth (AccountSid:AuthToken). Errors come back as
`{"code", "message", "more_info", "status"}`; the code decides the outcome. Twilio cannot take
an idempotency key on Messages or Calls, but it can be asked: an unknown outcome is resolved by
listing what was sent to the number since the claim.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from typing import Final
from urllib.parse import urlencode
from xml.sax.saxutils import quoteattr

import msgspec

from events.errors import ConfigError
from gateways.providers.base import (
    Answer,
    OutboundMessage,
    Outcome,
    Provider,
    ProviderFailure,
    ProviderHttp,
    WireRequest,
    basic_auth,
    http_outcome,
    retry_after,
)

DEFAULT_BASE_URL: Final = "https://api.twilio.com"
API_VERSION: Final = "2010-04-01"

# Error codes (https://www.twilio.com/docs/api/errors) and what they mean for the touch.
OUTCOMES: Final[dict[int, Outcome]] = {
    21610: "suppress",  # attempt to send to an unsubscribed recipient (the lead texted STOP)
    21211: "bad_data",  # invalid 'To' phone number
    21614: "bad_data",  # 'To' is not a valid mobile number
    21635: "bad_data",  # 'To' cannot be reached (landline / not SMS-capable)
    30005: "bad_data",  # unknown destination handset (delivery callback)
    30006: "bad_data",  # landline or unreachable carrier (delivery callback)
    63016: "template_required",  # WhatsApp: free-form message outside the 24-hour window
    20429: "retry",  # too many requests
    20003: "retry",  # authentication: fixed credentials let the touch go
}


def twilio_outcome(code: int | None, status: int) -> Outcome:
    if code is not None and code in OUTCOMES:
        return OUTCOMES[code]
    return http_outcome(status)


class TwilioConfig(msgspec.Struct, frozen=True, kw_only=True):
    account_sid: str
    auth_token: str
    base_url: str = DEFAULT_BASE_URL
    from_number: str | None = None
    messaging_service_sid: str | None = None
    whatsapp_from: str | None = None
    voice_from: str | None = None
    whatsapp_content_sid: str | None = None

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> TwilioConfig | None:
        """None when Twilio has no credentials (sandbox); ConfigError when they are half there."""
        sid = (env.get("TWILIO_ACCOUNT_SID") or "").strip()
        token = (env.get("TWILIO_AUTH_TOKEN") or "").strip()
        base = (env.get("TWILIO_API_BASE_URL") or "").strip().rstrip("/") or DEFAULT_BASE_URL
        if not sid and not token:
            return None
        if not sid or not token:
            missing = "TWILIO_ACCOUNT_SID" if not sid else "TWILIO_AUTH_TOKEN"
            raise ConfigError(f"{missing} is not set: Twilio needs both TWILIO_ACCOUNT_SID and TWILIO_AUTH_TOKEN")
        if not sid.startswith("AC"):
            raise ConfigError(f"TWILIO_ACCOUNT_SID must start with 'AC' (got {sid[:4]!r}...)")
        from_number = (env.get("TWILIO_FROM_NUMBER") or "").strip() or None
        service = (env.get("TWILIO_MESSAGING_SERVICE_SID") or "").strip() or None
        whatsapp = (env.get("TWILIO_WHATSAPP_FROM") or "").strip() or None
        if whatsapp and not whatsapp.startswith("whatsapp:"):
            whatsapp = f"whatsapp:{whatsapp}"
        return cls(
            account_sid=sid,
            auth_token=token,
            base_url=base,
            from_number=from_number,
            messaging_service_sid=service,
            whatsapp_from=whatsapp or (f"whatsapp:{from_number}" if from_number else None),
            voice_from=(env.get("TWILIO_VOICE_FROM") or "").strip() or from_number,
            whatsapp_content_sid=(env.get("TWILIO_WHATSAPP_CONTENT_SID") or "").strip() or None,
        )


SANDBOX_CONFIG: Final = TwilioConfig(
    account_sid="AC_SANDBOX",
    auth_token="",
    from_number="+15005550006",
    whatsapp_from="whatsapp:+14155238886",
    voice_from="+15005550006",
)


def _date(value: object) -> datetime | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        return parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None


class _Twilio(Provider):
    name = "twilio"
    can_lookup = True
    resource = "Messages"

    def __init__(self, http: ProviderHttp, config: TwilioConfig | None, *, status_callback: str | None = None) -> None:
        super().__init__(http, sandbox=config is None)
        self.config = config or SANDBOX_CONFIG
        self.status_callback = status_callback

    def url(self, suffix: str = ".json") -> str:
        return f"{self.config.base_url}/{API_VERSION}/Accounts/{self.config.account_sid}/{self.resource}{suffix}"

    def auth(self) -> dict[str, str]:
        return basic_auth(self.config.account_sid, self.config.auth_token)

    def callback(self, message: OutboundMessage) -> dict[str, str]:
        if not self.status_callback:
            return {}
        return {"StatusCallback": f"{self.status_callback}?touch={message.touch_run_id}"}

    def message_id(self, answer: Answer) -> str | None:
        data = answer.json()
        sid = data.get("sid") if isinstance(data, dict) else None
        if not isinstance(sid, str):
            raise ProviderFailure(self.name, "accepted, but the answer names no sid", outcome="unknown")
        return sid

    def failure(self, answer: Answer) -> ProviderFailure:
        data = answer.json()
        code = data.get("code") if isinstance(data, dict) else None
        code = code if isinstance(code, int) else None
        text = data.get("message") if isinstance(data, dict) else None
        message = str(text) if text else answer.body[:200].decode(errors="replace") or f"HTTP {answer.status}"
        return ProviderFailure(
            self.name,
            message,
            outcome=twilio_outcome(code, answer.status),
            code=str(code) if code is not None else None,
            status=answer.status,
            retry_after_s=retry_after(answer.headers),
        )

    def to(self, message: OutboundMessage) -> str:
        return message.to

    def sender(self, message: OutboundMessage) -> dict[str, str]:
        raise NotImplementedError

    async def lookup(self, message: OutboundMessage, since: datetime) -> str | None:
        """Ask Twilio for messages (calls) to this number since `since`: the one this touch made, if any."""
        day = (since - timedelta(days=1)).astimezone(UTC).date().isoformat()
        params = {"To": self.to(message), "PageSize": "50", self.date_filter: day}
        sender = self.sender(message)
        if "From" in sender:
            params["From"] = sender["From"]
        query = urlencode(params)
        answer = await self.http.execute(self.name, WireRequest(method="GET", url=f"{self.url()}?{query}"), self.auth())
        if answer.status != 200:
            raise self.failure(answer)
        data = answer.json()
        items = data.get(self.resource.lower()) if isinstance(data, dict) else None
        for item in items if isinstance(items, list) else []:
            created = _date(item.get("date_created"))
            if created is None or created < since - timedelta(seconds=60):
                continue
            if self.same(item, message) and isinstance(item.get("sid"), str):
                return str(item["sid"])
        return None

    date_filter = "DateSent>"

    def same(self, item: dict[str, object], message: OutboundMessage) -> bool:
        return True


def _number_sender(provider: str, sender: str) -> str:
    """The account's sender as Twilio needs it: an E.164 number (a Meta phone number id is not one)."""
    if not sender.startswith("+"):
        raise ProviderFailure(
            provider,
            f"the account's sender {sender!r} is not an E.164 number (a WhatsApp phone number id is Meta's): "
            "set the account's senders for this provider",
            outcome="rejected",
        )
    return sender


class TwilioSms(_Twilio):
    channel = "sms"

    def sender(self, message: OutboundMessage) -> dict[str, str]:
        if message.sender:
            return {"From": _number_sender(self.name, message.sender)}
        if self.config.messaging_service_sid:
            return {"MessagingServiceSid": self.config.messaging_service_sid}
        if self.config.from_number:
            return {"From": self.config.from_number}
        raise ProviderFailure(
            self.name, "set TWILIO_FROM_NUMBER or TWILIO_MESSAGING_SERVICE_SID to send SMS", outcome="rejected"
        )

    def build(self, message: OutboundMessage) -> WireRequest:
        form = {"To": message.to, **self.sender(message), "Body": message.body, **self.callback(message)}
        return WireRequest(method="POST", url=self.url(), form=form)

    def same(self, item: dict[str, object], message: OutboundMessage) -> bool:
        return item.get("body") in (None, message.body)


class TwilioWhatsApp(_Twilio):
    channel = "whatsapp"

    def to(self, message: OutboundMessage) -> str:
        return message.to if message.to.startswith("whatsapp:") else f"whatsapp:{message.to}"

    def sender(self, message: OutboundMessage) -> dict[str, str]:
        if message.sender:
            return {"From": "whatsapp:" + _number_sender(self.name, message.sender.removeprefix("whatsapp:"))}
        if self.config.messaging_service_sid:
            return {"MessagingServiceSid": self.config.messaging_service_sid}
        if self.config.whatsapp_from:
            return {"From": self.config.whatsapp_from}
        raise ProviderFailure(self.name, "set TWILIO_WHATSAPP_FROM to send WhatsApp messages", outcome="rejected")

    def build(self, message: OutboundMessage) -> WireRequest:
        form = {"To": self.to(message), **self.sender(message)}
        content_sid = message.template if (message.template or "").startswith("HX") else None
        content_sid = content_sid or self.config.whatsapp_content_sid
        if message.in_session:
            form["Body"] = message.body
        elif content_sid:
            # Outside the 24-hour window only an approved template may open the conversation.
            form["ContentSid"] = content_sid
            if message.template_variables:
                form["ContentVariables"] = json.dumps(message.template_variables, ensure_ascii=False)
        else:
            raise ProviderFailure(
                self.name,
                "template_required: the lead has not written in the last 24 hours; set the step's template to an "
                "approved ContentSid (HX...) or TWILIO_WHATSAPP_CONTENT_SID",
                outcome="template_required",
                code="63016",
            )
        form.update(self.callback(message))
        return WireRequest(method="POST", url=self.url(), form=form)


class TwilioVoice(_Twilio):
    """Places the call; TwiML connects its audio to the voice gateway's `/twilio` WebSocket."""

    channel = "voice"
    resource = "Calls"
    date_filter = "StartTime>"

    def __init__(
        self,
        http: ProviderHttp,
        config: TwilioConfig | None,
        *,
        status_callback: str | None = None,
        stream_url: Callable[[str], str] | None = None,
    ) -> None:
        super().__init__(http, config, status_callback=status_callback)
        self.stream_url = stream_url

    def sender(self, message: OutboundMessage) -> dict[str, str]:
        if message.sender:
            return {"From": _number_sender(self.name, message.sender)}
        if self.config.voice_from:
            return {"From": self.config.voice_from}
        missing = "set TWILIO_VOICE_FROM or TWILIO_FROM_NUMBER to place calls"
        raise ProviderFailure(self.name, missing, outcome="rejected")

    def build(self, message: OutboundMessage) -> WireRequest:
        if not self.stream_url:
            raise ProviderFailure(
                self.name,
                "set TOUCHLINE_PUBLIC_URL and VOICE_GATEWAY_TOKEN: the call's audio streams to the voice gateway",
                outcome="rejected",
            )
        url = self.stream_url(str(message.touch_run_id))
        twiml = (
            "<Response><Connect>"
            f"<Stream url={quoteattr(url)}>"
            f'<Parameter name="touch_run_id" value="{message.touch_run_id}"/>'
            f'<Parameter name="lead_id" value="{message.lead_id}"/>'
            f'<Parameter name="account_id" value="{message.account_id}"/>'
            "</Stream></Connect></Response>"
        )
        form = {"To": message.to, **self.sender(message), "Twiml": twiml, **self.callback(message)}
        return WireRequest(method="POST", url=self.url(), form=form)
