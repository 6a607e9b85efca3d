"""The actor runtime: actors fed by JetStream durable pull consumers, with exactly-once effects."""

from __future__ import annotations

import abc
import contextlib
import random
import zlib
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from datetime import datetime
from typing import ClassVar, Final
from uuid import UUID

import anyio
import msgspec
import nats.aio.subscription
import nats.errors
import structlog
from anyio.abc import TaskStatus
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream
from nats.aio.client import Client as NATS
from nats.aio.msg import Msg
from nats.js import JetStreamContext
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy
from nats.js.errors import NotFoundError

from actors.clock import Clock, SystemClock
from events.bus import HEADER_STREAM, ensure_stream
from events.catalog import (
    Event,
    EventParked,
    TimerCancelled,
    TimerScheduled,
    event_type,
    parked_stream,
    timer_category,
    timer_stream,
)
from events.envelope import Envelope, envelope_decoder
from events.errors import ConcurrencyError, ConfigError, LogError
from events.settings import Settings
from events.store import (
    ANY,
    NO_STREAM,
    AppendResult,
    EventStore,
    Expected,
    NewEvent,
    StreamAppend,
    caused_event_id,
    new_event_id,
)

log = structlog.get_logger("touchline.actors")

_NAME_CHARS: Final = frozenset("abcdefghijklmnopqrstuvwxyz0123456789_")
_CONSUMER_CHECK_S: Final = 10.0  # how often an actor that receives nothing checks its consumer is there


class Actor(abc.ABC):
    """A long-lived reactor to events. Subclasses name themselves and the events they handle.

    `handle` gets one event at a time (events of one stream in log order within a process) and
    reacts through its `Reaction`: everything it emits gets ids derived from the causing event,
    so handling the same event twice appends nothing new. The input is acknowledged only after
    `handle` returns.
    """

    name: ClassVar[str]
    handles: ClassVar[tuple[type[Event], ...]] = ()
    # Whole categories (every event of `touch-…` streams), including types newer than this code.
    categories: ClassVar[tuple[str, ...]] = ()
    # Whether the actor schedules timers: their TimerFired events come back to `handle`.
    timers: ClassVar[bool] = False
    max_attempts: ClassVar[int] = 5
    # How this actor's consumer delivers work, when the defaults do not fit (an actor that waits
    # on providers wants more handlers at once).
    consumer_settings: ClassVar[ConsumerSettings | None] = None

    async def start(self, ctx: ActorContext) -> None:  # noqa: B027 - optional hook
        """Called before any input, and again after each restart: rebuild state from the log here."""

    async def close(self) -> None:  # noqa: B027 - optional hook
        """Called when the actor stops (or crashed): release what `start` opened (HTTP sessions...)."""

    @abc.abstractmethod
    async def handle(self, event: Event, env: Envelope, reaction: Reaction) -> None:
        """React to one event; raise to have it redelivered (and parked after `max_attempts`)."""


class ActorContext(msgspec.Struct, kw_only=True):
    """What an actor works with: the log, the clock, its logger, the settings."""

    name: str
    store: EventStore
    clock: Clock
    settings: Settings
    log: structlog.stdlib.BoundLogger


