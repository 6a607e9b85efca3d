"""A local listings website serving Craigslist and Encuentra24 pages in their real DOM, for tests and demos."""

from __future__ import annotations

import asyncio
import collections
import contextlib
import random
import unicodedata
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from html import escape
from typing import Literal
from zoneinfo import ZoneInfo

import msgspec
import phonenumbers
from aiohttp import web

from gateways.listings.encuentra24 import COUNTRIES, PRIVATE_SELLERS_QUERY, TIME_ZONES

CRAIGSLIST_TEMPLATE_PATH = "/cl/{city}"
ENCUENTRA24_TEMPLATE_PATH = "/e24/{city}-es"
HANG_LIMIT_SECONDS = 120.0

Fault = Literal[
    "blocked_403", "blocked_503", "blocked_200", "hang", "missing_dom",
    "deleted", "expired", "flagged", "not_found", "gone_410",
]  # fmt: skip
SourceKey = Literal["craigslist", "encuentra24"]


class Listing(msgspec.Struct, kw_only=True):
    """One car for sale on the site, and what a parser should read back from its page."""

    posting_id: str
    city: str
    title: str
    price: int | None
    body: str
    attributes: dict[str, str]
    neighborhood: str
    latitude: float
    longitude: float
    posted_at: datetime
    updated_at: datetime
    slug: str
    phones: list[str]  # E.164, as a parser should find them in title and body
    emails: list[str]
    fault: Fault | None = None
    source: SourceKey = "craigslist"


class _City(msgspec.Struct, kw_only=True):
    neighborhoods: list[str]
    latitude: float
    longitude: float
    area_codes: list[str]
    area: str  # Craigslist's sub-area in posting URLs ("mdc")


_US_CITIES: dict[str, _City] = {
    "miami": _City(
        neighborhoods=["Hialeah", "Kendall", "Doral", "Coral Gables", "Little Havana", "Homestead", "Miami Beach"],
        latitude=25.7617, longitude=-80.1918, area_codes=["305", "786"], area="mdc",
    ),
    "newyork": _City(
        neighborhoods=["Astoria", "Bushwick", "Flushing", "Harlem", "Bay Ridge", "Jamaica", "Staten Island"],
        latitude=40.7128, longitude=-74.0060, area_codes=["212", "718", "917", "347"], area="brk",
    ),
    "losangeles": _City(
        neighborhoods=["Van Nuys", "Pasadena", "Long Beach", "Inglewood", "Glendale", "Torrance", "Burbank"],
        latitude=34.0522, longitude=-118.2437, area_codes=["213", "323", "818", "310"], area="lac",
    ),
    "houston": _City(
        neighborhoods=["Pasadena", "Katy", "Sugar Land", "Spring", "Pearland", "The Heights", "Humble"],
        latitude=29.7604, longitude=-95.3698, area_codes=["713", "281", "832"], area="hou",
    ),
    "chicago": _City(
        neighborhoods=["Cicero", "Evanston", "Oak Park", "Pilsen", "Logan Square", "Naperville", "Joliet"],
        latitude=41.8781, longitude=-87.6298, area_codes=["312", "773", "872"], area="chc",
    ),
}
_E24_COUNTRIES: dict[str, _City] = {
    "costa-rica": _City(
        neighborhoods=["San José, Escazú", "Heredia, Santo Domingo", "Alajuela, Grecia", "Cartago, Paraíso",
                       "San José, Santa Ana", "Guanacaste, Liberia", "San José, Desamparados"],
        latitude=9.9281, longitude=-84.0907, area_codes=["8", "7", "6"], area="",
    ),
    "panama": _City(
        neighborhoods=["Panamá, San Francisco", "Panamá Oeste, La Chorrera", "Panamá, Bella Vista",
                       "Chiriquí, David", "Colón, Cristóbal", "Panamá Oeste, Arraiján", "San Miguelito"],
        latitude=8.9824, longitude=-79.5199, area_codes=["6"], area="",
    ),
}  # fmt: skip
_CARS: list[tuple[str, str, int, int]] = [
    # make, model, typical price new-ish, price floor
    ("Toyota", "Camry", 26000, 3500), ("Toyota", "Corolla", 21000, 3000), ("Honda", "Civic", 22000, 3000),
    ("Honda", "Accord", 26000, 3500), ("Nissan", "Altima", 24000, 2800), ("Ford", "F-150", 38000, 5000),
    ("Chevrolet", "Silverado", 39000, 5000), ("Hyundai", "Elantra", 20000, 2500), ("Kia", "Sportage", 25000, 3500),
    ("Jeep", "Wrangler", 33000, 7000), ("Mazda", "CX-5", 27000, 4500), ("Toyota", "RAV4", 28000, 5000),
    ("BMW", "328i", 38000, 4000), ("Mitsubishi", "Montero Sport", 32000, 6000), ("Toyota", "Hilux", 35000, 8000),
]  # fmt: skip
_CONDITIONS = ["excellent", "good", "like new", "fair"]
_FUELS = ["gas", "gas", "gas", "hybrid", "diesel"]
_COLORS = ["white", "black", "silver", "grey", "blue", "red"]
_ES_COLORS = {"white": "Blanco", "black": "Negro", "silver": "Plateado", "grey": "Gris", "blue": "Azul", "red": "Rojo"}


