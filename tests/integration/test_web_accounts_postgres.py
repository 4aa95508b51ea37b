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
