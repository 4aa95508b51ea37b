"""The web's pages over fake ledger/balance/notify clients: what a person sees and may do."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from urllib.parse import urlencode

import pytest
from reciprocity.common.service_client import Conflict, Invalid, OutcomeUnknown, Unavailable
from reciprocity.contracts.commands import FieldError, today_utc
from reciprocity.contracts.ids import exchange_id_for

from tests.support.web_fakes import (
    DEMO_PASSWORD,
    demo_world,
    fake_clients,
    freeze_clock,
    hidden,
    make_app,
    sign_in,
)


@pytest.fixture
def clients():  # type: ignore[no-untyped-def]
    c = fake_clients()
    demo_world(c)
    return c


@pytest.fixture
def app(tmp_path: Path, clients):  # type: ignore[no-untyped-def]
    return make_app(f"sqlite:///{tmp_path}/web.db", clients)


def client_as(app, member_id: str):  # type: ignore[no-untyped-def]
    client = app.test_client()
    answer = sign_in(client, member_id)
    assert answer.status_code == 302, answer.get_data(as_text=True)
    return client


def text(answer) -> str:  # type: ignore[no-untyped-def]
    return answer.get_data(as_text=True)


# -- signing in ----------------------------------------------------------------------------------------


def test_pages_need_a_signed_in_member(app) -> None:  # type: ignore[no-untyped-def]
    answer = app.test_client().get("/people")
    assert answer.status_code == 302
    assert answer.headers["Location"].startswith("/signin?next=/people")


def test_htmx_poll_without_session_redirects_the_whole_page(app) -> None:  # type: ignore[no-untyped-def]
    answer = app.test_client().get("/people", headers={"HX-Request": "true"})
    assert answer.headers["HX-Redirect"] == "/signin"


def test_sign_in_and_out(app) -> None:  # type: ignore[no-untyped-def]
    client = app.test_client()
    answer = sign_in(client, "ada")
    assert answer.status_code == 302 and answer.headers["Location"] == "/"
    page = text(client.get("/"))
    assert "Hello, Ada Lovelace" in page
    token = hidden(page, "csrf_token")
    assert client.post("/signout", data={"csrf_token": token}).status_code == 302
    assert client.get("/").status_code == 302


def test_a_password_change_ends_every_session_signed_in_with_the_old_one(app) -> None:  # type: ignore[no-untyped-def]
    client = app.test_client()
    sign_in(client, "ada")
    with client.session_transaction() as copied:  # what a stolen cookie would carry
        stolen = dict(copied)
    assert client.get("/").status_code == 200
    app.extensions["reciprocity.accounts"].set_password("ada", "a brand new passphrase")
    answer = client.get("/")
    assert answer.status_code == 302 and answer.headers["Location"].startswith("/signin")
    assert "password was changed" in text(client.get(answer.headers["Location"]))
    thief = app.test_client()
    with thief.session_transaction() as session:
        session.update(stolen)
    assert thief.get("/").status_code == 302
    assert sign_in(app.test_client(), "ada", "a brand new passphrase").status_code == 302


def test_wrong_password_and_unknown_member_get_the_same_answer(app, clients) -> None:  # type: ignore[no-untyped-def]
    wrong = sign_in(app.test_client(), "ada", "not-the-password")
    unknown = sign_in(app.test_client(), "nobody", DEMO_PASSWORD)
    assert wrong.status_code == unknown.status_code == 401
    assert "do not match" in text(wrong) and "do not match" in text(unknown)


def test_password_without_a_directory_member_does_not_sign_in(app, clients) -> None:  # type: ignore[no-untyped-def]
    del clients.balance.members_by_id["ben"]  # has a password (make_app), but the directory forgot them
    assert sign_in(app.test_client(), "ben").status_code == 401


def test_sign_in_goes_back_to_the_page_asked_for_but_never_off_site(app) -> None:  # type: ignore[no-untyped-def]
    client = app.test_client()
    token = hidden(text(client.get("/signin?next=/people")), "csrf_token")
    answer = client.post("/signin", data={"csrf_token": token, "member_id": "ada", "password": DEMO_PASSWORD,
                                          "next": "/people"})
    assert answer.headers["Location"] == "/people"
    other = app.test_client()
    token = hidden(text(other.get("/signin")), "csrf_token")
    answer = other.post("/signin", data={"csrf_token": token, "member_id": "ada", "password": DEMO_PASSWORD,
                                         "next": "//evil.example/steal"})
    assert answer.headers["Location"] == "/"


def test_failed_sign_ins_on_one_account_make_it_wait_longer_each_time(tmp_path: Path, clients) -> None:  # type: ignore[no-untyped-def]
    app = make_app(f"sqlite:///{tmp_path}/web.db", clients, web_login_free_failures=3)
    now = [1_000_000.0]
    app.extensions["reciprocity.throttle"].clock = lambda: now[0]
    client = app.test_client()
    for _ in range(3):
        assert sign_in(client, "ada", "guess-guess").status_code == 401
    blocked = sign_in(client, "ada", DEMO_PASSWORD)  # even the right password waits: it is not checked
    assert blocked.status_code == 429 and "wait 1 second " in text(blocked)
    now[0] += 1.5
    assert sign_in(client, "ada", "guess-again").status_code == 401
    now[0] += 1.5  # the 4th failure doubled the wait to 2 s
    assert sign_in(client, "ada", DEMO_PASSWORD).status_code == 429
    now[0] += 1
    assert sign_in(client, "ada", DEMO_PASSWORD).status_code == 302  # and the count is cleared
    assert sign_in(app.test_client(), "ada", "guess-guess").status_code == 401


def test_ten_wrong_passwords_for_one_member_leave_the_others_signing_in_from_that_address(
        tmp_path: Path, clients) -> None:  # type: ignore[no-untyped-def]
    app = make_app(f"sqlite:///{tmp_path}/web.db", clients)  # the default limits
    office = app.test_client()
    office.environ_base["REMOTE_ADDR"] = "203.0.113.9"
    for _ in range(10):
        assert sign_in(office, "ada", "guess-guess").status_code in (401, 429)
    assert sign_in(office, "ada", DEMO_PASSWORD).status_code == 429  # ada's account is slowed down ...
    colleague = app.test_client()
    colleague.environ_base["REMOTE_ADDR"] = "203.0.113.9"
    answer = sign_in(colleague, "ben")  # ... ben, behind the same address, is not
    assert answer.status_code == 302 and answer.headers["Location"] == "/"


def test_the_address_limit_counts_failures_on_any_account(tmp_path: Path, clients) -> None:  # type: ignore[no-untyped-def]
    app = make_app(f"sqlite:///{tmp_path}/web.db", clients, web_login_attempts=3)
    sprayer = app.test_client()
    sprayer.environ_base["REMOTE_ADDR"] = "203.0.113.9"
    for member_id in ("ada", "ben", "chen"):
        assert sign_in(sprayer, member_id, "Summer2026!").status_code == 401
    blocked = sign_in(sprayer, "ben", DEMO_PASSWORD)
    assert blocked.status_code == 429 and "from your network" in text(blocked)
    elsewhere = app.test_client()
    elsewhere.environ_base["REMOTE_ADDR"] = "198.51.100.7"
    assert sign_in(elsewhere, "ben").status_code == 302


def test_behind_trusted_proxies_the_forwarded_address_is_counted(tmp_path: Path, clients) -> None:  # type: ignore[no-untyped-def]
    app = make_app(f"sqlite:///{tmp_path}/web.db", clients, web_login_attempts=3,
                   web_trusted_proxies="10.0.0.1, 10.1.0.0/16")

    def via(peer: str, forwarded: str):  # type: ignore[no-untyped-def]
        client = app.test_client()
        client.environ_base.update(REMOTE_ADDR=peer, HTTP_X_FORWARDED_FOR=forwarded)
        return client

    # Through two trusted proxies, 203.0.113.9 fails three times: that address is the one blocked ...
    for member_id in ("ada", "ben", "chen"):
        assert sign_in(via("10.0.0.1", "203.0.113.9, 10.1.2.3"), member_id, "nope-nope").status_code == 401
    assert sign_in(via("10.0.0.1", "203.0.113.9, 10.1.2.3"), "ben").status_code == 429
    # ... not the proxy, which every other client comes through.
    assert sign_in(via("10.0.0.1", "198.51.100.7"), "ben").status_code == 302
    with app.extensions["reciprocity.accounts"].engine.connect() as conn:
        keys = {row[0] for row in conn.exec_driver_sql("SELECT key FROM web_login_failures")}
    assert "address:203.0.113.9" in keys and not any("10.0.0.1" in k or "10.1.2.3" in k for k in keys)
    # A client that is not a trusted proxy cannot choose its address by sending the header itself.
    for fake in ("192.0.2.1", "192.0.2.2", "192.0.2.3"):
        assert sign_in(via("198.51.100.50", fake), "ada", "nope-nope").status_code in (401, 429)
    assert sign_in(via("198.51.100.50", "192.0.2.4"), "ben").status_code == 429


def test_signing_in_to_ones_own_account_does_not_reset_the_address(tmp_path: Path, clients) -> None:  # type: ignore[no-untyped-def]
    app = make_app(f"sqlite:///{tmp_path}/web.db", clients, web_login_attempts=3)
    guesser = app.test_client()  # both from the test client's one address
    for _ in range(2):
        assert sign_in(guesser, "ada", "guess-guess").status_code == 401
    assert sign_in(app.test_client(), "ben").status_code == 302  # the guesser's own account
    assert sign_in(guesser, "chen", "guess-guess").status_code == 401
    assert sign_in(guesser, "chen", DEMO_PASSWORD).status_code == 429


# -- sessions that end -----------------------------------------------------------------------------------


def test_a_cookie_saved_before_signing_out_is_signed_out(app) -> None:  # type: ignore[no-untyped-def]
    client = client_as(app, "ada")
    token = hidden(text(client.get("/capacity")), "csrf_token")
    saved = client.get_cookie("reciprocity_session").value  # what a thief (or a shared computer) keeps
    assert client.post("/signout", data={"csrf_token": token}).status_code == 302
    replay = app.test_client()
    replay.set_cookie("reciprocity_session", saved)
    answer = replay.get("/")
    assert answer.status_code == 302 and answer.headers["Location"].startswith("/signin")
    replay.set_cookie("reciprocity_session", saved)
    saving = replay.post("/capacity", data={"csrf_token": token, "weekly_hours": "3", "idempotency_key": "k-1"})
    assert saving.status_code == 302 and saving.headers["Location"].startswith("/signin")
    assert app.extensions["reciprocity.clients"].ledger.commands == []


def test_a_forged_cookie_for_a_member_without_an_account_is_refused(app) -> None:  # type: ignore[no-untyped-def]
    accounts = app.extensions["reciprocity.accounts"]
    with accounts.engine.begin() as conn:  # an operator imported from a roster: in the directory, no password
        conn.exec_driver_sql("DELETE FROM web_accounts WHERE member_id = 'ops'")
    signer = app.session_interface.get_signing_serializer(app)  # the right SECRET_KEY
    for forged in ({"member_id": "ops"}, {"member_id": "ops", "stamp": None}, {"member_id": "ops", "sid": "guess"}):
        client = app.test_client()
        client.set_cookie("reciprocity_session", signer.dumps(forged))
        answer = client.get("/ops")
        assert answer.status_code == 302 and answer.headers["Location"].startswith("/signin"), forged


def test_a_session_ends_when_its_account_goes(app) -> None:  # type: ignore[no-untyped-def]
    client = client_as(app, "ops")
    assert client.get("/ops").status_code == 200
    with app.extensions["reciprocity.accounts"].engine.begin() as conn:
        conn.exec_driver_sql("DELETE FROM web_accounts WHERE member_id = 'ops'")
    assert client.get("/ops").status_code == 302


def test_sessions_have_an_idle_and_an_absolute_lifetime(tmp_path: Path, clients) -> None:  # type: ignore[no-untyped-def]
    day = 24 * 3600
    app = make_app(f"sqlite:///{tmp_path}/web.db", clients, web_session_idle_s=3 * day, web_session_max_s=10 * day)
    now = [1_000_000.0]
    app.extensions["reciprocity.sessions"].clock = lambda: now[0]
    busy, idle = client_as(app, "ada"), client_as(app, "ben")
    for _ in range(9):  # busy: used every day; idle: not since sign-in
        now[0] += day
        assert busy.get("/").status_code == 200
    assert idle.get("/").status_code == 302
    now[0] += day + 1  # ten days after sign-in, however busy
    assert busy.get("/").status_code == 302


def test_a_password_change_on_the_page_ends_the_other_sessions(app) -> None:  # type: ignore[no-untyped-def]
    here, phone = client_as(app, "ada"), client_as(app, "ada")
    page = text(here.get("/account"))
    assert "signed in in 2 places" in page
    token = hidden(page, "csrf_token")
    wrong = here.post("/account", data={"csrf_token": token, "current_password": "not-it",
                                        "new_password": "a fresh passphrase", "repeat_password": "a fresh passphrase"})
    assert wrong.status_code == 422 and "not your current password" in text(wrong)
    short = here.post("/account", data={"csrf_token": token, "current_password": DEMO_PASSWORD,
                                        "new_password": "short", "repeat_password": "short"})
    assert short.status_code == 422 and "at least 8" in text(short)
    assert phone.get("/").status_code == 200  # nothing changed yet
    done = here.post("/account", data={"csrf_token": token, "current_password": DEMO_PASSWORD,
                                       "new_password": "a fresh passphrase", "repeat_password": "a fresh passphrase"})
    assert done.status_code == 302
    assert "Every other session of yours is signed out" in text(here.get("/account"))
    assert here.get("/").status_code == 200  # this browser stays in, with a fresh session
    assert phone.get("/").status_code == 302
    assert sign_in(app.test_client(), "ada").status_code == 401
    assert sign_in(app.test_client(), "ada", "a fresh passphrase").status_code == 302


def test_sign_out_everywhere(app) -> None:  # type: ignore[no-untyped-def]
    here, phone, other = client_as(app, "ada"), client_as(app, "ada"), client_as(app, "ben")
    token = hidden(text(here.get("/account")), "csrf_token")
    answer = here.post("/signout/everywhere", data={"csrf_token": token})
    assert answer.status_code == 302 and answer.headers["Location"] == "/signin"
    assert here.get("/").status_code == 302 and phone.get("/").status_code == 302
    assert other.get("/").status_code == 200  # ben is not ada


def test_balance_down_at_sign_in_is_a_friendly_503(app, clients) -> None:  # type: ignore[no-untyped-def]
    clients.balance.down = True
    answer = sign_in(app.test_client(), "ada")
    assert answer.status_code == 503
    assert "try again" in text(answer).lower()
    assert "Traceback" not in text(answer)


# -- cookies and CSRF ----------------------------------------------------------------------------------


def test_session_cookie_is_httponly_lax_and_not_secure_locally(app) -> None:  # type: ignore[no-untyped-def]
    cookie = sign_in(app.test_client(), "ada").headers["Set-Cookie"]
    assert "HttpOnly" in cookie
    assert "SameSite=Lax" in cookie
    assert "Secure" not in cookie


def test_session_cookie_is_secure_behind_https(tmp_path: Path, clients) -> None:  # type: ignore[no-untyped-def]
    app = make_app(f"sqlite:///{tmp_path}/web.db", clients, web_base_url="https://reciprocity.example",
                   secret_key="a-real-secret-for-this-test")
    client = app.test_client()
    token = hidden(text(client.get("/signin", base_url="https://reciprocity.example")), "csrf_token")
    answer = client.post("/signin", base_url="https://reciprocity.example",
                         headers={"Referer": "https://reciprocity.example/signin"},
                         data={"csrf_token": token, "member_id": "ada", "password": DEMO_PASSWORD})
    assert answer.status_code == 302
    assert "Secure" in answer.headers["Set-Cookie"]


def test_https_without_a_secret_key_refuses_to_start(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="SECRET_KEY"):
        make_app(f"sqlite:///{tmp_path}/web.db", web_base_url="https://reciprocity.example")


def test_forms_need_a_csrf_token(app, clients) -> None:  # type: ignore[no-untyped-def]
    client = client_as(app, "ada")
    answer = client.post("/exchanges/new", data={"direction": "gave", "other": "ben", "kind": "help",
                                                 "minutes": "30", "occurred_on": date.today().isoformat()})
    assert answer.status_code == 400
    assert "expired" in text(answer)
    assert clients.ledger.commands == []
    assert app.test_client().post("/signin", data={"member_id": "ada", "password": DEMO_PASSWORD}).status_code == 400


def test_htmx_requests_carry_the_csrf_token_as_a_header(app, clients) -> None:  # type: ignore[no-untyped-def]
    client = client_as(app, "ada")
    page = text(client.get("/exchanges/new"))
    body_token = re.search(r'hx-headers=\'\{"X-CSRFToken": "([^"]+)"\}\'', page)
    assert body_token, "the <body> must give htmx the CSRF token"
    answer = client.post("/exchanges/new", headers={"HX-Request": "true", "X-CSRFToken": body_token.group(1)},
                         data={"direction": "gave", "other": "ben", "kind": "help", "minutes": "30",
                               "occurred_on": date.today().isoformat(),
                               "idempotency_key": hidden(page, "idempotency_key")})
    assert answer.status_code == 204
    assert len(clients.ledger.commands) == 1


def session_cookie(client) -> str:  # type: ignore[no-untyped-def]
    cookie = client.get_cookie("reciprocity_session")
    assert cookie is not None
    return cookie.value


def test_a_late_answer_that_changed_nothing_cannot_put_an_older_session_back(app) -> None:  # type: ignore[no-untyped-def]
    """The race of the record form: the member search (sent 200 ms after typing, with the session as it was)
    is answered after the form, whose answer put "Recorded." in the session. A search answer re-sending
    its older session would overwrite that, and the message would be lost."""
    ada = client_as(app, "ada")
    form = new_exchange_form(ada)
    before = session_cookie(ada)  # what the search request carries
    recorded = ada.post("/exchanges/new", data=form, headers={"HX-Request": "true"})
    assert recorded.status_code == 204
    assert session_cookie(ada) != before  # the flash message is in the newer session

    late = app.test_client()
    late.set_cookie("reciprocity_session", before)
    search = late.get("/members/search?other=be", headers={"HX-Request": "true"})
    assert search.status_code == 200 and "Ben Okafor" in text(search)
    for header in search.headers.getlist("Set-Cookie"):  # the browser applies whatever arrives last
        name, _, rest = header.partition("=")
        ada.set_cookie(name, rest.split(";", 1)[0])
    assert "Recorded." in text(ada.get(recorded.headers["HX-Redirect"]))
    assert not search.headers.getlist("Set-Cookie")


def test_the_session_is_renewed_at_most_daily_and_only_by_pages(app, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from reciprocity.web import auth

    ada = client_as(app, "ada")
    ada.get("/")  # the first page after signing in puts a CSRF token in the session
    assert "Set-Cookie" not in ada.get("/").headers  # nothing changed, nothing re-sent
    later = auth.time.time() + auth.RENEW_AFTER_S + 5
    monkeypatch.setattr(auth.time, "time", lambda: later)
    assert "Set-Cookie" not in ada.get("/", headers={"HX-Request": "true"}).headers  # a poll never renews
    assert "Set-Cookie" not in ada.get("/members/search?q=be", headers={"HX-Request": "true"}).headers
    renewed = ada.get("/people")
    assert "reciprocity_session=" in renewed.headers["Set-Cookie"]  # a page a day later slides the expiry
    assert "Set-Cookie" not in ada.get("/people").headers


# -- recording an exchange -----------------------------------------------------------------------------


def new_exchange_form(client) -> dict[str, str]:  # type: ignore[no-untyped-def]
    page = text(client.get("/exchanges/new"))
    return {"csrf_token": hidden(page, "csrf_token"), "idempotency_key": hidden(page, "idempotency_key"),
            "direction": "gave", "other": "ben", "kind": "mentoring", "minutes": "45",
            "occurred_on": date.today().isoformat(), "note": "Pairing on the planting plan", "shared": "on"}


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


# -- partials and htmx ---------------------------------------------------------------------------------


def test_people_page_and_its_partial(app) -> None:  # type: ignore[no-untyped-def]
    client = client_as(app, "ada")
    full = client.get("/people")
    assert full.status_code == 200
    page = text(full)
    assert "<html" in page and 'hx-trigger="every 5s"' in page and 'id="people-table"' in page
    assert "HX-Request" in full.headers["Vary"]
    partial = client.get("/people", headers={"HX-Request": "true"})
    assert "<html" not in text(partial)
    assert 'id="people-table"' in text(partial)
    assert "HX-Request" in partial.headers["Vary"]
    row = re.search(r'<tr id="person-ben" data-member="ben">.*?</tr>', text(partial), re.S)
    assert row and 'class="num given" data-minutes="165"' in row.group(0)
    assert 'class="num received" data-minutes="30"' in row.group(0)


def test_people_with_only_pending_exchanges_show_what_waits(app, clients) -> None:  # type: ignore[no-untyped-def]
    clients.balance.add_member("eve", "Eve Moss", ["garden"])
    clients.balance.add_exchange("ada", "eve", kind="help", minutes=50)  # waiting; nothing acknowledged
    client = client_as(app, "ada")
    page = text(client.get("/people"))
    row = re.search(r'<tr id="person-eve".*?</tr>', page, re.S)
    assert row, "a person with only pending exchanges is listed"
    cells = re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", row.group(0)))
    given = re.search(r'<td data-label="You gave" class="num given".*?</td>', row.group(0), re.S)
    assert given and re.sub(r"<[^>]+>", "", given.group(0)).strip() == "50 min waiting"  # not "0 min"
    assert "50 min waiting" in cells and "nothing acknowledged yet" in cells
    assert "Help: 50 min given, waiting for acknowledgement" in cells
    assert cells.count("waiting for acknowledgement") == 1  # balance lists every kind; the zeros are not shown
    ben = re.search(r'<tr id="person-ben".*?</tr>', page, re.S)
    assert ben and 'data-pending-minutes="25"' in ben.group(0) and "+ 25 min waiting" in ben.group(0)
    member = text(client.get("/members/ada"))
    assert re.search(r'<tr data-member="eve">.*?50 min waiting.*?</tr>', member, re.S)


def test_headline_totals_count_what_waits_and_say_so(app, clients) -> None:  # type: ignore[no-untyped-def]
    """The numbers agree with the alerts (which count pending too): the total, then the split."""
    numbers = text(client_as(app, "ada").get("/", headers={"HX-Request": "true", "HX-Target": "numbers"}))
    given = re.search(r'<div class="stat" id="given-total".*?</div>', numbers, re.S)
    assert given and 'data-total-minutes="260"' in given.group(0)  # 210 acknowledged + 50 waiting (4 weeks)
    words = re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", given.group(0)))
    assert "4 h 20 min 3 h 30 min acknowledged, 50 min waiting for acknowledgement" in words
    assert "acknowledged exchanges only" in numbers  # the reciprocity index is settled only
    lead = text(client_as(app, "lena").get("/members/ada"))
    assert 'data-total-minutes="260"' in lead and "waiting for acknowledgement" in lead
    assert "last 12 weeks, acknowledged exchanges" in lead
    # the alert says what it counts
    assert "counting the exchanges they recorded that still wait for acknowledgement" in lead


def test_her_own_alert_is_worded_for_her_and_the_leads_view_is_unchanged(app) -> None:  # type: ignore[no-untyped-def]
    own = re.sub(r"\s+", " ", text(client_as(app, "ada").get("/members/ada")))
    assert "Ask how they are" not in own
    assert "You may be over-extended" in own and "It is fine to say no" in own
    lead = re.sub(r"\s+", " ", text(client_as(app, "lena").get("/members/ada")))
    assert "Ada Lovelace may be over-extended" in lead and "Ask how they are" in lead
    assert "You may be over-extended" not in lead


def test_dashboard_regions_poll_their_own_partials(app) -> None:  # type: ignore[no-untyped-def]
    client = client_as(app, "ada")
    page = text(client.get("/"))
    assert 'id="numbers"' in page and 'id="inbox"' in page and "<svg" in page
    numbers = client.get("/", headers={"HX-Request": "true", "HX-Target": "numbers"})
    assert 'id="given-total"' in text(numbers) and "<html" not in text(numbers) and "pending-list" not in text(numbers)
    assert {"HX-Request", "HX-Target"} <= set(numbers.headers["Vary"].split(", "))
    inbox = client.get("/", headers={"HX-Request": "true", "HX-Target": "inbox"})
    assert 'id="pending-list"' in text(inbox) and 'id="given-total"' not in text(inbox)
    assert "Ben Okafor gave you 25 min of feedback" in text(inbox)


def test_pages_work_without_javascript(app) -> None:  # type: ignore[no-untyped-def]
    """Every page a member reads is complete HTML on its own; htmx only refreshes parts of it."""
    client = client_as(app, "lena")
    for path in ("/", "/people", "/exchanges", "/exchanges/new", "/capacity", "/circles", "/circles/garden",
                 "/wall", "/members/ada"):
        answer = client.get(path)
        assert answer.status_code == 200, path
        assert "</html>" in text(answer), path
        assert answer.headers["Content-Security-Policy"].startswith("default-src 'self'")
        assert answer.headers["Cache-Control"] == "private, no-store"


def test_static_htmx_is_served_locally(app) -> None:  # type: ignore[no-untyped-def]
    answer = app.test_client().get("/static/htmx.min.js")
    assert answer.status_code == 200 and b"htmx" in answer.data[:200]


# -- access rules --------------------------------------------------------------------------------------


def test_member_page_for_self_and_leads_only(app) -> None:  # type: ignore[no-untyped-def]
    assert client_as(app, "ada").get("/members/ada").status_code == 200
    lead_view = client_as(app, "lena").get("/members/ada")  # lena leads garden, ada is in garden
    assert lead_view.status_code == 200
    assert "may be over-extended" in text(lead_view)
    assert "Notes on your garden plan" not in text(lead_view)  # numbers, not notes
    refused = client_as(app, "ben").get("/members/ada")
    assert refused.status_code == 403
    assert "for them and for the leads of their circles" in text(refused)
    assert client_as(app, "omar").get("/members/ada").status_code == 403  # leads kitchen; ada is not in it
    assert client_as(app, "omar").get("/members/dara").status_code == 200  # dara is in kitchen


def test_a_parent_circles_lead_sees_the_members_and_alerts_of_nested_circles(app, clients) -> None:  # type: ignore[no-untyped-def]
    # Notify tells a parent circle's leads about a nested circle whose own lead is the one alerted; what
    # they are told about they must be able to open. Here the garden is nested in omar's kitchen.
    garden = clients.balance.circles_by_id["garden"]
    clients.balance.circles_by_id["garden"] = garden.model_copy(update={"parent": "kitchen"})
    omar = client_as(app, "omar")
    page = omar.get("/members/ada")
    assert page.status_code == 200
    assert "Garden circle is nested in a circle you lead" in text(page) and "may be over-extended" in text(page)
    circle = text(omar.get("/circles/garden"))
    assert 'id="alerts"' in circle and "may be over-extended" in circle and "nested in a circle you lead" in circle
    assert client_as(app, "lena").get("/members/omar").status_code == 403  # nesting does not work upwards


def test_operator_page_is_for_operators(app, clients) -> None:  # type: ignore[no-untyped-def]
    clients.notify.failed = [{"alert_id": "a1", "recipient": "lena@example.org", "attempts": 5,
                              "last_error": "SMTP 451", "body": "private words"}]
    ops = client_as(app, "ops")
    page = ops.get("/ops")
    assert page.status_code == 200
    assert "ledger.exchanges" in text(page) and 'hx-trigger="every 2s"' in text(page)
    assert "SMTP 451" in text(page) and "private words" not in text(page)
    assert "Operations" in text(ops.get("/"))  # in the nav
    partial = ops.get("/ops", headers={"HX-Request": "true"})
    assert 'id="projection-table"' in text(partial) and "<html" not in text(partial)
    member = client_as(app, "ada")
    assert member.get("/ops").status_code == 403
    assert ">Operations<" not in text(member.get("/"))


def test_operator_page_lists_forgettings_never_whom(app, clients) -> None:  # type: ignore[no-untyped-def]
    ops = client_as(app, "ops")
    assert 'id="no-forgettings"' in text(ops.get("/ops"))
    clients.ledger.forgotten = [{"at": "2026-12-02T03:40:11.5+00:00", "requested_by": "ops"}]
    page = text(ops.get("/ops"))
    assert 'id="forgettings-list"' in page and "2026-12-02 03:40:11" in page and "reciprocity forget" in page
    clients.ledger.down = True
    assert "The ledger is not answering" in text(ops.get("/ops"))


def test_operator_page_lists_dead_letters_without_their_contents(app, clients) -> None:  # type: ignore[no-untyped-def]
    ops = client_as(app, "ops")
    calm = text(ops.get("/ops"))
    assert 'id="no-dead-letters"' in calm and "No dead letters." in calm
    assert 'data-topic="ledger.exchanges.dlq" data-count="0"' in calm
    assert "reciprocity dlq redrive" in calm and "reciprocity replay balance" in calm  # the hints stay

    clients.balance.add_dead_letter("ledger.exchanges", partition=3, offset=17, key="x-poison",
                                    error="unknown event type 'ExchangeTeleported'")
    clients.balance.add_dead_letter("ledger.directory", partition=1, offset=2, redriven=True,
                                    redriven_to="ledger.directory[1]@9")
    page = text(ops.get("/ops"))
    assert "No dead letters." not in page and 'id="dead-letter-table"' in page
    assert "ledger.exchanges[3]@17" in page and "ExchangeTeleported" in page and "x-poison" in page
    assert 'data-topic="ledger.exchanges.dlq" data-count="1"' in page
    assert 'data-topic="ledger.directory.dlq" data-count="1"' in page and 'id="dead-letter-counts"' in page
    assert 'data-redriven="true"' in page and "ledger.directory[1]@9" in page
    assert 'hx-get="/ops/dead-letters"' in page and 'hx-trigger="every 10s"' in page

    partial = ops.get("/ops/dead-letters", headers={"HX-Request": "true"})
    assert partial.status_code == 200 and "<html" not in text(partial) and "ledger.exchanges[3]@17" in text(partial)
    assert ops.get("/ops/dead-letters").status_code == 302  # a plain visit goes to the section of the page
    assert client_as(app, "ada").get("/ops/dead-letters", headers={"HX-Request": "true"}).status_code == 403


def test_operator_page_says_when_dead_letters_cannot_be_read(app, clients) -> None:  # type: ignore[no-untyped-def]
    clients.balance.dead_letters_error = "dead letters cannot be read: topic ledger.exchanges.dlq does not exist"
    page = client_as(app, "ops").get("/ops")
    assert page.status_code == 200
    assert 'id="dead-letters-error"' in text(page) and "does not exist" in text(page)
    assert 'id="projection-table"' in text(page)  # the rest of the page still works


def test_operator_page_shows_replay_progress(app, clients) -> None:  # type: ignore[no-untyped-def]
    from reciprocity.web.clients.balance import BuildingProgress

    ops = client_as(app, "ops")
    assert 'id="replay-progress"' not in text(ops.get("/ops"))
    clients.balance.status = clients.balance.status.model_copy(update={"building": BuildingProgress(
        generation=4, applied=300, end=1200, progress=0.25)})
    partial = text(ops.get("/ops", headers={"HX-Request": "true"}))
    assert 'id="replay-progress"' in partial and 'data-generation="4"' in partial
    assert '<progress max="100" value="25">' in partial and "300 of 1200 events applied (25%)" in partial
    clients.balance.status = clients.balance.status.model_copy(update={"building": BuildingProgress(
        generation=4, applied=300, end=None, progress=None)})
    partial = text(ops.get("/ops", headers={"HX-Request": "true"}))
    assert "300 of ? events applied" in partial and '<progress max="100">' in partial


def test_operator_page_shows_a_failed_or_interrupted_replay_not_a_ghost(app, clients) -> None:  # type: ignore[no-untyped-def]
    from reciprocity.web.clients.balance import FailedReplay

    ops = client_as(app, "ops")
    assert 'id="replay-failed"' not in text(ops.get("/ops"))
    clients.balance.status = clients.balance.status.model_copy(update={"failed_replay": FailedReplay(generation=5)})
    partial = text(ops.get("/ops", headers={"HX-Request": "true"}))
    assert 'id="replay-failed"' in partial and "The last replay failed" in partial
    assert 'id="replay-progress"' not in partial
    clients.balance.status = clients.balance.status.model_copy(update={"failed_replay": FailedReplay(
        generation=5, interrupted=True)})
    partial = text(ops.get("/ops", headers={"HX-Request": "true"}))
    assert "The last replay was interrupted" in partial and "ended before it could finish" in partial


def test_operator_does_not_see_members_private_pages(app) -> None:  # type: ignore[no-untyped-def]
    ops = client_as(app, "ops")
    assert ops.get("/members/ada").status_code == 403
    assert ops.get("/exchanges/pending-for-ada").status_code == 403


def test_exchange_detail_is_for_its_two_parties(app) -> None:  # type: ignore[no-untyped-def]
    assert client_as(app, "ada").get("/exchanges/pending-for-ada").status_code == 200
    assert client_as(app, "ben").get("/exchanges/pending-for-ada").status_code == 200
    refused = client_as(app, "chen").get("/exchanges/pending-for-ada")
    assert refused.status_code == 403 and "Notes on your garden plan" not in text(refused)


def test_only_allowed_actions_are_offered(app) -> None:  # type: ignore[no-untyped-def]
    other_party = text(client_as(app, "ada").get("/exchanges/pending-for-ada"))  # ben recorded it
    assert 'id="acknowledge-form"' in other_party and 'id="dispute-form"' in other_party
    assert 'id="withdraw-form"' not in other_party
    recorder = text(client_as(app, "ben").get("/exchanges/pending-for-ada"))
    assert 'id="withdraw-form"' in recorder and 'id="acknowledge-form"' not in recorder


def test_the_recorder_cannot_acknowledge(app, clients) -> None:  # type: ignore[no-untyped-def]
    ben = client_as(app, "ben")
    token = hidden(text(ben.get("/exchanges/pending-for-ada")), "csrf_token")
    answer = ben.post("/exchanges/pending-for-ada/acknowledge", data={"csrf_token": token})
    assert answer.status_code == 403
    assert clients.ledger.commands == []


def test_circle_alerts_for_leads_and_flows_for_members(app) -> None:  # type: ignore[no-untyped-def]
    lead = text(client_as(app, "lena").get("/circles/garden"))
    assert 'id="alerts"' in lead and "may be over-extended" in lead and 'id="flow-graph"' in lead
    member = text(client_as(app, "ben").get("/circles/garden"))
    assert 'id="alerts"' not in member and 'id="flow-graph"' in member and 'id="participation"' in member
    outsider = text(client_as(app, "omar").get("/circles/garden"))
    assert 'id="participation"' in outsider  # measures are for everyone
    assert 'id="flow-graph"' not in outsider and "shown to the circle\u2019s members and leads" in outsider


def _big_garden(clients):  # type: ignore[no-untyped-def]
    from reciprocity.web.clients.balance import CircleHealth, Flow

    ids = [f"p{i:02d}" for i in range(45)]
    flows = [Flow(giver=ids[i], receiver=ids[(i * 7 + 3) % 45], minutes=10 + i * 5) for i in range(45)]
    flows += [Flow(giver=ids[i], receiver=ids[(i + 1) % 45], minutes=15 + i) for i in range(45)]
    clients.balance.health_overrides["garden"] = CircleHealth(circle_id="garden", name="Garden circle",
                                                              member_count=45, flows=flows)
    return flows


def test_a_big_circles_picture_is_partial_but_its_table_lists_every_flow_by_name(app, clients) -> None:  # type: ignore[no-untyped-def]
    flows = _big_garden(clients)
    page = text(client_as(app, "lena").get("/circles/garden"))  # lena leads garden
    assert len(re.findall(r'<path class="flow"', page)) <= 30
    note = re.search(r'id="flow-graph-note"[^>]*>(.*?)</p>', page, re.S)
    assert note and "the table below lists every flow" in note.group(1)
    table = re.search(r'<table id="flow-table".*?</table>', page, re.S)
    assert table
    rows = re.findall(r'<tr><td data-label="From">(.*?)</td><td data-label="To">(.*?)</td>', table.group(0))
    assert len(rows) == len(flows)
    assert rows == sorted(rows, key=lambda r: (r[0].lower(), r[1].lower()))  # by name, never by amount


def test_a_member_sees_who_is_connected_but_no_amounts_between_others(app, clients) -> None:  # type: ignore[no-untyped-def]
    flows = _big_garden(clients)
    whole = text(client_as(app, "ada").get("/circles/garden"))  # ada is a plain member of garden
    section = re.search(r'<section class="card" aria-labelledby="flows-title" id="flows">.*?</section>', whole, re.S)
    assert section
    page = section.group(0)
    assert 'id="flow-graph"' in page and 'data-weighted="false"' in page
    assert 'id="flow-table"' not in page and '<path class="flow"' not in page
    assert not re.search(r"\d+ (min|h)\b", page) and not re.search(r" gave \S+ \d", page)
    widths = set(re.findall(r'stroke-width="([^"]+)"', page))
    assert widths <= {"1.6"}  # only the nodes' outline: every tie is drawn alike
    ties = {tuple(sorted((f.giver, f.receiver))) for f in flows if f.giver != f.receiver}
    assert len(re.findall(r'<path class="tie"', page)) == len(ties)
    listed = re.findall(r'<li><div class="line"><span class="what">(.*?)</span>', page)
    assert listed == sorted(listed, key=str.lower)


def test_small_circles_keep_their_measures_private(app) -> None:  # type: ignore[no-untyped-def]
    page = text(client_as(app, "omar").get("/circles/kitchen"))
    assert "not shown for circles under 5 members" in page
    assert 'id="participation"' not in page
    assert "you still receive alerts" in page  # omar leads kitchen


# -- acting on an exchange -----------------------------------------------------------------------------


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


# -- capacity and pause --------------------------------------------------------------------------------


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


# -- when things break ---------------------------------------------------------------------------------


def test_balance_down_shows_a_friendly_page(app, clients) -> None:  # type: ignore[no-untyped-def]
    ada = client_as(app, "ada")
    clients.balance.down = True
    answer = ada.get("/")
    assert answer.status_code == 503
    page = text(answer)
    assert "Please try again in a moment" in page and "balance service" in page
    assert "Traceback" not in page
    assert answer.headers["Retry-After"]
    poll = ada.get("/people", headers={"HX-Request": "true"})
    assert poll.status_code == 503 and "<html" not in text(poll)


def test_unexpected_errors_do_not_show_a_stack_trace(app, clients, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    ada = client_as(app, "ada")

    def boom(*_a, **_k):  # type: ignore[no-untyped-def]
        raise RuntimeError("secret internals")

    monkeypatch.setattr(clients.balance, "appreciations", boom)
    answer = ada.get("/wall")
    assert answer.status_code == 500
    assert "secret internals" not in text(answer) and "Traceback" not in text(answer)


def test_health_names_what_is_down(app, clients) -> None:  # type: ignore[no-untyped-def]
    client = app.test_client()
    ok = client.get("/health")
    assert ok.status_code == 200 and ok.json["status"] == "ok"
    clients.ledger.down = True
    down = client.get("/health")
    assert down.status_code == 503
    assert down.json["checks"]["ledger"] != "ok" and down.json["checks"]["balance"] == "ok"


def test_metrics(app) -> None:  # type: ignore[no-untyped-def]
    app.test_client().get("/health")
    answer = app.test_client().get("/metrics")
    assert answer.status_code == 200
    assert b"web_requests_total" in answer.data


def test_unknown_page_is_a_kind_404(app) -> None:  # type: ignore[no-untyped-def]
    answer = client_as(app, "ada").get("/no/such/page")
    assert answer.status_code == 404 and "nothing at this address" in text(answer)


def test_wall_shows_what_both_shared_never_the_note_nor_the_minutes(app) -> None:  # type: ignore[no-untyped-def]
    page = text(client_as(app, "chen").get("/wall"))
    assert "Ben Okafor thanks Ada Lovelace" in page  # mentoring, shared by both in demo_world
    assert "mentoring session" not in page  # the private note
    assert "1 h 30 min" not in page  # how long it took is between the two of them
    assert "resource session" not in page  # shared by the recorder only


def test_either_party_stops_sharing_and_the_recorder_can_agree_later(app, clients) -> None:  # type: ignore[no-untyped-def]
    late = clients.balance.add_exchange("dara", "chen", kind="care", status="acknowledged", recorded_by="dara",
                                        thanks="Thank you for the soup", shared_by_acknowledger=True)
    assert "Thank you for the soup" not in text(client_as(app, "omar").get("/wall"))
    dara = client_as(app, "dara")  # the recorder, who did not share at first
    card = text(dara.get(f"/exchanges/{late.exchange_id}"))
    assert "Share it on the wall" in card
    form = {"csrf_token": hidden(card, "csrf_token"), "shared": "yes",
            "idempotency_key": hidden(card.split('id="sharing-form"')[1], "idempotency_key")}
    assert dara.post(f"/exchanges/{late.exchange_id}/sharing", data=form).status_code == 302
    assert "Thank you for the soup" in text(client_as(app, "omar").get("/wall"))
    chen = client_as(app, "chen")  # the other party takes it back
    card = text(chen.get(f"/exchanges/{late.exchange_id}"))
    assert "Stop sharing it" in card
    form = {"csrf_token": hidden(card, "csrf_token"), "shared": "no",
            "idempotency_key": hidden(card.split('id="sharing-form"')[1], "idempotency_key")}
    assert chen.post(f"/exchanges/{late.exchange_id}/sharing", data=form).status_code == 302
    assert "Thank you for the soup" not in text(client_as(app, "omar").get("/wall"))
    assert [c[1] for c in clients.ledger.commands] == [
        {"exchange": late.exchange_id, "by": "dara", "shared": True},
        {"exchange": late.exchange_id, "by": "chen", "shared": False}]


def test_the_wall_is_paged_newest_first_down_to_the_oldest(app, clients) -> None:  # type: ignore[no-untyped-def]
    start = date.today() - timedelta(days=200)
    for i in range(70):
        clients.balance.add_exchange("ada", "ben", kind="help", status="acknowledged", exchange_id=f"w{i:03d}",
                                     occurred_on=start + timedelta(days=i), thanks=f"thanks number {i:03d}",
                                     shared_by_recorder=True, shared_by_acknowledger=True)
    omar, seen, url = client_as(app, "omar"), [], "/wall"
    while url:
        page = text(omar.get(url))
        seen += re.findall(r"thanks number (\d{3})", page)
        older = re.search(r'href="([^"]+)" id="wall-older"', page)
        url = older.group(1).replace("&amp;", "&") if older else ""
    assert "That is everything shared so far" in page
    assert seen == sorted(seen, reverse=True) and seen[-1] == "000" and len(seen) == 70


def test_ledger_503_is_retryable_from_htmx(app, clients) -> None:  # type: ignore[no-untyped-def]
    ada = client_as(app, "ada")
    clients.ledger.fail_next = Unavailable("ledger", "Kafka is unreachable", retry_after=3)
    page = text(ada.get("/exchanges/pending-for-ada"))
    form = {"csrf_token": hidden(page, "csrf_token"), "idempotency_key": hidden(page, "idempotency_key")}
    answer = ada.post("/exchanges/pending-for-ada/acknowledge", headers={"HX-Request": "true"}, data=form)
    assert answer.status_code == 503
    assert "please try again" in text(answer) and "<html" not in text(answer)
    assert hidden(text(answer), "idempotency_key") == hidden(page, "idempotency_key")


# -- nothing about me without me ---------------------------------------------------------------------------


def test_a_member_sees_on_her_dashboard_what_her_leads_were_told_about_her(app, clients) -> None:  # type: ignore[no-untyped-def]
    page = text(client_as(app, "ada").get("/"))
    about = re.search(r'<section class="card attention"[^>]*id="about-me">.*?</section>', page, re.S)
    assert about, "ada's dashboard says nothing of the alert about her"
    words = re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", about.group(0)))
    assert "You may be carrying a lot" in words and "your leads were told on" in words
    signal = clients.balance.signal_list[0]
    assert f"you gave {signal.details['given_minutes'] // 60} h" in words  # the numbers the leads got
    assert "Ask how they are" not in words  # the advice meant for her leads is not hers
    for other in ("ben", "lena"):  # nobody else's dashboard shows it
        assert 'id="about-me"' not in text(client_as(app, other).get("/"))


def test_history_comes_a_page_at_a_time(app, clients) -> None:  # type: ignore[no-untyped-def]
    """The history asks balance for one page and links the next with balance's cursor (a status kept)."""
    from datetime import date, timedelta

    clients.balance.add_member("eve", "Eve Moss", ["garden"])
    made = [clients.balance.add_exchange("ada", "eve", minutes=1 + i, exchange_id=f"x-{i:016x}",
                                         occurred_on=date.today() - timedelta(days=i % 30)).exchange_id
            for i in range(120)]
    mine = {e.exchange_id for e in clients.balance.exchanges("ada", limit=500)}
    client = client_as(app, "ada")
    seen: list[str] = []
    url = "/exchanges"
    for _ in range(10):
        page = text(client.get(url))
        listed = re.findall(r'href="/exchanges/([^"?/]+)"', page.split('id="history-list"')[1].split("</ul>")[0]) \
            if 'id="history-list"' in page else []
        assert len(listed) <= 50
        seen += listed
        older = re.search(r'href="([^"]+)" id="history-older"', page)
        if not older:
            break
        url = older.group(1).replace("&amp;", "&")
    assert len(seen) == len(set(seen)) and set(seen) == mine and set(made) <= set(seen)
    assert 'id="history-newest"' in page  # a later page links back to the newest
    waiting = text(client.get("/exchanges?status=recorded"))
    older = re.search(r'href="([^"]+)" id="history-older"', waiting)
    assert older and "status=recorded" in older.group(1)
    assert client.get("/exchanges?after=not-a-cursor-balance-gave").status_code == 200  # the first page instead


