"""Embedded servers: started under the data dir, shared between processes, stopped by the last one."""

from __future__ import annotations

import os
import socket
from pathlib import Path

import asyncpg
import msgspec
import pytest

from events.bus import connect
from events.errors import EmbeddedServerError
from events.settings import Settings
from gateways.embedded import NatsServer, open_infrastructure, with_database


def _listening(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


async def test_nats_server_starts_with_jetstream_and_stops(tmp_path: Path) -> None:
    server = NatsServer(tmp_path / "nats")
    server.start()
    try:
        nc = await connect(server.url)
        info = await nc.jetstream().account_info()
        assert info.limits is not None
        await nc.close()
    finally:
        server.stop()
    assert not _listening(server.port)


def test_a_second_user_reuses_the_server_and_the_last_one_stops_it(tmp_path: Path) -> None:
    first = NatsServer(tmp_path / "nats")
    first.start()
    second = NatsServer(tmp_path / "nats")
    # Another process would register its own pid; simulate one that is alive: our parent.
    state = msgspec.json.decode((tmp_path / "nats" / "server.json").read_bytes())
    state["users"].append(os.getppid())
    (tmp_path / "nats" / "server.json").write_bytes(msgspec.json.encode(state))
    second.start()
    assert (second.pid, second.port) == (first.pid, first.port)
    first.stop()
    assert _listening(first.port), "stopped while another process still used it"
    state = msgspec.json.decode((tmp_path / "nats" / "server.json").read_bytes())
    state["users"] = [p for p in state["users"] if p != os.getppid()]
    (tmp_path / "nats" / "server.json").write_bytes(msgspec.json.encode(state))
    second.stop()
    assert not _listening(first.port)


def test_the_port_is_kept_across_restarts(tmp_path: Path) -> None:
    server = NatsServer(tmp_path / "nats")
    server.start()
    port = server.port
    server.stop()
    again = NatsServer(tmp_path / "nats")
    again.start()
    try:
        assert again.port == port
    finally:
        again.stop()


def test_a_nats_server_that_cannot_start_says_why(tmp_path: Path) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        server = NatsServer(tmp_path / "nats", port=busy.getsockname()[1])
        with pytest.raises(EmbeddedServerError, match="nats-server"):
            server.start(timeout=5)


async def test_configured_servers_are_used_as_they_are(database_url: str, nats_url: str, tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path, database_url=database_url, nats_url=nats_url)
    async with open_infrastructure(settings) as infra:
        assert (infra.database_url, infra.nats_url) == (database_url, nats_url)
        assert not infra.embedded_postgres and not infra.embedded_nats
    assert not (tmp_path / "postgres").exists()


async def test_embedded_postgres_runs_under_the_data_dir(tmp_path: Path, nats_url: str) -> None:
    settings = Settings(data_dir=tmp_path / "data", nats_url=nats_url)
    async with open_infrastructure(settings) as infra:
        assert infra.embedded_postgres
        conn = await asyncpg.connect(with_database(infra.database_url, "postgres"))
        try:
            assert await conn.fetchval("show data_directory") == str((tmp_path / "data" / "postgres").resolve())
        finally:
            await conn.close()
    assert (tmp_path / "data" / "postgres" / "PG_VERSION").exists()
    assert not (tmp_path / "data" / "postgres" / "postmaster.pid").exists()
