"""The Craigslist source reads both generations of its search and posting DOM, and tells gone from blocked."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from gateways.listings import Blocked, Gone, MissingDom, Posting
from gateways.listings.craigslist import Craigslist

CL = Craigslist()
PAGE = "https://miami.craigslist.org/search/cto"
POSTING_URL = "https://miami.craigslist.org/mdc/cto/d/hialeah-2012-toyota-camry/7712345678.html"

STATIC_RESULTS = """<html><head><title>miami cars & trucks - by owner - craigslist</title></head><body>
<header>craigslist</header><div class="cl-search-toolbar"><span class="totalcount">1,234</span></div>
<ol class="cl-static-search-results">
<li class="cl-static-search-result-header">cars &amp; trucks - by owner</li>
<li class="cl-static-search-result" title="2012 Toyota Camry">
<a href="https://miami.craigslist.org/mdc/cto/d/hialeah-2012-toyota-camry/7712345678.html">
<div class="title">2012 Toyota Camry</div>
<div class="details"><div class="price">$6,500</div><div class="location">Hialeah</div></div></a></li>
<li class="cl-static-search-result" title="2015 Honda Civic">
<a href="/mdc/cto/d/kendall-2015-honda-civic/7712345679.html"><div class="title">2015 Honda Civic</div></a></li>
<li class="cl-static-search-result" title="dup"><a href="/mdc/cto/d/kendall-2015-honda-civic/7712345679.html">dup</a></li>
</ol><a class="button next" href="?s=120">next &gt;</a><footer>&copy; craigslist</footer></body></html>"""  # noqa: E501

OLD_RESULTS = """<html><body><div class="content"><ul class="rows">
<li class="result-row" data-pid="7700000001"><a href="/mdc/cto/d/doral-2010-ford-f150/7700000001.html"
 class="result-image gallery"></a><p class="result-info"><time class="result-date" datetime="2026-01-09 10:00">Jan 9</time>
<a href="/mdc/cto/d/doral-2010-ford-f150/7700000001.html" data-id="7700000001" class="result-title hdrlnk">2010 Ford F150</a>
<span class="result-price">$9,000</span></p></li>
</ul><span class="button pagenum"><span class="totalcount">1</span></span>
<a href="" class="button next" title="next page">next &gt;</a></div>
<link rel="next" href="/search/cto?s=999" class="ignored"></body></html>"""  # noqa: E501


def _posting(attrs: str, infos: str, body_extra: str = "") -> str:
    return f"""<html><head><title>2012 Toyota Camry LE</title><script>var x = 1;</script></head><body>
