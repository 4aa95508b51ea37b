"""`reciprocity import roster.csv [--ledger-url URL] [--token-stdin] [--dry-run]`: circles and members from a CSV.

The file (UTF-8, a header row first; an Excel byte-order mark is fine) has these columns, in any order;
`kind`, `id` and `name` are required, the others may be left out of the header or left empty:

    kind          `circle` or `member`
    id            a slug: 2-64 lowercase letters, digits, '.', '_' or '-', starting with a letter or digit
    name          display name
    email         members only: their address (unique)
    circles       members only: circle ids separated by ';' (circles of this file or already in the ledger)
    role          members only: `member` (default) or `operator`
    parent        circles only: the parent circle's id (of this file or already in the ledger)
    leads         circles only: member ids separated by ';' (members of this file or already in the ledger)
    weekly_hours  members only: declared weekly capacity in hours (0-168)

A row whose `kind` starts with '#' is a comment. See tests/data/roster-sample.csv.

The whole file is checked first (every row, and every reference against the file and the ledger); if
anything is wrong, each problem is reported with its line number and NOTHING is imported (exit 1).
Otherwise circles are formed (parents first), then members registered, then leads and capacities set.
Importing is idempotent: what already exists as the file says is left alone, a member already in the
ledger is moved to the circles the file lists, and every command carries an Idempotency-Key derived
from its row and from the ledger's value it changes, so an interrupted import can simply be run again,
while a row whose value was changed since (say on the web) is sent as a new request. Should the ledger
still answer a step with its first answer to the same request (nothing appended) although it does not
hold what the file says, the step is sent again under a key that follows from that answer; what the
ledger still does not hold in the end is reported (exit 2). A circle's name and parent, and a
member's name, email and role, cannot be changed by an import (the ledger has no such commands): a
difference is reported as a problem.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import io
import json
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Protocol

from pydantic import ValidationError
from reciprocity.cli import credentials
from reciprocity.common.csv_cells import formula_like
from reciprocity.common.service_client import ClientError, segment
from reciprocity.contracts.commands import DeclareCapacity, FormCircle, RegisterMember, field_errors
from reciprocity.contracts.ids import SLUG_RE
from reciprocity.ledger.client import LedgerAnswer, LedgerClient

COLUMNS = ("kind", "id", "name", "email", "circles", "role", "parent", "leads", "weekly_hours")
REQUIRED = ("kind", "id", "name")
MEMBER_ONLY = ("email", "circles", "role", "weekly_hours")
CIRCLE_ONLY = ("parent", "leads")
# How often one step is sent again after replayed answers (each a change the ledger made once and that
# was undone since): a bound, not a number any real history reaches.
MAX_RESENDS = 10


class Directory(Protocol):
    """What the import asks the ledger: the circle or member with an id, or None."""

    def circle(self, circle_id: str) -> dict[str, Any] | None: ...

    def member(self, member_id: str) -> dict[str, Any] | None: ...


@dataclass
class Row:
    line: int
    kind: str
    id: str
    name: str
    email: str = ""
    circles: list[str] = field(default_factory=list)
    role: str = ""
    parent: str = ""
    leads: list[str] = field(default_factory=list)
    weekly_hours: str = ""
    raw: str = ""  # the row as read, for its Idempotency-Key


@dataclass
class Problem:
    line: int
    message: str

    def __str__(self) -> str:
        return f"line {self.line}: {self.message}"


@dataclass(frozen=True)
class Target:
    """What a step brings about, to tell whether the ledger holds it after a replayed answer."""

    kind: str  # "circle" or "member"
    id: str
    field: str | None = None  # None: that the circle or member exists
    value: Any = None

    def held_by(self, directory: Directory) -> bool:
        there = directory.circle(self.id) if self.kind == "circle" else directory.member(self.id)
        return there is not None and (self.field is None or there.get(self.field) == self.value)


@dataclass
class Step:
    method: str
    path: str
    body: dict[str, Any]
    key: str
    what: str
    target: Target


@dataclass
class ImportReport:
    rows: int = 0
    problems: list[Problem] = field(default_factory=list)
    steps: list[Step] = field(default_factory=list)
    done: int = 0  # steps the ledger holds after sending them
    unchanged: int = 0  # rows already in the ledger exactly as the file says
    earlier: list[Step] = field(default_factory=list)  # done, by an earlier request with the same key
    missed: list[Step] = field(default_factory=list)  # sent, yet the ledger does not hold them


def _ids(cell: str) -> list[str]:
    return [part.strip() for part in cell.split(";") if part.strip()]


def read_roster(text: str) -> tuple[list[Row], list[Problem]]:
    """Parse the CSV; problems of shape (header, kind, columns) come back with line numbers."""
    reader = csv.DictReader(io.StringIO(text.removeprefix("\ufeff")))
    header = [(name or "").strip().lower() for name in (reader.fieldnames or [])]
    problems: list[Problem] = []
    if not header:
        return [], [Problem(1, "the file is empty; the first line must name the columns")]
    unknown = [name for name in header if name not in COLUMNS]
    missing = [name for name in REQUIRED if name not in header]
    if unknown:
        problems.append(Problem(1, f"unknown column(s) {', '.join(unknown)}; the columns are {', '.join(COLUMNS)}"))
    if missing:
        problems.append(Problem(1, f"missing column(s) {', '.join(missing)}"))
    if problems:
        return [], problems
    reader.fieldnames = header
    rows: list[Row] = []
    for record in reader:
        line = reader.line_num
        extra = record.pop(None, None)
        cells = {k: (v or "").strip() for k, v in record.items()}
        kind = cells.get("kind", "").lower()
        if kind.startswith("#") or not any(cells.values()):
            continue
        if extra:
            problems.append(Problem(line, f"more cells than columns ({len(header)})"))
            continue
        if kind not in ("circle", "member"):
            problems.append(Problem(line, f"kind must be 'circle' or 'member', not {cells.get('kind')!r}"))
            continue
        wrong = [c for c in (MEMBER_ONLY if kind == "circle" else CIRCLE_ONLY) if cells.get(c)]
        if wrong:
            problems.append(Problem(line, f"{', '.join(wrong)} {'is' if len(wrong) == 1 else 'are'} not for a {kind}"))
        rows.append(Row(
            line=line, kind=kind, id=cells.get("id", ""), name=cells.get("name", ""), email=cells.get("email", ""),
            circles=_ids(cells.get("circles", "")), role=cells.get("role", "").lower(), parent=cells.get("parent", ""),
            leads=_ids(cells.get("leads", "")), weekly_hours=cells.get("weekly_hours", ""),
            raw="\x1f".join(f"{k}={cells.get(k, '')}" for k in COLUMNS),
        ))
    return rows, problems


def _model_problems(row: Row, model: Any, body: dict[str, Any]) -> list[Problem]:
    try:
        model.model_validate(body)
    except ValidationError as err:
        return [Problem(row.line, f"{e.field}: {e.message}") for e in field_errors(err)]
    return []


def _form(row: Row) -> dict[str, Any]:
    return {"id": row.id, "name": row.name, "parent": row.parent or None}


def _register(row: Row) -> dict[str, Any]:
    return {"id": row.id, "name": row.name, "email": row.email, "circles": row.circles, "role": row.role or "member"}


def _hours(row: Row) -> float | None:
    return float(row.weekly_hours) if row.weekly_hours else None


def check(rows: list[Row], directory: Directory) -> list[Problem]:
    """Every problem of the file, against itself and the ledger's current directory."""
    problems: list[Problem] = []
    circles = {r.id: r for r in rows if r.kind == "circle"}
    members = {r.id: r for r in rows if r.kind == "member"}
    seen: dict[tuple[str, str], int] = {}
    emails: dict[str, int] = {}
    known: dict[tuple[str, str], dict[str, Any] | None] = {}

    def existing(kind: str, item_id: str) -> dict[str, Any] | None:
        if (kind, item_id) not in known:
            known[(kind, item_id)] = directory.circle(item_id) if kind == "circle" else directory.member(item_id)
        return known[(kind, item_id)]

    for row in rows:
        if (row.kind, row.id) in seen:
            first = seen[(row.kind, row.id)]
            problems.append(Problem(row.line, f"{row.kind} '{row.id}' is already defined on line {first}"))
            continue
        seen[(row.kind, row.id)] = row.line
        if formula_like(row.name):
            # Names travel into exports opened in spreadsheets, which would run this one as a formula.
            problems.append(Problem(row.line, f"name {row.name!r} starts with {row.name[0]!r}, which a spreadsheet "
                                              "would run as a formula; start the name with a letter or digit"))
            continue
        if row.kind == "circle":
            model_problems = _model_problems(row, FormCircle, _form(row))
            model_problems += [Problem(row.line, f"leads: '{lead}' is not a valid member id")
                               for lead in row.leads if not SLUG_RE.match(lead)]
        else:
            model_problems = _model_problems(row, RegisterMember, _register(row))
            if row.weekly_hours:
                try:
                    DeclareCapacity(weekly_hours=float(row.weekly_hours))
                except (ValueError, ValidationError):
                    model_problems.append(Problem(row.line, "weekly_hours must be a number of hours from 0 to 168"))
            address = row.email.lower()
            if address and address in emails:
                model_problems.append(Problem(row.line, f"email {row.email} is also on line {emails[address]}"))
            emails.setdefault(address, row.line)
        problems += model_problems
        if model_problems:
            continue  # references of a malformed row would only repeat its problems

        if row.kind == "circle":
            if row.parent and row.parent not in circles and existing("circle", row.parent) is None:
                problems.append(Problem(row.line, f"parent '{row.parent}' is neither in this file nor in the ledger"))
            for lead in row.leads:
                if lead not in members and existing("member", lead) is None:
                    problems.append(Problem(row.line, f"lead '{lead}' is neither a member in this file nor in the "
                                                      "ledger"))
            there = existing("circle", row.id)
            if there is not None and (there["name"], there["parent"]) != (row.name, row.parent or None):
                problems.append(Problem(row.line, f"circle '{row.id}' already exists as {there['name']!r} (parent "
                                                  f"{there['parent'] or 'none'}); an import cannot rename or move it"))
        else:
            for circle_id in row.circles:
                if circle_id not in circles and existing("circle", circle_id) is None:
                    problems.append(Problem(row.line, f"circle '{circle_id}' is neither in this file nor in the "
                                                      "ledger"))
            there = existing("member", row.id)
            if there is not None:
                for name, value in (("name", row.name), ("email", row.email), ("role", row.role or "member")):
                    if str(there[name]).lower() != value.lower():
                        problems.append(Problem(row.line, f"member '{row.id}' already exists with {name} "
                                                          f"{there[name]!r}; an import cannot change it"))
    problems += _cycles(circles)
    return sorted(problems, key=lambda p: p.line)


