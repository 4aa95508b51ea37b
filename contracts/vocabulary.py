"""The product's words, each written once: exchange kinds, exchange statuses, a member's availability, the
kinds of signal. Every service, the web, the CLI and the tests use these names instead of retyping them;
the events (events.py) are built from them, so a word added here is one the contracts accept."""

from __future__ import annotations

from enum import StrEnum


# What was given in an exchange (SPEC "Domain"). No docstring: it would enter the events' JSON Schemas.
class Kind(StrEnum):
    MENTORING = "mentoring"
    FEEDBACK = "feedback"
    HELP = "help"
    KNOWLEDGE = "knowledge"
    RESOURCE = "resource"
    CARE = "care"


EXCHANGE_KINDS: tuple[str, ...] = tuple(kind.value for kind in Kind)
