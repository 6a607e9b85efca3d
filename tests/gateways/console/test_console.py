"""The operator console end to end: real PostgreSQL, the read models running, real Chromium.

Every step leaves a screenshot (under tmp_path, and `.ci/artifacts/console/` when it can be made).
"""

from __future__ import annotations

import json
import re
import uuid
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from playwright.async_api import expect

from actors.access import ApiTokens
from actors.campaigns import Campaigns, StepSpec
from actors.org import OrgSettings
from events.catalog import LeadgenRouting, LeadIngested, LeadStatusChanged, lead_stream
from events.postgres import PostgresEventStore
from events.store import NO_STREAM, StreamAppend
from tests.gateways.console.support import Console, open_console, serve_console
from tests.projections.helpers import caught_up, every_projection, running

A = uuid.UUID("00000000-0000-4000-8000-00000000c0a1")
B = uuid.UUID("00000000-0000-4000-8000-00000000c0b2")

expect.set_options(timeout=10_000)


async def _campaigns(store: PostgresEventStore, *, miami_active: bool) -> tuple[uuid.UUID, uuid.UUID]:
    campaigns = Campaigns(store)
    miami = await campaigns.create(
        A, campaign_key="autos_outbound_miami", name="Autos Miami", steps=[StepSpec(step=1, channel="sms")]
    )
    tampa = await campaigns.create(
        A,
        campaign_key="autos_outbound_tampa",
        name="Autos Tampa",
        steps=[StepSpec(step=1, channel="sms"), StepSpec(step=2, channel="voice", delay_minutes=60)],
    )
    if miami_active:
        await campaigns.activate(A, miami.campaign_id)
    return miami.campaign_id, tampa.campaign_id


async def _is_active(c: Console, key: str) -> bool:
    await c.caught_up()
    value = await c.store.pool.fetchval(
        "select is_active from public.campaigns where account_id = $1 and campaign_key = $2", A, key
    )
    assert isinstance(value, bool)
    return value


async def test_login_refuses_a_bad_token_then_takes_a_good_one_and_the_language_toggles(
    pg_store: PostgresEventStore, tmp_path: Path
) -> None:
    async with open_console(pg_store, tmp_path, "login") as c:
        token = await c.token(A)
        page = c.page
        # A page without a session goes to the login, which comes back to it afterwards.
        await page.goto("/console/campaigns")
        await expect(page).to_have_url(re.compile(r"/console/login\?next=%2Fconsole%2Fcampaigns"))
        await expect(page.locator("h1")).to_have_text("Entrar")
        await c.shot("login-page")

        await page.fill("#token", "tl_not-a-token")
        await page.click("#login-submit")
        await expect(page.locator("#login-error")).to_contain_text("no tiene el formato de Touchline")
        await page.fill("#token", "tl_" + "x" * 43)
        await page.click("#login-submit")
        await expect(page.locator("#login-error")).to_contain_text("Ninguna cuenta tiene ese token")
        assert "tl_xxx" not in await page.content()  # a token is never echoed
        await c.shot("login-bad-token")

        await page.fill("#token", token)
        await page.click("#login-submit")
        await expect(page).to_have_url(re.compile(r"/console/campaigns$"))
        await expect(page.locator("h1")).to_have_text("Campañas salientes")
        await expect(page.locator("html")).to_have_attribute("lang", "es")
        await expect(page.locator("#nav-programs")).to_have_text("Programas")
        cookies = {ck["name"]: ck for ck in await c.context.cookies()}
        assert cookies["touchline_token"]["httpOnly"] and cookies["touchline_token"]["path"] == "/console"
        await c.shot("logged-in-spanish")

        await page.click("#lang-toggle")
        await expect(page.locator("h1")).to_have_text("Outbound campaigns")
        await expect(page.locator("html")).to_have_attribute("lang", "en")
        await expect(page.locator("#nav-events")).to_have_text("Event log")
        await expect(page.locator("#lang-toggle")).to_have_text("Español")
        await page.click("#nav-settings")  # the language goes along
        await expect(page.locator("h1")).to_have_text("Settings · Onboarding")
        await expect(page.locator("#step-1 h2")).to_contain_text("Step 1 · Identity")
        await c.shot("english")
        await page.click("#lang-toggle")
        await expect(page.locator("h1")).to_have_text("Ajustes · Onboarding")
        await expect(page.locator("#step-1 h2")).to_contain_text("Paso 1 · Identidad")

        await page.click("#logout")
        await expect(page).to_have_url(re.compile(r"/console/login"))
        await expect(page.locator("#flash")).to_have_text("Sesión cerrada.")
        await page.goto("/console/programs")
        await expect(page).to_have_url(re.compile(r"/console/login"))
        await c.shot("logged-out")


