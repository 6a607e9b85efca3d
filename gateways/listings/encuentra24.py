"""Encuentra24 used cars (Central America): its URLs, country slugs and the d3-* search and posting DOM."""

from __future__ import annotations

import re
import unicodedata
from datetime import datetime
from typing import Final
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

from selectolax.lexbor import LexborHTMLParser

from gateways.listings import Blocked, DetailResult, GoneReason, MissingDom, Posting, SearchPage
from gateways.listings.contacts import find_emails, find_phones
from gateways.listings.markup import (
    ResultsMarkup,
    attribute_key,
    body_text,
    float_attr,
    gone_by_text,
    http_block,
    node_text,
    page_text,
    whole_units,
)

COUNTRIES: dict[str, str] = {
    "costa-rica": "CR",
    "panama": "PA",
    "guatemala": "GT",
    "el-salvador": "SV",
    "honduras": "HN",
    "nicaragua": "NI",
}
TIME_ZONES: dict[str, str] = {
    "CR": "America/Costa_Rica",
    "PA": "America/Panama",
    "GT": "America/Guatemala",
    "SV": "America/El_Salvador",
    "HN": "America/Tegucigalpa",
    "NI": "America/Managua",
}
PRIVATE_SELLERS_QUERY = "q=f_seller.private"

_POSTING_ID = re.compile(r"/[^/]+/(\d{5,})/?$")
_RESULT_LINKS = ("article.d3-ad-tile a.d3-ad-tile__description[href]", "article.d3-ad-tile .d3-ad-tile__cover a[href]")
_RESULTS_CONTAINERS = "article.d3-ad-tile, .d3-ads-grid, .d3-search-results"
_RESULTS: Final = ResultsMarkup(
    site="Encuentra24",
    result_links=_RESULT_LINKS,
    containers=_RESULTS_CONTAINERS,
    no_results=".d3-search-no-results, .d3-no-results",
    no_results_text=("no encontramos resultados", "no hay resultados", "0 resultados"),
    next_links=("a.d3-pagination__next", "link[rel=next]", "a[rel=next]"),
    disabled_classes=frozenset({"disabled", "d3-pagination__next--disabled"}),
    total=".d3-search-header__count, .d3-results-count",
    expected="article.d3-ad-tile",
)
_TITLE = "h1.d3-property-headline__title, h1.d3-property-headline, .d3-property-headline h1"
_GONE_TEXT: tuple[tuple[str, GoneReason], ...] = (
    ("este anuncio ha sido eliminado", "deleted"),
    ("este anuncio ha sido retirado", "flagged"),
    ("este anuncio ya no está disponible", "expired"),
    ("este anuncio ya no esta disponible", "expired"),
    ("este anuncio ha expirado", "expired"),
)
_BLOCK_TEXT = re.compile(
    r"captcha|access denied|acceso denegado|verify you are human|verifica que eres humano|request blocked|\bblocked\b",
    re.IGNORECASE,
)
_PUBLISHED = re.compile(r"publicado:?\s*(\d{1,2})/(\d{1,2})/(\d{4})(?:\s+(\d{1,2}):(\d{2}))?", re.IGNORECASE)
_BODY_BOILERPLATE = "script, style, button, .d3-property-about__more, .d3-report-ad"
# The site's Spanish labels, accents dropped, to the attribute keys Craigslist postings use.
_LABELS: dict[str, str] = {
    "ano": "year",
    "kilometraje": "odometer",
    "kilometros": "odometer",
    "millaje": "odometer",
    "marca": "make",
    "modelo": "model",
    "transmision": "transmission",
    "combustible": "fuel",
    "condicion": "condition",
    "estado": "condition",
    "color": "paint_color",
    "color exterior": "paint_color",
    "traccion": "drive",
    "cilindros": "cylinders",
    "tipo": "type",
    "carroceria": "type",
    "motor": "engine",
}
_CURRENCIES = (("₡", "CRC"), ("b/.", "PAB"), ("c$", "NIO"), ("us$", "USD"), ("$", "USD"), ("q", "GTQ"), ("l", "HNL"))


def _plain(text: str) -> str:
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(c for c in decomposed if not unicodedata.combining(c)).lower().strip().rstrip(":").strip()


def currency(price_text: str) -> str | None:
    """The ISO currency of a price as the site writes it: "₡6.500.000" -> "CRC", "$12.500" -> "USD"."""
    lowered = price_text.strip().lower()
    for symbol, code in _CURRENCIES:
        if lowered.startswith(symbol):
            return code
    return None


