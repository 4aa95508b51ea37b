"""Slowing down password guessing without locking anybody else out.

Failed sign-ins are counted twice, in the web's database (so every web process sees the same counts):

- per account (the member id typed, whether or not it exists, so the answer reveals nothing): the first
  `free_failures` cost nothing, then each further one makes the next attempt on that account wait
  twice as long as the one before (1 s, 2 s, 4 s, ... at most `max_delay_s`). A correct password
  clears the count. Guessing one member's password from many addresses is slowed all the same, while
  the member herself waits seconds, not a lockout, after someone else's failures.
- per client address: at most `address_attempts` failures per `window_s`, whatever the accounts. This
  slows trying one password on many accounts. It is set well above the per-account count, so one
  member's lockout (ten wrong passwords, say) never locks out the others signing in from the same
  office or proxy address. The address is the TCP peer, or the forwarded client address when the peer is
  one of WEB_TRUSTED_PROXIES (see web/proxies.py).
"""

from __future__ import annotations

import itertools
import math
import time
from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy import Engine, case, delete, select
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from .accounts import web_login_failures as failures_table

# An account's count is forgotten after a day without failures: yesterday's typos cost nothing today.
ACCOUNT_MEMORY_S = 24 * 3600
CLEANUP_EVERY = 200  # failures (per process) between sweeps of forgotten rows


@dataclass(frozen=True)
class Refusal:
    wait_s: int
    per_account: bool  # the account's delay (else the address's window)


class LoginThrottle:
    def __init__(self, engine: Engine, *, free_failures: int, max_delay_s: int, address_attempts: int,
                 window_s: int, clock: Callable[[], float] = time.time) -> None:
        self.engine = engine
        self.free_failures = free_failures
        self.max_delay_s = max_delay_s
        self.address_attempts = address_attempts
        self.window_s = window_s
        self.clock = clock
        self._failures_seen = itertools.count(1)

    @staticmethod
    def keys(member_id: str, address: str | None) -> tuple[str, str]:
        return f"account:{member_id[:100]}", f"address:{address or 'unknown'}"

    def delay_after(self, failures: int) -> float:
        """Seconds the next attempt on an account waits after its last failure."""
        if failures < self.free_failures:
            return 0.0
        return float(min(2 ** min(failures - self.free_failures, 30), self.max_delay_s))

    def refused(self, member_id: str, address: str | None) -> Refusal | None:
        """Why this attempt may not even be checked now, or None when it may."""
        account_key, address_key = self.keys(member_id, address)
        now = self.clock()
        c = failures_table.c
        with self.engine.connect() as conn:
            rows = {r.key: r for r in conn.execute(select(failures_table).where(c.key.in_([account_key, address_key])))}
        waits: list[Refusal] = []
        account = rows.get(account_key)
        if account is not None and account.last_failure > now - ACCOUNT_MEMORY_S:
            wait = account.last_failure + self.delay_after(account.failures) - now
            if wait > 0:
                waits.append(Refusal(math.ceil(wait), per_account=True))
        place = rows.get(address_key)
        if place is not None and place.window_start > now - self.window_s and place.failures >= self.address_attempts:
            waits.append(Refusal(math.ceil(place.window_start + self.window_s - now), per_account=False))
        return max(waits, key=lambda r: r.wait_s) if waits else None

    def failed(self, member_id: str, address: str | None) -> None:
        account_key, address_key = self.keys(member_id, address)
        now = self.clock()
        c = failures_table.c
        insert = postgresql_insert if self.engine.dialect.name == "postgresql" else sqlite_insert
        with self.engine.begin() as conn:
            for key, expired in ((account_key, c.last_failure <= now - ACCOUNT_MEMORY_S),
                                 (address_key, c.window_start <= now - self.window_s)):
                # One statement (an upsert), so failures from several processes at once all count.
                conn.execute(insert(failures_table).values(key=key, failures=1, window_start=now, last_failure=now)
                             .on_conflict_do_update(index_elements=[c.key], set_={
                                 "failures": case((expired, 1), else_=c.failures + 1),
                                 "window_start": case((expired, now), else_=c.window_start),
                                 "last_failure": now,
                             }))
            if next(self._failures_seen) % CLEANUP_EVERY == 0:
                conn.execute(delete(failures_table).where(c.last_failure <= now - max(ACCOUNT_MEMORY_S,
                                                                                       self.window_s)))

    def succeeded(self, member_id: str) -> None:
        """The right password clears the account's count; the address keeps its own (signing in to
        one's own account must not wipe out failures on other members' passwords)."""
        account_key, _ = self.keys(member_id, None)
        with self.engine.begin() as conn:
            conn.execute(delete(failures_table).where(failures_table.c.key == account_key))