async def test_campaign_toggle_and_pause_all_show_the_new_state_and_the_read_model_agrees(
    pg_store: PostgresEventStore, tmp_path: Path
) -> None:
    await _campaigns(pg_store, miami_active=False)
    async with open_console(pg_store, tmp_path, "campaigns") as c:
        await c.login(await c.token(A))
        page = c.page
        await page.click("#nav-campaigns")
        miami = page.locator('tr[data-key="autos_outbound_miami"]')
        tampa = page.locator('tr[data-key="autos_outbound_tampa"]')
        await expect(miami).to_have_attribute("data-active", "false")
        await expect(miami.locator("[data-state]")).to_have_text("Pausada")
        await expect(tampa.locator("td").nth(3)).to_have_text("1:sms, 2:voice+60m")
        await c.shot("campaigns-paused")

        await page.click('button[data-toggle="autos_outbound_miami"]')
        await expect(page.locator("#flash")).to_have_text("Autos Miami ahora está activa.")
        await expect(miami).to_have_attribute("data-active", "true")
        await expect(miami.locator("[data-state]")).to_have_text("Activa")
        await expect(tampa).to_have_attribute("data-active", "false")
        assert await _is_active(c, "autos_outbound_miami") is True
        assert await _is_active(c, "autos_outbound_tampa") is False
        await c.shot("campaign-activated")

        await page.click('button[data-toggle="autos_outbound_tampa"]')
        await expect(tampa).to_have_attribute("data-active", "true")
        await expect(page.locator("#pause-all button")).to_contain_text("(2)")
        await page.click("#pause-all button")
        await expect(page.locator("#flash")).to_have_text("Pausé 2 campaña(s).")
        await expect(miami).to_have_attribute("data-active", "false")
        await expect(tampa).to_have_attribute("data-active", "false")
        await expect(page.locator("#pause-all button")).to_be_disabled()
        assert await _is_active(c, "autos_outbound_miami") is False
        assert await _is_active(c, "autos_outbound_tampa") is False
        # One atomic append: the two pauses share a correlation id.
        correlations = await pg_store.pool.fetch(
            "select distinct correlation_id from touchline.events where event_type = 'CampaignPaused'"
        )
        assert len(correlations) == 1
        await c.shot("paused-all")


