"""The outbox relay: every committed event reaches JetStream once, in log order, through restarts and outages."""

from __future__ import annotations

import asyncio
import contextlib
import re
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import anyio
import asyncpg
import msgspec
import pytest
from anyio.abc import SocketAttribute, SocketStream, TaskStatus
from nats.aio.client import Client as NATS
from nats.js.api import PubAck, RawStreamMsg
from nats.js.errors import NotFoundError
from structlog.testing import capture_logs

from events.bus import HEADER_POSITION, HEADER_STREAM, HEADER_TYPE, connect, event_subject
from events.catalog import CampaignCreated, TouchRunScheduled, event_type
from events.codec import encode_event
from events.envelope import envelope_decoder
from events.errors import BusUnavailable
from events.postgres import PostgresEventStore, init_connection
from events.relay import _LEADER_LOCK, OutboxRelay, load_checkpoint
from events.settings import Settings
from events.store import StreamAppend
from gateways.embedded import NatsServer, free_port
from tests.events.store_contract import ACCOUNT, OTHER_ACCOUNT, lead, status

# --- helpers ------------------------------------------------------------------------------------


class LogRecorder:
    """Stands in for a module's structlog logger: keeps every log event and wakes whoever waits for one."""

    def __init__(self) -> None:
        self.events: list[tuple[str, dict[str, object]]] = []
        self._changed = anyio.Event()

    def _record(self, event: str, **fields: object) -> None:
        self.events.append((event, fields))
        self._changed.set()
        self._changed = anyio.Event()

    def debug(self, event: str, **fields: object) -> None:
        self._record(event, **fields)

    def info(self, event: str, **fields: object) -> None:
        self._record(event, **fields)

    def warning(self, event: str, **fields: object) -> None:
        self._record(event, **fields)

    def error(self, event: str, **fields: object) -> None:
        self._record(event, **fields)

    def count(self, event: str) -> int:
        return sum(1 for name, _ in self.events if name == event)

    async def wait_for(self, event: str, times: int = 1) -> None:
        while self.count(event) < times:
            await self._changed.wait()


@pytest.fixture
def relay_log(monkeypatch: pytest.MonkeyPatch) -> LogRecorder:
    recorder = LogRecorder()
    monkeypatch.setattr("events.relay.log", recorder)
    return recorder


@pytest.fixture
def bus_log(monkeypatch: pytest.MonkeyPatch) -> LogRecorder:
    recorder = LogRecorder()
    monkeypatch.setattr("events.bus.log", recorder)
    return recorder


async def append_leads(store: PostgresEventStore, count: int) -> list[int]:
    positions = []
    for _ in range(count):
        lead_id, stream = lead()
        positions.append((await store.append(stream, [status(lead_id)])).first_position)
    return positions


async def append_leads_at_once(store: PostgresEventStore, count: int) -> list[int]:
    leads = [lead() for _ in range(count)]
    results = await store.append_many([StreamAppend(stream_id=stream, events=[status(lid)]) for lid, stream in leads])
    return sorted(r.first_position for r in results)


async def append_without_account(dsn: str, stream_id: str) -> int:
    """Straight through the SQL function: the catalog's events all carry an account, old rows may not."""
    conn: asyncpg.Connection = await asyncpg.connect(dsn)
    try:
        await init_connection(conn)
        event = status(uuid.uuid4())
        event_id = uuid.uuid4()
        row = await conn.fetchrow(
            "select * from touchline.append_events($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
            [1],
            [stream_id],
            [-2],
            [1],
            [event_id],
            [event_type(type(event))],
            [None],
            [event_id],
            [None],
            [encode_event(event)],
        )
    finally:
        await conn.close()
    assert row is not None and row["outcome"] == "ok"
    return int(row["first_position"])


async def stream_messages(nc: NATS, settings: Settings) -> list[RawStreamMsg]:
    js = nc.jetstream()
    try:
        info = await js.stream_info(settings.stream_name)
    except NotFoundError:
        return []
    if info.state.messages == 0:
        return []
    return [
        await js.get_msg(settings.stream_name, seq=seq) for seq in range(info.state.first_seq, info.state.last_seq + 1)
    ]


