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
# The second and later events of a command live in a namespace of their own, named "<index>:<key>".
# They used to be uuid5(COMMAND_NAMESPACE, f"{key}#{index}"), which is also the first event of the
# key "<key>#<index>": two commands shared an event id, and whatever dedupes by it dropped one event.
COMMAND_FOLLOWER_NAMESPACE = uuid.UUID("b5e0d6a2-4c3f-4e8b-a1d7-9f2c6e3b8a45")
SIGNAL_NAMESPACE = uuid.UUID("0d3b7c5e-8f7a-4a7e-b6d2-2a9e4f1c8b37")


def command_event_id(idempotency_key: str, index: int = 0) -> uuid.UUID:
    """The id of the `index`-th event a command appends, derived from the caller's Idempotency-Key.

    The first event keeps the id it always had (the ledger finds a command's first answer by it). The
    others are unambiguous for any key: the index is digits ended by the first ':', and their namespace
    is not the first events' one.
    """
    if index == 0:
        return uuid.uuid5(COMMAND_NAMESPACE, idempotency_key)
    return uuid.uuid5(COMMAND_FOLLOWER_NAMESPACE, f"{index}:{idempotency_key}")


def signal_event_id(member_id: str, signal_kind: str, window_start: str) -> uuid.UUID:
    """The id of a balance signal: one per (member, kind, window start), whoever computes it."""
    return uuid.uuid5(SIGNAL_NAMESPACE, f"{member_id}|{signal_kind}|{window_start}")


EXCHANGE_NAMESPACE = uuid.UUID("3a8e5d1c-2b7f-4c61-9e0a-5f4d7b2c8e19")
EXCHANGE_ID_PATTERN = r"^x-[0-9a-f]{16}$"


def exchange_id_for(idempotency_key: str | None) -> str:
    """The id of the exchange a RecordExchange command creates: "x-" + 16 hex digits.

    Derived from the Idempotency-Key when there is one, so a retry names the same exchange (and a
    client can compute the id before it asks); random otherwise.
    """
    if idempotency_key is None:
        return "x-" + uuid.uuid4().hex[:16]
    return "x-" + uuid.uuid5(EXCHANGE_NAMESPACE, idempotency_key).hex[:16]
