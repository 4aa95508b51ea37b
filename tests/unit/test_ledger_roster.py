"""Checking a roster CSV before anything is imported: every problem with its line number."""

from pathlib import Path
from typing import Any

from reciprocity.cli.roster import ImportReport, check, import_roster, plan_steps, read_roster

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
