"""Rate limits and concurrency caps for provider requests."""

from __future__ import annotations

import anyio
import pytest

from actors.limits import Limits, TokenBucket


async def test_a_bucket_lets_its_burst_through_then_makes_callers_wait() -> None:
    bucket = TokenBucket(rate=1000.0, burst=3)
    for _ in range(3):
        await bucket.take()
    assert bucket.waited_s == 0.0
    await bucket.take()
    assert bucket.waited_s > 0.0  # the fourth had to wait for a token


def test_a_bucket_needs_a_positive_rate() -> None:
    with pytest.raises(ValueError, match="rate must be positive"):
        TokenBucket(rate=0)


async def test_a_request_holds_its_account_and_its_provider_slot_until_done() -> None:
    limits = Limits({"twilio": 1000.0}, {"twilio": 2}, account_rate=1000.0, account_concurrency=1)
    inside = anyio.Event()
    release = anyio.Event()
    order: list[str] = []

    async def hold(account: str, name: str) -> None:
        async with limits.hold("twilio", account):
            order.append(name)
            inside.set()
            await release.wait()

    async with anyio.create_task_group() as tg:
        tg.start_soon(hold, "a", "first")
        await inside.wait()
        tg.start_soon(hold, "a", "same account")  # the account allows one at a time: waits
        tg.start_soon(hold, "b", "other account")  # its own account slot, the provider's second
        with anyio.fail_after(5):
            while limits.provider("twilio").in_use < 2:  # noqa: ASYNC110 - the limiter's own counter
                await anyio.sleep(0.01)
        assert order == ["first", "other account"]
        assert limits.account("a").in_use == 1
        release.set()
    assert order == ["first", "other account", "same account"]
