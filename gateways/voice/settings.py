"""The voice gateway's settings, from the spec's environment variables."""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Final

import msgspec

from events.errors import ConfigError
from events.settings import env_flag, env_number

DEFAULT_OPENAI_BASE_URL: Final = "https://api.openai.com/v1"
FALLBACK_TEXT: Final = (
    "Disculpe, estamos teniendo un problema técnico. Le llamaremos de nuevo muy pronto. Gracias. / "
    "Sorry, we are having a technical problem. We will call you back soon."
)


def openai_key(env: Mapping[str, str]) -> str | None:
    """The spec's lookup: OPENAI_API_KEY, then OPEN_AI_KEY, then the legacy OPEN_API_KEY, trimmed."""
    for name in ("OPENAI_API_KEY", "OPEN_AI_KEY", "OPEN_API_KEY"):
        if value := (env.get(name) or "").strip():
            return value
    return None


class VoiceSettings(msgspec.Struct, frozen=True, kw_only=True):
    gateway_token: str | None = None  # VOICE_GATEWAY_TOKEN: signs and checks the per-call stream token
    allow_unauthenticated_telnyx: bool = False  # the spec's /telnyx bypass, logged AUTH_BYPASS_TELNYX
    openai_api_key: str | None = None
    openai_base_url: str = DEFAULT_OPENAI_BASE_URL
    realtime_model: str = "gpt-4o-realtime-preview"
    realtime_voice: str = "alloy"
    tts_model: str = "gpt-4o-mini-tts"
    tts_voice: str = "alloy"
    tts_speed: float = 1.2
    text_model: str = "gpt-4.1-mini"
    handoff_url: str | None = None
    handoff_token: str | None = None
    playout_lead_ms: float = 60.0  # how far ahead of real time audio goes to the carrier
    mark_every_ms: int = 100  # a mark per this much audio: what the caller has heard, to the mark
    connect_timeout_s: float = 5.0
    silence_duration_ms: int = 500
    fallback_text: str = FALLBACK_TEXT

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> VoiceSettings:
        env = os.environ if env is None else env
        base = (env.get("OPENAI_BASE_URL") or "").strip().rstrip("/") or DEFAULT_OPENAI_BASE_URL
        if not base.startswith(("http://", "https://")):
            raise ConfigError(f"OPENAI_BASE_URL must be an http(s) URL, got {base!r}")
        return cls(
            gateway_token=(env.get("VOICE_GATEWAY_TOKEN") or "").strip() or None,
            allow_unauthenticated_telnyx=env_flag(env, "VOICE_ALLOW_UNAUTHENTICATED_TELNYX"),
            openai_api_key=openai_key(env),
            openai_base_url=base,
            realtime_model=(env.get("OPENAI_REALTIME_MODEL") or "").strip() or "gpt-4o-realtime-preview",
            realtime_voice=(env.get("OPENAI_REALTIME_VOICE") or env.get("OPENAI_TTS_VOICE") or "").strip() or "alloy",
            tts_model=(env.get("OPENAI_TTS_MODEL") or "").strip() or "gpt-4o-mini-tts",
            tts_voice=(env.get("OPENAI_TTS_VOICE") or "").strip() or "alloy",
            tts_speed=env_number(env, "TTS_SPEED", 1.2, low=0.25, high=4.0),
            text_model=(env.get("OPENAI_TEXT_MODEL") or "").strip() or "gpt-4.1-mini",
            handoff_url=(env.get("SUPABASE_VOICE_HANDOFF_URL") or "").strip() or None,
            handoff_token=(env.get("SUPABASE_VOICE_HANDOFF_TOKEN") or "").strip() or None,
            playout_lead_ms=env_number(env, "VOICE_PLAYOUT_LEAD_MS", 60.0, low=0.0, high=1000.0),
            connect_timeout_s=env_number(env, "VOICE_CONNECT_TIMEOUT_S", 5.0, low=0.1, high=60.0),
        )

    @property
    def realtime_url(self) -> str:
        scheme, rest = self.openai_base_url.split("://", 1)
        return f"{'wss' if scheme == 'https' else 'ws'}://{rest}/realtime?model={self.realtime_model}"
