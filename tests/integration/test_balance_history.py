"""A member's history through balance's read API, on SQLite and PostgreSQL: newest first, cursor paging
that neither skips nor repeats, the filters (status, kind, the other party, dates), bad input refused,
and queries that an index serves (no scan of everyone's exchanges for one person's page)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest
from reciprocity.balance.app import create_app
from reciprocity.balance.db import make_engine, migrate
from reciprocity.balance.projection import BalanceProjection
from sqlalchemy import event

from tests.support.auth import BALANCE_TOKEN, authorized
from tests.support.events import Exchange, Feeder, circle, member


def _history(db_url: str):  # type: ignore[no-untyped-def]
    """ann's 23 exchanges (with bob, cat and dan, several per day, some acknowledged) among others'."""
    engine = make_engine(db_url)
    migrate(engine)
    feeder = Feeder(BalanceProjection(engine), partition=0)
    feeder.feed([circle("core"), *(member(m, ["core"]) for m in ("ann", "bob", "cat", "dan", "eve"))])
    today = date.today()
    kinds = ("help", "mentoring", "care")
    mine = []
    for i in range(23):
        other = ("bob", "cat", "dan")[i % 3]
        giver, receiver = ("ann", other) if i % 2 else (other, "ann")
        mine.append(Exchange(giver, receiver, 10 + i, today - timedelta(days=i // 3), kinds[i % 3],
                             exchange_id=f"x-ann-{i:02d}"))
    others = [Exchange("bob", "cat", 5, today - timedelta(days=i), exchange_id=f"x-other-{i:02d}")
              for i in range(30)]
    # Recorded in a few batches with distinct times, so recorded_at orders exchanges within one day.
    start = datetime.now(UTC) - timedelta(hours=1)
    for n, chunk in enumerate((mine[:8], others, mine[8:])):
        feeder.feed([x.recorded() for x in chunk], at=start + timedelta(minutes=n))
    feeder.feed([x.acknowledged() for x in mine[::4]], at=start + timedelta(minutes=5))
    client = authorized(create_app(engine=engine).test_client(), BALANCE_TOKEN)
    return engine, client, mine, today


def _all_pages(client, url: str, limit: int, **params: str) -> list[dict]:  # type: ignore[no-untyped-def]
    seen: list[dict] = []
    cursor = None
    for _ in range(100):
        answer = client.get(url, query_string={**params, "limit": limit, **({"cursor": cursor} if cursor else {})})
        assert answer.status_code == 200, answer.get_json()
        body = answer.get_json()
        assert len(body["exchanges"]) <= limit
        seen += body["exchanges"]
        cursor = body["next_cursor"]
        if cursor is None:
            return seen
    raise AssertionError("paging did not end")


def _order_key(e: dict) -> tuple:
    return (e["occurred_on"], e["recorded_at"], e["exchange_id"])


def test_pages_list_every_exchange_of_the_member_once_newest_first(db_url: str) -> None:
    engine, client, mine, _ = _history(db_url)
    for limit in (1, 4, 7, 23, 50):
        seen = _all_pages(client, "/v1/members/ann/exchanges", limit)
        ids = [e["exchange_id"] for e in seen]
        assert sorted(ids) == sorted(x.id for x in mine)  # all of ann's, none of the others', none twice
        assert seen == sorted(seen, key=_order_key, reverse=True)
    first = client.get("/v1/members/ann/exchanges", query_string={"limit": 3}).get_json()
    assert [e["occurred_on"] for e in first["exchanges"]] == [date.today().isoformat()] * 3
    # Within a day the later recording comes first (x-ann-00..02 in the first batch, 21..22 later).
    assert first["exchanges"][0]["exchange_id"] in ("x-ann-00", "x-ann-01", "x-ann-02")
    last = client.get("/v1/members/ann/exchanges", query_string={"limit": 23}).get_json()
    assert last["next_cursor"] is None and len(last["exchanges"]) == 23
    engine.dispose()


def test_filters_combine_with_paging(db_url: str) -> None:
    engine, client, mine, today = _history(db_url)

    def ids(**params: str) -> list[str]:
        return sorted(e["exchange_id"] for e in _all_pages(client, "/v1/members/ann/exchanges", 2, **params))

    acked = [x for x in mine[::4]]
    assert ids(status="acknowledged") == sorted(x.id for x in acked)
    assert ids(status="recorded") == sorted(x.id for x in mine if x not in acked)
    assert ids(kind="mentoring") == sorted(x.id for x in mine if x.facts["kind"] == "mentoring")
    assert ids(**{"with": "cat"}) == sorted(
        x.id for x in mine if "cat" in (x.facts["giver"], x.facts["receiver"]))
    since, until = today - timedelta(days=5), today - timedelta(days=2)
    assert ids(**{"from": since.isoformat(), "to": until.isoformat()}) == sorted(
        x.id for x in mine if since <= x.facts["occurred_on"] <= until)
    assert ids(status="recorded", kind="help", **{"with": "bob"}) == sorted(
        x.id for x in mine if x not in acked and x.facts["kind"] == "help"
        and "bob" in (x.facts["giver"], x.facts["receiver"]))
    assert ids(**{"with": "eve"}) == []
    # Who recorded it (the fixture's giver): what waits for ann's answer, and what waits for the others'.
    waiting = [x for x in mine if x not in acked]
    assert ids(status="recorded", recorded_by="other") == sorted(x.id for x in waiting if x.facts["giver"] != "ann")
    assert ids(status="recorded", recorded_by="me") == sorted(x.id for x in waiting if x.facts["giver"] == "ann")
    assert ids(recorded_by="other") == sorted(x.id for x in mine if x.facts["giver"] != "ann")
    engine.dispose()


@pytest.mark.parametrize("query, complaint", [
    ("status=lost", "status"), ("kind=gossip", "kind"), ("from=yesterday", "from"),
    ("from=2026-03-02&to=2026-03-01", "from"), ("cursor=bm90LWEtY3Vyc29y", "cursor"), ("limit=0", "limit"),
    ("with=" + "x" * 65, "with"), ("recorded_by=anyone", "recorded_by"),
])
def test_bad_parameters_are_refused(db_url: str, query: str, complaint: str) -> None:
    engine, client, _, _ = _history(db_url)
    answer = client.get(f"/v1/members/ann/exchanges?{query}")
    assert answer.status_code == 422 and complaint in answer.get_json()["error"]
    assert client.get("/v1/members/nobody/exchanges").status_code == 404
    engine.dispose()


def test_sqlite_serves_a_members_page_and_relationships_from_indexes(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """What "cost flat in history" rests on: every query of a member's page is an index search, none a
    scan of the whole table (SQLite's plan says SCAN for those)."""
    from reciprocity.balance import queries
    from reciprocity.balance import tables as t

    engine, _, _, _ = _history(f"sqlite:///{tmp_path}/balance.db")
    x = t.exchanges.c
    f = queries.HistoryFilter(status="recorded", kind="help")
    after = (date.today(), datetime.now(UTC), "x-ann-05")
    with engine.connect() as conn:
        for side, other in ((x.giver, x.receiver), (x.receiver, x.giver)):
            stmt = queries._history_side(1, side, other, "ann", f, after, 11)
            sql = str(stmt.compile(engine, compile_kwargs={"literal_binds": True}))
            plan = " | ".join(r[-1] for r in conn.exec_driver_sql("EXPLAIN QUERY PLAN " + sql))
            assert "SEARCH balance_exchanges USING INDEX ix_balance_exchanges_" in plan, plan
            assert "SCAN" not in plan.replace("SCAN TABLE", "SCAN").split("USE TEMP")[0], plan
    engine.dispose()


def test_sqlite_merges_a_page_of_both_sides_from_their_indexes(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """A page is one statement: each side a search of its own index, merged and cut to the page by the
    database; neither side, nor the merge, scans the exchanges."""
    from reciprocity.balance import queries

    engine, _, _, _ = _history(f"sqlite:///{tmp_path}/balance.db")
    for f, after in ((queries.HistoryFilter(), None),
                     (queries.HistoryFilter(status="recorded", recorded_by=queries.RECORDED_BY_OTHER),
                      (date.today(), datetime.now(UTC), "x-ann-05"))):
        shape, params = queries._history_shape(1, "ann", f, after, 11)
        stmt = queries._page_statement(*shape).params(params)
        sql = str(stmt.compile(engine, compile_kwargs={"literal_binds": True}))
        with engine.connect() as conn:
            plan = " | ".join(r[-1] for r in conn.exec_driver_sql("EXPLAIN QUERY PLAN " + sql))
        assert "SEARCH balance_exchanges USING INDEX ix_balance_exchanges_giver" in plan, plan
        assert "SEARCH balance_exchanges USING INDEX ix_balance_exchanges_receiver" in plan, plan
        assert "SCAN balance_exchanges" not in plan and "SCAN TABLE" not in plan, plan
    engine.dispose()


def test_sqlite_serves_the_wall_from_its_partial_index(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from reciprocity.balance import queries

    engine, _, _, _ = _history(f"sqlite:///{tmp_path}/balance.db")
    statements: list[str] = []
    event.listen(engine, "before_cursor_execute", lambda *a: statements.append(a[2]))
    with engine.connect() as conn:
        queries.appreciations(conn, 1, 10)
        wall = next(s for s in statements if "ORDER BY" in s and "updated_at" in s)
        params = (1, 10, 0)
        plan = " | ".join(r[-1] for r in conn.exec_driver_sql("EXPLAIN QUERY PLAN " + wall, params))
    assert "USING INDEX ix_balance_exchanges_wall" in plan and "SCAN balance_exchanges" not in plan, plan
    engine.dispose()


def test_the_dashboard_answer_is_the_five_it_replaces(db_url: str) -> None:
    engine, client, _, _ = _history(db_url)

    def get(url: str) -> dict:
        answer = client.get(url)
        assert answer.status_code == 200, answer.get_json()
        return answer.get_json()

    board = get("/v1/members/ann/dashboard?window=28d&weeks=6")
    assert board["summary"] == get("/v1/members/ann/summary?window=28d")
    assert board["timeline"] == get("/v1/members/ann/timeline?weeks=6")
    # The newest ten waiting for ann's answer (the other party recorded them), and how many wait each way.
    assert board["waiting"] == get("/v1/members/ann/exchanges?status=recorded&recorded_by=other&limit=10")[
        "exchanges"]
    everything_waiting = get("/v1/members/ann/exchanges?status=recorded&limit=100")["exchanges"]
    hers = sum(e["recorded_by"] == "ann" for e in everything_waiting)
    assert board["waiting_count"] == {"for_me": len(everything_waiting) - hers, "for_others": hers,
                                      "complete": True}
    assert board["waiting_count"] == {"for_me": 6, "for_others": 11, "complete": True}
    assert board["recent"] == get("/v1/members/ann/exchanges?limit=10")["exchanges"]
    assert board["signals"] == get("/v1/signals?member=ann&active=true")["signals"]
    assert len(board["waiting"]) == 6 and len(board["recent"]) == 10
    assert all(e["recorded_by"] != "ann" and e["status"] == "recorded" for e in board["waiting"])
    assert len(get("/v1/members/ann/dashboard?waiting=4")["waiting"]) == 4
    assert get("/v1/members/ann/dashboard?waiting=0")["waiting"] == []
    assert client.get("/v1/members/nobody/dashboard").status_code == 404
    assert client.get("/v1/members/ann/dashboard?weeks=0").status_code == 422
    engine.dispose()


def test_the_waiting_counts_stop_reading_and_say_so(db_url: str) -> None:
    """However many exchanges wait, the dashboard's counts read at most `reads` rows a side: past that they
    are lower bounds, marked incomplete, never more than there are."""
    from reciprocity.balance import queries

    engine, _, _, _ = _history(db_url)
    with engine.connect() as conn:
        exact = queries.waiting_count(conn, 1, "ann", reads=100)
        assert exact == {"for_me": 6, "for_others": 11, "complete": True}
        # 11 wait with ann as giver (she recorded them), 6 with her as receiver: 11 is the most a side holds.
        assert queries.waiting_count(conn, 1, "ann", reads=11) == exact
        assert queries.waiting_count(conn, 1, "ann", reads=10)["complete"] is False
        bounded = queries.waiting_count(conn, 1, "ann", reads=3)
        assert bounded["complete"] is False
        assert 0 < bounded["for_me"] <= exact["for_me"] and 0 < bounded["for_others"] <= exact["for_others"]
        assert bounded["for_me"] + bounded["for_others"] == 2 * 3  # three a side read and counted
        assert queries.waiting_count(conn, 1, "eve", reads=3) == {"for_me": 0, "for_others": 0, "complete": True}
    engine.dispose()


def test_sqlite_counts_what_waits_from_the_side_indexes(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from reciprocity.balance import queries

    engine, _, _, _ = _history(f"sqlite:///{tmp_path}/balance.db")
    with engine.connect() as conn:
        stmt = queries._waiting_by_recorder().params(gen=1, member="ann", reads=51)
        sql = str(stmt.compile(engine, compile_kwargs={"literal_binds": True}))
        plan = " | ".join(r[-1] for r in conn.exec_driver_sql("EXPLAIN QUERY PLAN " + sql))
    assert plan.count("SEARCH balance_exchanges USING INDEX ix_balance_exchanges_") == 2, plan
    assert "SCAN balance_exchanges" not in plan, plan
    engine.dispose()


def test_the_circles_a_member_leads_match_her_id_exactly(db_url: str) -> None:
    from reciprocity.contracts.events import CircleLeadsChanged

    engine = make_engine(db_url)
    migrate(engine)
    feeder = Feeder(BalanceProjection(engine), partition=0)
    feeder.feed([circle("core"), circle("ops"), circle("yard"), *(member(m, ["core"]) for m in ("ann", "ann_b", "an"))])
    feeder.feed([CircleLeadsChanged(circle_id="core", leads=["ann_b", "an"]),
                 CircleLeadsChanged(circle_id="ops", leads=["ann"]), CircleLeadsChanged(circle_id="yard", leads=[])])
    client = authorized(create_app(engine=engine).test_client(), BALANCE_TOKEN)
    led = {m: client.get(f"/v1/directory/members/{m}").get_json()["leads_circles"] for m in ("ann", "ann_b", "an")}
    assert led == {"ann": ["ops"], "ann_b": ["core"], "an": ["core"]}
    engine.dispose()
