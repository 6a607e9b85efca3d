"""Commands on the bus: a service sends `{prefix}.commands.{account}.{name}` and gets the events back.

A command is a NATS request whose payload is a JSON object of the command's fields; it is
carried out by the same command code as the HTTP API and answered with a JSON object:

    {"ok": true, "command": "campaign.pause", "command_id": "…", "replayed": false,
     "result": {"changed": true}, "events": [{"position": …, "stream_id": …, "type": …, "data": {…}}]}
    {"ok": false, "command": "campaign.pause", "command_id": "…", "error": "…", "field": "campaign_id"}

`command_id` (a UUID in the payload, else the `Nats-Msg-Id` header, else a fresh one) is the
correlation id of every event the command appends, and their ids derive from it. So a command
sent again (a timeout, a retry) is not carried out twice: the events it produced the first time
are found by its correlation id and sent back with `"replayed": true`.

Several processes may run the `commands` role: they form one NATS queue group, so each command
is handled once. A malformed command (not JSON, an unknown name or field, a wrong type, an
account that is not a UUID) is refused with a message saying what was wrong, and nothing is
appended. Which services may send which account's commands is NATS's to say: give each service
a NATS user whose publish permissions name its account's subjects.
"""

from __future__ import annotations

import contextlib
import re
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from typing import Any, Final
from uuid import UUID

import anyio
import msgspec
import structlog
from anyio.abc import TaskStatus
from nats.aio.client import Client as NATS
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription

from actors.cadence import suppress_lead
from actors.campaigns import Campaigns, CampaignState, StepSpec
from actors.crawl import lead_id_for
from actors.dispatch import requeue
from actors.programs import Programs
from events.catalog import LeadIngested, lead_stream
from events.envelope import Envelope
from events.errors import CommandRejected, ConcurrencyError, LogError, NotFound
from events.postgres import PostgresEventStore
from events.settings import Settings
from events.store import NO_STREAM, AppendResult, EventFilter, EventStore, NewEvent, StreamAppend, VerifyReport
from gateways.http import has_nul

log = structlog.get_logger("touchline.commands")

QUEUE: Final = "touchline-commands"
MAX_IN_FLIGHT: Final = 32
MAX_EVENTS_ANSWERED: Final = 200
_SOURCE: Final = re.compile(r"^[a-z][a-z0-9_]{0,39}$")
_PHONE: Final = re.compile(r"^\+[1-9][0-9]{7,14}$")
_EMAIL: Final = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


# --- the command bodies ------------------------------------------------------------------------


