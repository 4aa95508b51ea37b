"""Prometheus metrics of the balance service (module level: one registry per process)."""

from prometheus_client import Counter, Gauge, Histogram

EVENTS_APPLIED = Counter("balance_events_applied_total", "Events projected into the read models")
BATCHES = Counter("balance_batches_total", "Batches committed")
APPLY_SECONDS = Histogram(
    "balance_apply_seconds", "Time to apply one batch",
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
SIGNALS_DECIDED = Counter("balance_signals_decided_total", "Signals put in the outbox", ["type"])
SIGNALS_PUBLISHED = Counter("balance_signals_published_total", "Signals appended to balance.signals")
OUTBOX_PENDING = Gauge("balance_outbox_pending", "Signals waiting in the outbox after the last publish attempt")
LAG = Gauge("balance_consumer_lag", "Records not yet applied, per partition", ["topic", "partition"])
