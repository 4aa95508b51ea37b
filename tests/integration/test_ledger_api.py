"""The ledger's HTTP API on a real broker, rule by rule: the status a client sees, and that a refused
command appended nothing (counted as decoded records read back from the topics)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta

import pytest
from reciprocity.contracts.commands import today_utc
from reciprocity.contracts.events import (
    CircleFormed,
    ExchangeAcknowledged,
    ExchangeRecorded,
    MemberJoinedCircle,
    MemberLeftCircle,
)
from reciprocity.contracts.ids import command_event_id, exchange_id_for

from tests.support.ledger import InProcessLedger, in_process_ledger

pytestmark = pytest.mark.kafka


@pytest.fixture(scope="module")
def ledger(kafka_bootstrap: str) -> Iterator[InProcessLedger]:
    # One ledger and one set of topics for the module: every test uses ids of its own.
    with in_process_ledger(kafka_bootstrap) as running:
        yield running


@dataclass
class Org:
    """A circle with three members, ids unique to one test."""

    u: str
    circle: str
    ada: str
    bob: str
    cleo: str

    def exchange(self, **overrides: object) -> dict[str, object]:
        return {"giver": self.ada, "receiver": self.bob, "kind": "mentoring", "minutes": 45, "note": "pairing",
                "occurred_on": str(today_utc()), "recorded_by": self.ada, **overrides}


@pytest.fixture
def org(ledger: InProcessLedger) -> Org:
    u = uuid.uuid4().hex[:8]
    org = Org(u, f"circle-{u}", f"ada-{u}", f"bob-{u}", f"cleo-{u}")
    ledger.ok("POST", "/v1/circles", {"id": org.circle, "name": f"Circle {u}"})
    for member in (org.ada, org.bob, org.cleo):
        ledger.ok("POST", "/v1/members", {"id": member, "name": member.title(), "email": f"{member}@example.org",
                                          "circles": [org.circle]})
    return org


def refused(ledger: InProcessLedger, status: int, method: str, path: str, body: object = None, **kw: object) -> dict:
    """Send a command that must be refused with `status`, and check nothing was appended."""
    before = ledger.count()
    answer = ledger.call(method, path, body, **kw)
    assert answer.status_code == status, answer.get_json()
    assert ledger.count() == before, "a refused command appended something"
    return answer.get_json()


def fields(body: dict) -> dict[str, str]:
    assert set(body) == {"errors"}, body
    return {e["field"]: e["message"] for e in body["errors"]}


# --- circles ---------------------------------------------------------------------------------------------


def test_form_circle_appends_circle_formed(ledger: InProcessLedger) -> None:
    u = uuid.uuid4().hex[:8]
    answer = ledger.post("/v1/circles", {"id": f"root-{u}", "name": "Root"})
    assert answer.status_code == 201
    body = answer.get_json()
    assert set(body) == {"event_id", "topic", "partition", "offset", "id", "count"}
    assert (body["topic"], body["id"], body["count"]) == ("ledger.directory", f"root-{u}", 1)
    ledger.ok("POST", "/v1/circles", {"id": f"child-{u}", "name": "Child", "parent": f"root-{u}"})
    found = {e.circle_id: (env, e) for env, e in ledger.events() if isinstance(e, CircleFormed)}
    envelope, event = found[f"root-{u}"]
    assert event.name == "Root"
    assert str(envelope.event_id) == body["event_id"] and envelope.key == f"root-{u}" and envelope.producer == "ledger"
    assert found[f"child-{u}"][1].parent == f"root-{u}"


def test_circle_id_taken_is_409(ledger: InProcessLedger, org: Org) -> None:
    body = refused(ledger, 409, "POST", "/v1/circles", {"id": org.circle, "name": "Again"})
    assert set(body) == {"error"} and org.circle in body["error"]


def test_circle_parent_must_exist(ledger: InProcessLedger, org: Org) -> None:
    body = refused(ledger, 422, "POST", "/v1/circles", {"id": f"orphan-{org.u}", "name": "Orphan",
                                                        "parent": f"ghost-{org.u}"})
    assert "there is no circle" in fields(body)["parent"]


@pytest.mark.parametrize(("body", "field"), [
    ({"id": "X", "name": "Caps"}, "id"),
    ({"id": "a", "name": "Too short"}, "id"),
    ({"id": "fine-id", "name": ""}, "name"),
    ({"name": "No id"}, "id"),
    ({"id": "fine-id", "name": "Ok", "colour": "red"}, "colour"),
    ({"id": "fine-id", "name": "Line\nbreak"}, "name"),
])
def test_circle_body_rules(ledger: InProcessLedger, body: dict, field: str) -> None:
    assert field in fields(refused(ledger, 422, "POST", "/v1/circles", body))


def test_leads_must_be_members_of_a_known_circle(ledger: InProcessLedger, org: Org) -> None:
    refused(ledger, 404, "PUT", f"/v1/circles/ghost-{org.u}/leads", {"leads": [org.ada]})
    body = refused(ledger, 422, "PUT", f"/v1/circles/{org.circle}/leads", {"leads": [org.ada, f"zed-{org.u}"]})
    assert "there is no member" in fields(body)["leads[1]"]
    refused(ledger, 422, "PUT", f"/v1/circles/{org.circle}/leads", {"leads": [org.ada, org.ada]})
    ledger.ok("PUT", f"/v1/circles/{org.circle}/leads", {"leads": [org.ada, org.bob]})
    assert ledger.get(f"/v1/circles/{org.circle}").get_json()["leads"] == [org.ada, org.bob]
    assert ledger.get(f"/v1/members/{org.ada}").get_json()["leads_circles"] == [org.circle]


# --- members ---------------------------------------------------------------------------------------------


def test_member_id_taken_is_409(ledger: InProcessLedger, org: Org) -> None:
    refused(ledger, 409, "POST", "/v1/members", {"id": org.ada, "name": "Ada", "email": f"new-{org.u}@example.org"})


def test_member_email_taken_is_409(ledger: InProcessLedger, org: Org) -> None:
    body = refused(ledger, 409, "POST", "/v1/members", {"id": f"dup-{org.u}", "name": "Dup",
                                                        "email": f"{org.ada.upper()}@example.org"})
    assert org.ada in body["error"]


@pytest.mark.parametrize(("overrides", "field"), [
    ({"email": "not-an-email"}, "email"),
    ({"email": "two@@example.org"}, "email"),
    ({"circles": ["ghost-circle"]}, "circles[0]"),
    ({"role": "admin"}, "role"),
    ({"id": "Has Spaces"}, "id"),
    ({"name": "x" * 101}, "name"),
    ({"name": "Ann\nLee"}, "name"),
    ({"name": "Ann\r\nLee"}, "name"),
    ({"name": "Ann\tLee"}, "name"),
])
def test_member_body_rules(ledger: InProcessLedger, org: Org, overrides: dict, field: str) -> None:
    body = {"id": f"new-{org.u}", "name": "New", "email": f"new-{org.u}@example.org", "circles": [org.circle],
            **overrides}
    assert field in fields(refused(ledger, 422, "POST", "/v1/members", body))


def test_change_circles_appends_the_difference_in_one_transaction(ledger: InProcessLedger, org: Org) -> None:
    other = f"other-{org.u}"
    ledger.ok("POST", "/v1/circles", {"id": other, "name": "Other"})
    before = ledger.count()
    body = ledger.ok("PUT", f"/v1/members/{org.ada}/circles", {"circles": [other]}, key=f"move-{org.u}")
    assert body["count"] == 2
    mine = [(env, e) for env, e in ledger.events() if getattr(e, "member_id", None) == org.ada]
    assert ledger.count() == before + 2
    changes = [(type(e), e.circle_id) for _, e in mine if isinstance(e, (MemberJoinedCircle, MemberLeftCircle))]
    assert changes == [(MemberLeftCircle, org.circle), (MemberJoinedCircle, other)]
    ids = {env.event_id for env, e in mine if isinstance(e, (MemberJoinedCircle, MemberLeftCircle))}
    assert ids == {command_event_id(f"move-{org.u}", 0), command_event_id(f"move-{org.u}", 1)}
    # The same list again changes nothing and appends nothing.
    assert refused(ledger, 200, "PUT", f"/v1/members/{org.ada}/circles", {"circles": [other]}) == {
        "id": org.ada, "unchanged": True}


def test_change_circles_rules(ledger: InProcessLedger, org: Org) -> None:
    refused(ledger, 404, "PUT", f"/v1/members/ghost-{org.u}/circles", {"circles": [org.circle]})
    assert "circles[1]" in fields(refused(ledger, 422, "PUT", f"/v1/members/{org.ada}/circles",
                                          {"circles": [org.circle, f"ghost-{org.u}"]}))


def test_capacity_rules(ledger: InProcessLedger, org: Org) -> None:
    refused(ledger, 404, "PUT", f"/v1/members/ghost-{org.u}/capacity", {"weekly_hours": 4})
    assert "weekly_hours" in fields(refused(ledger, 422, "PUT", f"/v1/members/{org.ada}/capacity",
                                            {"weekly_hours": 200}))
    assert "weekly_hours" in fields(refused(ledger, 422, "PUT", f"/v1/members/{org.ada}/capacity", {}))
    ledger.ok("PUT", f"/v1/members/{org.ada}/capacity", {"weekly_hours": 4.5})
    assert ledger.get(f"/v1/members/{org.ada}").get_json()["weekly_hours"] == 4.5
    ledger.ok("PUT", f"/v1/members/{org.ada}/capacity", {"weekly_hours": None})
    assert ledger.get(f"/v1/members/{org.ada}").get_json()["weekly_hours"] is None


def test_availability_rules(ledger: InProcessLedger, org: Org) -> None:
    later = str(today_utc() + timedelta(days=14))
    refused(ledger, 404, "PUT", f"/v1/members/ghost-{org.u}/availability", {"status": "paused"})
    assert "paused_until" in fields(refused(ledger, 422, "PUT", f"/v1/members/{org.ada}/availability",
                                            {"status": "active", "paused_until": later}))
    assert "status" in fields(refused(ledger, 422, "PUT", f"/v1/members/{org.ada}/availability",
                                      {"status": "away"}))
    ledger.ok("PUT", f"/v1/members/{org.ada}/availability", {"status": "paused", "paused_until": later})
    member = ledger.get(f"/v1/members/{org.ada}").get_json()
    assert (member["status"], member["paused_until"]) == ("paused", later)
    ledger.ok("PUT", f"/v1/members/{org.ada}/availability", {"status": "active"})


# --- exchanges -------------------------------------------------------------------------------------------


def test_record_exchange_carries_circles_and_a_derived_id(ledger: InProcessLedger, org: Org) -> None:
    key = f"record-{org.u}"
    body = ledger.ok("POST", "/v1/exchanges", org.exchange(shared=True), key=key)
    assert body["id"] == exchange_id_for(key) and body["topic"] == "ledger.exchanges"
    (event,) = [e for _, e in ledger.events() if isinstance(e, ExchangeRecorded) and e.exchange_id == body["id"]]
    assert (event.giver_circles, event.receiver_circles, event.shared) == ([org.circle], [org.circle], True)
    view = ledger.get(f"/v1/exchanges/{body['id']}").get_json()
    assert (view["status"], view["minutes"], view["recorded_by"]) == ("recorded", 45, org.ada)


@pytest.mark.parametrize(("overrides", "field"), [
    ({"receiver": "{ada}"}, "receiver"),  # giver and receiver the same member
    ({"giver": "ghost-{u}", "recorded_by": "ghost-{u}"}, "giver"),  # not registered
    ({"receiver": "ghost-{u}"}, "receiver"),
    ({"recorded_by": "{cleo}"}, "recorded_by"),  # a third member
    ({"minutes": 0}, "minutes"),
    ({"minutes": 1441}, "minutes"),
    ({"minutes": 12.5}, "minutes"),
    ({"note": "n" * 501}, "note"),
    ({"occurred_on": "{tomorrow+1}"}, "occurred_on"),
    ({"occurred_on": "{366 days ago}"}, "occurred_on"),
    ({"kind": "chores"}, "kind"),
    ({"kind": None}, "kind"),
])
def test_exchange_rules(ledger: InProcessLedger, org: Org, overrides: dict, field: str) -> None:
    values = {"{ada}": org.ada, "{cleo}": org.cleo, "ghost-{u}": f"ghost-{org.u}",
              "{tomorrow+1}": str(today_utc() + timedelta(days=2)),
              "{366 days ago}": str(today_utc() - timedelta(days=366))}
    body = org.exchange(**{k: values.get(v, v) if isinstance(v, str) else v for k, v in overrides.items()})
    messages = fields(refused(ledger, 422, "POST", "/v1/exchanges", body, key=f"bad-{uuid.uuid4().hex}"))
    assert field in messages, messages


def test_limits_are_inclusive(ledger: InProcessLedger, org: Org) -> None:
    ledger.ok("POST", "/v1/exchanges", org.exchange(minutes=1, occurred_on=str(today_utc() - timedelta(days=365))))
    ledger.ok("POST", "/v1/exchanges", org.exchange(minutes=1440, note="n" * 500, kind="care"))


def _recorded(ledger: InProcessLedger, org: Org, **overrides: object) -> str:
    return ledger.ok("POST", "/v1/exchanges", org.exchange(**overrides))["id"]


def test_only_the_other_party_acknowledges(ledger: InProcessLedger, org: Org) -> None:
    x = _recorded(ledger, org)
    assert "only " + org.bob in fields(refused(ledger, 422, "POST", f"/v1/exchanges/{x}/acknowledge",
                                                {"by": org.ada}))["by"]
    assert "by" in fields(refused(ledger, 422, "POST", f"/v1/exchanges/{x}/acknowledge", {"by": org.cleo}))
    ledger.ok("POST", f"/v1/exchanges/{x}/acknowledge", {"by": org.bob, "thanks": "Thank you!", "shared": True})
    (event,) = [e for _, e in ledger.events() if isinstance(e, ExchangeAcknowledged) and e.exchange_id == x]
    assert (event.thanks.text, event.shared, event.minutes, event.giver) == ("Thank you!", True, 45, org.ada)


def test_only_the_other_party_disputes_with_a_reason(ledger: InProcessLedger, org: Org) -> None:
    x = _recorded(ledger, org, recorded_by=org.bob)  # the receiver recorded: the giver is the other party
    refused(ledger, 422, "POST", f"/v1/exchanges/{x}/dispute", {"by": org.bob, "reason": "hmm"})
    assert "reason" in fields(refused(ledger, 422, "POST", f"/v1/exchanges/{x}/dispute", {"by": org.ada}))
    assert "reason" in fields(refused(ledger, 422, "POST", f"/v1/exchanges/{x}/dispute",
                                      {"by": org.ada, "reason": "   "}))
    ledger.ok("POST", f"/v1/exchanges/{x}/dispute", {"by": org.ada, "reason": "that was not me"})


def test_only_the_recorder_withdraws_while_recorded(ledger: InProcessLedger, org: Org) -> None:
    x = _recorded(ledger, org)
    assert "only " + org.ada in fields(refused(ledger, 422, "POST", f"/v1/exchanges/{x}/withdraw",
                                                {"by": org.bob}))["by"]
    ledger.ok("POST", f"/v1/exchanges/{x}/withdraw", {"by": org.ada})
    body = refused(ledger, 409, "POST", f"/v1/exchanges/{x}/withdraw", {"by": org.ada})
    assert "already withdrawn" in body["error"]


@pytest.mark.parametrize("first", ["acknowledge", "dispute", "withdraw"])
def test_settled_exchanges_refuse_every_transition(ledger: InProcessLedger, org: Org, first: str) -> None:
    bodies = {"acknowledge": {"by": org.bob}, "dispute": {"by": org.bob, "reason": "no"}, "withdraw": {"by": org.ada}}
    x = _recorded(ledger, org)
    ledger.ok("POST", f"/v1/exchanges/{x}/{first}", bodies[first])
    for then, body in bodies.items():
        answer = refused(ledger, 409, "POST", f"/v1/exchanges/{x}/{then}", body)
        assert set(answer) == {"error"}


def test_unknown_exchange_is_404(ledger: InProcessLedger, org: Org) -> None:
    for verb, body in (("acknowledge", {"by": org.bob}), ("dispute", {"by": org.bob, "reason": "?"}),
                       ("withdraw", {"by": org.ada})):
        assert "no exchange" in refused(ledger, 404, "POST", f"/v1/exchanges/x-{org.u}/{verb}", body)["error"]
    assert ledger.get(f"/v1/exchanges/x-{org.u}").status_code == 404


# --- idempotency -----------------------------------------------------------------------------------------


def test_same_key_same_body_appends_once_and_answers_the_same(ledger: InProcessLedger, org: Org) -> None:
    key = f"once-{org.u}"
    before = ledger.count()
    first = ledger.post("/v1/exchanges", org.exchange(), key=key)
    second = ledger.post("/v1/exchanges", org.exchange(), key=key)
    assert first.status_code == second.status_code == 201
    assert first.get_json() == second.get_json()
    assert ledger.count() == before + 1
    # ... and for the exchange's transitions too
    x = first.get_json()["id"]
    ack = [ledger.post(f"/v1/exchanges/{x}/acknowledge", {"by": org.bob}, key=f"ack-{org.u}") for _ in range(3)]
    assert [a.status_code for a in ack] == [201, 201, 201]
    assert len({str(a.get_json()) for a in ack}) == 1
    assert ledger.count() == before + 2


def test_same_key_other_body_is_refused(ledger: InProcessLedger, org: Org) -> None:
    key = f"reuse-{org.u}"
    ledger.ok("POST", "/v1/exchanges", org.exchange(), key=key)
    body = refused(ledger, 422, "POST", "/v1/exchanges", org.exchange(minutes=46), key=key)
    assert "already used for a different request" in fields(body)["Idempotency-Key"]
    # the same key on another endpoint is another request too
    refused(ledger, 422, "POST", "/v1/circles", {"id": f"k-{org.u}", "name": "K"}, key=key)


def test_key_spelling_of_the_body_does_not_matter(ledger: InProcessLedger, org: Org) -> None:
    key = f"order-{org.u}"
    body = org.exchange()
    first = ledger.ok("POST", "/v1/exchanges", body, key=key)
    reordered = '{' + ", ".join(f'"{k}": "{v}"' if isinstance(v, str) else f'"{k}": {v}'
                                for k, v in reversed(list(body.items()))) + '}'
    before = ledger.count()
    again = ledger.post("/v1/exchanges", data=reordered, key=key)
    assert again.status_code == 201 and again.get_json() == first
    assert ledger.count() == before


def test_keys_k_and_k_hash_1_get_events_of_their_own(ledger: InProcessLedger, org: Org) -> None:
    """The second event of key K used to share its id with the first event of key K#1."""
    other = f"other-{org.u}"
    ledger.ok("POST", "/v1/circles", {"id": other, "name": "Other"})
    key = f"pair-{org.u}"
    ledger.ok("PUT", f"/v1/members/{org.ada}/circles", {"circles": [other]}, key=key)
    ledger.ok("PUT", f"/v1/members/{org.bob}/circles", {"circles": [other]}, key=f"{key}#1")
    ids = [env.event_id for env, e in ledger.events() if getattr(e, "member_id", None) in (org.ada, org.bob)
           and isinstance(e, (MemberJoinedCircle, MemberLeftCircle))]
    assert len(ids) == len(set(ids)) == 4
    assert ledger.get(f"/v1/members/{org.bob}").get_json()["circles"] == [other]


