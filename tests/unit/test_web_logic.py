"""Pure parts of the web: access rules, the exchange form, prompts, pictures and formatting."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest
from reciprocity.contracts.commands import latest_today, today_utc
from reciprocity.web import access
from reciprocity.web.charts import balance_chart, flow_graph, linked_people, tie_matrix
from reciprocity.web.clients.balance import Capacity, Circle, Exchange, Flow, KindTotals, Member, Summary, Totals, Week
from reciprocity.web.exchange_form import (
    FORM_WIDE,
    ExchangeForm,
    check,
    form_field,
    is_key_field,
    ledger_body,
    other_id,
    valid_key,
)
from reciprocity.web.format import day, hours, minutes
from reciprocity.web.prompts import reflection_prompts

from tests.support.web_fakes import freeze_clock

TODAY = today_utc()  # the contract checks dates against the real today
LATEST = latest_today()  # and "not in the future" against the latest date anywhere (UTC+14)


def member(member_id: str, circles: list[str] | None = None, leads: list[str] | None = None,
           role: str = "member", **extra: object) -> Member:
    return Member(id=member_id, name=member_id.title(), circles=circles or [], leads_circles=leads or [], role=role,
                  **extra)


def exchange(status: str = "recorded", recorded_by: str = "ada") -> Exchange:
    return Exchange(exchange_id="x-1", giver="ada", receiver="ben", kind="help", minutes=30,
                    occurred_on=TODAY, recorded_by=recorded_by, status=status)


# -- access --------------------------------------------------------------------------------------------


def test_member_page_access() -> None:
    ada = member("ada", ["garden"])
    circles = [Circle(id="garden", leads=["lena"]), Circle(id="kitchen", leads=["omar"])]
    assert access.can_view_member(ada, ada, circles)
    assert access.can_view_member(member("lena", ["garden"], leads=["garden"]), ada, circles)
    assert not access.can_view_member(member("ben", ["garden"]), ada, circles)
    assert not access.can_view_member(member("omar", ["kitchen"], leads=["kitchen"]), ada, circles)
    assert not access.can_view_member(member("ops", role="operator"), ada, circles)


def test_leads_care_for_the_circles_nested_under_theirs_at_any_depth() -> None:
    circles = [Circle(id="org", leads=["ceo"]), Circle(id="eng", parent="org", leads=["ann"]),
               Circle(id="web", parent="eng"), Circle(id="ops", parent="org"), Circle(id="guild")]
    assert access.circles_in_care(member("ceo"), circles) == {"org", "eng", "web", "ops"}
    assert access.circles_in_care(member("ann"), circles) == {"eng", "web"}
    assert access.circles_in_care(member("bob"), circles) == set()
    dev = member("dev", ["web"])
    assert access.can_view_member(member("ceo"), dev, circles) and access.can_view_member(member("ann"), dev, circles)
    assert not access.can_view_member(dev, member("ann", ["eng"]), circles)
    web = circles[2]
    assert access.can_see_signals(member("ceo"), web, circles) and not access.can_see_signals(dev, web, circles)
    looped = [Circle(id="a", parent="b", leads=["x"]), Circle(id="b", parent="a")]  # corrupt, must not hang
    assert access.circles_in_care(member("x"), looped) == {"a", "b"}


@pytest.mark.parametrize(("viewer", "status", "expected"), [
    ("ben", "recorded", {"acknowledge", "dispute"}),  # the other party
    ("ada", "recorded", {"withdraw", "correct"}),  # the recorder
    ("chen", "recorded", set()),  # not a party
    ("ben", "acknowledged", set()),
    ("ada", "disputed", set()),
    ("ada", "withdrawn", set()),
])
def test_exchange_actions(viewer: str, status: str, expected: set[str]) -> None:
    assert access.exchange_actions(viewer, exchange(status)) == expected


def test_receiver_recorded_means_giver_acknowledges() -> None:
    e = exchange(recorded_by="ben")
    assert e.counterpart == "ada"
    assert access.exchange_actions("ada", e) == {"acknowledge", "dispute"}
    assert access.exchange_actions("ben", e) == {"withdraw", "correct"}


def test_circle_access() -> None:
    garden = Circle(id="garden", name="Garden", leads=["lena"])
    assert access.can_see_signals(member("lena", ["garden"]), garden, [garden])
    assert not access.can_see_signals(member("ben", ["garden"]), garden, [garden])
    assert access.can_see_flows(member("ben", ["garden"]), garden)
    assert access.can_see_flows(member("lena", []), garden)  # a lead from outside the circle
    assert not access.can_see_flows(member("omar", ["kitchen"]), garden)
    assert access.can_operate(member("ops", role="operator"))
    assert not access.can_operate(member("ada"))


# -- the exchange form ---------------------------------------------------------------------------------


def form(**changes: object) -> ExchangeForm:
    values = {"direction": "gave", "other": "ben", "kind": "help", "minutes": "30", "occurred_on": TODAY.isoformat(),
              "note": "", "idempotency_key": "3b241101-e2bb-4255-8caf-4136c566a962"}
    values.update({k: str(v) for k, v in changes.items()})
    return ExchangeForm.from_form(values)


def test_a_good_form_has_no_errors_and_makes_the_ledger_body() -> None:
    f = form(direction="received", note="Thanks for the seedlings")
    assert check(f, "ada", TODAY) == {}
    assert ledger_body(f, "ada") == {"giver": "ben", "receiver": "ada", "kind": "help", "minutes": 30,
                                     "note": "Thanks for the seedlings", "occurred_on": TODAY.isoformat(),
                                     "recorded_by": "ada", "shared": False}


@pytest.mark.parametrize(("changes", "field", "words"), [
    ({"other": ""}, "other", "Who was it with"),
    ({"other": "ada"}, "other", "someone other than yourself"),
    ({"other": "Not An Id!"}, "other", "not a member id"),
    ({"kind": "gossip"}, "kind", "what kind"),
    ({"minutes": "abc"}, "minutes", "in minutes"),
    ({"minutes": "0"}, "minutes", "1 to 1440"),
    ({"minutes": "1441"}, "minutes", "1 to 1440"),
    ({"occurred_on": ""}, "occurred_on", "Give the date"),
    ({"occurred_on": (LATEST + timedelta(days=1)).isoformat()}, "occurred_on", "in the future"),
    ({"occurred_on": (TODAY - timedelta(days=366)).isoformat()}, "occurred_on", "365 days"),
    ({"note": "x" * 501}, "note", "keep it to 500"),
    ({"direction": "sideways"}, "direction", "gave or received"),
])
def test_form_errors_in_plain_words(changes: dict[str, str], field: str, words: str) -> None:
    errors = check(form(**changes), "ada", TODAY)
    assert field in errors
    assert words in errors[field]


def test_boundaries_are_accepted() -> None:
    assert check(form(minutes="1", occurred_on=(TODAY - timedelta(days=365)).isoformat()), "ada", TODAY) == {}
    assert check(form(minutes="1440", note="x" * 500), "ada", TODAY) == {}


def test_today_east_of_utc_is_not_the_future(monkeypatch: pytest.MonkeyPatch) -> None:
    freeze_clock(monkeypatch, datetime(2025, 3, 1, 20, 0, tzinfo=UTC))  # already 2 March in Auckland
    assert check(form(occurred_on="2025-03-02"), "ada", today_utc(), latest_today()) == {}
    assert check(form(occurred_on="2025-03-02"), "ada", today_utc()) == {}  # the ledger's bound by default
    assert "in the future" in check(form(occurred_on="2025-03-03"), "ada", today_utc(), latest_today())["occurred_on"]


def test_other_accepts_the_autocomplete_label() -> None:
    assert other_id("Ben Okafor (ben)") == "ben"
    assert other_id("  BEN ") == "ben"


def test_idempotency_key_must_look_like_ours() -> None:
    key = "3b241101-e2bb-4255-8caf-4136c566a962"
    assert valid_key(key) == key
    assert valid_key("") != valid_key("")  # fresh each time
    assert len(valid_key("<script>")) == 36


def test_ledger_fields_map_onto_the_form() -> None:
    assert form_field("giver") == "other"
    assert form_field("receiver") == "other"
    assert form_field("recorded_by") == "other"
    assert form_field("minutes") == "minutes"
    assert form_field("body") == FORM_WIDE
    assert form_field("Idempotency-Key") == FORM_WIDE
    assert is_key_field("Idempotency-Key") and is_key_field("idempotency-key") and not is_key_field("by")


# -- prompts -------------------------------------------------------------------------------------------


def summary(given: int = 0, received: int = 0, weekly_hours: float | None = 5.0, last7: int = 0,
            kinds: dict[str, tuple[int, int]] | None = None) -> Summary:
    by_kind = {k: KindTotals(given_minutes=g, received_minutes=r) for k, (g, r) in (kinds or {}).items()}
    used = last7 / (weekly_hours * 60) if weekly_hours else None
    return Summary(member_id="ada", window_days=28, given=Totals(minutes=given, count=1 if given else 0),
                   received=Totals(minutes=received, count=1 if received else 0), by_kind=by_kind,
                   reciprocity_index=1.0 if max(given, received) == 0 else min(given, received) / max(given, received),
                   capacity=Capacity(weekly_hours=weekly_hours, given_last_7_days_minutes=last7, used_fraction=used))


def prompts(s: Summary, m: Member | None = None, waiting_for_me: int = 0, waiting_for_others: int = 0) -> list[str]:
    return [p.text for p in reflection_prompts(s, m or member("ada"), waiting_for_me=waiting_for_me,
                                               waiting_for_others=waiting_for_others, today=TODAY)]


def test_prompts_notice_one_way_giving_gently() -> None:
    texts = prompts(summary(given=600, received=60, kinds={"mentoring": (600, 0), "care": (0, 60)}))
    assert any("Is there something you would like to ask for" in t for t in texts)
    assert not any("too little" in t or "rank" in t for t in texts)


def test_prompts_notice_receiving_without_blame() -> None:
    texts = prompts(summary(given=30, received=400, kinds={"feedback": (30, 400)}))
    assert any("Receiving is part of the flow too" in t for t in texts)


def test_prompts_for_capacity_waiting_and_quiet() -> None:
    over = prompts(summary(given=400, received=300, last7=400, weekly_hours=5,
                           kinds={"help": (400, 0), "care": (0, 300)}))
    assert any("more than the 5 h you said you have" in t for t in over)
    waiting = prompts(summary(given=60, received=60, kinds={"help": (60, 60)}), waiting_for_me=2)
    assert waiting[0].startswith("2 exchanges are waiting for your acknowledgement")
    quiet = prompts(summary())
    assert any("Nothing recorded in the last 28 days" in t for t in quiet)


def test_prompts_when_paused_come_first_and_are_kind() -> None:
    paused = member("ada", status="paused", paused_until=TODAY + timedelta(days=10))
    texts = prompts(summary(), paused)
    back = TODAY + timedelta(days=10)
    assert texts[0].startswith(f"You are paused until {back.day} {back:%b}.")
    assert "nothing here expects anything of you" in texts[0]


def test_at_most_three_prompts() -> None:
    texts = prompts(summary(given=600, received=0, last7=600, weekly_hours=2, kinds={"help": (600, 0)}),
                    waiting_for_me=1, waiting_for_others=3)
    assert len(texts) == 3


# -- pictures ------------------------------------------------------------------------------------------


def test_balance_chart_puts_given_above_and_received_below() -> None:
    weeks = [Week(week_start=date(2025, 6, 2), given={"help": 60}, received={"care": 30}),
             Week(week_start=date(2025, 6, 9), given={}, received={})]
    chart = balance_chart(weeks)
    assert not chart.empty
    assert chart.axis is not None
    axis = chart.axis.y1
    given = next(r for r in chart.rects if "gave 1 h of help" in r.title)
    received = next(r for r in chart.rects if "received 30 min of care" in r.title)
    assert given.y + given.height == pytest.approx(axis, abs=0.2)
    assert received.y == pytest.approx(axis, abs=0.2)
    assert given.height == pytest.approx(2 * received.height, abs=0.2)
    assert [label.text for label in chart.x_labels] == ["2 Jun", "9 Jun"]


def test_balance_chart_without_exchanges_is_empty() -> None:
    assert balance_chart([Week(week_start=date(2025, 6, 2))]).empty
    assert balance_chart([]).empty


def test_flow_graph_draws_both_directions_as_two_arrows() -> None:
    graph = flow_graph([Flow(giver="ada", receiver="ben", minutes=120), Flow(giver="ben", receiver="ada", minutes=30)],
                       {"ada": "Ada", "ben": "Ben", "chen": "Chen"})
    assert [n.id for n in graph.nodes] == ["ada", "ben", "chen"]  # everyone in the circle, by name
    assert len(graph.edges) == 2
    thick, thin = sorted(graph.edges, key=lambda e: -e.width)
    assert (thick.giver, thick.receiver) == ("ada", "ben") and thick.width > thin.width
    assert thick.path != thin.path
    assert thick.title == "Ada gave Ben 2 h"


def test_format() -> None:
    assert minutes(125) == "2 h 5 min"
    assert minutes(60) == "1 h"
    assert minutes(45) == "45 min"
    assert hours(90) == "1.5 h"
    assert day(date(2021, 3, 4)) == "4 Mar 2021"


def _big_circle(people: int = 45) -> tuple[list[Flow], dict[str, str]]:
    import random

    rng = random.Random(7)
    first = ["Amara", "Lukas", "Priya", "Tomás", "Samuel", "Henrik", "Mei-Lin", "Isabel", "Zara", "Rafael"]
    last = ["Okafor", "Brandt", "Raman", "Lindqvist", "Adeyemi", "Larsen", "Chen", "Ferreira", "Ahmed", "Gómez"]
    ids = [f"m{i:02d}" for i in range(people)]
    names = {m: f"{first[i % 10]} {last[(i * 3 + i // 10) % 10]}" for i, m in enumerate(ids)}
    pairs = {(g, r) for g, r in (rng.sample(ids, 2) for _ in range(200))}
    return [Flow(giver=g, receiver=r, minutes=rng.randint(10, 600)) for g, r in sorted(pairs)], names


def test_a_big_circles_graph_shows_its_strongest_flows_and_says_what_it_leaves_out() -> None:
    flows, names = _big_circle()
    graph = flow_graph(flows, names)
    assert graph.partial and graph.people_total == 45 and graph.flows_total == len(flows)
    assert len(graph.nodes) <= 16 and len(graph.edges) <= 30
    shown = sorted(e.minutes for e in graph.edges)
    assert graph.left_out_flows == len(flows) - len(graph.edges)
    assert graph.left_out_minutes == sum(f.minutes for f in flows) - sum(shown)
    assert max(f.minutes for f in flows) == shown[-1]  # the largest flow is always drawn
    # Every arrow joins two people on the ring, and every person on the ring has an arrow.
    on_ring = {n.id for n in graph.nodes}
    assert {e.giver for e in graph.edges} | {e.receiver for e in graph.edges} == on_ring


def test_a_big_circles_labels_do_not_overlap() -> None:
    flows, names = _big_circle()
    graph = flow_graph(flows, names)
    boxes = []
    for n in graph.nodes:
        width = 8.0 * len(n.label.text)  # generous for a 14 px sans-serif
        left = {"start": n.label.x, "end": n.label.x - width, "middle": n.label.x - width / 2}[n.label.anchor]
        boxes.append((left, n.label.y - 14, left + width, n.label.y + 4))
        assert 0 <= left and left + width <= graph.width, n.label  # inside the picture
    for i, a in enumerate(boxes):
        for b in boxes[i + 1:]:
            assert a[2] <= b[0] or b[2] <= a[0] or a[3] <= b[1] or b[3] <= a[1], (a, b)


def test_a_small_circle_still_shows_everyone() -> None:
    graph = flow_graph([Flow(giver="ada", receiver="ben", minutes=60)], {"ada": "Ada", "ben": "Ben", "chen": "Chen"})
    assert not graph.partial and {n.id for n in graph.nodes} == {"ada", "ben", "chen"}


def test_a_grid_of_ties_has_a_row_per_person_by_name_and_a_mark_on_both_rows_of_a_pair() -> None:
    names = {"m1": "zoe", "m2": "Ada", "m3": "ben", "m4": "Chen"}
    grid = tie_matrix(linked_people([("m1", "m2"), ("m2", "m3"), ("m4", "m4")]), names)  # m4 with herself: no tie
    assert [r.name for r in grid.rows] == ["Ada", "ben", "Chen", "zoe"]
    assert [r.ties for r in grid.rows] == [2, 1, 0, 1] and grid.ties_total == 2 and grid.people_total == 4
    assert [c.text for c in grid.columns] == ["Ada", "ben", "Chen", "zoe"]
    ada = grid.rows[0].cells
    # Ada's row: a move to her row, then to ben's column (1) and on to zoe's (3), each mark alike.
    assert ada.startswith("M") and ada.count("m") == 2 and ada.count("h12v12h-12z") == 2
    assert "m18,0" in ada and "m36,0" in ada
    assert grid.rows[2].cells == ""
    # However many ties, the same few elements: the grid's size depends on the people alone.
    everyone = tie_matrix(linked_people((a, b) for a in names for b in names if a < b), names)
    assert (everyone.width, everyone.height, len(everyone.rows)) == (grid.width, grid.height, len(grid.rows))
    assert everyone.ties_total == 6


def test_a_grids_names_fit_inside_it() -> None:
    names = {f"m{i}": f"Person with a rather long name {i}" for i in range(20)}
    grid = tie_matrix(linked_people([("m1", "m2")]), names)
    assert all(len(r.label.text) <= 24 and r.label.x > 8.2 * len(r.label.text) for r in grid.rows)
    assert all(c.y > 0.87 * 8.2 * len(c.text) for c in grid.columns)  # the slanted names stay inside the top


# -- dates: one format in forms and pages -----------------------------------------------------------------


@pytest.mark.parametrize("typed", ["2 Dec 2026", "2 December 2026", "02 dec 2026", " 2  DEC  2026 ", "2 Dec. 2026",
                                   "2Dec2026", "Dec 2, 2026", "December 2 2026", "2026-12-02", "2 Dec", "2 dec,"])
def test_a_day_is_read_in_the_pages_form_and_in_iso(typed: str) -> None:
    from reciprocity.web.format import parse_day

    assert parse_day(typed, date(2026, 12, 5)) == date(2026, 12, 2)


def test_today_yesterday_and_a_day_without_a_year_count_from_the_given_today() -> None:
    from reciprocity.web.format import parse_day

    assert parse_day("Today", date(2027, 1, 1)) == date(2027, 1, 1)
    assert parse_day("yesterday", date(2027, 1, 1)) == date(2026, 12, 31)  # across the year's end
    assert parse_day("31 Dec", date(2027, 1, 1)) == date(2027, 12, 31)  # this year's, as pages write it
    assert parse_day("29 Feb 2028", date(2027, 1, 1)) == date(2028, 2, 29)  # a leap day


@pytest.mark.parametrize("typed", ["", "   ", "12/02/2026", "02.12.2026", "2/12", "31 Feb 2026", "29 Feb 2027",
                                   "0 Dec 2026", "32 Dec 2026", "2 Decembre 2026", "2026-13-01", "2026-12",
                                   "Dec", "2026", "tomorrow", "2 Dec 26", "2 Dec 2026 2027", "0000-01-01"])
def test_anything_else_is_refused_with_the_form_to_write(typed: str) -> None:
    from reciprocity.web.format import parse_day

    with pytest.raises(ValueError, match=r"^Write the day like 2 Dec 2026\.$"):
        parse_day(typed, date(2026, 12, 5))


def test_a_date_field_shows_the_pages_form_with_the_year_and_offers_the_last_two_weeks(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from reciprocity.web.format import day_field, recent_days

    assert day_field(date(2026, 3, 4)) == "4 Mar 2026" and day_field("2026-03-04") == "4 Mar 2026"
    assert day_field("4/3/2026") == "4/3/2026" and day_field(None) == ""  # what was typed stays to be corrected
    freeze_clock(monkeypatch, datetime(2026, 12, 2, 20, 0, tzinfo=UTC))  # already 3 Dec east of UTC
    choices = recent_days()
    assert len(choices) == 14
    assert choices[:3] == [("3 Dec 2026", "Thursday"), ("2 Dec 2026", "today"), ("1 Dec 2026", "yesterday")]
    assert choices[-1] == ("20 Nov 2026", "Friday")


def test_the_exchange_form_reads_the_pages_form_and_sends_the_ledger_iso() -> None:
    blank = ExchangeForm.blank(TODAY)
    assert blank.occurred_on == f"{TODAY.day} {TODAY:%b %Y}"
    typed = ExchangeForm(direction="gave", other="ben", kind="help", minutes="30",
                         occurred_on=f"{TODAY.day} {TODAY:%B %Y}")
    assert check(typed, "ada", TODAY) == {}
    assert ledger_body(typed, "ada")["occurred_on"] == TODAY.isoformat()
    us_style = ExchangeForm(occurred_on="03/02/2025")
    assert check(us_style, "ada", TODAY)["occurred_on"] == "Write the day like 2 Dec 2026."
