"""Rate limits and concurrency caps for provider requests, per provider and per account (in one process)."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

import anyio


class TokenBucket:
    """`rate` requests a second on average, up to `burst` at once."""

    def __init__(self, rate: float, burst: float | None = None) -> None:
        if rate <= 0:
            raise ValueError(f"rate must be positive, got {rate}")
        self.rate = rate
        self.burst = max(1.0, burst if burst is not None else rate)
        self._tokens = self.burst
        self._stamp: float | None = None
        self._lock = anyio.Lock()
        self.waited_s = 0.0  # how long callers waited in all (for status and tests)

    async def take(self) -> None:
        async with self._lock:  # first come, first served
            now = anyio.current_time()
            if self._stamp is None:
                self._stamp = now
            self._tokens = min(self.burst, self._tokens + (now - self._stamp) * self.rate)
            self._stamp = now
            if self._tokens < 1:
                wait = (1 - self._tokens) / self.rate
                self.waited_s += wait
                await anyio.sleep(wait)
                self._tokens = 1.0
                self._stamp = anyio.current_time()
            self._tokens -= 1


class Limit:
    """A concurrency cap and a rate, together."""

    def __init__(self, rate: float, concurrency: int) -> None:
        self.bucket = TokenBucket(rate)
        self.slots = anyio.Semaphore(max(1, concurrency))
        self.concurrency = max(1, concurrency)

    @property
    def in_use(self) -> int:
        return self.concurrency - self.slots.value


class Limits:
    """One `Limit` per provider and one per account; a request holds both while it is in flight."""

    def __init__(
        self,
        provider_rates: dict[str, float],
        provider_concurrency: dict[str, int],
        *,
        account_rate: float,
        account_concurrency: int,
        default_rate: float = 20.0,
        default_concurrency: int = 20,
    ) -> None:
        self.provider_rates = provider_rates
        self.provider_concurrency = provider_concurrency
        self.account_rate = account_rate
        self.account_concurrency = account_concurrency
        self.default_rate = default_rate
        self.default_concurrency = default_concurrency
        self.providers: dict[str, Limit] = {}
        self.accounts: dict[object, Limit] = {}

    def provider(self, name: str) -> Limit:
        if name not in self.providers:
            self.providers[name] = Limit(
                self.provider_rates.get(name, self.default_rate),
                self.provider_concurrency.get(name, self.default_concurrency),
            )
        return self.providers[name]

    def account(self, account_id: object) -> Limit:
        if account_id not in self.accounts:
            self.accounts[account_id] = Limit(self.account_rate, self.account_concurrency)
        return self.accounts[account_id]

    @contextlib.asynccontextmanager
    async def hold(self, provider: str, account_id: object) -> AsyncIterator[None]:
        account, carrier = self.account(account_id), self.provider(provider)
        async with account.slots, carrier.slots:
            await account.bucket.take()
            await carrier.bucket.take()
            yield
