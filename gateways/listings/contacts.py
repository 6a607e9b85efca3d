"""Phones (E.164) and email addresses found in a seller's free text, the way sellers write them."""

from __future__ import annotations

import re

import phonenumbers

# Words that, right before a number, say it is a price, a mileage or an identifier, never a phone.
_NOT_A_PHONE_BEFORE = frozenset(
    {
        "precio", "price", "asking", "odometer", "odómetro", "odometro", "kilometraje", "millaje", "mileage",
        "miles", "millas", "km", "kms", "mi", "vin", "id", "stock", "año", "ano", "year", "modelo", "cc", "#",
        "$", "₡", "usd", "us$", "b/.", "colones", "dólares", "dolares", "crc", "pid", "post",
    }
)  # fmt: skip
_NOT_A_PHONE_AFTER = re.compile(
    r"\s*(?:km|kms|kilómetros|kilometros|mi|miles|millas|colones|dólares|dolares|usd|cc|\.html|/)\b", re.IGNORECASE
)
_LAST_WORD = re.compile(r"([^\s:=]+)[\s:=]*$")
# "12.500" / "2.500.000" / "120,000": thousands grouping is an amount, whatever the region's numbering plan.
_GROUPED_AMOUNT = re.compile(r"^\d{1,3}(?:[.,]\d{3})+$")
# Sellers split digits with odd characters to dodge scrapers; these stand for the usual separators.
_ODD_SEPARATORS = str.maketrans(
    {"\u2013": "-", "\u2014": "-", "\u2012": "-", "\u2212": "-", "\u00b7": ".", "\u2022": ".", "_": "-", "/": " "}
)
_ADJACENT_INTERNATIONAL = re.compile(r"(\d)[ \t]+(\+\d)")
_SPELLED_SEPARATOR = re.compile(r"\s*[\(\[]\s*(?:dot|punto|dash)\s*[\)\]]\s*", re.IGNORECASE)

_AT = r"(?:\s*@\s*|\s*[\[\(\{<]\s*(?:at|arroba)\s*[\]\)\}>]\s*|\s+(?:at|arroba)\s+)"
_DOT = r"(?:\.|\s*[\[\(\{<]\s*(?:dot|punto)\s*[\]\)\}>]\s*|\s+(?:dot|punto)\s+)"
_EMAIL = re.compile(
    rf"(?<![\w.+-])([a-z0-9][a-z0-9._%+-]*){_AT}((?:[a-z0-9](?:[a-z0-9-]*[a-z0-9])?{_DOT})+[a-z]{{2,24}})(?![\w-])",
    re.IGNORECASE,
)
_DOT_ONLY = re.compile(_DOT, re.IGNORECASE)


def _looks_like_amount_or_id(text: str, start: int, end: int, raw: str) -> bool:
    if _GROUPED_AMOUNT.match(raw):
        return True
    digits = re.sub(r"\D", "", raw)
    if raw.isdigit() and len(digits) < 8:
        # A bare run of 7 digits reads as a price or an odometer far more often than as a landline.
        return True
    before = _LAST_WORD.search(text[max(0, start - 24) : start])
    if before is not None and before.group(1).lower().rstrip(".,;") in _NOT_A_PHONE_BEFORE:
        return True
    if start > 0 and text[start - 1] in "$₡#":
        return True
    return _NOT_A_PHONE_AFTER.match(text, end) is not None


def find_phones(text: str, default_region: str = "US") -> list[str]:
    """Valid phone numbers in `text` as E.164, first seen first, each once.

    Numbers without a country code are read in `default_region` ("US", "CR", "PA", ...).
    Prices, years, mileages and ids are left alone even when their digits would dial.
    """
    normalised = _SPELLED_SEPARATOR.sub(".", text.translate(_ODD_SEPARATORS))
    # Two numbers with only a space between them would otherwise be read as one invalid number.
    normalised = _ADJACENT_INTERNATIONAL.sub(r"\1, \2", normalised)
    found: list[str] = []
    matcher = phonenumbers.PhoneNumberMatcher(normalised, default_region, leniency=phonenumbers.Leniency.VALID)
    for match in matcher:
        if _looks_like_amount_or_id(normalised, match.start, match.end, match.raw_string):
            continue
        if not phonenumbers.is_valid_number(match.number):
            continue
        e164 = phonenumbers.format_number(match.number, phonenumbers.PhoneNumberFormat.E164)
        if e164 not in found:
            found.append(e164)
    return found


def find_emails(text: str) -> list[str]:
    """Email addresses in `text`, lowercased, first seen first, each once.

    Reads the light obfuscations sellers use: "name at gmail dot com", "name [at] gmail.com".
    """
    found: list[str] = []
    for match in _EMAIL.finditer(text):
        local = match.group(1).lower().strip(".")
        domain = _DOT_ONLY.sub(".", match.group(2).lower())
        if not local:
            continue
        address = f"{local}@{domain}"
        if address not in found:
            found.append(address)
    return found
