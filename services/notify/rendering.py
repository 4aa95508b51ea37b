"""From a signal and the directory facts to the emails to send: pure (templates in, text out).

Every email is multipart (plain text and HTML, rendered from `templates/`), kind and concrete: who,
which circle, the numbers that crossed the line and over which window, a link to the member's page,
a suggestion, and never blame.
"""

from __future__ import annotations

import re
import textwrap
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from functools import cache
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape
from reciprocity.contracts.events import MemberDisconnected, MemberOverextended, SignalCleared, SignalEvent
from reciprocity.contracts.vocabulary import DISCONNECTED, OVEREXTENDED

from .routing import Directory, MemberFacts, Recipient, Via

TEMPLATES = Path(__file__).parent / "templates"
TEXT_WIDTH = 72  # the plain-text part is hard wrapped: one template line is one paragraph or bullet

CLEARED = "cleared"

CAPACITY_WINDOW_DAYS = 7  # balance compares the last 7 days, today included, with the weekly capacity

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

    signal_kind: str  # one of contracts.vocabulary.SIGNAL_KINDS
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
    base: dict[str, Any] = {
        "member_name": member.display_name,
        "member_id": signal.member_id,
        "member_url": member_url(web_base_url, signal.member_id),
        "circles": circles,
        "circles_text": _join(circles) or "no circle",
        "window_start": _day(signal.window_start),
        "window_end": _day(signal.window_end),
        # Windows are inclusive of both ends: balance's 28-day window runs from today - 27 to today.
        "window_days": (signal.window_end - signal.window_start).days + 1,
        "window": span(signal.window_start, signal.window_end),
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
            "reasons": reasons(recipient.via, member.display_name, directory),
        }
        emails.append(Email(
            alert_id=alert_id,
            recipient=recipient.member_id,
            to=recipient.email,
            to_name=one_line(recipient.name),
            subject=subject,
            text=wrap_text(env.get_template(f"{kind}.txt.j2").render(context)),
            html=env.get_template(f"{kind}.html.j2").render(context),
        ))
    return emails


def render_for_member(alert_id: str, signal: SignalEvent, member: MemberFacts, directory: Directory, *,
                      web_base_url: str) -> Email:
    """Her own short, kind email about a signal raised about her: what her leads read, in her words."""
    kind = signal_kind(signal)
    if kind == CLEARED:
        raise ValueError("a member hears of her signals when they are raised, not when they clear")
    circles = [directory.circle_name(c) for c in signal.circles]
    base = web_base_url.rstrip("/")
    context = {
        "kind": kind,
        "member_name": member.display_name,
        "circles_text": _join(circles) or "no circle",
        "window_days": (signal.window_end - signal.window_start).days + 1,
        "window": span(signal.window_start, signal.window_end),
        "facts": _facts(signal),
        "dashboard_url": f"{base}/",
        "settings_url": f"{base}/capacity#emails",
    }
    env = _environment()
    subject = ("A note of care: your circle's leads were asked to check in with you" if kind == OVEREXTENDED
               else "A note of care: it has been a while since your last exchange")
    return Email(alert_id=alert_id, recipient=signal.member_id, to=member.email or "",
                 to_name=one_line(member.display_name), subject=subject,
                 text=wrap_text(env.get_template("self.txt.j2").render(context)),
                 html=env.get_template("self.html.j2").render(context))


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
    env.filters["amount"] = amount
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
        end = signal.window_end
        return {
            "reason": signal.reason,
            "by_ratio": signal.reason in ("ratio", "ratio_and_capacity"),
            "by_capacity": signal.reason in ("capacity", "ratio_and_capacity"),
            "given_minutes": signal.given_minutes,
            "received_minutes": signal.received_minutes,
            "ratio": None if signal.ratio is None else _ratio(signal.ratio),
            "given_last_7_days": signal.given_last_7_days,
            # balance's capacity window: the 7 days up to and including the window's end
            "last_7_days": span(end - timedelta(days=CAPACITY_WINDOW_DAYS - 1), end),
            "weekly_capacity_minutes": signal.weekly_capacity_minutes,
        }
    if isinstance(signal, MemberDisconnected):
        days = signal.days_without_exchange
        # The silent days counted, inclusive: a last exchange on D and an end on D+38 make 38 days, from
        # D+1 (the event's window start). Counted from here, the dates and the count always agree, also
        # for a member who never exchanged (balance counts the days after registration).
        quiet_from = signal.window_end - timedelta(days=max(days, 1) - 1)
        return {
            "days_without_exchange": days,
            "quiet_period": span(quiet_from, signal.window_end),
            "last_exchange_on": _day(signal.last_exchange_on) if signal.last_exchange_on else None,
        }
    return {}


