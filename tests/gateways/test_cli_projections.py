"""`touchline projections status|rebuild`, `bench projections` and `up --role`, as an operator runs them."""

from __future__ import annotations

import json
import uuid

import anyio
import pytest
from typer.testing import CliRunner

from events.catalog import LeadIngested, LeadStatusChanged, lead_stream
from events.errors import ConfigError
from events.postgres import open_postgres_store
from gateways.cli import app
from gateways.roles import parse_roles
from projections import ALL_PROJECTIONS
from projections.bench import fill_log

runner = CliRunner()
NAMES = [p.name for p in ALL_PROJECTIONS]
ACCOUNT = uuid.UUID("00000000-0000-4000-8000-0000000000c1")


def invoke(database_url: str, *args: str) -> tuple[int, str, str]:
    result = runner.invoke(app, list(args), env={"TOUCHLINE_DATABASE_URL": database_url, "COLUMNS": "220"})
    return result.exit_code, result.stdout, result.stderr


def _fill(database_url: str, events: int) -> None:
    async def main() -> None:
        async with open_postgres_store(database_url) as store:
            await fill_log(store, events)

    anyio.run(main)


def test_status_before_anything_ran_says_not_started(database_url: str) -> None:
    code, out, _ = invoke(database_url, "projections", "status")
    assert code == 0
    for name in NAMES:
        assert name in out
    assert out.count("not started") == len(NAMES)


def test_rebuild_then_status_is_live_with_no_lag(database_url: str) -> None:
    _fill(database_url, 1500)
    code, out, err = invoke(database_url, "projections", "rebuild", "--all")
    assert code == 0, err
    assert f"rebuilt {', '.join(NAMES)}" in out and "swapped in" in out and "events/s" in out
    code, out, _ = invoke(database_url, "projections", "status", "--json")
    assert code == 0
    statuses = [json.loads(line) for line in out.splitlines()]
    assert {s["name"] for s in statuses} == set(NAMES)
    assert all(s["state"] == "live" and s["lag"] == 0 and s["position"] > 0 for s in statuses)
    code, out, _ = invoke(database_url, "sql", "select count(*) from public.touch_runs")
    assert code == 0 and "(1 row)" in out


def test_status_names_the_event_a_projection_failed_on(database_url: str) -> None:
    lead_id = uuid.uuid4()

    async def main() -> None:
        async with open_postgres_store(database_url) as store:
            await store.append(
                lead_stream(lead_id),
                [LeadIngested(lead_id=lead_id, account_id=ACCOUNT, source="craigslist", external_id="1")],
            )
            await store.pool.execute(
                "insert into touchline.projections (name, version, position, error, error_position, error_event_id) "
                "values ('leads', 1, 0, 'CheckViolationError: new row violates check constraint', 1, $1)",
                uuid.uuid4(),
            )

    anyio.run(main)
    code, out, _ = invoke(database_url, "projections", "status")
    assert code == 1  # a failed projection is an operator's problem: scripts see it
    assert "failed" in out and "at position 1" in out and "CheckViolationError" in out


def test_rebuild_refuses_unclear_requests(database_url: str) -> None:
    code, _, err = invoke(database_url, "projections", "rebuild")
    assert code == 2 and "name the projections to rebuild, or pass --all" in err
    code, _, err = invoke(database_url, "projections", "rebuild", "leeds")
    assert code == 2 and "unknown projection leeds" in err and "leads" in err


def test_rebuild_one_projection_leaves_the_others(database_url: str) -> None:
    lead_id = uuid.uuid4()

    async def main() -> None:
        async with open_postgres_store(database_url) as store:
            await store.append(
                lead_stream(lead_id),
                [
                    LeadIngested(lead_id=lead_id, account_id=ACCOUNT, source="craigslist", external_id="9"),
                    LeadStatusChanged(lead_id=lead_id, account_id=ACCOUNT, status="contacted"),
                ],
            )

    anyio.run(main)
    code, out, err = invoke(database_url, "projections", "rebuild", "leads")
    assert code == 0, err
    assert "rebuilt leads: 2 events" in out
    code, out, _ = invoke(database_url, "projections", "status", "--json")
    states = {json.loads(line)["name"]: json.loads(line)["state"] for line in out.splitlines()}
    assert states == {name: "live" if name == "leads" else "not started" for name in NAMES}


def test_bench_projections_prints_rebuild_beside_raw_read(database_url: str) -> None:
    code, out, err = invoke(database_url, "bench", "projections", "--events", "3000", "--json")
    assert code == 0, err
    result = json.loads(out)
    assert result["events"] >= 3000
    assert result["rebuild_events_per_s"] > 0 and result["read_events_per_s"] > 0
    assert result["rows"]["public.leads"] > 0 and result["rows"]["public.touch_runs"] > result["rows"]["public.leads"]
    code, out, _ = invoke(database_url, "bench", "projections", "--events", "2000")
    assert code == 0 and "rebuild all projections" in out


def test_roles() -> None:
    assert {"relay", "projections"} <= parse_roles(None)
    assert parse_roles("relay, projection:leads") == {"relay", "projection:leads"}
    with pytest.raises(ConfigError, match="unknown role projection:nope"):
        parse_roles("projection:nope")
    result = runner.invoke(app, ["up", "--role", "teleporter"])
    assert result.exit_code == 2 and "unknown role teleporter" in result.stderr and "projections" in result.stderr
