"""Reflection prompts for the dashboard, derived from a member's own numbers.

Gentle on purpose: the product never ranks people and never tells them they give too little. A prompt
is a question to sit with, chosen from what the numbers show. At most three, the most pressing first.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from .clients.balance import Member, Summary
from .format import hours, minutes

MAX_PROMPTS = 3


@dataclass(frozen=True)
class Prompt:
    text: str
    link: str | None = None
    link_text: str | None = None


def reflection_prompts(summary: Summary, member: Member, *, waiting_for_me: int, waiting_for_others: int,
                       today: date, counts_exact: bool = True) -> list[Prompt]:
    """`counts_exact` False: the waiting counts are lower bounds (balance stopped counting)."""
    prompts: list[Prompt] = []
    more = "" if counts_exact else " or more"
    given, received = summary.given.minutes, summary.received.minutes
    window = summary.window_days

    if member.is_paused:
        until = f" until {member.paused_until.day} {member.paused_until:%b}" if member.paused_until else ""
        prompts.append(Prompt(f"You are paused{until}. Rest well: nobody is alerted about you while you are away, "
                              "and nothing here expects anything of you.", "/capacity", "Resume when you are ready"))

    if waiting_for_me:
        plural = "exchanges are" if waiting_for_me > 1 or more else "exchange is"
        prompts.append(Prompt(f"{waiting_for_me}{more} {plural} waiting for your acknowledgement. A word of thanks "
                              "closes the loop for the person who recorded it.", "#pending", "See them"))

    used = summary.capacity.used_fraction
    if used is not None and used > 1 and summary.capacity.weekly_hours is not None:
        prompts.append(Prompt(
            f"This week you gave {hours(summary.capacity.given_last_7_days_minutes)}, more than the "
            f"{summary.capacity.weekly_hours:g} h you said you have. Is that a choice you are happy with, "
            "or is there something you could hand over?", "/capacity", "Review your capacity"))

    if given >= 240 and given >= 3 * max(received, 1):
        prompts.append(Prompt(
            f"You gave {minutes(given)} in the last {window} days and received {minutes(received)}. "
            "Is there something you would like to ask for: feedback, a hand, a conversation?"))
    elif received >= 240 and received >= 3 * max(given, 1):
        prompts.append(Prompt(
            f"You received {minutes(received)} of support in the last {window} days. Receiving is part of the "
            "flow too. Is there someone whose work you could offer a word of feedback on?"))

    if given == 0 and received == 0 and not summary.given.pending_count and not summary.received.pending_count:
        prompts.append(Prompt(
            f"Nothing recorded in the last {window} days. Who have you learned from recently? "
            "A small thank-you counts.", "/exchanges/new", "Record an exchange"))

    kinds_used = [k for k, t in summary.by_kind.items() if t.given_minutes + t.received_minutes > 0]
    if len(kinds_used) == 1 and given + received >= 120:
        only = kinds_used[0]
        prompts.append(Prompt(
            f"Everything you recorded lately is {only}. Has there been feedback, care or knowledge shared "
            "with you that went unrecorded?"))

    if waiting_for_others:
        plural = "exchanges you recorded are" if waiting_for_others > 1 or more else "exchange you recorded is"
        prompts.append(Prompt(f"{waiting_for_others}{more} {plural} still waiting for the other person. "
                              "They count as pending until then."))

    if summary.capacity.weekly_hours is None and not member.is_paused:
        prompts.append(Prompt("You have not declared a weekly capacity. Saying how much time you have helps "
                              "your circle notice if you are stretched.", "/capacity", "Declare a capacity"))

    if not prompts and given and received:
        prompts.append(Prompt("Your give and take looks in balance. Who would you like to thank this week?"))
    return prompts[:MAX_PROMPTS]
