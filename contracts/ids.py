"""Identifiers and the deterministic event ids that make retries and replays harmless."""

import re
import uuid
from typing import Annotated

from pydantic import StringConstraints

SLUG_PATTERN = r"^[a-z0-9][a-z0-9._-]{1,63}$"
SLUG_RE = re.compile(SLUG_PATTERN)

# Member and circle ids: lower-case slugs, 2 to 64 characters.
Slug = Annotated[str, StringConstraints(pattern=SLUG_PATTERN)]

# Fixed namespaces, so the same idempotency key or signal identity always maps to the same event id.
COMMAND_NAMESPACE = uuid.UUID("6f1c2f0e-5a51-4b53-9c1e-7c0f3b8a9d10")
SIGNAL_NAMESPACE = uuid.UUID("0d3b7c5e-8f7a-4a7e-b6d2-2a9e4f1c8b37")


def command_event_id(idempotency_key: str, index: int = 0) -> uuid.UUID:
    """The id of the `index`-th event a command appends, derived from the caller's Idempotency-Key."""
    name = idempotency_key if index == 0 else f"{idempotency_key}#{index}"
    return uuid.uuid5(COMMAND_NAMESPACE, name)


def signal_event_id(member_id: str, signal_kind: str, window_start: str) -> uuid.UUID:
    """The id of a balance signal: one per (member, kind, window start), whoever computes it."""
    return uuid.uuid5(SIGNAL_NAMESPACE, f"{member_id}|{signal_kind}|{window_start}")
