"""LeadGen programs (Craigslist, Encuentra24 for a city): start and stop, decided from the log.

A program is the stream `program-<account>:<program>:<city>`. Starting one needs the account's
LeadGen routing configured and active (unless the operator overrides it); starting one that runs
already asks for confirmation instead of starting it twice. While it runs, the hunter queues a
discover every `discover_every_s` (`discover_task_id` gives each slot one id, so every hunter
process agrees on it); stopping it cancels its queued tasks.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Final, Literal
from uuid import UUID

import msgspec

from actors.crawl import CrawlTasks, check_source, normalise_city
from actors.org import OrgSettings
from events.catalog import (
    CrawlTaskCancelled,
    CrawlTaskEnqueued,
    Event,
    ProgramStarted,
    ProgramStopped,
    crawl_task_stream,
    program_stream,
)
from events.envelope import Envelope
from events.errors import CommandRejected
from events.store import NO_STREAM, EventStore, StreamAppend

Outcome = Literal["started", "discover_queued", "stopped", "not_running", "needs_setup", "needs_confirmation"]

_DISCOVERS: Final = uuid.UUID("9b2e6a51-0c3f-4d8e-a7b4-1f5d3c9e8a02")
MIN_DISCOVER_EVERY_S: Final = 60


def discover_task_id(stream_id: str, started_version: int, slot: int) -> UUID:
    """The discover of one time slot of one run of a program: the same id in every process."""
    return uuid.uuid5(_DISCOVERS, f"{stream_id}:{started_version}:{slot}")


class ProgramState(msgspec.Struct, kw_only=True):
    account_id: UUID
    program_key: str
    city: str
    running: bool = False
    started_at: datetime | None = None
    started_version: int = 0  # the stream version of the ProgramStarted of the current run
    stopped_at: datetime | None = None
    routing_override: bool = False
    discover_every_s: int = 900
    version: int = 0

    @property
    def stream_id(self) -> str:
        return program_stream(self.account_id, self.program_key, self.city)

    def apply(self, env: Envelope) -> None:
        match env.event:
            case ProgramStarted() as started:
                self.running = True
                self.started_at = env.recorded_at
                self.started_version = env.version
                self.routing_override = started.routing_override
                self.discover_every_s = started.discover_every_s
            case ProgramStopped():
                self.running = False
                self.stopped_at = env.recorded_at
        self.version = env.version

    def discover_slot(self, now: datetime) -> int:
        """Which discover of this run is due at `now` (0: the one the start queued)."""
        if not self.running or self.started_at is None:
            return -1
        return max(0, int((now - self.started_at).total_seconds() // self.discover_every_s))


class ProgramResult(msgspec.Struct, kw_only=True):
    outcome: Outcome
    program_key: str
    city: str
    message: str
    discover_task_id: UUID | None = None
    cancelled_tasks: list[UUID] = []


class Programs:
    """The program commands of one store."""

    def __init__(self, store: EventStore) -> None:
        self.store = store

    async def get(self, account_id: UUID, program_key: str, city: str) -> ProgramState:
        state = ProgramState(account_id=account_id, program_key=program_key, city=city)
        for env in await self.store.read_stream(state.stream_id):
            state.apply(env)
        return state

    async def start(
        self,
        account_id: UUID,
        program_key: str,
        city: str,
        *,
        override_routing: bool = False,
        confirm: bool = False,
        discover_every_s: int = 900,
        started_by: str | None = None,
    ) -> ProgramResult:
        """Start the program and queue its first discover in one atomic append.

        Already running: `needs_confirmation`, nothing appended; with `confirm`, a discover is
        queued now (the run goes on, it is not started twice).
        """
        command = "program.start"
        program_key = check_source(command, program_key)
        city = normalise_city(command, city, program_key)
        if discover_every_s < MIN_DISCOVER_EVERY_S:
            raise CommandRejected(
                command, f"must be at least {MIN_DISCOVER_EVERY_S} s, got {discover_every_s}", field="discover_every_s"
            )
        org = await OrgSettings(self.store).get(account_id)
        if not org.routing_active and not override_routing:
            configured = org.leadgen_routing is not None and bool(org.leadgen_routing.dealer_address)
            why = "configured but not active" if configured else "not configured (dealer address, radius)"
            return ProgramResult(
                outcome="needs_setup",
                program_key=program_key,
                city=city,
                message=f"LeadGen routing is {why}: turn it on in settings, or start with the routing override",
            )
        state = await self.get(account_id, program_key, city)
        if state.running:
            if not confirm:
                return ProgramResult(
                    outcome="needs_confirmation",
                    program_key=program_key,
                    city=city,
                    message=f"{program_key} {city} runs already (since {state.started_at:%Y-%m-%d %H:%M} UTC): "
                    "confirm to look for new listings now",
                )
            task_id = uuid.uuid4()
            enqueued = self._discover(account_id, program_key, city, task_id, f"{command}:confirmed")
            await self.store.append(crawl_task_stream(task_id), [enqueued], expected_version=NO_STREAM)
            return ProgramResult(
                outcome="discover_queued",
                program_key=program_key,
                city=city,
                message=f"{program_key} {city} runs already: a discover is queued now",
                discover_task_id=task_id,
            )
        started = ProgramStarted(
            account_id=account_id,
            program_key=program_key,
            city=city,
            routing_override=override_routing and not org.routing_active,
            started_by=started_by,
            discover_every_s=discover_every_s,
        )
        task_id = discover_task_id(state.stream_id, state.version + 1, 0)
        await self.store.append_many(
            [
                StreamAppend(stream_id=state.stream_id, events=[started], expected_version=state.version),
                StreamAppend(
                    stream_id=crawl_task_stream(task_id),
                    events=[self._discover(account_id, program_key, city, task_id, command)],
                    expected_version=NO_STREAM,
                ),
            ],
            correlation_id=uuid.uuid4(),
        )
        return ProgramResult(
            outcome="started",
            program_key=program_key,
            city=city,
            message=f"{program_key} {city} started: first discover queued, then one every {discover_every_s} s",
            discover_task_id=task_id,
        )

    async def stop(
        self, account_id: UUID, program_key: str, city: str, *, stopped_by: str | None = None
    ) -> ProgramResult:
        """Stop the program and cancel its queued tasks in one atomic append (tasks a worker holds
        finish; the hunter then queues nothing more for the program)."""
        command = "program.stop"
        program_key = check_source(command, program_key)
        city = normalise_city(command, city, program_key)
        state = await self.get(account_id, program_key, city)
        if not state.running:
            return ProgramResult(
                outcome="not_running",
                program_key=program_key,
                city=city,
                message=f"{program_key} {city} is not running",
            )
        queued = await CrawlTasks(self.store).queued(account_id, city, source=program_key)
        appends = [
            StreamAppend(
                stream_id=state.stream_id,
                events=[
                    ProgramStopped(account_id=account_id, program_key=program_key, city=city, stopped_by=stopped_by)
                ],
                expected_version=state.version,
            )
        ]
        for task in queued:
            appends.append(
                StreamAppend(
                    stream_id=task.stream_id,
                    events=[CrawlTaskCancelled(task_id=task.task_id, account_id=account_id, reason=command)],
                    expected_version=task.version,
                )
            )
        await self.store.append_many(appends, correlation_id=uuid.uuid4())
        return ProgramResult(
            outcome="stopped",
            program_key=program_key,
            city=city,
            message=f"{program_key} {city} stopped; {len(queued)} queued task(s) cancelled",
            cancelled_tasks=[task.task_id for task in queued],
        )

    @staticmethod
    def _discover(account_id: UUID, source: str, city: str, task_id: UUID, by: str) -> Event:
        return CrawlTaskEnqueued(
            task_id=task_id, account_id=account_id, task_type="discover", city=city, source=source, enqueued_by=by
        )
