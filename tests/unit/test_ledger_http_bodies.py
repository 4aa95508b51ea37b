"""The ledger's HTTP layer on an in-memory event log (no Kafka): request bodies are read as strict JSON,
and every command needs an Idempotency-Key. A refused request appends nothing."""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from flask.testing import FlaskClient
from reciprocity.contracts.commands import today_utc
from reciprocity.ledger.api import COMMANDS, openapi_document
from reciprocity.ledger.app import create_app, ledger_of
from reciprocity.ledger.settings import LedgerSettings

from tests.support.memory_log import MemoryLog

TOKEN = "unit-token"


@dataclass
class Api:
    client: FlaskClient
    log: MemoryLog

    def call(self, method: str, path: str, body: Any = None, *, key: str | None = "fresh",
             data: str | None = None) -> Any:
        headers = {"Authorization": f"Bearer {TOKEN}"}
        if key is not None:
            headers["Idempotency-Key"] = uuid.uuid4().hex if key == "fresh" else key
        if data is not None:
            return self.client.open(path, method=method, data=data, headers=headers,
                                    content_type="application/json")
        return self.client.open(path, method=method, json=body, headers=headers)

    def ok(self, method: str, path: str, body: Any) -> Any:
        answer = self.call(method, path, body)
        assert answer.status_code in (200, 201), answer.get_json()
        return answer.get_json()

    def refused(self, method: str, path: str, body: Any = None, **kw: Any) -> dict[str, str]:
        """A request that must answer 422 with field errors and append nothing: {field: message}."""
        before = len(self.log.records)
        answer = self.call(method, path, body, **kw)
        assert answer.status_code == 422, (answer.status_code, answer.get_json())
        assert len(self.log.records) == before, "a refused request appended something"
        return {e["field"]: e["message"] for e in answer.get_json()["errors"]}


@pytest.fixture
def api() -> Iterator[Api]:
    log = MemoryLog()
    app = create_app(LedgerSettings(kafka_bootstrap_servers="127.0.0.1:1", ledger_token=TOKEN),
                     event_log=log)  # type: ignore[arg-type]
    ledger_of(app).stale_reason = None  # as if loaded from empty topics
    api = Api(app.test_client(), log)
    api.ok("POST", "/v1/circles", {"id": "aa", "name": "AA"})
    for member in ("ada", "bob"):
        api.ok("POST", "/v1/members", {"id": member, "name": member.title(), "email": f"{member}@example.org",
                                       "circles": ["aa"]})
    yield api


def exchange(**overrides: Any) -> dict[str, Any]:
    return {"giver": "ada", "receiver": "bob", "kind": "mentoring", "minutes": 45, "note": "pairing",
            "occurred_on": str(today_utc()), "recorded_by": "ada", **overrides}


# --- strict JSON types (item: "minutes": true was 1 minute) -------------------------------------------------


@pytest.mark.parametrize(("field", "value", "message"), [
    ("minutes", True, "minutes must be a whole number."),
    ("minutes", False, "minutes must be a whole number."),
    ("minutes", "12", "minutes must be a whole number."),
    ("minutes", 10.0, "minutes must be a whole number."),
    ("minutes", "ten", "minutes must be a whole number."),
    ("shared", "yes", "shared must be true or false."),
    ("shared", 1, "shared must be true or false."),
    ("shared", "true", "shared must be true or false."),
    ("occurred_on", 1_700_000_000, "occurred_on must be a date written like 2025-03-31."),
    ("kind", 1, "kind must be one of 'mentoring', 'feedback', 'help', 'knowledge', 'resource' or 'care'."),
    ("note", 12, "note must be text."),
])
def test_record_exchange_refuses_wrong_json_types(api: Api, field: str, value: Any, message: str) -> None:
    errors = api.refused("POST", "/v1/exchanges", exchange(**{field: value}))
    assert set(errors) == {field}
    if field != "kind":  # the enum's wording is pydantic's
        assert errors[field] == message


def test_record_exchange_takes_an_iso_date_string_and_real_types(api: Api) -> None:
    answer = api.ok("POST", "/v1/exchanges", exchange(minutes=12, shared=True))
    recorded = api.call("GET", f"/v1/exchanges/{answer['id']}").get_json()
    assert recorded["minutes"] == 12 and recorded["occurred_on"] == str(today_utc())