<header class="global-header"><nav>miami &gt; for sale &gt; cars &amp; trucks - by owner</nav></header>
<section class="body"><h1 class="postingtitle"><span class="postingtitletext">
<span id="titletextonly">2012 Toyota Camry LE</span> <span class="price">$6,500</span>
<span class="postingtitle-hood"> (Hialeah)</span></span></h1>
<section class="userbody"><div class="mapAndAttrs">
<div class="mapbox"><div id="map" data-latitude="25.8576" data-longitude="-80.2781" data-accuracy="22"></div></div>
{attrs}</div>
<section id="postingbody">
<div class="print-information print-qrcode-container"><p class="print-qrcode-label">QR Code Link to This Post</p>
<div class="print-qrcode" data-location="{POSTING_URL}"></div></div>
Selling my camry, 120,000 miles, asking $6,500 obo.<br>
<br>
Call Carlos 305-421-7788 or mike at yahoo dot com
<a href="/reply" class="show-contact">show contact info</a>{body_extra}
</section>
<div class="postinginfos">{infos}</div></section></section>
<footer>&copy; 2026 craigslist <a href="https://www.craigslist.org/about/help/">help</a></footer></body></html>"""


NEW_ATTRS = """<div class="attrgroup"><div class="attr important"><span class="valu year">2012</span>
<span class="valu makemodel"><a href="/search/cto?auto_make_model=toyota camry">toyota camry</a></span></div></div>
<div class="attrgroup">
<div class="attr condition"><span class="labl">condition:</span> <span class="valu"><a>excellent</a></span></div>
<div class="attr auto_miles"><span class="labl">odometer:</span> <span class="valu">120,000</span></div>
<div class="attr"><span class="labl">title status:</span> <span class="valu">clean</span></div>
<div class="attr"><span class="labl">paint color:</span> <span class="valu">silver</span></div>
</div>"""
OLD_ATTRS = """<p class="attrgroup"><span><b>2012 toyota camry</b></span><br></p>
<p class="attrgroup"><span>condition: <b>excellent</b></span><br><span>odometer: <b>120000</b></span><br>
<span>title status: <b>clean</b></span><br><span>paint color: <b>silver</b></span><br></p>"""
# "updated:" first on purpose: the parser must still take the "posted:" time.
INFOS = """<p class="postinginfo">post id: 7712345678</p>
<p class="postinginfo reveal">updated: <time class="date timeago" datetime="2026-01-10T09:00:00-0500">2026-01-10</time></p>
<p class="postinginfo reveal">posted: <time class="date timeago" datetime="2026-01-09T15:30:00-0500">2026-01-09</time></p>"""  # noqa: E501
EXPECTED_ATTRS = {
    "year": "2012",
    "makemodel": "toyota camry",
    "condition": "excellent",
    "odometer": "120000",
    "title_status": "clean",
    "paint_color": "silver",
}


def test_urls_and_ids() -> None:
    assert CL.search_url("https://miami.craigslist.org") == PAGE
    assert CL.default_base_url.format(city="miami") == "https://miami.craigslist.org"
    assert CL.posting_id(POSTING_URL) == "7712345678"
    assert CL.posting_id(PAGE) is None
    assert CL.country("miami") == "US"


def test_static_search_results() -> None:
    page = CL.parse_search(STATIC_RESULTS, PAGE)
    assert page.posting_urls == [
        POSTING_URL,
        "https://miami.craigslist.org/mdc/cto/d/kendall-2015-honda-civic/7712345679.html",
    ]
    assert page.next_url == "https://miami.craigslist.org/search/cto?s=120"
    assert page.total == 1234


def test_older_result_rows_and_empty_next_is_last_page() -> None:
    page = CL.parse_search(OLD_RESULTS.replace('<link rel="next" href="/search/cto?s=999" class="ignored">', ""), PAGE)
    assert page.posting_urls == ["https://miami.craigslist.org/mdc/cto/d/doral-2010-ford-f150/7700000001.html"]
    assert page.next_url is None
    assert page.total == 1


def test_disabled_next_and_rel_next() -> None:
    disabled = STATIC_RESULTS.replace('class="button next"', 'class="button next disabled"')
    assert CL.parse_search(disabled, PAGE).next_url is None
    next_link = '<a class="button next" href="?s=120">next &gt;</a>'
    rel = STATIC_RESULTS.replace(next_link, '<link rel="next" href="/x?s=5">')
    assert CL.parse_search(rel, PAGE).next_url == "https://miami.craigslist.org/x?s=5"


def test_no_results_page_is_empty_not_an_error() -> None:
    html = '<html><body><div class="cl-empty-results">Nothing found for that search.</div></body></html>'
    assert CL.parse_search(html, PAGE).posting_urls == []


def test_not_a_results_page_raises() -> None:
    with pytest.raises(ValueError, match=r"not a Craigslist results page: https://miami\.craigslist\.org/search/cto"):
        CL.parse_search("<html><head><title>log in</title></head><body><form></form></body></html>", PAGE)


@pytest.mark.parametrize("attrs", [NEW_ATTRS, OLD_ATTRS], ids=["current", "older"])
def test_posting_both_attribute_generations(attrs: str) -> None:
    posting = CL.parse_detail(_posting(attrs, INFOS), POSTING_URL, 200)
    assert isinstance(posting, Posting)
    assert posting.posting_id == "7712345678"
    assert posting.title == "2012 Toyota Camry LE"
    assert posting.price == 6500
    assert posting.neighborhood == "Hialeah"
    assert (posting.latitude, posting.longitude) == (25.8576, -80.2781)
    assert posting.attributes == EXPECTED_ATTRS
    assert posting.body == (
        "Selling my camry, 120,000 miles, asking $6,500 obo.\n\nCall Carlos 305-421-7788 or mike at yahoo dot com"
    )
    assert "QR Code" not in posting.body
    assert "show contact info" not in posting.body
    assert posting.posted_at == datetime(2026, 1, 9, 15, 30, tzinfo=timezone(timedelta(hours=-5)))
    assert posting.phones == ["+13054217788"]
    assert posting.emails == ["mike@yahoo.com"]
    assert posting.country == "US"


def test_only_updated_time_is_no_posted_time() -> None:
    infos = INFOS.split('<p class="postinginfo reveal">posted:')[0]
    posting = CL.parse_detail(_posting(NEW_ATTRS, infos), POSTING_URL, 200)
    assert isinstance(posting, Posting)
    assert posting.posted_at is None


def _removed(message: str) -> str:
    return (
        "<html><body><header>craigslist</header><section class='body'><div class='removed'>"
        f"<h2>{message}</h2></div></section><footer>help</footer></body></html>"
    )


@pytest.mark.parametrize(
    ("message", "reason"),
    [
        ("This posting has been deleted by its author.", "deleted"),
        ("This posting has expired.", "expired"),
        ("This posting has been flagged for removal.", "flagged"),
    ],
)
@pytest.mark.parametrize("status", [200, 404])
def test_gone_postings(message: str, reason: str, status: int) -> None:
    assert CL.parse_detail(_removed(message), POSTING_URL, status) == Gone(reason=reason, status=status)  # type: ignore[arg-type]


@pytest.mark.parametrize("status", [404, 410])
def test_plain_not_found(status: int) -> None:
    gone = CL.parse_detail("<html><body><h1>Page not found</h1></body></html>", POSTING_URL, status)
    assert gone == Gone(reason="not_found", status=status)


BLOCK_PAGE = (
    "<html><head><title>blocked</title></head><body><p>This IP has been automatically blocked.<br>"
    "If you have questions, please email: blocks-b1700000000@craigslist.org</p></body></html>"
)


@pytest.mark.parametrize(
    ("html", "status", "kind"),
    [("<html>Forbidden</html>", 403, "blocked_403"), ("", 503, "blocked_503"), (BLOCK_PAGE, 200, "blocked_200")],
)
def test_blocks(html: str, status: int, kind: str) -> None:
    blocked = CL.check_block(html, status)
    assert blocked is not None
    assert blocked.kind == kind
    assert blocked.status == status
    detail = CL.parse_detail(html, POSTING_URL, status)
    assert isinstance(detail, Blocked)
    assert detail.kind == kind
    with pytest.raises(ValueError, match="not a Craigslist results page"):
        CL.parse_search(html, PAGE)  # the hunter checks blocks first; the parser alone refuses the page


def test_a_posting_that_mentions_blocked_is_no_block() -> None:
    html = _posting(NEW_ATTRS, INFOS, body_extra="<br>blocked drain fixed last week")
    assert CL.check_block(html, 200) is None
    assert isinstance(CL.parse_detail(html, POSTING_URL, 200), Posting)


def test_missing_dom_names_the_selector() -> None:
    shell = "<html><body><header>craigslist</header><div class='loading'>loading</div></body></html>"
    missing = CL.parse_detail(shell, POSTING_URL, 200)
    assert isinstance(missing, MissingDom)
    assert "span#titletextonly" in missing.message
    no_body = _posting(NEW_ATTRS, INFOS).replace('id="postingbody"', 'id="elsewhere"')
    missing = CL.parse_detail(no_body, POSTING_URL, 200)
    assert isinstance(missing, MissingDom)
    assert "section#postingbody" in missing.message
