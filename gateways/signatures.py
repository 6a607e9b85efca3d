"""Webhook signatures: Twilio (X-Twilio-Signature, HMAC-SHA1), Telnyx (Ed25519), Meta (X-Hub-Signature-256)."""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import time
from collections.abc import Iterable, Mapping
from typing import Final
from urllib.parse import urlsplit, urlunsplit

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from events.errors import ConfigError, GatewayError

TELNYX_TOLERANCE_S: Final = 300.0  # a signed webhook older (or newer) than this is refused as stale


class SignatureRejected(GatewayError):
    """A webhook whose signature is missing, wrong or stale."""


def twilio_signature(auth_token: str, url: str, params: Iterable[tuple[str, str]]) -> str:
    """Base64 HMAC-SHA1 over the URL followed by every POST parameter's name and value, sorted by name."""
    data = url + "".join(f"{k}{v}" for k, v in sorted(params, key=lambda kv: (kv[0], kv[1])))
    return base64.b64encode(hmac.new(auth_token.encode(), data.encode(), hashlib.sha1).digest()).decode()


def _url_variants(url: str) -> list[str]:
    """The URL as given, and with its default port added or removed (Twilio signs what it called)."""
    parts = urlsplit(url)
    variants = [url]
    default = {"https": 443, "http": 80}.get(parts.scheme)
    host = parts.hostname or ""
    if parts.port is None and default:
        variants.append(urlunsplit(parts._replace(netloc=f"{parts.netloc}:{default}")))
    elif parts.port == default:
        variants.append(urlunsplit(parts._replace(netloc=host)))
    return variants


def verify_twilio(auth_token: str | None, url: str, params: Iterable[tuple[str, str]], signature: str | None) -> None:
    if not auth_token:
        raise SignatureRejected("TWILIO_AUTH_TOKEN is not set, so no Twilio webhook can be verified")
    if not signature:
        raise SignatureRejected("X-Twilio-Signature header is missing")
    items = list(params)
    for candidate in _url_variants(url):
        if hmac.compare_digest(twilio_signature(auth_token, candidate, items), signature):
            return
    raise SignatureRejected(f"X-Twilio-Signature does not match the request to {url}")


def telnyx_public_key(env: Mapping[str, str]) -> Ed25519PublicKey | None:
    """TELNYX_PUBLIC_KEY (base64 of the raw 32-byte key, as the Telnyx portal shows it); None when unset."""
    raw = (env.get("TELNYX_PUBLIC_KEY") or "").strip()
    if not raw:
        return None
    try:
        key = base64.b64decode(raw, validate=True)
        return Ed25519PublicKey.from_public_bytes(key)
    except (binascii.Error, ValueError):
        raise ConfigError("TELNYX_PUBLIC_KEY must be the base64 of a 32-byte Ed25519 public key") from None


def verify_telnyx(
    key: Ed25519PublicKey | None,
    body: bytes,
    signature: str | None,
    timestamp: str | None,
    *,
    now: float | None = None,
    tolerance_s: float = TELNYX_TOLERANCE_S,
) -> None:
    if key is None:
        raise SignatureRejected("TELNYX_PUBLIC_KEY is not set, so no Telnyx webhook can be verified")
    if not signature or not timestamp:
        raise SignatureRejected("telnyx-signature-ed25519 and telnyx-timestamp headers are required")
    try:
        sent_at = float(timestamp)
    except ValueError:
        raise SignatureRejected(f"telnyx-timestamp {timestamp[:20]!r} is not a unix time") from None
    age = (time.time() if now is None else now) - sent_at
    if abs(age) > tolerance_s:
        raise SignatureRejected(f"stale webhook: signed {age:.0f} s ago (at most {tolerance_s:.0f} s allowed)")
    try:
        key.verify(base64.b64decode(signature, validate=True), timestamp.encode() + b"|" + body)
    except (binascii.Error, ValueError, InvalidSignature):
        raise SignatureRejected("telnyx-signature-ed25519 does not match the body and timestamp") from None


def verify_meta(app_secret: str | None, body: bytes, signature: str | None) -> None:
    """Meta's `X-Hub-Signature-256: sha256=<hex HMAC-SHA256 of the raw body, keyed by the app secret>`."""
    if not app_secret:
        raise SignatureRejected("WHATSAPP_APP_SECRET is not set, so no Meta webhook can be verified")
    if not signature:
        raise SignatureRejected("X-Hub-Signature-256 header is missing")
    scheme, _, digest = signature.strip().partition("=")
    if scheme != "sha256" or not digest:
        raise SignatureRejected("X-Hub-Signature-256 must read sha256=<hex digest>")
    expected = hmac.new(app_secret.encode(), body, hashlib.sha256).hexdigest()
    if not hmac.compare_digest(expected, digest.lower()):
        raise SignatureRejected("X-Hub-Signature-256 does not match the body")
