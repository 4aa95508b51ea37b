"""Crypto-shredding: sealed personal values, the key store, the ledger writing only sealed values."""

from __future__ import annotations

import json
import os
import stat
import uuid

import pytest
import sqlalchemy as sa
from reciprocity.common.sealing import KeysUnavailable, Opener, SealBroken
from reciprocity.contracts.commands import (
    Acknowledge,
    Dispute,
    ForgetMember,
    FormCircle,
    RecordExchange,
    RegisterMember,
)
from reciprocity.contracts.envelope import ContractError, decode
from reciprocity.contracts.events import ExchangeAcknowledged, ExchangeDisputed, ExchangeRecorded, MemberRegistered
from reciprocity.contracts.schemas import GOLDEN_DIR
from reciprocity.contracts.sealed import Sealed
from reciprocity.ledger.handlers import Conflict, InvalidCommand
from reciprocity.ledger.keystore import KeyStore, KeyStoreBroken, MemberForgottenError, make_engine
from reciprocity.ledger.service import Ledger
from reciprocity.messaging.poison import is_infrastructure_failure

from tests.support.golden_keys import golden_opener, golden_sealer
from tests.support.memory_log import MemoryLog


def _golden(stem: str) -> bytes:
    return (GOLDEN_DIR / f"{stem}.json").read_bytes()


def _open(stem: str, forgotten: tuple[str, ...] = ()):  # type: ignore[no-untyped-def]
    envelope, event = decode(_golden(stem))
    return golden_opener(forgotten).open_event(event, str(envelope.event_id))


# --- golden files: the sealed versions hold what the clear ones held ------------------------------------


@pytest.mark.parametrize(("new", "old", "fields"), [
    ("MemberRegistered.v2", "MemberRegistered.v1", ("name", "email")),
    ("ExchangeRecorded.v3", "ExchangeRecorded.v2", ("note",)),
    ("ExchangeAcknowledged.v2", "ExchangeAcknowledged.v1", ("thanks",)),
    ("ExchangeDisputed.v2", "ExchangeDisputed.v1", ("reason",)),
    ("ExchangeCorrected.v2", "ExchangeCorrected.v1", ("note",)),
])
def test_a_sealed_golden_opens_to_the_clear_text_of_its_older_version(new: str, old: str,
                                                                      fields: tuple[str, ...]) -> None:
    raw = _golden(new)
    clear = json.loads(_golden(old))["payload"]
    opened = _open(new)
    for field in fields:
        assert clear[field] and clear[field].encode() not in raw  # not in the record in any form
        assert getattr(opened, field).text == clear[field]
    # The old version, upcast, reads as the same event once opened.
    envelope, lifted = decode(_golden(old))
    assert golden_opener().open_event(lifted, str(envelope.event_id)).model_dump(
        exclude={*fields, "shared"}) == opened.model_dump(exclude={*fields, "shared"})


def test_a_value_about_two_members_is_unreadable_once_either_is_forgotten() -> None:
    assert _open("ExchangeRecorded.v3").note.text == "Walked through the deploy pipeline together"
    assert _open("ExchangeRecorded.v3", ("amara-okafor",)).note.text == ""
    assert _open("ExchangeRecorded.v3", ("lukas-brandt",)).note.text == ""
    assert _open("ExchangeRecorded.v3", ("someone-else",)).note.text != ""
    forgotten = _open("MemberRegistered.v2", ("lukas-brandt",))
    assert (forgotten.name.text, forgotten.email.text) == ("", "")


def test_clear_values_of_old_versions_are_blanked_for_a_forgotten_member_too() -> None:
    envelope, event = decode(_golden("ExchangeDisputed.v1"))
    assert event.reason.is_clear
    opener = Opener(None)  # clear values need no key source
    assert opener.open_event(event, str(envelope.event_id)).reason.text.startswith("We planned it")
    opener.forget(event.giver)
    assert opener.open_event(event, str(envelope.event_id)).reason.text == ""


def test_a_batch_passes_clear_values_on_as_they_are_and_blanks_those_about_a_forgotten_member() -> None:
    disputed = decode(_golden("ExchangeDisputed.v1"))
    recorded = decode(_golden("ExchangeRecorded.v1"))
    withdrawn = decode(_golden("ExchangeWithdrawn.v1"))
    items = [(str(envelope.event_id), event) for envelope, event in (disputed, recorded, withdrawn)]
    opener = Opener(None)
    opened = opener.open_events(items)
    assert all(o is event for o, (_, event) in zip(opened, items, strict=True))  # nothing to open: no copies
    opener.forget(disputed[1].giver)
    opened = opener.open_events(items)
    assert opened[0].reason.text == "" and opened[0].model_dump(exclude={"reason"}) == disputed[1].model_dump(
        exclude={"reason"})
    assert opened[2] is withdrawn[1]
    # The envelope's UUID does as an id: made text for the events that are opened.
    envelope, sealed = decode(_golden("ExchangeRecorded.v3"))
    assert golden_opener().open_events([(envelope.event_id, sealed)])[0].note.text == (
        "Walked through the deploy pipeline together")


