"""Settings from the environment (TOUCHLINE_*), validated once, with errors naming the variable."""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Final
from urllib.parse import urlsplit

import msgspec

from events.errors import ConfigError


class Settings(msgspec.Struct, frozen=True, kw_only=True):
    data_dir: Path = Path(".touchline")
    database_url: str | None = None
    nats_url: str | None = None
    http_host: str = "127.0.0.1"
    http_port: int = 8080
    public_url: str | None = None
    # Bus naming: a deployment (or a test) can run beside another on the same NATS server.
    subject_prefix: str = "touchline"
    stream_name: str = "TOUCHLINE_EVENTS"
    # JetStream retention for the event stream; the log in PostgreSQL is the source of truth.
    stream_max_age_s: float = 7 * 24 * 3600
    stream_max_bytes: int = 8 * 1024**3
    # Copies of the event stream on a NATS cluster (1 on a single server; 3 on a 3-node cluster).
    stream_replicas: int = 1
    # How long a delivered event may go unacknowledged before JetStream hands it to another
    # process (the runtime beats in-progress work every third of it). None: each actor's own.
    ack_wait_s: float | None = None

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, **overrides: object) -> Settings:
        env = os.environ if env is None else env
        values: dict[str, object] = {}
        if v := _get(env, "TOUCHLINE_DATA_DIR"):
            values["data_dir"] = Path(v)
        if v := _get(env, "TOUCHLINE_DATABASE_URL"):
            values["database_url"] = _check_url("TOUCHLINE_DATABASE_URL", v, ("postgres", "postgresql"))
        if v := _get(env, "TOUCHLINE_NATS_URL"):
            # Several servers (a cluster's seeds) are written comma-separated, as NATS tools write them.
            servers = [part.strip() for part in v.split(",")]
            for server in servers:
                if not server:
                    raise ConfigError(f"TOUCHLINE_NATS_URL has an empty entry between commas: {v!r}")
                _check_url("TOUCHLINE_NATS_URL", server, ("nats", "tls", "ws", "wss"))
            values["nats_url"] = ",".join(servers)
        if v := _get(env, "TOUCHLINE_HTTP_HOST"):
            values["http_host"] = v
        if v := _get(env, "TOUCHLINE_HTTP_PORT"):
            values["http_port"] = _port("TOUCHLINE_HTTP_PORT", v)
        if v := _get(env, "TOUCHLINE_PUBLIC_URL"):
            values["public_url"] = _check_url("TOUCHLINE_PUBLIC_URL", v, ("http", "https")).rstrip("/")
        if v := _get(env, "TOUCHLINE_SUBJECT_PREFIX"):
            values["subject_prefix"] = _token("TOUCHLINE_SUBJECT_PREFIX", v)
        if v := _get(env, "TOUCHLINE_STREAM_NAME"):
            values["stream_name"] = _token("TOUCHLINE_STREAM_NAME", v)
        if v := _get(env, "TOUCHLINE_STREAM_REPLICAS"):
            if v not in ("1", "2", "3", "4", "5"):
                raise ConfigError(f"TOUCHLINE_STREAM_REPLICAS must be 1 to 5 (a JetStream limit), got {v!r}")
            values["stream_replicas"] = int(v)
        if v := _get(env, "TOUCHLINE_ACK_WAIT_S"):
            values["ack_wait_s"] = parse_number("TOUCHLINE_ACK_WAIT_S", v, low=2.0, high=3600.0, unit="seconds")
        values.update({k: v for k, v in overrides.items() if v is not None})
        if "data_dir" in values:
            values["data_dir"] = Path(str(values["data_dir"]))
        return cls(**values)  # type: ignore[arg-type]


def _get(env: Mapping[str, str], name: str) -> str | None:
    value = env.get(name)
    return value.strip() if value and value.strip() else None


def _check_url(name: str, value: str, schemes: tuple[str, ...]) -> str:
    try:
        parts = urlsplit(value)
    except ValueError as exc:
        raise ConfigError(f"{name} is not a valid URL: {exc}") from None
    if parts.scheme not in schemes:
        raise ConfigError(
            f"{name} must start with {' or '.join(s + '://' for s in schemes)} (got {parts.scheme or 'no scheme'!r})"
        )
    if not parts.netloc and "host=" not in (parts.query or ""):
        raise ConfigError(f"{name} names no host: expected e.g. {schemes[0]}://host:port")
    return value


def _port(name: str, value: str) -> int:
    try:
        port = int(value)
    except ValueError:
        raise ConfigError(f"{name} must be a port number, got {value!r}") from None
    if not 0 <= port <= 65535:
        raise ConfigError(f"{name} must be between 0 and 65535, got {port}")
    return port


# --- reading numbers and switches from the environment (every part's settings use these) ----------

_ON: Final = frozenset({"1", "true", "on", "yes"})
_OFF: Final = frozenset({"0", "false", "off", "no"})


def env_text(env: Mapping[str, str], name: str) -> str | None:
    """The variable's value without surrounding spaces; None when unset or blank."""
    value = env.get(name)
    return value.strip() if value is not None and value.strip() else None


def parse_number(name: str, raw: str, *, low: float, high: float, unit: str = "") -> float:
    """A finite number within [low, high]; a ConfigError naming the variable otherwise."""
    try:
        value = float(raw)
    except ValueError:
        raise ConfigError(f"{name} must be a number{' of ' + unit if unit else ''}, got {raw!r}") from None
    if not math.isfinite(value) or not low <= value <= high:  # nan and inf are refused too
        raise ConfigError(f"{name} must be between {low:g} and {high:g}{' ' + unit if unit else ''}, got {raw}")
    return value


def parse_int(name: str, raw: str, *, low: int, high: int | None = None) -> int:
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(f"{name} must be a whole number, got {raw!r}") from None
    if high is None and value < low:
        raise ConfigError(f"{name} must be at least {low}, got {value}")
    if high is not None and not low <= value <= high:
        raise ConfigError(f"{name} must be between {low} and {high}, got {value}")
    return value


def parse_flag(name: str, raw: str) -> bool:
    folded = raw.strip().lower()
    if folded in _ON:
        return True
    if folded in _OFF:
        return False
    raise ConfigError(f"{name} must be 1 or 0 (on or off), got {raw!r}")


def env_number(env: Mapping[str, str], name: str, default: float, *, low: float, high: float) -> float:
    raw = env_text(env, name)
    return default if raw is None else parse_number(name, raw, low=low, high=high)


def env_int(env: Mapping[str, str], name: str, default: int, *, low: int, high: int | None = None) -> int:
    raw = env_text(env, name)
    return default if raw is None else parse_int(name, raw, low=low, high=high)


def env_flag(env: Mapping[str, str], name: str, default: bool = False) -> bool:
    raw = env_text(env, name)
    return default if raw is None else parse_flag(name, raw)


def _token(name: str, value: str) -> str:
    if not value.replace("_", "").replace("-", "").isalnum():
        raise ConfigError(f"{name} may hold only letters, digits, '_' and '-', got {value!r}")
    return value