def test_a_member_turns_her_own_alert_emails_off(app, clients) -> None:  # type: ignore[no-untyped-def]
    ada = client_as(app, "ada")
    page = text(ada.get("/capacity"))
    assert 'id="own_alert_emails" checked' in page and 'id="daily_digest" checked' in page
    answer = ada.post("/capacity/emails", data={"csrf_token": hidden(page, "csrf_token"), "daily_digest": "on",
                                                "idempotency_key": hidden(page.split('id="emails-form"')[1],
                                                                          "idempotency_key")})
    assert answer.status_code == 302
    assert clients.ledger.commands[-1][:2] == ("set_email_settings", {
        "member": "ada", "own_alert_emails": False, "daily_digest": True})
    again = text(ada.get("/capacity"))
    assert 'id="own_alert_emails" checked' not in again and 'id="daily_digest" checked' in again


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


def test_history_is_searchable_by_person_kind_and_dates_and_pages_keep_the_search(  # type: ignore[no-untyped-def]
        app, clients, monkeypatch) -> None:
    from reciprocity.web import pages_exchanges

    monkeypatch.setattr(pages_exchanges, "HISTORY_PAGE", 4)  # several pages of the search
    clients.balance.add_member("eve", "Eve Moss", ["garden"])
    today = date.today()
    for i in range(60):
        clients.balance.add_exchange("ada", "eve" if i % 2 else "ben", kind="care" if i % 3 else "help",
                                     minutes=5 + i, exchange_id=f"s-{i:03d}", occurred_on=today - timedelta(days=i))
    ada = client_as(app, "ada")
    seen: list[str] = []
    since = (today - timedelta(days=50)).isoformat()
    url = "/exchanges?" + urlencode({"with": "Eve Moss", "kind": "care", "from": since})
    while url:
        page = text(ada.get(url))
        seen += re.findall(r'href="/exchanges/(s-\d{3})"', page)
        older = re.search(r'href="([^"]+)" id="history-older"', page)
        url = older.group(1).replace("&amp;", "&") if older else ""
    expected = {f"s-{i:03d}" for i in range(60) if i % 2 and i % 3 and i <= 50}
    assert set(seen) == expected and len(seen) == len(expected) and len(expected) > 4
    unknown = ada.get("/exchanges?with=Nobody+Here")
    assert unknown.status_code == 422 and "There is no member called" in text(unknown)
    backwards = ada.get(f"/exchanges?from={today.isoformat()}&to={(today - timedelta(days=3)).isoformat()}")
    assert backwards.status_code == 422 and "comes before its start" in text(backwards)


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