async def test_settings_onboarding_three_steps_with_errors_next_to_the_field(
    pg_store: PostgresEventStore, tmp_path: Path
) -> None:
    async with open_console(pg_store, tmp_path, "settings") as c:
        await c.login(await c.token(A))
        page = c.page
        await page.click("#nav-settings")
        await expect(page.locator("#step-1")).to_have_attribute("data-done", "false")
        await c.shot("settings-empty")

        await page.fill("#field-business_name", "Miami Motors")
        await page.click("#save-step-1")
        await expect(page.locator("#flash")).to_contain_text("Paso 1 listo")
        await expect(page.locator('#form-step-2 input[type=hidden][name="business_name"]')).to_have_value(
            "Miami Motors"
        )

        await page.fill("#field-contact_email", "not-an-email")
        await page.click("#save-step-2")
        await expect(page.locator("#error-contact_email")).to_contain_text("is not an email address")
        await expect(page.locator("#field-contact_email")).to_have_attribute("aria-invalid", "true")
        await expect(page.locator("#field-business_name")).to_have_value("Miami Motors")  # kept
        await c.shot("settings-bad-email")

        await page.fill("#field-contact_email", "Sales@MiamiMotors.com")
        await page.fill("#field-contact_phone", "+1 (305) 555-0100")
        await page.fill("#field-contact_whatsapp", "+13055550111")
        await page.click("#save-step-2")
        await expect(page.locator("#flash")).to_have_text("Paso 2 guardado: identidad y contacto.")
        await expect(page.locator("#step-1")).to_have_attribute("data-done", "true")
        await expect(page.locator("#step-2")).to_have_attribute("data-done", "true")
        await expect(page.locator("#field-contact_phone")).to_have_value("+13055550100")

        await page.fill("#field-dealer_address", "1 Biscayne Blvd, Miami FL")
        await page.fill("#field-radius_miles", "80")
        await page.fill("#field-city_fallback", "Miami")
        await page.check("#field-active")
        await page.click("#save-step-3")
        await expect(page.locator("#error-radius_miles")).to_contain_text("must be 1 to 50, got 80")
        await expect(page.locator("#field-radius_miles")).to_have_value("80")
        await expect(page.locator("#field-dealer_address")).to_have_value("1 Biscayne Blvd, Miami FL")
        await expect(page.locator("#field-active")).to_be_checked()
        await expect(page.locator("#error-dealer_address")).to_have_count(0)
        await expect(page.locator("#lang-toggle")).to_have_attribute("href", "/console/settings?lang=en")
        await c.shot("settings-radius-80")

        await page.fill("#field-radius_miles", "25")
        await page.click("#save-step-3")
        await expect(page.locator("#flash")).to_have_text("Paso 3 guardado: LeadGen routing.")
        await expect(page.locator("#step-3")).to_have_attribute("data-done", "true")
        await expect(page.locator("#field-radius_miles")).to_have_value("25")
        await c.shot("settings-saved")

        await c.caught_up()
        row = await pg_store.pool.fetchrow("select * from public.org_settings where account_id = $1", A)
        assert row is not None
        assert (row["business_name"], row["contact_email"], row["contact_phone"], row["contact_whatsapp"]) == (
            "Miami Motors",
            "sales@miamimotors.com",
            "+13055550100",
            "+13055550111",
        )
        assert row["vertical"] == "car_dealer"
        assert json.loads(row["leadgen_routing"]) == {
            "dealer_address": "1 Biscayne Blvd, Miami FL",
            "radius_miles": 25,
            "city_fallback": "miami",
            "active": True,
        }

        # Step 1 again, now that the contact is saved: it is saved on its own.
        await page.fill("#field-business_name", "Miami Motors Group")
        await page.click("#save-step-1")
        await expect(page.locator("#flash")).to_have_text("Paso 1 guardado.")
        await expect(page.locator("#field-business_name")).to_have_value("Miami Motors Group")
        await expect(page.locator("#field-contact_email")).to_have_value("sales@miamimotors.com")


async def test_programs_need_routing_then_start_confirm_and_stop(pg_store: PostgresEventStore, tmp_path: Path) -> None:
    async with open_console(pg_store, tmp_path, "programs") as c:
        await c.login(await c.token(A))
        page = c.page
        craigslist = page.locator("#program-craigslist")
        await expect(craigslist.locator(".next-action").first).to_contain_text("Set up LeadGen routing")
        await craigslist.locator('form[data-start] input[name="city"]').fill("Miami")
        await craigslist.locator("form[data-start] button").click()
        await expect(page.locator("#flash")).to_contain_text("Falta el LeadGen routing para iniciar craigslist miami")
        await expect(page.locator("#flash [data-confirm]")).to_have_text("Iniciar sin routing (override)")
        await c.shot("programs-needs-setup")

        org = OrgSettings(pg_store)
        await org.update(A, business_name="Miami Motors", contact_email="sales@miamimotors.com")
        await org.set_routing(A, LeadgenRouting(dealer_address="1 Biscayne Blvd", radius_miles=20, active=True))
        await c.caught_up()
        await page.reload()
        await craigslist.locator('form[data-start] input[name="city"]').fill("Miami")
        await craigslist.locator("form[data-start] button").click()
        await expect(page.locator("#flash")).to_contain_text("Programa iniciado: craigslist miami.")
        row = 'tr[data-program="craigslist"][data-city="miami"][data-running="true"]'
        # Two read models move here (the program, then its queued discover): wait for both.
        await c.reload_until(row + ' [data-status="Pending"]')
        miami = page.locator(row)
        await expect(miami.locator("[data-status]")).to_have_text("Pendiente")
        await expect(miami).to_contain_text("1 en cola")
        await expect(miami.locator(".next-action")).to_contain_text("task(s) queued")
        await c.shot("programs-started")

        # Started again: it runs already, so it asks; confirming queues a discover now.
        await craigslist.locator('form[data-start] input[name="city"]').fill("miami")
        await craigslist.locator("form[data-start] button").click()
        await expect(page.locator("#flash")).to_contain_text("craigslist miami ya está corriendo")
        await c.shot("programs-needs-confirmation")
        await page.click("#flash [data-confirm]")
        await expect(page.locator("#flash")).to_contain_text("Búsqueda encolada: craigslist miami.")

        await page.locator(row).locator('button[data-action="stop"]').click()
        await expect(page.locator("#flash")).to_contain_text("Programa detenido: craigslist miami.")
        await expect(page.locator("#flash small")).to_contain_text("2 queued task(s) cancelled")
        stopped = 'tr[data-program="craigslist"][data-city="miami"][data-running="false"]'
        await c.reload_until(stopped)
        await expect(page.locator(stopped).locator("[data-status]")).to_have_text("Desactivado")
        await expect(page.locator(stopped).locator('button[data-action="start"]')).to_be_visible()
        await c.shot("programs-stopped")
        await c.caught_up()
        assert await pg_store.pool.fetchval(
            "select running from public.lead_programs where account_id = $1 and city = 'miami'", A
        ) is False  # fmt: skip


