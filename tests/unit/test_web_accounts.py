"""Web sign-in accounts: Argon2id hashes in web_accounts, set by the seed and `reciprocity account`."""

from __future__ import annotations

import io
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest
from reciprocity.cli.main import main as cli
from reciprocity.ledger.app import create_app as ledger_app
from reciprocity.ledger.app import ledger_of
from reciprocity.ledger.settings import LedgerSettings
from reciprocity.web import accounts

from tests.support.memory_log import MemoryLog
from tests.support.services import serving

LEDGER_TOKEN = "accounts-test-ledger-token"


@pytest.fixture
def ledger(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """The real ledger over an in-memory log, knowing member ben; the CLI finds it through the environment."""
    app = ledger_app(LedgerSettings(kafka_bootstrap_servers="127.0.0.1:1", ledger_token=LEDGER_TOKEN),
                     event_log=MemoryLog())  # type: ignore[arg-type]
    ledger_of(app).stale_reason = None  # as if loaded from empty topics
    client = app.test_client()
    auth = {"Authorization": f"Bearer {LEDGER_TOKEN}"}
    for n, (path, body) in enumerate([("/v1/circles", {"id": "aa", "name": "AA"}),
                                      ("/v1/members", {"id": "ben", "name": "Ben", "email": "ben@example.org",
                                                       "circles": ["aa"]})]):
        assert client.post(path, json=body, headers={**auth, "Idempotency-Key": f"k{n}"}).status_code == 201
    with serving(app) as url:
        monkeypatch.setenv("LEDGER_URL", url)
        monkeypatch.setenv("LEDGER_TOKEN", LEDGER_TOKEN)
        yield url


def test_set_and_verify(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/var/web.db"  # the folder is created on first use
    accounts.set_password(url, "ada", "reciprocity-demo")
    assert accounts.verify(url, "ada", "reciprocity-demo")
    assert not accounts.verify(url, "ada", "reciprocity-demO")
    assert not accounts.verify(url, "ben", "reciprocity-demo")


def test_the_hash_is_argon2id_and_replacing_keeps_created_at(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/web.db"
    accounts.set_password(url, "ada", "first-password")
    with sqlite3.connect(tmp_path / "web.db") as db:
        (hash1, created1), = db.execute("select password_hash, created_at from web_accounts").fetchall()
    accounts.set_password(url, "ada", "second-password")
    with sqlite3.connect(tmp_path / "web.db") as db:
        (hash2, created2), = db.execute("select password_hash, created_at from web_accounts").fetchall()
    assert hash1.startswith("$argon2id$") and hash2 != hash1 and created2 == created1
    assert "second-password" not in hash2
    assert accounts.verify(url, "ada", "second-password") and not accounts.verify(url, "ada", "first-password")


@pytest.mark.parametrize(("member_id", "password", "words"), [
    ("ada", "short", "at least 8"),
    ("Not A Slug", "long-enough", "not a member id"),
    ("ada", "x" * 2000, "at most"),
])
def test_bad_input_changes_nothing(tmp_path: Path, member_id: str, password: str, words: str) -> None:
    url = f"sqlite:///{tmp_path}/web.db"
    with pytest.raises(ValueError, match=words):
        accounts.set_password(url, member_id, password)
    assert not accounts.store(url).has_account(member_id)


def test_cli_set_password_from_stdin(ledger: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                     capsys: pytest.CaptureFixture[str]) -> None:
    url = f"sqlite:///{tmp_path}/web.db"
    monkeypatch.setenv("DATABASE_URL", url)
    monkeypatch.setattr("sys.stdin", io.StringIO("a-long-password\n"))
    assert cli(["account", "set-password", "ben", "--password-stdin"]) == 0
    assert "Password set for ben" in capsys.readouterr().out
    assert accounts.verify(url, "ben", "a-long-password")


def test_cli_refuses_a_short_password(ledger: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                      capsys: pytest.CaptureFixture[str]) -> None:
    url = f"sqlite:///{tmp_path}/web.db"
    monkeypatch.setattr("sys.stdin", io.StringIO("short\n"))
    assert cli(["account", "set-password", "ben", "--password-stdin", "--database-url", url]) == 2
    assert "at least 8 characters" in capsys.readouterr().err


def test_cli_prompts_twice_without_echo(ledger: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    url = f"sqlite:///{tmp_path}/web.db"
    typed = iter(["one-password", "another-one"])
    monkeypatch.setattr("getpass.getpass", lambda _prompt="": next(typed))
    assert cli(["account", "set-password", "ben", "--database-url", url]) == 2
    assert not accounts.store(url).has_account("ben")


def test_cli_refuses_a_member_the_ledger_does_not_know(ledger: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    url = f"sqlite:///{tmp_path}/web.db"
    monkeypatch.setattr("sys.stdin", io.StringIO("a-long-password\n"))
    assert cli(["account", "set-password", "bne", "--password-stdin", "--database-url", url]) == 2
    assert "knows no member 'bne'" in capsys.readouterr().err
    assert not accounts.store(url).has_account("bne")


def test_cli_needs_the_right_ledger_token(ledger: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    url = f"sqlite:///{tmp_path}/web.db"
    monkeypatch.setenv("LEDGER_TOKEN", "not-the-token")
    monkeypatch.setattr("sys.stdin", io.StringIO("a-long-password\n"))
    assert cli(["account", "set-password", "ben", "--password-stdin", "--database-url", url]) == 1
    assert "401" in capsys.readouterr().err
    assert not accounts.store(url).has_account("ben")
