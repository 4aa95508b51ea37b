"""Bounds on every value (SPEC): commands refuse what a projection could not apply, with a sentence naming
the field; events already in the log that break a newer bound are cleaned on read, or refused (parked)
where cleaning would change the sums."""

import json
import uuid
from datetime import UTC, date, datetime, timedelta

import pytest
from reciprocity.contracts.bounds import LATEST_EVENT_DAY, MAX_PAUSE_DAYS
from reciprocity.contracts.commands import (
    Acknowledge,
    ChangeAvailability,
    Dispute,
    RecordExchange,
    RegisterMember,
    today_utc,
)
from reciprocity.contracts.envelope import ContractError, decode

from tests.support.command_bodies import errors_of, exchange_body


def test_a_pause_ends_at_most_365_days_ahead() -> None:
    last = today_utc() + timedelta(days=MAX_PAUSE_DAYS)
    assert ChangeAvailability(status="paused", paused_until=last).paused_until == last
    message = errors_of(ChangeAvailability, {"status": "paused", "paused_until": "9999-12-31"})["paused_until"]
    assert message == (f"paused_until can be at most 365 days ahead (until {last.isoformat()}); leave it out to "
                       "pause until you resume.")
    assert "paused_until" in errors_of(ChangeAvailability, {"status": "paused", "paused_until": last + timedelta(1)})


@pytest.mark.parametrize("field,model,body", [
    ("note", RecordExchange, exchange_body()),
    ("thanks", Acknowledge, {"by": "bob-m"}),
    ("reason", Dispute, {"by": "bob-m"}),
])
def test_free_text_keeps_line_breaks_and_refuses_other_control_characters(field, model, body) -> None:
    kept = model.model_validate({**body, field: "thank you\r\nfor the\rhelp\n\n  indented"})
    assert getattr(kept, field) == "thank you\nfor the\nhelp\n\n  indented"
    assert errors_of(model, {**body, field: "a\x00b"}) == {
        field: f"{field} cannot contain control characters other than line breaks (found U+0000)."}
    assert errors_of(model, {**body, field: "a\tb"})[field].endswith("(found U+0009).")
    assert errors_of(model, {**body, field: "a\x9bb"})[field].endswith("(found U+009B).")
    assert errors_of(model, {**body, field: "a\ud800b"}) == {
        field: f"{field} holds a lone surrogate (U+D800), which is not a character; remove it or paste the "
               "text again."}


def test_names_refuse_a_lone_surrogate() -> None:
    assert errors_of(RegisterMember, {"id": "ann-lee", "name": "Ann\udc00", "email": "a@example.org"}) == {
        "name": "name holds a lone surrogate (U+DC00), which is not a character; remove it or paste the text again."}


def _raw(event_type: str, payload: dict, version: int = 1) -> bytes:
    return json.dumps({"event_id": str(uuid.uuid4()), "type": event_type, "version": version,
                       "occurred_at": datetime.now(UTC).isoformat(), "producer": "an-old-ledger",
                       "key": "k-1", "payload": payload}).encode()


def test_an_old_pause_beyond_any_real_date_reads_as_until_resumed() -> None:
    """The ledger once took 9999-12-31, on which balance failed to add a day: now read as open-ended."""
    _, event = decode(_raw("AvailabilityChanged", {"member_id": "ada-l", "status": "paused",
                                                   "paused_until": "9999-12-31"}))
    assert event.status == "paused" and event.paused_until is None
    _, kept = decode(_raw("AvailabilityChanged", {"member_id": "ada-l", "status": "paused",
                                                  "paused_until": str(LATEST_EVENT_DAY)}))
    assert kept.paused_until == LATEST_EVENT_DAY


def _facts(**overrides) -> dict:
    return {"exchange_id": "x-0123456789abcdef", "giver": "ada-l", "receiver": "bob-m", "kind": "care",
            "minutes": 30, "occurred_on": str(date.today()), "giver_circles": [], "receiver_circles": [],
            **overrides}


def test_old_texts_with_control_characters_are_cleaned_on_read() -> None:
    _, recorded = decode(_raw("ExchangeRecorded", {**_facts(), "note": "a\x00b\r\nc\td", "recorded_by": "ada-l",
                                                   "shared": False}, version=2))
    assert recorded.note.text == "a\ufffdb\nc\ufffdd"  # lifted to a clear value of v3
    _, member = decode(_raw("MemberRegistered", {"member_id": "ada-l", "name": "Ada\nLovelace\x00",
                                                 "email": "ada@example.org", "circles": []}))
    assert member.name.text == "Ada Lovelace\ufffd"
    _, thanked = decode(_raw("ExchangeAcknowledged", {**_facts(), "by": "bob-m", "thanks": "\x07ta"}))
    assert thanked.thanks.text == "\ufffdta"
    # A lone surrogate is not even JSON text to the parser (no producer could write one: encoding fails).
    with pytest.raises(ContractError, match="not JSON"):
        decode(_raw("ExchangeAcknowledged", {**_facts(), "by": "bob-m", "thanks": "\ud800"}))


@pytest.mark.parametrize("day", ["0001-01-01", "9999-12-31"])
def test_an_exchange_day_out_of_any_bound_is_refused_on_read(day: str) -> None:
    """Moving it to another day would change the sums: the consumer parks it instead."""
    with pytest.raises(ContractError, match="occurred_on"):
        decode(_raw("ExchangeRecorded", {**_facts(occurred_on=day), "note": "", "recorded_by": "ada-l"}, version=2))


def test_a_signal_with_a_ratio_of_nan_is_refused_on_read() -> None:
    payload = {"member_id": "ada-l", "circles": [], "window_start": "2026-01-01", "window_end": "2026-01-28",
               "reason": "ratio", "given_minutes": 300, "received_minutes": 0, "ratio": float("nan"),
               "given_last_7_days": 0, "weekly_capacity_minutes": None}
    with pytest.raises(ContractError, match="ratio"):
        decode(_raw("MemberOverextended", payload))


def test_a_circle_policy_is_bounded_in_commands_but_an_old_one_still_reads() -> None:
    from reciprocity.contracts.commands import FormCircle

    assert errors_of(FormCircle, {"id": "ops", "name": "Ops", "policy": {
        "overextension_ratio": 1e308, "overextension_min_given_minutes": 10**20}}) == {
        "policy.overextension_ratio": "overextension_ratio must be at most 100.",
        "policy.overextension_min_given_minutes": "overextension_min_given_minutes must be at most 40320."}
    _, formed = decode(_raw("CircleFormed", {"circle_id": "ops", "name": "Ops", "parent": None,
                                             "policy": {"overextension_ratio": 1000.0}}))
    assert formed.policy is not None and formed.policy.overextension_ratio == 1000.0
