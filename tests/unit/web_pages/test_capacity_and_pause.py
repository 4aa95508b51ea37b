"""Capacity and pause, and the bounds of free text in every form."""

from __future__ import annotations

import re
from datetime import date, timedelta
from urllib.parse import urlencode

from reciprocity.contracts.commands import today_utc

from tests.support.web_fakes import hidden
from tests.support.web_pages import client_as, new_exchange_form, text


def test_declare_capacity_pause_and_resume(app, clients) -> None:  # type: ignore[no-untyped-def]
    ben = client_as(app, "ben")
    page = text(ben.get("/capacity"))
    token = hidden(page, "csrf_token")
    assert ben.post("/capacity", data={"csrf_token": token, "weekly_hours": "6.5"}).status_code == 302
    assert clients.balance.members_by_id["ben"].weekly_hours == 6.5
    bad = ben.post("/capacity", data={"csrf_token": token, "weekly_hours": "200"})
    assert bad.status_code == 422 and "from 0 to 168" in text(bad)
    until = (date.today() + timedelta(days=14)).isoformat()
    assert ben.post("/capacity/pause", data={"csrf_token": token, "paused_until": until}).status_code == 302
    paused = text(ben.get("/capacity"))
    assert "You are paused until" in paused and 'id="resume-form"' in paused
    assert "You are paused" in text(ben.get("/"))  # the dashboard says so too, kindly
    assert ben.post("/capacity/resume", data={"csrf_token": token}).status_code == 302
    assert clients.balance.members_by_id["ben"].status == "active"
    names = [c[0] for c in clients.ledger.commands]
    assert names == ["declare_capacity", "change_availability", "change_availability"]


def test_a_capacity_already_exceeded_this_week_is_warned_about_before_it_is_saved(app, clients) -> None:  # type: ignore[no-untyped-def]
    ada = client_as(app, "ada")  # ada gave 2 h 20 min in the last 7 days, 50 min of it pending (demo world)
    page = text(ada.get("/capacity"))
    form = {"csrf_token": hidden(page, "csrf_token"), "idempotency_key": hidden(page, "idempotency_key"),
            "weekly_hours": "1"}
    warned = ada.post("/capacity", data=form)
    assert warned.status_code == 200 and clients.ledger.commands == []
    warning = re.search(r'id="capacity-warning".*?</div>', text(warned), re.S)
    assert warning and "you already gave 2 h 20 min, more than 1 h" in warning.group(0)
    assert "pause" in warning.group(0) and 'name="confirm_over" value="yes"' in text(warned)
    assert ada.post("/capacity", data={**form, "confirm_over": "yes"}).status_code == 302
    assert [c[0] for c in clients.ledger.commands] == ["declare_capacity"]
    # Room enough: saved at once, no warning.
    assert ada.post("/capacity", data={**form, "weekly_hours": "3", "idempotency_key": "k-3" * 8}).status_code == 302


def test_a_timed_out_capacity_may_have_been_saved(app, clients) -> None:  # type: ignore[no-untyped-def]
    ben = client_as(app, "ben")
    page = text(ben.get("/capacity"))
    clients.ledger.lose_next_answer = True
    answer = ben.post("/capacity", data={"csrf_token": hidden(page, "csrf_token"), "weekly_hours": "6",
                                         "idempotency_key": hidden(page, "idempotency_key")})
    assert answer.status_code == 503
    assert "may already be saved" in text(answer) and "Nothing was changed" not in text(answer)


def test_pause_in_the_past_is_refused(app, clients) -> None:  # type: ignore[no-untyped-def]
    ben = client_as(app, "ben")
    token = hidden(text(ben.get("/capacity")), "csrf_token")
    answer = ben.post("/capacity/pause", data={"csrf_token": token, "paused_until": "2000-01-01"})
    assert answer.status_code == 422 and "That date has passed" in text(answer)
    assert clients.ledger.commands == []


def test_pause_beyond_365_days_is_refused_with_the_ledgers_words(app, clients) -> None:  # type: ignore[no-untyped-def]
    """31/12/9999 was accepted once and stopped the read side for everyone (issue 10)."""
    ben = client_as(app, "ben")
    token = hidden(text(ben.get("/capacity")), "csrf_token")
    answer = ben.post("/capacity/pause", data={"csrf_token": token, "paused_until": "9999-12-31"})
    last = (today_utc() + timedelta(days=365)).isoformat()
    assert answer.status_code == 422
    assert f"paused_until can be at most 365 days ahead (until {last})" in text(answer)
    assert clients.ledger.commands == []


def test_a_nul_in_a_note_thanks_or_reason_is_refused_and_nothing_is_sent(app, clients) -> None:  # type: ignore[no-untyped-def]
    ada = client_as(app, "ada")
    answer = ada.post("/exchanges/new", data={**new_exchange_form(ada), "note": "bad\x00note"})
    assert answer.status_code == 422
    assert re.search(r'id="note-error"[^>]*>note cannot contain control characters other than line breaks '
                     r'\(found U\+0000\)', text(answer))
    page = text(ada.get("/exchanges/pending-for-ada"))
    answer = ada.post("/exchanges/pending-for-ada/dispute", data={"csrf_token": hidden(page, "csrf_token"),
                                                                 "reason": "it was\x00 less"})
    assert answer.status_code == 422 and "reason cannot contain control characters" in text(answer)
    answer = ada.post("/exchanges/pending-for-ada/acknowledge", data={"csrf_token": hidden(page, "csrf_token"),
                                                                     "thanks": "ta\x1b"})
    assert answer.status_code == 422 and "thanks cannot contain control characters" in text(answer)
    assert clients.ledger.commands == []


def test_a_note_with_line_breaks_from_a_textarea_is_kept(app, clients) -> None:  # type: ignore[no-untyped-def]
    ada = client_as(app, "ada")
    assert ada.post("/exchanges/new", data={**new_exchange_form(ada), "note": "one\r\ntwo"}).status_code == 303
    assert clients.ledger.commands[0][1]["note"].replace("\r\n", "\n") == "one\ntwo"


def test_a_surrogate_sent_as_utf8ish_bytes_is_no_500(app, clients) -> None:  # type: ignore[no-untyped-def]
    """A browser cannot send a lone surrogate (UTF-8 has none); the bytes one would have are read as U+FFFD."""
    ada = client_as(app, "ada")
    form = {**new_exchange_form(ada), "note": "SURROGATE"}
    raw = urlencode(form).replace("SURROGATE", "%ED%A0%80")
    answer = ada.post("/exchanges/new", data=raw, content_type="application/x-www-form-urlencoded")
    assert answer.status_code in (303, 422)
    assert all("\ud800" not in body["note"] for _, body, _ in clients.ledger.commands)
