"""Upcast on read: old event payloads are lifted version by version to the newest before validation.

Each step is a pure function of the raw payload dict registered under (type, from_version); the chain
v1 -> v2 -> ... runs until no step is left. Producers never write old versions.
"""

from collections.abc import Callable
from typing import Any

from pydantic import BaseModel

Payload = dict[str, Any]
Upcaster = Callable[[Payload], Payload]

_UPCASTERS: dict[tuple[str, int], Upcaster] = {}


def upcaster(event_type: str, from_version: int) -> Callable[[Upcaster], Upcaster]:
    def register(fn: Upcaster) -> Upcaster:
        _UPCASTERS[(event_type, from_version)] = fn
        return fn

    return register


def has_upcaster(event_type: str, version: int) -> bool:
    """Whether a payload of `version` is lifted further on read."""
    return (event_type, version) in _UPCASTERS


def upcast(event_type: str, version: int, payload: Payload) -> tuple[int, Payload]:
    """Lift `payload` from `version` to the newest version known; return (new_version, payload)."""
    while (step := _UPCASTERS.get((event_type, version))) is not None:
        payload = step(dict(payload))
        version += 1
    return version, payload


@upcaster("ExchangeRecorded", 1)
def exchange_recorded_v1_to_v2(payload: Payload) -> Payload:
    # v1 predates the appreciation wall: nothing recorded then was agreed to be shared.
    payload.setdefault("shared", False)
    return payload


@upcaster("SignalCleared", 1)
def signal_cleared_v1_to_v2(payload: Payload) -> Payload:
    # v1 did not say why a signal cleared: None, not a guess (a pause and a rebalance look alike there).
    payload.setdefault("reason", None)
    return payload


# --- before sealing (contracts/sealed.py) -----------------------------------------------------------------
# Old versions held personal values in clear text. Read from a log that was not migrated yet, they are
# lifted to the sealed versions as clear (`alg` "none") values, bound to the same members a sealed value
# would be, so every projection treats them alike and blanks them once one of those members is forgotten.
# This alone does not take the clear text out of the log: the migration copies old topics into sealed
# ones (`reciprocity.ledger.migrate_sealing`, README "Forgetting a member").


def _clear(text: str, to: list[str]) -> dict[str, Any]:
    return {"alg": "none", "to": list(dict.fromkeys(to)), "iv": "", "data": text}


def _checked(version: type[BaseModel], payload: Payload) -> Payload:
    """An old payload keeps the bounds of its own version (a name on one line, a valid address, a note
    of at most 500 characters): it is read by its frozen model (which cleans what the bounds clean on
    read) before its values are wrapped."""
    dumped: Payload = version.model_validate(payload).model_dump(mode="json")
    return dumped


def _pair(payload: Payload) -> list[str]:
    return [payload["giver"], payload["receiver"]]


def _wrap_optional(payload: Payload, field: str) -> Payload:
    text = payload.get(field) or ""
    payload[field] = _clear(text, _pair(payload)) if text else None
    return payload


@upcaster("MemberRegistered", 1)
def member_registered_v1_to_v2(payload: Payload) -> Payload:
    from .legacy import MemberRegisteredV1

    payload = _checked(MemberRegisteredV1, payload)
    for field in ("name", "email"):
        payload[field] = _clear(payload[field], [payload["member_id"]])
    return payload


@upcaster("ExchangeRecorded", 2)
def exchange_recorded_v2_to_v3(payload: Payload) -> Payload:
    from .legacy import ExchangeRecordedV2

    return _wrap_optional(_checked(ExchangeRecordedV2, payload), "note")


@upcaster("ExchangeAcknowledged", 1)
def exchange_acknowledged_v1_to_v2(payload: Payload) -> Payload:
    from .legacy import ExchangeAcknowledgedV1

    return _wrap_optional(_checked(ExchangeAcknowledgedV1, payload), "thanks")


@upcaster("ExchangeDisputed", 1)
def exchange_disputed_v1_to_v2(payload: Payload) -> Payload:
    from .legacy import ExchangeDisputedV1

    payload = _checked(ExchangeDisputedV1, payload)
    payload["reason"] = _clear(payload["reason"], _pair(payload))
    return payload


@upcaster("ExchangeCorrected", 1)
def exchange_corrected_v1_to_v2(payload: Payload) -> Payload:
    from .legacy import ExchangeCorrectedV1

    return _wrap_optional(_checked(ExchangeCorrectedV1, payload), "note")
