"""Property: the PostgreSQL store behaves exactly like the in-memory model, for any sequence of appends."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

import anyio
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from events.catalog import LeadStatusChanged
from events.errors import LogError
from events.memory import InMemoryEventStore
from events.postgres import open_postgres_store
from events.store import ANY, NO_STREAM, EventStore, Expected, NewEvent, StreamAppend

ACCOUNT = uuid.UUID("00000000-0000-4000-8000-0000000000cc")


@dataclass(frozen=True)
class Op:
    streams: tuple[int, ...]  # which of three streams; several make one atomic append
    count: int  # events per stream
    expected: tuple[str | int, ...]  # per stream: "any", "none" or an exact version
    replay: int | None  # send the very appends of an earlier step again (same event ids)


ops = st.lists(
    st.builds(
        Op,
        streams=st.lists(st.integers(0, 2), min_size=1, max_size=2, unique=True).map(tuple),
        count=st.integers(1, 3),
        expected=st.tuples(
            st.one_of(st.just("any"), st.just("none"), st.integers(0, 5)),
            st.one_of(st.just("any"), st.just("none"), st.integers(0, 5)),
        ),
        replay=st.one_of(st.none(), st.integers(0, 9)),
    ),
    min_size=1,
    max_size=12,
)


def expected_of(value: str | int) -> Expected:
    return ANY if value == "any" else NO_STREAM if value == "none" else int(value)


def concrete(script: list[Op], prefix: str) -> list[list[StreamAppend]]:
    """The script with every event id fixed, so both stores see exactly the same appends."""
    steps: list[list[StreamAppend]] = []
    for op in script:
        if op.replay is not None and op.replay < len(steps):
            steps.append(steps[op.replay])
            continue
        steps.append(
            [
                StreamAppend(
                    stream_id=f"lead-{prefix}{s}",
                    events=[
                        NewEvent(event=LeadStatusChanged(lead_id=uuid.uuid4(), account_id=ACCOUNT, status="new"))
                        for _ in range(op.count)
                    ],
                    expected_version=expected_of(op.expected[i]),
                )
                for i, s in enumerate(op.streams)
            ]
        )
    return steps


async def play(store: EventStore, prefix: str, steps: list[list[StreamAppend]]) -> list[object]:
    """What each step returned (versions, replay or not) or raised (the error's type), then the streams."""
    outcomes: list[object] = []
    for appends in steps:
        try:
            results = await store.append_many(appends)
        except LogError as exc:
            outcomes.append(type(exc).__name__)
        else:
            outcomes.append([(r.stream_id, r.first_version, r.last_version, r.duplicate) for r in results])
    for s in range(3):
        events = await store.read_stream(f"lead-{prefix}{s}")
        outcomes.append([(e.version, e.event_id, e.event) for e in events])
    return outcomes


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(script=ops)
def test_postgres_matches_the_in_memory_model(database_url: str, script: list[Op]) -> None:
    prefix = uuid.uuid4().hex[:12]  # the database is shared between examples; the streams are not
    steps = concrete(script, prefix)

    async def both() -> tuple[list[object], list[object]]:
        model = await play(InMemoryEventStore(), prefix, steps)
        async with open_postgres_store(database_url, writers=2) as pg:
            actual = await play(pg, prefix, steps)
            assert (await pg.verify()).ok
        return model, actual

    model, actual = anyio.run(both)
    assert actual == model