async def test_command_os_box_answers_inline_and_without_javascript(
    pg_store: PostgresEventStore, tmp_path: Path
) -> None:
    await _campaigns(pg_store, miami_active=True)
    async with open_console(pg_store, tmp_path, "command") as c:
        token = await c.token(A)
        await c.login(token)
        page = c.page
        await page.click("#nav-campaigns")
        await page.fill("#command-text", "¿qué campañas están activas?")
        await page.click("#command-form button")
        reply = page.locator("#command-reply")
        await expect(reply).to_contain_text("Autos Miami")
        await expect(reply).not_to_contain_text("Autos Tampa")
        await expect(reply).to_have_attribute("data-outcome", "ok")
        await expect(page).to_have_url(re.compile(r"/console/campaigns$"))  # answered in place
        await c.shot("command-inline")

        context, bare = await c.new_context(javascript=False)
        try:
            await c.login(token, bare)
            await bare.fill("#command-text", "which campaigns are active?")
            await bare.click("#command-form button")
            await expect(bare).to_have_url(re.compile(r"/console/command"))
            await expect(bare.locator("#command-asked")).to_have_text("which campaigns are active?")
            await expect(bare.locator("#command-answer-text")).to_contain_text("Autos Miami")
            await expect(bare.locator("#command-answer")).to_have_attribute("data-outcome", "ok")
            await c.shot("command-without-js", bare)
        finally:
            await context.close()
        operators = await pg_store.pool.fetch(
            "select data->>'operator' as operator, data->>'intent' as intent from touchline.events"
            " where event_type = 'OperatorCommandReceived' order by position"
        )
        assert [(r["operator"], r["intent"]) for r in operators] == [("console", "campaign.list")] * 2


async def _leads(store: PostgresEventStore, account: uuid.UUID, n: int, *, prefix: str) -> list[uuid.UUID]:
    # One append: equal created_at, so the list orders them by id; sorted, the first ones are page 1.
    ids = sorted(uuid.uuid4() for _ in range(n))
    await store.append_many(
        [
            StreamAppend(
                stream_id=lead_stream(lead_id),
                events=[
                    LeadIngested(
                        lead_id=lead_id, account_id=account, source="craigslist", external_id=f"{prefix}-{i}",
                        city="miami", title=f"{prefix} {i}", phone=f"+1305555{i:04d}",
                    )
                ],
                expected_version=NO_STREAM,
            )
            for i, lead_id in enumerate(ids)
        ]
    )  # fmt: skip
    return ids


