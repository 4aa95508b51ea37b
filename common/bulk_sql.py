"""Set-based bulk SQL for projections, SQLite and PostgreSQL: the hot path of writing a batch.

Generic over tables: a counter upsert (`INSERT ... ON CONFLICT DO UPDATE SET c = c + excluded.c`, on
PostgreSQL from a COPY-filled session temp table), an insert of whole rows (on PostgreSQL a COPY into the
table itself), and
the small pieces around them (SQLAlchemy's DateTime text on SQLite, the dialect's INSERT, which driver
errors a retry of the whole batch resolves). Rows are driver tuples, built by the caller.
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import UTC, date, datetime, timedelta
from functools import partial
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection
from sqlalchemy.exc import DBAPIError


def _q(name: str) -> str:
    return f'"{name}"'


def copy_rows(conn: Connection, copy_statement: str, rows: Iterable[Sequence[Any]],
              binary_types: Sequence[str] | None = None) -> None:
    """`COPY ... FROM STDIN` of `rows` in the transaction `conn` is in. COPY goes past SQLAlchemy to psycopg
    (psycopg dumps its rows in C), so a driver error is raised as SQLAlchemy would raise it: a key already
    stored is an IntegrityError, a deadlock a DBAPIError that transient_error recognises. With
    `binary_types` (PostgreSQL's type names, one per column) the statement must say FORMAT BINARY."""
    import psycopg  # only here: SQLite deployments need not have it

    psycopg_connection = conn.connection.driver_connection
    assert psycopg_connection is not None  # a connection in a transaction is checked out
    try:
        with psycopg_connection.cursor() as cur, cur.copy(copy_statement) as copy:
            if binary_types is not None:
                copy.set_types(list(binary_types))
            write = copy.write_row
            for row in rows:
                write(row)
    except psycopg.Error as err:
        raise DBAPIError.instance(copy_statement, None, err, psycopg.Error, dialect=conn.dialect) from err


class PgStaging:
    """Bulk rows into PostgreSQL through COPY into a session temp table, for one set-based statement
    from there. psycopg dumps COPY rows in C; the `unnest` of one array per column it replaces spent
    most of its time in psycopg's pure-Python array dumper (escaping each element with a regex)."""

    def __init__(self, table: sa.Table, columns: Sequence[str]) -> None:
        self.name = f"tmp_{table.name}"
        # Per session, emptied at each commit (and dropped with a rolled-back transaction that created it).
        self._create = (f"CREATE TEMP TABLE IF NOT EXISTS {self.name} (LIKE {table.name} INCLUDING DEFAULTS) "
                        "ON COMMIT DELETE ROWS")
        # Emptied before each load too: a transaction may write several batches (a catch-up spanning
        # polls), and each statement from here must see its own batch's rows only.
        self._empty = f"DELETE FROM {self.name}"
        self._copy = f"COPY {self.name} ({', '.join(map(_q, columns))}) FROM STDIN"

    def load(self, conn: Connection, rows: Iterable[Sequence[Any]]) -> None:
        """COPY `rows` into the temp table, in the transaction `conn` is in, in place of any earlier load's."""
        conn.exec_driver_sql(self._create)
        conn.exec_driver_sql(self._empty)
        copy_rows(conn, self._copy, rows)


class CounterUpsert:
    """`INSERT ... ON CONFLICT (key) DO UPDATE SET c = c + excluded.c` for one counter table, as raw
    DBAPI executemany (SQLite) or from a COPY-filled temp table (PostgreSQL): the projection's hot path."""

    def __init__(self, table: sa.Table, keys: Sequence[str], counters: Sequence[str], dialect: str) -> None:
        self.table = table
        self.keys = ("generation", *keys)
        self.counters = tuple(counters)
        self.dialect = dialect
        cols = (*self.keys, *self.counters)
        self._row_ph = "(" + ", ".join(["?"] * len(cols)) + ")"
        self._head = f"INSERT INTO {table.name} ({', '.join(map(_q, cols))}) "
        if dialect == "sqlite":
            self._head += "VALUES "
        else:
            self._staging = PgStaging(table, cols)
            # ORDER BY the key: rows are locked in that order, the same in every concurrent writer.
            self._head += (f"SELECT {', '.join(map(_q, cols))} FROM {self._staging.name} "
                           f"ORDER BY {', '.join(map(_q, self.keys))}")
        self._tail = (
            f" ON CONFLICT ({', '.join(map(_q, self.keys))}) DO UPDATE SET "
            + ", ".join(f"{_q(c)} = {table.name}.{_q(c)} + excluded.{_q(c)}" for c in self.counters)
        )

    def rows(self, generation: int, deltas: Mapping[tuple, list[int]]) -> list[tuple]:
        """The driver's rows for `deltas` (days in the keys are ISO text). All-zero deltas (recorded and
        withdrawn in one batch) are left out."""
        return [(generation, *key, *counts) for key, counts in deltas.items() if any(counts)]

    def execute(self, conn: Connection, rows: list[tuple]) -> int:
        """On PostgreSQL rows are upserted in key order, so concurrent writers lock rows in the same
        order (no deadlocks); SQLite has one writer at a time."""
        if not rows:
            return 0
        if self.dialect == "sqlite":
            conn.exec_driver_sql(self._head + self._row_ph + self._tail, rows)
        else:  # COPY, then one INSERT ... SELECT ... ON CONFLICT through SQLAlchemy (its error types)
            self._staging.load(conn, rows)
            conn.exec_driver_sql(self._head + self._tail)
        return len(rows)


_SECOND = operator.itemgetter(1)
_ZERO = timedelta(0)
_DAY_TEXT: dict[int, str] = {}  # proleptic ordinal -> "YYYY-MM-DD "


def sqlite_datetime(value: datetime) -> str:
    """SQLAlchemy's DateTime text on SQLite (naive UTC), so raw inserts read back like Core ones."""
    if value.tzinfo is UTC and 1000 <= value.year:
        # Already UTC (every envelope time the ledger writes, as fromisoformat reads it): the day's text,
        # remembered, and the time's: half the cost of formatting the whole aware value and cutting it.
        day = _DAY_TEXT.get(ordinal := value.toordinal())
        if day is None:
            if len(_DAY_TEXT) > 10_000:
                _DAY_TEXT.clear()
            day = _DAY_TEXT[ordinal] = value.date().isoformat() + " "
        return day + value.time().isoformat("microseconds")
    offset = value.utcoffset()
    if offset == _ZERO and 1000 <= value.year:
        return value.isoformat(" ", "microseconds")[:26]
    if value.tzinfo is not None:
        value = value.astimezone(UTC).replace(tzinfo=None)
    return value.isoformat(sep=" ", timespec="microseconds")


class RowInsert:
    """A plain insert of whole rows (the new exchanges), raw like CounterUpsert: SQLite's executemany INSERT,
    PostgreSQL's COPY straight into the table. A key already stored fails the batch in both (IntegrityError).

    On PostgreSQL nothing is staged: with no ON CONFLICT there is nothing a temp table is needed for, and
    the server inserts each row (heap and indexes) as it streams in, not in a second pass after it was
    copied, read back and sorted. The rows of 1,000,000 events, built untimed and written in batches of
    20,000 into two databases of one server, the two paths interleaved batch by batch: 56.7 µs an event
    against 60.5 through a temp table (the client's CPU 9.9 µs against 8.2: it now waits on a server that
    inserts as it reads). The rows are sorted by key here instead, so concurrent writers still take the
    key's index entries in one order. The COPY is binary: the client's CPU for 100,000 exchange rows 7.4
    -> 2.2 µs a row (the server's time unchanged), which matters where the rows are written in a thread
    beside a consumer's (balance.projection): the interpreter lock is shared."""

    def __init__(self, table: sa.Table, dialect: str, columns: Sequence[str] | None = None) -> None:
        """`columns`: what each row holds, in order, after the generation (by default the table's columns); the
        first is the key after the generation, which PostgreSQL's rows are sorted by."""
        self.columns = ["generation", *(columns if columns is not None else [c.name for c in table.columns][1:])]
        assert [c.name for c in table.primary_key] == self.columns[:2], "(generation, key) first"
        self.dialect = dialect
        self._insert = _insert_statement(table.name, self.columns)
        self._copy = f"COPY {table.name} ({', '.join(map(_q, self.columns))}) FROM STDIN (FORMAT BINARY)"
        self._binary_types = ([] if dialect == "sqlite" else
                              [_pg_binary_type(table.c[name].type) for name in self.columns])
        # The values the driver needs converted, by position in a row: on SQLite as SQLAlchemy would store
        # them (one memo for all DateTime columns: recorded_at and updated_at of a new exchange are one
        # value; booleans as the integers 1 and 0 SQLAlchemy stores, which sqlite3 binds several times
        # faster than True and False, see below); on PostgreSQL days given as ISO text made dates (binary
        # COPY takes each column's own type).
        sqlite_rows = dialect == "sqlite"
        to_datetime, to_date = (_memo(sqlite_datetime), _iso_date) if sqlite_rows else (None, _memo(_date_of))
        convert: dict[int, Callable[[Any], Any]] = {}
        for i, name in enumerate(self.columns[1:]):
            column_type = table.c[name].type
            if isinstance(column_type, sa.DateTime):
                if to_datetime is not None:
                    convert[i] = to_datetime
            elif isinstance(column_type, sa.Date):
                convert[i] = to_date
            elif isinstance(column_type, sa.Boolean) and sqlite_rows:
                convert[i] = int
        # sqlite3 binds None (and bool) through its adaptation protocol, a lookup that fails by raising
        # inside the driver: ~0.4 µs a value against ~0.07 for an int. So on SQLite a row whose nullable
        # columns without a default are all None (a new exchange's thanks, reason, status event and
        # correction) leaves them out of its INSERT, and the table stores the same NULLs.
        self._sparse = [i for i, name in enumerate(self.columns[2:], start=1)
                        if sqlite_rows and table.c[name].nullable and table.c[name].server_default is None]
        self._width = len(self.columns)
        dense = [name for i, name in enumerate(self.columns) if i - 1 not in self._sparse]
        self._insert_sparse = _insert_statement(table.name, dense)
        # SQLite's staging table (see `begin`): per connection, emptied after each use; rows staged in a
        # transaction that is rolled back go with it.
        staged, columns = f"temp.staged_{table.name}", ", ".join(map(_q, self.columns))
        self._create_staged = (f"CREATE TEMP TABLE IF NOT EXISTS staged_{table.name} AS "
                               f"SELECT {columns} FROM {table.name} WHERE 0")
        self._stage, self._stage_sparse = _insert_statement(staged, self.columns), _insert_statement(staged, dense)
        self._insert_staged = f"INSERT INTO {table.name} ({columns}) SELECT {columns} FROM {staged}"
        self._empty_staged = f"DELETE FROM {staged}"
        self._rows = _row_builder(len(self.columns) - 1, convert, self._sparse)

    def rows(self, generation: int, rows: Iterable[Sequence[Any]]) -> list[tuple]:
        """The driver's rows of `rows` (each the values of `columns`, in order): in each column's own type for
        PostgreSQL's binary COPY, as SQLAlchemy would store them in SQLite."""
        return self._rows(generation, rows)

    def execute(self, conn: Connection, tuples: list[tuple]) -> None:
        if not tuples:
            return
        if self.dialect == "sqlite":
            self._insert_rows(conn, tuples, self._insert, self._insert_sparse)
        else:  # by the key after generation: the lock order of concurrent writers
            copy_rows(conn, self._copy, sorted(tuples, key=_SECOND), self._binary_types)

    def begin(self, conn: Connection, tuples: list[tuple]) -> Callable[[], None]:
        """The insert in two parts: what needs the interpreter, done now, and the rest, returned to be run
        later, in another thread if wanted, while this one goes on (one thread at a time on `conn`).

        On SQLite the rows go now into a temp table of the connection, and what is returned inserts them
        from there in one statement, which SQLite runs without the interpreter lock: sqlite3 takes the lock
        back for every row of an executemany, so a thread inserting the rows themselves overlapped nothing
        (measured). On PostgreSQL what is returned is the whole COPY: the server inserts as it reads, and
        that is the wait worth overlapping."""
        if not tuples:
            return _nothing
        if self.dialect != "sqlite":
            return partial(self.execute, conn, tuples)
        conn.exec_driver_sql(self._create_staged)
        self._insert_rows(conn, tuples, self._stage, self._stage_sparse)

        def insert_staged() -> None:
            conn.exec_driver_sql(self._insert_staged)
            conn.exec_driver_sql(self._empty_staged)

        return insert_staged

    def _insert_rows(self, conn: Connection, tuples: list[tuple], insert: str, insert_sparse: str) -> None:
        width = self._width
        sparse = [row for row in tuples if len(row) < width] if self._sparse else []
        if not sparse:
            conn.exec_driver_sql(insert, tuples)
            return
        conn.exec_driver_sql(insert_sparse, sparse)
        if len(sparse) < len(tuples):
            conn.exec_driver_sql(insert, [row for row in tuples if len(row) == width])


def _nothing() -> None:
    pass


def _iso_date(value: Any) -> Any:
    return value if isinstance(value, str) else value.isoformat()


def _date_of(value: Any) -> Any:
    return date.fromisoformat(value) if isinstance(value, str) else value


def _pg_binary_type(column_type: sa.types.TypeEngine[Any]) -> str:
    """PostgreSQL's name for a column's type, for binary COPY (which takes exactly that type's values)."""
    for kind, name in ((sa.BigInteger, "int8"), (sa.Integer, "int4"), (sa.Boolean, "bool"), (sa.String, "text")):
        if isinstance(column_type, kind):
            return name
    if isinstance(column_type, sa.DateTime):
        return "timestamptz" if column_type.timezone else "timestamp"
    if isinstance(column_type, sa.Date):
        return "date"
    raise TypeError(f"no binary COPY type for {column_type!r}")


def _insert_statement(table: str, columns: Sequence[str]) -> str:
    return f"INSERT INTO {table} ({', '.join(map(_q, columns))}) VALUES ({', '.join(['?'] * len(columns))})"


def _row_builder(width: int, convert: Mapping[int, Callable[[Any], Any]], sparse: Sequence[int] = (),
                 ) -> Callable[[int, Iterable[Sequence[Any]]], list[tuple]]:
    """`(generation, rows) -> [(generation, row[0], conv(row[1]), ...)]` as one comprehension compiled for
    rows of `width` values: each row unpacked into locals, then one tuple, a call only where a value is
    converted (None stays None). With `sparse` positions, a row whose values there are all None is built
    without them (a shorter tuple)."""
    if not convert and not sparse:
        return lambda generation, rows: [(generation, *row) for row in rows]
    names: dict[str, Any] = {}
    items = []
    for i in range(width):
        if i in convert:
            names[f"_c{i}"] = convert[i]
            items.append(f"(None if _{i} is None else _c{i}(_{i}))")
        else:
            items.append(f"_{i}")
    row = f"(generation, {', '.join(items)})"
    if sparse:
        all_none = " and ".join(f"_{i} is None" for i in sparse)
        short = ", ".join(item for i, item in enumerate(items) if i not in sparse)
        row = f"(generation, {short}) if {all_none} else {row}"
    unpacked = ", ".join(f"_{i}" for i in range(width)) + ("," if width == 1 else "")
    source = (f"def build(generation, rows):\n"
              f"    return [{row} for {unpacked} in rows]\n")
    exec(compile(source, f"<row builder of {width} values>", "exec"), names)
    return names["build"]


def _memo(fn: Callable[[Any], Any]) -> Callable[[Any], Any]:
    """Remember the last conversion: an exchange's recorded_at and updated_at are the same value."""
    last: list[Any] = [object(), None]

    def convert(value: Any) -> Any:
        if value is not last[0]:
            last[0], last[1] = value, fn(value)
        return last[1]

    return convert


def dialect_insert(conn: Connection, table: sa.Table) -> Any:
    """`INSERT` with `on_conflict_do_*` for the connection's dialect (PostgreSQL or SQLite)."""
    return (postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert)(table)


def transient_error(err: DBAPIError) -> bool:
    """Lock waits and deadlocks that a retry of the whole batch resolves."""
    code = getattr(err.orig, "sqlstate", None)
    if code in ("40P01", "40001", "55P03"):
        return True
    text = str(err.orig).lower()
    return "database is locked" in text or "database is busy" in text
