"""common/bulk_sql.py: the driver rows it builds are stored as SQLAlchemy Core would store the same values."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone

import pytest
import sqlalchemy as sa
from hypothesis import given, settings
from hypothesis import strategies as st
from reciprocity.common.bulk_sql import CounterUpsert, RowInsert, sqlite_datetime
from sqlalchemy.dialects import sqlite

_metadata = sa.MetaData()
_things = sa.Table(
    "things", _metadata,
    sa.Column("generation", sa.Integer, primary_key=True),
    sa.Column("thing_id", sa.String, primary_key=True),
    sa.Column("at", sa.DateTime),
    sa.Column("seen_at", sa.DateTime, nullable=True),
    sa.Column("day", sa.Date),
    sa.Column("flag", sa.Boolean),
    sa.Column("note", sa.Text, nullable=True),
    sa.Column("count", sa.Integer),
)  # fmt: skip
_counts = sa.Table(
    "counts", _metadata,
    sa.Column("generation", sa.Integer, primary_key=True),
    sa.Column("who", sa.String, primary_key=True),
    sa.Column("day", sa.String, primary_key=True),
    sa.Column("n", sa.Integer, nullable=False),
    sa.Column("m", sa.Integer, nullable=False),
)  # fmt: skip
_SA_TEXT = sa.DateTime().dialect_impl(sqlite.dialect()).bind_processor(sqlite.dialect())


@settings(max_examples=300, deadline=None)
@given(st.datetimes(min_value=datetime(1, 1, 1), max_value=datetime(9999, 12, 31)))
def test_utc_times_are_sqlalchemys_text(at: datetime) -> None:
    assert sqlite_datetime(at.replace(tzinfo=UTC)) == _SA_TEXT(at)
    assert sqlite_datetime(at) == _SA_TEXT(at)  # naive: already UTC


def test_other_offsets_are_converted_to_utc_first() -> None:
    at = datetime(2026, 3, 1, 10, 0, tzinfo=timezone(timedelta(hours=5, minutes=30)))
    assert sqlite_datetime(at) == "2026-03-01 04:30:00.000000"
    assert sqlite_datetime(datetime(2026, 3, 1, 10, 0, tzinfo=timezone(timedelta(0)))) == "2026-03-01 10:00:00.000000"


def test_inserted_rows_read_back_as_core_inserts_them() -> None:
    engine = sa.create_engine("sqlite://")
    _metadata.create_all(engine)
    at = datetime(2026, 3, 1, 10, 0, 0, 123456, tzinfo=UTC)
    values = [
        {"thing_id": "a", "at": at, "seen_at": at, "day": date(2026, 3, 1), "flag": True, "note": "hé", "count": 3},
        {"thing_id": "b", "at": at.replace(microsecond=0), "seen_at": None, "day": "2026-03-02", "flag": False,
         "note": None, "count": 0},
        # Every nullable column None: inserted without them (sqlite3 binds None slowly), stored alike.
        {"thing_id": "c", "at": None, "seen_at": None, "day": None, "flag": None, "note": None, "count": None},
    ]  # fmt: skip
    insert = RowInsert(_things, "sqlite", columns=list(values[0]))
    with engine.begin() as conn:
        insert.execute(conn, insert.rows(1, [list(v.values()) for v in values]))
        conn.execute(sa.insert(_things), [{"generation": 2, **v, "day": v["day"] and date.fromisoformat(str(v["day"]))}
                                          for v in values])
        insert.begin(conn, insert.rows(3, [list(v.values()) for v in values]))()  # staged, then inserted
        stored = conn.exec_driver_sql("SELECT generation, * FROM things ORDER BY generation, thing_id").fetchall()
    raw = {g: [(row[2:], [type(v) for v in row[2:]]) for row in stored if row[0] == g] for g in (1, 2, 3)}
    assert raw[1] == raw[2] == raw[3]


def test_staged_rows_are_inserted_once_and_go_with_a_rolled_back_transaction() -> None:
    engine = sa.create_engine("sqlite://")
    _metadata.create_all(engine)
    insert = RowInsert(_things, "sqlite", columns=["thing_id", "count"])
    with engine.connect() as conn:
        conn.begin()
        insert.begin(conn, insert.rows(1, [["a", 1], ["b", 2]]))  # staged, never inserted
        conn.rollback()
        with conn.begin():
            insert.begin(conn, insert.rows(1, [["c", 3]]))()
            insert.begin(conn, insert.rows(1, [["d", 4]]))()  # the staging table was emptied after "c"
        with pytest.raises(sa.exc.IntegrityError), conn.begin():
            insert.begin(conn, insert.rows(1, [["e", 5], ["c", 6]]))()  # a key already stored fails it
        assert conn.exec_driver_sql("SELECT thing_id, count FROM things ORDER BY thing_id").fetchall() == [
            ("c", 3), ("d", 4)]


def test_counter_rows_leave_out_all_zero_deltas() -> None:
    upsert = CounterUpsert(_counts, ("who", "day"), ("n", "m"), "sqlite")
    assert upsert.rows(7, {("ann", "2026-03-01"): [1, 0], ("bob", "2026-03-01"): [0, 0],
                           ("cy", "2026-03-02"): [0, -2]}) == [(7, "ann", "2026-03-01", 1, 0),
                                                               (7, "cy", "2026-03-02", 0, -2)]
