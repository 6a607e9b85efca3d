"""Connecting to the bus: one server or a cluster's seed list, and one clear error when none answers."""

from __future__ import annotations

import re

import anyio
import pytest

from events.bus import connect, server_urls
from events.errors import BusUnavailable, ConfigError
from events.settings import Settings
from gateways.embedded import free_port


def test_a_seed_list_is_read_as_nats_tools_write_it() -> None:
    env = {"TOUCHLINE_NATS_URL": " nats://a:4222, nats://b:4222 ,tls://c:4222"}
    url = Settings.from_env(env).nats_url
    assert url == "nats://a:4222,nats://b:4222,tls://c:4222"
    assert server_urls(url) == ["nats://a:4222", "nats://b:4222", "tls://c:4222"]
    with pytest.raises(ConfigError, match="TOUCHLINE_NATS_URL must start with nats://"):
        Settings.from_env({"TOUCHLINE_NATS_URL": "nats://a:4222,http://b:4222"})
    with pytest.raises(ConfigError, match="empty entry between commas"):
        Settings.from_env({"TOUCHLINE_NATS_URL": "nats://a:4222,,nats://b:4222"})


async def test_a_dead_seed_is_passed_over_for_one_that_answers(nats_url: str) -> None:
    dead = f"nats://127.0.0.1:{free_port()}"
    nc = await connect(f"{dead},{nats_url}")
    try:
        assert nc.is_connected
        assert nc.connected_url is not None and nc.connected_url.port == int(nats_url.rsplit(":", 1)[1])
        await nc.publish("touchline.test.seed", b"ok")
        await nc.flush()
    finally:
        await nc.close()


async def test_when_no_seed_answers_the_error_names_each_one() -> None:
    first, second = (f"nats://127.0.0.1:{free_port()}" for _ in range(2))
    with anyio.fail_after(10), pytest.raises(BusUnavailable) as caught:
        await connect(f"{first},{second}")
    message = str(caught.value)
    assert re.search(rf"cannot reach NATS at {re.escape(first)},{re.escape(second)}: ", message)
    assert f"{first}: " in message and f"{second}: " in message
