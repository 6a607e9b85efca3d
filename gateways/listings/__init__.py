"""Listing sites the lead programs crawl: what a search page and a posting page yield, per source.

The hunter (actors/hunter.py) drives real Chromium and hands each page's HTML here. A source
knows its URLs and its DOM; it never fetches anything itself.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal, Protocol

import msgspec


class SearchPage(msgspec.Struct, kw_only=True):
    """One page of a source's search results."""

    posting_urls: list[str]  # absolute, in page order, without duplicates
    next_url: str | None = None  # the next page of results, None on the last
    total: int | None = None  # the total count the page shows, when it shows one


class Posting(msgspec.Struct, kw_only=True):
    """What a posting page says about the car and its seller."""

    posting_id: str
    url: str
    title: str
    price: int | None = None  # whole currency units
    body: str = ""  # the seller's text, page boilerplate removed
    attributes: dict[str, str] = {}  # year, makemodel, odometer, condition, fuel, transmission, ...
    neighborhood: str | None = None
    latitude: float | None = None
    longitude: float | None = None
    posted_at: datetime | None = None  # when it was posted (never the "updated" time)
    phones: list[str] = []  # E.164, first seen first
    emails: list[str] = []
    name: str | None = None
    country: str = "US"


GoneReason = Literal["deleted", "expired", "flagged", "not_found"]
BlockKind = Literal["blocked_403", "blocked_503", "blocked_200"]


class Gone(msgspec.Struct, kw_only=True):
    """The posting no longer exists: not a crawler error, and never a lead."""

    reason: GoneReason
    status: int


class Blocked(msgspec.Struct, kw_only=True):
    """The site refused us (an HTTP 403/503, or a block page served with 200)."""

    kind: BlockKind
    status: int
    message: str


class MissingDom(msgspec.Struct, kw_only=True):
    """The page loaded but does not have the structure a posting page has."""

    message: str


DetailResult = Posting | Gone | Blocked | MissingDom


class ListingSource(Protocol):
    """One lead program's site: its URLs and how to read its pages."""

    key: str  # the program key and leads.source: "craigslist", "encuentra24"
    base_url_env: str  # the environment variable of the base URL template
    default_base_url: str  # the template, with "{city}"
    # What a page shows once its DOM is there: a late-rendering page is waited for that long
    # (CL_WAIT_SELECTOR_MS) before it counts as missing its DOM.
    search_ready: str
    detail_ready: str

    def search_url(self, base_url: str) -> str:
        """The first page of the by-owner cars search under `base_url` (the template filled in)."""
        ...

    def posting_id(self, url: str) -> str | None:
        """The posting id in a posting URL, None when the URL is not a posting."""
        ...

    def country(self, city: str) -> str:
        """ISO country code of the leads found in `city`."""
        ...

    def check_block(self, html: str, status: int) -> Blocked | None:
        """A block (403, 503 or a block page with 200), else None. Applies to every page."""
        ...

    def parse_search(self, html: str, page_url: str) -> SearchPage:
        """Posting URLs and the next page. Raises ValueError when the page is not a results page."""
        ...

    def parse_detail(self, html: str, url: str, status: int) -> DetailResult:
        """The posting, or why there is none (gone, blocked, missing DOM)."""
        ...