def _phone_digits(rng: random.Random, area: str) -> tuple[str, str, str]:
    # Exchanges 2xx-9xx (never 555) so every number is one phonenumbers calls valid.
    return area, f"{rng.randint(2, 9)}{rng.randint(0, 9)}{rng.randint(1, 9)}", f"{rng.randint(1000, 9999)}"


def _us_phone_text(rng: random.Random, area_codes: list[str]) -> tuple[str, str]:
    a, b, c = _phone_digits(rng, rng.choice(area_codes))
    while not phonenumbers.is_valid_number(phonenumbers.parse(f"{a}{b}{c}", "US")):
        a, b, c = _phone_digits(rng, rng.choice(area_codes))
    style = rng.randrange(7)
    written = [
        f"{a}-{b}-{c}", f"({a}) {b} {c}", f"{a}.{b}.{c}", f"{a}{b}{c}", f"+1 {a} {b} {c}", f"1-{a}-{b}-{c}",
        f"{a} {b} {c[:2]} {c[2:]}",
    ][style]  # fmt: skip
    return written, f"+1{a}{b}{c}"


def _e24_phone_text(rng: random.Random, country: str) -> tuple[str, str]:
    code, region, leads = ("507", "PA", "6") if country == "panama" else ("506", "CR", "876")
    while True:
        # Not every block of the national plan is assigned; draw until phonenumbers calls the number valid.
        digits = f"{rng.choice(leads)}{rng.randint(100, 999)}{rng.randint(1000, 9999)}"
        if phonenumbers.is_valid_number(phonenumbers.parse(digits, region)):
            break
    style = rng.randrange(3)
    written = [f"{digits[:4]}-{digits[4:]}", f"+{code} {digits[:4]} {digits[4:]}", f"{digits[:4]} {digits[4:]}"][style]
    return written, f"+{code}{digits}"


def _email(rng: random.Random, first: str) -> tuple[str, str]:
    user = f"{first.lower()}{rng.randint(10, 99)}"
    domain = rng.choice(["gmail", "yahoo", "hotmail", "outlook"])
    written = rng.choice([f"{user}@{domain}.com", f"{user} at {domain} dot com", f"{user} [at] {domain}.com"])
    return written, f"{user}@{domain}.com"


def _slugify(text: str) -> str:
    plain = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode().lower()
    return "-".join("".join(c if c.isalnum() else " " for c in plain).split())


