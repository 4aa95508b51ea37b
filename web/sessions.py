"""Sessions that end: the server side of a signed-in session, in the web's database (web_sessions).

The signed cookie carries the member id and a random session token; the table keeps the token's SHA-256
with when the session began and when it was last seen. A request is signed in only while its row exists,
belongs to the same member, that member still has an account, and neither lifetime has run out:

- idle: `idle_s` since the session was last seen (seen_at is written at most every TOUCH_EVERY_S);
- absolute: `max_s` since sign-in, however active the session has been.

Signing out deletes the row, so a copy of the cookie taken before is worth nothing; signing out
everywhere, or any password change, deletes all of the member's rows.
"""

from __future__ import annotations

import hashlib
import secrets
import time
from collections.abc import Callable

from sqlalchemy import Engine, and_, bindparam, delete, insert, or_, select, update

from .accounts import web_accounts, web_sessions

TOUCH_EVERY_S = 300


# Asked on every signed-in request: built once, so SQLAlchemy finds it compiled in its cache without
# building and hashing the statement again each time (that was most of the lookup's CPU).
_LIVE_SESSION = (
    select(web_sessions.c.member_id, web_sessions.c.created_at, web_sessions.c.seen_at)
    .select_from(web_sessions.join(web_accounts, web_accounts.c.member_id == web_sessions.c.member_id))
    .where(web_sessions.c.token_hash == bindparam("token_hash"))
)


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class SessionStore:
    def __init__(self, engine: Engine, *, idle_s: int, max_s: int, clock: Callable[[], float] = time.time) -> None:
        self.engine = engine
        self.idle_s = idle_s
        self.max_s = max_s
        self.clock = clock

    def begin(self, member_id: str) -> str:
        """A new session for `member_id`; the token goes into the cookie."""
        token = secrets.token_urlsafe(32)
        now = self.clock()
        c = web_sessions.c
        with self.engine.begin() as conn:
            # Sessions that ran out are removed as new ones begin: the table stays the size of who is in.
            conn.execute(delete(web_sessions).where(or_(c.created_at <= now - self.max_s,
                                                        c.seen_at <= now - self.idle_s)))
            conn.execute(insert(web_sessions).values(token_hash=_hash(token), member_id=member_id, created_at=now,
                                                     seen_at=now))
        return token

    def member_of(self, token: object) -> str | None:
        """The member whose live session this token is, or None (no such session, ended, expired, or the
        member has no account any more)."""
        if not isinstance(token, str) or not token:
            return None
        now = self.clock()
        hashed = _hash(token)
        with self.engine.connect() as conn:
            row = conn.execute(_LIVE_SESSION, {"token_hash": hashed}).first()
        if row is None or row.created_at <= now - self.max_s or row.seen_at <= now - self.idle_s:
            return None
        if now - row.seen_at >= TOUCH_EVERY_S:
            c = web_sessions.c
            with self.engine.begin() as conn:
                conn.execute(update(web_sessions).where(c.token_hash == hashed).values(seen_at=now))
        return row.member_id

    def end(self, token: object) -> None:
        if isinstance(token, str) and token:
            with self.engine.begin() as conn:
                conn.execute(delete(web_sessions).where(web_sessions.c.token_hash == _hash(token)))

    def end_all(self, member_id: str) -> int:
        """Sign the member out everywhere; how many sessions ended."""
        with self.engine.begin() as conn:
            return conn.execute(delete(web_sessions).where(web_sessions.c.member_id == member_id)).rowcount

    def count(self, member_id: str) -> int:
        c = web_sessions.c
        now = self.clock()
        with self.engine.connect() as conn:
            return len(conn.execute(select(c.token_hash).where(and_(
                c.member_id == member_id, c.created_at > now - self.max_s, c.seen_at > now - self.idle_s))).all())
