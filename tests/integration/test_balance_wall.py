"""The appreciation wall on the read side: consent given and taken back by either party at any time
(ExchangeSharingChanged), never a private note, newest first in cursor pages down to the oldest."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from reciprocity.balance.app import create_app
from reciprocity.balance.db import make_engine, migrate
from reciprocity.balance.projection import BalanceProjection
from reciprocity.balance.tables import ON_THE_WALL
from reciprocity.contracts.events import ExchangeSharingChanged

from tests.support.auth import BALANCE_TOKEN, authorized
from tests.support.events import Exchange, Feeder, circle, member


def _wall(client, limit: int) -> list[dict]:  # type: ignore[no-untyped-def]
    seen: list[dict] = []
    cursor = None
    for _ in range(100):
        params = {"limit": limit, **({"cursor": cursor} if cursor else {})}
        answer = client.get("/v1/appreciations", query_string=params)
        assert answer.status_code == 200, answer.get_json()
        body = answer.get_json()
        seen += body["appreciations"]
        cursor = body["next_cursor"]
        if cursor is None:
            return seen
    raise AssertionError("paging did not end")


def sharing(x: Exchange, by: str, shared: bool) -> ExchangeSharingChanged:
    return ExchangeSharingChanged(**x.facts, by=by, shared=shared)


def test_consent_either_way_at_any_time_no_note_and_paging_reaches_the_oldest(tmp_path) -> None:  # type: ignore[no-untyped-def]
    engine = make_engine(f"sqlite:///{tmp_path}/balance.db")
    migrate(engine)
    feeder = Feeder(BalanceProjection(engine), partition=0)
    feeder.feed([circle("core"), *(member(m, ["core"]) for m in ("ann", "bob"))])
    today = date.today()
    shared = [Exchange("ann", "bob", 30, today - timedelta(days=i), "help", note=f"private note {i}", shared=True,
                       exchange_id=f"x-wall-{i:02d}") for i in range(25)]
    start = datetime.now(UTC) - timedelta(hours=1)
    feeder.feed([x.recorded() for x in shared], at=start)
    for i, x in reversed(list(enumerate(shared))):  # the oldest thanked first, the newest last
        feeder.feed([x.acknowledged(thanks=f"thanks {i}", shared=True)], at=start + timedelta(seconds=60 - i))
    client = authorized(create_app(engine=engine).test_client(), BALANCE_TOKEN)

    for limit in (1, 7, 25, 100):
        seen = _wall(client, limit)
        assert [e["exchange_id"] for e in seen] == [x.id for x in shared]  # newest thanks first, each once
    assert all(e["note"] == "" for e in seen)  # the note never leaves for the wall
    assert client.get("/v1/appreciations", query_string={"cursor": "nope"}).status_code == 422

    # bob stops sharing the newest; ann, who shared the oldest at first, takes it back and agrees again.
    newest, oldest = shared[0], shared[-1]
    feeder.feed([sharing(newest, "bob", False), sharing(oldest, "ann", False)], at=start + timedelta(minutes=2))
    ids = [e["exchange_id"] for e in _wall(client, 10)]
    assert newest.id not in ids and oldest.id not in ids and len(ids) == 23
    feeder.feed([sharing(oldest, "ann", True)], at=start + timedelta(minutes=3))
    assert [e["exchange_id"] for e in _wall(client, 10)][-1] == oldest.id

    # A recorder who did not share at first agrees later: then it shows.
    late = Exchange("bob", "ann", 20, today, "care", exchange_id="x-wall-late")
    feeder.feed([late.recorded(), late.acknowledged(shared=True)], at=start + timedelta(minutes=4))
    assert late.id not in [e["exchange_id"] for e in _wall(client, 50)]
    feeder.feed([sharing(late, "bob", True)], at=start + timedelta(minutes=5))
    assert late.id in [e["exchange_id"] for e in _wall(client, 50)]
    engine.dispose()


def test_thanks_given_at_one_instant_page_by_id_read_from_the_index(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """Acknowledgements sharing a time (an import, a burst) still page in one total order, each once; and
    that order is the wall index's own (migration 0010), so a page is cut without sorting the tie."""
    engine = make_engine(f"sqlite:///{tmp_path}/balance.db")
    migrate(engine)
    feeder = Feeder(BalanceProjection(engine), partition=0)
    feeder.feed([circle("core"), *(member(m, ["core"]) for m in ("ann", "bob"))])
    at = datetime.now(UTC) - timedelta(hours=1)
    tied = [Exchange("ann", "bob", 15, date.today(), "help", shared=True, exchange_id=f"x-tie-{i:02d}")
            for i in range(12)]
    feeder.feed([x.recorded() for x in tied], at=at)
    feeder.feed([x.acknowledged(shared=True) for x in tied], at=at + timedelta(minutes=1))
    client = authorized(create_app(engine=engine).test_client(), BALANCE_TOKEN)
    for limit in (1, 5, 12):
        assert [e["exchange_id"] for e in _wall(client, limit)] == sorted((x.id for x in tied), reverse=True)

    with engine.connect() as conn:
        plan = " ".join(row[-1] for row in conn.exec_driver_sql(
            f"EXPLAIN QUERY PLAN SELECT exchange_id FROM balance_exchanges WHERE generation = 1 AND {ON_THE_WALL} "
            "ORDER BY updated_at DESC, exchange_id DESC LIMIT 6"))
    assert "ix_balance_exchanges_wall" in plan and "TEMP B-TREE" not in plan, plan
    engine.dispose()
