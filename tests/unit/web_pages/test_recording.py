"""Recording an exchange: the form, its validation, the ledger's answers, dates as the pages write them."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta

from reciprocity.common.service_client import Invalid, OutcomeUnknown
from reciprocity.contracts.commands import FieldError, today_utc
from reciprocity.contracts.ids import exchange_id_for

from tests.support.web_fakes import freeze_clock, hidden
from tests.support.web_pages import client_as, new_exchange_form, text


def test_record_an_exchange_as_the_signed_in_member(app, clients) -> None:  # type: ignore[no-untyped-def]
    client = client_as(app, "ada")
    form = new_exchange_form(client)
    answer = client.post("/exchanges/new", data=form)
    assert answer.status_code == 303
    ((name, body, key),) = clients.ledger.commands
    assert name == "record_exchange"
    assert key == form["idempotency_key"]
    assert body == {"giver": "ada", "receiver": "ben", "kind": "mentoring", "minutes": 45,
                    "note": "Pairing on the planting plan", "occurred_on": date.today().isoformat(),
                    "recorded_by": "ada", "shared": True}
    detail = client.get(answer.headers["Location"])
    assert "You gave Ben Okafor 45 min of mentoring" in text(detail)
    assert "waiting for Ben Okafor" in text(detail)


def test_received_direction_makes_the_other_person_the_giver(app, clients) -> None:  # type: ignore[no-untyped-def]
    client = client_as(app, "ada")
    form = {**new_exchange_form(client), "direction": "received", "other": "Chen Wei (chen)"}
    assert client.post("/exchanges/new", data=form).status_code == 303
    body = clients.ledger.commands[0][1]
    assert (body["giver"], body["receiver"], body["recorded_by"]) == ("chen", "ada", "ada")


def test_double_submit_appends_once(app, clients) -> None:  # type: ignore[no-untyped-def]
    client = client_as(app, "ada")
    form = new_exchange_form(client)
    first = client.post("/exchanges/new", data=form)
    second = client.post("/exchanges/new", data=form)
    assert first.headers["Location"] == second.headers["Location"]
    assert len(clients.ledger.commands) == 1


def test_validation_errors_are_shown_inline_and_nothing_is_sent(app, clients) -> None:  # type: ignore[no-untyped-def]
    client = client_as(app, "ada")
    future = (date.today() + timedelta(days=2)).isoformat()
    form = {**new_exchange_form(client), "minutes": "0", "occurred_on": future, "kind": ""}
    answer = client.post("/exchanges/new", data=form)
    assert answer.status_code == 422
    page = text(answer)
    assert re.search(r'id="minutes-error"[^>]*>Minutes go from 1 to 1440', page)
    assert re.search(r'id="occurred_on-error"[^>]*>That date is in the future', page)
    assert re.search(r'id="kind-error"[^>]*>Choose what kind', page)
    assert 'aria-invalid="true"' in page
    assert 'value="0"' in page  # what was typed stays in the form
    assert hidden(page, "idempotency_key") != form["idempotency_key"]  # a corrected form is a new command
    assert clients.ledger.commands == []


def test_unknown_member_is_caught_before_the_ledger(app, clients) -> None:  # type: ignore[no-untyped-def]
    client = client_as(app, "ada")
    answer = client.post("/exchanges/new", data={**new_exchange_form(client), "other": "nobody-here"})
    assert answer.status_code == 422
    assert "There is no member with the id \u201cnobody-here\u201d" in text(answer)
    assert clients.ledger.commands == []


def test_a_full_name_typed_out_records_with_that_member(app, clients) -> None:  # type: ignore[no-untyped-def]
    client = client_as(app, "ada")
    answer = client.post("/exchanges/new", data={**new_exchange_form(client), "other": "  ben   OKAFOR "})
    assert answer.status_code == 303, text(answer)
    assert clients.ledger.commands[0][1]["receiver"] == "ben"
    token = hidden(text(client.get("/exchanges/new")), "csrf_token")
    blur = client.post("/exchanges/validate?field=other", data={"csrf_token": token, "other": "Chen Wei"})
    assert blur.status_code == 200 and text(blur).strip() == ""


def test_a_name_several_members_share_or_nobody_has_is_explained(app, clients) -> None:  # type: ignore[no-untyped-def]
    clients.balance.add_member("lukas", "Lukas Brandt", ["garden"])
    clients.balance.add_member("lukas-b", "Lukas Brandt", ["kitchen"])
    client = client_as(app, "ada")
    several = client.post("/exchanges/new", data={**new_exchange_form(client), "other": "lukas brandt"})
    assert several.status_code == 422
    assert ("Several members are called \u201clukas brandt\u201d (lukas, lukas-b); pick one from the list"
            in text(several))
    assert "not a member id" not in text(several)
    nobody = client.post("/exchanges/new", data={**new_exchange_form(client), "other": "Lukas Brand"})
    assert nobody.status_code == 422 and "There is no member called \u201cLukas Brand\u201d" in text(nobody)
    token = hidden(text(client.get("/exchanges/new")), "csrf_token")
    blur = client.post("/exchanges/validate?field=other", data={"csrf_token": token, "other": "Lukas Brandt"})
    assert "Several members are called" in text(blur)
    assert clients.ledger.commands == []
    myself = client.post("/exchanges/new", data={**new_exchange_form(client), "other": "Ada Lovelace"})
    assert "choose someone other than yourself" in text(myself)


def test_the_ledgers_field_errors_are_shown_on_the_form(app, clients) -> None:  # type: ignore[no-untyped-def]
    client = client_as(app, "ada")
    clients.ledger.fail_next = Invalid("ledger", [
        FieldError(field="receiver", message="ben is not a member of any circle."),
        FieldError(field="note", message="note can have at most 500 characters.")])
    answer = client.post("/exchanges/new", data=new_exchange_form(client), headers={"HX-Request": "true"})
    assert answer.status_code == 422
    page = text(answer)
    assert "<html" not in page  # the form alone, swapped in place by htmx
    assert re.search(r'id="other-error"[^>]*>ben is not a member of any circle', page)
    assert re.search(r'id="note-error"[^>]*>note can have at most 500', page)


def test_ledger_down_keeps_the_form_and_its_key(app, clients) -> None:  # type: ignore[no-untyped-def]
    client = client_as(app, "ada")
    clients.ledger.down = True
    form = new_exchange_form(client)
    answer = client.post("/exchanges/new", data=form)
    assert answer.status_code == 503
    page = text(answer)
    assert "Nothing was recorded" in page and "again" in page
    assert hidden(page, "idempotency_key") == form["idempotency_key"]  # a retry is the same command
    assert "Pairing on the planting plan" in page
    clients.ledger.down = False
    assert client.post("/exchanges/new", data=form).status_code == 303
    assert len(clients.ledger.commands) == 1


def test_a_timed_out_record_may_have_landed_and_again_records_once(app, clients) -> None:  # type: ignore[no-untyped-def]
    client = client_as(app, "ada")
    clients.ledger.lose_next_answer = True  # appended, then the answer is lost
    form = new_exchange_form(client)
    answer = client.post("/exchanges/new", data=form)
    assert answer.status_code == 504
    page = text(answer)
    assert "may or may not have been recorded" in page and "Nothing was recorded" not in page
    assert hidden(page, "idempotency_key") == form["idempotency_key"]  # pressing Record again is a retry
    again = client.post("/exchanges/new", data=form)
    assert again.status_code == 303
    assert again.headers["Location"].startswith(f"/exchanges/{exchange_id_for(form['idempotency_key'])}?")
    assert len(clients.ledger.commands) == 1


def test_a_timeout_that_did_not_land_records_on_the_retry(app, clients) -> None:  # type: ignore[no-untyped-def]
    client = client_as(app, "ada")
    clients.ledger.fail_next = OutcomeUnknown("ledger", "did not answer in time")
    form = new_exchange_form(client)
    assert client.post("/exchanges/new", data=form).status_code == 504
    assert client.post("/exchanges/new", data=form).status_code == 303
    assert len(clients.ledger.commands) == 1


def test_changed_details_after_a_timeout_say_it_was_recorded_earlier(app, clients) -> None:  # type: ignore[no-untyped-def]
    client = client_as(app, "ada")
    clients.ledger.lose_next_answer = True
    form = new_exchange_form(client)
    assert client.post("/exchanges/new", data=form).status_code == 504
    edited = {**form, "minutes": "50"}  # same key, other details: the ledger refuses the key
    answer = client.post("/exchanges/new", data=edited, headers={"HX-Request": "true"})
    assert answer.status_code == 409
    page = text(answer)
    assert "already recorded earlier" in page
    earlier = exchange_id_for(form["idempotency_key"])
    assert re.search(rf'<a id="recorded-earlier" href="/exchanges/{earlier}">', page)
    assert len(clients.ledger.commands) == 1
    assert clients.ledger.commands[0][1]["minutes"] == 45
    assert client.get(f"/exchanges/{earlier}").status_code == 200  # the link leads to it
    fresh = hidden(page, "idempotency_key")
    assert fresh != form["idempotency_key"]  # recording another one is a new command
    assert client.post("/exchanges/new", data={**edited, "idempotency_key": fresh}).status_code == 303
    assert len(clients.ledger.commands) == 2


def test_a_member_east_of_utc_can_record_their_today(app, clients, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    freeze_clock(monkeypatch, datetime(2025, 3, 1, 20, 0, tzinfo=UTC))  # already 2 March in Auckland
    client = client_as(app, "ada")
    page = text(client.get("/exchanges/new"))
    assert re.search(r'id="occurred_on-choices">\s*<option value="2 Mar 2025"', page)  # the quick choices offer it
    form = {**new_exchange_form(client), "occurred_on": "2025-03-02"}
    blur = client.post("/exchanges/validate?field=occurred_on", data=form)
    assert "future" not in text(blur)
    assert client.post("/exchanges/new", data=form).status_code == 303
    assert clients.ledger.commands[0][1]["occurred_on"] == "2025-03-02"
    too_late = client.post("/exchanges/new", data={**new_exchange_form(client), "occurred_on": "2025-03-03"})
    assert too_late.status_code == 422 and "That date is in the future" in text(too_late)


def test_blur_validation_answers_one_fields_message(app) -> None:  # type: ignore[no-untyped-def]
    client = client_as(app, "ada")
    form = {**new_exchange_form(client), "minutes": "2000"}
    answer = client.post("/exchanges/validate?field=minutes", data=form, headers={"HX-Request": "true"})
    assert answer.status_code == 200
    assert text(answer).strip() == "Minutes go from 1 to 1440 (a whole day)."
    fine = client.post("/exchanges/validate?field=kind", data=form, headers={"HX-Request": "true"})
    assert text(fine).strip() == ""
    unknown = client.post("/exchanges/validate?field=other", data={**form, "other": "zed"})
    assert "no member with the id" in text(unknown)


def test_member_search_offers_others_not_me(app) -> None:  # type: ignore[no-untyped-def]
    client = client_as(app, "ada")
    options = text(client.get("/members/search?other=a", headers={"HX-Request": "true"}))
    assert '<option value="dara">Dara Nolan</option>' in options
    assert 'value="ada"' not in options
    assert text(client.get("/members/search?other=")).strip() == ""


def test_a_600_character_note_is_refused_with_its_length_not_cut_silently(app, clients) -> None:  # type: ignore[no-untyped-def]
    ada = client_as(app, "ada")
    form = text(ada.get("/exchanges/new"))
    assert 'maxlength="500"' not in form  # a browser would cut a pasted note without a word
    answer = ada.post("/exchanges/new", data={**new_exchange_form(ada), "note": "x" * 600})
    assert answer.status_code == 422 and "The note is 600 characters long; keep it to 500." in text(answer)
    assert clients.ledger.commands == []


def test_the_record_form_suggests_her_circle_mates_without_javascript(app) -> None:  # type: ignore[no-untyped-def]
    page = text(client_as(app, "ada").get("/exchanges/new"))
    options = re.search(r'<datalist id="member-options".*?</datalist>', page, re.S)
    assert options and '<option value="ben">Ben Okafor</option>' in options.group(0)
    assert '<option value="ada">' not in options.group(0) and '<option value="omar">' not in options.group(0)


def test_dates_in_forms_read_like_the_pages_and_are_taken_in_that_form(app, clients) -> None:  # type: ignore[no-untyped-def]
    """Issue 12: a native date field showed 12/02/2026 beside pages saying "2 Dec"; one format everywhere."""
    ada = client_as(app, "ada")
    page = text(ada.get("/exchanges/new"))
    today = today_utc()
    shown = f"{today.day} {today:%b %Y}"
    assert re.search(rf'<input type="text" id="occurred_on" name="occurred_on" value="{shown}"', page)
    assert 'type="date"' not in page and f'<option value="{shown}" label="today">' in page
    three_days_ago = today - timedelta(days=3)
    form = {**new_exchange_form(ada), "occurred_on": f"{three_days_ago.day} {three_days_ago:%B %Y}"}
    assert ada.post("/exchanges/new", data=form).status_code == 303
    assert clients.ledger.commands[-1][1]["occurred_on"] == three_days_ago.isoformat()
    us_style = {**new_exchange_form(ada), "occurred_on": f"{today:%m/%d/%Y}"}
    refused = ada.post("/exchanges/new", data=us_style)
    assert refused.status_code == 422 and len(clients.ledger.commands) == 1
    assert re.search(r'id="occurred_on-error"[^>]*>Write the day like 2 Dec 2026\.', text(refused))
    assert f'value="{today:%m/%d/%Y}"' in text(refused)  # what she typed stays, to correct


def test_the_history_search_pause_and_correction_take_the_pages_form(app, clients) -> None:  # type: ignore[no-untyped-def]
    ada = client_as(app, "ada")
    today = today_utc()
    since = today - timedelta(days=9)
    found = text(ada.get(f"/exchanges?from={since.isoformat()}"))  # an old link, in ISO
    assert f'id="from" name="from" value="{since.day} {since:%b %Y}"' in found  # shown as the pages write it
    assert 'type="date"' not in found
    assert ada.get(f"/exchanges?from={since.day}+{since:%b}+{since.year}").status_code == 200
    bad = ada.get("/exchanges?to=31/12/2026")
    assert bad.status_code == 422 and "Write the day like 2 Dec 2026." in text(bad)
    ben = client_as(app, "ben")
    capacity = text(ben.get("/capacity"))
    assert 'type="date"' not in capacity
    back = today + timedelta(days=20)
    token = hidden(capacity, "csrf_token")
    refused = ben.post("/capacity/pause", data={"csrf_token": token, "paused_until": f"{back:%d.%m.%Y}"})
    assert refused.status_code == 422 and "Write the day like 2 Dec 2026." in text(refused)
    assert clients.ledger.commands == []
    assert ben.post("/capacity/pause", data={"csrf_token": token, "paused_until": f"{back.day} {back:%b %Y}"}
                    ).status_code == 302
    assert clients.ledger.commands[-1][1]["paused_until"] == back
    card = text(ben.get("/exchanges/pending-for-ada"))  # ben recorded it yesterday
    yesterday = today - timedelta(days=1)
    assert f'id="correct-day" name="occurred_on" value="{yesterday.day} {yesterday:%b %Y}"' in card
    form = {"csrf_token": hidden(card, "csrf_token"), "kind": "mentoring", "minutes": "40", "note": "",
            "idempotency_key": hidden(card.split('id="correct-form"')[1], "idempotency_key")}
    wrong = ben.post("/exchanges/pending-for-ada/correct", data={**form, "occurred_on": "yesterday-ish"})
    assert wrong.status_code == 302 and [c[0] for c in clients.ledger.commands].count("correct") == 0
    assert "Nothing was corrected: Write the day like 2 Dec 2026." in text(ben.get(wrong.headers["Location"]))
    two_days_ago = today - timedelta(days=2)
    fixed = ben.post("/exchanges/pending-for-ada/correct",
                     data={**form, "occurred_on": f"{two_days_ago.day} {two_days_ago:%b %Y}"})
    assert fixed.status_code == 302 and clients.ledger.commands[-1][0] == "correct"
