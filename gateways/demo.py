"""`touchline demo`: the whole machine on the embedded default, for a newcomer, in one command.

It serves a bundled listings site (Craigslist's DOM, by-owner cars in Miami), seeds a demo
account (onboarding, LeadGen routing, the `autos_outbound_miami` campaign), starts Craigslist
Miami, and runs every role: the hunter in Chromium, the cadence runner, the touch orchestrator,
the dispatch engine with sandbox providers, the projections and the HTTP server. It prints a
runtime-status table as leads flow into touches, and the console's URL with a token to log in.
"""

from __future__ import annotations

import os
import signal
import time
import uuid
from collections.abc import Callable
from typing import Final

import anyio
import asyncpg
import msgspec
import structlog

from actors.access import ApiTokens
from actors.campaigns import Campaigns, StepSpec
from actors.org import OrgSettings
from actors.programs import Programs
from events.bus import connect as connect_bus
from events.catalog import LeadgenRouting
from events.postgres import PostgresEventStore, open_postgres_store
from events.relay import OutboxRelay
from events.settings import Settings
from gateways.cli_common import migrate_database
from gateways.embedded import open_infrastructure
from gateways.http import run_http
from gateways.listings.site import CRAIGSLIST_TEMPLATE_PATH, ListingSite, generate_listings, serve_listing_site
from gateways.roles import parse_roles, supervise_roles

log = structlog.get_logger("touchline.demo")

DEMO_ACCOUNT: Final = uuid.UUID("00000000-0000-4000-8000-00000000de00")
CAMPAIGN_KEY: Final = "autos_outbound_miami"


class DemoStatus(msgspec.Struct, kw_only=True):
    leads: int = 0
    touch_runs: int = 0
    dispatched: int = 0
    waiting: int = 0
    tasks_done: int = 0
    tasks_failed: int = 0
    campaign_active: bool = False


async def seed(store: PostgresEventStore) -> None:
    """The demo account, once: onboarding, routing, the campaign (a second run reuses them)."""
    org = OrgSettings(store)
    state = await org.get(DEMO_ACCOUNT)
    if state.business_name is None:
        await org.update(
            DEMO_ACCOUNT,
            business_name="Miami Motors (demo)",
            contact_email="ventas@miamimotors.example",
            contact_phone="+13055550000",
        )
    if not state.routing_active:
        await org.set_routing(
            DEMO_ACCOUNT, LeadgenRouting(dealer_address="1 Biscayne Blvd, Miami, FL", radius_miles=25, active=True)
        )
    campaigns = Campaigns(store)
    existing = {c.campaign_key: c for c in await campaigns.all(DEMO_ACCOUNT)}
    campaign = existing.get(CAMPAIGN_KEY)
    if campaign is None:
        created = await campaigns.create(
            DEMO_ACCOUNT,
            campaign_key=CAMPAIGN_KEY,
            name="Autos Miami",
            steps=[
                StepSpec(step=1, channel="sms"),
                StepSpec(step=2, channel="whatsapp", delay_minutes=60, template="HXdemo0000000000000000000000000000"),
                StepSpec(step=3, channel="voice", delay_minutes=24 * 60),
            ],
        )
        await campaigns.activate(DEMO_ACCOUNT, created.campaign_id)
    elif not campaign.is_active:
        await campaigns.activate(DEMO_ACCOUNT, campaign.campaign_id)


async def status(store: PostgresEventStore) -> DemoStatus:
    try:
        row = await store.pool.fetchrow(
            "select (select count(*) from public.leads where account_id = $1),"
            " (select count(*) from public.touch_runs where account_id = $1),"
            " (select count(*) from public.touch_runs where account_id = $1 and status = 'dispatched'),"
            " (select count(*) from public.touch_runs where account_id = $1 and status = 'scheduled'),"
            " (select count(*) from lead_hunter.craigslist_tasks_v1 where account_id = $1 and status = 'done'),"
            " (select count(*) from lead_hunter.craigslist_tasks_v1 where account_id = $1 and status = 'failed'),"
            " (select coalesce(bool_or(is_active), false) from public.campaigns where account_id = $1)",
            DEMO_ACCOUNT,
        )
    except asyncpg.UndefinedTableError:
        return DemoStatus()
    assert row is not None
    return DemoStatus(
        leads=row[0],
        touch_runs=row[1],
        dispatched=row[2],
        waiting=row[3],
        tasks_done=row[4],
        tasks_failed=row[5],
        campaign_active=row[6],
    )