def generate_listings(
    city: str,
    n: int,
    *,
    seed: int = 0,
    source: SourceKey = "craigslist",
    start_id: int = 7700000000,
    now: datetime | None = None,
) -> list[Listing]:
    """`n` realistic car listings in `city`, the same for the same arguments.

    Posting ids count up from `start_id` (Encuentra24 ids are 8 digits: use e.g. 31000000). Posted
    times fall in the five days before `now` (default: this hour, UTC); Encuentra24 shows only the
    posting's date, so its listings are posted at local midnight.
    """
    if source == "encuentra24" and city not in COUNTRIES:
        raise ValueError(f"unknown Encuentra24 country slug {city!r}: use one of {', '.join(sorted(COUNTRIES))}")
    rng = random.Random(f"{source}:{city}:{seed}")
    anchor = now or datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
    place = (_E24_COUNTRIES if source == "encuentra24" else _US_CITIES).get(city) or _City(
        neighborhoods=["Downtown", "Northside", "Westside", "Eastside", "Southside"],
        latitude=39.0, longitude=-98.0, area_codes=["212", "305", "713"], area="cto",
    )  # fmt: skip
    listings: list[Listing] = []
    for index in range(n):
        make, model, new_price, floor = rng.choice(_CARS)
        year = rng.randint(2004, 2023)
        age = max(1, anchor.year - year)
        price = max(floor, round(new_price * (0.85**age) / 100) * 100)
        odometer = min(240000, age * rng.randint(7000, 15000) + rng.randint(0, 999))
        hood = rng.choice(place.neighborhoods)
        posted = anchor - timedelta(minutes=rng.randint(30, 5 * 24 * 60))
        first = rng.choice(["Carlos", "Maria", "Mike", "Ana", "Jose", "Linda", "Luis", "Kevin", "Rosa"])
        color = rng.choice(_COLORS)
        trans = rng.choice(["automatic", "automatic", "manual"])
        fuel = rng.choice(_FUELS)
        contacts = rng.randrange(10)  # 0: none, 1-2: two phones, 3: phone + email, 4: email only, rest: one phone
        phones: list[str] = []
        emails: list[str] = []
        phone_lines: list[str] = []
        for _ in range(2 if contacts in (1, 2) else 0 if contacts in (0, 4) else 1):
            if source == "encuentra24":
                written, e164 = _e24_phone_text(rng, city)
            else:
                written, e164 = _us_phone_text(rng, place.area_codes)
            if e164 not in phones:
                phones.append(e164)
                phone_lines.append(written)
        if contacts in (3, 4):
            written, address = _email(rng, first)
            emails.append(address)
            phone_lines.append(written)
        if source == "encuentra24":
            listings.append(
                _e24_listing(rng, city, place, index, start_id, make, model, year, price, odometer, hood, trans,
                             fuel, color, first, posted, phones, emails, phone_lines)
            )  # fmt: skip
            continue
        title = f"{year} {make} {model}" + rng.choice(["", " LE", " clean title", " - one owner", " low miles"])
        condition = rng.choice(_CONDITIONS)
        contact = " or ".join(phone_lines)
        body_lines = [
            f"Selling my {year} {make} {model}, {odometer:,} miles, {condition} condition.",
            rng.choice(["Cold AC, new tires, no accidents.", "Runs and drives great.", "Clean title in hand."]),
            f"Asking ${price:,} obo. No trades, cash only." if rng.random() < 0.5 else f"${price:,} firm.",
            "",
            f"Call or text {first} {contact}" if contact else "Reply through craigslist only, no calls.",
        ]
        attributes = {
            "year": str(year),
            "makemodel": f"{make} {model}".lower(),
            "condition": condition,
            "cylinders": rng.choice(["4 cylinders", "6 cylinders", "8 cylinders"]),
            "drive": rng.choice(["fwd", "rwd", "4wd"]),
            "fuel": fuel,
            "odometer": str(odometer),
            "paint_color": color,
            "title_status": rng.choice(["clean", "clean", "rebuilt"]),
            "transmission": trans,
            "type": rng.choice(["sedan", "SUV", "truck", "coupe"]),
        }
        listings.append(
            Listing(
                posting_id=str(start_id + index),
                city=city,
                title=title,
                price=price if rng.random() > 0.05 else None,
                body="\n".join(body_lines),
                attributes=attributes,
                neighborhood=hood,
                latitude=round(place.latitude + rng.uniform(-0.15, 0.15), 4),
                longitude=round(place.longitude + rng.uniform(-0.15, 0.15), 4),
                posted_at=posted,
                updated_at=posted + timedelta(hours=rng.randint(1, 20)),
                slug=f"{_slugify(hood)}-{_slugify(title)}",
                phones=phones,
                emails=emails,
            )
        )
    return listings


def _e24_listing(
    rng: random.Random, country: str, place: _City, index: int, start_id: int, make: str, model: str, year: int,
    price: int, odometer: int, hood: str, trans: str, fuel: str, color: str, first: str, posted: datetime,
    phones: list[str], emails: list[str], contact_lines: list[str],
) -> Listing:  # fmt: skip
    local = ZoneInfo(TIME_ZONES[COUNTRIES[country]])
    day = posted.astimezone(local).replace(hour=0, minute=0, second=0, microsecond=0)
    km = round(odometer * 1.6)
    title = f"{make} {model} {year}"
    trans_es = {"automatic": "Automática", "manual": "Manual"}[trans]
    fuel_es = {"gas": "Gasolina", "hybrid": "Híbrido", "diesel": "Diésel"}[fuel]
    contact = " o ".join(contact_lines)
    body_lines = [
        f"Vendo {make} {model} {year}, {km:,} km, único dueño.".replace(",", "."),
        rng.choice(["Marchamo al día, RTV al día.", "Papeles en regla, listo para traspaso.", "Aire acondicionado."]),
        rng.choice(["Precio negociable.", "No acepto cambios.", "Solo interesados."]),
        "",
        f"Llamar o WhatsApp a {first}: {contact}" if contact else "Contactar solo por el formulario.",
    ]
    colones = country == "costa-rica" and rng.random() < 0.4
    attributes = {
        "make": make,
        "model": model,
        "makemodel": f"{make} {model}".lower(),
        "year": str(year),
        "odometer": str(km),
        "transmission": trans_es,
        "fuel": fuel_es,
        "paint_color": _ES_COLORS[color],
        "currency": "CRC" if colones else "USD",
    }
    return Listing(
        posting_id=str(start_id + index),
        city=country,
        title=title,
        price=price * 520 if colones else price,
        body="\n".join(body_lines),
        attributes=attributes,
        neighborhood=hood,
        latitude=round(place.latitude + rng.uniform(-0.2, 0.2), 4),
        longitude=round(place.longitude + rng.uniform(-0.2, 0.2), 4),
        posted_at=day,
        updated_at=day + timedelta(days=1),
        slug=_slugify(title),
        phones=phones,
        emails=emails,
        source="encuentra24",
    )


