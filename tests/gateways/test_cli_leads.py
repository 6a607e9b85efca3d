"""`touchline leads list|show`: the read model, and a lead's whole history across its streams."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime

import anyio
from typer.testing import CliRunner

from events.catalog import (
    LeadIngested,
    LeadStatusChanged,
    TouchRunScheduled,
    lead_stream,
    touch_stream,
)
from events.postgres import open_postgres_store
from gateways.cli import app
from projections.runner import all_views, rebuild
from tests.projections.helpers import every_projection

runner = CliRunner()
ACCOUNT = "00000000-0000-4000-8000-0000000000c9"


def invoke(database_url: str, *args: str) -> tuple[int, str, str]:
    result = runner.invoke(app, list(args), env={"TOUCHLINE_DATABASE_URL": database_url, "COLUMNS": "250"})
    return result.exit_code, result.stdout, result.stderr


def _history(database_url: str) -> uuid.UUID:
    account = uuid.UUID(ACCOUNT)
    lead_id, touch = uuid.uuid4(), uuid.uuid4()

    async def main() -> None:
        async with open_postgres_store(database_url) as store:
            await store.append(
                lead_stream(lead_id),
                [
                    LeadIngested(
                        lead_id=lead_id, account_id=account, source="craigslist", external_id="7712345678",
                        city="miami", title="2014 Toyota Camry", price=8500, phone="+13055550100",
                    )
                ],
            )  # fmt: skip
            await store.append(
                touch_stream(touch),
                [
                    TouchRunScheduled(
                        touch_run_id=touch, account_id=account, lead_id=lead_id, campaign_id=uuid.uuid4(), step=1,
                        channel="sms", scheduled_for=datetime(2026, 11, 24, 13, tzinfo=UTC),
                    )
                ],
            )  # fmt: skip
            await store.append(
                lead_stream(lead_id), [LeadStatusChanged(lead_id=lead_id, account_id=account, status="contacted")]
            )
            other = uuid.uuid4()
            await store.append(
                lead_stream(other),
                [LeadIngested(lead_id=other, account_id=uuid.uuid4(), source="craigslist", external_id="1")],
            )
            projections = every_projection()
            await rebuild(store, projections, all_views(projections))

    anyio.run(main)
    return lead_id


def test_before_the_read_model_exists_the_error_says_what_to_do(database_url: str) -> None:
    code, _, err = invoke(database_url, "leads", "list", "--account", ACCOUNT)
    assert code == 2 and "touchline projections rebuild leads" in err


def test_list_and_show(database_url: str) -> None:
    lead_id = _history(database_url)
    code, out, _ = invoke(database_url, "leads", "list", "--account", ACCOUNT)
    assert code == 0 and str(lead_id) in out and "contacted" in out and "(1 lead)" in out  # not the other account's
    code, out, _ = invoke(database_url, "leads", "list", "--account", ACCOUNT, "--status", "new")
    assert code == 0 and "(0 leads)" in out
    code, out, _ = invoke(database_url, "leads", "show", str(lead_id), "--account", ACCOUNT, "--json")
    assert code == 0
    lines = [json.loads(line) for line in out.splitlines()]
    assert lines[0]["lead"]["status"] == "contacted" and lines[0]["lead"]["title"] == "2014 Toyota Camry"
    assert [e["type"] for e in lines[1:]] == ["LeadIngested", "TouchRunScheduled", "LeadStatusChanged"]
    code, out, _ = invoke(database_url, "leads", "show", str(lead_id), "--account", ACCOUNT)
    assert code == 0 and "TouchRunScheduled" in out and "7712345678" in out


def test_another_accounts_lead_is_not_found(database_url: str) -> None:
    lead_id = _history(database_url)
    other = "00000000-0000-4000-8000-0000000000ca"
    code, _, err = invoke(database_url, "leads", "show", str(lead_id), "--account", other)
    assert code == 2 and f"no lead {lead_id} in this account" in err


def test_add_a_lead_by_hand(database_url: str) -> None:
    code, _, err = invoke(database_url, "leads", "add", "--account", ACCOUNT, "--phone", "305-555", "--city", "miami")
    assert code == 2 and "leads.add: phone: '305-555' is not an E.164 number" in err
    code, out, _ = invoke(database_url, "leads", "add", "--account", ACCOUNT, "--phone", "+1 (305) 555-0100",
                          "--city", "Miami", "--name", "Ana")  # fmt: skip
    assert code == 0 and out.startswith("added lead ")
    code, out, _ = invoke(
        database_url, "leads", "add", "--account", ACCOUNT, "--phone", "+13055550100", "--city", "miami"
    )
    assert code == 0 and "already exists" in out
    code, out, _ = invoke(database_url, "events", "tail", "--type", "LeadIngested", "--json")
    (line,) = out.splitlines()  # one lead, not two
    assert '"source": "manual"' in line and '"phone": "+13055550100"' in line and '"name": "Ana"' in line
