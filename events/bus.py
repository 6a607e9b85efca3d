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

from typing import Final
from uuid import UUID

import nats
from nats.aio.client import Client as NATS
from nats.js import JetStreamContext
from nats.js.api import DiscardPolicy, RetentionPolicy, StorageType, StreamConfig
from nats.js.errors import NotFoundError

from events.envelope import Envelope
from events.errors import BusUnavailable
from events.settings import Settings

NO_ACCOUNT: Final = "_"
HEADER_POSITION: Final = "Touchline-Position"
HEADER_TYPE: Final = "Touchline-Type"
HEADER_STREAM: Final = "Touchline-Stream"


def event_subject(prefix: str, env: Envelope) -> str:
    account = str(env.account_id) if env.account_id else NO_ACCOUNT
    return f"{prefix}.events.{account}.{env.category}.{env.type}"


def events_filter(prefix: str, *, account_id: UUID | None = None, category: str | None = None) -> str:
    account = str(account_id) if account_id else "*"
    return f"{prefix}.events.{account}.{category or '*'}.>"


async def connect(url: str, *, name: str = "touchline", reconnect_forever: bool = False) -> NATS:
    """Connect, failing with one clear error if the server is not there at start."""
    nc = NATS()
    try:
        await nc.connect(
            servers=[url],
            name=name,
            connect_timeout=3,
            allow_reconnect=True,
            max_reconnect_attempts=-1 if reconnect_forever else 60,
            reconnect_time_wait=1,
        )
    except (OSError, nats.errors.Error, TimeoutError) as exc:
        with _quiet():
            await nc.close()
        raise BusUnavailable(url, str(exc) or type(exc).__name__) from exc
    return nc


class _quiet:
    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: object) -> bool:
        return True


def stream_config(settings: Settings, *, replicas: int = 1) -> StreamConfig:
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
        num_replicas=replicas,
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