class ListingSite:
    """Listings per (source, city), newest first, with faults to serve instead of pages."""

    def __init__(self, page_size: int = 120) -> None:
        self.page_size = page_size
        self.hits: collections.Counter[str] = collections.Counter()
        self._listings: dict[tuple[str, str], dict[str, Listing]] = {}
        self._order: dict[tuple[str, str], list[str]] = {}  # newest first
        self._old_slugs: dict[tuple[str, str], dict[str, set[str]]] = {}
        self._search_faults: dict[tuple[str, str], Fault] = {}
        self._closing: asyncio.Event | None = None

    def add(self, listing: Listing) -> None:
        """Post a listing: it goes to the top of its city's results."""
        key = (listing.source, listing.city)
        listings = self._listings.setdefault(key, {})
        order = self._order.setdefault(key, [])
        if listing.posting_id in listings:
            order.remove(listing.posting_id)
        listings[listing.posting_id] = listing
        order.insert(0, listing.posting_id)

    def add_all(self, listings: list[Listing]) -> None:
        """Post many listings at once, newest (latest posted_at) on top."""
        for listing in sorted(listings, key=lambda item: item.posted_at):
            self.add(listing)

    def listings(self, source: SourceKey, city: str) -> list[Listing]:
        """The city's listings in the order its search shows them (newest first)."""
        key = (source, city)
        return [self._listings[key][pid] for pid in self._order.get(key, [])]

    def get(self, posting_id: str) -> Listing:
        for listings in self._listings.values():
            if posting_id in listings:
                return listings[posting_id]
        raise KeyError(f"no listing {posting_id} on the site: add it first")

    def repost(self, posting_id: str, new_slug: str) -> Listing:
        """The seller reposts: same posting id, a new URL slug, back on top; the old URL still serves it."""
        listing = self.get(posting_id)
        key = (listing.source, listing.city)
        self._old_slugs.setdefault(key, {}).setdefault(posting_id, set()).add(listing.slug)
        listing.slug = new_slug
        listing.updated_at = datetime.now(UTC)
        self.add(listing)
        return listing

    def set_fault(self, posting_id: str, fault: Fault | None) -> None:
        """Serve `fault` instead of the posting page (None serves the page again)."""
        self.get(posting_id).fault = fault

    def set_search_fault(self, source: SourceKey, city: str, fault: Fault | None) -> None:
        """Serve `fault` instead of the city's search pages (None serves them again)."""
        if fault is None:
            self._search_faults.pop((source, city), None)
        else:
            self._search_faults[(source, city)] = fault

    def posting_path(self, listing: Listing) -> str:
        """The path of a listing's posting page on this site (under the base URL)."""
        if listing.source == "encuentra24":
            base = ENCUENTRA24_TEMPLATE_PATH.format(city=listing.city)
            return f"{base}/autos-usados/{listing.slug}/{listing.posting_id}"
        place = _US_CITIES.get(listing.city)
        area = place.area if place is not None else "cto"
        base = CRAIGSLIST_TEMPLATE_PATH.format(city=listing.city)
        return f"{base}/{area}/cto/d/{listing.slug}/{listing.posting_id}.html"

    def search_fault(self, source: SourceKey, city: str) -> Fault | None:
        return self._search_faults.get((source, city))

    def _serves_slug(self, listing: Listing, slug: str) -> bool:
        old = self._old_slugs.get((listing.source, listing.city), {}).get(listing.posting_id, set())
        return slug == listing.slug or slug in old

    def app(self) -> web.Application:
        """The aiohttp application serving this site."""
        app = web.Application()
        app[_SITE_KEY] = self
        app.router.add_get("/cl/{city}/search/cto", _cl_search)
        app.router.add_get(r"/cl/{city}/{area}/cto/d/{slug}/{posting_id:\d+}.html", _cl_posting)
        app.router.add_get("/e24/{country}-es/autos-usados", _e24_search)
        app.router.add_get(r"/e24/{country}-es/autos-usados/{slug}/{posting_id:\d+}", _e24_posting)
        return app

    async def _hang(self) -> None:
        closing = self._closing
        if closing is None:
            closing = self._closing = asyncio.Event()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(closing.wait(), HANG_LIMIT_SECONDS)


_SITE_KEY = web.AppKey("site", ListingSite)

# ---- pages ---------------------------------------------------------------------------------------------------