def test_a_refused_command_is_not_remembered(ledger: InProcessLedger, org: Org) -> None:
    """A failure appended nothing: the same key and body are evaluated again (and may succeed later)."""
    key = f"later-{org.u}"
    newcomer = f"dan-{org.u}"
    refused(ledger, 422, "POST", "/v1/exchanges", org.exchange(receiver=newcomer), key=key)
    ledger.ok("POST", "/v1/members", {"id": newcomer, "name": "Dan", "email": f"{newcomer}@example.org"})
    assert ledger.post("/v1/exchanges", org.exchange(receiver=newcomer), key=key).status_code == 201


@pytest.mark.parametrize("key", ["", "k" * 256, "tab\there", "naïve"])
def test_bad_idempotency_keys_are_refused(ledger: InProcessLedger, org: Org, key: str) -> None:
    assert "Idempotency-Key" in fields(refused(ledger, 422, "POST", "/v1/exchanges", org.exchange(), key=key))


# --- auth, malformed requests, open endpoints -----------------------------------------------------------


@pytest.mark.parametrize("headers", [
    {}, {"Authorization": "Bearer wrong"}, {"Authorization": "Basic dGVzdA=="}, {"Authorization": "Bearer"},
])
def test_commands_need_the_token(ledger: InProcessLedger, org: Org, headers: dict) -> None:
    body = refused(ledger, 401, "POST", "/v1/exchanges", org.exchange(), token=None, headers=headers)
    assert set(body) == {"error"}
    assert ledger.get("/v1/stats", token=None, headers=headers).status_code == 401
    assert ledger.get(f"/v1/members/{org.ada}", token="wrong").status_code == 401


