"""Every service's schema through reciprocity.common.db, on SQLite and PostgreSQL, all in ONE database as a
small deployment shares it: the migrations build exactly the tables the code uses, an autogenerate (through
each service's real env.py) proposes nothing, in particular no drop of another service's tables, concurrent
starters migrate once under the lock, and the web and the ledger's key store adopt a database their old
`create_all` made."""

from __future__ import annotations

import threading
from datetime import UTC, datetime
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from reciprocity.balance.db import SCHEMA as BALANCE
from reciprocity.common.db import Schema, make_engine, migrate, normalise_url
from reciprocity.ledger import keystore
from reciprocity.ledger.keystore import SCHEMA as LEDGER_KEYS
from reciprocity.notify.store import SCHEMA as NOTIFY
from reciprocity.web import accounts
from reciprocity.web.accounts import SCHEMA as WEB

# The key store has a database of its own in a deployment; sharing one shows its migrations keep to its table.
SCHEMAS = (BALANCE, NOTIFY, WEB, LEDGER_KEYS)


def head(schema: Schema) -> str:
    config = Config()
    config.set_main_option("script_location", str(schema.migrations))
    return str(ScriptDirectory.from_config(config).get_current_head())


def version(conn: sa.Connection, schema: Schema) -> str | None:
    return conn.execute(sa.text(f"SELECT version_num FROM {schema.version_table}")).scalar()


def test_one_shared_database_holds_every_service_and_autogenerate_proposes_nothing(db_url: str) -> None:
    engine = make_engine(db_url)
    try:
        for schema in SCHEMAS:
            migrate(engine, schema)
            migrate(engine, schema)  # idempotent: every start runs it
        with engine.connect() as conn:
            tables = set(sa.inspect(conn).get_table_names())
            for schema in SCHEMAS:
                assert version(conn, schema) == head(schema), schema.service
                assert {t.name for t in schema.metadata.sorted_tables} <= tables, schema.service
                context = MigrationContext.configure(conn, opts={"version_table": schema.version_table,
                                                                 "include_name": schema.owns})
                assert compare_metadata(context, schema.metadata) == [], schema.service
                # Without the filter, the other services' tables would be proposed for dropping.
                unfiltered = MigrationContext.configure(conn, opts={"version_table": schema.version_table})
                drops = {d[1].name for d in compare_metadata(unfiltered, schema.metadata) if d[0] == "remove_table"}
                assert drops and not any(name.startswith(schema.table_prefix) for name in drops), schema.service
        for schema in SCHEMAS:
            # The service's own env.py, as `alembic revision --autogenerate` runs it: nothing to propose.
            config = Config()
            config.set_main_option("script_location", str(schema.migrations))
            config.set_main_option("sqlalchemy.url", engine.url.render_as_string(hide_password=False))
            command.check(config)
    finally:
        engine.dispose()