def test_a_sealed_value_is_bound_to_its_event_field_and_members() -> None:
    envelope, event = decode(_golden("ExchangeRecorded.v3"))
    opener = golden_opener()
    with pytest.raises(SealBroken):  # copied into another event
        opener.open_event(event, str(uuid.uuid4()))
    with pytest.raises(SealBroken):  # moved to another field
        opener.open(event.note, str(envelope.event_id), "thanks")
    tampered = event.note.model_copy(update={"data": "A" + event.note.data[1:]})
    with pytest.raises(SealBroken):
        opener.open(tampered, str(envelope.event_id), "note")


def test_the_contract_refuses_a_value_sealed_for_the_wrong_members() -> None:
    raw = json.loads(_golden("ExchangeRecorded.v3"))
    raw["payload"]["note"]["to"] = ["amara-okafor"]
    with pytest.raises(ContractError, match="note must be sealed for"):
        decode(json.dumps(raw))


def test_an_old_version_keeps_its_own_bounds_when_upcast() -> None:
    raw = json.loads(_golden("MemberRegistered.v1"))
    raw["payload"]["email"] = "not an address"
    with pytest.raises(ContractError, match="MemberRegistered v1"):
        decode(json.dumps(raw))


def test_a_sealed_value_without_a_key_source_is_an_infrastructure_failure_not_a_blank() -> None:
    envelope, event = decode(_golden("ExchangeRecorded.v3"))
    with pytest.raises(KeysUnavailable) as raised:
        Opener(None).open_event(event, str(envelope.event_id))
    assert is_infrastructure_failure(raised.value)  # the partition stops and retries; nothing is parked
    assert not is_infrastructure_failure(SealBroken("altered"))  # that one is the record's fault


def test_the_opener_fetches_a_batch_of_keys_once_and_caches_them() -> None:
    opener = golden_opener()
    items = [(str(decode(_golden(s))[0].event_id), decode(_golden(s))[1])
             for s in ("ExchangeRecorded.v3", "ExchangeAcknowledged.v2", "ExchangeDisputed.v2", "MemberRegistered.v2")]
    opened = opener.open_events(items)
    assert opener.fetches == 1
    assert opened[1].thanks.text == "That session unblocked my whole week, thank you!"
    opener.open_events(items)
    assert opener.fetches == 1


def test_keys_expire_from_the_cache_so_a_destroyed_key_stops_opening() -> None:
    now = [0.0]
    source = golden_opener()._source  # GoldenKeys
    opener = Opener(source, ttl_s=30, clock=lambda: now[0])
    envelope, event = decode(_golden("ExchangeRecorded.v3"))
    assert opener.open_event(event, str(envelope.event_id)).note.text
    source.forgotten.add("amara-okafor")  # type: ignore[union-attr]
    now[0] = 31.0
    assert opener.open_event(event, str(envelope.event_id)).note.text == ""


# --- the key store ---------------------------------------------------------------------------------------


def test_the_key_store_creates_keeps_and_destroys_keys(tmp_path) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path / "keys.db"
    store = KeyStore(make_engine(f"sqlite:///{path}"), "a test secret")
    key = store.key_for("ada")
    assert store.key_for("ada") == key and len(key) == 32
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    with store.engine.connect() as conn:  # closed: an open transaction would hold the database's lock
        wrapped = conn.execute(sa.text("SELECT wrapped_key FROM ledger_member_keys")).scalar_one()
    assert key not in path.read_bytes()  # stored wrapped, never as is
    assert store.destroy("ada", by="noor") is True
    assert store.destroy("ada", by="noor") is False
    assert store.member_keys(["ada", "bob"]) == {"ada": None}
    with pytest.raises(MemberForgottenError):
        store.key_for("ada")
    assert wrapped not in path.read_bytes()  # zeroed (secure_delete), not left in a free page
    assert [(f.member_id, f.forgotten_by) for f in store.forgettings()] == [("ada", "noor")]


def test_the_key_store_refuses_another_secret(tmp_path) -> None:  # type: ignore[no-untyped-def]
    url = f"sqlite:///{tmp_path}/keys.db"
    KeyStore(make_engine(url), "the right secret").key_for("ada")
    with pytest.raises(KeyStoreBroken, match="LEDGER_KEYS_SECRET"):
        KeyStore(make_engine(url), "another secret").key_for("ada")


# --- the ledger writes only sealed values -----------------------------------------------------------------