def reasons(vias: Sequence[Via], member_name: str, directory: Directory) -> str:
    """Why a lead is told, as one or two sentences: each kind of reason once, naming all its circles.

    "You lead Commons and Engineering, circles Amara Okafor belongs to." A lead told as the lead of a
    parent circle hears which of the member's circles it stands above, and why."""
    direct: list[str] = []
    above: dict[tuple[str, str], list[str]] = {}  # (because, parent circle) -> the member's circles below
    for via in vias:
        if via.because == "lead":
            direct.append(directory.circle_name(via.circle_id))
        else:
            above.setdefault((via.because, directory.circle_name(via.circle_id)), []).append(
                directory.circle_name(via.about_circle_id))
    clauses = []
    direct = list(dict.fromkeys(direct))
    if len(direct) == 1:
        clauses.append(f"{direct[0]}, a circle {member_name} belongs to")
    elif direct:
        clauses.append(f"{_join(direct)}, circles {member_name} belongs to")
    for (because, parent), below in above.items():
        below = list(dict.fromkeys(below))
        if because == "member_leads_circle":
            led = "which " + member_name + " leads" if len(below) == 1 else f"circles {member_name} leads"
            clauses.append(f"{parent}, the circle above {_join(below)}, {led}")
        else:
            none = "it has" if len(below) == 1 else "they have"
            clauses.append(f"{parent}, the nearest circle above {_join(below)}, as {none} no other lead "
                           f"available to tell")
    if not clauses:
        return ""
    sentences = [f"You lead {clauses[0]}."] + [f"You also lead {c}." for c in clauses[1:]]
    return " ".join(sentences)


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


def amount(minutes: int | None) -> str:
    """An amount of time given or received, said once and kindly: 0 -> "nothing", 125 -> "2 h 5 min"."""
    return "nothing" if minutes == 0 else duration(minutes)


def _ratio(ratio: float) -> str:
    """6.67 -> "6.7", 3.0 -> "3"."""
    return f"{ratio:.1f}".removesuffix(".0")


def _day(day: date) -> str:
    return f"{day.day} {day:%B %Y}"  # "3 April 2025": no zero padding, no locale surprises


def span(start: date, end: date) -> str:
    """Both days, said once where they share it: "16 to 22 November 2026", "26 October to 22 November 2026"."""
    if start == end:
        return _day(end)
    if start.year != end.year:
        return f"{_day(start)} to {_day(end)}"
    if start.month != end.month:
        return f"{start.day} {start:%B} to {_day(end)}"
    return f"{start.day} to {_day(end)}"


def wrap_text(text: str, width: int = TEXT_WIDTH) -> str:
    """Hard wrap the plain-text part: each long line becomes a paragraph of lines of at most `width`
    (a bullet's continuation lines indented under its text). Words are never broken, so links stay whole."""
    out = []
    for line in text.split("\n"):
        if len(line) <= width:
            out.append(line)
            continue
        lead = line[:len(line) - len(line.lstrip())]
        indent = lead + "  " if line.lstrip().startswith("- ") else lead
        glued = _UNBROKEN.sub(lambda m: m.group(0).replace(" ", _GLUE), line)
        wrapped = textwrap.fill(glued, width, subsequent_indent=indent, break_long_words=False,
                                break_on_hyphens=False)
        out.append(wrapped.replace(_GLUE, " "))
    return "\n".join(out)


# Kept on one line when wrapping: a duration ("12 h 5 min") and a day ("22 November 2026").
_UNBROKEN = re.compile(r"\b\d+ h(?: \d+ min)?\b|\b\d+ min\b|\b\d{1,2} [A-Z][a-z]+(?: \d{4})?\b")
_GLUE = "\x00"


def _join(items: Sequence[str]) -> str:
    items = list(dict.fromkeys(items))
    if len(items) <= 1:
        return "".join(items)
    return ", ".join(items[:-1]) + " and " + items[-1]