def test_concurrent_starters_migrate_once_under_the_lock(db_url: str) -> None:
    """Several processes starting at once on a fresh database (compose starts every service together):
    without the lock the second would fail creating tables the first just made."""
    errors: list[BaseException] = []

    def start() -> None:
        engine = make_engine(db_url)
        try:
            for schema in SCHEMAS:
                migrate(engine, schema)
        except BaseException as err:
            errors.append(err)
        finally:
            engine.dispose()

    threads = [threading.Thread(target=start) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert errors == []
    engine = make_engine(db_url)
    with engine.connect() as conn:
        assert [version(conn, s) for s in SCHEMAS] == [head(s) for s in SCHEMAS]
        assert conn.execute(sa.text(f"SELECT count(*) FROM {WEB.version_table}")).scalar() == 1
    engine.dispose()


def test_the_web_adopts_a_database_its_create_all_made(db_url: str) -> None:
    """Before its tables were under migrations the web made them with `metadata.create_all`: such a
    database keeps its accounts and sessions, and is stamped at the head revision."""
    engine = make_engine(db_url)
    accounts.metadata.create_all(engine)
    with engine.begin() as conn:
        conn.execute(accounts.web_accounts.insert().values(member_id="ada", password_hash="x",
                                                           created_at=datetime.now(UTC)))
        conn.execute(accounts.web_sessions.insert().values(token_hash="t" * 64, member_id="ada", created_at=1.0,
                                                           seen_at=1.0))
    store = accounts.AccountStore(db_url)
    try:
        with store.engine.connect() as conn:
            assert version(conn, WEB) == head(WEB)
            assert conn.execute(sa.select(accounts.web_accounts.c.member_id)).scalars().all() == ["ada"]
            assert conn.execute(sa.select(sa.func.count()).select_from(accounts.web_sessions)).scalar() == 1
            context = MigrationContext.configure(conn, opts={"version_table": WEB.version_table,
                                                             "include_name": WEB.owns})
            assert compare_metadata(context, accounts.metadata) == []
        store.set_password("ada", "a long enough password")
        assert store.verify("ada", "a long enough password")
    finally:
        store.engine.dispose()
        engine.dispose()


def test_the_key_store_adopts_a_database_its_create_all_made(db_url: str) -> None:
    """Before the key store was under migrations it made its table with `metadata.create_all`: its keys
    and tombstones are the only copy there is, so they are kept, and the database is stamped at the head."""
    engine = keystore.make_engine(db_url)
    try:
        keystore.metadata.create_all(engine)
        now = datetime.now(UTC)
        with engine.begin() as conn:
            conn.execute(keystore.member_keys.insert().values(member_id="gone", wrapped_key=None, created_at=now,
                                                              forgotten_at=now, forgotten_by="admin"))
        keys = keystore.KeyStore(engine, "a secret for this test")
        with engine.connect() as conn:
            assert version(conn, LEDGER_KEYS) == head(LEDGER_KEYS)
            context = MigrationContext.configure(conn, opts={"version_table": LEDGER_KEYS.version_table,
                                                             "include_name": LEDGER_KEYS.owns})
            assert compare_metadata(context, keystore.metadata) == []
        assert [f.member_id for f in keys.forgettings()] == ["gone"]
        with pytest.raises(keystore.MemberForgottenError):
            keys.key_for("gone")
        assert keys.key_for("ada") == keystore.KeyStore(engine, "a secret for this test").key_for("ada")
    finally:
        engine.dispose()


@pytest.mark.parametrize("scheme", ["postgres://", "postgresql://", "postgresql+psycopg://"])
def test_every_spelling_of_a_postgresql_url_means_psycopg_3(scheme: str) -> None:
    assert normalise_url(f"{scheme}u:p@db.example:5432/reciprocity") == (
        "postgresql+psycopg://u:p@db.example:5432/reciprocity")
    assert make_engine(f"{scheme}u:p@db.example:5432/reciprocity").dialect.driver == "psycopg"


def test_a_sqlite_file_is_private_and_tuned_as_asked(tmp_path: Path) -> None:
    from reciprocity.balance.db import SQLITE as BALANCE_SQLITE

    engine = make_engine(f"sqlite:///{tmp_path}/tuned.db", sqlite=BALANCE_SQLITE)
    with engine.connect() as conn:
        pragma = {name: conn.exec_driver_sql(f"PRAGMA {name}").scalar()
                  for name in ("journal_mode", "busy_timeout", "cache_size", "synchronous", "wal_autocheckpoint")}
    assert pragma == {"journal_mode": "wal", "busy_timeout": int(BALANCE_SQLITE.busy_timeout_s * 1000),
                      "cache_size": -(BALANCE_SQLITE.cache_mb or 0) * 1024, "synchronous": 1,
                      "wal_autocheckpoint": BALANCE_SQLITE.checkpoint_pages}
    assert (tmp_path / "tuned.db").stat().st_mode & 0o777 == 0o600
    engine.dispose()