class Reaction:
    """Appends on behalf of an actor reacting to one event, with deterministic event ids.

    The n-th event emitted while handling event E gets id uuid5(E.id, "<actor>:<key>:<n>"), so
    a redelivered E re-emits the same ids and the log keeps the first copy only. `key` names an
    emission when a handler's emissions could come in a different order on a second run.
    """

    def __init__(self, ctx: ActorContext, cause: Envelope | None) -> None:
        self.ctx = ctx
        self.cause = cause
        self._emitted = 0

    def event_id(self, key: str) -> UUID | None:
        """The id an emission under `key` gets (None without a cause: a fresh id)."""
        if self.cause is None:
            return None
        return caused_event_id(self.cause.event_id, f"{self.ctx.name}:{key}")

    def _new(self, event: Event, key: str | None) -> NewEvent:
        self._emitted += 1
        event_id = self.event_id(f"{key or '#'}:{self._emitted}")
        return NewEvent(event=event) if event_id is None else NewEvent(event=event, event_id=event_id)

    async def emit(
        self, stream_id: str, events: Sequence[Event], *, expected_version: Expected = ANY, key: str | None = None
    ) -> AppendResult:
        """Append to one stream, caused by (and correlated with) the event being handled."""
        (result,) = await self.emit_many(
            [StreamAppend(stream_id=stream_id, events=list(events), expected_version=expected_version)], key=key
        )
        return result

    async def emit_many(self, appends: Sequence[StreamAppend], *, key: str | None = None) -> list[AppendResult]:
        """Append to several streams atomically."""
        prepared = [
            StreamAppend(
                stream_id=a.stream_id,
                events=[e if isinstance(e, NewEvent) else self._new(e, key) for e in a.events],
                expected_version=a.expected_version,
                account_id=a.account_id,
            )
            for a in appends
        ]
        return await self.ctx.store.append_many(
            prepared,
            correlation_id=self.cause.correlation_id if self.cause else None,
            causation_id=self.cause.event_id if self.cause else None,
        )

    async def schedule(
        self, key: str, due_at: datetime, *, account_id: UUID | None = None, data: dict[str, str] | None = None
    ) -> UUID:
        """A durable timer: at `due_at` this actor gets a TimerFired for `key`. Returns its id."""
        if due_at.tzinfo is None:
            raise ValueError(f"timer {key!r}: due_at must be timezone-aware")
        timer_id = self.event_id(f"timer:{key}") or new_event_id()
        scheduled = TimerScheduled(
            timer_id=timer_id, actor=self.ctx.name, key=key, due_at=due_at, account_id=account_id, data=data or {}
        )
        await self.emit(timer_stream(self.ctx.name, timer_id), [scheduled], expected_version=NO_STREAM, key=key)
        return timer_id

    async def cancel_timer(self, timer_id: UUID, key: str, *, account_id: UUID | None = None) -> bool:
        """Cancel a timer that has not fired; False when it already fired or was cancelled."""
        cancelled = TimerCancelled(timer_id=timer_id, actor=self.ctx.name, key=key, account_id=account_id)
        try:
            await self.emit(timer_stream(self.ctx.name, timer_id), [cancelled], expected_version=1, key=key)
        except ConcurrencyError:
            return False
        return True


class ActorStats(msgspec.Struct, kw_only=True):
    handled: int = 0
    failed: int = 0
    parked: int = 0
    redelivered: int = 0
    in_flight: int = 0
    lag: int | None = None  # messages the consumer has not yet delivered to anyone
    ack_pending: int | None = None  # delivered, not yet acknowledged (by any process)
    state: str = "new"


class ConsumerSettings(msgspec.Struct, frozen=True, kw_only=True):
    """How an actor's durable consumer delivers work."""

    ack_wait_s: float = 30.0
    max_ack_pending: int = 256
    concurrency: int = 8  # handlers at once in one process (one stream's events stay in order)
    fetch_batch: int = 64
    fetch_timeout_s: float = 1.0
    retry_base_s: float = 0.5  # redelivery delay after a failure: base * 2**(attempt-1), jittered
    retry_max_s: float = 30.0
    stats_interval_s: float = 5.0


def consumer_name(settings: Settings, actor: Actor | type[Actor]) -> str:
    return actor.name


def consumer_filters(settings: Settings, actor: Actor | type[Actor]) -> list[str]:
    prefix = f"{settings.subject_prefix}.events"
    subjects = [f"{prefix}.*.*.{event_type(cls)}" for cls in actor.handles]
    subjects += [f"{prefix}.*.{category}.>" for category in actor.categories]
    if actor.timers:
        subjects.append(f"{prefix}.*.{timer_category(actor.name)}.TimerFired")
    return subjects


def check_actor(actor: Actor | type[Actor]) -> None:
    name = getattr(actor, "name", None)
    if not isinstance(name, str) or not name or not set(name) <= _NAME_CHARS or not name[0].isalpha():
        raise ConfigError(f"actor name {name!r}: use lower-case letters, digits and _, starting with a letter")
    if not actor.handles and not actor.categories and not actor.timers:
        raise ConfigError(f"actor {name!r} handles nothing: declare `handles`, `categories` or `timers`")