def test_open_endpoints(ledger: InProcessLedger) -> None:
    health = ledger.get("/health", token=None)
    assert health.status_code == 200 and health.get_json()["status"] == "ok"
    assert ledger.get("/metrics", token=None).status_code == 200
    assert ledger.get("/openapi.json", token=None).get_json()["openapi"].startswith("3.1")


@pytest.mark.parametrize("data", ["{not json", "[1, 2]", '"text"', "\xff"])
def test_malformed_bodies_are_422(ledger: InProcessLedger, data: str) -> None:
    assert "body" in fields(refused(ledger, 422, "POST", "/v1/circles", data=data))


def test_unknown_paths_and_methods_answer_json(ledger: InProcessLedger) -> None:
    assert set(ledger.get("/v1/nothing").get_json()) == {"error"}
    answer = ledger.call("DELETE", "/v1/circles")
    assert answer.status_code == 405 and set(answer.get_json()) == {"error"}


def test_metrics_count_commands_by_outcome(ledger: InProcessLedger, org: Org) -> None:
    def value(outcome: str) -> float:
        text = ledger.get("/metrics", token=None).get_data(as_text=True)
        line = f'ledger_commands_total{{command="record_exchange",outcome="{outcome}"}} '
        found = [float(row[len(line):]) for row in text.splitlines() if row.startswith(line)]
        return found[0] if found else 0.0

    accepted, invalid = value("accepted"), value("invalid")
    ledger.ok("POST", "/v1/exchanges", org.exchange())
    ledger.post("/v1/exchanges", org.exchange(minutes=0))
    assert (value("accepted"), value("invalid")) == (accepted + 1, invalid + 1)


def test_reads_of_the_write_side_state(ledger: InProcessLedger, org: Org) -> None:
    circle = ledger.get(f"/v1/circles/{org.circle}").get_json()
    assert circle["members"] == sorted([org.ada, org.bob, org.cleo]) and circle["parent"] is None
    member = ledger.get(f"/v1/members/{org.bob}").get_json()
    assert (member["email"], member["role"], member["status"]) == (f"{org.bob}@example.org", "member", "active")
    stats = ledger.get("/v1/stats").get_json()
    assert stats["members"] >= 3 and stats["circles"] >= 1
    assert ledger.get(f"/v1/members/ghost-{org.u}").status_code == 404
    assert ledger.get(f"/v1/circles/ghost-{org.u}").status_code == 404
