"""Per-call tokens for the carrier WebSocket: signed by Touchline, put in the stream URL it gives the carrier."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from typing import Final

from events.errors import GatewayError

DEFAULT_TTL_S: Final = 6 * 3600  # a call placed now may be answered and streamed for hours


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def sign_call_token(secret: str, call_ref: str, *, ttl_s: float = DEFAULT_TTL_S, now: float | None = None) -> str:
    """A token naming one call (a touch run id, a call control id), valid for `ttl_s`."""
    if not secret:
        raise GatewayError("VOICE_GATEWAY_TOKEN is not set: the carrier stream URL cannot carry a signed token")
    payload = json.dumps({"ref": call_ref, "exp": int((now or time.time()) + ttl_s)}, separators=(",", ":")).encode()
    mac = hmac.new(secret.encode(), payload, hashlib.sha256).digest()
    return f"{_b64(payload)}.{_b64(mac)}"


def verify_call_token(secret: str, token: str, *, now: float | None = None) -> str:
    """The call reference a valid token names; GatewayError saying what is wrong otherwise."""
    if not secret:
        raise GatewayError("VOICE_GATEWAY_TOKEN is not set: no stream token can be verified")
    try:
        payload_part, mac_part = token.split(".", 1)
        payload, mac = _unb64(payload_part), _unb64(mac_part)
    except (ValueError, TypeError):
        raise GatewayError("stream token is malformed") from None
    expected = hmac.new(secret.encode(), payload, hashlib.sha256).digest()
    if not hmac.compare_digest(mac, expected):
        raise GatewayError("stream token signature does not match")
    try:
        claims = json.loads(payload)
        ref, exp = str(claims["ref"]), float(claims["exp"])
    except (ValueError, KeyError, TypeError):
        raise GatewayError("stream token payload is malformed") from None
    if exp < (now or time.time()):
        raise GatewayError("stream token has expired")
    return ref
