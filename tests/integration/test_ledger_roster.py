"""`reciprocity import roster.csv` against a real ledger process: a bad file imports nothing and says
where it is wrong; a good file imports everything, once."""

from __future__ import annotations

import os
import shutil
import uuid
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from unittest import mock

import pytest
from reciprocity.cli.main import main as cli
from reciprocity.contracts.events import MemberJoinedCircle, MemberLeftCircle
from reciprocity.ledger.client import LedgerClient

from tests.support.ledger import TOKEN, new_prefix, read_events
from tests.support.services import ServiceProcess

pytestmark = pytest.mark.kafka

SAMPLE = Path(__file__).parents[1] / "data" / "roster-sample.csv"


@pytest.fixture(scope="module")
def ledger(kafka_bootstrap: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str]]:
    prefix = new_prefix("roster")
    env = {"KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap, "TOPIC_PREFIX": prefix, "LEDGER_TOKEN": TOKEN}
    with ServiceProcess("reciprocity.ledger.app", env=env, log_dir=tmp_path_factory.mktemp("roster")) as process:
        yield process.url, prefix


def run_import(url: str, path: Path, *extra: str) -> int:
    # The token comes from the environment, as an operator's would: never on the command line.
    with mock.patch.dict(os.environ, {"LEDGER_TOKEN": TOKEN}):
        return cli(["import", str(path), "--ledger-url", url, *extra])


def test_a_bad_file_imports_nothing_and_names_the_lines(ledger, kafka_bootstrap: str, tmp_path, capsys) -> None:
    url, prefix = ledger
    bad = tmp_path / "bad.csv"
    bad.write_text(SAMPLE.read_text().replace("aisha.bello@example.org", "aisha-at-example.org")
                   + "member,lost-soul,Lost Soul,lost@example.org,atlantis,,,,\n")
    before = len(read_events(kafka_bootstrap, prefix))
    assert run_import(url, bad) == 1
    err = capsys.readouterr().err
    assert "nothing was imported" in err
    assert f"{bad}:line 9: email:" in err
    assert f"{bad}:line 12: circle 'atlantis' is neither in this file nor in the ledger" in err
    assert len(read_events(kafka_bootstrap, prefix)) == before


def test_a_good_file_imports_everything_once(ledger, kafka_bootstrap: str, tmp_path, capsys) -> None:
    url, prefix = ledger
    roster = tmp_path / "roster.csv"
    shutil.copy(SAMPLE, roster)
    assert run_import(url, roster, "--dry-run") == 0
    assert "Would do: 15 change(s)" in capsys.readouterr().out
    assert read_events(kafka_bootstrap, prefix) == []

    assert run_import(url, roster) == 0
    events = [e for _, e in read_events(kafka_bootstrap, prefix)]
    assert Counter(type(e).__name__ for e in events) == {
        "CircleFormed": 4, "MemberRegistered": 5, "CircleLeadsChanged": 3, "CapacityDeclared": 3}
    circles = {e.circle_id: e.parent for e in events if type(e).__name__ == "CircleFormed"}
    assert circles == {"harbour": None, "kitchen": "harbour", "bakery": "kitchen", "garden": "harbour"}
    operator = [e.member_id for e in events if type(e).__name__ == "MemberRegistered" and e.role == "operator"]
    assert operator == ["mira-jovanovic"]

    # Again: nothing to do, nothing appended.
    assert run_import(url, roster) == 0
    assert "Done: 0 change(s) from 9 row(s); 9 row(s) already in the ledger" in capsys.readouterr().out
    assert len(read_events(kafka_bootstrap, prefix)) == len(events)

    # A later roster moves a member and refers to circles the ledger already has.
    later = tmp_path / "later.csv"
    later.write_text("kind,id,name,email,circles\n"
                     "member,rosa-delgado,Rosa Delgado,rosa.delgado@example.org,garden;kitchen\n"
                     "member,new-cook,New Cook,new.cook@example.org,kitchen;bakery\n")
    assert run_import(url, later) == 0
    added = [e for _, e in read_events(kafka_bootstrap, prefix) if e not in events]
    assert sorted(type(e).__name__ for e in added) == ["MemberJoinedCircle", "MemberRegistered"]


def test_a_row_applied_again_after_a_change_on_the_web_is_applied(ledger, kafka_bootstrap: str, tmp_path,
                                                                   capsys) -> None:
    """The import moves a member, the web moves them back, the same file again: the ledger must not
    answer the import with its first answer (a replay, nothing appended) while the member stays put."""
    url, prefix = ledger
    u = uuid.uuid4().hex[:6]
    member, before, after = f"moved-{u}", f"before-{u}", f"after-{u}"
    first = tmp_path / "first.csv"
    first.write_text("kind,id,name,email,circles\n"
                     f"circle,{before},Before,,\ncircle,{after},After,,\n"
                     f"member,{member},Moved,{member}@example.org,{before}\n")
    moved = tmp_path / "moved.csv"
    moved.write_text(f"kind,id,name,email,circles\nmember,{member},Moved,{member}@example.org,{after}\n")
    assert run_import(url, first) == 0 and run_import(url, moved) == 0
    with LedgerClient.patient(url, TOKEN) as client:
        client.command("PUT", f"/v1/members/{member}/circles", {"circles": [before]}, key=f"web-{u}")
        capsys.readouterr()

        assert run_import(url, moved) == 0
        assert client.member(member)["circles"] == [after]
    assert "Done: 1 change(s) from 1 row(s)" in capsys.readouterr().out
    moves = [type(e).__name__ for _, e in read_events(kafka_bootstrap, prefix)
             if isinstance(e, (MemberJoinedCircle, MemberLeftCircle)) and e.member_id == member]
    assert moves == ["MemberLeftCircle", "MemberJoinedCircle"] * 3  # import, web, import again
