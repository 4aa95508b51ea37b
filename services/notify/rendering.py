"""From a signal and the directory facts to the emails to send: pure (templates in, text out).

Every email is multipart (plain text and HTML, rendered from `templates/`), kind and concrete: who,
which circle, the numbers that crossed the line and over which window, a link to the member's page,
a suggestion, and never blame.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from functools import cache
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape
from reciprocity.contracts.events import MemberDisconnected, MemberOverextended, SignalCleared, SignalEvent

from .routing import Directory, MemberFacts, Recipient, Via

TEMPLATES = Path(__file__).parent / "templates"

OVEREXTENDED = "overextended"
DISCONNECTED = "disconnected"
CLEARED = "cleared"

SUGGESTIONS = {
    OVEREXTENDED: "Ask how they are; rebalance mentoring pairs, share out some of what they carry, "
                  "and make sure what they give is acknowledged.",
    DISCONNECTED: "Ask how they are, with an invitation rather than a question about output: "
                  "is there something they would like to learn, share or receive?",
}


@dataclass(frozen=True)
class Email:
    alert_id: str
    recipient: str  # the lead's member id
    to: str  # the lead's address
    to_name: str
    subject: str
    text: str
    html: str


@dataclass(frozen=True)
class Raised:
    """For an all clear: the signal it clears, as the lead was told about it."""

    signal_kind: str  # "overextended" | "disconnected"
    raised_on: date


def signal_kind(signal: SignalEvent) -> str:
    """The kind the rate limit counts by: overextended, disconnected, or cleared."""
    if isinstance(signal, MemberOverextended):
        return OVEREXTENDED
    if isinstance(signal, MemberDisconnected):
        return DISCONNECTED
    if isinstance(signal, SignalCleared):
        return CLEARED
    raise TypeError(f"not a signal notify knows: {type(signal).__name__}")


def member_url(web_base_url: str, member_id: str) -> str:
    return f"{web_base_url.rstrip('/')}/members/{member_id}"


def render(
    alert_id: str,
    signal: SignalEvent,
    member: MemberFacts,
    recipients: Sequence[Recipient],
    directory: Directory,
    *,
    web_base_url: str,
    raised: Raised | None = None,
) -> list[Email]:
    """One email per recipient. `raised` is required for a SignalCleared."""
    kind = signal_kind(signal)
    if kind == CLEARED and raised is None:
        raise ValueError("an all clear needs the signal it clears")
    circles = [directory.circle_name(c) for c in signal.circles]
    base = {
        "member_name": member.display_name,
        "member_id": signal.member_id,
        "member_url": member_url(web_base_url, signal.member_id),
        "circles": circles,
        "circles_text": _join(circles) or "no circle",
        "window_start": _day(signal.window_start),
        "window_end": _day(signal.window_end),
        "window_days": (signal.window_end - signal.window_start).days,
        "suggestion": SUGGESTIONS.get(kind, ""),
        "facts": _facts(signal),
    }
    if raised is not None:
        base["cleared_kind"] = raised.signal_kind
        base["raised_on"] = _day(raised.raised_on)
    # Names come from events already in the log, which may hold line breaks: a header cannot.
    subject = one_line(_subject(kind, signal, member.display_name, base["circles_text"], raised))
    env = _environment()
    emails = []
    for recipient in recipients:
        context: dict[str, Any] = {
            **base,
            "lead_name": recipient.name,
            "reasons": [_why(v, member.display_name, directory) for v in recipient.via],
        }
        emails.append(Email(
            alert_id=alert_id,
            recipient=recipient.member_id,
            to=recipient.email,
            to_name=one_line(recipient.name),
            subject=subject,
            text=env.get_template(f"{kind}.txt.j2").render(context),
            html=env.get_template(f"{kind}.html.j2").render(context),
        ))
    return emails


# --- pieces -------------------------------------------------------------------------------------


@cache
def _environment() -> Environment:
    env = Environment(
        loader=FileSystemLoader(TEMPLATES),
        autoescape=select_autoescape(enabled_extensions=("html.j2",), default_for_string=False),
        undefined=StrictUndefined,  # a missing number is a bug, not an empty string in an email
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.filters["duration"] = duration
    return env


def _subject(kind: str, signal: SignalEvent, name: str, circles: str, raised: Raised | None) -> str:
    if isinstance(signal, MemberOverextended):
        return f"Heads-up: {name} may be carrying a lot ({circles})"
    if isinstance(signal, MemberDisconnected):
        return f"Heads-up: {name} has had no exchanges for {signal.days_without_exchange} days ({circles})"
    assert raised is not None
    if raised.signal_kind == OVEREXTENDED:
        return f"All clear: {name} is back in balance ({circles})"
    return f"All clear: {name} is exchanging again ({circles})"


def _facts(signal: SignalEvent) -> dict[str, Any]:
    """The numbers that crossed the line, ready for the templates (None where there is none)."""
    if isinstance(signal, MemberOverextended):
        capacity = signal.weekly_capacity_minutes
        return {
            "reason": signal.reason,
            "by_ratio": signal.reason in ("ratio", "ratio_and_capacity"),
            "by_capacity": signal.reason in ("capacity", "ratio_and_capacity"),
            "given_minutes": signal.given_minutes,
            "received_minutes": signal.received_minutes,
            "ratio": None if signal.ratio is None else f"{signal.ratio:.1f}",
            "given_last_7_days": signal.given_last_7_days,
            "weekly_capacity_minutes": capacity,
        }
    if isinstance(signal, MemberDisconnected):
        return {
            "days_without_exchange": signal.days_without_exchange,
            "last_exchange_on": _day(signal.last_exchange_on) if signal.last_exchange_on else None,
        }
    return {}


def _why(via: Via, member_name: str, directory: Directory) -> str:
    circle = directory.circle_name(via.circle_id)
    about = directory.circle_name(via.about_circle_id)
    if via.because == "lead":
        return f"you are a lead of {circle}, one of {member_name}'s circles"
    if via.because == "member_leads_circle":
        return f"you are a lead of {circle}, the circle above {about}, which {member_name} leads"
    return f"you are a lead of {circle}, the nearest circle above {about} with a lead to tell"


def one_line(text: str) -> str:
    """`text` fit for an email header: each run of whitespace and control characters (line breaks, tabs,
    NUL, ESC...) becomes one space. Python refuses a header with a line break in it, and a name with one
    would otherwise fail every alert about that member or circle."""
    spaced = "".join(" " if unicodedata.category(char) == "Cc" else char for char in text)
    return " ".join(spaced.split())  # split() also takes the Unicode line and paragraph separators


def duration(minutes: int | None) -> str:
    """420 -> "7 h", 95 -> "1 h 35 min", 40 -> "40 min"."""
    if minutes is None:
        return "not declared"
    hours, rest = divmod(int(minutes), 60)
    if not hours:
        return f"{rest} min"
    return f"{hours} h" if not rest else f"{hours} h {rest} min"


def _day(day: date) -> str:
    return f"{day.day} {day:%B %Y}"  # "3 April 2025": no zero padding, no locale surprises


def _join(items: Sequence[str]) -> str:
    items = list(dict.fromkeys(items))
    if len(items) <= 1:
        return "".join(items)
    return ", ".join(items[:-1]) + " and " + items[-1]
