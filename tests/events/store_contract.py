"""The contract every event store must meet; a store's test module implements only the factory."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable

import anyio
import msgspec
import pytest

from events.catalog import CampaignCreated, Event, LeadStatusChanged, LeadSuppressed, TouchRunScheduled
from events.errors import (
    AppendRejected,
    ConcurrencyError,
    EventDataInvalid,
    IdempotencyConflict,
    InvalidStreamId,
    LogError,
    UnknownEventType,
)
from events.store import (
    ANY,
    NO_STREAM,
    EventFilter,
    EventStore,
    NewEvent,
    StreamAppend,
    caused_event_id,
)

Tamper = Callable[[EventStore, int, bytes], Awaitable[None]]

ACCOUNT = uuid.UUID("00000000-0000-4000-8000-00000000000a")
OTHER_ACCOUNT = uuid.UUID("00000000-0000-4000-8000-00000000000b")


def status(lead_id: uuid.UUID, value: str = "new", account: uuid.UUID = ACCOUNT) -> LeadStatusChanged:
    return LeadStatusChanged(lead_id=lead_id, account_id=account, status=value)  # type: ignore[arg-type]


def lead() -> tuple[uuid.UUID, str]:
    lead_id = uuid.uuid4()
    return lead_id, f"lead-{lead_id}"


class StoreContract:
    """Subclasses provide the `store` and `tamper` fixtures."""

    # --- appending ------------------------------------------------------------------------

    async def test_first_append_creates_the_stream_at_version_one(self, store: EventStore) -> None:
        lead_id, stream = lead()
        result = await store.append(stream, [status(lead_id)], expected_version=NO_STREAM)
        assert (result.stream_id, result.first_version, result.last_version) == (stream, 1, 1)
        assert result.first_position == result.last_position >= 1
        assert not result.duplicate
        assert await store.stream_version(stream) == 1

    async def test_exact_expected_version_appends_in_order(self, store: EventStore) -> None:
        lead_id, stream = lead()
        await store.append(stream, [status(lead_id)], expected_version=NO_STREAM)
        result = await store.append(
            stream, [status(lead_id, "contacted"), status(lead_id, "replied")], expected_version=1
        )
        assert (result.first_version, result.last_version) == (2, 3)
        assert result.last_position == result.first_position + 1
        events = await store.read_stream(stream)
        assert [e.version for e in events] == [1, 2, 3]
        assert [e.event for e in events][1:] == [status(lead_id, "contacted"), status(lead_id, "replied")]

    async def test_wrong_expected_version_names_stream_expected_and_actual(self, store: EventStore) -> None:
        lead_id, stream = lead()
        await store.append(stream, [status(lead_id), status(lead_id)], expected_version=NO_STREAM)
        with pytest.raises(ConcurrencyError) as info:
            await store.append(stream, [status(lead_id)], expected_version=1)
        err = info.value
        assert (err.stream_id, err.actual) == (stream, 2)
        assert stream in str(err) and "version 2" in str(err) and "expected version 1" in str(err)
        assert await store.stream_version(stream) == 2

    async def test_no_stream_on_an_existing_stream_is_a_conflict(self, store: EventStore) -> None:
        lead_id, stream = lead()
        await store.append(stream, [status(lead_id)])
        with pytest.raises(ConcurrencyError, match="no stream"):
            await store.append(stream, [status(lead_id)], expected_version=NO_STREAM)

    async def test_exact_version_on_a_missing_stream_is_a_conflict(self, store: EventStore) -> None:
        lead_id, stream = lead()
        with pytest.raises(ConcurrencyError) as info:
            await store.append(stream, [status(lead_id)], expected_version=3)
        assert info.value.actual == 0

    async def test_any_always_appends(self, store: EventStore) -> None:
        lead_id, stream = lead()
        for _ in range(3):
            await store.append(stream, [status(lead_id)], expected_version=ANY)
        assert await store.stream_version(stream) == 3

    async def test_multi_stream_append_is_atomic(self, store: EventStore) -> None:
        lead_a, stream_a = lead()
        lead_b, stream_b = lead()
        await store.append(stream_b, [status(lead_b)])
        with pytest.raises(ConcurrencyError) as info:
            await store.append_many(
                [
                    StreamAppend(stream_id=stream_a, events=[status(lead_a)], expected_version=NO_STREAM),
                    StreamAppend(stream_id=stream_b, events=[status(lead_b)], expected_version=NO_STREAM),
                ]
            )
        assert info.value.stream_id == stream_b
        assert stream_a in " ".join(getattr(info.value, "__notes__", []))
        assert await store.stream_version(stream_a) == 0
        assert await store.stream_version(stream_b) == 1

        results = await store.append_many(
            [
                StreamAppend(stream_id=stream_a, events=[status(lead_a)], expected_version=NO_STREAM),
                StreamAppend(stream_id=stream_b, events=[status(lead_b)], expected_version=1),
            ]
        )
        assert [(r.stream_id, r.last_version) for r in results] == [(stream_a, 1), (stream_b, 2)]
        (a,) = await store.read_stream(stream_a)
        b = (await store.read_stream(stream_b))[-1]
        assert a.correlation_id == b.correlation_id

    async def test_reappending_the_same_event_ids_is_a_no_op(self, store: EventStore) -> None:
        lead_id, stream = lead()
        events = [NewEvent(event=status(lead_id)), NewEvent(event=status(lead_id, "contacted"))]
        first = await store.append(stream, events, expected_version=NO_STREAM)
        head = await store.head_position()
        again = await store.append(stream, events, expected_version=NO_STREAM)
        assert again.duplicate
        assert (again.first_position, again.last_position) == (first.first_position, first.last_position)
        assert (again.first_version, again.last_version) == (1, 2)
        assert await store.head_position() == head
        assert len(await store.read_stream(stream)) == 2

    async def test_mixing_new_and_recorded_event_ids_is_refused(self, store: EventStore) -> None:
        lead_id, stream = lead()
        recorded = NewEvent(event=status(lead_id))
        await store.append(stream, [recorded])
        with pytest.raises(IdempotencyConflict) as info:
            await store.append(stream, [recorded, NewEvent(event=status(lead_id))])
        assert recorded.event_id in info.value.event_ids
        assert await store.stream_version(stream) == 1

    async def test_a_failed_stream_rejects_its_partner_not_strangers(self, store: EventStore) -> None:
        lead_a, stream_a = lead()
        lead_b, stream_b = lead()
        await store.append(stream_a, [status(lead_a)])

        async def failing() -> None:
            with pytest.raises((ConcurrencyError, AppendRejected)):
                await store.append_many(
                    [
                        StreamAppend(stream_id=stream_a, events=[status(lead_a)], expected_version=5),
                        StreamAppend(stream_id=stream_b, events=[status(lead_b)], expected_version=NO_STREAM),
                    ]
                )

        strangers = [lead() for _ in range(20)]

        async def stranger(lead_id: uuid.UUID, stream: str) -> None:
            await store.append(stream, [status(lead_id)], expected_version=NO_STREAM)

        async with anyio.create_task_group() as tg:
            tg.start_soon(failing)
            for lead_id, stream in strangers:
                tg.start_soon(stranger, lead_id, stream)
        assert await store.stream_version(stream_b) == 0
        for _, stream in strangers:
            assert await store.stream_version(stream) == 1

    async def test_only_one_of_racing_appends_at_the_same_version_wins(self, store: EventStore) -> None:
        lead_id, stream = lead()
        await store.append(stream, [status(lead_id)])
        outcomes: list[str] = []

        async def contender(i: int) -> None:
            try:
                await store.append(stream, [status(lead_id, "contacted")], expected_version=1)
                outcomes.append("won")
            except ConcurrencyError:
                outcomes.append("lost")

        async with anyio.create_task_group() as tg:
            for i in range(10):
                tg.start_soon(contender, i)
        assert sorted(outcomes) == ["lost"] * 9 + ["won"]
        assert await store.stream_version(stream) == 2

    async def test_concurrent_appends_to_one_stream_with_any_all_land(self, store: EventStore) -> None:
        lead_id, stream = lead()
        async with anyio.create_task_group() as tg:
            for _ in range(25):
                tg.start_soon(store.append, stream, [status(lead_id)])
        events = await store.read_stream(stream)
        assert [e.version for e in events] == list(range(1, 26))
        assert [e.position for e in events] == sorted(e.position for e in events)

    # --- bad input ------------------------------------------------------------------------

    @pytest.mark.parametrize("stream_id", ["", "Lead-1", "lead 1", "lead-", "-1", "lead-a*b", "lead-a>b"])
    async def test_malformed_stream_ids_are_refused(self, store: EventStore, stream_id: str) -> None:
        with pytest.raises(InvalidStreamId, match="invalid stream id"):
            await store.append(stream_id, [status(uuid.uuid4())])
        assert await store.head_position() == 0

    async def test_an_append_without_events_is_refused(self, store: EventStore) -> None:
        with pytest.raises(LogError, match="has no events"):
            await store.append("lead-1", [])

    async def test_an_event_outside_the_catalog_is_refused(self, store: EventStore) -> None:
        class NotInCatalog(Event, frozen=True):
            x: int

        with pytest.raises(UnknownEventType, match="NotInCatalog"):
            await store.append("lead-1", [NotInCatalog(x=1)])
        assert await store.head_position() == 0

    async def test_event_data_that_would_not_read_back_is_refused(self, store: EventStore) -> None:
        lead_id, stream = lead()
        bad = LeadStatusChanged(lead_id=lead_id, account_id=ACCOUNT, status=42)  # type: ignore[arg-type]
        with pytest.raises(EventDataInvalid, match=r"LeadStatusChanged.*\$\.status"):
            await store.append(stream, [status(lead_id), bad])
        assert await store.stream_version(stream) == 0

    async def test_the_same_stream_twice_in_one_append_is_refused(self, store: EventStore) -> None:
        lead_id, stream = lead()
        with pytest.raises(LogError, match="appears twice"):
            await store.append_many(
                [
                    StreamAppend(stream_id=stream, events=[status(lead_id)]),
                    StreamAppend(stream_id=stream, events=[status(lead_id)]),
                ]
            )

    # --- envelopes ------------------------------------------------------------------------

    async def test_envelope_carries_identity_tenant_and_causality(self, store: EventStore) -> None:
        lead_id, stream = lead()
        cause = uuid.uuid4()
        correlation = uuid.uuid4()
        new = NewEvent(event=LeadSuppressed(lead_id=lead_id, account_id=ACCOUNT, reason="opt-out"))
        await store.append(stream, [new], correlation_id=correlation, causation_id=cause)
        (env,) = await store.read_stream(stream)
        assert env.event_id == new.event_id
        assert env.type == "LeadSuppressed"
        assert env.account_id == ACCOUNT
        assert (env.correlation_id, env.causation_id) == (correlation, cause)
        assert env.category == "lead"
        assert env.recorded_at.tzinfo is not None
        assert env.event == new.event
        assert msgspec.json.decode(env.data)["reason"] == "opt-out"

    async def test_correlation_defaults_to_the_first_event_id(self, store: EventStore) -> None:
        lead_id, stream = lead()
        new = NewEvent(event=status(lead_id))
        await store.append(stream, [new, NewEvent(event=status(lead_id))])
        events = await store.read_stream(stream)
        assert {e.correlation_id for e in events} == {new.event_id}
        assert {e.causation_id for e in events} == {None}

    async def test_explicit_account_wins_and_events_without_one_have_none(self, store: EventStore) -> None:
        campaign_id = uuid.uuid4()
        created = CampaignCreated(
            campaign_id=campaign_id, account_id=ACCOUNT, campaign_key="autos_outbound_miami", name="x"
        )
        await store.append(f"campaign-{campaign_id}", [created], account_id=OTHER_ACCOUNT)
        (env,) = await store.read_stream(f"campaign-{campaign_id}")
        assert env.account_id == OTHER_ACCOUNT

    async def test_deterministic_ids_make_reactions_idempotent(self, store: EventStore) -> None:
        lead_id, stream = lead()
        cause = uuid.uuid4()
        reaction = NewEvent(event=status(lead_id, "contacted"), event_id=caused_event_id(cause, "status"))
        first = await store.append(stream, [reaction], causation_id=cause)
        replay = NewEvent(event=status(lead_id, "contacted"), event_id=caused_event_id(cause, "status"))
        second = await store.append(stream, [replay], causation_id=cause)
        assert second.duplicate and second.first_position == first.first_position
        assert caused_event_id(cause, "status") != caused_event_id(cause, "other")

    # --- reading --------------------------------------------------------------------------

    async def test_read_stream_from_a_version_with_a_limit(self, store: EventStore) -> None:
        lead_id, stream = lead()
        await store.append(stream, [status(lead_id) for _ in range(6)])
        events = await store.read_stream(stream, from_version=3, limit=2)
        assert [e.version for e in events] == [3, 4]
        assert await store.read_stream("lead-missing") == []

    async def test_read_all_in_global_order_in_batches(self, store: EventStore) -> None:
        streams = [lead() for _ in range(5)]
        for i in range(4):
            for lead_id, stream in streams:
                await store.append(stream, [status(lead_id, "new" if i % 2 else "contacted")])
        batches = [b async for b in store.read_all(0, batch_size=6)]
        assert [len(b) for b in batches] == [6, 6, 6, 2]
        positions = [e.position for b in batches for e in b]
        assert positions == sorted(positions) and len(set(positions)) == 20
        later = [e.position async for b in store.read_all(positions[9]) for e in b]
        assert later == positions[10:]

    async def test_read_all_filters(self, store: EventStore) -> None:
        lead_a, stream_a = lead()
        lead_b, stream_b = lead()
        touch_id = uuid.uuid4()
        await store.append(stream_a, [status(lead_a)])
        await store.append(stream_b, [status(lead_b, account=OTHER_ACCOUNT)])
        await store.append(
            f"touch-{touch_id}",
            [
                TouchRunScheduled(
                    touch_run_id=touch_id,
                    account_id=ACCOUNT,
                    lead_id=lead_a,
                    campaign_id=uuid.uuid4(),
                    step=1,
                    channel="sms",
                    scheduled_for=msgspec.json.decode(b'"2026-01-01T14:05:00Z"', type=__import__("datetime").datetime),
                )
            ],
        )

        async def types(f: EventFilter) -> list[str]:
            return [e.stream_id async for b in store.read_all(0, filter=f) for e in b]

        assert await types(EventFilter(account_id=OTHER_ACCOUNT)) == [stream_b]
        assert await types(EventFilter(types=frozenset({"TouchRunScheduled"}))) == [f"touch-{touch_id}"]
        assert await types(EventFilter(category="lead")) == [stream_a, stream_b]
        assert await types(EventFilter(stream_id=stream_a)) == [stream_a]

    async def test_tail_yields_history_then_new_events(self, store: EventStore) -> None:
        lead_id, stream = lead()
        await store.append(stream, [status(lead_id)])
        seen: list[int] = []
        done = anyio.Event()

        async def follow() -> None:
            async for batch in store.tail(0):
                seen.extend(e.version for e in batch)
                if len(seen) >= 3:
                    done.set()
                    return

        async with anyio.create_task_group() as tg:
            tg.start_soon(follow)
            await store.append(stream, [status(lead_id)])
            await store.append(stream, [status(lead_id)])
            with anyio.fail_after(10):
                await done.wait()
        assert seen == [1, 2, 3]

    async def test_tail_with_a_filter(self, store: EventStore) -> None:
        lead_a, stream_a = lead()
        lead_b, stream_b = lead()
        got: list[str] = []
        done = anyio.Event()

        async def follow() -> None:
            async for batch in store.tail(0, filter=EventFilter(stream_id=stream_b)):
                got.extend(e.stream_id for e in batch)
                done.set()
                return

        async with anyio.create_task_group() as tg:
            tg.start_soon(follow)
            await store.append(stream_a, [status(lead_a)])
            await store.append(stream_b, [status(lead_b)])
            with anyio.fail_after(10):
                await done.wait()
        assert got == [stream_b]

    async def test_follow_says_when_the_past_is_read_then_goes_on_live(self, store: EventStore) -> None:
        lead_id, stream = lead()
        await store.append(stream, [status(lead_id)])
        await store.append(stream, [status(lead_id)])
        loaded = anyio.Event()
        past: list[int] = []
        live: list[int] = []
        done = anyio.Event()

        async def follow() -> None:
            async for batch in store.follow(EventFilter(stream_id=stream), loaded):
                (live if loaded.is_set() else past).extend(e.version for e in batch)
                if len(past) + len(live) >= 3:
                    done.set()
                    return

        async with anyio.create_task_group() as tg:
            tg.start_soon(follow)
            with anyio.fail_after(10):
                await loaded.wait()
                assert past == [1, 2]
                await store.append(stream, [status(lead_id)])
                await done.wait()
        assert (past, live) == ([1, 2], [3])

    # --- tamper evidence ------------------------------------------------------------------

    async def test_an_untouched_log_verifies(self, store: EventStore) -> None:
        for _ in range(3):
            lead_id, stream = lead()
            await store.append(stream, [status(lead_id), status(lead_id, "contacted")])
        report = await store.verify()
        assert report.ok and report.events_checked == 6 and report.streams_checked == 3

    async def test_verify_pinpoints_the_first_changed_event(self, store: EventStore, tamper: Tamper) -> None:
        lead_id, stream = lead()
        await store.append(stream, [status(lead_id) for _ in range(4)])
        victim = (await store.read_stream(stream))[2]
        forged = msgspec.json.encode(status(lead_id, "suppressed"))
        await tamper(store, victim.position, forged)
        report = await store.verify()
        assert not report.ok and report.first_bad is not None
        assert (report.first_bad.position, report.first_bad.stream_id, report.first_bad.version) == (
            victim.position,
            stream,
            3,
        )
        assert report.first_bad.event_id == victim.event_id
        assert "changed" in report.first_bad.problem
