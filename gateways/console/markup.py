"""HTML pieces: text is escaped unless it is `Safe` (HTML built here from escaped parts)."""

from __future__ import annotations

import html
from collections.abc import Iterable
from datetime import UTC, datetime


class Safe(str):
    """A string that is HTML already: `esc` leaves it alone, everything else is escaped."""

    __slots__ = ()


def esc(value: object) -> Safe:
    """`value` as HTML text: escaped (quotes too, so it is safe in attributes); None is empty."""
    if isinstance(value, Safe):
        return value
    if value is None:
        return Safe("")
    return Safe(html.escape(str(value), quote=True))


def fmt(template: str, /, **values: object) -> Safe:
    """`template` (trusted, `{name}` placeholders) with every value escaped (Safe values as they are)."""
    return Safe(template.format_map({name: esc(value) for name, value in values.items()}))


def join(parts: Iterable[object], sep: str = "") -> Safe:
    return Safe(sep.join(esc(part) for part in parts))


def when(value: datetime | None, empty: str = "—") -> str:
    """A time as the console shows it: UTC, to the second."""
    if value is None:
        return empty
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def hidden(name: str, value: object) -> Safe:
    return fmt('<input type="hidden" name="{name}" value="{value}">', name=name, value=value)


def checked(flag: bool) -> Safe:
    return Safe(" checked" if flag else "")


def selected(flag: bool) -> Safe:
    return Safe(" selected" if flag else "")
