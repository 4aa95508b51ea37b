"""Outside development (no RECIPROCITY_ENV=development), a service started with an empty secret or its
local default exits at once with one line naming the variable; with real secrets it starts."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from reciprocity.common.settings import LOCAL_SECRETS, LocalSecretRefused
from reciprocity.ledger.app import create_app as ledger_app
from reciprocity.ledger.settings import LedgerSettings
from reciprocity.web.settings import WebSettings

REAL = {name: f"real-{name.lower()}-0123456789abcdef" for name in LOCAL_SECRETS}

CASES = [
    # (module, variable refused, its value: None = not set at all, so the default applies)
    ("reciprocity.ledger.app", "LEDGER_TOKEN", None),
    ("reciprocity.balance.app", "BALANCE_TOKEN", None),
    ("reciprocity.notify.app", "NOTIFY_TOKEN", ""),
    ("reciprocity.web.app", "SECRET_KEY", None),
]


@pytest.mark.parametrize(("module", "variable", "value"), CASES, ids=[f"{m.split('.')[1]}-{v}" for m, v, _ in CASES])
def test_a_service_refuses_a_local_secret_outside_development(tmp_path: Path, module: str, variable: str,
                                                                value: str | None) -> None:
    env = {k: v for k, v in os.environ.items() if k not in LOCAL_SECRETS and k != "RECIPROCITY_ENV"}
    env.update({k: v for k, v in REAL.items() if k != variable})
    if value is not None:
        env[variable] = value
    env.update(DATABASE_URL=f"sqlite:///{tmp_path}/db.sqlite", KAFKA_BOOTSTRAP_SERVERS="127.0.0.1:9",
               PORT="9", HOST="127.0.0.1")
    done = subprocess.run([sys.executable, "-m", module], env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 1, done.stdout + done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and variable in lines[0] and "refusing to start" in lines[0], done.stderr
    assert value is None or not value.strip() or value not in lines[0]  # the secret itself is never printed
    assert not (tmp_path / "db.sqlite").exists()  # at once: before touching anything


@pytest.mark.parametrize(("variable", "value"), [("LEDGER_TOKEN", LOCAL_SECRETS["LEDGER_TOKEN"]),
                                                ("BALANCE_TOKEN", "  "), ("NOTIFY_TOKEN", None)])
def test_the_web_refuses_each_local_token_outside_development(monkeypatch: pytest.MonkeyPatch, variable: str,
                                                              value: str | None) -> None:
    """The web holds all three tokens (the processes above show the same check stopping a real start)."""
    monkeypatch.delenv("RECIPROCITY_ENV")
    for name, real in REAL.items():
        monkeypatch.setenv(name, real)
    if value is None:
        monkeypatch.delenv(variable)
    else:
        monkeypatch.setenv(variable, value)
    with pytest.raises(LocalSecretRefused, match=f"refusing to start: {variable} is"):
        WebSettings().check()


def test_real_secrets_pass_and_development_accepts_the_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("RECIPROCITY_ENV")
    for name, value in REAL.items():
        monkeypatch.setenv(name, value)
    WebSettings().check()
    assert ledger_app(LedgerSettings(kafka_bootstrap_servers="127.0.0.1:9")) is not None
    monkeypatch.setenv("LEDGER_TOKEN", "")
    with pytest.raises(LocalSecretRefused, match="LEDGER_TOKEN is empty"):
        ledger_app(LedgerSettings(kafka_bootstrap_servers="127.0.0.1:9"))
    monkeypatch.setenv("RECIPROCITY_ENV", "development")
    monkeypatch.delenv("LEDGER_TOKEN")
    monkeypatch.delenv("SECRET_KEY")
    WebSettings().check()
    assert ledger_app(LedgerSettings(kafka_bootstrap_servers="127.0.0.1:9")) is not None
