"""The local listings site: every generated listing parses back, paging is complete, faults serve what they say."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime

import aiohttp
import pytest
from playwright.async_api import TimeoutError as PlaywrightTimeout
from playwright.async_api import async_playwright

from gateways.listings import Blocked, Gone, ListingSource, MissingDom, Posting
from gateways.listings.craigslist import Craigslist
from gateways.listings.encuentra24 import Encuentra24
from gateways.listings.site import (
    CRAIGSLIST_TEMPLATE_PATH,
    ENCUENTRA24_TEMPLATE_PATH,
    Fault,
    ListingSite,
    generate_listings,
    serve_listing_site,
)

NOW = datetime(2026, 1, 10, 12, tzinfo=UTC)
CASES: list[tuple[ListingSource, str, str]] = [
    (Craigslist(), "miami", CRAIGSLIST_TEMPLATE_PATH),
    (Encuentra24(), "costa-rica", ENCUENTRA24_TEMPLATE_PATH),
    (Encuentra24(), "panama", ENCUENTRA24_TEMPLATE_PATH),
]


def _site() -> ListingSite:
    site = ListingSite(page_size=5)
    site.add_all(generate_listings("miami", 23, now=NOW))
    site.add_all(generate_listings("costa-rica", 17, source="encuentra24", start_id=31000000, now=NOW))
    site.add_all(generate_listings("panama", 9, source="encuentra24", start_id=32000000, now=NOW))
    return site


@pytest.fixture
async def served() -> AsyncIterator[tuple[ListingSite, str, aiohttp.ClientSession]]:
    site = _site()
    async with serve_listing_site(site) as base, aiohttp.ClientSession() as http:
        yield site, base, http


async def _get(http: aiohttp.ClientSession, url: str) -> tuple[str, int]:
    async with http.get(url) as response:
        return await response.text(), response.status


async def _crawl(source: ListingSource, base: str, http: aiohttp.ClientSession) -> list[str]:
    url: str | None = source.search_url(base)
    urls: list[str] = []
    while url is not None:
        html, status = await _get(http, url)
        assert status == 200
        page = source.parse_search(html, url)
        urls += page.posting_urls
        url = page.next_url
    return urls


def test_generation_is_deterministic_and_varied() -> None:
    first = generate_listings("miami", 40, seed=3, now=NOW)
    assert first == generate_listings("miami", 40, seed=3, now=NOW)
    assert first != generate_listings("miami", 40, seed=4, now=NOW)
    assert any(not listing.phones for listing in first)
    assert any(len(listing.phones) == 2 for listing in first)
    assert any(listing.emails for listing in first)
    assert all(listing.posted_at.tzinfo is not None and listing.posted_at < NOW for listing in first)
    costa_rica = generate_listings("costa-rica", 20, source="encuentra24", start_id=31000000, now=NOW)
    assert all(phone.startswith("+506") for listing in costa_rica for phone in listing.phones)
    with pytest.raises(ValueError, match="unknown Encuentra24 country slug"):
        generate_listings("mexico", 1, source="encuentra24")


@pytest.mark.parametrize(("source", "city", "template"), CASES, ids=[case[1] for case in CASES])
async def test_round_trip(
    served: tuple[ListingSite, str, aiohttp.ClientSession], source: ListingSource, city: str, template: str
) -> None:
    site, base, http = served
    listings = site.listings(source.key, city)  # type: ignore[arg-type]
    urls = await _crawl(source, base + template.format(city=city), http)
    ids = [source.posting_id(url) for url in urls]
    assert ids == [listing.posting_id for listing in listings]  # every posting once, newest first
    for url, listing in zip(urls, listings, strict=True):
        html, status = await _get(http, url)
        posting = source.parse_detail(html, url, status)
        assert isinstance(posting, Posting), posting
        assert (posting.title, posting.price, posting.body) == (listing.title, listing.price, listing.body)
        assert posting.attributes == listing.attributes
        assert posting.posted_at == listing.posted_at
        assert (posting.phones, posting.emails) == (listing.phones, listing.emails)
        assert (posting.neighborhood, posting.latitude, posting.longitude) == (
            listing.neighborhood, listing.latitude, listing.longitude,
        )  # fmt: skip
        assert posting.country == source.country(city)
    assert sum(site.hits.values()) == len(urls) + -(-len(listings) // site.page_size)


async def test_repost_keeps_the_posting_id(served: tuple[ListingSite, str, aiohttp.ClientSession]) -> None:
    site, base, http = served
    cl = Craigslist()
    oldest = site.listings("craigslist", "miami")[-1]
    old_url = f"{base}{site.posting_path(oldest)}"
    site.repost(oldest.posting_id, "kendall-reposted-camry")
    urls = await _crawl(cl, base + CRAIGSLIST_TEMPLATE_PATH.format(city="miami"), http)
    assert cl.posting_id(urls[0]) == oldest.posting_id
    assert "kendall-reposted-camry" in urls[0]
    assert [cl.posting_id(url) for url in urls].count(oldest.posting_id) == 1
    for url in (urls[0], old_url):
        html, status = await _get(http, url)
        assert isinstance(cl.parse_detail(html, url, status), Posting)


async def test_add_later_goes_on_top(served: tuple[ListingSite, str, aiohttp.ClientSession]) -> None:
    site, base, http = served
    (fresh,) = generate_listings("miami", 1, seed=9, start_id=7799999999, now=NOW)
    site.add(fresh)
    urls = await _crawl(Craigslist(), base + CRAIGSLIST_TEMPLATE_PATH.format(city="miami"), http)
    assert Craigslist().posting_id(urls[0]) == "7799999999"
    assert len(urls) == 24


FAULTS: list[tuple[Fault, type[object], str]] = [
    ("blocked_403", Blocked, "blocked_403"),
    ("blocked_503", Blocked, "blocked_503"),
    ("blocked_200", Blocked, "blocked_200"),
    ("deleted", Gone, "deleted"),
    ("expired", Gone, "expired"),
    ("flagged", Gone, "flagged"),
    ("not_found", Gone, "not_found"),
    ("gone_410", Gone, "not_found"),
    ("missing_dom", MissingDom, ""),
]


@pytest.mark.parametrize(("source", "city", "template"), CASES[:2], ids=["craigslist", "encuentra24"])
@pytest.mark.parametrize(("fault", "kind", "detail"), FAULTS, ids=[f[0] for f in FAULTS])
async def test_posting_faults(
    served: tuple[ListingSite, str, aiohttp.ClientSession],
    source: ListingSource,
    city: str,
    template: str,
    fault: Fault,
    kind: type[object],
    detail: str,
) -> None:
    site, base, http = served
    listing = site.listings(source.key, city)[0]  # type: ignore[arg-type]
    site.set_fault(listing.posting_id, fault)
    url = f"{base}{site.posting_path(listing)}"
    html, status = await _get(http, url)
    result = source.parse_detail(html, url, status)
    assert isinstance(result, kind), result
    if isinstance(result, Blocked):
        assert result.kind == detail
    if isinstance(result, Gone):
        assert result.reason == detail
        assert result.status == (410 if fault == "gone_410" else status)


@pytest.mark.parametrize(("source", "city", "template"), CASES[:2], ids=["craigslist", "encuentra24"])
async def test_search_faults(
    served: tuple[ListingSite, str, aiohttp.ClientSession], source: ListingSource, city: str, template: str
) -> None:
    site, base, http = served
    search = source.search_url(base + template.format(city=city))
    site.set_search_fault(source.key, city, "blocked_200")  # type: ignore[arg-type]
    html, status = await _get(http, search)
    blocked = source.check_block(html, status)
    assert blocked is not None
    assert blocked.kind == "blocked_200"
    site.set_search_fault(source.key, city, "missing_dom")  # type: ignore[arg-type]
    html, status = await _get(http, search)
    assert source.check_block(html, status) is None
    with pytest.raises(ValueError, match="results page"):
        source.parse_search(html, search)
    site.set_search_fault(source.key, city, None)  # type: ignore[arg-type]
    html, _ = await _get(http, search)
    assert len(source.parse_search(html, search).posting_urls) == 5


async def test_hang_times_out_in_chromium_and_pages_survive_a_browser() -> None:
    site = _site()
    cl, e24 = Craigslist(), Encuentra24()
    miami = site.listings("craigslist", "miami")
    hanging = miami[1]
    site.set_fault(hanging.posting_id, "hang")
    async with serve_listing_site(site) as base, async_playwright() as pw:
        browser = await pw.chromium.launch(
            executable_path="/usr/bin/chromium",
            headless=True,
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"],
        )
        try:
            page = await browser.new_page()
            search = cl.search_url(base + CRAIGSLIST_TEMPLATE_PATH.format(city="miami"))
            await page.goto(search)
            results = cl.parse_search(await page.content(), page.url)
            assert [cl.posting_id(url) for url in results.posting_urls] == [item.posting_id for item in miami[:5]]
            response = await page.goto(results.posting_urls[0])
            assert response is not None
            posting = cl.parse_detail(await page.content(), page.url, response.status)
            assert isinstance(posting, Posting)
            assert (posting.title, posting.attributes, posting.posted_at, posting.phones) == (
                miami[0].title, miami[0].attributes, miami[0].posted_at, miami[0].phones,
            )  # fmt: skip
            costa_rica = site.listings("encuentra24", "costa-rica")[0]
            response = await page.goto(f"{base}{site.posting_path(costa_rica)}")
            assert response is not None
            e24_posting = e24.parse_detail(await page.content(), page.url, response.status)
            assert isinstance(e24_posting, Posting)
            assert (e24_posting.title, e24_posting.body, e24_posting.phones) == (
                costa_rica.title, costa_rica.body, costa_rica.phones,
            )  # fmt: skip
            with pytest.raises(PlaywrightTimeout):
                await page.goto(f"{base}{site.posting_path(hanging)}", timeout=500)
        finally:
            await browser.close()
