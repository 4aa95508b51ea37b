"""The directory as the web reads it on nearly every page: a few seconds' memory of balance's answers.

Every signed-in page needs the member herself (name, circles, role, circles she leads), the circle page
the circles and the circle's people, the record form the people of her circles. Asking balance for
them on every request was one to three of a page's upstream round trips, and under load each costs
CPU in the web (HTTP, JSON, pydantic) and in balance (HTTP, SQL, JSON) on the same few cores.

`DirectoryCache` remembers those answers for `ttl_s` seconds (WEB_DIRECTORY_CACHE_S, default 2), in
this process only (every gunicorn worker has its own). The directory is already a projection, seconds
behind the ledger at worst; this adds at most `ttl_s` to how long a change in it (a new lead, a name)
takes to show on a page. What must never be late does not read it:

- commands (POST, PUT, ...) and the pages that show or act on the member's own directory entry
  (capacity and pause, operations) load the signed-in member afresh (`auth.load_signed_in_member`);
- sign-in asks balance directly (a forgotten member), and sessions are checked in the database on
  every request: signing out, or a password change, takes effect at once whatever is cached here;
- only answers are remembered, never a failure or a NotFound (a member registered a moment ago is
  found as soon as balance has her).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Hashable
from typing import Any, TypeVar

from .clients.balance import Balance, Circle, Member

T = TypeVar("T")

# Beyond this many remembered answers the memory starts afresh (an organisation's members and circles
# fit many times over; a crawler asking for every id must not grow the process without bound).
MAX_ENTRIES = 20_000


class DirectoryCache:
    def __init__(self, balance: Balance, *, ttl_s: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.balance = balance
        self.ttl_s = ttl_s
        self._clock = clock
        self._lock = threading.Lock()
        self._entries: dict[Hashable, tuple[float, Any]] = {}

    def _remembered(self, key: Hashable, fetch: Callable[[], T], *, fresh: bool = False) -> T:
        if self.ttl_s <= 0:
            return fetch()
        now = self._clock()
        if not fresh:
            with self._lock:
                found = self._entries.get(key)
            if found is not None and now - found[0] < self.ttl_s:
                return found[1]
        # Fetched outside the lock: two threads missing at once both ask balance, rather than every page
        # of the process waiting behind one slow answer.
        value = fetch()
        with self._lock:
            if len(self._entries) >= MAX_ENTRIES:
                self._entries.clear()
            self._entries[key] = (now, value)
        return value

    def member(self, member_id: str, *, fresh: bool = False) -> Member:
        """The member; `fresh`: asked of balance now (and remembered from now on)."""
        return self._remembered(("member", member_id), lambda: self.balance.member(member_id), fresh=fresh)

    def circles(self) -> list[Circle]:
        return self._remembered(("circles",), self.balance.circles)

    def circle_members(self, circle_id: str) -> list[Member]:
        return self._remembered(("circle", circle_id), lambda: self.balance.members(circle=circle_id))
