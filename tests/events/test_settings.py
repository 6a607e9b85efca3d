"""Settings from the environment: defaults, overrides, and errors that name the variable."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from events.errors import ConfigError
from events.settings import Settings, env_flag, env_int, env_number


def test_defaults_are_the_embedded_servers() -> None:
    s = Settings.from_env({})
    assert s.database_url is None and s.nats_url is None
    assert s.data_dir == Path(".touchline")
    assert (s.http_host, s.http_port) == ("127.0.0.1", 8080)
    assert (s.subject_prefix, s.stream_name) == ("touchline", "TOUCHLINE_EVENTS")


def test_environment_and_overrides() -> None:
    env = {
        "TOUCHLINE_DATABASE_URL": " postgresql://u:p@db:5432/touchline ",
        "TOUCHLINE_NATS_URL": "nats://bus:4222",
        "TOUCHLINE_HTTP_PORT": "9090",
        "TOUCHLINE_PUBLIC_URL": "https://touchline.example/",
        "TOUCHLINE_DATA_DIR": "/var/lib/touchline",
    }
    s = Settings.from_env(env, data_dir=Path("/elsewhere"))
    assert s.database_url == "postgresql://u:p@db:5432/touchline"
    assert s.nats_url == "nats://bus:4222"
    assert s.http_port == 9090
    assert s.public_url == "https://touchline.example"
    assert s.data_dir == Path("/elsewhere")


def test_a_unix_socket_database_url_is_accepted() -> None:
    url = "postgresql://postgres:@/postgres?host=/tmp/pg"
    assert Settings.from_env({"TOUCHLINE_DATABASE_URL": url}).database_url == url


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("TOUCHLINE_DATABASE_URL", "mysql://db/x", "TOUCHLINE_DATABASE_URL must start with postgres://"),
        ("TOUCHLINE_DATABASE_URL", "postgresql://", "TOUCHLINE_DATABASE_URL names no host"),
        ("TOUCHLINE_NATS_URL", "http://bus:4222", "TOUCHLINE_NATS_URL must start with nats://"),
        ("TOUCHLINE_HTTP_PORT", "eighty", "TOUCHLINE_HTTP_PORT must be a port number, got 'eighty'"),
        ("TOUCHLINE_HTTP_PORT", "70000", "TOUCHLINE_HTTP_PORT must be between 0 and 65535"),
        ("TOUCHLINE_PUBLIC_URL", "touchline.example", "TOUCHLINE_PUBLIC_URL must start with http://"),
        ("TOUCHLINE_SUBJECT_PREFIX", "a.b", "TOUCHLINE_SUBJECT_PREFIX may hold only"),
    ],
)
def test_malformed_values_name_the_variable(name: str, value: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        Settings.from_env({name: value})


def test_blank_values_mean_unset() -> None:
    assert Settings.from_env({"TOUCHLINE_DATABASE_URL": "   "}).database_url is None


def test_the_ack_wait_is_seconds_within_bounds() -> None:
    assert Settings.from_env({}).ack_wait_s is None
    assert Settings.from_env({"TOUCHLINE_ACK_WAIT_S": "10"}).ack_wait_s == 10.0
    for bad, message in (
        ("soon", "must be a number of seconds"),
        ("0.5", "must be between 2 and 3600"),
        ("nan", "must be between"),
    ):
        with pytest.raises(ConfigError, match=f"TOUCHLINE_ACK_WAIT_S {message}"):
            Settings.from_env({"TOUCHLINE_ACK_WAIT_S": bad})


def test_the_shared_readers_name_the_variable_and_refuse_what_is_not_a_value() -> None:
    env = {"N": " 2.5 ", "I": "7", "F": "On", "BLANK": "  "}
    assert env_number(env, "N", 1.0, low=0, high=10) == 2.5 and env_number(env, "BLANK", 1.0, low=0, high=10) == 1.0
    assert env_int(env, "I", 1, low=1, high=10) == 7 and env_int(env, "MISSING", 3, low=1) == 3
    assert env_flag(env, "F") is True and env_flag(env, "BLANK", True) is True and env_flag({}, "F") is False
    refused: list[tuple[Callable[[], object], str]] = [
        (lambda: env_number({"N": "inf"}, "N", 1.0, low=0, high=10), "N must be between 0 and 10, got inf"),
        (lambda: env_number({"N": "many"}, "N", 1.0, low=0, high=10), "N must be a number, got 'many'"),
        (lambda: env_int({"I": "2.5"}, "I", 1, low=1), "I must be a whole number, got '2.5'"),
        (lambda: env_int({"I": "0"}, "I", 1, low=1), "I must be at least 1, got 0"),
        (lambda: env_int({"I": "99"}, "I", 1, low=1, high=50), "I must be between 1 and 50, got 99"),
        (lambda: env_flag({"F": "maybe"}, "F"), "F must be 1 or 0 (on or off), got 'maybe'"),
    ]
    for call, message in refused:
        with pytest.raises(ConfigError) as caught:
            call()
        assert str(caught.value) == message
