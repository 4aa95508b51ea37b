"""The fast decoder (contracts/fastcodec.py) and the pydantic path agree: on every golden file and on
generated records, valid and not, whatever the fast path accepts, pydantic accepts with equal values,
and whatever pydantic rejects, the fast path rejects (declines: `decode` then raises as before). On
records of the newest versions as our producers write them the fast path is the one taken."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, date, datetime, timedelta, timezone
from typing import Any

import msgspec
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import BaseModel, Field, field_validator
from reciprocity.contracts import fastcodec
from reciprocity.contracts.envelope import ContractError, decode, decode_validated, encode, wrap
from reciprocity.contracts.events import (
    EVENT_TYPES,
    DirectoryEvent,
    Event,
    ExchangeAcknowledged,
    ExchangeDisputed,
    ExchangeRecorded,
    ExchangeWithdrawn,
)
from reciprocity.contracts.schemas import golden_examples
from reciprocity.contracts.sealed import Sealed

from bench.workload import Organisation
from tests.support.golden_keys import golden_sealer


def _fields_set(model: BaseModel) -> set[str]:
    return set(model.model_fields_set)


# The checked structs of every event type (balance's consumer takes only ExchangeRecorded's).
_CHECKED = fastcodec.checked_decoder(*EVENT_TYPES.values())


def _plain(value: Any) -> Any:
    """A checked struct's values as a model's model_dump() gives them (nested structs as dicts)."""
    if isinstance(value, msgspec.Struct):
        return {name: _plain(getattr(value, name)) for name in value.__struct_fields__}
    return [_plain(v) for v in value] if isinstance(value, list) else value


def assert_checked_agrees(checked: tuple[Any, Any], reference: tuple[Any, Any]) -> None:
    (ce, cv), (pe, pv) = checked, reference
    assert type(cv).MODEL is type(pv) and _plain(cv) == pv.model_dump()
    assert cv.key() == pv.key()
    assert (ce.event_id, ce.type, ce.version, ce.occurred_at, ce.producer, ce.key) == (
        pe.event_id, pe.type, pe.version, pe.occurred_at, pe.producer, pe.key)
    assert ce.occurred_at.utcoffset() == pe.occurred_at.utcoffset()


def assert_agree(raw: bytes | str) -> tuple[Any, Any] | None:
    """The property: returns what the fast path gave (None if it declined). The checked structs are held
    to the same: whatever they accept, pydantic accepts with equal values."""
    fast = fastcodec.decode_trusted(raw)
    checked = _CHECKED(raw)
    try:
        reference = decode_validated(raw)
    except ContractError:
        assert fast is None, f"fast path accepted what pydantic rejects: {raw!r}"
        assert checked is None, f"a checked struct accepted what pydantic rejects: {raw!r}"
        with pytest.raises(ContractError):
            decode(raw)
        return None
    if checked is not None:
        assert_checked_agrees(checked, reference)
    assert (checked is None) == (fast is None), raw  # the same checks, from the same shapes
    if fast is not None:
        (fe, fv), (pe, pv) = fast, reference
        assert type(fv) is type(pv) and type(fe) is type(pe)
        assert fe == pe and fv == pv, raw
        assert fe.model_dump() == pe.model_dump() and fv.model_dump() == pv.model_dump()
        assert fe.model_dump_json() == pe.model_dump_json() and fv.model_dump_json() == pv.model_dump_json()
        assert _fields_set(fv) == _fields_set(pv) and _fields_set(fe) == _fields_set(pe)
        assert fv.key() == pv.key() and fe.occurred_at == pe.occurred_at and fe.event_id == pe.event_id
        assert fe.occurred_at.utcoffset() == pe.occurred_at.utcoffset()
    assert decode(raw) == reference
    return fast


@pytest.mark.parametrize("path", [p for p, _ in golden_examples()], ids=lambda p: p.stem)
def test_every_golden_file(path) -> None:  # type: ignore[no-untyped-def]
    raw = path.read_bytes()
    fast = assert_agree(raw)
    envelope = json.loads(raw)
    newest = EVENT_TYPES[envelope["type"]].VERSION == envelope["version"]
    if newest and (envelope["type"], envelope["version"]) in fastcodec.FAST:
        assert fast is not None, "a newest-version golden file the fast path declined"
    if not newest:
        assert fast is None  # old versions go through the upcasters


def _sealed(event: Event) -> bytes:
    """As the ledger writes it: personal values sealed (here with the golden keys)."""
    event_id = uuid.uuid4()
    return encode(wrap(golden_sealer().seal_event(event, str(event_id)), producer="ledger", event_id=event_id))


def _workload_records(n: int) -> list[bytes]:
    org = Organisation(n_members=50, n_circles=6, seed=7)
    out = [_sealed(e) for e in org.directory()]
    for x in org.exchanges(n):
        facts = x.model_dump(include=set(ExchangeWithdrawn.model_fields) - {"by"})
        pair = [x.giver, x.receiver]
        out.append(_sealed(x))
        out.append(_sealed(ExchangeAcknowledged(**facts, by=x.receiver, thanks=Sealed.clear("Merci\nbeaucoup ✨", pair),
                                                shared=True)))
        out.append(_sealed(ExchangeDisputed(**facts, by=x.receiver, reason=Sealed.clear("no", pair))))
        out.append(_sealed(ExchangeWithdrawn(**facts, by=x.giver)))
    return out


def test_records_as_our_producers_write_them() -> None:
    records = _workload_records(300)
    declined = [json.loads(raw)["type"] for raw in records if assert_agree(raw) is None]
    # Every record as the ledger writes it takes the fast path, sealed values (nested models) included,
    # and decodes into a checked struct (assert_agree: the two decline together).
    assert declined == [] and len(records) >= 1200
    assert {"ExchangeRecorded", "ExchangeAcknowledged", "ExchangeDisputed", "MemberRegistered"}.isdisjoint(
        fastcodec.DECLINED)


# --- generated records: valid ones mutated in every field, the envelope's included ------------------

_GOLDEN = {json.loads(p.read_bytes())["type"]: json.loads(p.read_bytes()) for p, _ in golden_examples()
           if EVENT_TYPES[json.loads(p.read_bytes())["type"]].VERSION == json.loads(p.read_bytes())["version"]}

_TRICKY_STRINGS = [
    "", "a", "ann", "ann\n", "\nann", "Ann", "an n", "a" * 63, "a" * 64, "a" * 65, "é", "ümit", "x-" + "0" * 16,
    "a" * 500, "a" * 501, "é" * 500, "é" * 501, "\ud800", "line\nbreak", "tab\there", "nul\x00", "😀" * 3,
    "2026-03-01", "2026-02-30", "2026-03-01T00:00:00", "2026-03-01T00:00:00Z", "20260301", "0001-01-01",
    "9999-12-31", "mentoring", "MENTORING", "care ", "true", "1", "5.0", "null", "recorded",
    "active", "paused", "ratio", "overextended", "1899-12-31", "1900-01-01", "2999-12-31", "3000-01-01",
    "a\r\nb", "a\rb", "a\x85b", "a\u2028b", "a\x7fb", "a\x0bb", "\ufffd",
]
_TRICKY_VALUES = [None, True, False, 0, 1, -1, 5, 1440, 1441, 168, 168.5, 1e308, -0.0, 5.0, 2**63, 2**64 + 1,
                  10**30, 0.1, [], ["ann"], ["ann", "ann"], ["Ann"], [1], {}, {"a": 1}, *_TRICKY_STRINGS]
_NESTED_VALUES = [*_TRICKY_VALUES, "A256GCM", "none", "A" * 15, "A" * 16, "A" * 17, "A" * 24, "A" * 25,
                  "x" * 4096, "x" * 4097, 1.5, 1.0, 2, 0.5, float("inf")]
_DATETIMES = [
    "2026-03-01T10:00:00Z", "2026-03-01T10:00:00.123456Z", "2026-03-01T10:00:00.1234567Z",
    "2026-03-01T10:00:00+05:30", "2026-03-01T10:00:00-00:00", "2026-03-01T10:00:00+23:59", "2026-03-01T10:00:00+24:00",
    "2026-03-01T10:00:00", "2026-03-01 10:00:00Z", "2026-03-01T10:00Z", "2026-03-01t10:00:00z",
    "2026-03-01T24:00:00Z", "2026-03-01T23:59:60Z", "0000-01-01T00:00:00Z", "2026-02-29T00:00:00Z",
    "2026-03-01T10:00:00.Z", "2026-03-01T10:00:00,5Z", "1772359200", 1772359200, None,
]
_UUIDS = ["c348f1ab-ac9b-5999-8f21-f708321cfc1a", "C348F1AB-AC9B-5999-8F21-F708321CFC1A",
          "c348f1abac9b59998f21f708321cfc1a", "{c348f1ab-ac9b-5999-8f21-f708321cfc1a}",
          "urn:uuid:c348f1ab-ac9b-5999-8f21-f708321cfc1a", "c348f1ab-ac9b-5999-8f21-f708321cfc1", "", 5, None]


@st.composite
def _mutated(draw: st.DrawFn) -> bytes:
    envelope = json.loads(json.dumps(draw(st.sampled_from(sorted(_GOLDEN.items())))[1]))
    payload = envelope["payload"]
    names = sorted(EVENT_TYPES[envelope["type"]].model_fields)
    for _ in range(draw(st.integers(0, 3))):
        action = draw(st.sampled_from(["set", "set", "set", "drop", "extra", "envelope", "list", "nested", "nested"]))
        if action == "set":
            payload[draw(st.sampled_from(names))] = draw(st.sampled_from(_TRICKY_VALUES) | st.text(max_size=70)
                                                         | st.integers() | st.floats())
        elif action == "drop" and payload:
            payload.pop(draw(st.sampled_from(sorted(payload))))
        elif action == "extra":
            payload[draw(st.sampled_from(["extra", "by", "note", "shared"]))] = draw(st.sampled_from(_TRICKY_VALUES))
        elif action == "nested":  # inside a sealed value (or a circle's policy): what its own checks refuse
            objects = [n for n in names if isinstance(payload.get(n), dict)]
            if objects:
                inner = payload[draw(st.sampled_from(objects))]
                what = draw(st.sampled_from(["set", "set", "drop", "extra", "to"]))
                if what == "set" and inner:
                    value = draw(st.sampled_from(_NESTED_VALUES) | st.text(max_size=30))
                    inner[draw(st.sampled_from(sorted(inner)))] = value
                elif what == "drop" and inner:
                    inner.pop(draw(st.sampled_from(sorted(inner))))
                elif what == "extra":
                    value = draw(st.sampled_from(_NESTED_VALUES))
                    inner[draw(st.sampled_from(["extra", "alg", "iv", "data", "to"]))] = value
                elif what == "to" and isinstance(inner.get("to"), list):  # its members: reordered, repeated, others
                    inner["to"] = draw(st.lists(st.sampled_from([*inner["to"], "ann", "Ann", "bob.b"]), max_size=3))
        elif action == "list":
            lists = [n for n in names if isinstance(payload.get(n), list)]
            if lists:
                payload[draw(st.sampled_from(lists))] = draw(st.lists(st.sampled_from(_TRICKY_STRINGS), max_size=3))
        else:
            field = draw(st.sampled_from(["event_id", "type", "version", "occurred_at", "producer", "key",
                                          "payload", "extra"]))
            envelope[field] = draw({
                "event_id": st.sampled_from(_UUIDS), "occurred_at": st.sampled_from(_DATETIMES),
                "version": st.sampled_from([0, 1, 2, 3, "1", 1.0, True, None]),
                "type": st.sampled_from([*EVENT_TYPES, "", "Unknown", None]),
            }.get(field, st.sampled_from(_TRICKY_VALUES)))
    if draw(st.booleans()):
        return json.dumps(envelope, ensure_ascii=draw(st.booleans())).encode("utf-8", "surrogatepass")
    return json.dumps(envelope).encode()


@settings(max_examples=1500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_mutated())
def test_generated_records_agree(raw: bytes) -> None:
    assert_agree(raw)


@settings(max_examples=300, deadline=None)
@given(at=st.datetimes(min_value=datetime(1, 1, 2), max_value=datetime(9999, 12, 30),
                       timezones=st.sampled_from([UTC, timezone(timedelta(hours=5, minutes=30)),
                                                  timezone(-timedelta(hours=11))])),
       day=st.dates(min_value=date(1900, 1, 1), max_value=date(2999, 12, 31)), minutes=st.integers(1, 1440),
       note=st.text(max_size=500),
       shared=st.booleans())
def test_generated_valid_exchanges_take_the_fast_path(at: datetime, day: date, minutes: int, note: str,
                                                      shared: bool) -> None:
    event = ExchangeRecorded(exchange_id="x-0123456789abcdef", giver="ann", receiver="bob.b", kind="care",
                             minutes=minutes, occurred_on=day, giver_circles=["core"], receiver_circles=[],
                             note=Sealed.clear(note, ["ann", "bob.b"]) if note else None, recorded_by="ann",
                             shared=shared)
    event_id = uuid.uuid4()
    raw = encode(wrap(golden_sealer().seal_event(event, str(event_id)), producer="ledger", event_id=event_id,
                      occurred_at=at))
    fast = assert_agree(raw)
    if "ExchangeRecorded" not in fastcodec.DECLINED:
        assert fast is not None


def test_raw_control_characters_and_duplicate_keys() -> None:
    golden = json.dumps(_GOLDEN["ExchangeRecorded"])
    assert_agree(golden.replace('"Walked', '"Wal\x01ked'))  # unescaped control character: not JSON
    assert_agree(golden.replace('"minutes": 45', '"minutes": 45, "minutes": 2000'))
    assert_agree(golden.replace('"minutes": 45', '"minutes": 2000, "minutes": 45'))
    assert_agree(golden.replace('"version": 2', '"version": 2, "version": 1'))
    assert_agree(golden[:-1])
    assert_agree(b"\xff\xfe")
    assert_agree("[]")


# --- the fallback is automatic: a model the fast path cannot mirror stays on the pydantic path ------


class _Validated(DirectoryEvent):
    TYPE = "Validated"
    member_id: str = Field(min_length=2)

    @field_validator("member_id")
    @classmethod
    def _no_x(cls, value: str) -> str:
        if "x" in value:
            raise ValueError("no x")
        return value

    def key(self) -> str:
        return self.member_id


class _Plain(DirectoryEvent):
    TYPE = "Plain"
    VERSION = 3
    member_id: str = Field(min_length=2)
    count: int | None = Field(default=None, ge=0)

    def key(self) -> str:
        return self.member_id


def test_a_model_with_anything_untranslated_is_declined_and_new_plain_ones_are_fast() -> None:
    fast, declined = fastcodec._build({"Validated": _Validated, "Plain": _Plain})  # type: ignore[dict-item]
    assert "Validated" in declined and ("Plain", 3) in fast

    def raw(type_: str, version: int, payload: dict[str, Any]) -> bytes:
        return json.dumps({"event_id": str(uuid.uuid4()), "type": type_, "version": version,
                           "occurred_at": "2026-03-01T10:00:00Z", "producer": "ledger", "key": "k",
                           "payload": payload}).encode()

    assert fastcodec.decode_trusted(raw("Validated", 1, {"member_id": "xx"}), fast) is None
    _, event = fastcodec.decode_trusted(raw("Plain", 3, {"member_id": "ann"}), fast)  # type: ignore[misc]
    assert isinstance(event, _Plain) and event == _Plain(member_id="ann") and event.model_fields_set == {"member_id"}
    assert fastcodec.decode_trusted(raw("Plain", 2, {"member_id": "ann"}), fast) is None  # not its newest
    assert fastcodec.decode_trusted(raw("Plain", 3, {"member_id": "ann", "count": -1}), fast) is None