class Encuentra24:
    """The Encuentra24 lead program: a country slug as its "city", used cars from private sellers."""

    key = "encuentra24"
    base_url_env = "E24_BASE_URL_TEMPLATE"
    default_base_url = "https://www.encuentra24.com/{city}-es"
    search_ready = _RESULTS_CONTAINERS
    detail_ready = _TITLE

    def search_url(self, base_url: str) -> str:
        return f"{base_url.rstrip('/')}/autos-usados?{PRIVATE_SELLERS_QUERY}"

    def posting_id(self, url: str) -> str | None:
        path = urlsplit(url).path
        if "/autos-usados" not in path:
            return None
        match = _POSTING_ID.search(path)
        return match.group(1) if match else None

    def country(self, city: str) -> str:
        try:
            return COUNTRIES[city.strip().lower()]
        except KeyError:
            accepted = ", ".join(sorted(COUNTRIES))
            raise ValueError(f"unknown Encuentra24 country slug {city!r}: use one of {accepted}") from None

    def check_block(self, html: str, status: int) -> Blocked | None:
        if (blocked := http_block("Encuentra24", status)) is not None:
            return blocked
        if not 200 <= status < 300:
            return None
        tree = LexborHTMLParser(html)
        if tree.css_first(f"{_TITLE}, {_RESULTS_CONTAINERS}") is not None:
            return None
        text = page_text(tree)
        match = _BLOCK_TEXT.search(text) or _BLOCK_TEXT.search(html if "captcha" in html.lower() else "")
        if match is None:
            return None
        return Blocked(kind="blocked_200", status=status, message=f"block page served with {status}: {text[:200]!r}")

    def parse_search(self, html: str, page_url: str) -> SearchPage:
        return _RESULTS.parse(html, page_url, self.posting_id)

    def parse_detail(self, html: str, url: str, status: int) -> DetailResult:
        if (blocked := self.check_block(html, status)) is not None:
            return blocked
        tree = LexborHTMLParser(html)
        title_node = tree.css_first(_TITLE)
        if title_node is None or status in (404, 410):
            if (gone := gone_by_text(tree, status, _GONE_TEXT)) is not None:
                return gone
            return MissingDom(message=f"no h1.d3-property-headline__title on {url} (HTTP {status})")
        posting_id = self.posting_id(url)
        if posting_id is None:
            return MissingDom(message=f"{url} is not an Encuentra24 posting URL (no /autos-usados/<slug>/<id>)")
        description = tree.css_first(".d3-property-about__text, .d3-property-description, #description")
        if description is None:
            return MissingDom(message=f"no div.d3-property-about__text (description) on {url} (HTTP {status})")
        region = self._region(url)
        title = node_text(title_node)
        body = body_text(description, _BODY_BOILERPLATE)
        price_node = tree.css_first(".d3-property-headline__price .d3-price, .d3-price, .d3-property-headline__price")
        price_text = node_text(price_node)
        attributes = self._attributes(tree)
        if price_text and (code := currency(price_text)):
            attributes["currency"] = code
        location = node_text(tree.css_first(".d3-property-headline__location .d3-location, .d3-location"))
        map_node = tree.css_first("[data-lat][data-lng]")
        seller_text = f"{title}\n{body}"
        phones = find_phones(seller_text, region)
        for link in tree.css('a[href^="tel:"]'):
            for phone in find_phones((link.attributes.get("href") or "")[4:], region):
                if phone not in phones:
                    phones.append(phone)
        name = node_text(tree.css_first(".d3-property-contact__name, .d3-seller__name"))
        return Posting(
            posting_id=posting_id,
            url=url,
            title=title,
            price=whole_units(price_text) if price_text else None,
            body=body,
            attributes=attributes,
            neighborhood=location or None,
            latitude=float_attr(map_node, "data-lat"),
            longitude=float_attr(map_node, "data-lng"),
            posted_at=self._published(tree, region),
            phones=phones,
            emails=find_emails(seller_text),
            name=name or None,
            country=region,
        )

    def _region(self, url: str) -> str:
        # The base URL's first path segment that names a country: ".../costa-rica-es/autos-usados/...".
        for segment in urlsplit(url).path.split("/"):
            slug = segment.removesuffix("-es").removesuffix("-en")
            if slug in COUNTRIES:
                return COUNTRIES[slug]
        return "CR"

    def _attributes(self, tree: LexborHTMLParser) -> dict[str, str]:
        pairs: list[tuple[str, str]] = []
        for item in tree.css(".d3-property-insight__attribute, .d3-property-details__detail"):
            label = item.css_first(".d3-property-insight__attribute-title, .d3-property-details__detail-label")
            value = item.css_first(".d3-property-insight__attribute-value, .d3-property-details__detail-value")
            pairs.append((node_text(label), node_text(value)))
        for term in tree.css(".d3-property-details dl dt"):
            pairs.append((node_text(term), node_text(term.next if term.next and term.next.tag == "dd" else None)))
        attributes: dict[str, str] = {}
        for label_text, value_text in pairs:
            if not label_text or not value_text:
                continue
            plain = _plain(label_text)
            key = _LABELS.get(plain) or attribute_key(plain)
            attributes[key] = re.sub(r"\D", "", value_text) if key == "odometer" else value_text
        if "make" in attributes and "model" in attributes:
            attributes["makemodel"] = f"{attributes['make']} {attributes['model']}".lower()
        return attributes

    def _published(self, tree: LexborHTMLParser, region: str) -> datetime | None:
        # The site shows the day first ("Publicado: 09/01/2026"); it is a local date in the ad's country.
        for node in tree.css(".d3-property-headline__published, .d3-property-insight__published, .d3-published"):
            if (when := self._published_in(node_text(node), region)) is not None:
                return when
        return self._published_in(page_text(tree), region)

    def _published_in(self, text: str, region: str) -> datetime | None:
        match = _PUBLISHED.search(text)
        if match is None:
            return None
        day, month, year = int(match.group(1)), int(match.group(2)), int(match.group(3))
        hour, minute = int(match.group(4) or 0), int(match.group(5) or 0)
        try:
            return datetime(year, month, day, hour, minute, tzinfo=ZoneInfo(TIME_ZONES.get(region, "UTC")))
        except ValueError:
            return None
