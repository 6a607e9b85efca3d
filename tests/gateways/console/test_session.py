"""The console session across processes: a CSRF code from one HTTP process is good on another.

Two console servers on one log stand for two `touchline up --role http` processes behind a load
balancer (or one restarted): the form a browser got from the first must post to the second.
"""

from __future__ import annotations

import re
import uuid

import aiohttp

from actors.access import ApiTokens
from actors.campaigns import Campaigns, StepSpec
from events.postgres import PostgresEventStore
from tests.gateways.console.support import serve_console
from tests.projections.helpers import caught_up, every_projection, running

A = uuid.UUID("00000000-0000-4000-8000-0000000000c7")


async def test_a_form_from_one_http_process_posts_to_another_and_a_forged_code_does_not(
    pg_store: PostgresEventStore,
) -> None:
    campaigns = Campaigns(pg_store)
    created = await campaigns.create(
        A, campaign_key="autos_outbound_miami", name="Autos Miami", steps=[StepSpec(step=1, channel="sms")]
    )
    await campaigns.activate(A, created.campaign_id, reason="test")
    async with running(pg_store, every_projection()) as workers, serve_console(pg_store) as first:
        _, token = await ApiTokens(pg_store).issue(A, "console")
        await caught_up(pg_store, workers)
        async with serve_console(pg_store) as second, aiohttp.ClientSession() as browser:
            async with browser.post(f"{first}/console/login", data={"token": token}, allow_redirects=False) as r:
                assert r.status in (302, 303), await r.text()
                cookie = r.cookies["touchline_token"].value
            jar = {"Cookie": f"touchline_token={cookie}"}
            async with browser.get(f"{first}/console/campaigns", headers=jar) as r:
                page = await r.text()
            found = re.search(r'id="pause-all".*?name="csrf" value="([0-9a-f]{64})"', page, re.S)
            assert found is not None, page[:2000]
            code = found.group(1)
            for forged in ("0" * 64, code[:-1] + ("0" if code[-1] != "0" else "1")):
                async with browser.post(
                    f"{second}/console/campaigns/pause-all", data={"csrf": forged}, headers=jar, allow_redirects=False
                ) as r:
                    assert r.status == 403
            async with browser.post(
                f"{second}/console/campaigns/pause-all", data={"csrf": code}, headers=jar, allow_redirects=False
            ) as r:
                assert r.status == 303, await r.text()
    state = await campaigns.get(A, created.campaign_id)
    assert state is not None and not state.is_active
