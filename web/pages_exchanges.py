"""Recording an exchange, its detail page and its transitions, and the member autocomplete.

Every command carries the signed-in member as recorded_by/by, and the Idempotency-Key that was put
in the form when it was rendered: submitting the same form twice appends once. After a 422 the form
comes back with a fresh key (nothing was appended, and the corrected body is a new command); after a
503 it keeps its key, so "try again" is a safe retry of the same command. After a timeout it keeps
its key too, because the ledger may have appended it: the same details again are answered with the
first answer, and changed details are refused as a reused key, which then means "already recorded".
"""

from __future__ import annotations

from datetime import date
from typing import Any

from flask import Blueprint, Response, flash, redirect, render_template, url_for
from htmx_flask import make_response, request
from reciprocity.common.service_client import Conflict, Invalid, NotFound, OutcomeUnknown, Unavailable
from reciprocity.contracts.commands import Acknowledge, CorrectExchange, Dispute, latest_today, today_utc
from reciprocity.contracts.events import NOTE_MAX
from reciprocity.contracts.ids import SLUG_RE, exchange_id_for
from reciprocity.contracts.vocabulary import ACKNOWLEDGED, DISPUTED, EXCHANGE_KINDS, RECORDED, WITHDRAWN

from . import access
from .clients.balance import Exchange, Member
from .exchange_form import (
    FORM_WIDE,
    ExchangeForm,
    check,
    contract_errors,
    form_field,
    is_key_field,
    ledger_body,
    new_key,
    other_id,
    valid_key,
)
from .format import day_field, parse_day
from .ui import clients, directory, forbid, me, render_page

HISTORY_PAGE = 50  # exchanges per page of the history

bp = Blueprint("exchanges", __name__)

STATUS_WORDS = {
    RECORDED: "waiting for acknowledgement",
    ACKNOWLEDGED: "acknowledged",
    DISPUTED: "disputed",
    WITHDRAWN: "withdrawn",
}
# Who recorded it, as the history can narrow to (the dashboard links here for everything waiting).
RECORDED_BY_WORDS = {"other": "recorded by the other person", "me": "recorded by you"}
EXPECTABLE = set(STATUS_WORDS)
# The fields each action's form shows an error beside; the ledger's errors on any other field (`by`,
# the Idempotency-Key, ...) are shown above the forms, or the person would get a 422 that says nothing.
CARD_FIELDS = {"acknowledge": {"thanks"}, "dispute": {"reason"}, "withdraw": set()}
# How often a detail page looks again (once a second) for a change the read side has not shown yet.
MAX_LOOKS = 60


def _form_page(form: ExchangeForm, status: int = 200, **extra: object) -> Response:
    # The quick choices start at the ledger's own bound (latest_today), so members east of UTC can pick their today.
    return render_page("exchange_new.html", "partials/_exchange_form.html", code=status, form=form,
                       kinds=EXCHANGE_KINDS, latest=latest_today(), note_max=NOTE_MAX, suggested=_circle_mates(),
                       **extra)


def _circle_mates() -> list[Member]:
    """The people in her circles, by name: suggestions in the page itself, so they work without JavaScript
    (htmx replaces them with search results as she types)."""
    mine = me()
    try:
        found = {m.id: m for c in mine.circles for m in directory().circle_members(c) if m.id != mine.id}
    except Unavailable:
        return []
    return sorted(found.values(), key=lambda m: (m.display_name.lower(), m.id))[:200]


@bp.get("/exchanges/new")
def new_exchange() -> Response:
    form = ExchangeForm.blank(today_utc())
    if request.args.get("with"):
        form.other = request.args["with"]
    if request.args.get("direction") in ("gave", "received"):
        form.direction = request.args["direction"]
    return _form_page(form)