def _cycles(circles: dict[str, Row]) -> list[Problem]:
    problems = []
    for row in circles.values():
        seen, parent = {row.id}, row.parent
        while parent in circles:
            if parent in seen:
                problems.append(Problem(row.line, f"circle '{row.id}' is its own ancestor (via '{parent}')"))
                break
            seen.add(parent)
            parent = circles[parent].parent
    return problems


def _key(row: Row, what: str, against: Any) -> str:
    """The Idempotency-Key of a step: its row, and the ledger's value the change was computed against.

    The same file on the same ledger gives the same keys (a re-run is a retry: nothing twice). Were it
    the row alone, re-applying a row after its value was changed since would repeat an old request, and
    the ledger would answer with its first answer and append nothing.
    """
    basis = row.raw + "\x1e" + json.dumps(against, sort_keys=True, default=str)
    digest = hashlib.sha256(basis.encode()).hexdigest()[:20]
    return f"roster/{row.kind}/{row.id}/{what}/{digest}"


def _next_key(key: str, replayed: Any) -> str:
    """The key to send a step again under after the ledger replayed `replayed` for `key` without holding
    the step's value (the value went A -> B by this key, then back to A). Derived from that earlier
    answer, so an import run again after an interruption arrives at the same keys."""
    earlier = replayed.get("event_id", "") if isinstance(replayed, dict) else ""
    digest = hashlib.sha256(f"{key}\n{earlier}".encode()).hexdigest()[:20]
    return f"{key.rpartition('/')[0]}/{digest}"


