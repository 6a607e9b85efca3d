"""Touchline's event log: the catalog, the envelope, the stores, the relay and the bus."""

from events.catalog import *  # noqa: F403 - the catalog is the package's public face
from events.catalog import __all__ as _catalog_all
from events.envelope import Envelope
from events.errors import ConcurrencyError, LogError, TouchlineError
from events.store import ANY, NO_STREAM, AppendResult, EventFilter, EventStore, NewEvent, StreamAppend

__all__ = [
    *_catalog_all,
    "ANY",
    "NO_STREAM",
    "AppendResult",
    "ConcurrencyError",
    "Envelope",
    "EventFilter",
    "EventStore",
    "LogError",
    "NewEvent",
    "StreamAppend",
    "TouchlineError",
]
