"""The registry of topics: who writes them, how they are partitioned, what they hold."""

from dataclasses import dataclass, field


@dataclass(frozen=True)
class TopicSpec:
    name: str
    partitions: int
    writer: str
    config: dict[str, str] = field(default_factory=dict)

    @property
    def dlq(self) -> str:
        return dlq_topic(self.name)


# The ledger topics are the source of truth: kept forever. Signals can be recomputed by replay.
_FOREVER = {"retention.ms": "-1", "retention.bytes": "-1"}

DIRECTORY = TopicSpec("ledger.directory", partitions=4, writer="ledger", config=_FOREVER)
EXCHANGES = TopicSpec("ledger.exchanges", partitions=8, writer="ledger", config=_FOREVER)
SIGNALS = TopicSpec("balance.signals", partitions=4, writer="balance", config=_FOREVER)

# Every topic by name (each with its dead-letter topic, see all_topics()).
TOPIC_SPECS: dict[str, TopicSpec] = {t.name: t for t in (DIRECTORY, EXCHANGES, SIGNALS)}

# Which topics each service reads, written once: its consumer, its status page, `reciprocity status`,
# replays and the tests use these names.
LEDGER_TOPICS = (DIRECTORY.name, EXCHANGES.name)  # the ledger writes them and rebuilds its state from them
BALANCE_READS = (DIRECTORY.name, EXCHANGES.name)
NOTIFY_READS = (DIRECTORY.name, SIGNALS.name, EXCHANGES.name)  # exchanges: the daily digest of what waits


def dlq_topic(source: str) -> str:
    return f"{source}.dlq"


def all_topics(prefix: str = "") -> dict[str, tuple[int, dict[str, str]]]:
    """Every topic with its dead-letter topic, as `name -> (partitions, config)` for the admin client.

    `prefix` lets tests create an isolated copy of the whole set on one broker.
    """
    topics: dict[str, tuple[int, dict[str, str]]] = {}
    for spec in TOPIC_SPECS.values():
        topics[prefix + spec.name] = (spec.partitions, dict(spec.config))
        topics[prefix + spec.dlq] = (1, dict(spec.config))
    return topics