@bp.post("/exchanges/new")
def record_exchange() -> Response:
    form = ExchangeForm.from_form(request.form)
    member = me()
    who = _resolve_other(form)
    form.errors = check(form, member.id, today_utc(), latest_today())
    if who:
        form.errors["other"] = who
    if form.errors:
        form.idempotency_key = new_key()
        return _form_page(form, 422)
    try:
        appended = clients().ledger.record_exchange(ledger_body(form, member.id), key=form.idempotency_key)
    except Invalid as err:
        if any(is_key_field(e.field) for e in err.errors):
            return _recorded_earlier(form)
        for e in err.errors:
            form.errors.setdefault(form_field(e.field), e.message)
        form.idempotency_key = new_key()
        return _form_page(form, 422)
    except (NotFound, Conflict) as err:
        form.errors[FORM_WIDE] = err.message
        form.idempotency_key = new_key()
        return _form_page(form, 422)
    except OutcomeUnknown:
        # The ledger may have appended it before the answer was lost: never say it was not recorded. The
        # form keeps its key, so pressing Record again is answered with the first answer, not a duplicate.
        form.errors[FORM_WIDE] = ("The ledger did not answer in time, so this may or may not have been recorded. "
                                  "Press Record again with the same details: it will not be recorded twice.")
        return _form_page(form, 504)
    except Unavailable:
        form.errors[FORM_WIDE] = ("The ledger could not save this just now. Nothing was recorded; "
                                  "please press Record again in a moment.")
        return _form_page(form, 503)
    flash("Recorded. The other person will be asked to acknowledge it.", "success")
    target = url_for("exchanges.detail", exchange_id=appended.id, expect=RECORDED) if appended.id \
        else url_for("me.dashboard")
    if request.htmx:
        return make_response("", 204, redirect=target)
    return redirect(target, 303)  # type: ignore[return-value]


def _recorded_earlier(form: ExchangeForm) -> Response:
    """The ledger says the form's key was used for other details: an earlier attempt (one that timed
    out, say) was recorded, and the form has changed since. Say so and link to it; a fresh key makes
    the form, as it is now, a new exchange should the person really mean another one."""
    earlier = exchange_id_for(form.idempotency_key)
    form.errors[FORM_WIDE] = ("This form was already recorded earlier, with the details you first sent; "
                              "nothing more was recorded now.")
    form.idempotency_key = new_key()
    return _form_page(form, 409, recorded_earlier=earlier)


@bp.post("/exchanges/validate")
def validate_field() -> Response:
    """Blur-time check of one field, answered as that field's error text (empty when fine)."""
    name = request.args.get("field", "")
    form = ExchangeForm.from_form(request.form)
    who = _resolve_other(form) if name == "other" else None
    errors = check(form, me().id, today_utc(), latest_today())
    if who:
        errors["other"] = who
    return make_response(render_template("partials/_field_error.html", message=errors.get(name, "")))


def _resolve_other(form: ExchangeForm) -> str | None:
    """Who "With whom?" names: a member id, a "Name (id)" suggestion, or a member's full name typed out.

    A name that exactly one member has (case and spacing aside) becomes "Name (id)", which the rest of
    the form reads as that id. Answers the field's error, or None (an empty field is `check`'s business).
    """
    typed = " ".join(form.other.split())
    if not typed:
        return None
    candidate = other_id(typed)
    balance = clients().balance
    if SLUG_RE.match(candidate):
        try:
            directory().member(candidate)  # the ledger checks the id again, against its own state
            return None
        except NotFound:
            if typed.endswith(")"):  # a suggestion's "Name (id)" whose id is unknown
                return f"There is no member with the id “{candidate}”. Pick one from the list."
        except Unavailable:
            return None  # the ledger checks it anyway; a slow directory must not block recording
    try:
        found = balance.members(q=typed)
    except Unavailable:
        return "We could not look that name up just now. Pick someone from the suggestions, or try again in a moment."
    same = [m for m in found if " ".join(m.display_name.split()).casefold() == typed.casefold()]
    if len(same) == 1:
        form.other = f"{same[0].display_name} ({same[0].id})"
        return None
    if same:
        ids = ", ".join(m.id for m in same)
        return f"Several members are called “{typed}” ({ids}); pick one from the list."
    if SLUG_RE.match(candidate):
        return f"There is no member with the id “{candidate}”. Pick one from the list."
    return f"There is no member called “{typed}”. Check the spelling, or pick someone from the list."


