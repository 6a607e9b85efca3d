"""Telnyx (API v2): SMS through `POST /messages` and calls through Call Control `POST /calls`.

JSON with a bearer key. Errors come back as `{"errors": [{"code", "title", "detail"}]}`; the code
decides the outcome. Telnyx cannot be asked whether a message was created from the request
alone, so an unknown outcome is never re-sent blindly: it is dead-lettered for an operator.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Mapping
from typing import Final

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
    http_outcome,
    json_request,
    retry_after,
)

DEFAULT_BASE_URL: Final = "https://api.telnyx.com/v2"

OUTCOMES: Final[dict[str, Outcome]] = {
    "40300": "suppress",  # blocked: the recipient replied STOP
    "40001": "bad_data",  # not routable / invalid destination
    "10011": "retry",  # too many requests
    "10009": "retry",  # authentication failed: fixed credentials let the touch go
}


def telnyx_key(env: Mapping[str, str]) -> str | None:
    """`TELNYX_API_KEY`, or the spec's `Telnyx_Api`, trimmed."""
    return (env.get("TELNYX_API_KEY") or "").strip() or (env.get("Telnyx_Api") or "").strip() or None


class TelnyxConfig(msgspec.Struct, frozen=True, kw_only=True):
    api_key: str
    base_url: str = DEFAULT_BASE_URL
    from_number: str | None = None
    messaging_profile_id: str | None = None
    connection_id: str | None = None

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> TelnyxConfig | None:
        key = telnyx_key(env)
        if key is None:
            return None
        base = (env.get("TELNYX_API_BASE_URL") or "").strip().rstrip("/") or DEFAULT_BASE_URL
        if not base.startswith(("http://", "https://")):
            raise ConfigError(f"TELNYX_API_BASE_URL must be an http(s) URL, got {base!r}")
        return cls(
            api_key=key,
            base_url=base,
            from_number=(env.get("TELNYX_FROM_NUMBER") or "").strip() or None,
            messaging_profile_id=(env.get("TELNYX_MESSAGING_PROFILE_ID") or "").strip() or None,
            connection_id=(env.get("TELNYX_CONNECTION_ID") or "").strip()
            or (env.get("TELNYX_APP_ID") or "").strip()
            or None,
        )


SANDBOX_CONFIG: Final = TelnyxConfig(api_key="", from_number="+15005550007", connection_id="sandbox")


class _Telnyx(Provider):
    name = "telnyx"

    def __init__(self, http: ProviderHttp, config: TelnyxConfig | None, *, webhook_url: str | None = None) -> None:
        super().__init__(http, sandbox=config is None)
        self.config = config or SANDBOX_CONFIG
        self.webhook_url = webhook_url

    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.config.api_key}"}

    def failure(self, answer: Answer) -> ProviderFailure:
        data = answer.json()
        errors = data.get("errors") if isinstance(data, dict) else None
        first = errors[0] if isinstance(errors, list) and errors and isinstance(errors[0], dict) else {}
        code = str(first["code"]) if first.get("code") is not None else None
        text = " — ".join(str(first[k]) for k in ("title", "detail") if first.get(k))
        message = text or answer.body[:200].decode(errors="replace") or f"HTTP {answer.status}"
        outcome = OUTCOMES.get(code or "") or http_outcome(answer.status)
        wait = retry_after(answer.headers)
        return ProviderFailure(self.name, message, outcome=outcome, code=code, status=answer.status, retry_after_s=wait)

    def _data_field(self, answer: Answer, field: str) -> str:
        data = answer.json()
        inner = data.get("data") if isinstance(data, dict) else None
        value = inner.get(field) if isinstance(inner, dict) else None
        if not isinstance(value, str):
            raise ProviderFailure(self.name, f"accepted, but the answer names no {field}", outcome="unknown")
        return value


class TelnyxSms(_Telnyx):
    channel = "sms"

    def build(self, message: OutboundMessage) -> WireRequest:
        payload: dict[str, object] = {"to": message.to, "text": message.body, "type": "SMS"}
        if sender := message.sender or self.config.from_number:  # the account's number, else the deployment's
            payload["from"] = sender
        if self.config.messaging_profile_id:
            payload["messaging_profile_id"] = self.config.messaging_profile_id
        if "from" not in payload and "messaging_profile_id" not in payload:
            message_ = "set TELNYX_FROM_NUMBER or TELNYX_MESSAGING_PROFILE_ID to send SMS"
            raise ProviderFailure(self.name, message_, outcome="rejected")
        if self.webhook_url:
            payload["webhook_url"] = self.webhook_url
        return json_request("POST", f"{self.config.base_url}/messages", payload)

    def message_id(self, answer: Answer) -> str | None:
        return self._data_field(answer, "id")


class TelnyxVoice(_Telnyx):
    """Dials the lead; the voice gateway takes the call from its webhooks (answered → streaming)."""

    channel = "voice"

    def build(self, message: OutboundMessage) -> WireRequest:
        if not self.config.connection_id:
            raise ProviderFailure(
                self.name, "set TELNYX_CONNECTION_ID (or TELNYX_APP_ID) to place calls", outcome="rejected"
            )
        caller = message.sender or self.config.from_number
        if not caller:
            raise ProviderFailure(self.name, "set TELNYX_FROM_NUMBER to place calls", outcome="rejected")
        state = {
            "touch_run_id": str(message.touch_run_id),
            "lead_id": str(message.lead_id),
            "account_id": str(message.account_id),
        }
        payload: dict[str, object] = {
            "connection_id": self.config.connection_id,
            "to": message.to,
            "from": caller,
            "client_state": base64.b64encode(json.dumps(state).encode()).decode(),
        }
        if self.webhook_url:
            payload["webhook_url"] = self.webhook_url
        return json_request("POST", f"{self.config.base_url}/calls", payload)

    def message_id(self, answer: Answer) -> str | None:
        return self._data_field(answer, "call_control_id")
