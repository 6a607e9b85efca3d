"""Settings from the environment (TOUCHLINE_*), validated once, with errors naming the variable."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
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
            values["ack_wait_s"] = _seconds("TOUCHLINE_ACK_WAIT_S", v, low=2.0, high=3600.0)
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


def _seconds(name: str, value: str, *, low: float, high: float) -> float:
    try:
        seconds = float(value)
    except ValueError:
        raise ConfigError(f"{name} must be a number of seconds, got {value!r}") from None
    if not low <= seconds <= high:  # also refuses nan and inf
        raise ConfigError(f"{name} must be between {low:g} and {high:g} seconds, got {value}")
    return seconds


def _token(name: str, value: str) -> str:
    if not value.replace("_", "").replace("-", "").isalnum():
        raise ConfigError(f"{name} may hold only letters, digits, '_' and '-', got {value!r}")
    return value
