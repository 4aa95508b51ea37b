"""web_accounts on a real PostgreSQL database: the same code as on SQLite."""

from __future__ import annotations

import pytest
from reciprocity.web import accounts

pytestmark = pytest.mark.postgres


def test_accounts_on_postgres(postgres_url: str) -> None:
    accounts.set_password(postgres_url, "ada", "reciprocity-demo")
    accounts.set_password(postgres_url, "ada", "a-new-password")  # replace: still one row
    accounts.set_password(postgres_url, "ben", "reciprocity-demo")
    assert accounts.verify(postgres_url, "ada", "a-new-password")
    assert not accounts.verify(postgres_url, "ada", "reciprocity-demo")
    assert accounts.verify(postgres_url, "ben", "reciprocity-demo")
    assert not accounts.verify(postgres_url, "zed", "reciprocity-demo")
    store = accounts.store(postgres_url)
    assert store.ping() is None
    with store.engine.connect() as conn:
        rows = conn.exec_driver_sql("select member_id, password_hash from web_accounts order by member_id").all()
    assert [r[0] for r in rows] == ["ada", "ben"]
    assert all(r[1].startswith("$argon2id$") for r in rows)
    store.engine.dispose()


def test_sessions_and_sign_in_counters_on_postgres(postgres_url: str) -> None:
    from reciprocity.web.sessions import SessionStore
    from reciprocity.web.throttle import LoginThrottle

    store = accounts.store(postgres_url)
    store.set_password("ada", "reciprocity-demo")
    sessions = SessionStore(store.engine, idle_s=3600, max_s=7200)
    token = sessions.begin("ada")
    assert sessions.member_of(token) == "ada" and sessions.count("ada") == 1
    store.set_password("ada", "another-password")  # ends every session of hers
    assert sessions.member_of(token) is None
    now = [1_000_000.0]
    throttle = LoginThrottle(store.engine, free_failures=2, max_delay_s=60, address_attempts=3, window_s=900,
                             clock=lambda: now[0])
    for member_id in ("ada", "ada", "ben"):
        assert throttle.refused(member_id, "203.0.113.9") is None
        throttle.failed(member_id, "203.0.113.9")  # one upsert per key, however many web processes
    refusal = throttle.refused("ada", "198.51.100.7")
    assert refusal is not None and refusal.per_account and refusal.wait_s == 1
    address = throttle.refused("cy", "203.0.113.9")
    assert address is not None and address.per_account is False  # the address has 3 failures
    throttle.succeeded("ada")
    assert throttle.refused("ada", "198.51.100.7") is None
    store.engine.dispose()