@pytest.fixture
def ledger(tmp_path) -> Ledger:  # type: ignore[no-untyped-def]
    keys = KeyStore(make_engine(f"sqlite:///{tmp_path}/keys.db"), "a test secret")
    ledger = Ledger(MemoryLog(), keys, bootstrap_servers="unused:9092")  # type: ignore[arg-type]
    ledger.stale_reason = None
    run(ledger, FormCircle, {"id": "aa", "name": "Circle A"})
    for member, role in (("ada", "member"), ("bob", "member"), ("noor", "operator")):
        run(ledger, RegisterMember, {"id": member, "name": f"{member.title()} Secretname", "role": role,
                                     "email": f"{member}.secret@example.org", "circles": ["aa"]})
    return ledger


def run(ledger: Ledger, command, body: dict, target: str | None = None):  # type: ignore[no-untyped-def]
    key = str(uuid.uuid4())
    return ledger.execute(command, body, target=target, key=key, request_fingerprint=key)


def _exchange(ledger: Ledger, note: str) -> str:
    answer = run(ledger, RecordExchange, {"giver": "ada", "receiver": "bob", "kind": "help", "minutes": 30,
                                          "note": note, "occurred_on": "2026-11-30", "recorded_by": "ada"})
    return answer.body["id"]


def test_the_ledger_appends_no_clear_personal_value(ledger: Ledger) -> None:
    first = _exchange(ledger, "Secret note about Bob's burnout")
    run(ledger, Acknowledge, {"by": "bob", "thanks": "Secret thanks"}, first)
    run(ledger, Dispute, {"by": "bob", "reason": "Secret reason"}, _exchange(ledger, "another secret note"))
    log: MemoryLog = ledger.event_log  # type: ignore[assignment]
    raw = b"\n".join(r.value for r in log.records)
    for secret in (b"Secret", b"secret", b"@example.org"):
        assert secret not in raw
    decoded = [decode(r.value) for r in log.records]
    types = {type(e) for _, e in decoded}
    assert {MemberRegistered, ExchangeRecorded, ExchangeAcknowledged, ExchangeDisputed} <= types
    opener = Opener(ledger.keys)
    notes = [opener.open_event(e, str(env.event_id)) for env, e in decoded if isinstance(e, ExchangeRecorded)]
    assert [n.note.text for n in notes] == ["Secret note about Bob's burnout", "another secret note"]
    # The ledger's own state holds the clear values it checks commands against.
    assert ledger.state.members["ada"].email == "ada.secret@example.org"
    assert ledger.state.exchanges[first].note == "Secret note about Bob's burnout"


def test_forgetting_needs_an_operator_and_the_id_again_then_destroys_the_key(ledger: Ledger) -> None:
    xid = _exchange(ledger, "a note")
    with pytest.raises(InvalidCommand, match="confirm"):
        run(ledger, ForgetMember, {"by": "noor", "confirm": "bob"}, "ada")
    with pytest.raises(InvalidCommand, match="only an operator"):
        run(ledger, ForgetMember, {"by": "bob", "confirm": "ada"}, "ada")
    assert ledger.keys.member_keys(["ada"])["ada"] is not None
    answer = run(ledger, ForgetMember, {"by": "noor", "confirm": "ada"}, "ada")
    assert answer.status == 201
    assert ledger.keys.member_keys(["ada"]) == {"ada": None}
    assert "ada" not in ledger.state.members and "ada.secret@example.org" not in ledger.state.emails
    assert ledger.state.exchanges[xid].note == ""  # still counted, words gone
    assert run(ledger, ForgetMember, {"by": "noor", "confirm": "ada"}, "ada").status == 200  # once only
    with pytest.raises(Conflict, match="forgotten"):
        run(ledger, RegisterMember, {"id": "ada", "name": "Ada", "email": "ada2@example.org", "circles": []})
    with pytest.raises(InvalidCommand, match="former member"):
        run(ledger, Acknowledge, {"by": "bob", "thanks": "thanks!"}, xid)
    assert run(ledger, Acknowledge, {"by": "bob"}, xid).status == 201  # without words, it can be settled
    # Her address is free again, and the events about her in the log no longer open.
    log: MemoryLog = ledger.event_log  # type: ignore[assignment]
    opener = Opener(ledger.keys)
    for record in log.records:
        envelope, event = decode(record.value)
        opened = opener.open_event(event, str(envelope.event_id))
        if isinstance(opened, MemberRegistered) and opened.member_id == "ada":
            assert (opened.name.text, opened.email.text) == ("", "")
        if isinstance(opened, ExchangeRecorded):
            assert opened.note is None or opened.note.text == ""


def test_clear_placeholders_are_what_handlers_build() -> None:
    value = Sealed.clear("x", ["ada", "ada"])
    assert value.to == ["ada"] and value.is_clear
    sealed = golden_sealer().seal("x", ["ada"], "e1", "name")
    with pytest.raises(ValueError, match="open the event first"):
        _ = sealed.text
