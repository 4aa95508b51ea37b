"""Upcast on read: old event payloads are lifted version by version to the newest before validation.

Each step is a pure function of the raw payload dict registered under (type, from_version); the chain
v1 -> v2 -> ... runs until no step is left. Producers never write old versions.
"""

from collections.abc import Callable
from typing import Any

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
