"""The `touchline` CLI, driven as an operator would, against real PostgreSQL (and NATS for `up`)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import uuid
from pathlib import Path

import anyio
import asyncpg
import msgspec
import pytest
from typer.testing import CliRunner

from events.catalog import LeadStatusChanged
from events.envelope import envelope_decoder
from events.postgres import open_postgres_store
from gateways.cli import app

ACCOUNT = uuid.UUID("00000000-0000-4000-8000-0000000000aa")
runner = CliRunner()


def invoke(database_url: str, *args: str) -> tuple[int, str, str]:
    result = runner.invoke(app, list(args), env={"TOUCHLINE_DATABASE_URL": database_url, "COLUMNS": "200"})
    return result.exit_code, result.stdout, result.stderr


@pytest.fixture
async def two_leads(database_url: str) -> list[str]:
    streams = []
    async with open_postgres_store(database_url) as store:
        for account in (ACCOUNT, uuid.uuid4()):
            lead_id = uuid.uuid4()
            stream = f"lead-{lead_id}"
            await store.append(
                stream,
                [
                    LeadStatusChanged(lead_id=lead_id, account_id=account, status="new"),
                    LeadStatusChanged(lead_id=lead_id, account_id=account, status="contacted", reason="sms sent"),
                ],
            )
            streams.append(stream)
    return streams


def test_sql_prints_a_table(database_url: str, two_leads: list[str]) -> None:
    code, out, _ = invoke(database_url, "sql", "select event_type, count(*) as n from touchline.events group by 1")
    assert code == 0
    assert "LeadStatusChanged" in out and "│ 4 " in out and "(1 row)" in out


def test_sql_error_is_one_clear_line(database_url: str) -> None:
    code, _, err = invoke(database_url, "sql", "select * from no_such_table")
    assert code == 1
    assert 'PostgreSQL says: relation "no_such_table" does not exist' in err


def test_sql_runs_commands_and_scripts(database_url: str) -> None:
    code, out, _ = invoke(database_url, "sql", "create table scratch (a int); insert into scratch values (1), (2)")
    assert code == 0
    code, out, _ = invoke(database_url, "sql", "insert into scratch values (3)")
    assert code == 0 and "INSERT 0 1" in out


def test_events_tail_prints_the_log_and_filters(database_url: str, two_leads: list[str]) -> None:
    code, out, _ = invoke(database_url, "events", "tail")
    assert code == 0
    assert out.count("LeadStatusChanged") == 4 and two_leads[0] in out

    code, out, _ = invoke(database_url, "events", "tail", "--account", str(ACCOUNT), "--json")
    assert code == 0
    envelopes = [envelope_decoder.decode(line) for line in out.splitlines()]
    assert [e.stream_id for e in envelopes] == [two_leads[0], two_leads[0]]
    assert [e.version for e in envelopes] == [1, 2]

    code, out, _ = invoke(database_url, "events", "tail", "--stream", two_leads[1], "--from", "3", "--json")
    assert [envelope_decoder.decode(line).version for line in out.splitlines()] == [2]

    code, out, _ = invoke(database_url, "events", "tail", "--type", "LeadSuppressed")
    assert code == 0 and out.strip() == ""


def test_events_tail_rejects_a_malformed_account(database_url: str) -> None:
    code, _, err = invoke(database_url, "events", "tail", "--account", "miami")
    assert code == 2 and "--account takes an account uuid" in err


def test_audit_stream_shows_one_history(database_url: str, two_leads: list[str]) -> None:
    code, out, _ = invoke(database_url, "audit", "stream", two_leads[0])
    assert code == 0
    assert "contacted" in out and "sms sent" in out and two_leads[0] in out
    code, _, err = invoke(database_url, "audit", "stream", "lead-nobody")
    assert code == 1 and "has no events" in err


def test_audit_verify_names_the_first_tampered_event(database_url: str, two_leads: list[str]) -> None:
    code, out, _ = invoke(database_url, "audit", "verify")
    assert code == 0 and "4 events in 2 streams" in out

    async def tamper() -> int:
        conn = await asyncpg.connect(database_url)
        try:
            position: int = await conn.fetchval(
                "select position from touchline.events where stream_id = $1 and version = 2", two_leads[1]
            )
            async with conn.transaction():
                await conn.execute("alter table touchline.events disable trigger events_no_update")
                await conn.execute(
                    "update touchline.events set data = jsonb_set(data, '{status}', '\"suppressed\"') "
                    "where position = $1",
                    position,
                )
                await conn.execute("alter table touchline.events enable always trigger events_no_update")
            return position
        finally:
            await conn.close()

    position = anyio.run(tamper)
    code, _, err = invoke(database_url, "audit", "verify")
    assert code == 1
    assert f"position {position}" in err and f"stream {two_leads[1]} version 2" in err and "changed" in err


def test_an_unreachable_database_is_one_clear_error() -> None:
    code, _, err = invoke("postgresql://touchline:secret@127.0.0.1:9/touchline", "sql", "select 1")
    assert code == 2
    assert "cannot reach PostgreSQL at postgresql://touchline:***@127.0.0.1:9/touchline" in err
    assert "secret" not in err


def test_a_malformed_setting_names_the_variable() -> None:
    result = runner.invoke(app, ["sql", "select 1"], env={"TOUCHLINE_DATABASE_URL": "mysql://x/y"})
    assert result.exit_code == 2
    assert "TOUCHLINE_DATABASE_URL must start with postgres:// or postgresql://" in result.stderr


def test_up_refuses_an_unknown_role() -> None:
    result = runner.invoke(app, ["up", "--role", "relay,teleporter"])
    assert result.exit_code == 2 and "unknown role teleporter" in result.stderr


def test_up_with_nats_down_is_one_clear_error(database_url: str) -> None:
    result = runner.invoke(
        app, ["up"], env={"TOUCHLINE_DATABASE_URL": database_url, "TOUCHLINE_NATS_URL": "nats://127.0.0.1:9"}
    )
    assert result.exit_code == 2
    assert "cannot reach NATS at nats://127.0.0.1:9" in result.stderr


def _touchline(tmp_path: Path, *args: str) -> subprocess.Popen[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TOUCHLINE_")}
    env["TOUCHLINE_HTTP_PORT"] = "0"  # the HTTP role serves on a free port, whatever holds 8080
    return subprocess.Popen(
        [sys.executable, "-m", "gateways.cli", *args, "--data-dir", str(tmp_path / "data")],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def _wait_for(proc: subprocess.Popen[str], marker: str) -> list[str]:
    lines: list[str] = []
    assert proc.stdout is not None
    for line in proc.stdout:
        lines.append(line)
        if marker in line:
            return lines
    raise AssertionError(f"{marker!r} never printed; output:\n{''.join(lines)}")


def test_up_on_the_embedded_default_starts_and_stops_cleanly(tmp_path: Path) -> None:
    for round_ in ("cold", "warm"):
        proc = _touchline(tmp_path, "up")
        try:
            lines = _wait_for(proc, "touchline_ready")
            started = {
                c
                for line in lines
                for c in ("postgres", "nats", "migrations", "event_store", "relay", "http")
                if f"component={c}" in line
            }
            assert started == {"postgres", "nats", "migrations", "event_store", "relay", "http"}, round_
            proc.send_signal(signal.SIGINT)
            rest, _ = proc.communicate(timeout=30)
        finally:
            if proc.poll() is None:
                proc.kill()
        assert proc.returncode == 0, rest
        assert "touchline_stopped" in rest
    # Nothing left running from this data directory.
    ps = subprocess.run(["ps", "-eo", "args"], capture_output=True, text=True, check=True).stdout
    assert str(tmp_path / "data") not in ps
    # The second start found the data dir warm: migrations were applied once.
    assert (tmp_path / "data" / "postgres" / "PG_VERSION").exists()
    assert msgspec.json.decode((tmp_path / "data" / "nats" / "server.json").read_bytes())["users"] == []


def test_reading_commands_leave_a_configured_database_as_it_is(empty_database: str) -> None:
    """An auditor pointed at a database without the log gets told so; nothing is created."""
    bare = empty_database
    code, _, err = invoke(bare, "audit", "verify")
    assert code == 2 and "has no Touchline event log" in err and "touchline migrate" in err
    code, out, _ = invoke(
        bare, "sql", "select count(*) from information_schema.schemata where schema_name = 'touchline'"
    )
    assert code == 0 and "│ 0 " in out
    code, out, _ = invoke(bare, "migrate")
    assert code == 0 and "0001_event_log.sql" in out


def test_events_tail_follow_prints_events_as_they_commit(database_url: str, tmp_path: Path) -> None:
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("TOUCHLINE_")},
        "TOUCHLINE_DATABASE_URL": database_url,
    }
    proc = subprocess.Popen(
        [sys.executable, "-m", "gateways.cli", "events", "tail", "--follow", "--json", "--data-dir", str(tmp_path)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        lead_id = uuid.uuid4()

        async def append(status: str) -> None:
            async with open_postgres_store(database_url) as store:
                await store.append(
                    f"lead-{lead_id}",
                    [LeadStatusChanged(lead_id=lead_id, account_id=ACCOUNT, status=status)],  # type: ignore[arg-type]
                )

        assert proc.stdout is not None
        anyio.run(append, "new")
        first = envelope_decoder.decode(proc.stdout.readline())
        anyio.run(append, "contacted")  # committed while the tail is waiting on LISTEN
        second = envelope_decoder.decode(proc.stdout.readline())
        assert (first.version, second.version) == (1, 2)
        assert second.event == LeadStatusChanged(lead_id=lead_id, account_id=ACCOUNT, status="contacted")
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=20)
        assert proc.returncode == 0, err
        assert "Traceback" not in err
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
