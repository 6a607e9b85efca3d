"""Tried as a new user would: `touchline up`, onboard, a three-step campaign, a lead, touch runs appear."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import anyio
import asyncpg
from nats.aio.client import Client as NATS
from typer.testing import CliRunner

from actors.orchestrator import touch_run_id
from actors.send_window import lead_zone, next_allowed
from events.catalog import LeadEnrolled, TouchRunScheduled
from events.postgres import open_postgres_store
from events.settings import Settings
from events.store import EventFilter
from gateways.cli import app

ACCOUNT = "00000000-0000-4000-8000-00000000abcd"
runner = CliRunner()


def touchline(settings: Settings, *args: str) -> str:
    env = {
        "TOUCHLINE_DATABASE_URL": settings.database_url or "",
        "TOUCHLINE_NATS_URL": settings.nats_url or "",
        "COLUMNS": "250",
    }
    result = runner.invoke(app, list(args), env=env)
    assert result.exit_code == 0, result.stdout + result.stderr
    return result.stdout


def test_onboard_create_a_campaign_add_a_lead_and_watch_touch_runs_appear(
    settings: Settings,
    tmp_path: Path,
    nc: NATS,  # nc: drops the test's stream afterwards
) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TOUCHLINE_", "ELASTIC"))}
    env |= {
        "TOUCHLINE_DATABASE_URL": settings.database_url or "",
        "TOUCHLINE_NATS_URL": settings.nats_url or "",
        "TOUCHLINE_SUBJECT_PREFIX": settings.subject_prefix,
        "TOUCHLINE_STREAM_NAME": settings.stream_name,
        "TOUCHLINE_HTTP_PORT": "0",  # a free port, whatever holds 8080
    }
    up = subprocess.Popen(
        [sys.executable, "-m", "gateways.cli", "up", "--data-dir", str(tmp_path / "data")],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        assert up.stdout is not None
        for line in up.stdout:
            if "touchline_ready" in line:
                break
        touchline(settings, "settings", "set", "--account", ACCOUNT, "--business-name", "Miami Motors",
                  "--contact-email", "sales@miamimotors.com", "--dealer-address", "1 Biscayne Blvd",
                  "--radius-miles", "25", "--routing-active")  # fmt: skip
        touchline(settings, "campaigns", "create", "--account", ACCOUNT, "--key", "autos_outbound_miami",
                  "--name", "Autos Miami", "--step", "sms", "--step", "voice:60", "--step", "email:120",
                  "--activate")  # fmt: skip
        out = touchline(settings, "leads", "add", "--account", ACCOUNT, "--phone", "+1 305 555 0100", "--city", "miami",
                        "--title", "2014 Toyota Camry")  # fmt: skip
        lead_id = out.split()[2]
        deadline = time.monotonic() + 30
        now = datetime.now(UTC)
        # Inside the send window the first text is due at once, and the sandbox provider sends it.
        due_now = next_allowed(now, "sms", lead_zone("miami")) == now
        wanted = [(1, "sms", "dispatched" if due_now else "scheduled"), (2, "voice", "scheduled")]
        while (shown := _show(settings, lead_id)).count("TouchRunScheduled") < 2 or anyio.run(
            _touch_runs, settings
        ) != wanted:
            assert time.monotonic() < deadline, f"no touch runs after 30 s:\n{shown}"
            time.sleep(0.2)  # another process works: poll what an operator would look at
    finally:
        up.send_signal(signal.SIGINT)
        rest, _ = up.communicate(timeout=30)
    assert up.returncode == 0, rest
    assert "ORCH_EMAIL_DISABLED_MISSING_ELASTIC_ENV" in rest  # email is not configured: its step is skipped

    async def check() -> None:
        assert settings.database_url is not None
        async with open_postgres_store(settings.database_url) as store:
            wanted = EventFilter(types=frozenset({"LeadEnrolled", "TouchRunScheduled"}))
            events = [e.event async for batch in store.read_all(0, filter=wanted) for e in batch]
            (enrolled,) = [e for e in events if isinstance(e, LeadEnrolled)]
            runs = {e.step: e for e in events if isinstance(e, TouchRunScheduled)}
            assert sorted(runs) == [1, 2]  # sms and voice; no email
            miami = lead_zone("miami")
            for step, delay in ((1, 0), (2, 60)):
                expected = next_allowed(enrolled.enrolled_at + timedelta(minutes=delay), runs[step].channel, miami)
                assert runs[step].scheduled_for == expected
                assert runs[step].touch_run_id == touch_run_id(enrolled.lead_id, enrolled.campaign_id, step)
            rows = await store.pool.fetch("select step, channel, status from public.touch_runs order by step")
            first = "dispatched" if due_now else "scheduled"
            assert [tuple(r) for r in rows] == [(1, "sms", first), (2, "voice", "scheduled")]

    anyio.run(check)


async def _touch_runs(settings: Settings) -> list[tuple[object, ...]]:
    assert settings.database_url is not None
    async with open_postgres_store(settings.database_url) as store:
        try:
            rows = await store.pool.fetch("select step, channel, status from public.touch_runs order by step")
        except asyncpg.UndefinedTableError:
            return []
    return [tuple(r) for r in rows]


def _show(settings: Settings, lead_id: str) -> str:
    result = runner.invoke(
        app,
        ["leads", "show", lead_id, "--account", ACCOUNT],
        env={"TOUCHLINE_DATABASE_URL": settings.database_url or "", "COLUMNS": "250"},
    )
    return result.stdout + result.stderr