@bp.get("/members/search")
def member_search() -> Response:
    q = (request.args.get("other") or request.args.get("q") or request.args.get("with") or "").strip()
    found = [m for m in clients().balance.members(q=other_id(q) if "(" in q else q) if m.id != me().id] if q else []
    return make_response(render_template("partials/_member_options.html", members=found[:20]))


# -- detail and transitions ----------------------------------------------------------------------------


def _visible_exchange(exchange_id: str) -> Exchange:
    exchange = clients().balance.exchange(exchange_id)
    if not access.can_view_exchange(me(), exchange):
        forbid("This exchange is between two other people, so only they can see it.")
    return exchange


@bp.get("/exchanges/<exchange_id>")
def detail(exchange_id: str) -> Response:
    expect = request.args.get("expect", "")
    expect = expect if expect in EXPECTABLE else ""
    tries = request.args.get("n", "0")
    tries_n = int(tries) + 1 if tries.isdigit() else 1
    if tries_n > MAX_LOOKS:
        expect = ""  # stop looking by itself; the page says so and a reload starts over
    try:
        exchange = _visible_exchange(exchange_id)
    except NotFound:
        if not expect and tries_n <= MAX_LOOKS:
            raise
        # Balance does not show it. Only an exchange the ledger has is "just recorded, catching up": any
        # other id is a 404, whatever the link says (NotFound from the ledger is answered as such).
        confirmed = _ledger_has(exchange_id)
        # Just recorded: the read side has not caught up yet. Say so, and look again shortly.
        return render_page("exchange.html", "partials/_exchange_card.html", exchange=None,
                           exchange_id=exchange_id, expect=expect, tries=tries_n, slow=tries_n > MAX_LOOKS,
                           unconfirmed=not confirmed)
    return render_page("exchange.html", "partials/_exchange_card.html",
                       **_card_context(exchange, expect, tries=tries_n, slow=tries_n > MAX_LOOKS))


def _ledger_has(exchange_id: str) -> bool:
    """True when the ledger has the exchange and the viewer is one of its parties; False when the ledger
    cannot be asked just now. NotFound (the ledger has no such exchange) and 403 are raised."""
    try:
        found = clients().ledger.exchange(exchange_id)
    except NotFound:
        raise
    except Unavailable:
        return False
    if not found.involves(me().id):
        forbid("This exchange is between two other people, so only they can see it.")
    return True


def _card_context(exchange: Exchange, expect: str = "", **extra: object) -> dict[str, Any]:
    actions = access.exchange_actions(me().id, exchange)
    # Waiting for a transition to show: only while balance still says `recorded`. Anything else means
    # it was applied (or someone else acted first); either way there is nothing more to wait for.
    catching_up = bool(expect) and expect != RECORDED and exchange.status == RECORDED
    return {
        "exchange": exchange,
        "exchange_id": exchange.exchange_id,
        "expect": expect if catching_up else "",
        "actions": set() if catching_up else actions,
        "status_words": STATUS_WORDS,
        "me_id": me().id,
        "ack_key": new_key(),
        "dispute_key": new_key(),
        "withdraw_key": new_key(),
        "share_key": new_key(),
        "correct_key": new_key(),
        "kinds": EXCHANGE_KINDS,
        "note_max": NOTE_MAX,
        **extra,
    }