async def positions_in_stream(nc: NATS, settings: Settings) -> list[int]:
    return [int((m.headers or {})[HEADER_POSITION]) for m in await stream_messages(nc, settings)]


async def positions_in_log(store: PostgresEventStore) -> list[int]:
    return [int(r[0]) for r in await store.pool.fetch("select position from touchline.events order by position")]


@contextlib.asynccontextmanager
async def running(relay: OutboxRelay) -> AsyncIterator[None]:
    """Run a relay in the background; leaving the block stops it (like a process being killed)."""
    async with anyio.create_task_group() as tg:
        await tg.start(relay.run)
        yield
        tg.cancel_scope.cancel()


def after_each_publish(
    monkeypatch: pytest.MonkeyPatch, relay: OutboxRelay, hook: Callable[[int], Awaitable[None]]
) -> None:
    """Run `hook(position)` each time the relay has handed an event to the NATS client."""
    publish_async = relay.js.publish_async

    async def publish_then_hook(subject: str, payload: bytes = b"", **kwargs: Any) -> asyncio.Future[PubAck]:
        ack = await publish_async(subject, payload, **kwargs)
        await hook(int(kwargs["headers"][HEADER_POSITION]))
        return ack

    monkeypatch.setattr(relay.js, "publish_async", publish_then_hook)


def leads(relay: OutboxRelay) -> bool:
    return relay.stats.leader


def small_relay(store: PostgresEventStore, nc: NATS, settings: Settings) -> OutboxRelay:
    """Small batches: many batches in flight, so that stopping or losing one lands mid-stream."""
    return OutboxRelay(store, nc, settings, batch_size=10)


# --- (a) what is published, and where --------------------------------------------------------------


async def test_every_committed_event_is_published_in_log_order_with_its_identity(
    pg_store: PostgresEventStore, nc: NATS, settings: Settings, database_url: str
) -> None:
    lead_id, lead_stream = lead()
    campaign_id = uuid.uuid4()
    touch_id = uuid.uuid4()
    await pg_store.append(lead_stream, [status(lead_id), status(lead_id, "contacted")])
    await pg_store.append(
        f"campaign-{campaign_id}",
        [CampaignCreated(campaign_id=campaign_id, account_id=OTHER_ACCOUNT, campaign_key="autos", name="Autos")],
    )
    await pg_store.append(
        f"touch-{touch_id}",
        [
            TouchRunScheduled(
                touch_run_id=touch_id,
                account_id=ACCOUNT,
                lead_id=lead_id,
                campaign_id=campaign_id,
                step=1,
                channel="sms",
                scheduled_for=datetime(2025, 1, 2, 14, 5, tzinfo=UTC),
            )
        ],
    )
    no_account = await append_without_account(database_url, "legacy-import:1")
    log = [e for batch in [b async for b in pg_store.read_all()] for e in batch]
    assert log[-1].position == no_account

    relay = OutboxRelay(pg_store, nc, settings)
    with anyio.fail_after(15):
        async with running(relay):
            await relay.wait_caught_up(log[-1].position)
            # And what commits while it runs follows on.
            later = await append_leads(pg_store, 3)
            await relay.wait_caught_up(later[-1])
    log += [e for batch in [b async for b in pg_store.read_all(log[-1].position)] for e in batch]

    messages = await stream_messages(nc, settings)
    assert [int((m.headers or {})[HEADER_POSITION]) for m in messages] == [e.position for e in log]
    prefix = settings.subject_prefix
    expected_subjects = [f"{prefix}.events.{ACCOUNT}.lead.LeadStatusChanged"] * 2 + [
        f"{prefix}.events.{OTHER_ACCOUNT}.campaign.CampaignCreated",
        f"{prefix}.events.{ACCOUNT}.touch.TouchRunScheduled",
        f"{prefix}.events._.legacy.LeadStatusChanged",
    ]
    assert [m.subject for m in messages[:5]] == expected_subjects
    for msg, env in zip(messages, log, strict=True):
        headers = msg.headers or {}
        assert headers["Nats-Msg-Id"] == str(env.event_id)
        assert headers[HEADER_TYPE] == env.type
        assert headers[HEADER_STREAM] == env.stream_id
        assert msg.subject == f"{prefix}.events.{env.account_id or '_'}.{env.category}.{env.type}"
        assert msg.subject == event_subject(prefix, env)  # the Python definition consumers use
        published = envelope_decoder.decode(msg.data or b"")
        assert msgspec.structs.replace(published, data=env.data) == env
        assert published.event == env.event
    assert relay.stats.published == len(log) and relay.stats.duplicates == 0
    assert await load_checkpoint(pg_store.pool, relay.name) == log[-1].position


