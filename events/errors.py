"""Every exception Touchline raises: one root, one sub-base per area."""

from __future__ import annotations

from uuid import UUID


class TouchlineError(Exception):
    """Root of every error Touchline raises on purpose."""


# --- configuration -------------------------------------------------------------------------


class ConfigError(TouchlineError):
    """A setting is missing, malformed or points at something that is not there."""


# --- the event log -------------------------------------------------------------------------


class LogError(TouchlineError):
    """Something went wrong reading or writing the event log."""


class UnknownEventType(LogError):
    def __init__(self, event_type: str, *, where: str = "") -> None:
        self.event_type = event_type
        at = f" ({where})" if where else ""
        super().__init__(
            f"unknown event type {event_type!r}{at}: it is not in the event catalog; "
            "upgrade Touchline or register the type in events/catalog"
        )


class EventDataInvalid(LogError):
    def __init__(self, event_type: str, reason: str, *, where: str = "") -> None:
        self.event_type = event_type
        self.reason = reason
        at = f" ({where})" if where else ""
        super().__init__(f"data for event type {event_type!r} does not match its schema{at}: {reason}")


class InvalidStreamId(LogError):
    def __init__(self, stream_id: str, reason: str) -> None:
        self.stream_id = stream_id
        super().__init__(f"invalid stream id {stream_id!r}: {reason}")


class ConcurrencyError(LogError):
    """The stream is not at the version the append expected."""

    def __init__(self, stream_id: str, expected: str, actual: int) -> None:
        self.stream_id = stream_id
        self.expected = expected
        self.actual = actual
        super().__init__(
            f"stream {stream_id!r} is at version {actual}, but the append expected {expected}: "
            "read the stream again, decide again, and retry"
        )


class IdempotencyConflict(LogError):
    """Some, but not all, of an append's event ids were already recorded."""

    def __init__(self, stream_id: str, event_ids: list[UUID]) -> None:
        self.stream_id = stream_id
        self.event_ids = event_ids
        ids = ", ".join(str(e) for e in event_ids[:3])
        super().__init__(
            f"append to {stream_id!r} mixes new events with event ids already in the log ({ids}): "
            "an append is replayed whole or not at all"
        )


class AppendRejected(LogError):
    """An atomic multi-stream append was refused because another of its streams failed."""

    def __init__(self, stream_id: str, cause: LogError) -> None:
        self.stream_id = stream_id
        self.cause = cause
        super().__init__(
            f"nothing was written to {stream_id!r} because another stream of the same append failed: {cause}"
        )


class StoreClosed(LogError):
    def __init__(self) -> None:
        super().__init__("the event store is closed: open it with `async with open_postgres_store(...)`")


class DatabaseUnavailable(LogError):
    def __init__(self, dsn: str, reason: str) -> None:
        self.dsn = dsn
        super().__init__(
            f"cannot reach PostgreSQL at {dsn}: {reason}; check TOUCHLINE_DATABASE_URL "
            "or unset it to use the embedded server"
        )


class MigrationError(LogError):
    """A migration failed or the applied history does not match the files."""


# --- the bus -------------------------------------------------------------------------------


class BusError(TouchlineError):
    """Something went wrong talking to NATS JetStream."""


class BusUnavailable(BusError):
    def __init__(self, url: str, reason: str) -> None:
        self.url = url
        self.reason = reason
        super().__init__(
            f"cannot reach NATS at {url}: {reason}; check TOUCHLINE_NATS_URL or unset it to use the embedded server"
        )


# --- embedded servers ----------------------------------------------------------------------


class EmbeddedServerError(TouchlineError):
    """An embedded PostgreSQL or NATS server could not be started or stopped."""


# --- commands ------------------------------------------------------------------------------


class CommandRejected(TouchlineError):
    """A command was refused before anything was appended: it says which field and why."""

    def __init__(self, command: str, message: str, *, field: str | None = None) -> None:
        self.command = command
        self.field = field
        self.reason = message
        super().__init__(f"{command}: {field + ': ' if field else ''}{message}")


class NotFound(CommandRejected):
    """The command names something this account does not have (or another account's)."""


# --- providers and gateways (filled in by later parts) -------------------------------------


class ProviderError(TouchlineError):
    """A channel provider (Twilio, Telnyx, Meta, ElasticEmail, OpenAI) refused or failed."""


class GatewayError(TouchlineError):
    """Bad input at an edge: an HTTP request, a webhook, a WebSocket frame."""
