"""The Encuentra24 source: country slugs, d3-* tiles and postings, Latin prices, day-first dates, gone and blocked."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from gateways.listings import Blocked, Gone, MissingDom, Posting
from gateways.listings.encuentra24 import Encuentra24

E24 = Encuentra24()
BASE = "https://www.encuentra24.com/costa-rica-es"
PAGE = f"{BASE}/autos-usados?q=f_seller.private"
POSTING_URL = f"{BASE}/autos-usados/toyota-corolla-2015/31234567"

RESULTS = """<html><body><header class="d3-header">Encuentra24</header><main>
<span class="d3-search-header__count">1.234 resultados</span>
<section class="d3-search-results"><div class="d3-ads-grid">
<article class="d3-ad-tile"><div class="d3-ad-tile__cover"><a href="/costa-rica-es/autos-usados/toyota-corolla-2015/31234567"><img></a></div>
<a class="d3-ad-tile__description" href="/costa-rica-es/autos-usados/toyota-corolla-2015/31234567">
<span class="d3-ad-tile__title">Toyota Corolla 2015</span></a><div class="d3-ad-tile__price">$12.500</div></article>
<article class="d3-ad-tile"><a class="d3-ad-tile__description" href="https://www.encuentra24.com/costa-rica-es/autos-usados/honda-civic-2012/31234568">
<span class="d3-ad-tile__title">Honda Civic 2012</span></a></article>
</div></section><nav class="d3-pagination"><a class="d3-pagination__next" rel="next" href="/costa-rica-es/autos-usados?q=f_seller.private&amp;page=2">Siguiente</a></nav>
</main></body></html>"""  # noqa: E501

POSTING = """<html><body><header class="d3-header">Encuentra24</header><main>
<div class="d3-property-headline"><h1 class="d3-property-headline__title">Toyota Corolla 2015</h1>
<div class="d3-property-headline__price"><span class="d3-price">\u20a16.500.000</span></div>
<div class="d3-property-headline__location"><span class="d3-location">San José, Escazú</span></div></div>
<section class="d3-property-insight">
<div class="d3-property-insight__attribute"><span class="d3-property-insight__attribute-title">Marca</span><span class="d3-property-insight__attribute-value">Toyota</span></div>
<div class="d3-property-insight__attribute"><span class="d3-property-insight__attribute-title">Modelo</span><span class="d3-property-insight__attribute-value">Corolla</span></div>
<div class="d3-property-insight__attribute"><span class="d3-property-insight__attribute-title">Año</span><span class="d3-property-insight__attribute-value">2015</span></div>
<div class="d3-property-insight__attribute"><span class="d3-property-insight__attribute-title">Kilometraje</span><span class="d3-property-insight__attribute-value">120.000 km</span></div>
<div class="d3-property-insight__attribute"><span class="d3-property-insight__attribute-title">Transmisión</span><span class="d3-property-insight__attribute-value">Automática</span></div>
<div class="d3-property-insight__attribute"><span class="d3-property-insight__attribute-title">Combustible</span><span class="d3-property-insight__attribute-value">Gasolina</span></div>
<div class="d3-property-insight__updated">Actualizado: 10/01/2026</div>
<div class="d3-property-insight__published">Publicado: 09/01/2026</div></section>
<div class="d3-property-about__text">Vendo Corolla 2015, 120.000 km, precio ₡6.500.000.<br>Llamar al 8888-7777 o +506 8312 4567
<br>correo: pepe [at] gmail.com<button>Ver más</button></div>
<div class="d3-map" data-lat="9.93" data-lng="-84.09"></div>
<aside><div class="d3-property-contact__name">Pepe</div></aside></main></body></html>"""  # noqa: E501


def test_urls_countries_and_ids() -> None:
    assert E24.default_base_url.format(city="costa-rica") == BASE
    assert E24.search_url(BASE) == PAGE
    assert E24.posting_id(POSTING_URL) == "31234567"
    assert E24.posting_id(PAGE) is None
    assert [E24.country(c) for c in ("costa-rica", "panama", "guatemala", "el-salvador", "honduras", "nicaragua")] == [
        "CR", "PA", "GT", "SV", "HN", "NI",
    ]  # fmt: skip
    with pytest.raises(ValueError, match=r"unknown Encuentra24 country slug 'mexico': use one of costa-rica, "):
        E24.country("mexico")


def test_search_page() -> None:
    page = E24.parse_search(RESULTS, PAGE)
    assert page.posting_urls == [POSTING_URL, f"{BASE}/autos-usados/honda-civic-2012/31234568"]
    assert page.next_url == f"{PAGE}&page=2"
    assert page.total == 1234
    last = RESULTS.replace('class="d3-pagination__next"', 'class="d3-pagination__next disabled"')
    assert E24.parse_search(last, PAGE).next_url is None


def test_not_a_results_page_raises() -> None:
    with pytest.raises(ValueError, match="not an Encuentra24 results page"):
        E24.parse_search("<html><head><title>Inicio</title></head><body><p>hola</p></body></html>", PAGE)


def test_posting() -> None:
    posting = E24.parse_detail(POSTING, POSTING_URL, 200)
    assert isinstance(posting, Posting)
    assert posting.title == "Toyota Corolla 2015"
    assert posting.price == 6500000
    assert posting.attributes == {
        "make": "Toyota", "model": "Corolla", "year": "2015", "odometer": "120000", "transmission": "Automática",
        "fuel": "Gasolina", "makemodel": "toyota corolla", "currency": "CRC",
    }  # fmt: skip
    assert posting.posted_at == datetime(2026, 1, 9, tzinfo=ZoneInfo("America/Costa_Rica"))
    assert posting.phones == ["+50688887777", "+50683124567"]
    assert posting.emails == ["pepe@gmail.com"]
    assert posting.neighborhood == "San José, Escazú"
    assert (posting.latitude, posting.longitude) == (9.93, -84.09)
    assert posting.name == "Pepe"
    assert posting.country == "CR"
    assert "Ver más" not in posting.body


def test_dollar_price_with_latin_separators() -> None:
    posting = E24.parse_detail(POSTING.replace("\u20a16.500.000</span>", "$12.500</span>"), POSTING_URL, 200)
    assert isinstance(posting, Posting)
    assert posting.price == 12500
    assert posting.attributes["currency"] == "USD"


@pytest.mark.parametrize(
    ("message", "reason"),
    [
        ("Este anuncio ya no está disponible", "expired"),
        ("Este anuncio ha sido eliminado por el anunciante.", "deleted"),
        ("Este anuncio ha sido retirado por incumplir nuestras políticas.", "flagged"),
    ],
)
def test_gone(message: str, reason: str) -> None:
    notice = f"<div class='d3-ad-unavailable'><h2>{message}</h2></div>"
    html = f"<html><body><header>Encuentra24</header>{notice}</body></html>"
    assert E24.parse_detail(html, POSTING_URL, 200) == Gone(reason=reason, status=200)  # type: ignore[arg-type]
    assert E24.parse_detail("<html></html>", POSTING_URL, 410) == Gone(reason="not_found", status=410)
    assert E24.parse_detail("<html></html>", POSTING_URL, 404) == Gone(reason="not_found", status=404)


@pytest.mark.parametrize(
    ("html", "status", "kind"),
    [
        ("", 403, "blocked_403"),
        ("", 503, "blocked_503"),
        ("<html><body><h1>Access denied</h1></body></html>", 200, "blocked_200"),
        ('<html><body><div class="g-recaptcha"></div></body></html>', 200, "blocked_200"),
    ],
)
def test_blocks(html: str, status: int, kind: str) -> None:
    detail = E24.parse_detail(html, POSTING_URL, status)
    assert isinstance(detail, Blocked)
    assert detail.kind == kind


def test_missing_dom() -> None:
    missing = E24.parse_detail("<html><body><div class='d3-spinner'>Cargando</div></body></html>", POSTING_URL, 200)
    assert isinstance(missing, MissingDom)
    assert "h1.d3-property-headline__title" in missing.message
