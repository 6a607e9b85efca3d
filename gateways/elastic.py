"""ElasticEmail configuration, read the way the spec says: either key name, trimmed, fail-closed."""

from __future__ import annotations

import os
from collections.abc import Mapping

import msgspec

MISSING_ELASTIC_ENV = "missing_elastic_env: set ELASTIC_EMAIL_API_KEY (or ELASTICEMAIL_API_KEY) + ELASTIC_EMAIL_FROM"


class ElasticEnv(msgspec.Struct, frozen=True):
    api_key: str | None
    from_address: str | None

    @property
    def email_ready(self) -> bool:
        """The spec's EMAIL_READY: a key (under either name) and a from-address, both non-blank."""
        return bool(self.api_key and self.from_address)


def elastic_env(env: Mapping[str, str] | None = None) -> ElasticEnv:
    env = os.environ if env is None else env
    key = (env.get("ELASTIC_EMAIL_API_KEY") or "").strip() or (env.get("ELASTICEMAIL_API_KEY") or "").strip()
    sender = (env.get("ELASTIC_EMAIL_FROM") or "").strip()
    return ElasticEnv(api_key=key or None, from_address=sender or None)
