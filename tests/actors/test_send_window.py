"""Send windows: calls and texts only between 08:00 and 21:00 where the lead is."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest

from actors.send_window import lead_zone, next_allowed

MIAMI = ZoneInfo("America/New_York")


@pytest.mark.parametrize(
    ("at", "channel", "expected"),
    [
        (datetime(2026, 11, 24, 13, 0, tzinfo=UTC), "sms", datetime(2026, 11, 24, 13, 0, tzinfo=UTC)),  # 08:00 opens
        (datetime(2026, 11, 24, 12, 59, tzinfo=UTC), "voice", datetime(2026, 11, 24, 13, 0, tzinfo=UTC)),  # 07:59
        (datetime(2026, 11, 25, 1, 59, tzinfo=UTC), "whatsapp", datetime(2026, 11, 25, 1, 59, tzinfo=UTC)),  # 20:59
        (datetime(2026, 11, 25, 2, 0, tzinfo=UTC), "sms", datetime(2026, 11, 25, 13, 0, tzinfo=UTC)),  # 21:00 closed
        (datetime(2026, 11, 25, 4, 30, tzinfo=UTC), "voice", datetime(2026, 11, 25, 13, 0, tzinfo=UTC)),  # 23:30
        (datetime(2026, 11, 25, 4, 30, tzinfo=UTC), "email", datetime(2026, 11, 25, 4, 30, tzinfo=UTC)),  # no window
        # Daylight saving: in July Miami is UTC-4, so 08:00 there is 12:00 UTC.
        (datetime(2026, 7, 1, 11, 0, tzinfo=UTC), "sms", datetime(2026, 7, 1, 12, 0, tzinfo=UTC)),
    ],
)
def test_calls_and_texts_wait_for_eight_to_nine_where_the_lead_is(
    at: datetime, channel: str, expected: datetime
) -> None:
    assert next_allowed(at, channel, MIAMI) == expected


def test_where_a_lead_is() -> None:
    assert lead_zone("miami") == MIAMI
    assert lead_zone("Los Angeles") == ZoneInfo("America/Los_Angeles")
    assert lead_zone(None, "PA") == ZoneInfo("America/Panama")
    assert lead_zone("nowhere", "US", longitude=-104.99) == ZoneInfo("America/Denver")
    assert lead_zone(None, None) == MIAMI  # the default
