"""The pure projector: events -> aggregated deltas, following the exchange lifecycle."""

import json
from datetime import date

import pytest
from reciprocity.balance.projector import EXCHANGE_ROW, KnownExchange, ProjectionError, lifecycle_ids, project
from reciprocity.contracts.envelope import decode
from reciprocity.contracts.schemas import GOLDEN_DIR

from tests.support.events import Exchange, envelope, member

DAY = date(2026, 2, 10)
D = DAY.isoformat()  # days are keyed as ISO text


def test_lifecycle_deltas_aggregate_per_key() -> None:
    a = Exchange("ann", "bob", 60, DAY, "mentoring", giver_circles=["core"], receiver_circles=["core"])
    b = Exchange("ann", "bob", 30, DAY, "mentoring", giver_circles=["core"], receiver_circles=["ops"])
    c = Exchange("ann", "bob", 10, DAY, "mentoring")
    events = [a.recorded(), b.recorded(), c.recorded(), a.acknowledged(), b.disputed(), c.withdrawn()]
    d = project([(envelope(e), e) for e in events], {})
    # a settled (60), b and c pending then removed; one row for the key
    assert d.circle_day[("core", D, "mentoring")] == [1, 60, 0, 0, 0, 0, 0, 0]  # a inside, b crossing (gone)
    assert d.circle_day[("ops", D, "mentoring")] == [0] * 8
    status = EXCHANGE_ROW.index("status")
    assert {x: r[status] for x, r in d.new_exchanges.items()} == {a.id: "acknowledged", b.id: "disputed",
                                                                  c.id: "withdrawn"}
    assert d.touched_members == {"ann", "bob"}


def test_transition_of_an_earlier_exchange_uses_known_status() -> None:
    a = Exchange("ann", "bob", 45, DAY, "help")
    assert lifecycle_ids([a.acknowledged()]) == {a.id}
    d = project([(envelope(e), e) for e in [a.acknowledged("thanks")]], {a.id: KnownExchange("recorded")})
    assert d.touched_members == {"ann", "bob"} and not d.new_exchanges
    assert d.exchange_updates[a.id]["status"] == "acknowledged" and d.exchange_updates[a.id]["thanks"] == "thanks"


@pytest.mark.parametrize("known", [{}, {"x-1": KnownExchange("acknowledged")}, {"x-1": KnownExchange("withdrawn")}])
def test_transition_not_from_recorded_fails(known: dict[str, KnownExchange]) -> None:
    a = Exchange("ann", "bob", 45, DAY, exchange_id="x-1")
    with pytest.raises(ProjectionError):
        project([(envelope(e), e) for e in [a.acknowledged()]], known)


def test_recording_an_exchange_twice_fails() -> None:
    a = Exchange("ann", "bob", 45, DAY)
    with pytest.raises(ProjectionError):
        project([(envelope(e), e) for e in [a.recorded(), a.recorded()]], {})


def test_a_v1_golden_exchange_projects_as_its_v2_equivalent() -> None:
    """ExchangeRecorded v1 (before `shared`) lifts to v2 on read and counts exactly like a v2 event
    with the same facts, not shared."""
    v1 = json.loads((GOLDEN_DIR / "ExchangeRecorded.v1.json").read_text())
    v2 = {**v1, "version": 2, "payload": {**v1["payload"], "shared": False}}  # the same facts, written as v2
    old, new = decode(json.dumps(v1)), decode(json.dumps(v2))
    old_deltas, new_deltas = project([old], {}), project([new], {})
    assert old_deltas.touched_members == new_deltas.touched_members and old_deltas.touched_members
    assert old_deltas.circle_day == new_deltas.circle_day
    assert old_deltas.new_exchanges == new_deltas.new_exchanges


def test_a_repeated_event_id_is_applied_once() -> None:
    """Within a batch, after an earlier batch (the exchange's known events), and for directory events."""
    a = Exchange("ann", "bob", 45, DAY, "help")
    recording, acknowledging = a.recorded(), a.acknowledged()
    recorded, acknowledged = envelope(recording), envelope(acknowledging)
    once = project([(recorded, recording)], {})
    twice = project([(recorded, recording), (recorded, recording)], {})
    assert twice.repeats == 1 and twice.new_exchanges == once.new_exchanges and len(twice.new_exchanges) == 1

    known = {a.id: KnownExchange("acknowledged", frozenset({str(recorded.event_id), str(acknowledged.event_id)}))}
    again = project([(recorded, recording), (acknowledged, acknowledging)], known)
    assert again.repeats == 2 and not again.touched_members and not again.new_exchanges and not again.exchange_updates

    joined = member("ann", ["core"])
    joined_env = envelope(joined)
    first = project([(joined_env, joined)], {})
    assert first.directory_event_ids == [str(joined_env.event_id)] and first.directory
    later = project([(joined_env, joined)], {}, applied={str(joined_env.event_id)})
    assert later.repeats == 1 and not later.directory and not later.touched_members


def test_a_transition_names_the_event_that_made_it() -> None:
    a = Exchange("ann", "bob", 45, DAY, "help")
    acknowledged = envelope(a.acknowledged())
    d = project([(acknowledged, a.acknowledged())], {a.id: KnownExchange("recorded")})
    assert d.exchange_updates[a.id]["status_event_id"] == str(acknowledged.event_id)
