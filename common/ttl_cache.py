"""A value fetched from a slow or remote source at most every `ttl_s`, shared by the threads of a process.

The balance read API keeps the broker's log end offsets and the dead letters this way: each fetch is a
round trip to Kafka (or a walk of the DLQ topics), and pages poll. A failed fetch is remembered as long as
a good one, as what `on_error` makes of the error, so a polling page does not hammer an unreachable broker.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Generic, TypeVar

log = logging.getLogger(__name__)

T = TypeVar("T")


class TtlCache(Generic[T]):
    def __init__(self, fetch: Callable[[], T], *, ttl_s: float, on_error: Callable[[Exception], T],
                 what: str) -> None:
        self._fetch = fetch
        self._ttl = ttl_s
        self._on_error = on_error
        self._what = what
        self._at = -float("inf")
        self._value: T | None = None
        self._lock = threading.Lock()
        self._refreshing = threading.Lock()

    def get(self) -> T:
        """The value, fetched now when the last one is older than the TTL (callers wait for that fetch)."""
        with self._lock:
            if time.monotonic() - self._at > self._ttl:
                try:
                    self._value = self._fetch()
                except Exception as err:  # the source is away: its callers show what else they know
                    log.info("%s unavailable: %r", self._what, err)
                    self._value = self._on_error(err)
                self._at = time.monotonic()
            return self._value  # type: ignore[return-value]  # set above on the first call

    def peek(self) -> T | None:
        """What was fetched last (None before the first fetch), without waiting: a stale value starts a
        fetch in the background. For /health, which must answer at once even when the source does not."""
        with self._lock:
            fetched = self._at != -float("inf")
            value, stale = (self._value if fetched else None), time.monotonic() - self._at > self._ttl
        if stale and self._refreshing.acquire(blocking=False):
            def refresh() -> None:
                try:
                    self.get()
                finally:
                    self._refreshing.release()
            threading.Thread(target=refresh, name=f"{self._what.replace(' ', '-')}-refresh", daemon=True).start()
        return value
