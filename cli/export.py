"""`reciprocity export exchanges|balances --csv [--window 28d]`: the balance read models as CSV on
stdout (active generation).

An operator sees operations, not private notes: the exchanges export has no note, thanks or dispute
reason column, only who, what, how long, when, the status and the sharing flags. A text cell beginning
with =, +, -, @, a tab or a carriage return is written with a leading apostrophe, so no spreadsheet runs
it as a formula."""

from __future__ import annotations

import argparse
import csv
import sys
from typing import Any

from reciprocity.common.csv_cells import safe_cell


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser("export", help="export exchanges or balances as CSV", description=__doc__)
    parser.add_argument("what", choices=["exchanges", "balances"])
    parser.add_argument("--csv", action="store_true", required=True, help="CSV on stdout (the only format)")
    parser.add_argument("--window", help="only the last N days, e.g. 90d (balances default: 28d; exchanges: all)")
    parser.add_argument("--database-url", help="balance database (default: DATABASE_URL or local)")
    parser.set_defaults(func=run)


EXCHANGE_FIELDS = ["exchange_id", "occurred_on", "giver", "giver_name", "receiver", "receiver_name", "kind",
                   "minutes", "status", "recorded_by", "recorded_at", "shared_by_recorder", "shared_by_acknowledger"]
# Never the parties' own words (note, thanks, dispute_reason): "an operator sees operations, not private notes".
BALANCE_FIELDS = ["member_id", "name", "circles", "window_from", "window_to", "given_minutes", "given_count",
                  "received_minutes", "received_count", "pending_given_minutes", "pending_received_minutes",
                  "reciprocity_index"]


class SafeWriter:
    """Every row through safe_cell: names and ids are data, never formulas, in whatever opens the file."""

    def __init__(self, writer: Any) -> None:
        self.writer = writer

    def writerow(self, row: list[Any]) -> None:
        self.writer.writerow([safe_cell(cell) for cell in row])


def run(args: argparse.Namespace) -> int:
    from reciprocity.balance import queries
    from reciprocity.balance.db import make_engine
    from reciprocity.balance.generations import active_generation
    from reciprocity.balance.measures import reciprocity_index
    from reciprocity.balance.request_params import BadRequest, parse_window
    from reciprocity.balance.settings import BalanceSettings

    settings = BalanceSettings()
    today = settings.today()
    try:
        days = parse_window(args.window, default=28) if (args.window or args.what == "balances") else None
    except BadRequest as err:
        print(f"export: {err}", file=sys.stderr)
        return 2
    start, end = queries.window_bounds(today, days) if days else (None, None)
    engine = make_engine(args.database_url or settings.database_url, immediate=False)
    # RFC 4180's CRLF: the csv module quotes a field holding any character of the line terminator, so
    # a carriage return inside a cell is quoted too (with "\n" alone it was written bare, and split the row).
    out = SafeWriter(csv.writer(sys.stdout, lineterminator="\r\n"))
    try:
        with engine.connect() as conn:
            gen = active_generation(conn)
            if args.what == "exchanges":
                out.writerow(EXCHANGE_FIELDS)
                for x in queries.exchanges_between(conn, gen, start, end):
                    out.writerow(["" if x[f] is None else x[f] for f in EXCHANGE_FIELDS])
                return 0
            sums = queries.member_counters(conn, gen, start, end)
            people = {m["id"]: m for m in queries.directory_members(conn, gen)}
            out.writerow(BALANCE_FIELDS)
            for member_id in sorted(set(people) | set(sums)):
                m = people.get(member_id, {})
                v = queries.counter_totals(sums.get(member_id, {}))
                out.writerow([member_id, m.get("name", ""), " ".join(m.get("circles", [])), start, end,
                              v["given_minutes"], v["given_count"], v["received_minutes"], v["received_count"],
                              v["pending_given_minutes"], v["pending_received_minutes"],
                              round(reciprocity_index(v["given_minutes"], v["received_minutes"]), 4)])
    finally:
        engine.dispose()
    return 0
