"""Checking a roster CSV before anything is imported: every problem with its line number."""

import uuid
from dataclasses import replace
from pathlib import Path
from typing import Any

from reciprocity.cli.roster import ImportReport, Step, check, import_roster, plan_steps, read_roster, send_step
from reciprocity.ledger.client import LedgerAnswer

SAMPLE = Path(__file__).parents[1] / "data" / "roster-sample.csv"
HEADER = "kind,id,name,email,circles,role,parent,leads,weekly_hours\n"


class FakeDirectory:
    def __init__(self, circles: dict[str, dict[str, Any]] | None = None,
                 members: dict[str, dict[str, Any]] | None = None) -> None:
        self.circles, self.members = circles or {}, members or {}

    def circle(self, circle_id: str) -> dict[str, Any] | None:
        return self.circles.get(circle_id)

    def member(self, member_id: str) -> dict[str, Any] | None:
        return self.members.get(member_id)


def problems_of(text: str, directory: FakeDirectory | None = None) -> list[str]:
    report = import_roster(text, directory or FakeDirectory(), send=None)
    return [str(p) for p in report.problems]


def test_the_sample_file_is_clean_and_plans_parents_first() -> None:
    report = import_roster(SAMPLE.read_text(), FakeDirectory(), send=None)
    assert report.problems == [] and report.rows == 9
    formed = [s.body["id"] for s in report.steps if s.path == "/v1/circles"]
    assert formed.index("harbour") < formed.index("kitchen") < formed.index("bakery")
    kinds = [s.path.split("/")[2] + ("/leads" if s.path.endswith("leads") else "") for s in report.steps]
    assert kinds.index("members") > max(i for i, k in enumerate(kinds) if k == "circles")
    assert all(k.endswith("/leads") for k in kinds[kinds.index("circles/leads"):])
    assert len({s.key for s in report.steps}) == len(report.steps)


def test_every_bad_row_is_reported_with_its_line() -> None:
    text = HEADER + "\n".join([
        "circle,Bad Id,Bad,,,,,,",                               # line 2
        "circle,ok-circle,Ok,,,,nowhere,ghost-lead,",            # line 3
        "member,ann,Ann,not-an-email,ok-circle,,,,",             # line 4
        "member,bob,Bob,bob@example.org,ok-circle;missing,,,,",  # line 5
        "member,ann,Ann again,ann2@example.org,,,,,",            # line 6
        "team,x1,X,,,,,,",                                       # line 7
        "member,cy,Cy,cy@example.org,,chief,,,500",              # line 8
        "member,di,Di,bob@example.org,,,ok-circle,,",            # line 9
    ]) + "\n"
    found = problems_of(text)
    assert any(p.startswith("line 2: id:") for p in found)
    assert "line 3: parent 'nowhere' is neither in this file nor in the ledger" in found
    assert any(p.startswith("line 3: lead 'ghost-lead'") for p in found)
    assert any(p.startswith("line 4: email:") for p in found)
    assert any(p.startswith("line 5: circle 'missing'") for p in found)
    assert "line 6: member 'ann' is already defined on line 4" in found
    assert any(p.startswith("line 7: kind must be") for p in found)
    assert any(p.startswith("line 8: role:") for p in found)
    assert any(p.startswith("line 8: weekly_hours") for p in found)
    assert any(p.startswith("line 9: parent is not for a member") for p in found)
    assert any(p.startswith("line 9: email bob@example.org is also on line 5") for p in found)


def test_names_a_spreadsheet_would_run_as_formulas_are_refused() -> None:
    text = HEADER + "\n".join([
        'circle,evil,"=HYPERLINK(""http://evil.example"",""x"")",,,,,,',  # line 2
        "member,ann,+Ann,ann@example.org,,,,,",                          # line 3
        "member,bob,-Bob,bob@example.org,,,,,",                          # line 4
        "member,cy,@Cy,cy@example.org,,,,,",                             # line 5
        'member,di,"\t=1+1",di@example.org,,,,,',                       # line 6: a tab, stripped, then =
        "member,ed,Ed -the- Smith,ed@example.org,,,,,",                  # line 7: fine
    ]) + "\n"
    report = import_roster(text, FakeDirectory(), send=None)
    found = [str(p) for p in report.problems]
    for line, first in ((2, "="), (3, "+"), (4, "-"), (5, "@"), (6, "=")):
        assert any(p.startswith(f"line {line}: name ") and f"starts with '{first}'" in p and "formula" in p
                   for p in found), (line, found)
    assert not any(p.startswith("line 7") for p in found)