class ActorRunner:
    """Runs one actor in this process on its shared durable consumer.

    Several processes running the same actor share the consumer, and so the work. Messages of
    one stream go to the same handler slot, in order; a failed message is redelivered with
    backoff and parked after `max_attempts`; nothing is acknowledged before `handle` returned.
    """

    def __init__(
        self,
        actor: Actor,
        *,
        store: EventStore,
        nc: NATS,
        settings: Settings,
        clock: Clock | None = None,
        consumer: ConsumerSettings | None = None,
    ) -> None:
        check_actor(actor)
        self.actor = actor
        self.name = actor.name
        self.store = store
        self.nc = nc
        self.js: JetStreamContext = nc.jetstream()
        self.settings = settings
        self.clock = clock or SystemClock()
        config = consumer or actor.consumer_settings or ConsumerSettings()
        if consumer is None and settings.ack_wait_s is not None:  # the deployment's TOUCHLINE_ACK_WAIT_S
            config = msgspec.structs.replace(config, ack_wait_s=settings.ack_wait_s)
        self.config = config
        self.stats = ActorStats()
        self.log = log.bind(actor=self.name)
        self.ctx = ActorContext(name=self.name, store=store, clock=self.clock, settings=settings, log=self.log)
        self._stopping = anyio.Event()
        self._idle = anyio.Event()
        self._idle.set()
        self._slot_freed = anyio.Event()
        self._progress = anyio.Event()
        self._fetching_done = anyio.Event()
        self._pull_open_until = 0.0
        self._scope: anyio.CancelScope | None = None
        self._working: dict[int, tuple[Msg, float]] = {}  # in the handler now: message, since (or last beat)

    # --- the consumer ----------------------------------------------------------------------

    async def ensure_consumer(self) -> None:
        await ensure_stream(self.js, self.settings)
        filters = consumer_filters(self.settings, self.actor)
        config = ConsumerConfig(
            durable_name=consumer_name(self.settings, self.actor),
            ack_policy=AckPolicy.EXPLICIT,
            deliver_policy=DeliverPolicy.ALL,
            ack_wait=self.config.ack_wait_s,
            max_ack_pending=self.config.max_ack_pending,
            max_deliver=-1,  # the runtime parks poison events itself, as events
            **({"filter_subject": filters[0]} if len(filters) == 1 else {"filter_subjects": filters}),
        )
        await self.js.add_consumer(self.settings.stream_name, config)

    async def _ensure_consumer_exists(self) -> None:
        try:
            await self.js.consumer_info(self.settings.stream_name, consumer_name(self.settings, self.actor))
        except NotFoundError:
            self.log.warning("actor_consumer_missing", note="recreating the stream's consumer")
            try:
                await self.ensure_consumer()
            except (nats.errors.Error, TimeoutError) as exc:
                self.log.warning("actor_consumer_recreate_failed", error=f"{type(exc).__name__}: {exc}")
            else:
                self.log.info("actor_consumer_recreated")
        except (nats.errors.Error, TimeoutError):
            pass  # NATS is away: the next look will tell

    async def refresh_stats(self) -> ActorStats:
        """Ask the server how far behind the consumer is (shared by every process)."""
        try:
            info = await self.js.consumer_info(self.settings.stream_name, consumer_name(self.settings, self.actor))
        except (NotFoundError, nats.errors.Error, TimeoutError):
            return self.stats
        self.stats.lag = info.num_pending
        self.stats.ack_pending = info.num_ack_pending
        return self.stats

    # --- running ----------------------------------------------------------------------------

    async def run(self, *, task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
        """Start the actor, then handle its input until `stop` (or cancellation)."""
        from actors.timers import TimerService  # the timer service appends through this module's types

        self.stats.state = "starting"
        await self.ensure_consumer()
        await self.actor.start(self.ctx)
        puller = _Puller(self.nc, self.settings.stream_name, consumer_name(self.settings, self.actor))
        await puller.open()
        slots = max(1, self.config.concurrency)
        try:
            with anyio.CancelScope() as self._scope:
                async with anyio.create_task_group() as tg:
                    mailboxes: list[MemoryObjectSendStream[Msg]] = []
                    # Room for every message in flight: the puller hands them over without waiting.
                    room = 2 * slots * self.config.fetch_batch
                    for _ in range(slots):
                        send, receive = anyio.create_memory_object_stream[Msg](room)
                        mailboxes.append(send)
                        tg.start_soon(self._work, receive)
                    if self.actor.timers:
                        await tg.start(TimerService(self.store, self.name, self.clock).run)
                    tg.start_soon(self._refresh_periodically)
                    tg.start_soon(self._beat)
                    self.stats.state = "running"
                    self.log.info("actor_started", filters=consumer_filters(self.settings, self.actor))
                    task_status.started()
                    async with contextlib.AsyncExitStack() as stack:
                        for send in mailboxes:
                            await stack.enter_async_context(send)
                        try:
                            await self._fetch(puller, mailboxes)
                        finally:
                            self._fetching_done.set()
                    await self._wait_idle()
                    tg.cancel_scope.cancel()
        finally:
            with anyio.CancelScope(shield=True):
                with contextlib.suppress(Exception):
                    await puller.close()
                with contextlib.suppress(Exception):
                    await self.nc.flush(timeout=2)  # acknowledgements out before the connection goes
            with anyio.CancelScope(shield=True):
                try:
                    await self.actor.close()
                except Exception as exc:
                    self.log.warning("actor_close_failed", error=f"{type(exc).__name__}: {exc}")
            self.stats.state = "stopped"
            self.log.info("actor_stopped", handled=self.stats.handled, parked=self.stats.parked)

    async def stop(self, grace: float = 10.0) -> None:
        """Stop taking work; give in-flight handlers `grace` seconds, then cancel (and release) them."""
        self.stats.state = "stopping"
        self._stopping.set()
        self._slot_freed.set()
        with anyio.move_on_after(grace):
            await self._wait_idle()
        if self._scope is not None and self.stats.in_flight:
            self.log.warning("actor_stop_forced", in_flight=self.stats.in_flight)
            self._scope.cancel()

    async def wait_until(self, condition: Callable[[ActorStats], bool]) -> ActorStats:
        """Until the stats satisfy `condition` (woken by each input handled, failed or parked)."""
        while not condition(self.stats):
            await self._progress.wait()
        return self.stats

    def _moved(self) -> None:
        self._progress.set()
        self._progress = anyio.Event()

    async def _wait_idle(self) -> None:
        while self.stats.in_flight:
            await self._idle.wait()

    async def _fetch(self, puller: _Puller, mailboxes: list[MemoryObjectSendStream[Msg]]) -> None:
        limit = len(mailboxes) * self.config.fetch_batch

        def deliver(msg: Msg) -> bool:
            key = (msg.headers or {}).get(HEADER_STREAM, msg.subject)
            try:
                mailboxes[zlib.crc32(key.encode()) % len(mailboxes)].send_nowait(msg)
            except (anyio.WouldBlock, anyio.ClosedResourceError, anyio.BrokenResourceError):
                return False  # stopping (or, never expected, full): the puller hands it back
            self._taken()
            return True

        puller.deliver = deliver
        puller.release = self._release
        last_check = anyio.current_time()
        while not self._stopping.is_set():
            free = limit - self.stats.in_flight
            if free <= 0:  # bounded: wait for a handler to finish before taking more
                self._slot_freed = anyio.Event()
                await self._slot_freed.wait()
                continue
            # The server keeps this pull request open until it expires, even if we stop waiting.
            self._pull_open_until = anyio.current_time() + self.config.fetch_timeout_s + 0.05
            await puller.pull(min(free, self.config.fetch_batch), self.config.fetch_timeout_s, self._stopping)
            now = anyio.current_time()
            if puller.no_responders or now - last_check > _CONSUMER_CHECK_S:
                # A NATS that lost its store (or an operator) can take the consumer away from a
                # running actor: nothing would ever arrive again. Look, and make it again.
                last_check = now
                puller.no_responders = False
                await self._ensure_consumer_exists()

    async def _release(self, msg: Msg) -> None:
        """Hand a message back for another process, once no pull request of ours is still open.

        Handed back earlier, the server could redeliver it straight into our own pending pull,
        where nobody reads it any more, and it would wait out the whole ack_wait.
        """
        with anyio.CancelScope(shield=True), contextlib.suppress(Exception):
            with anyio.move_on_after(self.config.fetch_timeout_s + 5):
                await self._fetching_done.wait()
            await anyio.sleep(max(0.0, self._pull_open_until - anyio.current_time()))
            await msg.nak()

    def _taken(self) -> None:
        self.stats.in_flight += 1
        if self._idle.is_set():
            self._idle = anyio.Event()

    def _released(self) -> None:
        self.stats.in_flight -= 1
        self._slot_freed.set()
        if not self.stats.in_flight:
            self._idle.set()

    async def _work(self, mailbox: MemoryObjectReceiveStream[Msg]) -> None:
        async with mailbox:
            async for msg in mailbox:
                try:
                    if self._stopping.is_set():
                        await self._release(msg)  # not started: hand it back to another process
                    else:
                        await self._process(msg)
                finally:
                    self._released()

    async def _refresh_periodically(self) -> None:
        while True:
            await self.refresh_stats()
            await anyio.sleep(self.config.stats_interval_s)

    # --- one message ------------------------------------------------------------------------

    async def _process(self, msg: Msg) -> None:
        attempts = msg.metadata.num_delivered
        if attempts > 1:
            self.stats.redelivered += 1
        try:
            env = envelope_decoder.decode(msg.data)
        except msgspec.DecodeError as exc:
            await self._park(msg, None, attempts, f"not a Touchline event envelope: {exc}")
            return
        if attempts > self.actor.max_attempts:
            # The handler never reported back: the process died or hung on it each time.
            await self._park(msg, env, attempts, f"delivered {attempts} times without being acknowledged")
            return
        try:
            event = env.event
        except LogError as undecodable:  # an unknown (newer) type, or data this code cannot read
            await self._park(msg, env, attempts, f"cannot decode: {undecodable}")
            return
        try:
            async with self._heartbeat(msg):
                await self.actor.handle(event, env, Reaction(self.ctx, env))
        except Exception as caught:
            failure = _unwrap(caught)  # a handler's own task group may wrap what it raised
            self.stats.failed += 1
            reason = f"{type(failure).__name__}: {failure}"
            if attempts >= self.actor.max_attempts:
                await self._park(msg, env, attempts, reason)
                return
            delay = min(self.config.retry_max_s, self.config.retry_base_s * 2 ** (attempts - 1))
            delay *= 0.5 + random.random()
            self.log.warning(
                "actor_handle_failed",
                event_type=env.type,
                position=env.position,
                attempt=attempts,
                retry_in_s=round(delay, 2),
                error=reason,
            )
            await msg.nak(delay=delay)
            self._moved()
            return
        except BaseException:
            await self._release(msg)  # cancelled mid-way (a forced stop): let another process have it
            raise
        await msg.ack()
        self.stats.handled += 1
        self._moved()

    @contextlib.asynccontextmanager
    async def _heartbeat(self, msg: Msg) -> AsyncIterator[None]:
        """While the handler works, `_beat` tells the server it is still at it (no redelivery meanwhile)."""
        self._working[id(msg)] = (msg, anyio.current_time())
        try:
            yield
        finally:
            self._working.pop(id(msg), None)

    async def _beat(self) -> None:
        """One task for every handler: each message handled for longer than a third of the ack
        wait gets an in-progress signal, every third of the ack wait, until it is done."""
        period = self.config.ack_wait_s / 3
        while True:
            await anyio.sleep(period / 2)
            due = anyio.current_time() - period
            for msg, started in list(self._working.values()):
                if started <= due:
                    with contextlib.suppress(Exception):
                        await msg.in_progress()
            # Those just signalled count from now.
            now = anyio.current_time()
            for key, (msg, started) in list(self._working.items()):
                if started <= due:
                    self._working[key] = (msg, now)

    async def _park(self, msg: Msg, env: Envelope | None, attempts: int, reason: str) -> None:
        cause_id = env.event_id if env else _msg_uuid(msg)
        parked = EventParked(
            actor=self.name,
            parked_event_id=cause_id,
            position=env.position if env else None,
            stream_id=env.stream_id if env else (msg.headers or {}).get(HEADER_STREAM),
            event_type=env.type if env else None,
            attempts=attempts,
            reason=reason,
            account_id=env.account_id if env else None,
        )
        new = (
            NewEvent(event=parked)
            if cause_id is None
            else NewEvent(event=parked, event_id=caused_event_id(cause_id, f"{self.name}:parked"))
        )
        await self.store.append(
            parked_stream(self.name),
            [new],
            correlation_id=env.correlation_id if env else None,
            causation_id=cause_id,
        )
        await msg.term()
        self.stats.parked += 1
        self._moved()
        self.log.error(
            "event_parked",
            event_type=parked.event_type,
            position=parked.position,
            stream=parked.stream_id,
            attempts=attempts,
            reason=reason,
        )


class _Puller:
    """Pull requests to a durable consumer, answered into a subscription of our own.

    nats-py's `fetch` hands a batch over one message per event-loop turn (a `wait_for` each);
    on a busy loop that caps an actor's intake at a few hundred messages a second. Here the
    messages of a batch arrive through a subscription callback that does not yield, so a batch
    reaches the mailboxes in one turn. The wire protocol is JetStream's own: a request with
    `batch` and `expires` on `$JS.API.CONSUMER.MSG.NEXT.<stream>.<consumer>`; the server
    answers with up to `batch` messages, or a status (408 expired, 409 limits) that ends it.
    """

    def __init__(self, nc: NATS, stream: str, consumer: str) -> None:
        self.nc = nc
        self.subject = f"$JS.API.CONSUMER.MSG.NEXT.{stream}.{consumer}"
        self.inbox = nc.new_inbox()
        self.deliver: Callable[[Msg], bool] | None = None
        self.release: Callable[[Msg], Awaitable[None]] | None = None
        self._sub: nats.aio.subscription.Subscription | None = None
        self._wanted = 0
        self._done = anyio.Event()
        self._throttled = False
        self.no_responders = False

    async def open(self) -> None:
        self._sub = await self.nc.subscribe(self.inbox, cb=self._on_message)

    async def close(self) -> None:
        if self._sub is not None:
            await self._sub.unsubscribe()
            self._sub = None

    async def _on_message(self, msg: Msg) -> None:
        status = (msg.headers or {}).get("Status") if not msg.data else None
        if status is not None:
            if status != "100":  # 100: a heartbeat; 404/408: nothing (more) now; 409: a limit
                self._throttled = status == "409"
                # 503: nobody answers the request: the stream (or the consumer) is gone.
                self.no_responders = self.no_responders or status == "503"
                self._done.set()
            return
        assert self.deliver is not None and self.release is not None
        self._wanted -= 1
        if not self.deliver(msg):
            await self.release(msg)
        if self._wanted <= 0:
            self._done.set()

    async def pull(self, batch: int, expires_s: float, stopping: anyio.Event) -> None:
        """Ask for up to `batch` messages, waiting at most `expires_s` for them to come."""
        self._wanted, self._done, self._throttled = batch, anyio.Event(), False
        request = msgspec.json.encode({"batch": batch, "expires": int(expires_s * 1e9)})
        await self.nc.publish(self.subject, request, reply=self.inbox)
        with anyio.move_on_after(expires_s + 0.5):  # a request lost on a reconnect: ask again
            async with anyio.create_task_group() as race:

                async def answered() -> None:
                    await self._done.wait()
                    race.cancel_scope.cancel()

                async def stopped() -> None:
                    await stopping.wait()
                    race.cancel_scope.cancel()

                race.start_soon(answered)
                race.start_soon(stopped)
        if self._throttled:
            await anyio.sleep(0.05)  # the server refuses more for now (max ack pending): breathe
        elif self.no_responders:
            await anyio.sleep(0.5)  # not spinning while the consumer is recreated


def _unwrap(exc: BaseException) -> BaseException:
    while isinstance(exc, BaseExceptionGroup) and len(exc.exceptions) == 1:
        exc = exc.exceptions[0]
    return exc


def _msg_uuid(msg: Msg) -> UUID | None:
    try:
        return UUID((msg.headers or {}).get("Nats-Msg-Id", ""))
    except ValueError:
        return None
