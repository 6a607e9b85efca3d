"""The in-memory store against the store contract."""

from __future__ import annotations

import pytest

from events.memory import InMemoryEventStore
from events.store import EventStore
from tests.events.store_contract import StoreContract, Tamper


class TestInMemoryEventStore(StoreContract):
    @pytest.fixture
    def store(self) -> EventStore:
        return InMemoryEventStore()

    @pytest.fixture
    def tamper(self) -> Tamper:
        async def tamper(store: EventStore, position: int, data: bytes) -> None:
            assert isinstance(store, InMemoryEventStore)
            store._tamper(position, data)

        return tamper
