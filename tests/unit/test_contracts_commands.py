"""Stateless command rules and the sentences a rejected body gets, field by field."""

import uuid
from datetime import timedelta

import pytest
from reciprocity.contracts.commands import (
    ChangeAvailability,
    FormCircle,
    RecordExchange,
    RegisterMember,
    SetLeads,
    field_name,
    today_utc,
)
from reciprocity.contracts.ids import COMMAND_NAMESPACE, EXCHANGE_ID_PATTERN, command_event_id, exchange_id_for

from tests.support.command_bodies import errors_of, exchange_body


def test_valid_exchange_passes() -> None:
    cmd = RecordExchange.model_validate(exchange_body(note="  thanks  "))
    assert cmd.note == "thanks" and cmd.shared is False


@pytest.mark.parametrize(("overrides", "field", "words"), [
    ({"receiver": "ada-l"}, "receiver", "two different members"),
    ({"recorded_by": "cleo"}, "recorded_by", "the giver or the receiver"),
    ({"minutes": 0}, "minutes", "at least 1"),
    ({"minutes": 1441}, "minutes", "at most 1440"),
    ({"minutes": "lots"}, "minutes", "whole number"),
    ({"note": "x" * 501}, "note", "at most 500 characters (this one has 501)"),
    ({"kind": "gossip"}, "kind", "'mentoring', 'feedback', 'help', 'knowledge', 'resource' or 'care'"),
    ({"occurred_on": str(today_utc() + timedelta(days=2))}, "occurred_on", "cannot be in the future"),
    ({"occurred_on": str(today_utc() - timedelta(days=366))}, "occurred_on", "more than 365 days ago"),
    ({"occurred_on": "last tuesday"}, "occurred_on", "a date written like"),
    ({"giver": "Ada"}, "giver", "not a valid id"),
    ({"surprise": 1}, "surprise", "not a field this request takes"),
])
def test_exchange_rules_name_the_field(overrides, field, words) -> None:
    errors = errors_of(RecordExchange, exchange_body(**overrides))
    assert field in errors, errors
    assert words in errors[field]


def test_missing_fields_are_all_reported_at_once() -> None:
    errors = errors_of(RecordExchange, {})
    assert set(errors) == {"giver", "receiver", "kind", "minutes", "occurred_on", "recorded_by"}
    assert errors["giver"] == "giver is required."


def test_a_day_365_back_and_today_are_fine() -> None:
    RecordExchange.model_validate(exchange_body(occurred_on=str(today_utc() - timedelta(days=365))))
    RecordExchange.model_validate(exchange_body(occurred_on=str(today_utc())))


def test_member_rules() -> None:
    errors = errors_of(RegisterMember, {"id": "x", "name": " ", "email": "not-an-address", "circles": ["a1", "a1"],
                                      "role": "boss"})
    assert set(errors) == {"id", "name", "email", "circles", "role"}
    assert "valid address" in errors["email"]
    assert "listed twice" in errors["circles"]
    assert errors["name"] == "name cannot be empty."


def test_leads_listed_twice_and_field_names_of_list_items() -> None:
    assert "listed twice" in errors_of(SetLeads, {"leads": ["ada-l", "ada-l"]})["leads"]
    assert "leads[1]" in errors_of(SetLeads, {"leads": ["ada-l", "B"]})
    assert field_name(("policy", "overextension_ratio")) == "policy.overextension_ratio"
    assert field_name(()) == "body"


def test_availability_rules() -> None:
    assert "only goes with status 'paused'" in errors_of(
        ChangeAvailability, {"status": "active", "paused_until": str(today_utc() + timedelta(days=3))})["paused_until"]
    assert "in the past" in errors_of(
        ChangeAvailability, {"status": "paused", "paused_until": str(today_utc() - timedelta(days=3))})["paused_until"]
    ChangeAvailability.model_validate({"status": "paused", "paused_until": None})


def test_circle_policy_override_rules() -> None:
    errors = errors_of(FormCircle, {"id": "ops", "name": "Ops", "policy": {"overextension_ratio": 1}})
    assert errors == {"policy.overextension_ratio": "overextension_ratio must be more than 1."}


def test_exchange_id_is_derived_from_the_key() -> None:
    import re

    assert exchange_id_for("k-1") == exchange_id_for("k-1") != exchange_id_for("k-2")
    assert re.match(EXCHANGE_ID_PATTERN, exchange_id_for("k-1"))
    assert re.match(EXCHANGE_ID_PATTERN, exchange_id_for(None))
    assert command_event_id("k-1") != command_event_id("k-1", 1)


def test_event_ids_of_keys_k_and_k_hash_1_never_meet() -> None:
    """The index-th event of "K" used to be the first event of "K#index"."""
    of_k = {command_event_id("K", i) for i in range(4)}
    of_k1 = {command_event_id("K#1", i) for i in range(4)}
    assert len(of_k) == len(of_k1) == 4 and not of_k & of_k1
    # The first event keeps the id it always had: a retry after the upgrade still finds its first answer.
    assert command_event_id("K") == command_event_id("K", 0) == uuid.uuid5(COMMAND_NAMESPACE, "K")


@pytest.mark.parametrize("name", ["Ann\nLee", "Ann\r\nLee", "Ann\tLee", "Ann\x00Lee", "Ann\x1bLee", "Ann\u2028Lee",
                                  "Ann\x85Lee"])
def test_names_refuse_line_breaks_and_control_characters(name: str) -> None:
    bad = next(c for c in name[3:] if not c.isalpha())
    message = f"name cannot contain line breaks, tabs or other control characters (found U+{ord(bad):04X})."
    assert errors_of(RegisterMember, {"id": "ann-lee", "name": name, "email": "ann@example.org"}) == {"name": message}
    assert errors_of(FormCircle, {"id": "ops", "name": name}) == {"name": message}


def test_names_keep_spaces_accents_and_punctuation() -> None:
    assert RegisterMember(id="mira-j", name="Mira Jovanović-O'Neil (she/her)", email="m@example.org").name == (
        "Mira Jovanović-O'Neil (she/her)")
    assert FormCircle(id="ops", name="  Ops & Care  ").name == "Ops & Care"  # outer whitespace is stripped
