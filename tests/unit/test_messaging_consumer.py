"""The consumer's bookkeeping on a rebalance, without a broker (the listener is called as kafka-python would)."""

from reciprocity.messaging.consumer import ProjectionConsumer, _SeekToStored


class NoProjection:
    def load_offsets(self, partitions):  # type: ignore[no-untyped-def]
        return {}

    def apply(self, events, offsets) -> None:  # type: ignore[no-untyped-def]
        raise AssertionError("not called")


def test_a_revoked_stopped_partition_no_longer_makes_this_process_unhealthy() -> None:
    consumer = ProjectionConsumer("127.0.0.1:9", group_id="g", topics=["ledger.directory"],
                                  projection=NoProjection(), dead_letters=None, topic_prefix="p.")  # type: ignore[arg-type]
    consumer.health.connected = True
    stopped, kept = consumer._tp(("ledger.directory", 3)), consumer._tp(("ledger.directory", 1))
    consumer.health.failed_partitions = {"ledger.directory[3]": "boom", "ledger.directory[1]": "bang"}
    consumer._paused_since = {stopped: 0.0, kept: 0.0}
    consumer._dead_lettered = {(stopped, 7), (kept, 2)}

    _SeekToStored(consumer).on_partitions_revoked([stopped])

    assert consumer.health.failed_partitions == {"ledger.directory[1]": "bang"}  # someone else retries [3] now
    assert set(consumer._paused_since) == {kept}
    assert consumer._dead_lettered == {(kept, 2)}
    assert stopped.topic == "p.ledger.directory"
