"""Signing in and out, sessions that end, cookies and CSRF."""

from __future__ import annotations

import re
from datetime import date
from pathlib import Path

import pytest

from tests.support.web_fakes import DEMO_PASSWORD, hidden, make_app, sign_in
from tests.support.web_pages import client_as, new_exchange_form, session_cookie, text


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
