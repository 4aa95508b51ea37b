"""Web sign-in accounts: Argon2id hashes in web_accounts, set by the seed and `reciprocity account`."""

from __future__ import annotations

import io
import sqlite3
from pathlib import Path

import pytest
from reciprocity.cli.main import main as cli
from reciprocity.web import accounts


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


def test_cli_set_password_from_stdin(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                     capsys: pytest.CaptureFixture[str]) -> None:
    url = f"sqlite:///{tmp_path}/web.db"
    monkeypatch.setenv("DATABASE_URL", url)
    monkeypatch.setattr("sys.stdin", io.StringIO("a-long-password\n"))
    assert cli(["account", "set-password", "ben", "--password-stdin"]) == 0
    assert "Password set for ben" in capsys.readouterr().out
    assert accounts.verify(url, "ben", "a-long-password")


def test_cli_refuses_a_short_password(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                      capsys: pytest.CaptureFixture[str]) -> None:
    url = f"sqlite:///{tmp_path}/web.db"
    monkeypatch.setattr("sys.stdin", io.StringIO("short\n"))
    assert cli(["account", "set-password", "ben", "--password-stdin", "--database-url", url]) == 2
    assert "at least 8 characters" in capsys.readouterr().err


def test_cli_prompts_twice_without_echo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    url = f"sqlite:///{tmp_path}/web.db"
    typed = iter(["one-password", "another-one"])
    monkeypatch.setattr("getpass.getpass", lambda _prompt="": next(typed))
    assert cli(["account", "set-password", "ben", "--database-url", url]) == 2
    assert not accounts.store(url).has_account("ben")
