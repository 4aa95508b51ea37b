"""The signed-in member's own pages: dashboard, people (relationships), capacity and pause."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any

from flask import Blueprint, Response, flash, redirect, url_for
from htmx_flask import request
from reciprocity.common.service_client import Invalid, OutcomeUnknown, Unavailable
from reciprocity.contracts.commands import ChangeAvailability, today_utc
from reciprocity.contracts.vocabulary import ACTIVE, EXCHANGE_KINDS, PAUSED

from .charts import KIND_COLOURS, balance_chart
from .clients.balance import Dashboard, Relationship
from .exchange_form import contract_errors, new_key, valid_key
from .format import parse_day
from .prompts import reflection_prompts
from .signal_words import SIGNAL_HINTS_SELF
from .ui import WINDOW_LABELS, WINDOWS, clients, me, render_page, window_arg

bp = Blueprint("me", __name__)


def dashboard_numbers(window: str, board: Dashboard | None = None) -> dict[str, Any]:
    """What the live part of the dashboard shows (and re-reads every few seconds)."""
    board = board or clients().balance.dashboard(me().id, window)
    count = board.waiting_count
    # The list is the newest few; the count may have been read from others (a lower bound when balance
    # stopped reading), so the list's own length is a lower bound too.
    for_me = max(count.for_me, len(board.waiting))
    return {
        "summary": board.summary,
        "window": window,
        "pending_for_me": board.waiting,
        "waiting_for_me": WaitingWords(for_me, count.complete),
        "waiting_for_others": WaitingWords(count.for_others, count.complete),
        "recent": board.recent,
    }


@dataclass(frozen=True)
class WaitingWords:
    """A count of waiting exchanges as the dashboard words it: exact, or "48+" when balance stopped
    counting (the member has more recorded exchanges than it reads for a count)."""

    n: int
    exact: bool

    def __str__(self) -> str:
        return str(self.n) if self.exact else f"{self.n}+"

    def __bool__(self) -> bool:
        return self.n > 0


@bp.get("/")
def dashboard() -> Response:
    window = window_arg()
    # One round trip to balance for all of it (it was five: summary, two lists, timeline, signals).
    board = clients().balance.dashboard(me().id, window)
    numbers = dashboard_numbers(window, board)
    if request.htmx:
        # Two regions poll this URL; HX-Target says which one is asking.
        partial = "partials/_dashboard_inbox.html" if request.htmx.target == "inbox" \
            else "partials/_dashboard_numbers.html"
        response = render_page("dashboard.html", partial, **numbers)
        response.vary.add("HX-Target")
        return response
    timeline = board.timeline
    prompts = reflection_prompts(
        numbers["summary"], me(),
        waiting_for_me=numbers["waiting_for_me"].n,
        waiting_for_others=numbers["waiting_for_others"].n,
        counts_exact=board.waiting_count.complete,
        today=today_utc(),
    )
    # Nothing about me without me: every signal in force about her, told to her (SPEC, Alert policy).
    about_me = board.signals
    response = render_page(
        "dashboard.html", "partials/_dashboard_numbers.html",
        chart=balance_chart(timeline.weeks), weeks=timeline.weeks, kinds=EXCHANGE_KINDS, colours=KIND_COLOURS,
        prompts=prompts, windows=WINDOWS, window_labels=WINDOW_LABELS, about_me=about_me,
        signal_hints_self=SIGNAL_HINTS_SELF, **numbers,
    )
    response.vary.add("HX-Target")
    return response


def relationships_by_name(member_id: str, window: str) -> list[Relationship]:
    """The member's relationships in the window, settled and pending flows side by side (balance counts
    both per pair), sorted by name: a list of people, not a ranking."""
    found = clients().balance.relationships(member_id, window)
    return sorted(found, key=lambda r: (r.name.lower(), r.other))


# People per page: balance sums and the page renders only these, so the page costs about the same
# however many people a long history holds (a busy member has some 170 in 90 days).
PEOPLE_PAGE = 25


@bp.get("/people")
def people() -> Response:
    window = window_arg("90d")
    after = request.args.get("after") or None
    try:
        page = clients().balance.relationship_page(me().id, window, limit=PEOPLE_PAGE, cursor=after)
    except Invalid:  # a cursor balance did not hand out (edited, or from before a replay): the first page
        after = None
        page = clients().balance.relationship_page(me().id, window, limit=PEOPLE_PAGE)
    return render_page("people.html", "partials/_people_table.html", relationships=page.relationships,
                       next_cursor=page.next_cursor, after=after, window=window, windows=WINDOWS,
                       window_labels=WINDOW_LABELS, kinds=EXCHANGE_KINDS)


@bp.get("/relationships")
def relationships() -> Response:
    return redirect(url_for("me.people", **request.args))  # type: ignore[return-value]


# -- capacity and pause --------------------------------------------------------------------------------


def _capacity_page(status: int = 200, **context: Any) -> Response:
    member = me()
    summary = clients().balance.summary(member.id, "7d")
    context.setdefault("capacity_key", new_key())
    context.setdefault("pause_key", new_key())
    context.setdefault("weekly_hours", "" if member.weekly_hours is None else f"{member.weekly_hours:g}")
    context.setdefault("paused_until", "")
    context.setdefault("emails_key", new_key())
    try:
        context.setdefault("emails", clients().ledger.email_settings(member.id))
    except Unavailable:
        context.setdefault("emails", None)  # the form says it cannot show them just now
    return render_page("capacity.html", code=status, member=member, summary=summary, today=today_utc(), **context)


@bp.get("/capacity")
def capacity() -> Response:
    return _capacity_page()


@bp.post("/capacity")
def declare_capacity() -> Response:
    typed = (request.form.get("weekly_hours") or "").strip().replace(",", ".")
    key = valid_key(request.form.get("idempotency_key"))
    hours: float | None = None
    if typed:
        try:
            hours = float(typed)
        except ValueError:
            hours = -1
        if not 0 <= hours <= 168:
            return _capacity_page(422, capacity_error="Give a number of hours from 0 to 168, or leave it empty.",
                                  weekly_hours=typed)
    if hours is not None and request.form.get("confirm_over") != "yes":
        # Declaring less than she already gave this week would tell her leads at once that she is over
        # her capacity: say so first, and let her choose (save anyway, or pause instead).
        given_7 = clients().balance.summary(me().id, "7d").capacity.given_last_7_days_minutes or 0
        if given_7 > round(hours * 60):
            return _capacity_page(200, weekly_hours=typed, capacity_key=key, over_capacity={
                "hours": hours, "given_minutes": given_7})
    try:
        clients().ledger.declare_capacity(me().id, weekly_hours=hours, key=key)
    except Invalid as err:
        return _capacity_page(422, capacity_error=_first_message(err), weekly_hours=typed)
    except Unavailable as err:
        return _capacity_page(503, capacity_error=_try_again(err), weekly_hours=typed, capacity_key=key)
    flash("Your weekly capacity is saved." if hours is not None else "Your capacity declaration is withdrawn.",
          "success")
    return redirect(url_for("me.capacity"))  # type: ignore[return-value]


@bp.post("/capacity/emails")
def email_settings() -> Response:
    """Her own alert emails and the daily digest: a checkbox each (unticked boxes are not posted)."""
    key = valid_key(request.form.get("idempotency_key"))
    own, digest = request.form.get("own_alert_emails") == "on", request.form.get("daily_digest") == "on"
    try:
        clients().ledger.set_email_settings(me().id, own_alert_emails=own, daily_digest=digest, key=key)
    except Invalid as err:
        return _capacity_page(422, emails_error=_first_message(err))
    except Unavailable as err:
        return _capacity_page(503, emails_error=_try_again(err), emails_key=key)
    flash("Your email choices are saved.", "success")
    return redirect(url_for("me.capacity") + "#emails")  # type: ignore[return-value]


@bp.post("/capacity/pause")
def pause() -> Response:
    typed = (request.form.get("paused_until") or "").strip()
    key = valid_key(request.form.get("idempotency_key"))
    until: date | None = None
    if typed:
        try:
            until = parse_day(typed, today_utc())
        except ValueError as err:
            return _capacity_page(422, pause_error=f"{err} (the day you expect to be back)", paused_until=typed)
        if until < today_utc():
            return _capacity_page(422, pause_error="That date has passed; choose today or later.", paused_until=typed)
        if refused := contract_errors(ChangeAvailability, {"status": PAUSED, "paused_until": until}):
            return _capacity_page(422, pause_error=next(iter(refused.values())), paused_until=typed)
    try:
        clients().ledger.change_availability(me().id, status=PAUSED, paused_until=until, key=key)
    except Invalid as err:
        return _capacity_page(422, pause_error=_first_message(err), paused_until=typed)
    except Unavailable as err:
        return _capacity_page(503, pause_error=_try_again(err), paused_until=typed, pause_key=key)
    flash("You are paused. Take the time you need; nobody will be alerted about you meanwhile.", "success")
    return redirect(url_for("me.capacity"))  # type: ignore[return-value]


@bp.post("/capacity/resume")
def resume() -> Response:
    key = valid_key(request.form.get("idempotency_key"))
    try:
        clients().ledger.change_availability(me().id, status=ACTIVE, paused_until=None, key=key)
    except Invalid as err:
        return _capacity_page(422, pause_error=_first_message(err))
    except Unavailable as err:
        return _capacity_page(503, pause_error=_try_again(err), pause_key=key)
    flash("Welcome back.", "success")
    return redirect(url_for("me.capacity"))  # type: ignore[return-value]


def _first_message(err: Invalid) -> str:
    return err.errors[0].message if err.errors else "The ledger did not accept that."


def _try_again(err: Unavailable) -> str:
    if isinstance(err, OutcomeUnknown):
        # It may have been saved before the answer was lost; the form keeps its key, so again is safe.
        return "The ledger did not answer in time, so this may already be saved. Press it again: it is saved once."
    return "The ledger could not save this just now. Nothing was changed; please try again in a moment."
