"""When an upstream is down or something fails: friendly pages, health, metrics."""

from __future__ import annotations

from reciprocity.common.service_client import Unavailable

from tests.support.web_fakes import hidden
from tests.support.web_pages import client_as, text


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


def test_ledger_503_is_retryable_from_htmx(app, clients) -> None:  # type: ignore[no-untyped-def]
    ada = client_as(app, "ada")
    clients.ledger.fail_next = Unavailable("ledger", "Kafka is unreachable", retry_after=3)
    page = text(ada.get("/exchanges/pending-for-ada"))
    form = {"csrf_token": hidden(page, "csrf_token"), "idempotency_key": hidden(page, "idempotency_key")}
    answer = ada.post("/exchanges/pending-for-ada/acknowledge", headers={"HX-Request": "true"}, data=form)
    assert answer.status_code == 503
    assert "please try again" in text(answer) and "<html" not in text(answer)
    assert hidden(text(answer), "idempotency_key") == hidden(page, "idempotency_key")
