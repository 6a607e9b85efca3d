"""The email warmup engine: a new sender's daily email allowance ramps up from its first send.

Mailbox providers trust a sender that grows slowly. Day 0 (the account's first email) allows
`EMAIL_WARMUP_START` emails; each later day `EMAIL_WARMUP_GROWTH` times the one before, up to
`EMAIL_WARMUP_MAX`. Each email takes a slot of its day (UTC) by an append at the day stream's
expected version, so processes sending at once never exceed the day's allowance. Warmup reads
ElasticEmail's configuration the same way as the dispatcher (either key name, trimmed): without
it, there is nothing to warm up.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from datetime import date, datetime, timedelta
from typing import Final
from uuid import UUID

import msgspec

from events.catalog import EmailWarmupSlotTaken, EmailWarmupStarted, Event, warmup_stream
from events.errors import ConcurrencyError, ConfigError
from events.settings import env_flag, env_int, env_number
from events.store import NO_STREAM, EventStore
from gateways.elastic import elastic_env

_ATTEMPTS: Final = 50


class WarmupSchedule(msgspec.Struct, frozen=True, kw_only=True):
    enabled: bool = True
    start: int = 50
    growth: float = 1.5
    maximum: int = 10_000

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> WarmupSchedule:
        env = os.environ if env is None else env
        defaults = cls()
        values: dict[str, object] = {
            "enabled": env_flag(env, "EMAIL_WARMUP", defaults.enabled),
            "start": env_int(env, "EMAIL_WARMUP_START", defaults.start, low=1, high=1_000_000),
            "growth": env_number(env, "EMAIL_WARMUP_GROWTH", defaults.growth, low=1.0, high=10.0),
            "maximum": env_int(env, "EMAIL_WARMUP_MAX", defaults.maximum, low=1, high=10_000_000),
        }
        schedule = cls(**values)  # type: ignore[arg-type]
        if schedule.maximum < schedule.start:
            raise ConfigError(f"EMAIL_WARMUP_MAX ({schedule.maximum}) is below EMAIL_WARMUP_START ({schedule.start})")
        return schedule

    def allowance(self, day_index: int) -> int:
        """Emails allowed on the n-th day of the warmup (day 0 is the first)."""
        if day_index < 0:
            return 0
        value = float(self.start)
        for _ in range(day_index):
            value *= self.growth
            if value >= self.maximum:
                return self.maximum
        return min(self.maximum, int(value))


class WarmupDecision(msgspec.Struct, frozen=True):
    allowed: bool
    day: date
    allowance: int
    used: int
    next_day: datetime | None = None  # when a refused email may try again


class EmailWarmup:
    def __init__(self, store: EventStore, schedule: WarmupSchedule, env: Mapping[str, str] | None = None) -> None:
        self.store = store
        self.schedule = schedule
        self.ready = elastic_env(env).email_ready

    async def started(self, account_id: UUID) -> date | None:
        envelopes = await self.store.read_stream(warmup_stream(account_id), limit=1)
        first = envelopes[0].event if envelopes else None
        return first.day if isinstance(first, EmailWarmupStarted) else None

    async def take(self, account_id: UUID, touch_run_id: UUID, now: datetime) -> WarmupDecision:
        """A slot of today's allowance for this email, or why not (and when to try again)."""
        today = now.date()
        if not self.schedule.enabled:
            return WarmupDecision(True, today, self.schedule.maximum, 0)
        start = await self.started(account_id)
        if start is None:
            start = today
            try:
                started = EmailWarmupStarted(account_id=account_id, day=today)
                await self.store.append(warmup_stream(account_id), [started], expected_version=NO_STREAM)
            except ConcurrencyError:
                start = await self.started(account_id) or today
        allowance = self.schedule.allowance((today - start).days)
        stream = warmup_stream(account_id, today)
        for _ in range(_ATTEMPTS):
            taken = await self.store.read_stream(stream)
            if any(_touch(e.event) == touch_run_id for e in taken):
                return WarmupDecision(True, today, allowance, len(taken))  # a redelivery: it has its slot
            if len(taken) >= allowance:
                tomorrow = datetime.combine(today + timedelta(days=1), datetime.min.time(), tzinfo=now.tzinfo)
                return WarmupDecision(False, today, allowance, len(taken), next_day=tomorrow)
            slot = EmailWarmupSlotTaken(
                account_id=account_id, day=today, touch_run_id=touch_run_id, allowance=allowance
            )
            try:
                await self.store.append(stream, [slot], expected_version=len(taken))
            except ConcurrencyError:
                continue  # another email took one meanwhile: count again
            return WarmupDecision(True, today, allowance, len(taken) + 1)
        raise RuntimeError(f"email warmup: {_ATTEMPTS} tries to take a slot on {stream} all collided")


def _touch(event: Event) -> UUID | None:
    return event.touch_run_id if isinstance(event, EmailWarmupSlotTaken) else None
