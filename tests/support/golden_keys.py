"""The keys the golden example events are sealed with: derived from the member id, so the golden files
can be opened by tests (and regenerated) without a key store. Never used outside tests."""

from __future__ import annotations

import hashlib
from collections.abc import Collection

from reciprocity.common.sealing import Opener, Sealer


def golden_key(member_id: str) -> bytes:
    return hashlib.sha256(f"reciprocity golden key|{member_id}".encode()).digest()


class GoldenKeys:
    """A KeySource over golden keys; members in `forgotten` have none."""

    def __init__(self, forgotten: Collection[str] = ()) -> None:
        self.forgotten = set(forgotten)

    def member_keys(self, member_ids: Collection[str]) -> dict[str, bytes | None]:
        return {m: None if m in self.forgotten else golden_key(m) for m in member_ids}


def golden_sealer() -> Sealer:
    return Sealer(golden_key)


def golden_opener(forgotten: Collection[str] = ()) -> Opener:
    return Opener(GoldenKeys(forgotten))
