"""Acting on an exchange: acknowledge, dispute, withdraw, correct, and answers that come late."""

from __future__ import annotations

import re
from datetime import date, timedelta

import pytest
from reciprocity.common.service_client import Conflict, Invalid, OutcomeUnknown
from reciprocity.contracts.commands import FieldError

from tests.support.web_fakes import hidden
from tests.support.web_pages import client_as, new_exchange_form, text


def test_acknowledge_with_thanks_settles_it(app, clients) -> None:  # type: ignore[no-untyped-def]
    ada = client_as(app, "ada")
    page = text(ada.get("/exchanges/pending-for-ada"))
    answer = ada.post("/exchanges/pending-for-ada/acknowledge", data={
        "csrf_token": hidden(page, "csrf_token"), "idempotency_key": hidden(page, "idempotency_key"),
        "thanks": "Thank you, Ben!", "shared": "on"})
    assert answer.status_code == 303
    assert answer.headers["Location"] == "/exchanges/pending-for-ada?expect=acknowledged"
    ((name, body, _key),) = clients.ledger.commands
    assert name == "acknowledge" and body["by"] == "ada" and body["thanks"] == "Thank you, Ben!"
    assert body["shared_by_acknowledger"] is True
    settled = text(ada.get(answer.headers["Location"]))
    assert "Thank you, Ben!" in settled and 'data-status="acknowledged"' in settled
    assert 'id="acknowledge-form"' not in settled


def test_detail_polls_until_the_read_side_catches_up(app, clients) -> None:  # type: ignore[no-untyped-def]
    ada = client_as(app, "ada")
    clients.ledger.projection_lags = True
    recorded = ada.post("/exchanges/new", data=new_exchange_form(ada))
    assert recorded.status_code == 303
    waiting = ada.get(recorded.headers["Location"])
    assert waiting.status_code == 200
    assert 'hx-trigger="load delay:1s"' in text(waiting) and "in a moment" in text(waiting)
    assert "Recorded." in text(waiting)
    not_projected = recorded.headers["Location"].split("?")[0]
    assert ada.get(not_projected).status_code == 404  # without `expect`, balance's word is final
    clients.ledger.catch_up()
    assert "You gave Ben Okafor 45 min of mentoring" in text(ada.get(recorded.headers["Location"] + "&n=1"))
    clients.ledger.projection_lags = True
    not_projected = ada.post("/exchanges/new", data=new_exchange_form(ada)).headers["Location"].split("?")[0]
    stale = text(ada.get("/exchanges/pending-for-ada?expect=acknowledged"))  # still `recorded` in balance
    assert 'hx-trigger="load delay:1s"' in stale and 'id="acknowledge-form"' not in stale
    assert "n=1" in stale
    gave_up = ada.get(f"{not_projected}?expect=recorded&n=60")
    assert gave_up.status_code == 200 and "load delay" not in text(gave_up) and "longer than usual" in text(gave_up)
    settled = clients.balance.exchanges_by_id["ada-waiting"]
    clients.balance.exchanges_by_id["ada-waiting"] = settled.model_copy(update={"status": "acknowledged"})
    moved_on = text(ada.get("/exchanges/ada-waiting?expect=withdrawn"))  # the other person acted first
    assert "load delay" not in moved_on and 'data-status="acknowledged"' in moved_on


def test_an_exchange_nobody_recorded_is_not_found_whatever_the_link_expects(app, clients) -> None:  # type: ignore[no-untyped-def]
    ada = client_as(app, "ada")
    for expect in ("recorded", "acknowledged"):
        answer = ada.get(f"/exchanges/x-nope?expect={expect}")
        assert answer.status_code == 404
        assert "Recorded" not in text(answer) and "saved in the ledger" not in text(answer)
    assert ada.get("/exchanges/x-nope?expect=recorded", headers={"HX-Request": "true"}).status_code == 404