_CL_HEAD = """<!DOCTYPE html>
<html class="no-js"><head><meta charset="UTF-8"><title>{title}</title>
<meta name="viewport" content="width=device-width,initial-scale=1">
<link rel="stylesheet" href="/static/www/css/cl.css">{extra_head}
<script>window.cl = {{"lang": "en", "areaId": 20}};</script></head>
<body class="{body_class}">
<header class="global-header"><a class="header-logo" href="/">CL</a>
<nav class="breadcrumbs"><span class="crumb area"><a href="/">{city}</a></span> &gt;
<span class="crumb section"><a href="/search/sss">for sale</a></span> &gt;
<span class="crumb category"><a href="/search/cto">cars &amp; trucks - by owner</a></span></nav>
<ul class="user-actions"><li><a href="https://accounts.craigslist.org/login">log in</a></li>
<li><a href="https://post.craigslist.org/">post</a></li></ul></header>
"""
_CL_FOOT = """<footer class="global-footer"><ul class="clfooter">
<li>&copy; 2026 craigslist</li><li><a href="https://www.craigslist.org/about/help/">help</a></li>
<li><a href="https://www.craigslist.org/about/safety">safety</a></li><li><a href="https://www.craigslist.org/about/privacy.policy">privacy</a></li>
</ul></footer><script src="/static/www/js/cl.js"></script><script>if (window.cl) {{ cl.init(); }}</script>
</body></html>"""


def _cl_page(city: str, title: str, body_class: str, main: str, extra_head: str = "") -> str:
    head = _CL_HEAD.format(title=escape(title), extra_head=extra_head, body_class=body_class, city=escape(city))
    return head + main + _CL_FOOT.format()


def _html_lines(text: str) -> str:
    return "<br>\n".join(escape(line) for line in text.split("\n"))


def _cl_time(when: datetime) -> str:
    local = when.astimezone(ZoneInfo("America/New_York"))
    return (
        f'<time class="date timeago" datetime="{local.strftime("%Y-%m-%dT%H:%M:%S%z")}">'
        f"{local.strftime('%Y-%m-%d %H:%M')}</time>"
    )


def _fault_response(fault: Fault, source: SourceKey, city: str) -> web.Response | None:
    """The page a fault serves in place of the real one (None for "hang", which the caller awaits)."""
    if fault == "blocked_403":
        return web.Response(status=403, text="<html><body><h1>Forbidden</h1></body></html>", content_type="text/html")
    if fault == "blocked_503":
        return web.Response(
            status=503, text="<html><body><h1>503 Service Unavailable</h1></body></html>", content_type="text/html"
        )
    if fault == "hang":
        return None
    if source == "encuentra24":
        return _e24_fault(fault, city)
    if fault == "blocked_200":
        text = (
            "<html><head><title>blocked</title></head><body><p>This IP has been automatically blocked.<br>"
            "If you have questions, please email: blocks-b1700000000@craigslist.org</p></body></html>"
        )
        return web.Response(status=200, text=text, content_type="text/html")
    if fault == "missing_dom":
        main = '<section class="page-container"><div class="loading">loading posting&hellip;</div></section>\n'
        return web.Response(text=_cl_page(city, "craigslist", "posting", main), content_type="text/html")
    messages = {
        "deleted": "This posting has been deleted by its author.",
        "expired": "This posting has expired.",
        "flagged": "This posting has been flagged for removal.",
    }
    if fault in messages:
        main = (
            '<section class="page-container"><section class="body"><div class="removed">'
            f"<h2>{messages[fault]}</h2><p>(The title on the listings page will be removed in just a few "
            "minutes.)</p></div></section></section>\n"
        )
        return web.Response(status=404, text=_cl_page(city, "craigslist | removed", "posting", main),
                            content_type="text/html")  # fmt: skip
    status = 410 if fault == "gone_410" else 404
    text = "<html><body><h1>Page not found</h1></body></html>"
    return web.Response(status=status, text=text, content_type="text/html")


async def _serve_fault(site: ListingSite, fault: Fault, source: SourceKey, city: str) -> web.Response:
    response = _fault_response(fault, source, city)
    if response is None:
        await site._hang()
        return web.Response(status=504, text="gave up waiting")
    return response


def _cl_search_html(site: ListingSite, city: str, offset: int) -> str:
    listings = site.listings("craigslist", city)
    page = listings[offset : offset + site.page_size]
    rows = []
    for listing in page:
        url = site.posting_path(listing)
        price = f'<div class="price">${listing.price:,}</div>' if listing.price is not None else ""
        rows.append(
            f'<li class="cl-static-search-result" title="{escape(listing.title)}">\n'
            f'<a href="{{host}}{url}">\n<div class="title">{escape(listing.title)}</div>\n'
            f'<div class="details">{price}<div class="location">{escape(listing.neighborhood)}</div></div>\n'
            "</a></li>"
        )
    search = f"{CRAIGSLIST_TEMPLATE_PATH.format(city=city)}/search/cto"
    nxt = ""
    if offset + site.page_size < len(listings):
        nxt = f'<a class="button next" href="{search}?s={offset + site.page_size}" title="next page">next &gt;</a>'
    prev = f'<a class="button prev" href="{search}?s={max(0, offset - site.page_size)}">&lt; prev</a>' if offset else ""
    empty = '<div class="cl-empty-results">no results</div>' if not listings else ""
    main = (
        '<main id="search-results-page-1"><div class="cl-search-toolbar">'
        f'<span class="cl-page-number">{offset + 1 if page else 0} - {offset + len(page)} of '
        f'<span class="totalcount">{len(listings)}</span></span>{prev}{nxt}</div>\n'
        f'<ol class="cl-static-search-results">\n<li class="cl-static-search-result-header">'
        "cars &amp; trucks - by owner</li>\n" + "\n".join(rows) + f"\n</ol>{empty}</main>\n"
    )
    return _cl_page(city, f"{city} cars & trucks - by owner - craigslist", "search", main)


