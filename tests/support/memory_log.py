"""An in-memory stand-in for messaging.event_log.EventLog, for unit tests of the ledger without Kafka."""

from __future__ import annotations

import uuid
from collections.abc import Sequence

from reciprocity.contracts.envelope import decode
from reciprocity.messaging.event_log import Outgoing, Position


class MemoryLog:
    """Takes every append, in order, like a broker that never fails."""

    def __init__(self) -> None:
        self.records: list[Outgoing] = []

    def append(self, records: Sequence[Outgoing]) -> list[Position]:
        positions = [Position(r.topic, 0, len(self.records) + i) for i, r in enumerate(records)]
        self.records.extend(records)
        return positions

    def ping(self, _topic: str) -> bool:
        return True

    def event_ids(self) -> list[uuid.UUID]:
        return [decode(r.value)[0].event_id for r in self.records]
