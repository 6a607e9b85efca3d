"""`touchline campaigns ...` and `touchline settings ...` as an operator uses them."""

from __future__ import annotations

import json
import re
import uuid

from typer.testing import CliRunner

from gateways.cli import app

runner = CliRunner()
ACCOUNT = "00000000-0000-4000-8000-0000000000c7"


def invoke(database_url: str, *args: str) -> tuple[int, str, str]:
    result = runner.invoke(app, list(args), env={"TOUCHLINE_DATABASE_URL": database_url, "COLUMNS": "220"})
    return result.exit_code, result.stdout, result.stderr


def test_create_list_toggle_and_pause_all(database_url: str) -> None:
    code, out, err = invoke(
        database_url, "campaigns", "create", "--account", ACCOUNT, "--key", "autos_outbound_miami",
        "--name", "Autos Miami", "--step", "sms", "--step", "voice:60", "--step", "whatsapp:1440:follow_up_v1",
    )  # fmt: skip
    assert code == 0, err
    campaign_id = re.search(r"\(([0-9a-f-]{36})\)", out).group(1)  # type: ignore[union-attr]
    assert "paused" in out
    code, out, _ = invoke(database_url, "campaigns", "list", "--account", ACCOUNT)
    assert code == 0 and "autos_outbound_miami" in out and "1:sms+0m, 2:voice+60m, 3:whatsapp+1440m" in out
    assert "paused" in out and "(1 campaign)" in out
    code, out, _ = invoke(database_url, "campaigns", "activate", campaign_id, "--account", ACCOUNT)
    assert code == 0 and f"activated {campaign_id}" in out
    code, out, _ = invoke(database_url, "campaigns", "activate", campaign_id, "--account", ACCOUNT)
    assert code == 0 and "was already active" in out
    code, out, _ = invoke(
        database_url, "campaigns", "create", "--account", ACCOUNT, "--key", "second", "--name", "Second",
        "--step", "sms", "--activate",
    )  # fmt: skip
    assert code == 0 and "active" in out
    code, out, _ = invoke(database_url, "campaigns", "pause-all", "--account", ACCOUNT)
    assert code == 0 and "paused 2 campaigns" in out and campaign_id in out
    code, out, _ = invoke(database_url, "campaigns", "list", "--account", ACCOUNT)
    assert "active" not in out.replace("autos_outbound", "")  # every row says paused


def test_bad_campaign_commands_are_clear(database_url: str) -> None:
    code, _, err = invoke(
        database_url, "campaigns", "create", "--account", ACCOUNT, "--key", "k", "--name", "K", "--step", "fax:10"
    )
    assert code == 2 and "campaign.create: steps[0].channel: unknown channel 'fax'" in err
    code, _, err = invoke(database_url, "campaigns", "create", "--account", ACCOUNT, "--key", "k", "--name", "K",
                          "--step", "sms:soon")  # fmt: skip
    assert code == 2 and "the delay must be whole minutes" in err
    missing = str(uuid.uuid4())
    code, _, err = invoke(database_url, "campaigns", "pause", missing, "--account", ACCOUNT)
    assert code == 2 and f"no campaign {missing} in this account" in err
    code, _, err = invoke(database_url, "campaigns", "list", "--account", "acme")
    assert code == 2 and "takes an account uuid" in err
    code, out, _ = invoke(database_url, "sql", "select count(*) from touchline.events")
    assert "│ 0 " in out  # nothing was appended


def test_settings_set_and_show(database_url: str) -> None:
    code, _, err = invoke(database_url, "settings", "set", "--account", ACCOUNT)
    assert code == 2 and "nothing to set" in err
    code, _, err = invoke(
        database_url, "settings", "set", "--account", ACCOUNT, "--business-name", "Miami Motors",
        "--contact-email", "not-an-email",
    )  # fmt: skip
    assert code == 2 and "settings.update: contact_email: 'not-an-email' is not an email address" in err
    code, out, err = invoke(
        database_url, "settings", "set", "--account", ACCOUNT, "--business-name", "Miami Motors",
        "--contact-email", "sales@miamimotors.com", "--contact-whatsapp", "+13055550111",
    )  # fmt: skip
    assert code == 0, err
    code, _, err = invoke(database_url, "settings", "set", "--account", ACCOUNT, "--routing-active")
    assert code == 2 and "dealer_address: routing cannot be active without a dealer address" in err
    code, out, err = invoke(
        database_url, "settings", "set", "--account", ACCOUNT, "--dealer-address", "1 Biscayne Blvd",
        "--radius-miles", "20", "--city-fallback", "miami", "--routing-active",
    )  # fmt: skip
    assert code == 0 and "LeadGen routing active" in out, err
    code, out, _ = invoke(database_url, "settings", "show", "--account", ACCOUNT, "--json")
    shown = json.loads(out)
    assert shown["business_name"] == "Miami Motors" and shown["contact_whatsapp"] == "+13055550111"
    assert shown["leadgen_routing"] == {
        "dealer_address": "1 Biscayne Blvd",
        "radius_miles": 20,
        "city_fallback": "miami",
        "active": True,
    }
    code, out, _ = invoke(database_url, "settings", "show", "--account", ACCOUNT)
    assert code == 0 and "sales@miamimotors.com" in out and "car_dealer" in out
    code, out, err = invoke(
        database_url, "settings", "set", "--account", ACCOUNT, "--daily-cap", "sms=200", "--daily-cap", "voice=50"
    )
    assert code == 0, err
    code, out, err = invoke(database_url, "settings", "set", "--account", ACCOUNT, "--daily-cap", "voice=")
    code, out, _ = invoke(database_url, "settings", "show", "--account", ACCOUNT, "--json")
    assert json.loads(out)["daily_caps"] == {"sms": 200}
    code, _, err = invoke(database_url, "settings", "set", "--account", ACCOUNT, "--daily-cap", "fax=3")
    assert code == 2 and "settings.daily_caps: caps.fax: unknown channel 'fax'" in err


def test_autos_activate_and_deactivate(database_url: str) -> None:
    code, out, _ = invoke(database_url, "autos", "activate", "--account", ACCOUNT, "--city", "miami")
    assert code == 1 and "needs_setup" in out and "routing is not configured" in out
    invoke(database_url, "settings", "set", "--account", ACCOUNT, "--business-name", "Miami Motors",
           "--contact-email", "sales@miamimotors.com", "--dealer-address", "1 Biscayne Blvd")  # fmt: skip
    code, out, _ = invoke(database_url, "autos", "activate", "--account", ACCOUNT, "--city", "miami")
    assert code == 1 and "needs_setup" in out and "autos_outbound_miami" in out
    invoke(database_url, "campaigns", "create", "--account", ACCOUNT, "--key", "autos_outbound_miami",
           "--name", "Autos Miami", "--step", "sms")  # fmt: skip
    code, out, _ = invoke(database_url, "autos", "activate", "--account", ACCOUNT, "--city", "Miami")
    assert code == 0 and "activated" in out and "Craigslist discover queued" in out
    code, out, _ = invoke(database_url, "autos", "deactivate", "--account", ACCOUNT, "--city", "miami")
    assert code == 0 and "deactivated" in out and "1 queued task(s) cancelled" in out