async def _cl_search(request: web.Request) -> web.Response:
    site = request.app[_SITE_KEY]
    site.hits[request.path_qs] += 1
    city = request.match_info["city"]
    if fault := site.search_fault("craigslist", city):
        if fault == "missing_dom":
            main = '<section class="page-container"><p>Something went wrong. Please try again.</p></section>\n'
            return web.Response(text=_cl_page(city, "craigslist", "error", main), content_type="text/html")
        return await _serve_fault(site, fault, "craigslist", city)
    try:
        offset = max(0, int(request.query.get("s", "0")))
    except ValueError:
        offset = 0
    host = f"{request.scheme}://{request.host}"
    return web.Response(text=_cl_search_html(site, city, offset).replace("{host}", host), content_type="text/html")


def _cl_posting_html(listing: Listing, url: str) -> str:
    attrs = listing.attributes
    important = (
        f'<div class="attr important"><span class="valu year">{escape(attrs.get("year", ""))}</span> '
        f'<span class="valu makemodel"><a href="/search/cto?auto_make_model={escape(attrs.get("makemodel", ""))}">'
        f"{escape(attrs.get('makemodel', ''))}</a></span></div>"
    )
    rows = []
    for key, value in attrs.items():
        if key in ("year", "makemodel"):
            continue
        shown = f"{int(value):,}" if key == "odometer" and value.isdigit() else value
        rows.append(
            f'<div class="attr auto_{key}"><span class="labl">{escape(key.replace("_", " "))}:</span> '
            f'<span class="valu">{escape(shown)}</span></div>'
        )
    price = f'<span class="price">${listing.price:,}</span>' if listing.price is not None else ""
    main = f"""<section class="page-container"><section class="body">
<div class="postingtitle-container"><h1 class="postingtitle"><span class="postingtitletext">
<span id="titletextonly">{escape(listing.title)}</span> {price}
<span class="postingtitle-hood"> ({escape(listing.neighborhood)})</span></span></h1>
<button class="reply-button js-only">reply</button></div>
<section class="userbody">
<figure class="iw multiimage"><div class="gallery"><img src="/images/00{listing.posting_id[-4:]}_600x450.jpg" alt=""></div></figure>
<div class="mapAndAttrs"><div class="mapbox"><div id="map" class="viewposting" data-latitude="{listing.latitude}" data-longitude="{listing.longitude}" data-accuracy="22"></div>
<p class="mapaddress"><small><a href="https://maps.google.com/">google map</a></small></p></div>
<div class="attrgroup">{important}</div>
<div class="attrgroup">{"".join(rows)}</div></div>
<section id="postingbody">
<div class="print-information print-qrcode-container"><p class="print-qrcode-label">QR Code Link to This Post</p>
<div class="print-qrcode" data-location="{escape(url)}"></div></div>
{_html_lines(listing.body)}
</section>
<ul class="notices"><li>do NOT contact me with unsolicited services or offers</li></ul>
<div class="postinginfos"><p class="postinginfo">post id: {listing.posting_id}</p>
<p class="postinginfo reveal">posted: {_cl_time(listing.posted_at)}</p>
<p class="postinginfo reveal">updated: {_cl_time(listing.updated_at)}</p>
<p class="postinginfo"><a class="bestof-link" href="/about/best-of-craigslist">best of</a></p></div>
</section></section></section>
"""  # noqa: E501
    return _cl_page(listing.city, f"{listing.title} - cars & trucks - by owner", "posting", main)


async def _listing_or_fault(request: web.Request, source: SourceKey, place: str) -> Listing | web.Response:
    """The listing a posting URL names, or what the site serves instead (not found, its fault)."""
    site = request.app[_SITE_KEY]
    site.hits[request.path_qs] += 1
    try:
        listing = site.get(request.match_info["posting_id"])
    except KeyError:
        return await _serve_fault(site, "not_found", source, place)
    if listing.source != source or listing.city != place or not site._serves_slug(listing, request.match_info["slug"]):
        return await _serve_fault(site, "not_found", source, place)
    if listing.fault is not None:
        return await _serve_fault(site, listing.fault, source, place)
    return listing


async def _cl_posting(request: web.Request) -> web.Response:
    listing = await _listing_or_fault(request, "craigslist", request.match_info["city"])
    if isinstance(listing, web.Response):
        return listing
    return web.Response(text=_cl_posting_html(listing, str(request.url)), content_type="text/html")


