"""The consumer side of notify: one transaction per polled batch, in which directory events become
notify's view of the directory (directory_view.py), exchange events the daily digest's items
(digest.py), signals alerts and planned deliveries (alerts.py), and the consumed offsets move
(reciprocity.messaging.tracking).

One ProjectionConsumer reads notify's topics (contracts.topics.NOTIFY_READS) under one group,
so one transaction covers a batch of all of them. Within a batch the directory events are applied first,
then the signals waiting for them are retried, then the batch's own signals are taken.

Side effects after facts: nothing is sent here. The planned deliveries are rows (`pending`, with their
rendered content) committed together with the offsets, so the offsets can never get ahead of what must
be sent; the sender sends them later. A signal whose event_id is already known (a replay, a redelivery)
changes nothing.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from datetime import datetime

from reciprocity.common.db import reading
from reciprocity.common.sealing import Opener
from reciprocity.contracts.events import DirectoryEvent, ExchangeFacts, MemberForgotten, SignalEvent
from reciprocity.messaging.consumer import Delivered, OffsetRange, PartitionKey
from sqlalchemy.engine import Engine

from . import metrics
from .alerts import AlertPlanner
from .digest import apply_exchange_event
from .directory_view import apply_directory_event, not_applied_before
from .store import positions, utcnow

log = logging.getLogger(__name__)

CrashHook = Callable[[str], None]


def _no_crash(_step: str) -> None:
    return None


class NotifyProjection:
    def __init__(
        self,
        engine: Engine,
        *,
        web_base_url: str,
        rate_limit_days: float = 7.0,
        clock: Callable[[], datetime] = utcnow,
        on_planned: Callable[[], None] | None = None,
        crash_hook: CrashHook | None = None,
        opener: Opener | None = None,
    ) -> None:
        self._engine = engine
        # Opens the sealed names and addresses of MemberRegistered with keys from the ledger.
        self.opener = opener if opener is not None else Opener(None)
        self._alerts = AlertPlanner(web_base_url=web_base_url, rate_limit_days=rate_limit_days, clock=clock)
        self._on_planned = on_planned or (lambda: None)
        self._hook = crash_hook or _no_crash
        # Signals below these offsets were in the log before this delivery log began (NOTIFY_SKIP_HISTORY):
        # recorded, never mailed.
        self.history_until: dict[PartitionKey, int] = {}

    # --- Projection protocol ------------------------------------------------------------------

    def load_offsets(self, partitions: Sequence[PartitionKey]) -> dict[PartitionKey, int]:
        with reading(self._engine) as conn:
            return positions.load(conn, partitions)

    def apply(self, events: Sequence[Delivered], spans: dict[PartitionKey, OffsetRange]) -> None:
        counts = {"pending": 0, "suppressed": 0}
        with self._engine.begin() as conn:
            positions.advance(conn, spans)
            directory_events = not_applied_before(conn, [d for d in events if isinstance(d.event, DirectoryEvent)])
            signals = [d for d in events if isinstance(d.event, SignalEvent)]
            for d in events:
                if isinstance(d.event, ExchangeFacts):  # what the daily digest will tell
                    apply_exchange_event(conn, str(d.envelope.event_id), d.event, d.envelope.occurred_at)
                elif not isinstance(d.event, DirectoryEvent | SignalEvent):
                    log.warning("ignoring %s at %s[%d]@%d: not a directory, exchange or signal event",
                                d.envelope.type, d.topic, d.partition, d.offset)
            for d in directory_events:
                if isinstance(d.event, MemberForgotten):
                    self.opener.forget(d.event.member_id)
            opened = self.opener.open_events([(str(d.envelope.event_id), d.event) for d in directory_events])
            for event in opened:
                apply_directory_event(conn, event)
            if directory_events:
                self._alerts.retry_waiting(conn, counts)
            for d in signals:
                self._alerts.take(conn, d, counts, self.history_until)
            self._hook("plan:before_commit")
        self._hook("plan:after_commit")
        self._after_commit(counts)

    # --- between batches ----------------------------------------------------------------------

    def expire_waiting(self, max_wait_s: float) -> int:
        """Record as failed the signals that waited for the directory longer than `max_wait_s`."""
        counts = {"pending": 0, "suppressed": 0}
        with self._engine.begin() as conn:
            expired = self._alerts.expire(conn, max_wait_s, counts)
        self._after_commit(counts)
        return expired

    def _after_commit(self, counts: dict[str, int]) -> None:
        if counts.get("suppressed"):
            metrics.SUPPRESSED.inc(counts["suppressed"])
        if counts.get("pending"):
            self._on_planned()
