"""Thousands of generated requests against an in-process ledger on a real broker: no request ever gets
a 5xx, every answer is one the API documents, and the topics hold exactly the events of the accepted
requests (each once, however often a key was retried)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from reciprocity.contracts.commands import today_utc
from reciprocity.ledger.api import COMMANDS

from tests.support.ledger import InProcessLedger, in_process_ledger

pytestmark = pytest.mark.kafka

U = uuid.uuid4().hex[:6]
CIRCLES = [f"c{i}-{U}" for i in range(3)]
MEMBERS = [f"m{i}-{U}" for i in range(5)]
MAX_EXAMPLES = 2500


@pytest.fixture(scope="module")
def ledger(kafka_bootstrap: str) -> Iterator[InProcessLedger]:
    with in_process_ledger(kafka_bootstrap) as running:
        running.ok("POST", "/v1/circles", {"id": CIRCLES[0], "name": "Root"})
        for member in MEMBERS[:3]:
            running.ok("POST", "/v1/members", {"id": member, "name": member, "email": f"{member}@example.org",
                                               "circles": [CIRCLES[0]]})
        yield running


# Values that are sometimes right and often wrong, so the rules get exercised from both sides.
ids = st.one_of(st.sampled_from(MEMBERS), st.sampled_from(CIRCLES),
                st.from_regex(r"[a-z0-9][a-z0-9._-]{1,8}", fullmatch=True), st.text(max_size=6), st.none(),
                st.integers(-5, 5))
members = st.one_of(st.sampled_from(MEMBERS), ids)
days = st.integers(-400, 3).map(lambda n: str(today_utc() + timedelta(days=n)))
texts = st.one_of(st.text(max_size=20), st.just("x" * 501), st.just(""), st.none())
anything = st.one_of(st.none(), st.booleans(), st.integers(), st.text(max_size=5), st.lists(st.integers(), max_size=2))

FIELDS: dict[str, Any] = {
    "id": st.one_of(st.sampled_from(CIRCLES + MEMBERS), ids,
                    st.from_regex(r"n[a-z0-9]{6}", fullmatch=True).map(lambda s: f"{s}-{U}")),
    "name": st.one_of(st.text(min_size=1, max_size=12), texts),
    "parent": st.one_of(st.none(), st.sampled_from(CIRCLES), ids),
    "email": st.one_of(st.emails(), st.text(max_size=10)),
    "circles": st.lists(st.one_of(st.sampled_from(CIRCLES), ids), max_size=3),
    "role": st.sampled_from(["member", "operator", "boss", None]),
    "leads": st.lists(members, max_size=3),
    "weekly_hours": st.one_of(st.none(), st.floats(-1, 200, allow_nan=False), st.integers(0, 40)),
    "status": st.sampled_from(["active", "paused", "away"]),
    "paused_until": st.one_of(st.none(), days),
    "giver": members,
    "receiver": members,
    "kind": st.sampled_from(["mentoring", "feedback", "help", "knowledge", "resource", "care", "chores"]),
    "minutes": st.one_of(st.integers(-2, 1500), st.sampled_from([1, 30, 1440, 1441]), anything),
    "note": texts,
    "occurred_on": st.one_of(days, st.text(max_size=10)),
    "recorded_by": members,
    "shared": st.one_of(st.booleans(), anything),
    "by": members,
    "confirm": members,
    "thanks": texts,
    "reason": texts,
    "own_alert_emails": st.one_of(st.booleans(), anything),
    "daily_digest": st.one_of(st.booleans(), anything),
    "policy": st.one_of(st.none(), st.fixed_dictionaries({}, optional={"overextension_ratio": st.floats(0, 5)})),
}


fresh = st.from_regex(r"n[a-z0-9]{8}", fullmatch=True).map(lambda s: f"{s}-{U}")
party = st.sampled_from(MEMBERS[:3])
valid_day = st.integers(-365, 0).map(lambda n: str(today_utc() + timedelta(days=n)))


@st.composite
def exchange_body(draw: st.DrawFn) -> dict[str, Any]:
    giver, receiver = draw(st.lists(party, min_size=2, max_size=2, unique=True))
    return {"giver": giver, "receiver": receiver, "kind": draw(FIELDS["kind"].filter(lambda k: k != "chores")),
            "minutes": draw(st.integers(1, 1440)), "note": draw(st.text(max_size=30)), "occurred_on": draw(valid_day),
            "recorded_by": draw(st.sampled_from([giver, receiver])), "shared": draw(st.booleans())}


# A body the rules may well accept, per route (the path's target is drawn separately).
PLAUSIBLE: dict[str, Any] = {
    "form_circle": st.fixed_dictionaries({"id": fresh, "name": st.just("A circle")},
                                         optional={"parent": st.sampled_from(CIRCLES)}),
    "set_leads": st.fixed_dictionaries({"leads": st.lists(party, unique=True, max_size=3)}),
    "register_member": fresh.flatmap(lambda i: st.fixed_dictionaries({
        "id": st.just(i), "name": st.just("Someone"), "email": st.just(f"{i}@example.org"),
        "circles": st.lists(st.sampled_from(CIRCLES), unique=True, max_size=2)})),
    "change_circles": st.fixed_dictionaries({"circles": st.lists(st.sampled_from(CIRCLES), unique=True, max_size=3)}),
    "declare_capacity": st.fixed_dictionaries({"weekly_hours": st.one_of(st.none(), st.integers(0, 40))}),
    "change_availability": st.one_of(
        st.just({"status": "active"}),
        st.fixed_dictionaries({"status": st.just("paused")}, optional={
            "paused_until": st.integers(0, 60).map(lambda n: str(today_utc() + timedelta(days=n)))})),
    "record_exchange": exchange_body(),
    "acknowledge": st.fixed_dictionaries({"by": party}, optional={"thanks": st.text(max_size=20),
                                                                  "shared": st.booleans()}),
    "dispute": st.fixed_dictionaries({"by": party, "reason": st.just("that is not how it went")}),
    "withdraw": st.fixed_dictionaries({"by": party}),
    "correct": st.fixed_dictionaries({"by": party, "kind": st.sampled_from(["help", "care"]),
                                      "minutes": st.integers(1, 1440), "occurred_on": valid_day},
                                     optional={"note": st.text(max_size=30)}),
    "share": st.fixed_dictionaries({"by": party, "shared": st.booleans()}),
    "set_notifications": st.fixed_dictionaries({"own_alert_emails": st.booleans(), "daily_digest": st.booleans()}),
    # Rarely plausible: only an operator may ask, and none of the test's members is one.
    "forget_member": st.fixed_dictionaries({"by": party, "confirm": party}),
}
TARGETS = {"circle_id": CIRCLES, "member_id": MEMBERS}


@st.composite
def requests(draw: st.DrawFn, known_exchanges: list[str]) -> tuple[str, str, Any, str | None]:
    route = draw(st.sampled_from(COMMANDS))
    fields = list(route.body.model_fields)
    body: Any = dict(draw(PLAUSIBLE[route.name]))
    # Then spoil it, often: drop, replace or add fields, or send no object at all.
    for _ in range(draw(st.integers(0, 2))):
        name = draw(st.sampled_from(fields))
        if draw(st.booleans()):
            body[name] = draw(FIELDS[name])
        else:
            body.pop(name, None)
    if draw(st.integers(0, 9)) == 0:
        body[draw(st.sampled_from(["extra", "surprise"]))] = draw(anything)
    if draw(st.integers(0, 30)) == 0:
        body = draw(anything)
    path = route.path
    if route.param:
        # The pool of exchanges grows as the run goes on; draw an index with fixed bounds, as hypothesis
        # needs the same kind of draw from run to run.
        pool = known_exchanges[-20:] if route.param == "exchange_id" else TARGETS[route.param]
        index, made_up = draw(st.integers(0, 19)), draw(st.text(alphabet="abcx-0123", min_size=1, max_size=8))
        use_pool = draw(st.integers(0, 4)) > 0
        target = pool[index % len(pool)] if pool and use_pool else made_up
        path = path.replace(f"<{route.param}>", target)
    key = draw(st.one_of(st.none(), st.integers(0, 40).map(lambda n: f"k{n}-{U}"), st.uuids().map(str)))
    return route.method, path, body, key


def test_generated_requests_never_5xx_and_append_exactly_the_accepted(ledger: InProcessLedger) -> None:
    before = ledger.count()
    known_exchanges: list[str] = []
    first_answer: dict[str, tuple[int, Any]] = {}  # event id -> (status, body) of accepted commands
    seen_statuses: dict[int, int] = {}

    @settings(max_examples=MAX_EXAMPLES, deadline=None, database=None, derandomize=True,
              suppress_health_check=list(HealthCheck))
    @given(st.data())
    def one_request(data: st.DataObject) -> None:
        method, path, body, key = data.draw(requests(known_exchanges))
        answer = ledger.call(method, path, body, key=key)
        status = answer.status_code
        seen_statuses[status] = seen_statuses.get(status, 0) + 1
        assert status < 500, (method, path, body, answer.get_data(as_text=True))
        assert status in (200, 201, 404, 409, 422), (status, answer.get_json())
        payload = answer.get_json()
        if status == 201:
            previous = first_answer.setdefault(payload["event_id"], (status, payload))
            assert previous == (status, payload), "a retry got another answer than the first"
            if path == "/v1/exchanges":
                known_exchanges.append(payload["id"])
        elif status == 422:
            assert payload["errors"] and all(set(e) == {"field", "message"} for e in payload["errors"])
        elif status in (404, 409):
            assert set(payload) == {"error"}

    one_request()
    print("statuses seen:", dict(sorted(seen_statuses.items())))
    appended = ledger.events()
    accepted_events = sum(body["count"] for _, body in first_answer.values())
    assert len(appended) - before == accepted_events, seen_statuses
    appended_ids = {str(envelope.event_id) for envelope, _ in appended}
    assert set(first_answer) <= appended_ids
    # The run exercised both sides of the rules, not just the refusals.
    assert seen_statuses.get(201, 0) > 50 and seen_statuses.get(422, 0) > 200, seen_statuses
