"""The JetStream bus: connecting, the subject scheme, and the event stream's configuration.

Subjects (documented in README "Bus subjects"):

    {prefix}.events.{account}.{category}.{type}
        every committed event, in log order; account is the tenant uuid or `_` for none,
        category the stream's aggregate kind (`lead`, `touch`, ...), type the event type.
    {prefix}.commands.{account}.{name}
        commands to services (added by the command handlers).

Consumers filter on these, e.g. `touchline.events.*.touch.>` for every touch event, or
`touchline.events.<account>.>` for one tenant.
"""

from __future__ import annotations

import contextlib
from typing import Final
from urllib.parse import urlsplit
from uuid import UUID

import anyio
import nats
import structlog
from nats.aio.client import Client as NATS
from nats.js import JetStreamContext
from nats.js.api import DiscardPolicy, RetentionPolicy, StorageType, StreamConfig
from nats.js.errors import NotFoundError

from events.envelope import Envelope
from events.errors import BusUnavailable
from events.settings import Settings

log = structlog.get_logger("touchline.bus")

NO_ACCOUNT: Final = "_"
HEADER_POSITION: Final = "Touchline-Position"
HEADER_TYPE: Final = "Touchline-Type"
HEADER_STREAM: Final = "Touchline-Stream"


def event_subject(prefix: str, env: Envelope) -> str:
    # The relay has PostgreSQL build the same subject (events/postgres.py, _WIRE_SQL); the relay
    # tests hold the two to each other.
    account = str(env.account_id) if env.account_id else NO_ACCOUNT
    return f"{prefix}.events.{account}.{env.category}.{env.type}"


def events_filter(prefix: str, *, account_id: UUID | None = None, category: str | None = None) -> str:
    account = str(account_id) if account_id else "*"
    return f"{prefix}.events.{account}.{category or '*'}.>"


def server_urls(url: str) -> list[str]:
    """`nats://a:4222,nats://b:4222` (a cluster's seed nodes, as nats-server and nats CLI write them) → a list."""
    return [part.strip() for part in url.split(",") if part.strip()]


async def connect(url: str, *, name: str = "touchline", reconnect_forever: bool = False) -> NATS:
    """Connect, failing with one clear error if no server is there at start.

    `url` may list several servers separated by commas (a cluster): the client picks one that
    answers, learns the rest from it, and fails over between them. Once connected, a lost
    connection is retried in the background (forever for long-lived components such as the
    relay), and publishes are buffered meanwhile.
    """
    servers = server_urls(url)
    await _probe_any(url, servers)

    async def on_error(exc: Exception) -> None:
        log.warning("nats_error", url=url, error=str(exc) or type(exc).__name__)

    async def on_disconnect() -> None:
        if not nc.is_closed:
            log.warning("nats_disconnected", url=url)

    async def on_reconnect() -> None:
        log.info("nats_reconnected", url=url)

    nc = NATS()
    try:
        await nc.connect(
            servers=servers,
            name=name,
            connect_timeout=3,
            allow_reconnect=True,
            max_reconnect_attempts=-1 if reconnect_forever else 60,
            reconnect_time_wait=1,
            error_cb=on_error,
            disconnected_cb=on_disconnect,
            reconnected_cb=on_reconnect,
        )
    except (OSError, nats.errors.Error, TimeoutError) as exc:
        with contextlib.suppress(Exception):
            await nc.close()
        raise BusUnavailable(url, str(exc) or type(exc).__name__) from exc
    return nc


async def _probe_any(url: str, servers: list[str]) -> None:
    """At least one of the servers answers, else one error naming why each did not."""
    if not servers:
        raise BusUnavailable(url, "the URL names no server (expected nats://host:port)")
    reasons = []
    for server in servers:
        try:
            await _probe(server)
        except BusUnavailable as exc:
            reasons.append(f"{server}: {exc.reason}" if len(servers) > 1 else exc.reason)
        else:
            return
    raise BusUnavailable(url, "; ".join(reasons))


async def _probe(url: str) -> None:
    # nats-py retries an unreachable server for as long as it would reconnect (forever, for the
    # relay): look first, so a server that is not there at start is one clear error at once.
    parts = urlsplit(url)
    if not parts.hostname:
        raise BusUnavailable(url, "the URL names no host (expected nats://host:port)")
    try:
        with anyio.fail_after(3):
            stream = await anyio.connect_tcp(parts.hostname, parts.port or 4222)
    except (OSError, TimeoutError) as exc:
        raise BusUnavailable(url, str(exc) or "connection timed out") from None
    except ValueError as exc:
        raise BusUnavailable(url, f"malformed URL: {exc}") from None
    await stream.aclose()


def stream_config(settings: Settings, *, replicas: int | None = None) -> StreamConfig:
    return StreamConfig(
        name=settings.stream_name,
        subjects=[f"{settings.subject_prefix}.events.>"],
        retention=RetentionPolicy.LIMITS,
        storage=StorageType.FILE,
        discard=DiscardPolicy.OLD,
        max_age=settings.stream_max_age_s,
        max_bytes=settings.stream_max_bytes,
        max_msg_size=1024 * 1024,
        duplicate_window=120.0,
        num_replicas=settings.stream_replicas if replicas is None else replicas,
    )


async def ensure_stream(js: JetStreamContext, settings: Settings) -> None:
    """Create the event stream, or bring an existing one's limits up to date."""
    config = stream_config(settings)
    try:
        await js.stream_info(settings.stream_name)
    except NotFoundError:
        await js.add_stream(config)
        return
    await js.update_stream(config)
