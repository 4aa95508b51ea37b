"""Bounds on every value (SPEC): what the ledger accepts, every projection can apply.

Two sides of one rule:

- On write (commands, the ledger and the web forms): a value out of bounds is refused with a sentence
  that names the field. Free text (notes, thanks, reasons) may hold line breaks and nothing else of
  the control characters; names and other one-line texts no line break at all; no text a lone
  surrogate (half of a UTF-16 pair: not a character, not encodable as UTF-8, refused by PostgreSQL).
- On read (events already in the log, written by an older producer before a bound existed): a text is
  cleaned (what it may not hold becomes U+FFFD, or a space for a line break in a name) and a pause end
  far beyond any real date is read as "until resumed", so the event still counts; a date of an
  exchange outside the bounds cannot be cleaned without changing the sums, so it fails validation and
  the consumer parks it in `<topic>.dlq`.

The absolute bounds on read are far wider than the ledger's (365 days back or ahead), because an event
is read for years after it was written: they only keep date arithmetic of the projections (a day
added, a window of weeks) away from the ends of the calendar.
"""

from __future__ import annotations

import re
from datetime import date
from typing import Annotated

from pydantic import AfterValidator, BeforeValidator

# Any date an event carries lies in here; the ledger's own bounds are far narrower.
EARLIEST_EVENT_DAY = date(1900, 1, 1)
LATEST_EVENT_DAY = date(2999, 12, 31)
# How far ahead a member may pause (SPEC): at most 365 days.
MAX_PAUSE_DAYS = 365
# How deep a command's JSON body may nest: the deepest body (a circle with its policy) has 2 levels.
MAX_BODY_DEPTH = 10

REPLACEMENT = "\ufffd"
# Control characters (C0, DEL, C1) but the line feed, and lone surrogates: never in free text.
_NOT_IN_FREE_TEXT = re.compile("[\x00-\x09\x0b-\x1f\x7f-\x9f\ud800-\udfff]")
# One-line text (names): no control character at all, no Unicode line or paragraph separator either.
_NOT_IN_ONE_LINE = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029\ud800-\udfff]")
# The same rules as JSON Schema patterns, so the ledger's OpenAPI document says what it accepts: free text
# may hold line breaks (\r\n and \r become \n), one-line text none; a required one needs a character that
# is not white space (surrounding white space is stripped, and nothing must be left empty).
_FREE_TEXT_CHAR = r"[^\u0000-\u0009\u000b\u000c\u000e-\u001f\u007f-\u009f]"
FREE_TEXT_PATTERN = rf"^{_FREE_TEXT_CHAR}*$"
_ONE_LINE_CHAR = r"[^\u0000-\u001f\u007f-\u009f\u2028\u2029]"
REQUIRED_FREE_TEXT_PATTERN = rf"^{_FREE_TEXT_CHAR}*[^\s\u0000-\u001f\u007f-\u009f]{_FREE_TEXT_CHAR}*$"
REQUIRED_ONE_LINE_PATTERN = rf"^{_ONE_LINE_CHAR}*[^\s\u0000-\u001f\u007f-\u009f\u2028\u2029]{_ONE_LINE_CHAR}*$"
_LINE_BREAKS = re.compile("\r\n|[\r\n\u2028\u2029\x0b\x0c\x85\t]")
_SURROGATE = re.compile("[\ud800-\udfff]")


def describe(char: str) -> str:
    return f"U+{ord(char):04X}"


def surrogate_in(text: str) -> str | None:
    """The first lone surrogate in `text`, or None."""
    found = _SURROGATE.search(text)
    return found.group() if found else None


# --- on write: refuse, with a sentence naming the field ------------------------------------------


def refuse_in_free_text(label: str, text: str) -> str:
    """`text` with Windows and old Mac line ends made \\n (a browser's textarea sends \\r\\n); raise
    ValueError if it still holds a control character or a lone surrogate."""
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    found = _NOT_IN_FREE_TEXT.search(text)
    if found:
        raise ValueError(_refusal(label, found.group(), "control characters other than line breaks"))
    return text


def refuse_in_one_line(label: str, text: str) -> str:
    found = _NOT_IN_ONE_LINE.search(text)
    if found:
        raise ValueError(_refusal(label, found.group(), "line breaks, tabs or other control characters"))
    return text


def lone_surrogate(label: str, char: str) -> str:
    return (f"{label} holds a lone surrogate ({describe(char)}), which is not a character; "
            "remove it or paste the text again")


def _refusal(label: str, char: str, what: str) -> str:
    if _SURROGATE.fullmatch(char):
        return lone_surrogate(label, char)
    return f"{label} cannot contain {what} (found {describe(char)})"


# --- on read: clean what older producers wrote ---------------------------------------------------


def clean_free_text(value: object) -> object:
    if isinstance(value, str) and _NOT_IN_FREE_TEXT.search(value):
        value = _NOT_IN_FREE_TEXT.sub(REPLACEMENT, value.replace("\r\n", "\n").replace("\r", "\n"))
    return value


def clean_one_line(value: object) -> object:
    if isinstance(value, str) and _NOT_IN_ONE_LINE.search(value):
        value = _NOT_IN_ONE_LINE.sub(REPLACEMENT, _LINE_BREAKS.sub(" ", value))
    return value


def within_event_days(day: date) -> date:
    if not EARLIEST_EVENT_DAY <= day <= LATEST_EVENT_DAY:
        raise ValueError(f"a date must lie between {EARLIEST_EVENT_DAY} and {LATEST_EVENT_DAY}")
    return day


def pause_end_on_read(day: date | None) -> date | None:
    """A pause that ends beyond any real date (the ledger once took 9999-12-31) is a pause until the
    member resumes: what she meant, and a date every projection can add a day to."""
    if day is not None and day > LATEST_EVENT_DAY:
        return None
    return day


# Field types of events: cleaned (texts) or bounded (dates) whenever an event is read.
FreeText = Annotated[str, BeforeValidator(clean_free_text)]
OneLine = Annotated[str, BeforeValidator(clean_one_line)]
EventDay = Annotated[date, AfterValidator(within_event_days)]
PauseEnd = Annotated[date | None, AfterValidator(pause_end_on_read)]
