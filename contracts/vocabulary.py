"""The product's words, each written once: exchange kinds, exchange statuses, a member's availability, the
kinds of signal. Every service, the web, the CLI and the tests use these names instead of retyping them;
the events (events.py) are built from them, so a word added here is one the contracts accept."""

from __future__ import annotations

from enum import StrEnum
from typing import Literal, get_args


# What was given in an exchange (SPEC "Domain"). No docstring: it would enter the events' JSON Schemas.
class Kind(StrEnum):
    MENTORING = "mentoring"
    FEEDBACK = "feedback"
    HELP = "help"
    KNOWLEDGE = "knowledge"
    RESOURCE = "resource"
    CARE = "care"


EXCHANGE_KINDS: tuple[str, ...] = tuple(kind.value for kind in Kind)

# An exchange's status (SPEC "Domain"): `recorded`, then `acknowledged` or `disputed` by the other party, or
# `withdrawn` by its recorder while still recorded. Derived by the ledger and balance from the events.
RECORDED, ACKNOWLEDGED, DISPUTED, WITHDRAWN = "recorded", "acknowledged", "disputed", "withdrawn"
EXCHANGE_STATUSES: tuple[str, ...] = (RECORDED, ACKNOWLEDGED, DISPUTED, WITHDRAWN)

# A member's availability. A Literal, so that events and commands type their field with it (same schema).
Availability = Literal["active", "paused"]
ACTIVE, PAUSED = get_args(Availability)

# The kinds of signal balance raises and notify mails (SPEC "Alert policy").
SignalKind = Literal["overextended", "disconnected"]
OVEREXTENDED, DISCONNECTED = get_args(SignalKind)
SIGNAL_KINDS: tuple[str, ...] = get_args(SignalKind)
