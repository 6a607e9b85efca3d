"""The Meta WhatsApp Cloud API: `POST /{phone-number-id}/messages`, text in the window, templates outside it."""

from __future__ import annotations

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

DEFAULT_BASE_URL: Final = "https://graph.facebook.com/v21.0"

# https://developers.facebook.com/docs/whatsapp/cloud-api/support/error-codes
OUTCOMES: Final[dict[int, Outcome]] = {
    131047: "template_required",  # re-engagement: more than 24 hours since the customer last wrote
    131026: "bad_data",  # message undeliverable (not a WhatsApp user, old app...)
    133010: "bad_data",  # phone number not registered
    131050: "suppress",  # the user stopped marketing messages
    130429: "retry",  # rate limit hit
    131048: "retry",  # spam rate limit hit
    131056: "retry",  # pair rate limit hit
    131000: "retry",  # something went wrong
    190: "retry",  # access token expired or invalid: a fixed token lets the touch go
}


class MetaConfig(msgspec.Struct, frozen=True, kw_only=True):
    access_token: str
    phone_number_id: str
    base_url: str = DEFAULT_BASE_URL
    template_name: str | None = None
    template_language: str = "es"

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> MetaConfig | None:
        token = (env.get("WHATSAPP_ACCESS_TOKEN") or "").strip() or (env.get("WHATSAPP_TOKEN") or "").strip()
        phone_id = (env.get("WHATSAPP_PHONE_NUMBER_ID") or "").strip()
        if not token and not phone_id:
            return None
        if not token or not phone_id:
            missing = "WHATSAPP_ACCESS_TOKEN" if not token else "WHATSAPP_PHONE_NUMBER_ID"
            raise ConfigError(f"{missing} is not set: the WhatsApp Cloud API needs a token and a phone number id")
        base = (env.get("WHATSAPP_API_BASE_URL") or "").strip().rstrip("/") or DEFAULT_BASE_URL
        return cls(
            access_token=token,
            phone_number_id=phone_id,
            base_url=base,
            template_name=(env.get("WHATSAPP_TEMPLATE_NAME") or "").strip() or None,
            template_language=(env.get("WHATSAPP_TEMPLATE_LANG") or "").strip() or "es",
        )


SANDBOX_CONFIG: Final = MetaConfig(access_token="", phone_number_id="SANDBOX")


class MetaWhatsApp(Provider):
    name = "meta"
    channel = "whatsapp"

    def __init__(self, http: ProviderHttp, config: MetaConfig | None) -> None:
        super().__init__(http, sandbox=config is None)
        self.config = config or SANDBOX_CONFIG

    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.config.access_token}"}

    def build(self, message: OutboundMessage) -> WireRequest:
        if message.sender is not None and not message.sender.isdigit():
            raise ProviderFailure(
                self.name,
                f"the account's WhatsApp sender {message.sender!r} is not a Meta phone number id (digits): "
                "the Cloud API sends from an id, not from a number",
                outcome="rejected",
            )
        payload: dict[str, object] = {
            "messaging_product": "whatsapp",
            "recipient_type": "individual",
            "to": message.to.removeprefix("whatsapp:").lstrip("+"),
            "biz_opaque_callback_data": str(message.touch_run_id),
        }
        template = message.template if message.template and not message.template.startswith("HX") else None
        template = template or self.config.template_name
        if message.in_session:
            payload |= {"type": "text", "text": {"preview_url": False, "body": message.body}}
        elif template:
            body: dict[str, object] = {"name": template, "language": {"code": message.template_language}}
            if message.template_variables:
                parameters = [{"type": "text", "text": v} for _, v in sorted(message.template_variables.items())]
                body["components"] = [{"type": "body", "parameters": parameters}]
            payload |= {"type": "template", "template": body}
        else:
            raise ProviderFailure(
                self.name,
                "template_required: the lead has not written in the last 24 hours; set the step's template to an "
                "approved template name or WHATSAPP_TEMPLATE_NAME",
                outcome="template_required",
                code="131047",
            )
        phone_number_id = message.sender or self.config.phone_number_id  # the account's own number, if it has one
        return json_request("POST", f"{self.config.base_url}/{phone_number_id}/messages", payload)

    def message_id(self, answer: Answer) -> str | None:
        data = answer.json()
        messages = data.get("messages") if isinstance(data, dict) else None
        first = messages[0] if isinstance(messages, list) and messages and isinstance(messages[0], dict) else {}
        if not isinstance(first.get("id"), str):
            raise ProviderFailure(self.name, "accepted, but the answer names no message id", outcome="unknown")
        return str(first["id"])

    def failure(self, answer: Answer) -> ProviderFailure:
        data = answer.json()
        error = data.get("error") if isinstance(data, dict) else None
        error = error if isinstance(error, dict) else {}
        code = error.get("code") if isinstance(error.get("code"), int) else None
        details = error.get("error_data", {}).get("details") if isinstance(error.get("error_data"), dict) else None
        message = " — ".join(str(x) for x in (error.get("message"), details) if x) or f"HTTP {answer.status}"
        outcome = OUTCOMES.get(code) if code is not None else None
        return ProviderFailure(
            self.name,
            message,
            outcome=outcome or http_outcome(answer.status),
            code=str(code) if code is not None else None,
            status=answer.status,
            retry_after_s=retry_after(answer.headers),
        )
