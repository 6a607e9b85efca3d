"""ElasticEmail v4 transactional email (`POST /emails/transactional`), fail-closed as the spec says."""

from __future__ import annotations

import html
from collections.abc import Mapping
from typing import Final

from gateways.elastic import MISSING_ELASTIC_ENV, elastic_env
from gateways.providers.base import (
    Answer,
    OutboundMessage,
    Provider,
    ProviderFailure,
    ProviderHttp,
    WireRequest,
    http_outcome,
    json_request,
    retry_after,
)

DEFAULT_BASE_URL: Final = "https://api.elasticemail.com/v4"


class ElasticEmail(Provider):
    """No sandbox: without a key and a from-address every send fails with `missing_elastic_env`."""

    name = "elastic"
    channel = "email"

    def __init__(self, http: ProviderHttp, env: Mapping[str, str]) -> None:
        super().__init__(http, sandbox=False)
        config = elastic_env(env)
        self.api_key = config.api_key
        self.from_address = config.from_address
        self.ready = config.email_ready
        self.base_url = (env.get("ELASTIC_EMAIL_API_BASE_URL") or "").strip().rstrip("/") or DEFAULT_BASE_URL

    def auth(self) -> dict[str, str]:
        return {"X-ElasticEmail-ApiKey": self.api_key or ""}

    def build(self, message: OutboundMessage) -> WireRequest:
        if not self.ready:
            raise ProviderFailure(self.name, MISSING_ELASTIC_ENV, outcome="rejected", code="missing_elastic_env")
        paragraphs = "".join(f"<p>{html.escape(p)}</p>" for p in message.body.split("\n\n") if p.strip())
        payload = {
            "Recipients": {"To": [message.to]},
            "Content": {
                "Body": [
                    {"ContentType": "HTML", "Content": f"<html><body>{paragraphs}</body></html>", "Charset": "utf-8"},
                    {"ContentType": "PlainText", "Content": message.body, "Charset": "utf-8"},
                ],
                "From": message.sender or self.from_address,
                "Subject": message.subject or "",
                "Headers": {"X-Touchline-Touch": str(message.touch_run_id)},
                "Postback": str(message.touch_run_id),
            },
            "Options": {"TrackOpens": True, "TrackClicks": True},
        }
        return json_request("POST", f"{self.base_url}/emails/transactional", payload)

    def message_id(self, answer: Answer) -> str | None:
        data = answer.json()
        value = (data.get("MessageID") or data.get("TransactionID")) if isinstance(data, dict) else None
        if not isinstance(value, str):
            raise ProviderFailure(self.name, "accepted, but the answer names no MessageID", outcome="unknown")
        return value

    def failure(self, answer: Answer) -> ProviderFailure:
        data = answer.json()
        text = data.get("Error") if isinstance(data, dict) else None
        message = str(text) if text else answer.body[:200].decode(errors="replace") or f"HTTP {answer.status}"
        return ProviderFailure(
            self.name,
            message,
            outcome=http_outcome(answer.status),
            status=answer.status,
            retry_after_s=retry_after(answer.headers),
        )