def test_header_problems() -> None:
    assert problems_of("") == ["line 1: the file is empty; the first line must name the columns"]
    assert "unknown column(s) colour" in problems_of("kind,id,name,colour\n")[0]
    assert "missing column(s) name" in problems_of("kind,id\n")[0]


def test_references_to_the_ledger_and_cycles() -> None:
    ledger = FakeDirectory(circles={"existing": {"id": "existing", "name": "Existing", "parent": None, "leads": []}},
                           members={"old-hand": {"id": "old-hand", "name": "Old Hand", "email": "old@example.org",
                                                 "role": "member", "circles": [], "weekly_hours": None}})
    ok = HEADER + "circle,new-one,New,,,,existing,old-hand,\nmember,newbie,Newbie,n@example.org,existing;new-one,,,,\n"
    assert problems_of(ok, ledger) == []
    cycle = HEADER + "circle,aa,A,,,,bb,,\ncircle,bb,B,,,,aa,,\n"
    assert any("its own ancestor" in p for p in problems_of(cycle))
    renamed = HEADER + "circle,existing,Renamed,,,,,,\nmember,old-hand,Old Hand,other@example.org,,,,,\n"
    found = problems_of(renamed, ledger)
    assert any(p.startswith("line 2: circle 'existing' already exists") for p in found)
    assert any(p.startswith("line 3: member 'old-hand' already exists with email") for p in found)


def test_what_exists_already_is_left_alone_and_members_move() -> None:
    ledger = FakeDirectory(
        circles={"harbour": {"id": "harbour", "name": "Harbour Collective", "parent": None, "leads": []}},
        members={"rosa-delgado": {"id": "rosa-delgado", "name": "Rosa Delgado", "email": "rosa.delgado@example.org",
                                  "role": "member", "circles": ["harbour"], "weekly_hours": 3.0}})
    rows, problems = read_roster(SAMPLE.read_text())
    assert problems == [] and check(rows, ledger) == []
    report = ImportReport()
    steps = plan_steps(rows, ledger, report)
    assert not any(s.body.get("id") in ("harbour", "rosa-delgado") and s.method == "POST" for s in steps)
    assert [s.body for s in steps if s.path == "/v1/members/rosa-delgado/circles"] == [{"circles": ["garden"]}]
    assert not any(s.path == "/v1/members/rosa-delgado/capacity" for s in steps)


def test_comments_blank_lines_and_a_byte_order_mark() -> None:
    text = "\ufeff" + HEADER + "# a comment,,,,\n\ncircle,solo,Solo,,,,,,\n"
    rows, problems = read_roster(text)
    assert problems == [] and [(r.id, r.line) for r in rows] == [("solo", 4)]


class FakeLedger(FakeDirectory):
    """A directory that also takes the steps, with the ledger's idempotency: a key seen before gets its
    first answer again (replayed) and changes nothing."""

    def __init__(self, **kw: Any) -> None:
        super().__init__(**kw)
        self.answers: dict[str, LedgerAnswer] = {}
        self.appended = 0

    def send(self, step: Step) -> LedgerAnswer:
        if step.key in self.answers:
            return replace(self.answers[step.key], replayed=True)
        # Only what these tests send: PUT /v1/members/<id>/circles and /v1/members/<id>/capacity.
        _v1, _members, member_id, what = step.path.strip("/").split("/")
        field = {"circles": "circles", "capacity": "weekly_hours"}[what]
        self.members[member_id][field] = step.body[field]
        self.appended += 1
        self.answers[step.key] = LedgerAnswer(201, {"event_id": str(uuid.uuid4())})
        return self.answers[step.key]


