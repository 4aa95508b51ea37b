"""Jinja filters: minutes, dates and fractions in words people read easily."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

NONE = "\u2013"  # an en dash stands for "no value"


def minutes(value: int | float | None) -> str:
    """125 -> "2 h 5 min"; 45 -> "45 min"; 0 -> "0 min"."""
    if value is None:
        return NONE
    total = round(value)
    hours, rest = divmod(abs(total), 60)
    sign = "-" if total < 0 else ""
    if hours and rest:
        return f"{sign}{hours} h {rest} min"
    if hours:
        return f"{sign}{hours} h"
    return f"{sign}{rest} min"


def hours(value: int | float | None) -> str:
    """Minutes as hours with at most one decimal: 90 -> "1.5 h"."""
    if value is None:
        return NONE
    h = value / 60
    return f"{h:.0f} h" if abs(h - round(h)) < 0.05 else f"{h:.1f} h"


def day(value: date | datetime | str | None) -> str:
    """A date as "3 Mar 2025", or "3 Mar" this year (no leading zero, unambiguous in every locale)."""
    if value is None:
        return NONE
    if isinstance(value, str):
        try:
            value = date.fromisoformat(value[:10])
        except ValueError:
            return value
    if value.year == date.today().year:
        return f"{value.day} {value:%b}"
    return f"{value.day} {value:%b %Y}"


def when(value: datetime | None) -> str:
    if value is None:
        return NONE
    return f"{value.day} {value:%b %Y, %H:%M} UTC" if value.tzinfo else f"{value.day} {value:%b %Y, %H:%M}"


def percent(value: float | None) -> str:
    return NONE if value is None else f"{value * 100:.0f}%"


def number(value: Any, digits: int = 2) -> str:
    if value is None:
        return NONE
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def kind_label(kind: str) -> str:
    return kind.replace("_", " ").capitalize()


FILTERS = {
    "minutes": minutes,
    "hours": hours,
    "day": day,
    "when": when,
    "percent": percent,
    "number": number,
    "kind_label": kind_label,
}
