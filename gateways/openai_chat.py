"""OpenAI chat completions for Command OS: an intent when no rule matched, and replies phrased for people.

Key lookup as the spec says (OPENAI_API_KEY → OPEN_AI_KEY → OPEN_API_KEY, trimmed); the base URL
from OPENAI_BASE_URL like the openai SDK; the model from OPENAI_TEXT_MODEL (default gpt-4.1-mini).
Every failure is a `ProviderError` the caller turns into a rule-based answer: Command OS never
depends on the model for what rules can do.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from typing import Any, Final

import aiohttp
import anyio
import msgspec

from events.errors import ProviderError
from gateways.voice.settings import DEFAULT_OPENAI_BASE_URL, openai_key

TIMEOUT_S: Final = 12.0


class ModelIntent(msgspec.Struct, frozen=True, kw_only=True):
    intent: str
    params: dict[str, Any] = {}


class OpenAIChat:
    def __init__(self, key: str, base_url: str, model: str) -> None:
        self.key = key
        self.base_url = base_url.rstrip("/")
        self.model = model

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> OpenAIChat | None:
        env = os.environ if env is None else env
        key = openai_key(env)
        if key is None:
            return None
        base = (env.get("OPENAI_BASE_URL") or "").strip() or DEFAULT_OPENAI_BASE_URL
        model = (env.get("OPENAI_TEXT_MODEL") or "").strip() or "gpt-4.1-mini"
        return cls(key, base, model)

    async def _complete(self, payload: dict[str, Any]) -> str:
        headers = {"Authorization": f"Bearer {self.key}", "Content-Type": "application/json"}
        try:
            with anyio.fail_after(TIMEOUT_S):
                async with (
                    aiohttp.ClientSession() as http,
                    http.post(f"{self.base_url}/chat/completions", data=json.dumps(payload), headers=headers) as resp,
                ):
                    body = await resp.text()
                    if resp.status != 200:
                        raise ProviderError(f"OpenAI answered HTTP {resp.status}: {body[:200]}")
        except TimeoutError:
            raise ProviderError(f"OpenAI did not answer within {TIMEOUT_S:g} s") from None
        except aiohttp.ClientError as exc:
            raise ProviderError(f"cannot reach OpenAI: {type(exc).__name__}") from None
        try:
            content = json.loads(body)["choices"][0]["message"]["content"]
        except (ValueError, KeyError, IndexError, TypeError):
            raise ProviderError("OpenAI's answer has no choices[0].message.content") from None
        if not isinstance(content, str):
            raise ProviderError("OpenAI's answer content is not text")
        return content

    async def intent(self, text: str, intents: Mapping[str, str]) -> ModelIntent:
        """One of `intents` for what the operator typed (a JSON schema holds the model to them)."""
        schema = {
            "type": "object",
            "additionalProperties": False,
            "required": ["intent", "params"],
            "properties": {
                "intent": {"type": "string", "enum": [*intents, "unknown"]},
                "params": {
                    "type": "object",
                    "additionalProperties": False,
                    "required": ["city", "program", "campaign", "lead", "active"],
                    "properties": {
                        "city": {"type": ["string", "null"]},
                        "program": {"type": ["string", "null"], "enum": ["craigslist", "encuentra24", None]},
                        "campaign": {"type": ["string", "null"]},
                        "lead": {"type": ["string", "null"]},
                        "active": {"type": ["boolean", "null"]},
                    },
                },
            },
        }
        described = "\n".join(f"- {name}: {what}" for name, what in intents.items())
        content = await self._complete(
            {
                "model": self.model,
                "messages": [
                    {
                        "role": "system",
                        "content": "You route a car dealer operator's request (Spanish or English) "
                        "to one intent of Touchline's Command OS. Outbound campaigns and LeadGen programs "
                        "(Craigslist, Encuentra24) are different things. Intents:\n" + described,
                    },
                    {"role": "user", "content": text},
                ],
                "response_format": {
                    "type": "json_schema",
                    "json_schema": {"name": "intent", "strict": True, "schema": schema},
                },
                "temperature": 0,
            }
        )
        try:
            parsed = msgspec.json.decode(content, type=ModelIntent)
        except msgspec.DecodeError as exc:
            raise ProviderError(f"OpenAI's intent is not the JSON asked for: {exc}") from None
        params = {k: v for k, v in parsed.params.items() if v is not None}
        return ModelIntent(intent=parsed.intent, params=params)

    async def phrase(self, language: str, question: str, facts: Mapping[str, Any], draft: str) -> str:
        """The answer as a person would say it, from the facts only (the draft is the template's)."""
        content = await self._complete(
            {
                "model": self.model,
                "messages": [
                    {
                        "role": "system",
                        "content": "You answer a car dealer's operator briefly and warmly in "
                        f"{'Spanish' if language == 'es' else 'English'}, using only the facts given. Never invent "
                        "numbers or names. One to three sentences.",
                    },
                    {
                        "role": "user",
                        "content": json.dumps(
                            {"question": question, "facts": facts, "draft": draft}, ensure_ascii=False, default=str
                        ),
                    },
                ],
                "temperature": 0.3,
            }
        )
        return content.strip() or draft
