"""Jinja filters: minutes, dates and fractions in words people read easily."""

from __future__ import annotations

import functools
import re
from datetime import date, datetime, timedelta
from typing import Any

from reciprocity.contracts import commands

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
            parsed = date.fromisoformat(value[:10])
        except ValueError:
            return value
        value = parsed
    if isinstance(value, datetime):
        value = value.date()
    return _day_words(value, date.today().year)


@functools.lru_cache(maxsize=4096)
def _day_words(value: date, this_year: int) -> str:
    # A history page writes fifty days; strftime for each was a visible share of rendering it.
    if value.year == this_year:
        return f"{value.day} {value:%b}"
    return f"{value.day} {value:%b %Y}"


# Every date a form shows or takes reads like the pages: "2 Dec 2026" (day, English month, year), never a
# browser's locale pattern (a native date field shows 12/02/2026 in one browser and 02.12.2026 in another).
DAY_EXAMPLE = "2 Dec 2026"
DAY_HINT = f"Write the day like {DAY_EXAMPLE}."
_MONTH_NAMES = ("january", "february", "march", "april", "may", "june", "july", "august", "september",
                "october", "november", "december")
_MONTHS = {**{name: i for i, name in enumerate(_MONTH_NAMES, 1)},
           **{name[:3]: i for i, name in enumerate(_MONTH_NAMES, 1)}, "sept": 9}
_ISO = re.compile(r"(\d{4})-(\d{1,2})-(\d{1,2})")
_DAY_MONTH = re.compile(r"(\d{1,2}) ?([a-z]+)\.?(?: ?(\d{4}))?")
_MONTH_DAY = re.compile(r"([a-z]+)\.? (\d{1,2})(?: (\d{4}))?")


def parse_day(typed: str, today: date | None = None) -> date:
    """The day a person typed, in the pages' form or ISO; ValueError (with `DAY_HINT`) if it is neither.

    Accepted: "2 Dec 2026", "2 December 2026", "2 dec", "Dec 2, 2026", "2026-12-02" (what links and old
    bookmarks carry), "today" and "yesterday". A day without a year is in `today`'s year, as the pages
    write this year's days ("28 Oct"). `today` defaults to the UTC date. Only the shape is checked here:
    each form keeps its own bounds (not in the future, at most a year back, ...).
    """
    today = today or commands.today_utc()
    text = " ".join(typed.replace(",", " ").split()).casefold()
    if text == "today":
        return today
    if text == "yesterday":
        return today - timedelta(days=1)
    year: str | None
    if found := _ISO.fullmatch(text):
        year, month, day_of_month = found.group(1), int(found.group(2)), found.group(3)
    elif (found := _DAY_MONTH.fullmatch(text)) and found.group(2) in _MONTHS:
        day_of_month, month, year = found.group(1), _MONTHS[found.group(2)], found.group(3)
    elif (found := _MONTH_DAY.fullmatch(text)) and found.group(1) in _MONTHS:
        month, day_of_month, year = _MONTHS[found.group(1)], found.group(2), found.group(3)
    else:
        raise ValueError(DAY_HINT)
    try:
        return date(int(year) if year else today.year, month, int(day_of_month))
    except ValueError:  # 31 Feb, month 13, year 0
        raise ValueError(DAY_HINT) from None


def day_field(value: date | str | None) -> str:
    """What a date field shows: the pages' form, always with the year ("2 Dec 2026"). A string that is not
    a day (what someone typed and must correct) is shown as typed."""
    if value is None or value == "":
        return ""
    if isinstance(value, str):
        try:
            parsed = parse_day(value)
        except ValueError:
            return value
        value = parsed
    return f"{value.day} {value:%b %Y}"


def recent_days(latest: date | None = None, count: int = 14) -> list[tuple[str, str]]:
    """Quick choices for "when did it happen": (field value, label) for the `count` days up to `latest`,
    newest first, labelled "today", "yesterday" or the weekday (a datalist: works without JavaScript)."""
    today = commands.today_utc()
    latest = latest or commands.latest_today()
    named = {today: "today", today - timedelta(days=1): "yesterday"}
    days = [latest - timedelta(days=n) for n in range(count)]
    return [(day_field(d), named.get(d, f"{d:%A}")) for d in days]


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
    "day_field": day_field,
    "when": when,
    "percent": percent,
    "number": number,
    "kind_label": kind_label,
}