@pytest.mark.parametrize(("method", "path", "body", "field"), [
    ("POST", "/v1/circles", {"id": "cc", "name": 5}, "name"),
    ("POST", "/v1/circles", {"id": "cc", "name": "C", "policy": {"disconnection_days": "21"}},
     "policy.disconnection_days"),
    ("POST", "/v1/circles", {"id": "cc", "name": "C", "policy": {"disconnection_days": True}},
     "policy.disconnection_days"),
    ("POST", "/v1/circles", {"id": "cc", "name": "C", "policy": {"overextension_ratio": "3"}},
     "policy.overextension_ratio"),
    ("POST", "/v1/circles", {"id": "cc", "name": "C", "policy": {"overextension_min_given_minutes": 240.0}},
     "policy.overextension_min_given_minutes"),
    ("PUT", "/v1/circles/aa/leads", {"leads": "ada"}, "leads"),
    ("POST", "/v1/members", {"id": "cleo", "name": "Cleo", "email": "cleo@example.org", "circles": "aa"}, "circles"),
    ("PUT", "/v1/members/ada/circles", {"circles": {"aa": True}}, "circles"),
    ("PUT", "/v1/members/ada/capacity", {"weekly_hours": "10"}, "weekly_hours"),
    ("PUT", "/v1/members/ada/capacity", {"weekly_hours": True}, "weekly_hours"),
    ("PUT", "/v1/members/ada/availability", {"status": "paused", "paused_until": 20990101}, "paused_until"),
    ("POST", "/v1/exchanges/x-0000000000000000/acknowledge", {"by": "bob", "shared": "yes"}, "shared"),
    ("POST", "/v1/exchanges/x-0000000000000000/acknowledge", {"by": "bob", "thanks": 3}, "thanks"),
    ("POST", "/v1/exchanges/x-0000000000000000/dispute", {"by": "bob", "reason": ["no"]}, "reason"),
    ("POST", "/v1/exchanges/x-0000000000000000/withdraw", {"by": 7}, "by"),
])
def test_every_command_refuses_wrong_json_types(api: Api, method: str, path: str, body: Any, field: str) -> None:
    assert field in api.refused(method, path, body)


def test_capacity_takes_a_json_integer_or_fraction(api: Api) -> None:
    api.ok("PUT", "/v1/members/ada/capacity", {"weekly_hours": 10})
    api.ok("PUT", "/v1/members/ada/capacity", {"weekly_hours": 7.5})
    assert api.call("GET", "/v1/members/ada").get_json()["weekly_hours"] == 7.5


# --- NaN and infinity ---------------------------------------------------------------------------------------


def test_capacity_nan_as_a_string_is_not_a_number(api: Api) -> None:
    assert api.refused("PUT", "/v1/members/ada/capacity", {"weekly_hours": "NaN"}) == {
        "weekly_hours": "weekly_hours must be a number."}


@pytest.mark.parametrize("literal", ["NaN", "Infinity", "-Infinity", "1e999", "-1e999"])
def test_non_finite_numbers_never_get_in(api: Api, literal: str) -> None:
    errors = api.refused("PUT", "/v1/members/ada/capacity", data=f'{{"weekly_hours": {literal}}}')
    assert set(errors) == {"body"} and "not valid JSON" in errors["body"]
    errors = api.refused("POST", "/v1/circles", data=f'{{"id": "cc", "name": "C", "policy": '
                                                     f'{{"overextension_ratio": {literal}}}}}')
    assert set(errors) == {"body"}


# --- Idempotency-Key required ------------------------------------------------------------------------------------


BODIES: dict[str, tuple[str, dict[str, Any]]] = {
    "form_circle": ("/v1/circles", {"id": "cc", "name": "CC"}),
    "set_leads": ("/v1/circles/aa/leads", {"leads": ["ada"]}),
    "register_member": ("/v1/members", {"id": "cleo", "name": "Cleo", "email": "cleo@example.org"}),
    "forget_member": ("/v1/members/ada/forget", {"by": "ada", "confirm": "ada"}),
    "change_circles": ("/v1/members/ada/circles", {"circles": []}),
    "declare_capacity": ("/v1/members/ada/capacity", {"weekly_hours": 10}),
    "change_availability": ("/v1/members/ada/availability", {"status": "paused"}),
    "correct": ("/v1/exchanges/x-0000000000000000/correct", {"by": "ada", "kind": "help", "minutes": 5,
                                                             "occurred_on": "2026-01-01"}),
    "share": ("/v1/exchanges/x-0000000000000000/sharing", {"by": "ada", "shared": True}),
    "set_notifications": ("/v1/members/ada/notifications", {"own_alert_emails": False, "daily_digest": True}),
    "record_exchange": ("/v1/exchanges", exchange()),
    "acknowledge": ("/v1/exchanges/x-0000000000000000/acknowledge", {"by": "bob"}),
    "dispute": ("/v1/exchanges/x-0000000000000000/dispute", {"by": "bob", "reason": "no"}),
    "withdraw": ("/v1/exchanges/x-0000000000000000/withdraw", {"by": "ada"}),
}