def test_someone_elses_unprojected_exchange_is_not_shown_as_recorded(app, clients) -> None:  # type: ignore[no-untyped-def]
    ben = client_as(app, "ben")
    clients.ledger.projection_lags = True
    location = ben.post("/exchanges/new", data={**new_exchange_form(ben), "other": "chen"}).headers["Location"]
    answer = client_as(app, "ada").get(location)
    assert answer.status_code == 403 and "saved in the ledger" not in text(answer)


def test_while_the_ledger_cannot_be_asked_the_waiting_page_claims_nothing(app, clients) -> None:  # type: ignore[no-untyped-def]
    ada = client_as(app, "ada")
    clients.ledger.down = True
    answer = ada.get("/exchanges/x-maybe?expect=recorded")
    assert answer.status_code == 200
    page = text(answer)
    assert "saved in the ledger" not in page and "could not check" in page
    assert 'hx-trigger="load delay:1s"' in page  # and it keeps looking


def test_autocomplete_swaps_into_the_datalist_only(app) -> None:  # type: ignore[no-untyped-def]
    """hx-target is inherited: without its own, the datalist would swap the whole form away."""
    page = text(client_as(app, "ada").get("/exchanges/new"))
    datalist = re.search(r"<datalist[^>]*>", page)
    assert datalist and 'hx-target="this"' in datalist.group(0)
    for field in re.findall(r"<(?:input|select|textarea)[^>]*hx-post[^>]*>", page):
        assert "hx-target=" in field


def test_dispute_needs_a_reason(app, clients) -> None:  # type: ignore[no-untyped-def]
    ada = client_as(app, "ada")
    page = text(ada.get("/exchanges/pending-for-ada"))
    answer = ada.post("/exchanges/pending-for-ada/dispute", data={"csrf_token": hidden(page, "csrf_token"),
                                                                 "reason": "  "})
    assert answer.status_code == 422
    assert re.search(r'id="reason-error">Say briefly what does not match', text(answer))
    assert clients.ledger.commands == []
    answer = ada.post("/exchanges/pending-for-ada/dispute", data={"csrf_token": hidden(page, "csrf_token"),
                                                                 "reason": "It was 15 minutes"})
    assert answer.status_code == 303
    assert clients.ledger.commands[0][1]["dispute_reason"] == "It was 15 minutes"


def test_withdraw_by_the_recorder(app, clients) -> None:  # type: ignore[no-untyped-def]
    ada = client_as(app, "ada")
    page = text(ada.get("/exchanges/ada-waiting"))
    answer = ada.post("/exchanges/ada-waiting/withdraw", data={"csrf_token": hidden(page, "csrf_token")},
                      headers={"HX-Request": "true"})
    assert answer.status_code == 204
    assert answer.headers["HX-Redirect"] == "/exchanges/ada-waiting?expect=withdrawn"
    assert clients.ledger.commands[0][:2] == ("withdraw", {"exchange_id": "ada-waiting", "by": "ada"})


@pytest.mark.parametrize(("exchange_id", "action", "field"), [
    ("pending-for-ada", "acknowledge", "by"),
    ("pending-for-ada", "dispute", "Idempotency-Key"),
    ("ada-waiting", "withdraw", "by"),
    ("ada-waiting", "withdraw", "body"),
])
def test_ledger_errors_on_fields_the_card_does_not_show_are_shown_above_it(  # type: ignore[no-untyped-def]
        app, clients, exchange_id: str, action: str, field: str) -> None:
    ada = client_as(app, "ada")
    page = text(ada.get(f"/exchanges/{exchange_id}"))
    clients.ledger.fail_next = Invalid("ledger", [FieldError(field=field, message=f"{field} is not right here.")])
    answer = ada.post(f"/exchanges/{exchange_id}/{action}", data={
        "csrf_token": hidden(page, "csrf_token"), "reason": "It was 15 minutes"}, headers={"HX-Request": "true"})
    assert answer.status_code == 422
    shown = re.search(r'id="action-error">([^<]+)<', text(answer))
    assert shown, "a 422 card must say what went wrong"
    if field == "Idempotency-Key":
        assert "earlier attempt already reached the ledger" in shown.group(1)
    else:
        assert f"{field} is not right here." in shown.group(1)