# --- (b) restart ---------------------------------------------------------------------------------


async def test_a_relay_stopped_mid_stream_and_started_again_publishes_everything_once_in_order(
    pg_store: PostgresEventStore, nc: NATS, settings: Settings, nats_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    first_batch = await append_leads(pg_store, 300)
    cut = first_batch[155]
    first_nc = await connect(nats_url, name="relay-first")
    try:
        first = small_relay(pg_store, first_nc, settings)
        with anyio.fail_after(15):
            async with anyio.create_task_group() as tg:

                async def die_at_the_cut(position: int) -> None:
                    # Killed in the middle of a batch: some of it sent, none of it acknowledged or checkpointed.
                    if position == cut:
                        tg.cancel_scope.cancel()

                after_each_publish(monkeypatch, first, die_at_the_cut)
                await tg.start(first.run)
            # What the dead process had sent reaches the server; then its connection goes.
            await first_nc.flush()
    finally:
        await first_nc.close()

    checkpoint = await load_checkpoint(pg_store.pool, "relay")
    assert checkpoint < cut < first_batch[-1]
    assert first.stats.position < cut

    second_batch = await append_leads(pg_store, 100)
    second = small_relay(pg_store, nc, settings)
    with anyio.fail_after(15):
        async with running(second):
            await second.wait_caught_up(second_batch[-1])

    assert await positions_in_stream(nc, settings) == await positions_in_log(pg_store)
    assert await load_checkpoint(pg_store.pool, "relay") == second_batch[-1]


# --- (c) a crash between publishing and checkpointing ------------------------------------------------


async def test_a_crash_before_the_checkpoint_is_written_resends_nothing(
    pg_store: PostgresEventStore, nc: NATS, settings: Settings
) -> None:
    published = await append_leads(pg_store, 50)
    first = small_relay(pg_store, nc, settings)
    with anyio.fail_after(15):
        async with running(first):
            await first.wait_caught_up(published[-1])
    # The process died after the stream had the events but before the checkpoint said so.
    await pg_store.pool.execute("update touchline.checkpoints set position = 0 where name = 'relay'")
    assert await load_checkpoint(pg_store.pool, "relay") == 0

    second = small_relay(pg_store, nc, settings)
    with anyio.fail_after(15):
        async with running(second):
            await second.wait_caught_up(published[-1])
            (more,) = await append_leads(pg_store, 1)
            await second.wait_caught_up(more)
    # It resumed after the last event in the stream: nothing was sent again (not even to be deduplicated).
    assert (second.stats.published, second.stats.duplicates) == (1, 0)
    assert await positions_in_stream(nc, settings) == [*published, more]
    assert await load_checkpoint(pg_store.pool, "relay") == more


# --- (d) NATS unreachable, then back ----------------------------------------------------------------


@pytest.fixture
async def own_nats(tmp_path: Path) -> AsyncIterator[NatsServer]:
    """A NATS server of this test's own, to stop and start again on the same port and store."""
    server = NatsServer(tmp_path / "nats")
    await anyio.to_thread.run_sync(server.start)
    try:
        yield server
    finally:
        await anyio.to_thread.run_sync(server.stop)


async def _restart(server: NatsServer) -> None:
    again = NatsServer(server.root, port=server.port)
    await anyio.to_thread.run_sync(again.start)
    assert again.port == server.port


async def test_a_relay_started_while_nats_is_down_retries_and_catches_up(
    pg_store: PostgresEventStore,
    settings: Settings,
    own_nats: NatsServer,
    relay_log: LogRecorder,
    bus_log: LogRecorder,
) -> None:
    settings = msgspec.structs.replace(settings, nats_url=own_nats.url)
    before = await append_leads(pg_store, 20)
    nc = await connect(own_nats.url, name="relay", reconnect_forever=True)
    try:
        await anyio.to_thread.run_sync(own_nats.stop)
        relay = small_relay(pg_store, nc, settings)
        with anyio.fail_after(20):
            async with running(relay):
                await relay_log.wait_for("relay_retry")
                during = await append_leads(pg_store, 20)
                await _restart(own_nats)
                await bus_log.wait_for("nats_reconnected")
                await relay.wait_caught_up(during[-1])
        assert relay.stats.retries >= 1
        assert await positions_in_stream(nc, settings) == [*before, *during]
    finally:
        await nc.close()


async def test_a_nats_restart_mid_run_loses_nothing_and_duplicates_nothing(
    pg_store: PostgresEventStore,
    settings: Settings,
    own_nats: NatsServer,
    bus_log: LogRecorder,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    settings = msgspec.structs.replace(settings, nats_url=own_nats.url)
    nc = await connect(own_nats.url, name="relay", reconnect_forever=True)
    try:
        first = await append_leads(pg_store, 30)
        relay = small_relay(pg_store, nc, settings)
        with anyio.fail_after(20):
            async with running(relay):
                await relay.wait_caught_up(first[-1])
                # The server goes down while the relay has a batch on its way and more to send.
                stopping = anyio.Event()

                async def stop_the_server_once(position: int) -> None:
                    if not stopping.is_set():
                        stopping.set()
                        await anyio.to_thread.run_sync(own_nats.stop)

                after_each_publish(monkeypatch, relay, stop_the_server_once)
                second = await append_leads(pg_store, 60)
                await stopping.wait()
                await bus_log.wait_for("nats_disconnected")
                await _restart(own_nats)
                await bus_log.wait_for("nats_reconnected")
                third = await append_leads(pg_store, 30)
                await relay.wait_caught_up(third[-1])
        assert await positions_in_stream(nc, settings) == [*first, *second, *third]
    finally:
        await nc.close()


class LossyLink:
    """A TCP hop in front of NATS that can swallow what the client sends and then cut the line.

    What a dying server or a broken network does to publishes already written to the socket:
    they are gone, and no acknowledgement will ever come for them.
    """

    def __init__(self, upstream: str, subject_prefix: str) -> None:
        parts = urlsplit(upstream)
        self._upstream = (parts.hostname or "127.0.0.1", parts.port or 4222)
        self._publish_marker = f"\r\nHPUB {subject_prefix}.events.".encode()
        self._swallowing = False
        self._swallowed = bytearray()
        self._changed = anyio.Event()
        self._lines: set[anyio.CancelScope] = set()
        self.port = 0

    @property
    def url(self) -> str:
        return f"nats://127.0.0.1:{self.port}"

    @property
    def publishes_swallowed(self) -> int:
        return (b"\r\n" + bytes(self._swallowed)).count(self._publish_marker)

    async def serve(self, *, task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
        async with await anyio.create_tcp_listener(local_host="127.0.0.1") as listener:
            self.port = listener.extra(SocketAttribute.local_port)
            task_status.started()
            await listener.serve(self._line)

    async def _line(self, client: SocketStream) -> None:
        with anyio.CancelScope() as scope:
            self._lines.add(scope)
            try:
                async with client, await anyio.connect_tcp(*self._upstream) as server, anyio.create_task_group() as tg:
                    tg.start_soon(self._client_to_server, client, server, tg.cancel_scope)
                    tg.start_soon(self._server_to_client, server, client)
            except* (anyio.BrokenResourceError, anyio.ClosedResourceError, OSError):
                pass  # one end went away: so does the line
            finally:
                self._lines.discard(scope)

    async def _client_to_server(self, client: SocketStream, server: SocketStream, line: anyio.CancelScope) -> None:
        async for chunk in client:
            if self._swallowing:
                self._swallowed.extend(chunk)
                self._changed.set()
                self._changed = anyio.Event()
            else:
                await server.send(chunk)
        line.cancel()  # the client hung up

    async def _server_to_client(self, server: SocketStream, client: SocketStream) -> None:
        async for chunk in server:
            await client.send(chunk)

    def swallow(self) -> None:
        self._swallowing = True

    async def wait_swallowed(self, publishes: int) -> None:
        while self.publishes_swallowed < publishes:
            await self._changed.wait()

    def cut(self) -> None:
        """Drop every open line (what was swallowed is lost); new lines carry traffic again."""
        self._swallowing = False
        for scope in list(self._lines):
            scope.cancel()


async def test_publishes_lost_on_a_broken_connection_are_sent_again_in_order(
    pg_store: PostgresEventStore, nc: NATS, settings: Settings, nats_url: str, bus_log: LogRecorder
) -> None:
    link = LossyLink(nats_url, settings.subject_prefix)
    async with anyio.create_task_group() as tg:
        await tg.start(link.serve)
        relay_nc = await connect(link.url, name="relay", reconnect_forever=True)
        try:
            relay = small_relay(pg_store, relay_nc, settings)
            with anyio.fail_after(20):
                async with running(relay):
                    first = await append_leads(pg_store, 20)
                    await relay.wait_caught_up(first[-1])

                    link.swallow()
                    lost = await append_leads_at_once(pg_store, 10)  # one commit: one batch for the relay
                    await link.wait_swallowed(len(lost))  # published, written out, and gone
                    link.cut()
                    await bus_log.wait_for("nats_reconnected")
                    after = await append_leads(pg_store, 10)
                    await relay.wait_caught_up(after[-1])
        finally:
            await relay_nc.close()
        tg.cancel_scope.cancel()
    assert await positions_in_stream(nc, settings) == [*first, *lost, *after]


# --- (e) two relays, one leader ------------------------------------------------------------------


async def run_until_cancelled(
    relay: OutboxRelay, *, task_status: TaskStatus[anyio.CancelScope] = anyio.TASK_STATUS_IGNORED
) -> None:
    """Run a relay; report, once it leads, the scope that stops it."""
    with anyio.CancelScope() as scope:
        async with anyio.create_task_group() as tg:
            await tg.start(relay.run)  # returns once it leads
            task_status.started(scope)


async def test_two_relays_on_one_log_one_leads_the_other_stands_by(
    pg_store: PostgresEventStore, nc: NATS, settings: Settings, nats_url: str
) -> None:
    standby_nc = await connect(nats_url, name="relay-standby")
    leader = small_relay(pg_store, nc, settings)
    standby = small_relay(pg_store, standby_nc, settings)
    try:
        with anyio.fail_after(20):
            async with anyio.create_task_group() as tg:
                leader_scope = await tg.start(run_until_cancelled, leader)
                standby_leads = anyio.Event()
                tg.start_soon(signal_when_leading, standby, standby_leads)
                first = await append_leads(pg_store, 40)
                await leader.wait_caught_up(first[-1])
                assert leader.stats.leader and not standby.stats.leader
                assert not standby_leads.is_set() and standby.stats.published == 0
                holders = await pg_store.pool.fetchval(
                    "select count(*) from pg_locks where locktype = 'advisory' and classid = $1 and granted "
                    "and database = (select oid from pg_database where datname = current_database())",
                    _LEADER_LOCK >> 32,
                )
                assert holders == 1

                # The leader goes away: the standby takes over where it stopped.
                leader_scope.cancel()
                await standby_leads.wait()
                second = await append_leads(pg_store, 40)
                await standby.wait_caught_up(second[-1])
                tg.cancel_scope.cancel()
    finally:
        await standby_nc.close()
    assert (standby.stats.published, standby.stats.duplicates) == (40, 0)
    assert await positions_in_stream(nc, settings) == [*first, *second]


async def signal_when_leading(relay: OutboxRelay, leading: anyio.Event) -> None:
    async with anyio.create_task_group() as tg:
        await tg.start(relay.run)  # returns once it leads
        leading.set()


async def test_a_relay_that_loses_its_leader_lock_stops_publishing_until_it_holds_it_again(
    pg_store: PostgresEventStore, nc: NATS, settings: Settings, database_url: str, relay_log: LogRecorder
) -> None:
    relay = small_relay(pg_store, nc, settings)
    other_process: asyncpg.Connection = await asyncpg.connect(database_url)
    try:
        with anyio.fail_after(20):
            async with running(relay):
                first = await append_leads(pg_store, 20)
                await relay.wait_caught_up(first[-1])
                # Its lock connection dies (failover, idle timeout, an operator) and the lock with it;
                # another process takes the lock at once.
                killed = await pg_store.pool.fetchval(
                    "select count(pg_terminate_backend(pid)) from pg_locks where locktype = 'advisory' "
                    "and classid = $1 and granted and database = "
                    "(select oid from pg_database where datname = current_database())",
                    _LEADER_LOCK >> 32,
                )
                assert killed == 1
                await other_process.execute("select pg_advisory_lock($1, hashtext($2))", _LEADER_LOCK >> 32, "relay")
                with anyio.move_on_after(10) as noticed:
                    await relay_log.wait_for("relay_retry")
                assert not noticed.cancelled_caught, "the relay never noticed it lost the lock: it leads beside another"
                assert not leads(relay)

                second = await append_leads(pg_store, 20)
                await other_process.close()  # the other leader goes: ours takes over again
                await relay.wait_caught_up(second[-1])
                assert leads(relay)
    finally:
        await other_process.close()
    assert await positions_in_stream(nc, settings) == [*first, *second]


# --- (f) a bus that is not there ---------------------------------------------------------------------


@pytest.mark.parametrize("reconnect_forever", [False, True])
async def test_connecting_to_a_dead_port_is_one_clear_error_naming_the_url(reconnect_forever: bool) -> None:
    url = f"nats://127.0.0.1:{free_port()}"
    with anyio.fail_after(10), pytest.raises(BusUnavailable, match=re.escape(f"cannot reach NATS at {url}")):
        await connect(url, reconnect_forever=reconnect_forever)


@pytest.mark.parametrize(
    ("failure", "logged"),
    [
        (asyncpg.InternalClientError("cannot switch to state 12; another operation (2) is in progress"), "relay_retry"),
        (RuntimeError("a bug nobody foresaw"), "relay_crashed"),
    ],
    ids=["broken-connection", "unforeseen"],
)
async def test_a_failure_inside_the_relay_never_ends_it_and_it_resumes_from_the_log(
    pg_store: PostgresEventStore,
    nc: NATS,
    settings: Settings,
    monkeypatch: pytest.MonkeyPatch,
    failure: Exception,
    logged: str,
) -> None:
    # What killed a relay-only process when PostgreSQL restarted under it: the process must live on.
    real = OutboxRelay._resume_position
    calls = 0

    async def failing_once(self: OutboxRelay) -> int:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise failure
        return await real(self)

    monkeypatch.setattr(OutboxRelay, "_resume_position", failing_once)
    positions = await append_leads(pg_store, 5)
    relay = OutboxRelay(pg_store, nc, settings)
    relay.crash_delay_s = 0.1
    with capture_logs() as logs, anyio.fail_after(15):
        async with running(relay):
            await relay.wait_caught_up(positions[-1])
    assert calls >= 2 and relay.stats.retries >= 1
    assert logged in [entry["event"] for entry in logs]
    assert len(await stream_messages(nc, settings)) == 5