@pytest.mark.parametrize("route", COMMANDS, ids=lambda r: r.name)
@pytest.mark.parametrize("key", [None, ""], ids=["missing", "empty"])
def test_every_command_requires_an_idempotency_key(api: Api, route: Any, key: str | None) -> None:
    path, body = BODIES[route.name]
    errors = api.refused(route.method, path, body, key=key)
    assert set(errors) == {"Idempotency-Key"}
    assert "required" in errors["Idempotency-Key"]


def test_openapi_marks_the_idempotency_key_required(api: Api) -> None:
    doc = api.client.get("/openapi.json").get_json()
    for route in COMMANDS:
        operation = doc["paths"][route.path.replace("<", "{").replace(">", "}")][route.method.lower()]
        (key,) = [p for p in operation["parameters"] if p["name"] == "Idempotency-Key"]
        assert key["in"] == "header" and key["required"] is True


# --- bounds on every value (issue: a 9999 pause, a NUL, a lone surrogate, deep JSON) -------------------------


def test_a_pause_beyond_365_days_is_refused(api: Api) -> None:
    errors = api.refused("PUT", "/v1/members/ada/availability", {"status": "paused", "paused_until": "9999-12-31"})
    assert errors["paused_until"].startswith("paused_until can be at most 365 days ahead (until ")


def test_a_nul_in_a_note_is_refused(api: Api) -> None:
    assert api.refused("POST", "/v1/exchanges", exchange(note="before\x00after")) == {
        "note": "note cannot contain control characters other than line breaks (found U+0000)."}


# --- what the OpenAPI document says is what the ledger does (schemathesis found both) ---------------------


def test_text_is_measured_as_sent_not_after_stripping(api: Api) -> None:
    """The document says a note has at most 500 characters: 500 and a space are 501."""
    assert api.refused("POST", "/v1/exchanges", exchange(note="x" * 500 + " ")) == {
        "note": "note can have at most 500 characters (this one has 501)."}
    assert api.ok("POST", "/v1/exchanges", exchange(note="  " + "x" * 496 + "  "))["topic"] == "ledger.exchanges"
    assert set(api.refused("POST", "/v1/exchanges", exchange(giver=" ada"))) == {"giver"}  # not an id, as sent
    assert api.refused("POST", "/v1/members", {"id": "cy", "name": "Cy\n", "email": "cy@example.org"}) == {
        "name": "name cannot begin or end with a tab, line break or other control character."}


def test_the_document_states_the_text_rules() -> None:
    """Control characters and repeated ids are refused, and the schema says so (before, a body the
    document called valid was answered 422)."""
    schemas = openapi_document()["components"]["schemas"]
    for model, field in (("RecordExchange", "note"), ("Acknowledge", "thanks"), ("Dispute", "reason"),
                         ("RegisterMember", "name"), ("FormCircle", "name")):
        pattern = schemas[model]["properties"][field]["pattern"]
        assert re.fullmatch(pattern, "fine text") and not re.fullmatch(pattern, "bell\x07"), (model, field)
    assert re.fullmatch(schemas["RecordExchange"]["properties"]["note"]["pattern"], "two\nlines")
    assert not re.fullmatch(schemas["RegisterMember"]["properties"]["name"]["pattern"], "two\nlines")
    assert not re.fullmatch(schemas["Dispute"]["properties"]["reason"]["pattern"], "   ")
    assert schemas["SetLeads"]["properties"]["leads"]["uniqueItems"] is True


@pytest.mark.parametrize("field", ["note", "giver", "kind"])
def test_a_lone_surrogate_anywhere_is_refused_not_a_500(api: Api, field: str) -> None:
    # Written by hand: a JSON encoder would not produce this escape from text.
    body = json.dumps(exchange(**{field: "SURROGATE"})).replace("SURROGATE", "ab\\ud800")
    assert api.refused("POST", "/v1/exchanges", data=body) == {
        field: f"{field} holds a lone surrogate (U+D800), which is not a character; remove it or paste the text "
               "again."}


def test_a_lone_surrogate_in_a_field_name_is_refused(api: Api) -> None:
    body = json.dumps(exchange()).replace('"note"', '"no\\udc00te"')
    assert "lone surrogate (U+DC00)" in api.refused("POST", "/v1/exchanges", data=body)["body"]


@pytest.mark.parametrize("depth", [12, 2000, 100_000])
def test_deeply_nested_json_is_refused_not_a_500(api: Api, depth: int) -> None:
    body = '{"note": ' + "[" * depth + "]" * depth + "}"
    message = api.refused("POST", "/v1/exchanges", data=body)["body"]
    assert "nested too deeply (a body takes at most 10 levels)" in message
