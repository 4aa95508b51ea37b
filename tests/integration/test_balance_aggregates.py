"""The sums the pages show, read the cheap way, against a recount by hand, on SQLite and PostgreSQL.

Every member's numbers (summary, timeline, the alert policy's facts, the export's balances),
relationships and a circle's measures and flows are summed by the database from the exchanges
(covering indexes; no counter table per member since migration 0009). A history with every lifecycle
(acknowledged, disputed, withdrawn, still pending, corrected to another day, kind and length, then
settled or not) and a forgotten member is fed through the projection in batches; the answers must
equal what the test computes itself from the facts it sent, for several windows, and must be the same
in a second generation built from the same events (what a replay builds).
"""

from __future__ import annotations

import random
from collections import defaultdict
from datetime import date, timedelta
from typing import Any

from reciprocity.balance import measures, queries, signals
from reciprocity.balance.db import make_engine, migrate
from reciprocity.balance.projection import BalanceProjection
from reciprocity.contracts.events import CorrectedFacts, Event, ExchangeCorrected, ExchangeRecorded, MemberForgotten
from reciprocity.contracts.sealed import Sealed
from reciprocity.contracts.vocabulary import EXCHANGE_KINDS

from tests.support.events import Exchange, Feeder, capacity, circle, member

KINDS = ("mentoring", "feedback", "help", "knowledge", "resource", "care")
CORE = ("ann", "bob", "cat", "dan", "eve", "fay")
EDGE = ("gus", "hal")
FORGOTTEN = "dan"


