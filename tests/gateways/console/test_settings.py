"""The console's senders form over plain HTTP: saved through the same command, refusals shown at the field."""

from __future__ import annotations

import re
import uuid

import aiohttp

from actors.access import ApiTokens
from actors.org import OrgSettings
from events.postgres import PostgresEventStore
from tests.gateways.console.support import serve_console
from tests.projections.helpers import caught_up, every_projection, running

A = uuid.UUID("00000000-0000-4000-8000-0000000000c9")


async def test_the_senders_form_saves_each_channels_sender_and_shows_a_refusal_at_its_field(
    pg_store: PostgresEventStore,
) -> None:
    async with running(pg_store, every_projection()) as workers, serve_console(pg_store) as url:
        _, token = await ApiTokens(pg_store).issue(A, "console")
        await caught_up(pg_store, workers)
        async with aiohttp.ClientSession() as browser:
            async with browser.post(f"{url}/console/login", data={"token": token}, allow_redirects=False) as r:
                jar = {"Cookie": f"touchline_token={r.cookies['touchline_token'].value}"}
            async with browser.get(f"{url}/console/settings?lang=en", headers=jar) as r:
                page = await r.text()
            assert "Your own senders" in page and 'id="field-sender_whatsapp"' in page
            found = re.search(r'id="form-senders".*?name="csrf" value="([0-9a-f]{64})"', page, re.S)
            assert found is not None
            form = {"csrf": found.group(1), "sender_sms": "+1 305 555 0100", "sender_voice": "", "sender_email": "x"}
            async with browser.post(f"{url}/console/settings/senders", data=form, headers=jar) as r:
                refused = await r.text()
                assert r.status == 400
            assert 'id="error-sender_email"' in refused and "not an email address" in refused
            assert 'value="+1 305 555 0100"' in refused  # what was typed stays
            assert (await OrgSettings(pg_store).get(A)).senders == {}
            form |= {"sender_email": "Ventas@Dealer.example", "sender_whatsapp": "106540352242922"}
            async with browser.post(
                f"{url}/console/settings/senders", data=form, headers=jar, allow_redirects=False
            ) as r:
                assert r.status == 303 and r.headers["Location"].endswith("#senders")
    assert (await OrgSettings(pg_store).get(A)).senders == {
        "email": "ventas@dealer.example",
        "sms": "+13055550100",
        "whatsapp": "106540352242922",
    }
