"""Golden example envelopes, one per event type and version, beside the contracts: each must still
decode (old versions through the upcasters), and the newest ones must round-trip unchanged."""

import json

import pytest
from reciprocity.contracts.envelope import ContractError, decode, encode, wrap
from reciprocity.contracts.events import EVENT_TYPES, ExchangeRecorded
from reciprocity.contracts.schemas import GOLDEN_DIR, all_models, file_stem, golden_examples
from reciprocity.contracts.upcasting import upcast


def _golden(stem: str) -> dict:
    return json.loads((GOLDEN_DIR / f"{stem}.json").read_text())


def test_a_golden_file_for_every_event_type_and_version() -> None:
    on_disk = {path.stem for path, _ in golden_examples()}
    assert on_disk == {file_stem(m) for m in all_models()}


@pytest.mark.parametrize("model", all_models(), ids=file_stem)
def test_golden_decodes_to_the_newest_version(model) -> None:
    raw = _golden(file_stem(model))
    assert (raw["type"], raw["version"]) == (model.TYPE, model.VERSION)
    envelope, event = decode(json.dumps(raw))
    newest = EVENT_TYPES[model.TYPE]
    assert type(event) is newest
    assert envelope.key == event.key() == raw["key"]
    # Nothing in the golden payload is dropped on the way: every field it names survives decoding (as the
    # upcasters lift it: a clear text of a version before sealing becomes a clear value).
    _, lifted = upcast(model.TYPE, model.VERSION, raw["payload"])
    for name in raw["payload"]:
        assert event.model_dump(mode="json")[name] == lifted[name], name


@pytest.mark.parametrize("model", list(EVENT_TYPES.values()), ids=file_stem)
def test_newest_golden_round_trips(model) -> None:
    """What a producer writes today for this event is what the golden file holds."""
    raw = _golden(file_stem(model))
    envelope, event = decode(json.dumps(raw))
    again = wrap(event, producer=envelope.producer, event_id=envelope.event_id, occurred_at=envelope.occurred_at)
    assert decode(encode(again)) == (envelope, event)
    assert json.loads(encode(again))["payload"] == raw["payload"]


def test_exchange_recorded_v1_reads_as_v2_not_shared_with_the_same_facts() -> None:
    _, old = decode(json.dumps(_golden("ExchangeRecorded.v1")))
    _, new = decode(json.dumps(_golden("ExchangeRecorded.v2")))
    assert isinstance(old, ExchangeRecorded) and old.VERSION == ExchangeRecorded.VERSION
    assert old.shared is False  # nothing recorded before v2 was agreed to be shared
    assert new.shared is True
    assert old.model_dump(exclude={"shared"}) == new.model_dump(exclude={"shared"})


def test_upcaster_chain_is_pure_and_stops_at_the_newest_version() -> None:
    payload = dict(_golden("ExchangeRecorded.v1")["payload"])
    before = dict(payload)
    version, lifted = upcast("ExchangeRecorded", 1, payload)
    assert version == ExchangeRecorded.VERSION
    assert lifted["shared"] is False
    assert lifted["note"]["alg"] == "none" and lifted["note"]["data"] == before["note"]
    assert payload == before  # the caller's dict is not changed


def test_a_version_newer_than_known_is_a_contract_error() -> None:
    raw = _golden("ExchangeRecorded.v3") | {"version": 4}
    with pytest.raises(ContractError, match="cannot be read"):
        decode(json.dumps(raw))


def test_unknown_type_and_bad_payload_are_contract_errors() -> None:
    with pytest.raises(ContractError, match="unknown event type"):
        decode(json.dumps(_golden("CapacityDeclared.v1") | {"type": "Nope"}))
    bad = _golden("CapacityDeclared.v1")
    bad["payload"]["weekly_hours"] = 500
    with pytest.raises(ContractError, match="invalid CapacityDeclared"):
        decode(json.dumps(bad))
    with pytest.raises(ContractError, match="not JSON"):
        decode(b"{nope")


def test_signal_cleared_v1_reads_as_v2_without_a_reason() -> None:
    from reciprocity.contracts.events import SignalCleared

    _, old = decode(json.dumps(_golden("SignalCleared.v1")))
    _, new = decode(json.dumps(_golden("SignalCleared.v2")))
    assert isinstance(old, SignalCleared) and old.reason is None  # v1 never said why; no guess
    assert new.reason == "paused"


def test_a_correction_carries_what_it_replaced_but_never_the_old_note() -> None:
    from reciprocity.contracts.events import ExchangeCorrected

    _, event = decode(json.dumps(_golden("ExchangeCorrected.v1")))
    assert isinstance(event, ExchangeCorrected)
    assert (event.previous.kind, event.previous.minutes) == ("mentoring", 45) and event.minutes == 60
    assert set(type(event.previous).model_fields) == {"kind", "minutes", "occurred_on"}
