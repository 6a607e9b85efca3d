"""What reading any listing site's HTML shares: text of nodes, prices, results pages, blocks, gone pages."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Final
from urllib.parse import urljoin

import msgspec
from selectolax.lexbor import LexborHTMLParser, LexborNode

from gateways.listings import Blocked, Gone, GoneReason, SearchPage

# Lines of the body come from <br> and block elements; this stands for them until whitespace is collapsed.
LINE_BREAK: Final = "\u2029"


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


def float_attr(node: LexborNode | None, name: str) -> float | None:
    """A number in an attribute (`data-latitude="25.76"`), None when absent or not a number."""
    raw = node.attributes.get(name) if node is not None else None
    try:
        return float(raw) if raw else None
    except ValueError:
        return None


def http_block(site: str, status: int) -> Blocked | None:
    """The HTTP statuses every site blocks with."""
    if status == 403:
        return Blocked(kind="blocked_403", status=status, message=f"HTTP 403 from {site}")
    if status == 503:
        return Blocked(kind="blocked_503", status=status, message=f"HTTP 503 from {site}")
    return None


def gone_by_text(tree: LexborHTMLParser, status: int, notices: tuple[tuple[str, GoneReason], ...]) -> Gone | None:
    """A posting the site says is gone: by its notice (whatever the status), else by 404 / 410."""
    text = page_text(tree)
    for marker, reason in notices:
        if marker in text:
            return Gone(reason=reason, status=status)
    if status in (404, 410):
        return Gone(reason="not_found", status=status)
    return None


class ResultsMarkup(msgspec.Struct, frozen=True, kw_only=True):
    """Where a site's search results page keeps its postings, its next page and its count."""

    site: str  # in messages: "Craigslist"
    result_links: tuple[str, ...]  # selectors of posting links, in the order to take them
    containers: str  # the results list itself (present also when a page has no results)
    no_results: str  # a "nothing found" notice
    no_results_text: tuple[str, ...]  # the same as page text, lowercase
    next_links: tuple[str, ...]
    disabled_classes: frozenset[str] = frozenset({"disabled"})  # a next link with one of these leads nowhere
    total: str  # the element showing the total count
    expected: str  # what a results page has, for the error message

    def parse(self, html: str, page_url: str, posting_id: Callable[[str], str | None]) -> SearchPage:
        """Posting URLs in page order without duplicates, the next page and the total.

        Raises ValueError when the page is not a results page (no results, no container, no notice).
        """
        tree = LexborHTMLParser(html)
        urls: list[str] = []
        for selector in self.result_links:
            for link in tree.css(selector):
                url = urljoin(page_url, link.attributes.get("href") or "")
                if posting_id(url) is not None and url not in urls:
                    urls.append(url)
        if not urls and tree.css_first(self.containers) is None and not self._says_no_results(tree):
            title = node_text(tree.css_first("title")) or page_text(tree)[:80]
            raise ValueError(
                f"not {'an' if self.site[0] in 'AEIOU' else 'a'} {self.site} results page: {page_url} has no "
                f"{self.expected} or no-results notice (page title {title!r})"
            )
        return SearchPage(posting_urls=urls, next_url=self._next_url(tree, page_url), total=self._total(tree))

    def _says_no_results(self, tree: LexborHTMLParser) -> bool:
        if tree.css_first(self.no_results) is not None:
            return True
        text = page_text(tree)
        return any(marker in text for marker in self.no_results_text)

    def _next_url(self, tree: LexborHTMLParser, page_url: str) -> str | None:
        for selector in self.next_links:
            for link in tree.css(selector):
                href = (link.attributes.get("href") or "").strip()
                classes = set((link.attributes.get("class") or "").split())
                if not href or href == "#" or classes & self.disabled_classes:
                    continue
                url = urljoin(page_url, href)
                return None if url == page_url else url
        return None

    def _total(self, tree: LexborHTMLParser) -> int | None:
        digits = re.sub(r"\D", "", node_text(tree.css_first(self.total)))
        return int(digits) if digits else None