_E24_HEAD = """<!DOCTYPE html>
<html lang="es"><head><meta charset="utf-8"><title>{title}</title>
<link rel="stylesheet" href="/assets/d3/main.css">{extra_head}
<script>window.dataLayer = window.dataLayer || []; dataLayer.push({{"country": "{country}"}});</script></head>
<body class="d3-body">
<header class="d3-header"><a class="d3-header__logo" href="/{country}-es">Encuentra24</a>
<nav class="d3-header__nav"><a href="/{country}-es/bienes-raices">Bienes raíces</a>
<a href="/{country}-es/autos">Autos</a><a href="/{country}-es/empleos">Empleos</a></nav>
<a class="d3-button d3-header__publish" href="/{country}-es/publicar">Publicar anuncio</a></header>
"""
_E24_FOOT = """<footer class="d3-footer"><ul><li><a href="/{country}-es/ayuda">Ayuda</a></li>
<li><a href="/{country}-es/terminos">Términos y condiciones</a></li><li>&copy; 2026 Encuentra24</li></ul></footer>
<div class="d3-cookie-banner">Usamos cookies para mejorar tu experiencia. <button>Aceptar</button></div>
<script src="/assets/d3/main.js" defer></script></body></html>"""


def _e24_page(country: str, title: str, main: str, extra_head: str = "") -> str:
    head = _E24_HEAD.format(title=escape(title), extra_head=extra_head, country=country)
    return head + main + _E24_FOOT.format(country=country)


def _e24_fault(fault: Fault, country: str) -> web.Response:
    if fault == "blocked_200":
        text = (
            "<html><head><title>Access denied</title></head><body><h1>Access denied</h1>"
            '<p>Please complete the captcha to continue.</p><div class="g-recaptcha" data-sitekey="x"></div>'
            "</body></html>"
        )
        return web.Response(status=200, text=text, content_type="text/html")
    if fault == "missing_dom":
        main = '<main class="d3-container"><div class="d3-spinner">Cargando&hellip;</div></main>\n'
        return web.Response(text=_e24_page(country, "Encuentra24", main), content_type="text/html")
    messages = {
        "deleted": ("Este anuncio ha sido eliminado por el anunciante.", 404),
        "expired": ("Este anuncio ya no está disponible.", 200),
        "flagged": ("Este anuncio ha sido retirado por incumplir nuestras políticas.", 404),
    }
    if fault in messages:
        message, status = messages[fault]
        main = (
            f'<main class="d3-container"><div class="d3-ad-unavailable"><h2>{message}</h2>'
            f'<a href="/{country}-es/autos-usados">Ver anuncios similares</a></div></main>\n'
        )
        return web.Response(status=status, text=_e24_page(country, "Anuncio no disponible", main),
                            content_type="text/html")  # fmt: skip
    status = 410 if fault == "gone_410" else 404
    return web.Response(status=status, text="<html><body><h1>Página no encontrada</h1></body></html>",
                        content_type="text/html")  # fmt: skip


def _e24_price(listing: Listing) -> str:
    if listing.price is None:
        return "Precio a convenir"
    grouped = f"{listing.price:,}".replace(",", ".")
    return f"₡{grouped}" if listing.attributes.get("currency") == "CRC" else f"${grouped}"


def _e24_search_html(site: ListingSite, country: str, page_number: int) -> str:
    listings = site.listings("encuentra24", country)
    start = (page_number - 1) * site.page_size
    page = listings[start : start + site.page_size]
    tiles = []
    for listing in page:
        path = site.posting_path(listing)
        tiles.append(
            f'<article class="d3-ad-tile" data-adid="{listing.posting_id}">\n'
            f'<div class="d3-ad-tile__cover"><a href="{path}"><img src="/img/{listing.posting_id}.jpg" alt=""></a></div>\n'  # noqa: E501
            f'<a class="d3-ad-tile__description" href="{path}"><span class="d3-ad-tile__title">{escape(listing.title)}</span>\n'  # noqa: E501
            f'<div class="d3-ad-tile__short-description">{escape(listing.body.split(chr(10))[0])}</div></a>\n'
            f'<div class="d3-ad-tile__price">{_e24_price(listing)}</div>\n'
            f'<div class="d3-ad-tile__location"><span>{escape(listing.neighborhood)}</span></div></article>'
        )
    search = f"{ENCUENTRA24_TEMPLATE_PATH.format(city=country)}/autos-usados?{PRIVATE_SELLERS_QUERY}"
    nxt = ""
    if start + site.page_size < len(listings):
        nxt = f'<a class="d3-pagination__next" rel="next" href="{search}&amp;page={page_number + 1}">Siguiente</a>'
    empty = '<div class="d3-search-no-results">No encontramos resultados</div>' if not listings else ""
    main = (
        '<main class="d3-container"><div class="d3-search-header">'
        f'<h1>Autos usados</h1><span class="d3-search-header__count">{len(listings)} resultados</span></div>\n'
        '<section class="d3-search-results"><div class="d3-ads-grid">\n'
        + "\n".join(tiles)
        + f'\n</div>{empty}</section>\n<nav class="d3-pagination">{nxt}</nav></main>\n'
    )
    return _e24_page(country, "Autos usados | Encuentra24", main)


