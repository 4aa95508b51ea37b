"""Reading dead letters: records a consumer parked on `<topic>.dlq` (unreadable, or valid but failing their
projection on their own; reciprocity.messaging.poison), with headers naming the source topic, partition,
offset, the error and the consumer.

One place for `reciprocity dlq list|redrive` and balance's GET /v1/dead-letters, so both see the same
list: one entry per source position (dead-lettering is at least once), with the redrive markers that
`reciprocity dlq redrive` appends to the DLQ folded in.

`DeadLetter.public()` is what leaves over HTTP: positions, the error, the key and the size, never the
value (an exchange payload holds private notes). The error header is safe to show: contract errors
name fields and rules, not input values (reciprocity.contracts.envelope._brief).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from reciprocity.contracts.topics import TOPIC_SPECS, dlq_topic

if TYPE_CHECKING:
    from reciprocity.messaging.inspect import RawRecord

REDRIVE_OF = "dlq.redrive.of"  # header of a marker: the DLQ offset that was redriven
REDRIVE_TO = "dlq.redrive.to"  # where it went: topic[partition]@offset


def all_dlqs() -> list[str]:
    """Every dead-letter topic (logical names), in registry order."""
    return [spec.dlq for spec in TOPIC_SPECS.values()]


def dlq_names(topic: str | None) -> list[str]:
    """The DLQ(s) meant by a source topic (ledger.exchanges), a DLQ name, or None for all."""
    if topic is None:
        return all_dlqs()
    return [topic if topic.endswith(".dlq") else dlq_topic(topic)]


def _int(raw: str | None) -> int | None:
    try:
        return int(raw) if raw is not None else None
    except ValueError:
        return None


@dataclass
class DeadLetter:
    dlq: str
    offset: int
    key: bytes | None
    value: bytes
    headers: dict[str, bytes]
    timestamp_ms: int | None = None
    redriven_to: str | None = None

    def header(self, name: str) -> str | None:
        raw = self.headers.get(name)
        return raw.decode(errors="replace") if raw is not None else None

    @property
    def source(self) -> str:
        return self.header("dlq.source.topic") or "?"

    @property
    def dead_lettered_at(self) -> str | None:
        if self.timestamp_ms is None or self.timestamp_ms < 0:
            return None
        return datetime.fromtimestamp(self.timestamp_ms / 1000, UTC).isoformat()

    def as_dict(self) -> dict[str, Any]:
        """Everything, the value included: for the operator's own terminal (`reciprocity dlq list --json`)."""
        return {"dlq": self.dlq, "offset": self.offset, "source_topic": self.header("dlq.source.topic"),
                "source_partition": self.header("dlq.source.partition"),
                "source_offset": self.header("dlq.source.offset"), "error": self.header("dlq.error"),
                "consumer": self.header("dlq.consumer.group"),
                "key": self.key.decode(errors="replace") if self.key else None,
                "value": self.value.decode(errors="replace"), "redriven_to": self.redriven_to}

    def public(self) -> dict[str, Any]:
        """Positions, error, key and size; never the value."""
        return {"topic": self.dlq, "offset": self.offset, "source_topic": self.header("dlq.source.topic"),
                "source_partition": _int(self.header("dlq.source.partition")),
                "source_offset": _int(self.header("dlq.source.offset")), "error": self.header("dlq.error"),
                "consumer": self.header("dlq.consumer.group"),
                "key": self.key.decode(errors="replace") if self.key else None, "size": len(self.value),
                "dead_lettered_at": self.dead_lettered_at, "redriven": self.redriven_to is not None,
                "redriven_to": self.redriven_to}


def collect(records: Iterable[RawRecord]) -> list[DeadLetter]:
    """Dead letters of DLQ records, redrive markers applied, one per source position, by (dlq, offset)."""
    letters: list[DeadLetter] = []
    markers: dict[tuple[str, int], str] = {}
    for record in records:
        if REDRIVE_OF in record.headers:
            markers[(record.topic, int(record.headers[REDRIVE_OF]))] = record.headers.get(REDRIVE_TO, b"").decode()
            continue
        letters.append(DeadLetter(record.topic, record.offset, record.key, record.value, record.headers,
                                  record.timestamp_ms))
    # Dead-lettering is at least once: a consumer that re-reads a batch (a rebalance, a generation
    # switch) dead-letters its poison records again. One entry per source position, the first.
    unique: dict[tuple[str, bytes | None, bytes | None, bytes | None], DeadLetter] = {}
    for letter in sorted(letters, key=lambda d: (d.dlq, d.offset)):
        h = letter.headers
        where = (letter.dlq, h.get("dlq.source.topic"), h.get("dlq.source.partition"), h.get("dlq.source.offset"))
        first = unique.setdefault(where, letter)
        first.redriven_to = first.redriven_to or markers.get((letter.dlq, letter.offset))
    return sorted(unique.values(), key=lambda d: (d.dlq, d.offset))


def read_dead_letters(bootstrap: str, prefix: str, dlqs: list[str], *, timeout_s: float = 10.0) -> list[DeadLetter]:
    """Every dead letter of `dlqs` (logical names); BrokerUnavailable when Kafka or a topic is missing."""
    from reciprocity.messaging.inspect import read_all  # imports kafka: only when reading

    return collect(read_all(bootstrap, dlqs, topic_prefix=prefix, timeout_s=timeout_s))
