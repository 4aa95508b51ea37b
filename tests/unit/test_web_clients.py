"""The web's HTTP clients: shapes from the brief parse, errors map to the exceptions pages handle.

No network: each test hands the client's transport (service_client.Http) a canned answer.
"""

from __future__ import annotations

import json
from datetime import date
from typing import Any

import pytest
from reciprocity.common.service_client import Answer, Conflict, Invalid, NotFound, OutcomeUnknown, Unavailable
from reciprocity.ledger.client import LedgerClient
from reciprocity.web.clients.balance import HttpBalance
from reciprocity.web.clients.notify import HttpNotify
from urllib3.exceptions import ConnectTimeoutError, MaxRetryError, NewConnectionError, ProtocolError, ReadTimeoutError


class Canned:
    """Stands in for Http.request: records calls, answers from a list."""

    def __init__(self, *answers: Answer | Exception) -> None:
        self.answers = list(answers)
        self.calls: list[dict[str, Any]] = []

    def __call__(self, method: str, url: str, **kwargs: Any) -> Answer:
        self.calls.append({"method": method, "url": url, **kwargs})
        answer = self.answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer


def response(status: int, body: Any = None, headers: dict[str, str] | None = None) -> Answer:
    return Answer(status, {"Content-Type": "application/json", **(headers or {})},
                  json.dumps(body).encode() if body is not None else b"")


def ledger(*answers: Answer | Exception) -> tuple[LedgerClient, Canned]:
    client = LedgerClient("http://ledger.test/", token="t0k3n")
    canned = Canned(*answers)
    client.http.request = canned  # type: ignore[method-assign]
    return client, canned


def balance(*answers: Answer | Exception) -> tuple[HttpBalance, Canned]:
    client = HttpBalance("http://balance.test")
    canned = Canned(*answers)
    client.http.request = canned  # type: ignore[method-assign]
    return client, canned


APPENDED = {"event_id": "e1", "topic": "ledger.exchanges", "partition": 2, "offset": 41, "id": "x-00ff"}


def test_record_exchange_sends_token_key_and_body() -> None:
    client, canned = ledger(response(201, APPENDED))
    answer = client.record_exchange({"giver": "ada"}, key="k-1")
    assert answer.id == "x-00ff" and answer.offset == 41
    (call,) = canned.calls
    assert (call["method"], call["url"]) == ("POST", "http://ledger.test/v1/exchanges")
    assert call["headers"] == {"Idempotency-Key": "k-1"}
    assert call["json"] == {"giver": "ada"}
    assert client.http.headers["Authorization"] == "Bearer t0k3n"  # on every call, by the transport


def test_transitions_and_directory_commands_use_the_spec_paths() -> None:
    client, canned = ledger(*[response(201, APPENDED) for _ in range(5)])
    client.acknowledge("x-1", by="ben", thanks="ta", shared=True, key="a")
    client.dispute("x-1", by="ben", reason="no", key="b")
    client.withdraw("x-1", by="ada", key="c")
    client.declare_capacity("ada", weekly_hours=None, key="d")
    client.change_availability("ada", status="paused", paused_until=date(2025, 7, 1), key="e")
    assert [(c["method"], c["url"].removeprefix("http://ledger.test")) for c in canned.calls] == [
        ("POST", "/v1/exchanges/x-1/acknowledge"), ("POST", "/v1/exchanges/x-1/dispute"),
        ("POST", "/v1/exchanges/x-1/withdraw"), ("PUT", "/v1/members/ada/capacity"),
        ("PUT", "/v1/members/ada/availability")]
    assert canned.calls[0]["json"] == {"by": "ben", "thanks": "ta", "shared": True}
    assert canned.calls[3]["json"] == {"weekly_hours": None}
    assert canned.calls[4]["json"] == {"status": "paused", "paused_until": "2025-07-01"}


def test_ids_cannot_escape_their_path_segment() -> None:
    client, canned = ledger(response(201, APPENDED))
    client.withdraw("../members/x?y", by="ada", key="k")
    assert canned.calls[0]["url"] == "http://ledger.test/v1/exchanges/..%2Fmembers%2Fx%3Fy/withdraw"


def test_ledger_errors_map_to_exceptions() -> None:
    client, _ = ledger(
        response(422, {"errors": [{"field": "minutes", "message": "minutes must be at most 1440."}]}),
        response(404, {"error": "unknown exchange x-9."}),
        response(409, {"error": "the exchange is no longer recorded."}),
        response(503, {"error": "Kafka is unreachable."}, {"Retry-After": "7"}),
        response(401, {"error": "wrong token"}),
        NewConnectionError(None, "refused"),  # type: ignore[arg-type]
    )
    with pytest.raises(Invalid) as invalid:
        client.record_exchange({}, key="k")
    assert [(e.field, e.message) for e in invalid.value.errors] == [("minutes", "minutes must be at most 1440.")]
    with pytest.raises(NotFound, match="unknown exchange"):
        client.withdraw("x-9", by="ada", key="k")
    with pytest.raises(Conflict, match="no longer recorded"):
        client.withdraw("x-9", by="ada", key="k")
    with pytest.raises(Unavailable) as unavailable:
        client.withdraw("x-9", by="ada", key="k")
    assert unavailable.value.retry_after == 7 and unavailable.value.service == "ledger"
    with pytest.raises(Unavailable, match="answered 401"):  # misconfigured token: logged, "try again" shown
        client.withdraw("x-9", by="ada", key="k")
    with pytest.raises(Unavailable, match="did not answer"):
        client.withdraw("x-9", by="ada", key="k")