async def test_leads_list_pages_and_a_lead_shows_its_history_but_not_another_accounts(
    pg_store: PostgresEventStore, tmp_path: Path
) -> None:
    ours = await _leads(pg_store, A, 27, prefix="Sedan")
    (theirs,) = await _leads(pg_store, B, 1, prefix="Secret Truck")
    await pg_store.append(
        lead_stream(ours[3]), [LeadStatusChanged(lead_id=ours[3], account_id=A, status="contacted", reason="test")]
    )
    async with open_console(pg_store, tmp_path, "leads") as c:
        await c.login(await c.token(A))
        page = c.page
        await page.click("#nav-leads")
        await expect(page.locator("#lead-rows tr")).to_have_count(25)
        await expect(page.locator("#page-info")).to_have_text("Página 1 de 2 · 27 en total")
        await expect(page.locator(f'tr[data-lead="{ours[0]}"]')).to_contain_text("enroll")
        await c.shot("leads-page-1")
        await page.click("#page-next")
        await expect(page.locator("#lead-rows tr")).to_have_count(2)
        await page.click("#page-prev")
        assert "Secret Truck" not in await page.content()

        await page.locator(f'tr[data-lead="{ours[3]}"] a.lead-link').click()
        await expect(page).to_have_url(re.compile(f"/console/leads/{ours[3]}$"))
        await expect(page.locator("h1")).to_have_text("Lead: Sedan 3")
        history = page.locator("#lead-history tr")
        await expect(history).to_have_count(2)
        await expect(history.nth(0)).to_have_attribute("data-type", "LeadIngested")
        await expect(history.nth(1)).to_have_attribute("data-type", "LeadStatusChanged")
        await expect(history.nth(1)).to_contain_text('"status": "contacted"')
        await expect(page.locator("#next-action")).to_have_text("wait")
        await expect(page.locator("#lead-details")).to_contain_text("+13055550003")
        await c.shot("lead-history")

        response = await page.goto(f"/console/leads/{theirs}")
        assert response is not None and response.status == 404
        await expect(page.locator("h1")).to_have_text("No encontrado")
        await expect(page.locator("#error")).to_contain_text(f"No hay un lead {theirs} en esta cuenta")
        assert "Secret Truck" not in await page.content()
        await c.shot("other-accounts-lead-404")
        response = await page.goto("/console/leads/not-a-uuid")
        assert response is not None and response.status == 404


async def test_event_log_filters_by_type_and_stream_and_follows_live(
    pg_store: PostgresEventStore, tmp_path: Path
) -> None:
    miami, tampa = await _campaigns(pg_store, miami_active=True)
    await _leads(pg_store, B, 1, prefix="Other account")
    async with open_console(pg_store, tmp_path, "events") as c:
        await c.login(await c.token(A))
        page = c.page
        await page.click("#nav-events")
        rows = page.locator("#event-rows tr")
        # The account's own: 2 created, 1 activated, its token; never the other account's lead.
        await expect(rows).to_have_count(4)
        await expect(rows.first).to_have_attribute("data-type", "ApiTokenIssued")  # newest first
        assert "LeadIngested" not in await page.locator("#event-rows").inner_text()
        await c.shot("events-all")

        await page.select_option("#filter-type", "CampaignCreated")
        await page.click("#filter-submit")
        await expect(page).to_have_url(re.compile(r"type=CampaignCreated"))
        await expect(rows).to_have_count(2)
        for i in range(2):
            await expect(rows.nth(i)).to_have_attribute("data-type", "CampaignCreated")
        await c.shot("events-by-type")

        await page.fill("#filter-stream", f"campaign-{tampa}")
        await page.click("#filter-submit")
        await expect(rows).to_have_count(1)
        await expect(rows.first).to_contain_text("autos_outbound_tampa")

        await page.select_option("#filter-type", "CampaignActivated")
        await page.fill("#filter-stream", "campaign-")
        await page.click("#filter-submit")
        await expect(rows).to_have_count(1)
        await page.check("#follow")
        await Campaigns(pg_store).activate(A, tampa)
        await Campaigns(pg_store).pause(A, miami)  # another type: not shown under this filter
        await expect(rows).to_have_count(2)
        await expect(rows.first).to_have_class("new-row")
        await expect(rows.first).to_contain_text(f"campaign-{tampa}")
        await c.shot("events-followed-live")

        status, body = await _json(c, "/console/events.json?after=0&type=CampaignPaused")
        assert status == 200 and [e["type"] for e in body["events"]] == ["CampaignPaused"]
        assert body["last"] >= body["events"][0]["position"]


async def _json(c: Console, path: str) -> tuple[int, dict[str, Any]]:
    response = await c.page.request.get(path, headers={"Accept": "application/json"})
    body = await response.json()
    assert isinstance(body, dict)
    return response.status, body


