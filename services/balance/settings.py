"""Balance service settings: environment variables with local defaults."""

from datetime import UTC, date, datetime

from reciprocity.common.settings import ServiceSettings


class BalanceSettings(ServiceSettings):
    port: int = 8002
    database_url: str = "sqlite:///var/balance.db"
    # Seconds between sweeps that evaluate every member (disconnection happens by time passing).
    balance_sweep_interval_s: float = 300.0
    # Members touched by events are judged once the stream has been quiet this long (or, under a steady
    # stream, BALANCE_SIGNAL_MAX_DEFER_S after the first touch): alerts reflect settled numbers.
    balance_signal_settle_s: float = 2.0
    balance_signal_max_defer_s: float = 30.0
    # A fixed "today" (YYYY-MM-DD) for tests and demos; empty: the UTC date.
    balance_today: date | None = None
    # Records per poll: what one poll decodes, projects and holds in memory at once. Measured (tracemalloc,
    # 2026-12-02) ~6.9 KB of Python objects an event until its poll is written (decoded envelopes and
    # events 5.6 KB, deltas 0.9, driver rows 0.5), ~133 MB at 20,000, kafka-python's records besides: why
    # 100,000 a poll peaked at 1.7 GB resident instead of 0.63. How many events share a transaction
    # while catching up is set apart, below, so this stays small. Steady-state polls are small anyway.
    balance_max_poll_records: int = 20000
    # While the log is at least a poll ahead (catch-up after a start or an outage), one transaction spans
    # polls up to this many events or seconds, each poll written into it and freed (messaging.consumer.
    # CatchUp): the exchange indexes take random-key inserts, so a commit writes (and checkpoints) a
    # share of all their pages whatever its size, and fewer, larger commits pay that less often. Near the
    # end of the log, a commit per poll again. 0: a transaction per poll (bootstrap.catch_up).
    # Measured 2026-12-02 (1,000,000 events, same minutes): 75-78 us CPU/event instead of 85-98, +34% events/s,
    # peak resident unchanged (~0.9 GB, up to 256 MB of it SQLite's page cache); 500,000 / 30 s: no better.
    # The 20 s bound keeps SQLite's write lock well inside other writers' 60 s busy timeout (db.py).
    balance_catch_up_events: int = 200_000
    balance_catch_up_s: float = 20.0
    # Offsets live in the database, so the group only shares out partitions. A replacement process
    # may join under another name to avoid waiting out a killed member's session (45 s by default).
    balance_consumer_group: str = "balance"
    # Off: evaluate and record signals but leave them in the outbox (e.g. a read-only replica).
    balance_publish_signals: bool = True

    def today(self) -> date:
        return self.balance_today or datetime.now(UTC).date()