def plan_steps(rows: list[Row], directory: Directory, report: ImportReport) -> list[Step]:
    """The commands that bring the ledger to what the (checked) file says, in an order that works."""
    circles = [r for r in rows if r.kind == "circle"]
    members = [r for r in rows if r.kind == "member"]
    formed: set[str] = set()
    ordered: list[Row] = []
    pending = list(circles)
    while pending:  # parents first (the file was checked for cycles)
        ready = [r for r in pending if not r.parent or r.parent in formed or r.parent not in {c.id for c in pending}]
        for r in ready:
            formed.add(r.id)
            ordered.append(r)
        pending = [r for r in pending if r not in ready]

    steps: list[Step] = []
    for row in ordered:
        there = directory.circle(row.id)
        if there is None:
            steps.append(Step("POST", "/v1/circles", _form(row), _key(row, "form", None), f"form circle {row.id}",
                              Target("circle", row.id)))
        if row.leads and (there is None or there["leads"] != row.leads):
            steps.append(Step("PUT", f"/v1/circles/{segment(row.id)}/leads", {"leads": row.leads},
                              _key(row, "leads", None if there is None else there["leads"]),
                              f"set the leads of {row.id}",
                              Target("circle", row.id, "leads", row.leads)))
        elif there is not None:
            report.unchanged += 1
    # Members go between circles and leads: leads must be registered first.
    lead_steps = [s for s in steps if s.path.endswith("/leads")]
    steps = [s for s in steps if not s.path.endswith("/leads")]
    for row in members:
        there = directory.member(row.id)
        changed = False
        if there is None:
            steps.append(Step("POST", "/v1/members", _register(row), _key(row, "register", None), f"register {row.id}",
                              Target("member", row.id)))
            changed = True
        elif there["circles"] != row.circles:
            steps.append(Step("PUT", f"/v1/members/{segment(row.id)}/circles", {"circles": row.circles},
                              _key(row, "circles", there["circles"]),
                              f"move {row.id} to circles {', '.join(row.circles) or '(none)'}",
                              Target("member", row.id, "circles", row.circles)))
            changed = True
        hours = _hours(row)
        if row.weekly_hours and (there is None or there["weekly_hours"] != hours):
            steps.append(Step("PUT", f"/v1/members/{segment(row.id)}/capacity", {"weekly_hours": hours},
                              _key(row, "capacity", None if there is None else there["weekly_hours"]),
                              f"declare {hours:g} hours a week for {row.id}",
                              Target("member", row.id, "weekly_hours", hours)))
            changed = True
        report.unchanged += not changed
    return steps + lead_steps


