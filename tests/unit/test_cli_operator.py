"""Operator commands without a broker: `dlq` refuses unknown topics, `export exchanges` leaves out the
parties' own words, `status` shows no always-empty column for notify."""

from __future__ import annotations

import csv
import io
import json
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from reciprocity.balance import tables as t
from reciprocity.balance.db import make_engine, migrate
from reciprocity.balance.generations import active_generation
from reciprocity.cli.export import EXCHANGE_FIELDS
from reciprocity.cli.main import main as cli
from reciprocity.contracts.topics import TOPIC_SPECS


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    capsys.readouterr()
    code = cli(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@pytest.fixture
def nowhere(monkeypatch: pytest.MonkeyPatch) -> None:
    """A broker address that never answers: a command that should not need Kafka must not try it."""
    monkeypatch.setenv("KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:1")


# --- dlq -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("argv", [
    ["dlq", "list", "bogus.topic"],
    ["dlq", "list", "bogus.topic.dlq"],
    ["dlq", "redrive", "nope", "--all"],
    ["dlq", "redrive", "nope.dlq", "--offset", "3"],
])
def test_dlq_names_an_unknown_topic_in_one_line(capsys: pytest.CaptureFixture[str], nowhere: None,
                                                argv: list[str]) -> None:
    code, out, err = run(capsys, *argv)
    assert code == 2 and out == ""
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert f"unknown topic '{argv[2]}'" in lines[0]
    for known in TOPIC_SPECS:
        assert known in lines[0]
    assert "Traceback" not in err and "BrokerUnavailable" not in err


