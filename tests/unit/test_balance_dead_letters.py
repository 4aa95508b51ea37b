"""Reading dead letters (shared by `reciprocity dlq` and GET /v1/dead-letters): one per source position,
redrive markers folded in, and nothing of the payload in what leaves over HTTP."""

from __future__ import annotations

from reciprocity.balance.dead_letters import REDRIVE_OF, REDRIVE_TO, collect, dlq_names
from reciprocity.messaging.inspect import RawRecord

DLQ = "ledger.exchanges.dlq"


def letter(offset: int, source_offset: int, value: bytes = b'{"note": "private"}') -> RawRecord:
    headers = {"dlq.source.topic": b"ledger.exchanges", "dlq.source.partition": b"2",
               "dlq.source.offset": str(source_offset).encode(), "dlq.error": b"not JSON: (root): Invalid JSON"}
    return RawRecord(DLQ, 0, offset, b"x-1", value, headers, 1_750_000_000_000 + offset)


def test_one_per_source_position_with_redrives_applied() -> None:
    marker = RawRecord(DLQ, 0, 3, b"x-1", b"", {REDRIVE_OF: b"0", REDRIVE_TO: b"ledger.exchanges[2]@40"}, 0)
    # offset 1 is the same source position dead-lettered again (a re-read batch): listed once, the first.
    first, second = collect([letter(0, 7), letter(1, 7), letter(2, 9), marker])
    assert (first.offset, first.redriven_to) == (0, "ledger.exchanges[2]@40")
    assert (second.offset, second.redriven_to) == (2, None)
    public = first.public()
    assert public == {"topic": DLQ, "offset": 0, "source_topic": "ledger.exchanges", "source_partition": 2,
                      "source_offset": 7, "error": "not JSON: (root): Invalid JSON", "consumer": None, "key": "x-1",
                      "size": len(b'{"note": "private"}'), "dead_lettered_at": "2025-06-15T15:06:40+00:00",
                      "redriven": True, "redriven_to": "ledger.exchanges[2]@40"}
    assert "private" not in str(public)
    assert first.as_dict()["value"] == '{"note": "private"}'  # the CLI, on the operator's own terminal


def test_dlq_names() -> None:
    assert dlq_names("ledger.exchanges") == dlq_names("ledger.exchanges.dlq") == [DLQ]
    assert dlq_names(None) == ["ledger.directory.dlq", "ledger.exchanges.dlq", "balance.signals.dlq"]