def _transition(exchange_id: str, action: str, expect: str) -> Response:
    exchange = _visible_exchange(exchange_id)
    if action not in access.exchange_actions(me().id, exchange):
        if exchange.status != RECORDED:  # the page went stale: say what happened, keep what she typed
            return render_page("exchange.html", "partials/_exchange_card.html", code=409,
                               **_card_context(exchange, errors={FORM_WIDE: _moved_on(exchange)}))
        forbid("That step is not open to you for this exchange.")
    key = valid_key(request.form.get("idempotency_key"))
    ledger = clients().ledger
    errors: dict[str, str] = {}
    try:
        if action == "acknowledge":
            thanks = (request.form.get("thanks") or "").strip()
            if len(thanks) > NOTE_MAX:
                errors["thanks"] = f"Keep the thanks to {NOTE_MAX} characters."
            elif refused := contract_errors(Acknowledge, {"by": me().id, "thanks": thanks}).get("thanks"):
                errors["thanks"] = refused
            else:
                ledger.acknowledge(exchange_id, by=me().id, thanks=thanks, shared=request.form.get("shared") == "on",
                                   key=key)
        elif action == "dispute":
            reason = (request.form.get("reason") or "").strip()
            if not reason:
                errors["reason"] = "Say briefly what does not match, so the two of you can sort it out."
            elif len(reason) > NOTE_MAX:
                errors["reason"] = f"Keep the reason to {NOTE_MAX} characters."
            elif refused := contract_errors(Dispute, {"by": me().id, "reason": reason}).get("reason"):
                errors["reason"] = refused
            else:
                ledger.dispute(exchange_id, by=me().id, reason=reason, key=key)
        else:
            ledger.withdraw(exchange_id, by=me().id, key=key)
    except Invalid as err:
        errors = _card_errors(action, err)
    except Conflict:
        flash("This exchange has already moved on (someone acted on it a moment ago).", "info")
        return redirect(url_for("exchanges.detail", exchange_id=exchange_id), 303)  # type: ignore[return-value]
    except OutcomeUnknown:
        errors[FORM_WIDE] = ("The ledger did not answer in time, so this may already be saved. "
                             "Press the button again: it will not be done twice.")
        return _retry_card(exchange, action, key, errors, 504)
    except Unavailable:
        errors[FORM_WIDE] = "The ledger could not save this just now. Nothing changed; please try again in a moment."
        return _retry_card(exchange, action, key, errors, 503)
    if errors:
        return render_page("exchange.html", "partials/_exchange_card.html", code=422,
                           **_card_context(exchange, errors=errors, form=request.form))
    flash({"acknowledge": "Acknowledged. Thank you for closing the loop.",
           "dispute": "Your dispute is noted. It counts nowhere until you two sort it out.",
           "withdraw": "Withdrawn. It no longer counts anywhere."}[action], "success")
    target = url_for("exchanges.detail", exchange_id=exchange_id, expect=expect)
    if request.htmx:
        return make_response("", 204, redirect=target)
    return redirect(target, 303)  # type: ignore[return-value]


def _moved_on(exchange: Exchange) -> str:
    """What happened meanwhile, in words, with what she typed kept for her to copy."""
    mine = me().id
    actor = exchange.recorded_by if exchange.status == WITHDRAWN else exchange.counterpart
    who = "You" if actor == mine else exchange.name_of(actor)
    verb = {WITHDRAWN: "withdrew", ACKNOWLEDGED: "acknowledged", DISPUTED: "disputed"}.get(
        exchange.status, exchange.status)
    said = " ".join((request.form.get("thanks") or request.form.get("reason") or "").split())
    kept = f" What you wrote was not sent: “{said}”" if said else ""
    return f"{who} {verb} this while the page was open, so nothing more can be done with it.{kept}"


def _card_errors(action: str, err: Invalid) -> dict[str, str]:
    """The ledger's field errors: beside the field when the action's form shows it, else above the forms."""
    errors: dict[str, str] = {}
    wide: list[str] = []
    for e in err.errors:
        name = e.field.rsplit(".", 1)[-1]
        if name in CARD_FIELDS[action]:
            errors.setdefault(name, e.message)
        elif is_key_field(e.field):
            # Our keys are fresh per rendered form, so a reused one means an earlier attempt got through.
            wide.append("Your earlier attempt already reached the ledger, with the details you sent first; "
                        "nothing more was changed.")
        else:
            wide.append(e.message)
    if wide or not errors:
        errors[FORM_WIDE] = " ".join(dict.fromkeys(wide)) or "The ledger did not accept this."
    return errors


