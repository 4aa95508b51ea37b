"""The ledger's application service without Kafka: event ids derived from Idempotency-Keys."""

import uuid

import pytest
from reciprocity.contracts.commands import ChangeCircles, FormCircle, RegisterMember
from reciprocity.contracts.ids import COMMAND_NAMESPACE, command_event_id
from reciprocity.ledger.keystore import KeyStore, make_engine
from reciprocity.ledger.service import KeyReused, Ledger

from tests.support.memory_log import MemoryLog


@pytest.fixture
def ledger(tmp_path) -> Ledger:  # type: ignore[no-untyped-def]
    keys = KeyStore(make_engine(f"sqlite:///{tmp_path}/keys.db"), "a test secret")
    ledger = Ledger(MemoryLog(), keys, bootstrap_servers="unused:9092")  # type: ignore[arg-type]
    ledger.stale_reason = None  # as if loaded from empty topics
    for circle in ("aa", "bb", "cc"):
        run(ledger, FormCircle, {"id": circle, "name": circle.upper()}, key=f"form-{circle}")
    for member in ("ada", "bob"):
        run(ledger, RegisterMember, {"id": member, "name": member.title(), "email": f"{member}@example.org",
                                     "circles": ["aa"]}, key=f"register-{member}")
    return ledger


def run(ledger: Ledger, command, body: dict, *, key: str, target: str | None = None):  # type: ignore[no-untyped-def]
    return ledger.execute(command, body, target=target, key=key, request_fingerprint=f"{key}:{body}")


def test_keys_k_and_k_hash_1_append_distinct_events_and_both_count(ledger: Ledger) -> None:
    log: MemoryLog = ledger.event_log  # type: ignore[assignment]
    before = len(log.records)
    # Two commands of two events each (leave one circle, join another) under keys "K" and "K#1".
    run(ledger, ChangeCircles, {"circles": ["bb"]}, key="K", target="ada")
    run(ledger, ChangeCircles, {"circles": ["cc"]}, key="K#1", target="bob")
    ids = log.event_ids()[before:]
    assert len(ids) == len(set(ids)) == 4
    assert ids == [command_event_id("K", 0), command_event_id("K", 1),
                   command_event_id("K#1", 0), command_event_id("K#1", 1)]
    # The ledger's own state took every event (a shared id used to be applied once only).
    assert ledger.state.members["ada"].circles == ["bb"]
    assert ledger.state.members["bob"].circles == ["cc"]


def test_a_key_whose_event_id_an_old_log_already_holds_is_refused(ledger: Ledger) -> None:
    """A log written before the fix holds later events named uuid5(key + "#1"): a new command whose
    first event would get that id is refused rather than appended and dropped as a repeat."""
    log: MemoryLog = ledger.event_log  # type: ignore[assignment]
    ledger.state.applied.add(uuid.uuid5(COMMAND_NAMESPACE, "OLD#1"))  # the old id of "OLD"'s second event
    before = len(log.records)
    with pytest.raises(KeyReused):
        run(ledger, ChangeCircles, {"circles": ["bb"]}, key="OLD#1", target="ada")
    assert len(log.records) == before and ledger.state.members["ada"].circles == ["aa"]