async def run_demo(
    settings: Settings,
    *,
    listings: int = 30,
    seconds: float | None = None,
    say: Callable[[str], None] = print,
) -> DemoStatus:
    """Run until Ctrl-C (or `seconds`); the last runtime status."""
    site = ListingSite(page_size=20)
    site.add_all(generate_listings("miami", listings, seed=11, start_id=7790000000))
    started = time.monotonic()
    async with serve_listing_site(site) as base:
        # The hunter reads its knobs from the environment: point it at the bundled site, briskly.
        os.environ.update(
            {
                "CL_BASE_URL_TEMPLATE": base + CRAIGSLIST_TEMPLATE_PATH,
                "CL_JITTER_MIN_MS": "100",
                "CL_JITTER_MAX_MS": "300",
                "CL_SLOWMO": "0",
                "CL_HEADLESS": "1",
            }
        )
        async with open_infrastructure(settings) as infra:
            await migrate_database(infra.database_url)
            nc = await connect_bus(infra.nats_url, name="touchline-demo", reconnect_forever=True)
            try:
                async with open_postgres_store(infra.database_url) as store, anyio.create_task_group() as tg:
                    await seed(store)
                    _, token = await ApiTokens(store).issue(DEMO_ACCOUNT, "demo", issued_by="touchline demo")
                    await tg.start(OutboxRelay(store, nc, settings).run)
                    supervisor = supervise_roles(parse_roles(None), store=store, nc=nc, settings=settings)
                    await tg.start(supervisor.run)
                    url = await tg.start(run_http, store, settings)
                    result = await Programs(store).start(
                        DEMO_ACCOUNT, "craigslist", "miami", confirm=True, started_by="touchline demo"
                    )
                    say(f"Touchline demo ready in {time.monotonic() - started:.1f} s")
                    say(f"  listings site: {base}{CRAIGSLIST_TEMPLATE_PATH.format(city='miami')}")
                    say(f"  craigslist miami: {result.message}")
                    say(f"  console: {url}/console/login   token: {token}")
                    say(f"  API:     curl -H 'Authorization: Bearer {token}' {url}/api/programs/list")
                    say(f"  ask:     touchline ask --account {DEMO_ACCOUNT} '¿qué campañas están activas?'")
                    say("  leads  touch runs  dispatched (sandbox)  waiting  tasks done/failed")
                    last = DemoStatus()
                    with anyio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
                        async with anyio.create_task_group() as watch:

                            async def report() -> None:
                                nonlocal last
                                while True:
                                    now = await status(store)
                                    if now != last:
                                        say(
                                            f"  {now.leads:>5}  {now.touch_runs:>10}  {now.dispatched:>20}  "
                                            f"{now.waiting:>7}  {now.tasks_done}/{now.tasks_failed}"
                                        )
                                        last = now
                                    await anyio.sleep(2.0)

                            async def until_stopped() -> None:
                                if seconds is not None:
                                    with anyio.move_on_after(seconds):
                                        async for _ in signals:
                                            break
                                else:
                                    async for _ in signals:
                                        break
                                watch.cancel_scope.cancel()

                            watch.start_soon(report)
                            watch.start_soon(until_stopped)
                    last = await status(store)
                    await supervisor.stop(5.0)
                    tg.cancel_scope.cancel()
            finally:
                with anyio.CancelScope(shield=True):
                    await nc.close()
    return last
