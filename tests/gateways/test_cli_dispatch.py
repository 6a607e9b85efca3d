"""`touchline touches ...` and `touchline bench e2e`, as an operator runs them."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime

import anyio
from typer.testing import CliRunner

from actors.campaigns import Campaigns, StepSpec
from events.catalog import LeadIngested, TouchRunDeadLettered, TouchRunScheduled, lead_stream, touch_stream
from events.postgres import open_postgres_store
from gateways.cli import app
from projections.runner import all_views, rebuild
from tests.projections.helpers import every_projection

runner = CliRunner()
ACCOUNT = uuid.UUID("00000000-0000-4000-8000-0000000000c6")


def invoke(database_url: str, *args: str, **env: str) -> tuple[int, str, str]:
    result = runner.invoke(app, list(args), env={"TOUCHLINE_DATABASE_URL": database_url, "COLUMNS": "250", **env})
    return result.exit_code, result.stdout, result.stderr


async def _dead_letter(database_url: str) -> uuid.UUID:
    async with open_postgres_store(database_url) as store:
        campaign = await Campaigns(store).create(
            ACCOUNT, campaign_key="autos_outbound_miami", name="Autos", steps=[StepSpec(step=1, channel="sms")]
        )
        lead, touch = uuid.uuid4(), uuid.uuid4()
        ingested = LeadIngested(
            lead_id=lead, account_id=ACCOUNT, source="craigslist", external_id="1", phone="+13055550100"
        )
        await store.append(lead_stream(lead), [ingested])
        scheduled = TouchRunScheduled(
            touch_run_id=touch,
            account_id=ACCOUNT,
            lead_id=lead,
            campaign_id=campaign.campaign_id,
            step=1,
            channel="sms",
            scheduled_for=datetime(2026, 11, 24, 17, tzinfo=UTC),
        )
        dead = TouchRunDeadLettered(
            touch_run_id=touch, account_id=ACCOUNT, error="gave up after 5 attempts", attempts=5
        )
        await store.append(touch_stream(touch), [scheduled, dead])
        projections = every_projection()
        await rebuild(store, projections, all_views(projections))
        return touch


def test_dead_letters_are_listed_and_requeued_once(database_url: str) -> None:
    touch = anyio.run(_dead_letter, database_url)
    code, out, _ = invoke(database_url, "touches", "list", "--account", str(ACCOUNT), "--status", "dead_letter")
    assert code == 0 and str(touch) in out and "gave up after 5 attempts" in out
    code, out, _ = invoke(
        database_url, "touches", "requeue", str(touch), "--account", str(ACCOUNT), "--reason", "fixed"
    )
    assert code == 0 and f"requeued {touch}" in out
    code, _, err = invoke(database_url, "touches", "requeue", str(touch), "--account", str(ACCOUNT))
    assert code == 2 and "is scheduled: only dead-lettered or failed touch runs are requeued" in err
    other = str(uuid.UUID(int=ACCOUNT.int + 1))
    code, _, err = invoke(database_url, "touches", "requeue", str(touch), "--account", other)
    assert code == 2 and "no touch run" in err
    code, _, err = invoke(database_url, "touches", "requeue", "not-a-uuid", "--account", str(ACCOUNT))
    assert code == 2 and "not-a-uuid" in err
    code, _, err = invoke(database_url, "touches", "list", "--account", str(ACCOUNT), "--status", "lost")
    assert code == 2 and "unknown status 'lost'" in err


def test_providers_says_which_channel_goes_where_and_refuses_a_bad_choice(database_url: str) -> None:
    code, out, _ = invoke(database_url, "touches", "providers")
    assert code == 0
    lines = dict(line.split(maxsplit=1) for line in out.strip().splitlines())
    assert lines == {
        "sms": "twilio (sandbox)",
        "whatsapp": "twilio (sandbox)",
        "voice": "twilio (sandbox)",
        "email": "elastic (not configured: missing_elastic_env)",
    }
    code, out, _ = invoke(
        database_url,
        "touches",
        "providers",
        TELNYX_API_KEY="KEY123",
        SMS_PROVIDER="telnyx",
        VOICE_CARRIER_PRIMARY="telnyx",
    )
    assert code == 0 and "sms       telnyx\n" in out and "voice     telnyx\n" in out
    code, _, err = invoke(database_url, "touches", "providers", SMS_PROVIDER="carrier-pigeon")
    assert code == 2 and "SMS_PROVIDER must be one of twilio, telnyx, got 'carrier-pigeon'" in err
    code, _, err = invoke(database_url, "touches", "providers", TWILIO_ACCOUNT_SID="AC123")
    assert code == 2 and "TWILIO_AUTH_TOKEN is not set" in err


def test_bench_e2e_sends_every_first_touch_once(database_url: str, nats_url: str) -> None:
    code, out, err = invoke(database_url, "bench", "e2e", "--leads", "300", "--json", TOUCHLINE_NATS_URL=nats_url)
    assert code == 0, err
    result = json.loads(out)
    assert result["leads"] == 300 and result["dispatched"] == 300
    assert result["duplicates"] == 0 and result["lost"] == 0 and not result["timed_out"]
    assert 0 <= result["p50_ms"] <= result["p99_ms"] <= result["max_ms"]
    assert set(result["stages"]) == {"ingested→enrolled", "enrolled→scheduled", "scheduled→dispatched"}
    code, out, _ = invoke(database_url, "bench", "e2e", "--leads", "0")
    assert code == 2 and "--leads must be 1 to 1000000" in out + _


def test_bench_voice_streams_every_frame_both_ways(database_url: str) -> None:
    code, out, err = invoke(database_url, "bench", "voice", "--calls", "5", "--seconds", "1", "--json")
    assert code == 0, err
    result = json.loads(out)
    assert result["calls"] == 5 and result["calls_completed"] == 5
    assert result["frames_sent"] == 5 * 50 and result["frames_lost"] == 0
    assert 0 <= result["in_p50_ms"] <= result["in_p99_ms"] and 0 <= result["out_p50_ms"] <= result["out_p99_ms"]
    assert result["cpu_percent"] > 0
    code, out, err = invoke(database_url, "bench", "voice", "--calls", "0")
    assert code == 2 and "--calls must be 1 to 5000" in out + err


def test_bench_commands_answers_every_command_beside_its_raw_baseline(database_url: str, nats_url: str) -> None:
    code, out, err = invoke(
        database_url,
        "bench",
        "commands",
        "--commands",
        "200",
        "--concurrency",
        "8",
        "--json",
        TOUCHLINE_NATS_URL=nats_url,
    )
    assert code == 0, err
    result = json.loads(out)
    assert (result["commands"], result["refused"], result["events"]) == (200, 0, 200)
    assert 0 < result["p50_ms"] <= result["p99_ms"] and 0 < result["baseline_p50_ms"] <= result["baseline_p99_ms"]
    assert result["commands_per_s"] > 0 and result["baseline_per_s"] > 0
    code, out, err = invoke(database_url, "bench", "commands", "--concurrency", "0")
    assert code == 2 and "--concurrency 1 to 1024" in out + err
