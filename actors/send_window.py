"""Send windows: no call or text before 08:00 or after 21:00 where the lead is."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from typing import Final
from zoneinfo import ZoneInfo

OPENS: Final = time(8, 0)
CLOSES: Final = time(21, 0)
# Channels that reach a person's phone right away; email waits in an inbox and has no window.
WINDOWED: Final = frozenset({"voice", "sms", "whatsapp"})

# Craigslist sites (the subdomain) and Encuentra24 countries → IANA zone.
_CITY_ZONES: Final = {
    **dict.fromkeys(
        ("miami", "orlando", "tampa", "jacksonville", "fortlauderdale", "atlanta", "newyork", "boston", "philadelphia",
         "washingtondc", "charlotte", "raleigh", "detroit", "cleveland", "columbus", "pittsburgh", "baltimore",
         "newjersey", "longisland", "indianapolis", "cincinnati", "louisville", "richmond", "norfolk", "buffalo"),
        "America/New_York",
    ),
    **dict.fromkeys(
        ("chicago", "houston", "dallas", "sanantonio", "austin", "neworleans", "nashville", "memphis", "minneapolis",
         "stlouis", "kansascity", "milwaukee", "oklahomacity", "tulsa", "omaha", "madison", "desmoines", "elpaso"),
        "America/Chicago",
    ),
    **dict.fromkeys(("denver", "saltlakecity", "albuquerque", "boise", "elpaso_mt"), "America/Denver"),
    **dict.fromkeys(("phoenix", "tucson"), "America/Phoenix"),
    **dict.fromkeys(
        ("losangeles", "sfbay", "sandiego", "seattle", "portland", "sacramento", "lasvegas", "orangecounty",
         "inlandempire", "fresno", "reno"),
        "America/Los_Angeles",
    ),
    "anchorage": "America/Anchorage",
    "honolulu": "Pacific/Honolulu",
    "panama": "America/Panama",
    "costarica": "America/Costa_Rica",
    "guatemala": "America/Guatemala",
    "elsalvador": "America/El_Salvador",
    "honduras": "America/Tegucigalpa",
    "nicaragua": "America/Managua",
}  # fmt: skip
_COUNTRY_ZONES: Final = {
    "PA": "America/Panama",
    "CR": "America/Costa_Rica",
    "GT": "America/Guatemala",
    "SV": "America/El_Salvador",
    "HN": "America/Tegucigalpa",
    "NI": "America/Managua",
}
DEFAULT_ZONE: Final = "America/New_York"
# West of each longitude, that zone (rough: for a lead with coordinates but an unknown city).
_US_BANDS: Final = (
    (-157.0, "Pacific/Honolulu"),
    (-141.0, "America/Anchorage"),
    (-114.5, "America/Los_Angeles"),
    (-102.0, "America/Denver"),
    (-87.5, "America/Chicago"),
)


def lead_zone(city: str | None, country: str | None = "US", longitude: float | None = None) -> ZoneInfo:
    """Where the lead is: their city's zone, else their country's, else a US zone by longitude."""
    if city and (name := _CITY_ZONES.get(city.strip().lower().replace(" ", ""))):
        return ZoneInfo(name)
    if country and (name := _COUNTRY_ZONES.get(country.upper())):
        return ZoneInfo(name)
    if longitude is not None and (country or "US").upper() == "US":
        for bound, name in _US_BANDS:
            if longitude < bound:
                return ZoneInfo(name)
    return ZoneInfo(DEFAULT_ZONE)


def next_allowed(at: datetime, channel: str, zone: ZoneInfo) -> datetime:
    """`at`, or the next 08:00 where the lead is when `at` falls outside 08:00 to 21:00 there (UTC out)."""
    if channel not in WINDOWED:
        return at
    local = at.astimezone(zone)
    if OPENS <= local.time() < CLOSES:
        return at
    day = local.date() + timedelta(days=1) if local.time() >= CLOSES else local.date()
    return datetime.combine(day, OPENS, tzinfo=zone).astimezone(UTC)