def test_only_an_answer_we_can_trust_says_nothing_was_done() -> None:
    refused = MaxRetryError(None, "/v1/exchanges", NewConnectionError(None, "refused"))  # type: ignore[arg-type]
    client, _ = ledger(
        refused,
        ConnectTimeoutError("connect timed out"),
        response(503, {"error": "Kafka is unreachable."}),
        ReadTimeoutError(None, "/v1/exchanges", "read timed out"),  # type: ignore[arg-type]  # sent: may be appended
        ProtocolError("Connection aborted."),  # dropped mid-way
        response(500, {"error": "crashed"}),
        response(504, None),  # a proxy gave up waiting
    )
    for _ in range(3):
        with pytest.raises(Unavailable) as sure:
            client.record_exchange({}, key="k")
        assert not isinstance(sure.value, OutcomeUnknown)
    for _ in range(4):
        with pytest.raises(OutcomeUnknown):
            client.record_exchange({}, key="k")


SUMMARY = {
    "member_id": "ada", "window_days": 28, "from": "2025-05-22", "to": "2025-06-18",
    "given": {"minutes": 120, "count": 2, "pending_minutes": 30, "pending_count": 1},
    "received": {"minutes": 60, "count": 1, "pending_minutes": 0, "pending_count": 0},
    "by_kind": {k: {"given_minutes": 0, "given_count": 0, "received_minutes": 0, "received_count": 0,
                    "pending_given_minutes": 0, "pending_received_minutes": 0}
                for k in ("mentoring", "feedback", "help", "knowledge", "resource", "care")},
    "reciprocity_index": 0.5,
    "capacity": {"weekly_hours": None, "given_last_7_days_minutes": 30, "used_fraction": None},
}
EXCHANGE = {"exchange_id": "x-1", "giver": "ada", "giver_name": "Ada", "receiver": "ben", "receiver_name": "Ben",
            "kind": "help", "minutes": 30, "note": "n", "occurred_on": "2025-06-01", "recorded_by": "ada",
            "recorded_at": "2025-06-01T10:00:00+00:00", "status": "recorded", "thanks": None,
            "dispute_reason": None, "shared_by_recorder": False, "shared_by_acknowledger": False}


def test_balance_shapes_from_the_brief_parse() -> None:
    client, canned = balance(
        response(200, SUMMARY),
        response(200, {"member_id": "ada", "weeks": [{"week_start": "2025-06-02", "given": {"help": 30},
                                                      "received": {}, "pending_given": 0, "pending_received": 0}]}),
        response(200, {"member_id": "ada", "relationships": [
            {"other": "ben", "other_name": "Ben", "given_minutes": 30, "received_minutes": 0, "given_count": 1,
             "received_count": 0, "by_kind": {"help": {"given_minutes": 30, "received_minutes": 0}},
             "last_exchange_on": "2025-06-01"}]}),
        response(200, {"exchanges": [EXCHANGE]}),
        response(200, {"members": [{"id": "ben", "name": "Ben", "email": "b@x.org", "circles": ["garden"],
                                    "role": "member", "weekly_hours": None, "status": "active",
                                    "paused_until": None, "new_field": "ignored"}]}),
        response(200, {"circle_id": "kitchen", "name": "Kitchen", "window_days": 28, "member_count": 2,
                       "private": True, "participation_rate": None, "mutual_ties": None, "gini": None,
                       "cross_circle_breadth": None, "mentoring_minutes": None, "mentoring_count": None,
                       "feedback_cycles": None, "flows": []}),
        response(200, {"generation": 3, "healthy": True, "reason": None, "partitions": [
            {"topic": "ledger.exchanges", "partition": 0, "applied_offset": 5, "end_offset": 7, "lag": 2,
             "last_event_at": None}]}),
    )
    summary = client.summary("ada", "28d")
    assert summary.given.pending_minutes == 30 and summary.from_ == date(2025, 5, 22)
    assert set(summary.by_kind) == {"mentoring", "feedback", "help", "knowledge", "resource", "care"}
    assert client.timeline("ada", weeks=12).weeks[0].given == {"help": 30}
    assert client.relationships("ada")[0].name == "Ben"
    (e,) = client.exchanges("ada", status="recorded", limit=5)
    assert e.counterpart == "ben" and e.name_of("ada") == "Ada"
    assert client.members(q="be")[0].circles == ["garden"]
    assert client.circle_health("kitchen").private
    assert client.projection_status().partitions[0].lag == 2
    assert canned.calls[0]["params"] == {"window": "28d"}
    assert canned.calls[3]["params"] == {"limit": 5, "status": "recorded"}
    assert canned.calls[4]["params"] == {"q": "be"}