def send_step(step: Step, send: Callable[[Step], LedgerAnswer], directory: Directory, report: ImportReport) -> None:
    """Send one step; a replayed answer counts only if the ledger holds the step's value (else resend)."""
    attempt = step
    for _ in range(MAX_RESENDS + 1):
        answer = send(attempt)
        if not answer.replayed:
            report.done += 1
            return
        if step.target.held_by(directory):  # e.g. an answer lost on the way, and the retry replayed
            report.done += 1
            report.earlier.append(step)
            return
        attempt = replace(attempt, key=_next_key(attempt.key, answer.body))
    report.missed.append(step)


def import_roster(text: str, directory: Directory, send: Callable[[Step], LedgerAnswer] | None) -> ImportReport:
    """Check the whole file, then (unless `send` is None: a dry run) send each step in order."""
    report = ImportReport()
    rows, problems = read_roster(text)
    report.rows = len(rows)
    if rows:  # even when some rows could not be read: report everything in one go
        problems += check(rows, directory)
    report.problems = sorted(problems, key=lambda p: p.line)
    if report.problems:
        return report
    report.steps = plan_steps(rows, directory, report)
    if send is not None:
        for step in report.steps:
            send_step(step, send, directory, report)
    return report


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser("import", help="import circles and members from a roster CSV",
                                   description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("roster", type=Path, help="the CSV file")
    parser.add_argument("--ledger-url", default=os.environ.get("LEDGER_URL", "http://127.0.0.1:8001"),
                        help="default: LEDGER_URL, else http://127.0.0.1:8001")
    credentials.add_token_argument(parser, "LEDGER_TOKEN")
    parser.add_argument("--dry-run", action="store_true", help="check the file and show what would be done")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    try:
        text = args.roster.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as err:
        print(f"Cannot read {args.roster}: {err}", file=sys.stderr)
        return 1
    with LedgerClient.patient(args.ledger_url, credentials.token(args, "LEDGER_TOKEN")) as client:

        def send(step: Step) -> LedgerAnswer:
            return client.command(step.method, step.path, step.body, key=step.key)

        try:
            report = import_roster(text, client, None if args.dry_run else send)
        except ClientError as err:
            print(f"The ledger refused: {err}. Fix it and run the import again: what was done is kept, and "
                  "nothing is done twice.", file=sys.stderr)
            return 2
    if report.problems:
        print(f"{args.roster}: {len(report.problems)} problem(s); nothing was imported.", file=sys.stderr)
        for problem in report.problems:
            print(f"{args.roster}:{problem}", file=sys.stderr)
        return 1
    verb = "Would do" if args.dry_run else "Done"
    for step in report.steps:
        if step not in report.missed:
            print(f"  {step.what}" + (" (made already by an earlier request; nothing appended now)"
                                      if step in report.earlier else ""))
    changes = len(report.steps) if args.dry_run else report.done
    print(f"{verb}: {changes} change(s) from {report.rows} row(s); {report.unchanged} row(s) already "
          "in the ledger as the file says.")
    if report.missed:
        print(f"{len(report.missed)} change(s) NOT made: the ledger kept answering that it had made them before, "
              "yet it does not hold them:", file=sys.stderr)
        for step in report.missed:
            print(f"  {step.what}", file=sys.stderr)
        return 2
    return 0