class _Body(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    command_id: UUID | None = None


class CreateCampaign(_Body, kw_only=True, forbid_unknown_fields=True):
    campaign_key: str
    name: str
    steps: list[StepSpec]
    activate: bool = False
    allow_concurrent: bool = False


class CampaignSwitch(_Body, kw_only=True, forbid_unknown_fields=True):
    campaign_id: UUID
    reason: str | None = None


class PauseAll(_Body, kw_only=True, forbid_unknown_fields=True):
    reason: str | None = None


class IngestLead(_Body, kw_only=True, forbid_unknown_fields=True):
    source: str
    external_id: str
    phone: str | None = None
    email: str | None = None
    name: str | None = None
    city: str | None = None
    country: str = "US"
    url: str | None = None
    title: str | None = None
    price: int | None = None
    body: str | None = None


class SuppressLead(_Body, kw_only=True, forbid_unknown_fields=True):
    lead_id: UUID
    reason: str


class StartProgram(_Body, kw_only=True, forbid_unknown_fields=True):
    program: str
    city: str
    override_routing: bool = False
    confirm: bool = False
    by: str | None = None


class StopProgram(_Body, kw_only=True, forbid_unknown_fields=True):
    program: str
    city: str
    by: str | None = None


class RequeueTouch(_Body, kw_only=True, forbid_unknown_fields=True):
    touch_run_id: UUID
    by: str
    reason: str | None = None


# --- the store a command writes through --------------------------------------------------------


class CommandScope(EventStore):
    """The store as one command sees it: every append carries the command's correlation id, and
    the n-th event it appends gets the id uuid5(command_id, n), so carrying it out again appends
    nothing new."""

    def __init__(self, inner: PostgresEventStore, command_id: UUID) -> None:
        self.inner = inner
        self.command_id = command_id
        self._count = 0

    @property
    def pool(self) -> Any:
        return self.inner.pool

    async def append_many(
        self,
        appends: Sequence[StreamAppend],
        *,
        correlation_id: UUID | None = None,
        causation_id: UUID | None = None,
    ) -> list[AppendResult]:
        scoped = []
        for ap in appends:
            events = []
            for item in ap.events:
                self._count += 1
                event = item.event if isinstance(item, NewEvent) else item
                events.append(NewEvent(event=event, event_id=uuid.uuid5(self.command_id, str(self._count))))
            scoped.append(msgspec.structs.replace(ap, events=events))
        return await self.inner.append_many(scoped, correlation_id=self.command_id, causation_id=causation_id)

    async def read_stream(self, stream_id: str, *, from_version: int = 1, limit: int | None = None) -> list[Envelope]:
        return await self.inner.read_stream(stream_id, from_version=from_version, limit=limit)

    async def read_streams(self, stream_ids: Sequence[str]) -> dict[str, list[Envelope]]:
        return await self.inner.read_streams(stream_ids)

    def read_all(
        self, from_position: int = 0, *, batch_size: int = 1000, filter: EventFilter | None = None
    ) -> AsyncIterator[list[Envelope]]:
        return self.inner.read_all(from_position, batch_size=batch_size, filter=filter)

    def tail(
        self,
        from_position: int = 0,
        *,
        batch_size: int = 1000,
        filter: EventFilter | None = None,
        pace_s: float = 0.0,
    ) -> AsyncIterator[list[Envelope]]:
        return self.inner.tail(from_position, batch_size=batch_size, filter=filter, pace_s=pace_s)

    async def stream_version(self, stream_id: str) -> int:
        return await self.inner.stream_version(stream_id)

    async def head_position(self) -> int:
        return await self.inner.head_position()

    async def verify(self) -> VerifyReport:
        return await self.inner.verify()


# --- carrying commands out ---------------------------------------------------------------------

Handler = Callable[[CommandScope, UUID, Any], Awaitable[dict[str, Any]]]


def _campaign(state: CampaignState) -> dict[str, Any]:
    return {
        "campaign_id": str(state.campaign_id),
        "campaign_key": state.campaign_key,
        "name": state.name,
        "is_active": state.is_active,
        "allow_concurrent": state.allow_concurrent,
        "steps": msgspec.to_builtins(state.steps),
    }


async def _create_campaign(store: CommandScope, account: UUID, body: CreateCampaign) -> dict[str, Any]:
    campaigns = Campaigns(store)
    created = await campaigns.create(
        account,
        campaign_key=body.campaign_key,
        name=body.name,
        steps=body.steps,
        allow_concurrent=body.allow_concurrent,
        campaign_id=uuid.uuid5(store.command_id, "campaign"),  # the same campaign if it is sent again
    )
    if body.activate:
        await campaigns.activate(account, created.campaign_id, reason="activated at creation")
    return _campaign(await campaigns.get(account, created.campaign_id))


async def _activate(store: CommandScope, account: UUID, body: CampaignSwitch) -> dict[str, Any]:
    return {"changed": await Campaigns(store).activate(account, body.campaign_id, reason=body.reason)}


async def _pause(store: CommandScope, account: UUID, body: CampaignSwitch) -> dict[str, Any]:
    return {"changed": await Campaigns(store).pause(account, body.campaign_id, reason=body.reason)}


async def _pause_all(store: CommandScope, account: UUID, body: PauseAll) -> dict[str, Any]:
    paused = await Campaigns(store).pause_all(account, reason=body.reason or "pause all running")
    return {"paused": [str(c) for c in paused]}


def _text(command: str, field: str, value: str | None, most: int) -> str | None:
    if value is None:
        return None
    value = value.strip()
    if len(value) > most:
        raise CommandRejected(command, f"at most {most} characters", field=field)
    return value or None


async def _ingest(store: CommandScope, account: UUID, body: IngestLead) -> dict[str, Any]:
    command = "lead.ingest"
    if not _SOURCE.match(body.source):
        raise CommandRejected(command, "a lower-case name of letters, digits and _, e.g. website", field="source")
    external_id = _text(command, "external_id", body.external_id, 200)
    if not external_id:
        raise CommandRejected(command, "the lead's id at its source is required", field="external_id")
    phone = _text(command, "phone", body.phone, 16)
    if phone is not None and not _PHONE.match(phone):
        raise CommandRejected(command, f"{phone!r} is not an E.164 number such as +13055550123", field="phone")
    email = _text(command, "email", body.email, 254)
    if email is not None and not _EMAIL.match(email):
        raise CommandRejected(command, f"{email!r} is not an email address", field="email")
    if phone is None and email is None:
        raise CommandRejected(command, "a lead needs a phone or an email to be reached", field="phone")
    if body.price is not None and not 0 <= body.price <= 10_000_000:
        raise CommandRejected(command, "a price between 0 and 10,000,000", field="price")
    lead_id = lead_id_for(account, body.source, external_id)
    ingested = LeadIngested(
        lead_id=lead_id,
        account_id=account,
        source=body.source,
        external_id=external_id,
        country=(_text(command, "country", body.country, 2) or "US").upper(),
        city=_text(command, "city", body.city, 80),
        url=_text(command, "url", body.url, 2000),
        title=_text(command, "title", body.title, 300),
        price=body.price,
        body=_text(command, "body", body.body, 20_000),
        phone=phone,
        email=email,
        name=_text(command, "name", body.name, 200),
    )
    try:
        await store.append(lead_stream(lead_id), [ingested], expected_version=NO_STREAM)
    except ConcurrencyError:
        return {"lead_id": str(lead_id), "created": False}  # once per (account, source, external id)
    return {"lead_id": str(lead_id), "created": True}


async def _suppress(store: CommandScope, account: UUID, body: SuppressLead) -> dict[str, Any]:
    reason = _text("lead.suppress", "reason", body.reason, 500)
    if not reason:
        raise CommandRejected("lead.suppress", "say why (it is kept with the lead)", field="reason")
    changed = await suppress_lead(store, account, body.lead_id, reason)
    if changed is None:
        raise CommandRejected("lead.suppress", f"no lead {body.lead_id} in this account", field="lead_id")
    return {"changed": changed}


async def _start_program(store: CommandScope, account: UUID, body: StartProgram) -> dict[str, Any]:
    result = await Programs(store).start(
        account,
        body.program,
        body.city,
        override_routing=body.override_routing,
        confirm=body.confirm,
        started_by=body.by,
    )
    return msgspec.to_builtins(result)  # type: ignore[no-any-return]


async def _stop_program(store: CommandScope, account: UUID, body: StopProgram) -> dict[str, Any]:
    result = await Programs(store).stop(account, body.program, body.city, stopped_by=body.by)
    return msgspec.to_builtins(result)  # type: ignore[no-any-return]


async def _requeue(store: CommandScope, account: UUID, body: RequeueTouch) -> dict[str, Any]:
    by = _text("touch.requeue", "by", body.by, 200)
    if not by:
        raise CommandRejected("touch.requeue", "say who requeues it", field="by")
    version = await requeue(store, account, body.touch_run_id, by=by, reason=body.reason)
    return {"touch_run_id": str(body.touch_run_id), "version": version}


COMMANDS: Final[dict[str, tuple[type[_Body], Handler]]] = {
    "campaign.create": (CreateCampaign, _create_campaign),
    "campaign.activate": (CampaignSwitch, _activate),
    "campaign.pause": (CampaignSwitch, _pause),
    "campaign.pause_all": (PauseAll, _pause_all),
    "lead.ingest": (IngestLead, _ingest),
    "lead.suppress": (SuppressLead, _suppress),
    "program.start": (StartProgram, _start_program),
    "program.stop": (StopProgram, _stop_program),
    "touch.requeue": (RequeueTouch, _requeue),
}


class Refused(Exception):
    """A command that cannot be carried out as sent: the message and the field say why."""

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field


_AT_PATH: Final = re.compile(r"at `\$\.([A-Za-z0-9_.\[\]]+)`")


def parse_subject(prefix: str, subject: str) -> tuple[UUID, str]:
    """`{prefix}.commands.{account}.{name}` → (account, name); a Refused naming what is wrong."""
    head = f"{prefix}.commands."
    if not subject.startswith(head):
        raise Refused(f"commands go to {head}<account>.<name>, not {subject}")
    account_text, _, name = subject[len(head) :].partition(".")
    try:
        account = UUID(account_text)
    except ValueError:
        raise Refused(f"the subject's account {account_text!r} is not a UUID", field="account") from None
    return account, name


def parse_body(name: str, data: bytes) -> _Body:
    body_type, _ = COMMANDS[name]
    if not data.strip():
        data = b"{}"
    try:
        return msgspec.json.decode(data, type=body_type)
    except msgspec.ValidationError as exc:
        text = str(exc)
        found = _AT_PATH.search(text)
        raise Refused(f"{name}: {text}", field=found.group(1) if found else None) from None
    except msgspec.DecodeError as exc:
        raise Refused(f"{name}: the payload is not a JSON object: {exc}") from None


def _event(env: Envelope) -> dict[str, Any]:
    return {
        "position": env.position,
        "stream_id": env.stream_id,
        "version": env.version,
        "event_id": str(env.event_id),
        "type": env.type,
        "recorded_at": env.recorded_at.isoformat(),
        "data": msgspec.to_builtins(env.event),
    }


def command_id_from(raw: str | None, kind: str) -> UUID | None:
    """A `Nats-Msg-Id` or `Idempotency-Key` as a command id: itself when a UUID, else derived from it."""
    if not raw or not raw.strip():
        return None
    try:
        return UUID(raw.strip())
    except ValueError:
        return uuid.uuid5(uuid.NAMESPACE_URL, f"{kind}:{raw.strip()}")


class Commands:
    """Carries out commands by name for an account: the bus service and the HTTP API share it."""

    def __init__(self, store: PostgresEventStore) -> None:
        self.store = store
        self.handled = 0
        self.refused = 0

    async def carry_out(self, account: UUID, name: str, data: bytes, given_id: UUID | None = None) -> dict[str, Any]:
        """One command: what it did and the events it appended, or why it was refused."""
        command_id: UUID | None = None
        try:
            if name not in COMMANDS:
                raise Refused(f"unknown command {name!r}; known: {', '.join(sorted(COMMANDS))}", field="command")
            if has_nul(data):  # refused by name, before anything reaches PostgreSQL
                raise Refused(f"{name}: text may not contain NUL characters (\\u0000)")
            body = parse_body(name, data)
            given = body.command_id or given_id
            command_id = given or uuid.uuid4()
            earlier = await self._events(command_id) if given else []  # a fresh id has no history
            if earlier:
                if earlier[0].account_id != account:
                    raise Refused(f"command id {command_id} was used for another account", field="command_id")
                self.handled += 1
                return self._ok(name, command_id, None, earlier, replayed=True)
            _, handler = COMMANDS[name]
            result = await handler(CommandScope(self.store, command_id), account, body)
            self.handled += 1
            log.info("command_handled", command=name, command_id=str(command_id), account=str(account))
            return self._ok(name, command_id, result, await self._events(command_id), replayed=False)
        except Refused as exc:
            return self._refused(name, command_id, exc.message, exc.field)
        except NotFound as exc:
            return self._refused(name, command_id, str(exc), exc.field, not_found=True)
        except CommandRejected as exc:
            return self._refused(name, command_id, str(exc), exc.field)
        except ConcurrencyError as exc:
            return self._refused(name, command_id, f"{exc}; the state changed meanwhile: send it again", None)
        except LogError as exc:
            return self._refused(name, command_id, str(exc), None)

    async def _events(self, command_id: UUID) -> list[Envelope]:
        return await self.store.read_correlated(command_id, limit=MAX_EVENTS_ANSWERED)

    def _ok(
        self, name: str, command_id: UUID, result: dict[str, Any] | None, events: list[Envelope], *, replayed: bool
    ) -> dict[str, Any]:
        return {
            "ok": True,
            "command": name,
            "command_id": str(command_id),
            "replayed": replayed,
            "result": result,
            "events": [_event(e) for e in events],
        }

    def _refused(
        self, name: str | None, command_id: UUID | None, error: str, field: str | None, *, not_found: bool = False
    ) -> dict[str, Any]:
        self.refused += 1
        log.info("command_refused", command=name, error=error, field=field)
        answer: dict[str, Any] = {"ok": False, "command": name, "error": error, "field": field}
        if not_found:
            answer["not_found"] = True
        if command_id is not None:
            answer["command_id"] = str(command_id)
        return answer


class CommandService:
    """The `commands` role: one member of the NATS queue group that carries out bus commands."""

    name = "commands"

    def __init__(self, store: PostgresEventStore, nc: NATS, settings: Settings) -> None:
        self.commands = Commands(store)
        self.nc = nc
        self.subject = f"{settings.subject_prefix}.commands.*.>"  # names have dots: campaign.pause
        self.prefix = settings.subject_prefix
        self._sub: Subscription | None = None
        self._slots = anyio.Semaphore(MAX_IN_FLIGHT)
        self._idle = anyio.Event()
        self._idle.set()
        self._in_flight = 0

    @property
    def handled(self) -> int:
        return self.commands.handled

    @property
    def refused(self) -> int:
        return self.commands.refused

    async def run(self, *, task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
        sub = self._sub = await self.nc.subscribe(self.subject, queue=QUEUE)
        try:
            await self.nc.flush()
            log.info("component_started", component="commands", subject=self.subject, queue=QUEUE)
            task_status.started()
            async with anyio.create_task_group() as tg:
                async for msg in sub.messages:
                    await self._slots.acquire()
                    self._in_flight += 1
                    self._idle = anyio.Event()
                    tg.start_soon(self._serve, msg)
        finally:
            # A crashed member leaves the queue group at once: no command waits on a dead one.
            if self._sub is sub:
                self._sub = None
                with anyio.CancelScope(shield=True), contextlib.suppress(Exception):
                    await sub.unsubscribe()

    async def stop(self, grace: float = 10.0) -> None:
        """Take no more commands; those being carried out get `grace` seconds to finish."""
        if self._sub is not None:
            sub, self._sub = self._sub, None
            await sub.unsubscribe()
        with anyio.move_on_after(grace):
            await self._idle.wait()

    async def _serve(self, msg: Msg) -> None:
        try:
            try:
                answer = await self.answer(msg.subject, msg.data, msg.headers or {})
            except Exception as exc:  # one command's failure never stops the service, nor leaves it unanswered
                log.exception("command_failed", subject=msg.subject)
                answer = {"ok": False, "error": f"internal error carrying out the command: {type(exc).__name__}"}
            if msg.reply:
                await msg.respond(msgspec.json.encode(answer))
        except Exception:
            log.exception("command_reply_failed", subject=msg.subject)
        finally:
            self._in_flight -= 1
            self._slots.release()
            if not self._in_flight:
                self._idle.set()

    async def answer(self, subject: str, data: bytes, headers: dict[str, str]) -> dict[str, Any]:
        """Carry out the command a bus message names and say what happened (or why not)."""
        try:
            account, name = parse_subject(self.prefix, subject)
        except Refused as exc:
            return self.commands._refused(None, None, exc.message, exc.field)
        return await self.commands.carry_out(account, name, data, command_id_from(headers.get("Nats-Msg-Id"), "nats"))


__all__ = [
    "COMMANDS",
    "CommandScope",
    "CommandService",
    "Commands",
    "Refused",
    "command_id_from",
    "parse_body",
    "parse_subject",
]