def test_dlq_of_a_known_topic_without_kafka_is_one_line_too(capsys: pytest.CaptureFixture[str], nowhere: None,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    from reciprocity.messaging.event_log import BrokerUnavailable

    def absent(*_a: Any, **_k: Any) -> Any:
        raise BrokerUnavailable("topic ledger.exchanges.dlq does not exist (yet)")

    monkeypatch.setattr("reciprocity.cli.dlq.read_dead_letters", absent)
    code, out, err = run(capsys, "dlq", "list", "ledger.exchanges")
    assert code == 1 and out == "" and len(err.strip().splitlines()) == 1
    assert "does not exist (yet)" in err


# --- export ------------------------------------------------------------------------------------------------


def test_export_exchanges_leaves_out_notes_thanks_and_dispute_reasons(
        capsys: pytest.CaptureFixture[str], tmp_path: Path, nowhere: None) -> None:
    url = f"sqlite:///{tmp_path}/balance.db"
    engine = make_engine(url)
    migrate(engine)
    now = datetime.now(UTC)
    with engine.begin() as conn:
        gen = active_generation(conn)
        base = {"generation": gen, "giver": "ann", "receiver": "bob", "kind": "care", "minutes": 30,
                "occurred_on": date.today(), "recorded_by": "ann", "recorded_at": now, "updated_at": now,
                "thanks": None, "dispute_reason": None, "shared_by_recorder": False}
        conn.execute(sa.insert(t.exchanges), [
            {**base, "exchange_id": "x-1", "note": "SECRET-NOTE about bob's divorce", "status": "acknowledged",
             "thanks": "SECRET-THANKS", "shared_by_recorder": True, "recorded_event_id": "e1"},
            {**base, "exchange_id": "x-2", "note": "SECRET-NOTE 2", "status": "disputed",
             "dispute_reason": "SECRET-REASON", "recorded_event_id": "e2"},
        ])
    engine.dispose()
    code, out, _err = run(capsys, "export", "exchanges", "--csv", "--database-url", url)
    assert code == 0
    assert "SECRET" not in out
    rows = list(csv.DictReader(io.StringIO(out)))
    assert [r["exchange_id"] for r in rows] == ["x-1", "x-2"]
    header = set(rows[0])
    assert not header & {"note", "thanks", "dispute_reason"}
    assert {"exchange_id", "giver", "receiver", "kind", "minutes", "occurred_on", "status", "recorded_by",
            "shared_by_recorder", "shared_by_acknowledger"} <= header
    assert (rows[0]["minutes"], rows[0]["status"], rows[0]["shared_by_recorder"]) == ("30", "acknowledged", "True")
    assert not {"note", "thanks", "dispute_reason"} & set(EXCHANGE_FIELDS)


@pytest.mark.parametrize("name", ['=HYPERLINK("http://evil.example","Click")', "+1+cmd|' /C calc'!A0", "-2+3",
                                  "@SUM(1+1)*cmd|' /C calc'!A0", "\t=1+1", "\r=1+1"])
def test_exports_write_formula_like_names_as_text(capsys: pytest.CaptureFixture[str], tmp_path: Path,
                                                  nowhere: None, name: str) -> None:
    """A name the ledger took (before imports refused them, or through the API) reaches the CSV as data."""
    url = f"sqlite:///{tmp_path}/balance.db"
    engine = make_engine(url)
    migrate(engine)
    now = datetime.now(UTC)
    with engine.begin() as conn:
        gen = active_generation(conn)
        conn.execute(sa.insert(t.members), [
            {"generation": gen, "member_id": "eve", "name": name, "email": "eve@example.org", "role": "member",
             "registered_on": date.today()},
            {"generation": gen, "member_id": "bob", "name": "Bob - the builder", "email": "bob@example.org",
             "role": "member", "registered_on": date.today()},
        ])
        conn.execute(sa.insert(t.exchanges).values(
            generation=gen, exchange_id="x-1", giver="eve", receiver="bob", kind="care", minutes=30,
            occurred_on=date.today(), recorded_by="eve", recorded_at=now, updated_at=now, status="recorded",
            shared_by_recorder=False, note="", recorded_event_id="e1"))
    engine.dispose()
    for what in ("balances", "exchanges"):
        code, out, _err = run(capsys, "export", what, "--csv", "--database-url", url)
        assert code == 0
        rows = list(csv.DictReader(io.StringIO(out)))
        cells = [cell for row in rows for cell in row.values()]
        assert "'" + name in cells, what  # the apostrophe makes a spreadsheet show it as text
        assert not any(cell.startswith(("=", "+", "-", "@", "\t", "\r")) for cell in cells), what
        assert "Bob - the builder" in cells  # a dash inside a name is nothing to escape
    code, out, _err = run(capsys, "export", "balances", "--csv", "--database-url", url)
    eve = next(r for r in csv.DictReader(io.StringIO(out)) if r["member_id"] == "eve")
    assert (eve["given_minutes"], eve["reciprocity_index"]) == ("0", "1.0")  # numbers stay numbers


# --- status -----------------------------------------------------------------------------------------------------


def test_status_shows_no_last_event_column_for_notify(capsys: pytest.CaptureFixture[str], tmp_path: Path,
                                                      nowhere: None, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "200")  # rich: one line per row, headers unwrapped
    balance_url = f"sqlite:///{tmp_path}/balance.db"
    engine = make_engine(balance_url)
    migrate(engine)
    with engine.begin() as conn:
        gen = active_generation(conn)
        conn.execute(sa.insert(t.offsets).values(generation=gen, topic="ledger.exchanges", partition=0,
                                                 next_offset=5, last_event_at=datetime(2026, 3, 1, tzinfo=UTC)))
    engine.dispose()
    notify_url = f"sqlite:///{tmp_path}/notify.db"
    notify = sa.create_engine(notify_url)
    with notify.begin() as conn:
        conn.execute(sa.text("CREATE TABLE notify_offsets (topic TEXT, partition INTEGER, next_offset BIGINT)"))
        conn.execute(sa.text("INSERT INTO notify_offsets VALUES ('balance.signals', 0, 7)"))
    notify.dispose()
    ends = {("ledger.exchanges", 0): 5, ("balance.signals", 0): 9}
    monkeypatch.setattr("reciprocity.messaging.inspect.end_offsets", lambda *_a, **_k: ends)

    code, out, _err = run(capsys, "status", "--json", "--database-url", balance_url,
                          "--notify-database-url", notify_url)
    assert code == 0
    projections = {p["projection"].split(" ")[0]: p for p in json.loads(out)["projections"]}
    (notified,) = projections["notify"]["partitions"]
    assert notified == {"topic": "balance.signals", "partition": 0, "applied_offset": 7, "end_offset": 9, "lag": 2}
    (balanced,) = projections["balance"]["partitions"]
    assert balanced["last_event_at"].startswith("2026-03-01")

    code, out, _err = run(capsys, "status", "--database-url", balance_url, "--notify-database-url", notify_url)
    assert code == 0
    balance_part, notify_part = out.split("notify — lag")
    assert "last event" in balance_part and "2026-03-01" in balance_part
    assert "last event" not in notify_part and "balance.signals" in notify_part


# --- tokens: from the environment or stdin, never argv ---------------------------------------------------


def test_tokens_are_not_taken_on_the_command_line(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    roster = tmp_path / "roster.csv"
    roster.write_text("kind,id,name\n")
    with pytest.raises(SystemExit) as refused:
        cli(["import", str(roster), "--token", "s3cret"])
    assert refused.value.code == 2 and "--token" in capsys.readouterr().err


def test_outside_development_a_command_refuses_the_local_token(capsys: pytest.CaptureFixture[str], tmp_path: Path,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("RECIPROCITY_ENV")
    monkeypatch.delenv("LEDGER_TOKEN", raising=False)
    roster = tmp_path / "roster.csv"
    roster.write_text("kind,id,name\n")
    with pytest.raises(SystemExit) as refused:
        cli(["import", str(roster), "--ledger-url", "http://127.0.0.1:9"])
    assert "LEDGER_TOKEN is the local development default" in str(refused.value.code)
    monkeypatch.setattr("sys.stdin", io.StringIO("\n"))
    with pytest.raises(SystemExit, match="no LEDGER_TOKEN on standard input"):
        cli(["import", str(roster), "--ledger-url", "http://127.0.0.1:9", "--token-stdin"])
