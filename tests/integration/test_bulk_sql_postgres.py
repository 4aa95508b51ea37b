"""common/bulk_sql.py on PostgreSQL: RowInsert's COPY straight into the table stores what a Core INSERT of
the same values stores, and a key already there fails the batch as SQLAlchemy's IntegrityError (what the
projection's careful retry, which skips a repeated recording, catches), with nothing of the batch left;
CounterUpsert's staged batches, several in one transaction, each add their own rows once."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest
import sqlalchemy as sa
from reciprocity.common.bulk_sql import CounterUpsert, RowInsert
from reciprocity.common.db import make_engine
from sqlalchemy.exc import IntegrityError

pytestmark = pytest.mark.postgres

_metadata = sa.MetaData()
_things = sa.Table(
    "things", _metadata,
    sa.Column("generation", sa.Integer, primary_key=True),
    sa.Column("thing_id", sa.String(64), primary_key=True),
    sa.Column("at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("seen_at", sa.DateTime(timezone=True)),
    sa.Column("day", sa.Date, nullable=False),
    sa.Column("flag", sa.Boolean, nullable=False),
    sa.Column("note", sa.Text),
    sa.Column("count", sa.Integer, nullable=False),
)  # fmt: skip
_AT = datetime(2026, 3, 1, 10, 0, 0, 123456, tzinfo=UTC)
# The awkward values of COPY's text format: tabs, newlines, backslashes, a literal \N, quotes, non-ASCII.
_VALUES = [
    {"thing_id": "b", "at": _AT, "seen_at": None, "day": "2026-03-02", "flag": False, "note": "tab\tnew\nline",
     "count": 0},
    {"thing_id": "a", "at": _AT.replace(microsecond=0), "seen_at": _AT, "day": "2026-03-01", "flag": True,
     "note": "back\\slash \\N 'q' \"dq\" hé", "count": 3},
    {"thing_id": "c", "at": _AT, "seen_at": _AT, "day": "2026-03-03", "flag": True, "note": None, "count": -1},
]  # fmt: skip


def _rows(values: list[dict]) -> list[list]:
    """RowInsert's rows: each dict's values, in the table's order (which the dicts keep)."""
    return [list(v.values()) for v in values]


@pytest.fixture
def engine(postgres_url: str):  # type: ignore[no-untyped-def]
    engine = make_engine(postgres_url)
    _metadata.create_all(engine)
    yield engine
    engine.dispose()


def _stored(conn: sa.Connection, generation: int) -> list[tuple]:
    return [tuple(row[1:]) for row in conn.execute(
        sa.select(_things).where(_things.c.generation == generation).order_by(_things.c.thing_id))]


def test_copied_rows_read_back_as_core_inserts_them(engine: sa.Engine) -> None:
    insert = RowInsert(_things, "postgresql")
    with engine.begin() as conn:
        insert.execute(conn, insert.rows(1, _rows(_VALUES)))
        conn.execute(sa.insert(_things), [{"generation": 2, **v, "day": date.fromisoformat(v["day"])}
                                          for v in _VALUES])
        copied, inserted = _stored(conn, 1), _stored(conn, 2)
    assert copied == inserted
    assert [row[0] for row in copied] == ["a", "b", "c"]


def test_a_key_already_stored_fails_the_batch_as_an_integrity_error(engine: sa.Engine) -> None:
    insert = RowInsert(_things, "postgresql")
    with engine.begin() as conn:
        insert.execute(conn, insert.rows(1, _rows(_VALUES[:1])))
    with pytest.raises(IntegrityError), engine.begin() as conn:
        insert.execute(conn, insert.rows(1, _rows([_VALUES[2], _VALUES[1], _VALUES[0]])))
    with engine.begin() as conn:  # the connection went back to the pool usable, and the batch left nothing
        assert [row[0] for row in _stored(conn, 1)] == ["b"]
        # The same rows again, without the repeat: written (what the projection's careful retry does).
        insert.execute(conn, insert.rows(1, _rows(_VALUES[1:])))
        assert [row[0] for row in _stored(conn, 1)] == ["a", "b", "c"]


_counts = sa.Table(
    "counts", _metadata,
    sa.Column("generation", sa.Integer, primary_key=True),
    sa.Column("who", sa.String(64), primary_key=True),
    sa.Column("day", sa.Date, primary_key=True),
    sa.Column("n", sa.BigInteger, nullable=False),
    sa.Column("m", sa.BigInteger, nullable=False),
)  # fmt: skip


def test_batches_upserted_in_one_transaction_add_each_batch_once(engine: sa.Engine) -> None:
    """A transaction may write several batches (catching up across polls): each upsert adds its own rows,
    not an earlier batch's still staged, and the batch after the commit starts from an empty stage too."""
    upsert = CounterUpsert(_counts, ("who", "day"), ("n", "m"), "postgresql")
    with engine.begin() as conn:
        upsert.execute(conn, upsert.rows(1, {("ann", "2026-03-01"): [1, 10], ("bob", "2026-03-01"): [2, 20]}))
        upsert.execute(conn, upsert.rows(1, {("ann", "2026-03-01"): [4, 40]}))
    with engine.begin() as conn:
        upsert.execute(conn, upsert.rows(1, {("bob", "2026-03-01"): [8, 80]}))
        stored = conn.execute(sa.select(_counts.c.who, _counts.c.n, _counts.c.m).order_by(_counts.c.who)).all()
    assert [tuple(row) for row in stored] == [("ann", 5, 50), ("bob", 10, 100)]
