"""Craigslist "cars & trucks - by owner": its URLs and both generations of its search and posting DOM."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Final
from urllib.parse import urlsplit

from selectolax.lexbor import LexborHTMLParser, LexborNode

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

_POSTING_ID = re.compile(r"/(\d+)\.html$")
_RESULT_LINKS = (
    "ol.cl-static-search-results li.cl-static-search-result a[href]",  # static markup served to every client
    "li.cl-search-result a.cl-app-anchor[href]",  # what the results app renders in a browser
    "div.cl-search-result a.posting-title[href]",
    "li.result-row a.result-title[href]",  # the older result rows
)
_RESULTS_CONTAINERS = "ol.cl-static-search-results, div.cl-results-page, ul.rows, #search-results, div.content ul.rows"
_RESULTS: Final = ResultsMarkup(
    site="Craigslist",
    result_links=_RESULT_LINKS,
    containers=_RESULTS_CONTAINERS,
    no_results=".cl-empty-results, .noresults, .no-results, .cl-no-results",
    no_results_text=("nothing found for that search", "no results"),
    next_links=("a.button.next", "a.next", "link[rel=next]"),
    total="span.totalcount",
    expected="ol.cl-static-search-results, li.result-row",
)
_GONE_TEXT: tuple[tuple[str, GoneReason], ...] = (
    ("this posting has been deleted by its author", "deleted"),
    ("this posting has expired", "expired"),
    ("this posting has been flagged for removal", "flagged"),
)
_BLOCK_TEXT = re.compile(r"\bthis ip has been automatically blocked\b|\bblocked\b", re.IGNORECASE)
_POSTING_DOM = "span#titletextonly, section#postingbody"
_BODY_BOILERPLATE = "div.print-information, .print-qrcode-container, script, style, a.show-contact, .show-contact"


def _parse_time(raw: str) -> datetime | None:
    for parse in (datetime.fromisoformat, lambda s: datetime.strptime(s, "%Y-%m-%dT%H:%M:%S%z")):
        try:
            value = parse(raw.strip())
        except ValueError:
            continue
        return value if value.tzinfo is not None else None
    return None


def _attr_value(key: str, value: str) -> str:
    # Both DOM generations write the odometer differently ("120,000" vs "120000"); keep its digits.
    return re.sub(r"\D", "", value) if key == "odometer" else value


class Craigslist:
    """The Craigslist lead program: US cities, "cto" (cars & trucks by owner) search."""

    key = "craigslist"
    base_url_env = "CL_BASE_URL_TEMPLATE"
    default_base_url = "https://{city}.craigslist.org"
    search_ready = _RESULTS_CONTAINERS
    detail_ready = _POSTING_DOM

    def search_url(self, base_url: str) -> str:
        return base_url.rstrip("/") + "/search/cto"

    def posting_id(self, url: str) -> str | None:
        match = _POSTING_ID.search(urlsplit(url).path)
        return match.group(1) if match else None

    def country(self, city: str) -> str:
        return "US"

    def check_block(self, html: str, status: int) -> Blocked | None:
        if (blocked := http_block("Craigslist", status)) is not None:
            return blocked
        if not 200 <= status < 300:
            return None
        tree = LexborHTMLParser(html)
        if tree.css_first(_POSTING_DOM) is not None or tree.css_first(_RESULTS_CONTAINERS) is not None:
            return None
        text = page_text(tree)
        match = _BLOCK_TEXT.search(text)
        if match is None:
            return None
        start = max(0, match.start() - 60)
        notice = text[start:][:200]
        return Blocked(kind="blocked_200", status=status, message=f"block page served with {status}: {notice!r}")

    def parse_search(self, html: str, page_url: str) -> SearchPage:
        return _RESULTS.parse(html, page_url, self.posting_id)

    def parse_detail(self, html: str, url: str, status: int) -> DetailResult:
        if (blocked := self.check_block(html, status)) is not None:
            return blocked
        tree = LexborHTMLParser(html)
        title_node = tree.css_first("span#titletextonly")
        removed = tree.css_first("div.removed")
        if (title_node is None or removed is not None or status in (404, 410)) and (
            gone := gone_by_text(tree, status, _GONE_TEXT)
        ):
            return gone
        if title_node is None:
            return MissingDom(message=f"no span#titletextonly (h1.postingtitle) on {url} (HTTP {status})")
        body_node = tree.css_first("section#postingbody")
        if body_node is None:
            return MissingDom(message=f"no section#postingbody on {url} (HTTP {status})")
        posting_id = self.posting_id(url)
        if posting_id is None:
            return MissingDom(message=f"{url} is not a Craigslist posting URL (no /<id>.html)")

        title = node_text(title_node)
        heading = tree.css_first("h1.postingtitle")
        price_node = (heading.css_first("span.price") if heading is not None else None) or tree.css_first("span.price")
        hood_node = tree.css_first("span.postingtitle-hood") or (heading.css_first("small") if heading else None)
        hood = node_text(hood_node).strip().strip("()").strip()
        map_node = tree.css_first("#map")
        body = body_text(body_node, _BODY_BOILERPLATE)
        seller_text = f"{title}\n{body}"
        return Posting(
            posting_id=posting_id,
            url=url,
            title=title,
            price=whole_units(node_text(price_node)) if price_node is not None else None,
            body=body,
            attributes=self._attributes(tree),
            neighborhood=hood or None,
            latitude=float_attr(map_node, "data-latitude"),
            longitude=float_attr(map_node, "data-longitude"),
            posted_at=self._posted_at(tree),
            phones=find_phones(seller_text, "US"),
            emails=find_emails(seller_text),
            country="US",
        )

    def _attributes(self, tree: LexborHTMLParser) -> dict[str, str]:
        attributes: dict[str, str] = {}
        for group in tree.css(".attrgroup"):
            if group.css_first(".valu, .labl") is not None:
                self._current_attrs(group, attributes)
            else:
                self._older_attrs(group, attributes)
        return attributes

    def _current_attrs(self, group: LexborNode, attributes: dict[str, str]) -> None:
        for key in ("year", "makemodel"):
            if value := node_text(group.css_first(f"span.valu.{key}")):
                attributes[key] = value
        for attr in group.css("div.attr, span.attr"):
            label = node_text(attr.css_first("span.labl"))
            value = node_text(attr.css_first("span.valu"))
            if label and value:
                key = attribute_key(label)
                attributes[key] = _attr_value(key, value)

    def _older_attrs(self, group: LexborNode, attributes: dict[str, str]) -> None:
        for span in group.css("span"):
            bold = span.css_first("b")
            if bold is None:
                continue
            value = node_text(bold)
            label = node_text(span)[: -len(value)].strip() if value else node_text(span)
            if label.endswith(":"):
                key = attribute_key(label)
                attributes[key] = _attr_value(key, value)
            elif value:
                # The unlabelled bold line is the car itself: "2012 toyota camry".
                year, _, rest = value.partition(" ")
                if re.fullmatch(r"(19|20)\d{2}", year):
                    attributes["year"] = year
                    if rest:
                        attributes["makemodel"] = rest.strip()
                else:
                    attributes["makemodel"] = value

    def _posted_at(self, tree: LexborHTMLParser) -> datetime | None:
        for paragraph in tree.css("div.postinginfos p.postinginfo, p#display-date, p.postinginfo"):
            label = node_text(paragraph).lower()
            if not label.startswith("posted") and "posted:" not in label:
                continue  # "updated:" is when the seller edited it, not when it was posted
            time_node = paragraph.css_first("time[datetime]")
            if time_node is not None and (when := _parse_time(time_node.attributes.get("datetime") or "")):
                return when
        return None
