"""The channel providers, chosen from the environment: real clients with credentials, sandbox without.

| channel  | providers                         | chosen by                                     |
| -------- | --------------------------------- | --------------------------------------------- |
| sms      | Twilio, Telnyx                    | `SMS_PROVIDER`, else whichever has credentials |
| whatsapp | Twilio (`whatsapp:`), Meta Cloud  | `WHATSAPP_PROVIDER`, else Meta when configured |
| voice    | Twilio, Telnyx Call Control       | `VOICE_CARRIER_PRIMARY` (default `twilio`)     |
| email    | ElasticEmail v4                   | always; fail-closed without its env           |

A provider without credentials runs in sandbox mode (email never does).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Final
from urllib.parse import quote, urlsplit

from events.errors import ConfigError
from events.settings import Settings
from gateways.providers.base import Provider, ProviderHttp
from gateways.providers.elastic_email import ElasticEmail
from gateways.providers.meta import MetaConfig, MetaWhatsApp
from gateways.providers.telnyx import TelnyxConfig, TelnyxSms, TelnyxVoice
from gateways.providers.twilio import TwilioConfig, TwilioSms, TwilioVoice, TwilioWhatsApp
from gateways.voice_token import sign_call_token

CHOICES: Final = {
    "SMS_PROVIDER": ("twilio", "telnyx"),
    "WHATSAPP_PROVIDER": ("twilio", "meta"),
    "VOICE_CARRIER_PRIMARY": ("twilio", "telnyx"),
}


def _choice(env: Mapping[str, str], name: str, default: str) -> str:
    value = (env.get(name) or "").strip().lower() or default
    if value not in CHOICES[name]:
        raise ConfigError(f"{name} must be one of {', '.join(CHOICES[name])}, got {value!r}")
    return value


def _timeout(env: Mapping[str, str]) -> float:
    raw = (env.get("PROVIDER_TIMEOUT_S") or "").strip()
    if not raw:
        return 15.0
    try:
        value = float(raw)
    except ValueError:
        raise ConfigError(f"PROVIDER_TIMEOUT_S must be a number of seconds, got {raw!r}") from None
    if not 0.05 <= value <= 300:
        raise ConfigError(f"PROVIDER_TIMEOUT_S must be between 0.05 and 300, got {value:g}")
    return value


def public_base(settings: Settings) -> str | None:
    """Where providers and carriers reach us; None without TOUCHLINE_PUBLIC_URL (no callbacks then)."""
    return settings.public_url.rstrip("/") if settings.public_url else None


class ChannelProviders:
    """One provider client per channel, sharing one HTTP session."""

    def __init__(self, env: Mapping[str, str] | None = None, settings: Settings | None = None) -> None:
        env = os.environ if env is None else env
        settings = settings or Settings.from_env(env)
        self.http = ProviderHttp(timeout_s=_timeout(env))
        twilio = TwilioConfig.from_env(env)
        telnyx = TelnyxConfig.from_env(env)
        meta = MetaConfig.from_env(env)
        public = public_base(settings)
        voice_secret = (env.get("VOICE_GATEWAY_TOKEN") or "").strip()

        sms = _choice(env, "SMS_PROVIDER", "telnyx" if telnyx and not twilio else "twilio")
        whatsapp = _choice(env, "WHATSAPP_PROVIDER", "meta" if meta else "twilio")
        voice = _choice(env, "VOICE_CARRIER_PRIMARY", "twilio")
        twilio_status = f"{public}/webhooks/twilio/status" if public else None

        stream = None
        if public and voice_secret:
            parts = urlsplit(public)
            ws = ("wss" if parts.scheme == "https" else "ws") + f"://{parts.netloc}{parts.path}"

            def stream(ref: str) -> str:
                return f"{ws}/twilio?token={quote(sign_call_token(voice_secret, ref))}"

        self.sms: Provider = (
            TwilioSms(self.http, twilio, status_callback=twilio_status)
            if sms == "twilio"
            else TelnyxSms(self.http, telnyx, webhook_url=f"{public}/webhooks/telnyx/messaging" if public else None)
        )
        self.whatsapp: Provider = (
            TwilioWhatsApp(self.http, twilio, status_callback=twilio_status)
            if whatsapp == "twilio"
            else MetaWhatsApp(self.http, meta)
        )
        self.voice: Provider = (
            TwilioVoice(self.http, twilio, status_callback=twilio_status, stream_url=stream)
            if voice == "twilio"
            else TelnyxVoice(self.http, telnyx, webhook_url=f"{public}/webhooks/telnyx/voice" if public else None)
        )
        self.email: Provider = ElasticEmail(self.http, env)
        self.by_channel: dict[str, Provider] = {
            "sms": self.sms,
            "whatsapp": self.whatsapp,
            "voice": self.voice,
            "email": self.email,
        }

    def for_channel(self, channel: str) -> Provider:
        try:
            return self.by_channel[channel]
        except KeyError:
            raise ConfigError(f"no provider for channel {channel!r}") from None

    def describe(self) -> dict[str, str]:
        """channel → provider, marked `(sandbox)` or `(not configured)`: for start-up lines and status."""
        out = {}
        for channel, provider in self.by_channel.items():
            suffix = " (sandbox)" if provider.sandbox else ""
            if isinstance(provider, ElasticEmail) and not provider.ready:
                suffix = " (not configured: missing_elastic_env)"
            out[channel] = provider.name + suffix
        return out

    async def close(self) -> None:
        await self.http.close()


__all__ = ["ChannelProviders", "Provider", "ProviderHttp", "public_base"]