def test_a_timed_out_acknowledge_keeps_its_key_and_may_have_been_saved(app, clients) -> None:  # type: ignore[no-untyped-def]
    ada = client_as(app, "ada")
    page = text(ada.get("/exchanges/pending-for-ada"))
    key = hidden(page, "idempotency_key")
    clients.ledger.fail_next = OutcomeUnknown("ledger", "did not answer in time")
    answer = ada.post("/exchanges/pending-for-ada/acknowledge", headers={"HX-Request": "true"},
                      data={"csrf_token": hidden(page, "csrf_token"), "idempotency_key": key})
    assert answer.status_code == 504
    assert "may already be saved" in text(answer) and "Nothing changed" not in text(answer)
    assert hidden(text(answer), "idempotency_key") == key


def test_a_conflict_says_it_moved_on(app, clients) -> None:  # type: ignore[no-untyped-def]
    ada = client_as(app, "ada")
    page = text(ada.get("/exchanges/pending-for-ada"))
    clients.ledger.fail_next = Conflict("ledger", "the exchange is no longer recorded")
    answer = ada.post("/exchanges/pending-for-ada/acknowledge", data={"csrf_token": hidden(page, "csrf_token")})
    assert answer.status_code == 303
    assert "already moved on" in text(ada.get(answer.headers["Location"]))


def test_the_recorder_corrects_and_the_other_party_sees_what_changed(app, clients) -> None:  # type: ignore[no-untyped-def]
    ben = client_as(app, "ben")  # ben recorded pending-for-ada: 25 min of feedback, yesterday
    card = text(ben.get("/exchanges/pending-for-ada"))
    assert 'id="correct-form"' in card
    assert 'id="correct-form"' not in text(client_as(app, "ada").get("/exchanges/pending-for-ada"))
    day = (date.today() - timedelta(days=2)).isoformat()
    form = {"csrf_token": hidden(card, "csrf_token"), "kind": "mentoring", "minutes": "40", "occurred_on": day,
            "note": "Notes on your garden plan",
            "idempotency_key": hidden(card.split('id="correct-form"')[1], "idempotency_key")}
    assert ben.post("/exchanges/pending-for-ada/correct", data=form).status_code == 302
    assert clients.ledger.commands[-1][0] == "correct"
    seen = re.sub(r"\s+", " ", text(client_as(app, "ada").get("/exchanges/pending-for-ada")))
    changed = re.search(r'id="exchange-corrected".*?</div>', seen)
    assert changed and "Ben Okafor corrected this" in changed.group(0)
    assert "Feedback, 25 min, on" in changed.group(0) and "note changed" not in changed.group(0)
    bad = ben.post("/exchanges/pending-for-ada/correct", data={**form, "minutes": "0", "idempotency_key": "k" * 32})
    assert bad.status_code == 302 and [c[0] for c in clients.ledger.commands].count("correct") == 1


def test_acting_on_a_stale_page_says_what_happened_and_keeps_the_typed_thanks(app, clients) -> None:  # type: ignore[no-untyped-def]
    ada = client_as(app, "ada")
    page = text(ada.get("/exchanges/pending-for-ada"))
    form = {"csrf_token": hidden(page, "csrf_token"), "idempotency_key": hidden(page, "idempotency_key"),
            "thanks": "Thank you so much for the notes"}
    found = clients.balance.exchanges_by_id["pending-for-ada"]
    clients.balance.exchanges_by_id["pending-for-ada"] = found.model_copy(update={"status": "withdrawn"})
    answer = ada.post("/exchanges/pending-for-ada/acknowledge", data=form)
    said = re.sub(r"\s+", " ", text(answer))
    assert answer.status_code == 409 and "This page is private" not in said
    assert "Ben Okafor withdrew this while the page was open" in said
    assert "Thank you so much for the notes" in said and clients.ledger.commands == []