def test_an_unexpected_shape_is_unavailable_not_a_crash() -> None:
    client, _ = balance(response(200, {"member_id": "ada"}), response(200, {"nothing": []}),
                        response(200, "not json at all"))
    with pytest.raises(Unavailable, match="unexpected Summary"):
        client.summary("ada")
    with pytest.raises(Unavailable, match="'exchanges' list"):
        client.exchanges("ada")
    with pytest.raises(Unavailable):
        client.members()


def test_dead_letters_and_replay_progress_parse() -> None:
    letter = {"topic": "ledger.exchanges.dlq", "offset": 4, "source_topic": "ledger.exchanges",
              "source_partition": 3, "source_offset": 17, "error": "not JSON: (root): Invalid JSON",
              "key": "x-1", "size": 9, "dead_lettered_at": "2025-06-01T10:00:00+00:00", "redriven": False,
              "redriven_to": None, "added_later": 1}
    client, canned = balance(
        response(200, {"dead_letters": [letter], "counts": {"ledger.exchanges.dlq": 1, "balance.signals.dlq": 0}}),
        response(200, {"generation": 3, "healthy": True, "reason": None, "partitions": [],
                       "building": {"generation": 4, "applied": 50, "end": 200, "progress": 0.25,
                                    "started_at": "2025-06-01T10:00:00+00:00"}}),
        response(200, {"generation": 3, "partitions": []}),  # an older balance: no building field
        response(200, {"counts": {}}),
        response(503, {"error": "dead letters cannot be read: topic x.dlq does not exist (yet)"}),
    )
    found = client.dead_letters(topic="ledger.exchanges", limit=10)
    assert found.total == 1 and found.dead_letters[0].source_position == "ledger.exchanges[3]@17"
    assert canned.calls[0]["params"] == {"limit": 10, "topic": "ledger.exchanges"}
    assert canned.calls[0]["url"] == "http://balance.test/v1/dead-letters"
    building = client.projection_status().building
    assert building is not None and building.percent == 25 and building.end == 200
    assert client.projection_status().building is None
    with pytest.raises(Unavailable, match="'dead_letters' list"):
        client.dead_letters()
    with pytest.raises(Unavailable, match="does not exist"):
        client.dead_letters()


def test_unknown_member_is_not_found() -> None:
    client, _ = balance(response(404, {"error": "unknown member zed"}))
    with pytest.raises(NotFound, match="unknown member zed"):
        client.member("zed")


def test_notify_failed_deliveries() -> None:
    client = HttpNotify("http://notify.test")
    canned = Canned(response(200, {"deliveries": [{"alert_id": "a", "attempts": 3}]}))
    client.http.request = canned  # type: ignore[method-assign]
    assert client.failed_deliveries() == [{"alert_id": "a", "attempts": 3}]
    assert canned.calls[0]["params"] == {"status": "failed"}


def test_health_reasons() -> None:
    client = HttpBalance("http://balance.test")
    client.http.get = lambda *a, **k: response(503, {"status": "unavailable"})  # type: ignore[method-assign]
    assert "answered 503" in (client.health() or "")

    def refuse(*_a: Any, **_k: Any) -> Answer:
        raise NewConnectionError(None, "refused")  # type: ignore[arg-type]

    client.http.get = refuse  # type: ignore[method-assign]
    assert "no answer" in (client.health() or "")
    client.http.get = lambda *a, **k: response(200, {"status": "ok"})  # type: ignore[method-assign]
    assert client.health() is None


def test_ledger_tells_whether_an_exchange_exists() -> None:
    client, canned = ledger(
        response(200, {"exchange_id": "x-1", "giver": "ada", "receiver": "ben", "kind": "help", "minutes": 30,
                       "occurred_on": "2025-03-01", "note": "", "recorded_by": "ada", "shared": False,
                       "giver_circles": [], "receiver_circles": [], "status": "recorded", "recorded_at": None,
                       "settled_by": None, "settled_at": None}),
        response(404, {"error": "there is no exchange 'x-nope'."}),
    )
    found = client.exchange("x-1")
    assert (found.giver, found.receiver, found.status) == ("ada", "ben", "recorded") and found.involves("ben")
    assert canned.calls[0]["method"] == "GET" and canned.calls[0]["url"] == "http://ledger.test/v1/exchanges/x-1"
    with pytest.raises(NotFound):
        client.exchange("x-nope")
