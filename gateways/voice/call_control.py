"""Telnyx Call Control actions (answer, streaming_start, speak, hangup) and Twilio's call update (<Say>)."""

from __future__ import annotations

import json
from typing import Any, Final
from xml.sax.saxutils import escape

import aiohttp
import anyio
import structlog

from gateways.providers.base import basic_auth
from gateways.providers.telnyx import TelnyxConfig
from gateways.providers.twilio import API_VERSION, TwilioConfig

log = structlog.get_logger("touchline.voice")

_TIMEOUT_S: Final = 10.0


class CallControl:
    def __init__(self, http: aiohttp.ClientSession, telnyx: TelnyxConfig | None, twilio: TwilioConfig | None) -> None:
        self.http = http
        self.telnyx = telnyx
        self.twilio = twilio

    async def _telnyx(self, call_control_id: str, action: str, payload: dict[str, Any]) -> tuple[int, str]:
        if self.telnyx is None:
            return 0, "TELNYX_API_KEY (or Telnyx_Api) is not set"
        url = f"{self.telnyx.base_url}/calls/{call_control_id}/actions/{action}"
        headers = {"Authorization": f"Bearer {self.telnyx.api_key}", "Content-Type": "application/json"}
        try:
            with anyio.fail_after(_TIMEOUT_S):
                async with self.http.post(url, data=json.dumps(payload), headers=headers) as resp:
                    return resp.status, (await resp.text())[:500]
        except TimeoutError:
            return 0, f"no answer within {_TIMEOUT_S:g} s"
        except aiohttp.ClientError as exc:
            return 0, f"{type(exc).__name__}: {exc}"

    async def answer(self, call_control_id: str) -> bool:
        status, body = await self._telnyx(call_control_id, "answer", {})
        if not 200 <= status < 300:
            log.warning("TELNYX_ANSWER_ERR", call_control_id=call_control_id, status=status, body=body)
            return False
        log.info("TELNYX_ANSWER_RES", call_control_id=call_control_id, status=status)
        return True

    async def streaming_start(self, call_control_id: str, stream_url: str) -> bool:
        """`POST /calls/{id}/actions/streaming_start`, PCMU both ways (the spec's requirement)."""
        payload = {
            "stream_url": stream_url,
            "stream_track": "inbound_track",
            "stream_codec": "PCMU",
            "stream_bidirectional_mode": "rtp",
            "stream_bidirectional_codec": "PCMU",
        }
        shown = stream_url.split("?", 1)[0]  # never the token
        log.info(
            "TELNYX_STREAMING_START_REQ",
            call_control_id=call_control_id,
            stream_url=shown,
            stream_track="inbound_track",
            stream_codec="PCMU",
        )
        status, body = await self._telnyx(call_control_id, "streaming_start", payload)
        if not 200 <= status < 300:
            log.error("TELNYX_STREAMING_START_ERR", call_control_id=call_control_id, status=status, body=body)
            return False
        log.info("TELNYX_STREAMING_START_RES", call_control_id=call_control_id, status=status)
        return True

    async def hangup(self, call_control_id: str) -> bool:
        status, _ = await self._telnyx(call_control_id, "hangup", {})
        return 200 <= status < 300

    async def speak(self, carrier: str, call_id: str, text: str) -> bool:
        """The carrier says `text` itself and hangs up: the fallback when our own audio cannot play."""
        if carrier == "telnyx":
            status, body = await self._telnyx(
                call_id, "speak", {"payload": text, "voice": "female", "language": "es-MX"}
            )
            if 200 <= status < 300:
                return True
            log.warning("TELNYX_SPEAK_ERR", call_control_id=call_id, status=status, body=body)
            return False
        if self.twilio is None:
            return False
        twiml = f'<Response><Say language="es-MX">{escape(text)}</Say><Hangup/></Response>'
        url = f"{self.twilio.base_url}/{API_VERSION}/Accounts/{self.twilio.account_sid}/Calls/{call_id}.json"
        try:
            with anyio.fail_after(_TIMEOUT_S):
                async with self.http.post(
                    url, data={"Twiml": twiml}, headers=basic_auth(self.twilio.account_sid, self.twilio.auth_token)
                ) as resp:
                    return 200 <= resp.status < 300
        except (TimeoutError, aiohttp.ClientError):
            return False