async def _e24_search(request: web.Request) -> web.Response:
    site = request.app[_SITE_KEY]
    site.hits[request.path_qs] += 1
    country = request.match_info["country"]
    if fault := site.search_fault("encuentra24", country):
        if fault == "missing_dom":
            main = '<main class="d3-container"><p>Ocurrió un error. Intenta de nuevo.</p></main>\n'
            return web.Response(text=_e24_page(country, "Encuentra24", main), content_type="text/html")
        return await _serve_fault(site, fault, "encuentra24", country)
    try:
        page_number = max(1, int(request.query.get("page", "1")))
    except ValueError:
        page_number = 1
    return web.Response(text=_e24_search_html(site, country, page_number), content_type="text/html")


_E24_LABELS = {
    "make": "Marca", "model": "Modelo", "year": "Año", "odometer": "Kilometraje",
    "transmission": "Transmisión", "fuel": "Combustible", "paint_color": "Color",
}  # fmt: skip


def _e24_posting_html(listing: Listing) -> str:
    details = []
    for key, label in _E24_LABELS.items():
        if key not in listing.attributes:
            continue
        value = listing.attributes[key]
        shown = f"{int(value):,} km".replace(",", ".") if key == "odometer" and value.isdigit() else value
        details.append(
            '<div class="d3-property-insight__attribute">'
            f'<span class="d3-property-insight__attribute-title">{label}</span>'
            f'<span class="d3-property-insight__attribute-value">{escape(shown)}</span></div>'
        )
    local = listing.posted_at.astimezone(ZoneInfo(TIME_ZONES[COUNTRIES[listing.city]]))
    updated = listing.updated_at.astimezone(ZoneInfo(TIME_ZONES[COUNTRIES[listing.city]]))
    main = f"""<main class="d3-container d3-property">
<nav class="d3-breadcrumbs"><a href="/{listing.city}-es">Inicio</a> / <a href="/{listing.city}-es/autos-usados">Autos usados</a></nav>
<div class="d3-property-gallery"><img src="/img/{listing.posting_id}-1.jpg" alt=""></div>
<div class="d3-property-headline">
<h1 class="d3-property-headline__title">{escape(listing.title)}</h1>
<div class="d3-property-headline__price"><span class="d3-price">{_e24_price(listing)}</span></div>
<div class="d3-property-headline__location"><span class="d3-location">{escape(listing.neighborhood)}</span></div>
</div>
<section class="d3-property-insight">
<div class="d3-property-insight__attributes">{"".join(details)}</div>
<div class="d3-property-insight__published">Publicado: {local.strftime("%d/%m/%Y")}</div>
<div class="d3-property-insight__updated">Actualizado: {updated.strftime("%d/%m/%Y")}</div>
</section>
<section class="d3-property-about"><h2>Descripción</h2>
<div class="d3-property-about__text">{_html_lines(listing.body)}</div>
<button class="d3-property-about__more">Ver más</button></section>
<div class="d3-map" data-lat="{listing.latitude}" data-lng="{listing.longitude}"></div>
<aside class="d3-property-contact"><div class="d3-property-contact__name">Vendedor particular</div>
<button class="d3-button d3-property-contact__phone">Ver teléfono</button>
<form class="d3-property-contact__form"><textarea>Hola, me interesa este anuncio.</textarea><button>Enviar</button></form></aside>
<a class="d3-report-ad" href="/{listing.city}-es/denunciar/{listing.posting_id}">Denunciar anuncio</a>
</main>
"""  # noqa: E501
    return _e24_page(listing.city, f"{listing.title} | Encuentra24", main)


async def _e24_posting(request: web.Request) -> web.Response:
    listing = await _listing_or_fault(request, "encuentra24", request.match_info["country"])
    if isinstance(listing, web.Response):
        return listing
    return web.Response(text=_e24_posting_html(listing), content_type="text/html")


@contextlib.asynccontextmanager
async def serve_listing_site(site: ListingSite, host: str = "127.0.0.1", port: int = 0) -> AsyncIterator[str]:
    """Serve `site` over HTTP until the block ends; yields its base URL ("http://127.0.0.1:PORT")."""
    site._closing = asyncio.Event()
    runner = web.AppRunner(site.app(), access_log=None, shutdown_timeout=1.0)
    await runner.setup()
    try:
        tcp = web.TCPSite(runner, host, port)
        await tcp.start()
        bound_port = runner.addresses[0][1]
        yield f"http://{host}:{bound_port}"
    finally:
        # Hanging handlers return at once, so the runner's shutdown does not wait on them.
        site._closing.set()
        await runner.cleanup()
