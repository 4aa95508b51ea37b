"""The bench's balance consumer is wired as the service would be for the database it is given."""

from __future__ import annotations

from reciprocity.messaging.consumer import CatchUp

from bench.projection import catch_up_for


def test_catch_up_spans_polls_on_sqlite_only_whatever_the_environment_says(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("DATABASE_URL", "sqlite:///var/balance.db")
    assert catch_up_for("postgresql+psycopg://postgres@127.0.0.1:5432/bench") is None
    assert isinstance(catch_up_for("sqlite:////tmp/bench.db"), CatchUp)
    monkeypatch.setenv("DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/balance")
    assert isinstance(catch_up_for("sqlite:////tmp/bench.db"), CatchUp)
