"""What the page tests do over and over: sign in as someone, read a page, the record form's fields."""

from __future__ import annotations

from datetime import date

from tests.support.web_fakes import hidden, sign_in


def client_as(app, member_id: str):  # type: ignore[no-untyped-def]
    client = app.test_client()
    answer = sign_in(client, member_id)
    assert answer.status_code == 302, answer.get_data(as_text=True)
    return client


def text(answer) -> str:  # type: ignore[no-untyped-def]
    return answer.get_data(as_text=True)


def session_cookie(client) -> str:  # type: ignore[no-untyped-def]
    cookie = client.get_cookie("reciprocity_session")
    assert cookie is not None
    return cookie.value


def new_exchange_form(client) -> dict[str, str]:  # type: ignore[no-untyped-def]
    page = text(client.get("/exchanges/new"))
    return {"csrf_token": hidden(page, "csrf_token"), "idempotency_key": hidden(page, "idempotency_key"),
            "direction": "gave", "other": "ben", "kind": "mentoring", "minutes": "45",
            "occurred_on": date.today().isoformat(), "note": "Pairing on the planting plan", "shared": "on"}