def rosa_in(circles: list[str], hours: float | None = 3.0) -> FakeLedger:
    ledger = FakeLedger(circles={c: {"id": c, "name": c.title(), "parent": None, "leads": []}
                                 for c in ("garden", "kitchen", "bakery")})
    ledger.members["rosa-delgado"] = {"id": "rosa-delgado", "name": "Rosa Delgado", "email": "rosa@example.org",
                                      "role": "member", "circles": circles, "weekly_hours": hours}
    return ledger


ROSA = HEADER + "member,rosa-delgado,Rosa Delgado,rosa@example.org,garden,,,,3\n"


def test_a_row_applied_again_after_its_value_changed_is_a_new_request() -> None:
    """Circles set by the import, changed on the web since, the same roster again: the import must move
    the member back, not send the first request's key again (which the ledger answers with a replay)."""
    ledger = rosa_in(["kitchen"])
    assert import_roster(ROSA, ledger, ledger.send).done == 1
    assert ledger.members["rosa-delgado"]["circles"] == ["garden"]

    ledger.members["rosa-delgado"]["circles"] = ["bakery"]  # changed on the web
    report = import_roster(ROSA, ledger, ledger.send)
    assert ledger.members["rosa-delgado"]["circles"] == ["garden"]
    assert (report.done, report.earlier, report.missed, ledger.appended) == (1, [], [], 2)


def test_the_same_roster_on_the_same_state_sends_the_same_keys() -> None:
    """An interrupted import, run again, repeats its keys: the ledger appends nothing twice."""
    first = import_roster(ROSA, rosa_in(["kitchen"], hours=None), send=None).steps
    again = import_roster(ROSA, rosa_in(["kitchen"], hours=None), send=None).steps
    assert [s.key for s in first] == [s.key for s in again] and len(first) == 2
    elsewhere = import_roster(ROSA, rosa_in(["bakery"], hours=None), send=None).steps
    assert elsewhere[0].key != first[0].key  # circles: computed against another value
    assert elsewhere[1].key == first[1].key  # capacity: against the same value (none declared)


def test_a_value_changed_back_is_set_again_under_a_key_that_follows_from_the_replay() -> None:
    """A -> B by the import, B -> A on the web, the same roster again: the first key replays an answer
    the ledger no longer holds; the step goes again, and the report says what was really done."""
    ledger = rosa_in(["kitchen"])
    import_roster(ROSA, ledger, ledger.send)
    ledger.members["rosa-delgado"]["circles"] = ["kitchen"]  # changed back on the web
    report = import_roster(ROSA, ledger, ledger.send)
    assert ledger.members["rosa-delgado"]["circles"] == ["garden"]
    assert (report.done, report.earlier, report.missed, ledger.appended) == (1, [], [], 2)

    # And once more: the chain of keys goes one step further, and still appends only what is needed.
    ledger.members["rosa-delgado"]["circles"] = ["kitchen"]
    assert import_roster(ROSA, ledger, ledger.send).done == 1 and ledger.appended == 3
    assert import_roster(ROSA, ledger, ledger.send).steps == [] and ledger.appended == 3


def test_a_replay_the_ledger_holds_counts_as_made_earlier_and_one_it_does_not_hold_is_reported() -> None:
    ledger = rosa_in(["kitchen"])
    (step,) = import_roster(ROSA, ledger, send=None).steps

    def lost_answer(sent: Step) -> LedgerAnswer:  # the first try landed, its answer got lost; the retry replays
        ledger.send(sent)
        return ledger.send(sent)

    report = ImportReport()
    send_step(step, lost_answer, ledger, report)
    assert (report.done, report.earlier, report.missed) == (1, [step], [])

    stuck = ImportReport()
    send_step(step, lambda _s: LedgerAnswer(201, {"event_id": "e"}, replayed=True), rosa_in(["kitchen"]), stuck)
    assert (stuck.done, stuck.missed) == (0, [step])