def _retry_card(exchange: Exchange, action: str, key: str, errors: dict[str, str], status: int) -> Response:
    context = _card_context(exchange, errors=errors, form=request.form)
    context[_key_name(action)] = key  # same command, same key: a retry appends once
    return render_page("exchange.html", "partials/_exchange_card.html", code=status, **context)


def _key_name(action: str) -> str:
    return {"acknowledge": "ack_key", "dispute": "dispute_key", "withdraw": "withdraw_key"}[action]


@bp.post("/exchanges/<exchange_id>/acknowledge")
def acknowledge(exchange_id: str) -> Response:
    return _transition(exchange_id, "acknowledge", ACKNOWLEDGED)


@bp.post("/exchanges/<exchange_id>/dispute")
def dispute(exchange_id: str) -> Response:
    return _transition(exchange_id, "dispute", DISPUTED)


@bp.post("/exchanges/<exchange_id>/withdraw")
def withdraw(exchange_id: str) -> Response:
    return _transition(exchange_id, "withdraw", WITHDRAWN)


@bp.post("/exchanges/<exchange_id>/correct")
def correct(exchange_id: str) -> Response:
    """The recorder corrects kind, minutes, day and note while it is still recorded."""
    exchange = _visible_exchange(exchange_id)
    if "correct" not in access.exchange_actions(me().id, exchange):
        forbid("Only the person who recorded an exchange can correct it, and only until the other person "
               "responds.")
    form = request.form
    try:
        occurred_on = parse_day(form.get("occurred_on") or "", today_utc()).isoformat()
    except ValueError as err:
        flash(f"Nothing was corrected: {err}", "error")
        return redirect(url_for("exchanges.detail", exchange_id=exchange_id))  # type: ignore[return-value]
    body = {"by": me().id, "kind": form.get("kind", ""), "minutes": (form.get("minutes") or "").strip(),
            "occurred_on": occurred_on, "note": form.get("note", "")}
    refused = contract_errors(CorrectExchange, body)
    if refused:
        flash("Nothing was corrected: " + " ".join(refused.values()), "error")
        return redirect(url_for("exchanges.detail", exchange_id=exchange_id))  # type: ignore[return-value]
    fixed = CorrectExchange.model_validate(body)
    try:
        clients().ledger.correct(exchange_id, by=me().id, kind=fixed.kind.value, minutes=fixed.minutes,
                                 occurred_on=fixed.occurred_on, note=fixed.note,
                                 key=valid_key(form.get("idempotency_key")))
    except Conflict:
        flash(f"{exchange.name_of(exchange.counterpart)} responded meanwhile, so it can no longer be corrected. "
              "Withdrawing is not possible either; talk it through, or record it anew.", "error")
    except (Invalid, Unavailable) as err:
        flash("Nothing was corrected: " + (_sentence(err) if isinstance(err, Invalid) else
                                           "the ledger could not save it just now; please try again."), "error")
    else:
        flash("Corrected. The other person sees what changed.", "success")
        return redirect(url_for("exchanges.detail", exchange_id=exchange_id, expect=RECORDED))  # type: ignore[return-value]
    return redirect(url_for("exchanges.detail", exchange_id=exchange_id))  # type: ignore[return-value]


@bp.post("/exchanges/<exchange_id>/sharing")
def sharing(exchange_id: str) -> Response:
    """Either party agrees to the wall or takes it back, at any time (the ledger checks who may)."""
    exchange = _visible_exchange(exchange_id)
    shared = request.form.get("shared") == "yes"
    key = valid_key(request.form.get("idempotency_key"))
    try:
        clients().ledger.share(exchange.exchange_id, by=me().id, shared=shared, key=key)
    except (Invalid, Conflict) as err:
        flash(_sentence(err), "error")
    except Unavailable:
        flash("The ledger could not save this just now. Nothing was changed; please try again in a moment.", "error")
    else:
        flash("It is on the wall as soon as you both share it." if shared else
              "You stopped sharing it: the wall no longer shows it.", "success")
    return redirect(url_for("exchanges.detail", exchange_id=exchange.exchange_id))  # type: ignore[return-value]