async def test_posts_need_the_csrf_code_unknown_pages_are_404_and_the_cookie_never_opens_the_api(
    pg_store: PostgresEventStore, tmp_path: Path
) -> None:
    await _campaigns(pg_store, miami_active=True)
    async with open_console(pg_store, tmp_path, "csrf") as c:
        await c.login(await c.token(A))
        page = c.page
        await page.click("#nav-campaigns")
        forms: list[dict[str, str | float | bool]] = [{}, {"csrf": "0" * 64}]
        for form in forms:
            refused = await page.request.post("/console/campaigns/pause-all", form=form, max_redirects=0)
            assert refused.status == 403
            assert "CSRF" in await refused.text()
        refused = await page.request.post("/console/command", form={"text": "pausa todas las campañas"})
        assert refused.status == 403
        await page.reload()
        await expect(page.locator('tr[data-key="autos_outbound_miami"]')).to_have_attribute("data-active", "true")
        assert await _is_active(c, "autos_outbound_miami") is True

        csrf = await page.locator('#pause-all input[name="csrf"]').input_value()
        accepted = await page.request.post("/console/campaigns/pause-all", form={"csrf": csrf}, max_redirects=0)
        assert accepted.status == 303  # the page's own code works

        response = await page.goto("/console/nothing-here")
        assert response is not None and response.status == 404
        await expect(page.locator("h1")).to_have_text("No encontrado")
        await c.shot("unknown-page-404")

        # The session cookie is the console's only: the API still wants the header.
        api = await page.request.get("/api/programs/list")
        assert api.status == 401
        context, fresh = await c.new_context()
        try:
            script = await fresh.request.get("/console/events.json?after=0")
            assert script.status == 401 and "Authorization" in (await script.json())["error"]
        finally:
            await context.close()


@pytest.mark.parametrize("target", ["//evil.example/", "https://evil.example/", "/api/programs/list"])
def test_login_only_returns_to_console_pages(target: str) -> None:
    from gateways.console.session import HOME_PATH, safe_next

    assert safe_next(target) == HOME_PATH
    assert safe_next("/console/leads?page=2") == "/console/leads?page=2"


@pytest.mark.parametrize("middleware", ["first", "before_token_check"])
async def test_the_cookie_session_works_with_the_middleware_first_or_right_before_the_token_check(
    pg_store: PostgresEventStore, middleware: str
) -> None:
    """Without a browser: the redirects, the cookie, a revoked token, and a bearer header instead."""
    jar = aiohttp.CookieJar(unsafe=True)  # the server is an IP address
    async with (
        running(pg_store, every_projection()) as workers,
        serve_console(pg_store, middleware=middleware) as url,
        aiohttp.ClientSession(url, cookie_jar=jar) as http,
    ):
        token_id, token = await ApiTokens(pg_store).issue(A, "console")
        await caught_up(pg_store, workers)
        async with http.get("/console/leads?lang=en", allow_redirects=False) as resp:
            assert resp.status == 303
            assert resp.headers["Location"] == "/console/login?next=%2Fconsole%2Fleads%3Flang%3Den&lang=en"
        async with http.get("/console/login") as resp:
            assert resp.status == 200 and resp.content_type == "text/html"
        form = {"token": token, "next": "/console/leads"}
        async with http.post("/console/login?lang=en", data=form, allow_redirects=False) as resp:
            assert resp.status == 303 and resp.headers["Location"] == "/console/leads?lang=en"
            assert "HttpOnly" in resp.headers["Set-Cookie"] and "SameSite=Lax" in resp.headers["Set-Cookie"]
        async with http.get("/console/leads") as resp:
            assert resp.status == 200 and "<h1>Leads</h1>" in await resp.text()
            assert "script-src 'nonce-" in resp.headers["Content-Security-Policy"]

        await ApiTokens(pg_store).revoke(A, token_id)
        await caught_up(pg_store, workers)
        async with http.get("/console/leads", allow_redirects=False) as resp:
            assert resp.status == 303 and "expired=1" in resp.headers["Location"]
        assert not [c for c in jar if c.key == "touchline_token"]  # dropped with the redirect

        _, fresh = await ApiTokens(pg_store).issue(A, "script")
        await caught_up(pg_store, workers)
        async with aiohttp.ClientSession(url) as bare:
            async with bare.get("/console/events.json?after=0", headers={"Authorization": f"Bearer {fresh}"}) as resp:
                assert resp.status == 200 and "events" in await resp.json()
            async with bare.get("/console/events.json?after=0") as resp:
                assert resp.status == 401
