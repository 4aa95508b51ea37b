"""Fixtures of the page tests: the demo world behind fake ledger, balance and notify clients, and the app over it."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.web_fakes import demo_world, fake_clients, make_app


@pytest.fixture
def clients():  # type: ignore[no-untyped-def]
    c = fake_clients()
    demo_world(c)
    return c


@pytest.fixture
def app(tmp_path: Path, clients):  # type: ignore[no-untyped-def]
    return make_app(f"sqlite:///{tmp_path}/web.db", clients)
