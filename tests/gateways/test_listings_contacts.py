"""Phones and emails found in sellers' text: the formats they write, and the numbers that are not phones."""

from __future__ import annotations

import pytest

from gateways.listings.contacts import find_emails, find_phones


@pytest.mark.parametrize(
    "text",
    [
        "call 305-421-7788",
        "(305) 421 7788",
        "305.421.7788",
        "3054217788",
        "+1 305 421 7788",
        "1-305-421-7788",
        "305 421 77 88",
        "305\u2013421\u20137788",
        "text me at 305 . 421 . 7788 anytime",
    ],
)
def test_us_formats_sellers_write(text: str) -> None:
    assert find_phones(text) == ["+13054217788"]


def test_first_seen_order_without_duplicates() -> None:
    text = "786.421.9900 or 305-421-7788, again 786 421 9900 +1 305 421 7788"
    assert find_phones(text) == ["+17864219900", "+13054217788"]


@pytest.mark.parametrize(
    "text",
    [
        "Asking $12,500 obo",
        "2015 toyota camry",
        "120,000 miles on it",
        "odometer 120000",
        "VIN 1HGCM82633A004352",
        "VIN: 2T1BURHE0JC123456",
        "stock 7712345678",
        "post id: 7712345678",
    ],
)
def test_prices_years_mileage_and_ids_are_not_phones(text: str) -> None:
    assert find_phones(text) == []


def test_central_american_numbers_in_their_region() -> None:
    assert find_phones("Llamar al 8888-7777 o al +506 8312 4567", "CR") == ["+50688887777", "+50683124567"]
    assert find_phones("WhatsApp 6123-4567", "PA") == ["+50761234567"]
    assert find_phones("+507 6123 4567", "CR") == ["+50761234567"]


@pytest.mark.parametrize(
    "text", ["Precio: \u20a16.500.000", "$12.500 negociable", "2.500.000 colones", "precio 3500000", "120.000 km"]
)
def test_latin_amounts_are_not_phones(text: str) -> None:
    assert find_phones(text, "PA") == []
    assert find_phones(text, "CR") == []


def test_emails_lowercased_deduped_and_deobfuscated() -> None:
    text = (
        "John.Doe@Gmail.com or john.doe@gmail.com; mike at yahoo dot com, ana [at] hotmail.com, "
        "pepe (arroba) gmail (punto) com. Meet at 5. Look at the car."
    )
    assert find_emails(text) == ["john.doe@gmail.com", "mike@yahoo.com", "ana@hotmail.com", "pepe@gmail.com"]


def test_no_contacts() -> None:
    assert find_emails("no emails here, reply through craigslist") == []
    assert find_phones("") == []