def _sentence(err: Exception) -> str:
    errors = getattr(err, "errors", None)
    return errors[0].message if errors else str(err)


@bp.get("/exchanges")
def history() -> Response:
    """Every exchange I am a party to, newest first, searchable by person, kind, status and dates."""
    args = request.args
    status = args.get("status", "")
    status = status if status in STATUS_WORDS else ""
    kind = args.get("kind", "")
    kind = kind if kind in EXCHANGE_KINDS else ""
    errors: dict[str, str] = {}
    since, until = _day_arg("from", errors), _day_arg("to", errors)
    if since and until and since > until:
        errors["to"] = "The end of the range comes before its start."
    recorded_by = args.get("recorded_by", "")
    recorded_by = recorded_by if recorded_by in RECORDED_BY_WORDS else ""
    person = " ".join((args.get("with") or "").split())
    other = _person_arg(person, errors) if person else None
    # The fields and the links show the days as the pages write them, whatever form they came in.
    search = {"status": status, "recorded_by": recorded_by, "kind": kind, "with": person,
              "from": day_field(since) if since else args.get("from", ""),
              "to": day_field(until) if until else args.get("to", "")}
    carried = {k: v for k, v in search.items() if v}  # what the page links keep
    if errors:
        return render_page("exchanges.html", exchanges=[], next_cursor=None, paged=False, search=search,
                           carried=carried, errors=errors, kinds=EXCHANGE_KINDS, status=status,
                           status_words=STATUS_WORDS, recorded_by_words=RECORDED_BY_WORDS, me_id=me().id,
                           code=422)
    # A page at a time (balance hands out the cursor of the next): the page costs the same however
    # long the member's history, and rendering it too.
    after = args.get("after") or None
    filters: dict[str, Any] = {"status": status or None, "kind": kind or None, "other": other, "since": since,
                               "until": until, "recorded_by": recorded_by or None}
    try:
        page = clients().balance.exchange_page(me().id, limit=HISTORY_PAGE, cursor=after, **filters)
    except Invalid:  # a cursor balance did not hand out (edited, or from before a replay): the first page
        after = None
        page = clients().balance.exchange_page(me().id, limit=HISTORY_PAGE, **filters)
    return render_page("exchanges.html", exchanges=page.exchanges, next_cursor=page.next_cursor, paged=bool(after),
                       search=search, carried=carried, errors={}, kinds=EXCHANGE_KINDS,
                       status=status, status_words=STATUS_WORDS, recorded_by_words=RECORDED_BY_WORDS,
                       me_id=me().id)


def _day_arg(name: str, errors: dict[str, str]) -> date | None:
    typed = (request.args.get(name) or "").strip()
    if not typed:
        return None
    try:
        return parse_day(typed, today_utc())
    except ValueError as err:
        errors[name] = str(err)
        return None


def _person_arg(typed: str, errors: dict[str, str]) -> str | None:
    """The member a search names: an id, a "Name (id)" suggestion, or a name only one member has."""
    candidate = other_id(typed)
    balance = clients().balance
    if SLUG_RE.match(candidate):
        try:
            return balance.member(candidate).id
        except NotFound:
            pass
    found = balance.members(q=typed)
    exact = [m for m in found if " ".join(m.display_name.split()).casefold() == typed.casefold()]
    chosen = exact or found
    if len(chosen) == 1:
        return chosen[0].id
    errors["with"] = (f"Several members match “{typed}”; pick one from the list." if chosen else
                      f"There is no member called “{typed}”.")
    return None
