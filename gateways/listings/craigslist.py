"""Craigslist "cars & trucks - by owner": its URLs and both generations of its search and posting DOM."""

from __future__ import annotations

import re
from datetime import datetime
from urllib.parse import urljoin, urlsplit

from selectolax.lexbor import LexborHTMLParser, LexborNode

from gateways.listings import Blocked, DetailResult, Gone, GoneReason, MissingDom, Posting, SearchPage
from gateways.listings.contacts import find_emails, find_phones

_POSTING_ID = re.compile(r"/(\d+)\.html$")
_RESULT_LINKS = (
    "ol.cl-static-search-results li.cl-static-search-result a[href]",  # static markup served to every client
    "li.cl-search-result a.cl-app-anchor[href]",  # what the results app renders in a browser
    "div.cl-search-result a.posting-title[href]",
    "li.result-row a.result-title[href]",  # the older result rows
)
_RESULTS_CONTAINERS = "ol.cl-static-search-results, div.cl-results-page, ul.rows, #search-results, div.content ul.rows"
_NO_RESULTS = ".cl-empty-results, .noresults, .no-results, .cl-no-results"
_NO_RESULTS_TEXT = ("nothing found for that search", "no results")
_NEXT_LINKS = ("a.button.next", "a.next", "link[rel=next]")
_GONE_TEXT: tuple[tuple[str, GoneReason], ...] = (
    ("this posting has been deleted by its author", "deleted"),
    ("this posting has expired", "expired"),
    ("this posting has been flagged for removal", "flagged"),
)
_BLOCK_TEXT = re.compile(r"\bthis ip has been automatically blocked\b|\bblocked\b", re.IGNORECASE)
_POSTING_DOM = "span#titletextonly, section#postingbody"
# Lines of the body come from <br> and block elements; this stands for them until whitespace is collapsed.
LINE_BREAK = "\u2029"
_BODY_BOILERPLATE = "div.print-information, .print-qrcode-container, script, style, a.show-contact, .show-contact"


def node_text(node: LexborNode | None) -> str:
    """The node's text with runs of whitespace collapsed, "" for no node."""
    if node is None:
        return ""
    return " ".join(node.text(separator=" ").split())


def body_text(node: LexborNode, boilerplate: str) -> str:
    """The seller's text under `node`: lines kept, whitespace collapsed, `boilerplate` removed."""
    for junk in node.css(boilerplate):
        junk.decompose()
    for br in node.css("br"):
        br.replace_with(LINE_BREAK)
    for block in node.css("p, div, li"):
        block.insert_after(LINE_BREAK)
    lines = [" ".join(line.split()) for line in node.text().split(LINE_BREAK)]
    return re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip()


def whole_units(text: str) -> int | None:
    """ "$6,500" -> 6500; None when the text holds no digits (a "call for price" listing)."""
    digits = re.sub(r"[^\d]", "", text.split(".")[0] if re.search(r"\.\d{2}$", text) else text)
    return int(digits) if digits else None


def page_text(tree: LexborHTMLParser) -> str:
    body = tree.body
    return node_text(body if body is not None else tree.root).lower()


def attribute_key(label: str) -> str:
    """ "title status:" -> "title_status"."""
    return "_".join(label.strip().rstrip(":").strip().lower().split())


def _float_attr(node: LexborNode | None, name: str) -> float | None:
    if node is None:
        return None
    raw = node.attributes.get(name)
    try:
        return float(raw) if raw else None
    except ValueError:
        return None


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

    def search_url(self, base_url: str) -> str:
        return base_url.rstrip("/") + "/search/cto"

    def posting_id(self, url: str) -> str | None:
        match = _POSTING_ID.search(urlsplit(url).path)
        return match.group(1) if match else None

    def country(self, city: str) -> str:
        return "US"

    def check_block(self, html: str, status: int) -> Blocked | None:
        if status == 403:
            return Blocked(kind="blocked_403", status=status, message="HTTP 403 from Craigslist")
        if status == 503:
            return Blocked(kind="blocked_503", status=status, message="HTTP 503 from Craigslist")
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
        tree = LexborHTMLParser(html)
        urls: list[str] = []
        for selector in _RESULT_LINKS:
            for link in tree.css(selector):
                url = urljoin(page_url, link.attributes.get("href") or "")
                if self.posting_id(url) is not None and url not in urls:
                    urls.append(url)
        if not urls and tree.css_first(_RESULTS_CONTAINERS) is None and not self._says_no_results(tree):
            title = node_text(tree.css_first("title")) or page_text(tree)[:80]
            raise ValueError(
                f"not a Craigslist results page: {page_url} has no ol.cl-static-search-results, "
                f"li.result-row or no-results notice (page title {title!r})"
            )
        return SearchPage(posting_urls=urls, next_url=self._next_url(tree, page_url), total=self._total(tree))

    def _says_no_results(self, tree: LexborHTMLParser) -> bool:
        if tree.css_first(_NO_RESULTS) is not None:
            return True
        text = page_text(tree)
        return any(marker in text for marker in _NO_RESULTS_TEXT)

    def _next_url(self, tree: LexborHTMLParser, page_url: str) -> str | None:
        for selector in _NEXT_LINKS:
            for link in tree.css(selector):
                href = (link.attributes.get("href") or "").strip()
                classes = (link.attributes.get("class") or "").split()
                if not href or href == "#" or "disabled" in classes:
                    continue
                url = urljoin(page_url, href)
                return None if url == page_url else url
        return None

    def _total(self, tree: LexborHTMLParser) -> int | None:
        digits = re.sub(r"\D", "", node_text(tree.css_first("span.totalcount")))
        return int(digits) if digits else None

    def parse_detail(self, html: str, url: str, status: int) -> DetailResult:
        if (blocked := self.check_block(html, status)) is not None:
            return blocked
        tree = LexborHTMLParser(html)
        title_node = tree.css_first("span#titletextonly")
        removed = tree.css_first("div.removed")
        if title_node is None or removed is not None or status in (404, 410):
            text = page_text(tree)
            for marker, reason in _GONE_TEXT:
                if marker in text:
                    return Gone(reason=reason, status=status)
            if status in (404, 410):
                return Gone(reason="not_found", status=status)
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
            latitude=_float_attr(map_node, "data-latitude"),
            longitude=_float_attr(map_node, "data-longitude"),
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