def _history(today: date) -> tuple[list[list[Event]], dict[str, dict[str, Any]]]:
    """Batches of events, and each exchange's final facts and status as the test knows them."""
    rnd = random.Random(13)
    people = CORE + EDGE
    circles_of = {m: ["core"] for m in CORE} | {m: ["edge"] for m in EDGE}
    circles_of["fay"] = ["core", "edge"]
    batches: list[list[Event]] = [[circle("core"), circle("edge"), *(member(m, circles_of[m]) for m in people)]]
    final: dict[str, dict[str, Any]] = {}
    made: list[Exchange] = []
    for i in range(160):
        giver, receiver = rnd.sample(people, 2)
        x = Exchange(giver, receiver, rnd.randint(5, 240), today - timedelta(days=rnd.randint(0, 120)),
                     rnd.choice(KINDS), giver_circles=circles_of[giver], receiver_circles=circles_of[receiver],
                     exchange_id=f"x-agg-{i:03d}")
        made.append(x)
        final[x.id] = {**x.facts, "status": "recorded"}
    for start in range(0, len(made), 40):  # recorded in four batches
        batches.append([x.recorded() for x in made[start:start + 40]])
    later: list[Event] = []
    for x in made:
        roll = rnd.random()
        if roll < 0.15:  # corrected while recorded: another day, kind and length; then maybe settled
            before = CorrectedFacts(kind=x.facts["kind"], minutes=x.facts["minutes"],
                                    occurred_on=x.facts["occurred_on"])
            x.facts.update(kind=rnd.choice(KINDS), minutes=rnd.randint(5, 240),
                           occurred_on=today - timedelta(days=rnd.randint(0, 120)))
            later.append(ExchangeCorrected(**x.facts, by=x.facts["giver"], note=Sealed.clear("fixed", [
                x.facts["giver"], x.facts["receiver"]]), note_changed=True, previous=before))
            final[x.id].update(x.facts)
            after = rnd.random()
            if after < 0.5:
                later.append(x.acknowledged("thanks"))
                final[x.id]["status"] = "acknowledged"
            elif after < 0.75:
                later.append(x.withdrawn())
                final[x.id]["status"] = "withdrawn"
        elif roll < 0.65:
            later.append(x.acknowledged("thanks"))
            final[x.id]["status"] = "acknowledged"
        elif roll < 0.75:
            later.append(x.disputed())
            final[x.id]["status"] = "disputed"
        elif roll < 0.85:
            later.append(x.withdrawn())
            final[x.id]["status"] = "withdrawn"
    batches += [later[: len(later) // 2], later[len(later) // 2:]]
    batches.append([MemberForgotten(member_id=FORGOTTEN, requested_by="ann")])
    return batches, final


def _counted(final: dict[str, dict[str, Any]], start: date, end: date) -> list[dict[str, Any]]:
    return [f for f in final.values()
            if f["status"] in ("recorded", "acknowledged") and start <= f["occurred_on"] <= end]


def _expected_relationships(final: dict[str, dict[str, Any]], me: str, days: int, today: date) -> list[dict]:
    start, end = today - timedelta(days=days - 1), today + timedelta(days=1)
    rel: dict[str, dict[str, Any]] = {}
    for f in _counted(final, start, end):
        if me not in (f["giver"], f["receiver"]):
            continue
        side = "given" if f["giver"] == me else "received"
        other = f["receiver"] if side == "given" else f["giver"]
        item = rel.setdefault(other, {
            "other": other, "other_name": "a former member" if other == FORGOTTEN else other.title(),
            "given_minutes": 0, "received_minutes": 0, "given_count": 0, "received_count": 0,
            "pending_given_minutes": 0, "pending_received_minutes": 0, "pending_given_count": 0,
            "pending_received_count": 0, "last_exchange_on": None,
            "by_kind": {k: {"given_minutes": 0, "received_minutes": 0} for k in KINDS},
            "pending_by_kind": {k: {"given_minutes": 0, "received_minutes": 0} for k in KINDS},
        })  # fmt: skip
        prefix = "" if f["status"] == "acknowledged" else "pending_"
        item[f"{prefix}{side}_minutes"] += f["minutes"]
        item[f"{prefix}{side}_count"] += 1
        item[f"{prefix}by_kind"][f["kind"]][f"{side}_minutes"] += f["minutes"]
        day = f["occurred_on"].isoformat()
        item["last_exchange_on"] = max(item["last_exchange_on"] or day, day)
    return sorted(rel.values(), key=lambda i: (i["other_name"].lower(), i["other"]))


def _expected_timeline(final: dict[str, dict[str, Any]], me: str, weeks: int, today: date) -> list[dict]:
    first = today - timedelta(days=today.weekday(), weeks=weeks - 1)
    buckets = {first + timedelta(weeks=i): {"given": dict.fromkeys(KINDS, 0), "received": dict.fromkeys(KINDS, 0),
                                            "pending_given": 0, "pending_received": 0} for i in range(weeks)}
    for f in _counted(final, first, today):
        b = buckets[f["occurred_on"] - timedelta(days=f["occurred_on"].weekday())]
        for side, who in (("given", f["giver"]), ("received", f["receiver"])):
            if who != me:
                continue
            if f["status"] == "acknowledged":
                b[side][f["kind"]] += f["minutes"]
            else:
                b[f"pending_{side}"] += f["minutes"]
    return [{"week_start": ws.isoformat(), **b} for ws, b in sorted(buckets.items())]


def _expected_flows(final: dict[str, dict[str, Any]], members: set[str], days: int, today: date) -> list[dict]:
    flows: dict[tuple[str, str], int] = defaultdict(int)
    for f in _counted(final, today - timedelta(days=days - 1), today + timedelta(days=1)):
        if f["status"] == "acknowledged" and f["giver"] in members and f["receiver"] in members:
            flows[(f["giver"], f["receiver"])] += f["minutes"]
    return [{"giver": g, "receiver": r, "minutes": m} for (g, r), m in sorted(flows.items())]


def test_relationships_timeline_and_flows_equal_a_recount_in_every_generation(db_url: str) -> None:
    today = date.today()
    engine = make_engine(db_url)
    migrate(engine)
    batches, final = _history(today)
    for generation in (1, 2):  # the second as a replay builds it: the same events into a fresh generation
        feeder = Feeder(BalanceProjection(engine, generation=generation))
        for batch in batches:
            feeder.feed(batch)
    assert {f["status"] for f in final.values()} == {"recorded", "acknowledged", "disputed", "withdrawn"}
    assert sum(1 for f in final.values() if f["status"] == "recorded") > 5
    with engine.connect() as conn:
        answers = {}
        for generation in (1, 2):
            for me in (*CORE, *EDGE):
                for days in (1, 7, 28, 90, 365):
                    got = queries.relationships(conn, generation, me, days, today)["relationships"]
                    assert got == _expected_relationships(final, me, days, today), (generation, me, days)
                    answers[(generation, me, days)] = got
                for weeks in (1, 4, 18):
                    got_weeks = queries.timeline(conn, generation, me, weeks, today)["weeks"]
                    assert got_weeks == _expected_timeline(final, me, weeks, today), (generation, me, weeks)
            for days in (7, 28, 120):
                health = queries.circle_health(conn, generation, "core", days, today, "flows")
                assert health is not None and not health["private"]
                expected = _expected_flows(final, set(CORE), days, today)
                assert health["flows"] == expected, (generation, days)
                # The members' picture: the same pairs, each once, without amounts or directions; and the
                # measures alone count them in the database to the same mutual ties.
                ties = queries.circle_health(conn, generation, "core", days, today, "ties")
                assert ties is not None and "flows" not in ties
                pairs = sorted({tuple(sorted((f["giver"], f["receiver"]))) for f in expected
                                if f["giver"] != f["receiver"]})
                assert ties["ties"] == [list(p) for p in pairs], (generation, days)
                alone = queries.circle_health(conn, generation, "core", days, today)
                assert alone is not None and "flows" not in alone and "ties" not in alone
                assert alone["mutual_ties"] == ties["mutual_ties"] == health["mutual_ties"] \
                    == round(measures.mutual_ties((f["giver"], f["receiver"]) for f in expected), 4)
        # Not vacuous: the windows hold flows in both directions, pending and settled, and the forgotten member.
        year = [r for me in CORE for r in answers[(1, me, 365)]]
        assert all(sum(r[k] for r in year) > 0 for k in ("given_minutes", "received_minutes",
                                                          "pending_given_minutes", "pending_received_minutes"))
        assert any(r["other_name"] == "a former member" for r in year)
    engine.dispose()


def _expected_summary(final: dict[str, dict[str, Any]], me: str, days: int, today: date,
                      weekly_hours: float | None) -> dict[str, Any]:
    start, end = today - timedelta(days=days - 1), today
    total = dict.fromkeys(queries.MEMBER_COUNTERS, 0)
    by_kind = {k: {"given_minutes": 0, "given_count": 0, "received_minutes": 0, "received_count": 0,
                   "pending_given_minutes": 0, "pending_received_minutes": 0} for k in EXCHANGE_KINDS}
    for f in _counted(final, start, end + timedelta(days=1)):
        for side, who in (("given", f["giver"]), ("received", f["receiver"])):
            if who != me:
                continue
            prefix = "" if f["status"] == "acknowledged" else "pending_"
            total[f"{prefix}{side}_minutes"] += f["minutes"]
            total[f"{prefix}{side}_count"] += 1
            by_kind[f["kind"]][f"{prefix}{side}_minutes"] += f["minutes"]
            if not prefix:
                by_kind[f["kind"]][f"{side}_count"] += 1
    given_7 = sum(f["minutes"] for f in _counted(final, today - timedelta(days=6), today) if f["giver"] == me)
    return {
        "member_id": me, "window_days": days, "from": start.isoformat(), "to": end.isoformat(),
        "given": {"minutes": total["given_minutes"], "count": total["given_count"],
                  "pending_minutes": total["pending_given_minutes"], "pending_count": total["pending_given_count"]},
        "received": {"minutes": total["received_minutes"], "count": total["received_count"],
                     "pending_minutes": total["pending_received_minutes"],
                     "pending_count": total["pending_received_count"]},
        "by_kind": by_kind,
        "reciprocity_index": round(measures.reciprocity_index(total["given_minutes"], total["received_minutes"]), 4),
        "capacity": {"weekly_hours": weekly_hours, "given_last_7_days_minutes": given_7,
                     "used_fraction": round(given_7 / (weekly_hours * 60), 4) if weekly_hours else None},
    }  # fmt: skip


def _expected_facts(final: dict[str, dict[str, Any]], me: str, today: date) -> tuple[int, int, int, date | None]:
    """(given in 28 days, received in 28 days, given in 7 days, last day exchanged) as the alert policy
    counts them: settled, plus pending ones their giver recorded."""
    d28, d7, last_day = today - timedelta(days=27), today - timedelta(days=6), today + timedelta(days=1)
    policy_counts = [f for f in _counted(final, d28, last_day)
                     if f["status"] == "acknowledged" or f["recorded_by"] == f["giver"]]
    given_28 = sum(f["minutes"] for f in policy_counts if f["giver"] == me)
    received_28 = sum(f["minutes"] for f in policy_counts if f["receiver"] == me)
    given_7 = sum(f["minutes"] for f in policy_counts if f["giver"] == me and f["occurred_on"] >= d7)
    days = [f["occurred_on"] for f in _counted(final, date.min, last_day) if me in (f["giver"], f["receiver"])]
    return given_28, received_28, given_7, max(days, default=None)


def _with_receiver_recordings(today: date) -> tuple[list[list[Event]], dict[str, dict[str, Any]]]:
    """The history, plus exchanges their receiver recorded (pending ones count for the alert policy only
    once settled), some settled, and a declared capacity."""
    batches, final = _history(today)
    for f in final.values():
        f["recorded_by"] = f["giver"]
    rnd = random.Random(7)
    extra: list[Event] = [capacity("ann", 6.5)]
    for i in range(30):
        giver, receiver = rnd.sample(CORE, 2)
        day = today + timedelta(days=1) if i < 2 else today - timedelta(days=rnd.randint(0, 40))  # east of UTC
        x = Exchange(giver, receiver, rnd.randint(5, 240), day,
                     rnd.choice(KINDS), giver_circles=["core"], receiver_circles=["core"], exchange_id=f"x-rcv-{i:02d}")
        extra.append(ExchangeRecorded(**x.facts, note=None, recorded_by=receiver, shared=False))
        final[x.id] = {**x.facts, "status": "recorded", "recorded_by": receiver}
        if i % 3 == 0:
            extra.append(x.acknowledged())
            final[x.id]["status"] = "acknowledged"
    return [*batches[:-1], extra, batches[-1]], final


def test_summaries_alert_facts_and_circle_measures_equal_a_recount(db_url: str) -> None:
    """A member's summary (settled and pending, counts and minutes, by kind, the last 7 days given), the
    alert policy's facts, a circle's participation and concentration, and every member's counters over
    all time (what the export and the chaos check read) equal a recount by hand, in two generations."""
    today = date.today()
    engine = make_engine(db_url)
    migrate(engine)
    batches, final = _with_receiver_recordings(today)
    for generation in (1, 2):
        feeder = Feeder(BalanceProjection(engine, generation=generation))
        for batch in batches:
            feeder.feed(batch)
    # Not vacuous: pending exchanges recorded by either party, in the last week and on tomorrow's date.
    pending = [f for f in final.values() if f["status"] == "recorded"]
    assert {f["recorded_by"] == f["giver"] for f in pending} == {True, False}
    assert any(f["occurred_on"] > today for f in final.values())
    circle = set(CORE)
    with engine.connect() as conn:
        for generation in (1, 2):
            for me in (*CORE, *EDGE, "nobody"):
                for days in (1, 7, 28, 90, 365):
                    got = queries.summary(conn, generation, me, days, today)
                    assert got == _expected_summary(final, me, days, today, 6.5 if me == "ann" else None), \
                        (generation, me, days)
            facts, _, _ = signals.gather_facts(conn, generation, None, today)
            chunked, _, _ = signals.gather_facts(conn, generation, ["ann", "hal", "nobody"], today)
            assert chunked == [f for f in facts if f.member_id in ("ann", "hal")]
            assert {f.member_id: (f.given_28, f.received_28, f.given_7, f.last_exchange_on) for f in facts} == {
                me: _expected_facts(final, me, today) for me in (*CORE, *EDGE)}, generation
            for days in (7, 28, 120):
                health = queries.circle_health(conn, generation, "core", days, today)
                settled = [f for f in _counted(final, today - timedelta(days=days - 1), today + timedelta(days=1))
                           if f["status"] == "acknowledged"]
                exchanged = {f[side] for f in settled for side in ("giver", "receiver")}
                given = [sum(f["minutes"] for f in settled if f["giver"] == m) for m in sorted(circle)]
                assert health is not None
                assert health["participation_rate"] == round(measures.participation_rate(circle, exchanged), 4)
                assert health["gini"] == round(measures.gini(given), 4), (generation, days)
            everyone = {m: queries.counter_totals(kinds)
                        for m, kinds in queries.member_counters(conn, generation, None, None).items()}
            by_hand = {me: _counters_by_hand(final, me) for me in (*CORE, *EDGE)}
            assert everyone == {me: found for me, found in by_hand.items() if any(found.values())}
    engine.dispose()


def _counters_by_hand(final: dict[str, dict[str, Any]], me: str) -> dict[str, int]:
    found = dict.fromkeys(queries.MEMBER_COUNTERS, 0)
    for f in _counted(final, date.min, date.max):
        for side, who in (("given", f["giver"]), ("received", f["receiver"])):
            if who == me:
                prefix = "" if f["status"] == "acknowledged" else "pending_"
                found[f"{prefix}{side}_minutes"] += f["minutes"]
                found[f"{prefix}{side}_count"] += 1
    return found


def _projected_history(database_url: str, today: date) -> tuple[Any, dict[str, dict[str, Any]]]:
    """A migrated store at `database_url` with `_history` projected into generation 1, and the
    exchanges' final state as the test sent them."""
    engine = make_engine(database_url)
    migrate(engine)
    batches, final = _history(today)
    feeder = Feeder(BalanceProjection(engine))
    for batch in batches:
        feeder.feed(batch)
    return engine, final


def _migrate_to(engine: Any, revision: str, downgrade: bool = False) -> None:
    """balance's schema moved to `revision` by alembic, as a test of a migration's way back needs."""
    from alembic import command
    from alembic.config import Config
    from reciprocity.balance.db import MIGRATIONS_DIR

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    with engine.begin() as conn:
        config.attributes["connection"] = conn
        (command.downgrade if downgrade else command.upgrade)(config, revision)


def test_member_counters_survive_the_migrations_both_ways(db_url: str) -> None:
    """0009 drops balance_member_day, whose every counter was a sum of exchange rows; its downgrade
    rebuilds the table from them. Down to 0008 the rebuilt rows must equal a recount by hand of the
    exchanges the test sent; back up to the newest revision the summaries read from the exchanges are
    unchanged."""
    import sqlalchemy as sa

    today = date.today()
    engine, final = _projected_history(db_url, today)
    with engine.connect() as conn:
        before = {me: queries.summary(conn, 1, me, 365, today) for me in (*CORE, *EDGE)}
    _migrate_to(engine, "0008", downgrade=True)
    expected: dict[tuple, list[int]] = defaultdict(lambda: [0] * 8)
    for f in _counted(final, date.min, date.max):
        settled = f["status"] == "acknowledged"
        for who, at in ((f["giver"], 0 if settled else 4), (f["receiver"], 2 if settled else 6)):
            row = expected[(who, f["occurred_on"], f["kind"])]
            row[at] += f["minutes"]
            row[at + 1] += 1
    with engine.connect() as conn:
        rows = conn.execute(sa.text(f"SELECT member_id, day, kind, {', '.join(queries.MEMBER_COUNTERS)}"
                                    " FROM balance_member_day WHERE generation = 1")).all()
    assert {(m, d if isinstance(d, date) else date.fromisoformat(d), k): [int(v) for v in rest]
            for m, d, k, *rest in rows} == dict(expected)
    _migrate_to(engine, "head")
    with engine.connect() as conn:
        assert {me: queries.summary(conn, 1, me, 365, today) for me in (*CORE, *EDGE)} == before
        assert not sa.inspect(conn).has_table("balance_member_day")
    engine.dispose()


def test_sqlite_sums_flows_from_the_covering_indexes_alone(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """What keeps relationships and a circle's flows flat in history: each side is a range of the member's
    covering index over the window (SQLite says COVERING INDEX: no table row read), never a scan."""
    from reciprocity.balance import tables as t
    from sqlalchemy import event

    today = date.today()
    engine, _ = _projected_history(f"sqlite:///{tmp_path}/balance.db", today)
    statements: list[tuple[str, Any]] = []
    event.listen(engine, "before_cursor_execute", lambda _c, _cur, sql, params, *_: statements.append((sql, params)))
    with engine.connect() as conn:
        queries.relationships(conn, 1, "ann", 90, today)
        for picture in queries.PICTURES:
            queries.circle_health(conn, 1, "core", 28, today, picture)
        # Who only received (from outside) is asked of the members not seen exchanging: nobody here, so
        # that statement is checked on its own.
        start, end = queries.window_bounds(today, 28)
        conn.execute(queries._circle_statements()["receiving"], {"gen": 1, "members": list(CORE), "start": start,
                                                                 "end": end})
        queries.relationships(conn, 1, "ann", 90, today, limit=2)  # who is in the window, then the page's sums
        queries.summary(conn, 1, "ann", 28, today)
        queries.timeline(conn, 1, "ann", 12, today)
        flows = [(sql, params) for sql, params in statements if t.exchanges.name in sql]
        # relationships: given and received; the circle, for each picture: its members' giving (to whom),
        # and for its leads' picture the flows summed; who received; a page: who (both sides in one), then
        # its sums; a summary: both sides in one statement, and the last 7 days given; a timeline: both sides
        # in one (15 since the fourth picture, `linked`, which reads what `ties` reads; 14 since a page's
        # people are read in one statement)
        assert len(flows) == 14
        for sql, params in flows:
            plan = " | ".join(r[-1] for r in conn.exec_driver_sql("EXPLAIN QUERY PLAN " + sql, params))
            assert "USING COVERING INDEX ix_balance_exchanges_" in plan and "occurred_on>" in plan, plan
            # (A circle's pairs are counted from a subquery: SQLite scans that, not the exchanges.)
            assert "SCAN balance_exchanges" not in plan and "SCAN TABLE" not in plan, plan
    engine.dispose()


def test_pair_flows_survive_the_migrations_both_ways(db_url: str) -> None:
    """0008 drops balance_pair_day, whose every counter was a sum of exchange rows; its downgrade rebuilds
    the table from them. Down to 0007 the rebuilt rows must equal a recount by hand of the exchanges the
    test sent; back up to the newest revision the relationships read from the exchanges are unchanged."""
    import sqlalchemy as sa

    today = date.today()
    engine, final = _projected_history(db_url, today)
    with engine.connect() as conn:
        before = {me: queries.relationships(conn, 1, me, 365, today) for me in CORE}
    _migrate_to(engine, "0007", downgrade=True)
    expected: dict[tuple, list[int]] = defaultdict(lambda: [0, 0, 0, 0])
    for f in final.values():
        if f["status"] in ("recorded", "acknowledged"):
            row = expected[(f["giver"], f["receiver"], f["occurred_on"], f["kind"])]
            at = 0 if f["status"] == "acknowledged" else 2
            row[at] += f["minutes"]
            row[at + 1] += 1
    with engine.connect() as conn:
        rows = conn.execute(sa.text("SELECT giver, receiver, day, kind, minutes, count, pending_minutes, pending_count"
                                    " FROM balance_pair_day WHERE generation = 1")).all()
    assert {(g, r, d if isinstance(d, date) else date.fromisoformat(d), k): [int(v) for v in rest]
            for g, r, d, k, *rest in rows} == dict(expected)
    _migrate_to(engine, "head")
    with engine.connect() as conn:
        assert {me: queries.relationships(conn, 1, me, 365, today) for me in CORE} == before
        assert not sa.inspect(conn).has_table("balance_pair_day")
    engine.dispose()


def test_relationships_by_pages_of_people_are_the_whole_list_in_order(db_url: str) -> None:
    """With `limit`, relationships come a page of people at a time, by name (the forgotten member under
    "a former member"): the pages joined are the whole answer, each person once, in the same order."""
    from reciprocity.balance.app import create_app

    from tests.support.auth import BALANCE_TOKEN, authorized

    today = date.today()
    engine, _ = _projected_history(db_url, today)
    client = authorized(create_app(engine=engine).test_client(), BALANCE_TOKEN)
    url = "/v1/members/ann/relationships"
    whole = client.get(url, query_string={"window": "365d"}).get_json()
    assert whole["next_cursor"] is None and len(whole["relationships"]) >= 5
    for limit in (1, 2, 3, 50):
        seen, cursor = [], None
        for _ in range(20):
            page = client.get(url, query_string={"window": "365d", "limit": limit,
                                                 **({"cursor": cursor} if cursor else {})}).get_json()
            assert 0 < len(page["relationships"]) <= limit
            seen += page["relationships"]
            cursor = page["next_cursor"]
            if cursor is None:
                break
        assert seen == whole["relationships"], limit
    for bad in ({"limit": 2, "cursor": "bm90LWEtY3Vyc29y"}, {"cursor": whole_cursor(client, url)}, {"limit": 0}):
        answer = client.get(url, query_string=bad)
        assert answer.status_code == 422, (bad, answer.get_json())
    engine.dispose()


def whole_cursor(client, url: str) -> str:  # type: ignore[no-untyped-def]
    """A real cursor, to show that one without `limit` is refused rather than ignored."""
    return client.get(url, query_string={"window": "365d", "limit": 1}).get_json()["next_cursor"]


def test_the_linked_picture_is_the_pairs_per_person(db_url: str) -> None:
    """What a member's circle page draws from: each person with everyone they exchanged with either way,
    the same pairs as `ties` (a recount of the events), each under both of its people, no amounts."""
    today = date.today()
    engine, final = _projected_history(db_url, today)
    with engine.connect() as conn:
        for days in (7, 28, 120):
            pairs = sorted({tuple(sorted((f["giver"], f["receiver"])))
                            for f in _expected_flows(final, set(CORE), days, today) if f["giver"] != f["receiver"]})
            linked = queries.circle_health(conn, 1, "core", days, today, "linked")
            assert linked is not None and "ties" not in linked and "flows" not in linked
            expected: dict[str, list[str]] = defaultdict(list)
            for a, b in pairs:
                expected[a].append(b)
                expected[b].append(a)
            assert linked["linked"] == {p: sorted(o) for p, o in sorted(expected.items())}, days
            assert list(linked["linked"]) == sorted(linked["linked"])
            ties = queries.circle_health(conn, 1, "core", days, today, "ties")
            assert ties is not None and {k: v for k, v in linked.items() if k != "linked"} == \
                {k: v for k, v in ties.items() if k != "ties"}
        assert pairs, "not vacuous: the longest window holds pairs"
    engine.dispose()
