"""The chaos run's verdict (bench/chaos/check.py): it must see a lost or doubled command, or the run
could report 0 lost whatever happened."""

from collections import Counter

from bench.chaos.check import (
    ACKNOWLEDGED,
    DIRECTORY,
    RECORD,
    REFUSED,
    UNCHANGED,
    UNKNOWN,
    ExchangeRow,
    Mail,
    Sent,
    check,
    check_alerts,
    expected_counters,
    last_line,
)


def record(tag: str, outcome: str = ACKNOWLEDGED) -> Sent:
    return Sent(tag=tag, action=RECORD, outcome=outcome, exchange_id=f"x-{tag}")


def row(tag: str, status: str = "recorded", minutes: int = 10, giver: str = "ana", receiver: str = "ben",
        exchange_id: str | None = None) -> ExchangeRow:
    return ExchangeRow(exchange_id or f"x-{tag}", tag, giver, receiver, minutes, status)


def consistent(rows: list[ExchangeRow]) -> dict[str, Counter[str]]:
    """The counters a correct projection keeps for these rows."""
    return expected_counters(rows)


def test_a_clean_run_has_nothing_lost_or_doubled() -> None:
    rows = [row("a", "acknowledged"), row("b"), row("c", "disputed")]
    sent = [record("a"), record("b"), record("c"),
            Sent("t1", "acknowledge", ACKNOWLEDGED, exchange_id="x-a"),
            Sent("t2", "dispute", ACKNOWLEDGED, exchange_id="x-c"),
            record("d", REFUSED), record("e", UNKNOWN)]
    verdict = check(sent, rows, consistent(rows), {})
    assert verdict.ok, verdict
    assert verdict.acknowledged == 5
    assert last_line(3, verdict, check_alerts([], {}, [], [])) == (
        "chaos: 3 kills, 5 acknowledged, 0 lost, 0 double-applied, 0 alerts expected, 0 delivered, "
        "0 duplicate emails")


def test_an_acknowledged_recording_missing_from_the_read_model_is_lost() -> None:
    rows = [row("a")]
    verdict = check([record("a"), record("b")], rows, consistent(rows), {})
    assert len(verdict.lost) == 1 and "b" in verdict.lost[0]
    assert not verdict.double_applied


def test_a_recording_twice_in_the_read_model_is_double_applied_whatever_its_answer() -> None:
    rows = [row("a"), row("a", exchange_id="x-other"), row("u"), row("u", exchange_id="x-u2")]
    verdict = check([record("a"), record("u", UNKNOWN)], rows, consistent(rows), {})
    assert len(verdict.double_applied) == 2
    assert not verdict.lost


def test_a_refused_command_found_in_the_read_model_is_reported() -> None:
    rows = [row("a", "withdrawn")]
    sent = [record("a"), record("r", REFUSED), Sent("w", "withdraw", REFUSED, exchange_id="x-a")]
    verdict = check(sent, [*rows, row("r")], consistent([*rows, row("r")]), {})
    assert len(verdict.double_applied) == 2


def test_an_acknowledged_transition_the_read_model_does_not_show_is_lost() -> None:
    rows = [row("a", "recorded")]
    sent = [record("a"), Sent("t", "acknowledge", ACKNOWLEDGED, exchange_id="x-a")]
    verdict = check(sent, rows, consistent(rows), {})
    assert len(verdict.lost) == 1 and "acknowledge" in verdict.lost[0]


def test_two_accepted_transitions_of_one_exchange_are_double_applied() -> None:
    rows = [row("a", "acknowledged")]
    sent = [record("a"), Sent("t1", "acknowledge", ACKNOWLEDGED, exchange_id="x-a"),
            Sent("t2", "dispute", ACKNOWLEDGED, exchange_id="x-a")]
    verdict = check(sent, rows, consistent(rows), {})
    assert len(verdict.double_applied) == 1


def test_sums_that_counted_an_event_twice_or_never_are_caught_even_when_the_rows_look_right() -> None:
    rows = [row("a", "acknowledged", minutes=30), row("b", "recorded", minutes=5)]
    counters = consistent(rows)
    counters["ana"]["given_count"] += 1  # the acknowledgement applied twice to the giver's sums
    counters["ana"]["given_minutes"] += 30
    counters["ben"]["pending_received_count"] -= 1  # the recording never reached the receiver's sums
    counters["ben"]["pending_received_minutes"] -= 5
    verdict = check([record("a"), record("b")], rows, counters, {})
    assert len(verdict.double_applied) == 1 and "ana given_count" in verdict.double_applied[0]
    assert len(verdict.lost) == 1 and "ben pending_received_count" in verdict.lost[0]


def test_minutes_off_with_the_right_count_are_reported_once() -> None:
    rows = [row("a", "acknowledged", minutes=30)]
    counters = consistent(rows)
    counters["ana"]["given_minutes"] += 7
    verdict = check([record("a")], rows, counters, {})
    assert verdict.double_applied == ["ana given_minutes is 37, its exchanges say 30"]


def test_the_directory_holds_the_last_acknowledged_value_or_a_later_timed_out_one() -> None:
    target = ("capacity", "ana")
    sent = [Sent("c1", DIRECTORY, ACKNOWLEDGED, target=target, value=10.0, seq=1),
            Sent("c2", DIRECTORY, ACKNOWLEDGED, target=target, value=12.0, seq=2),
            Sent("c3", DIRECTORY, UNKNOWN, target=target, value=20.0, seq=3),
            Sent("c4", DIRECTORY, REFUSED, target=target, value=99.0, seq=4),
            Sent("m", DIRECTORY, ACKNOWLEDGED, target=("member", "zoe"), value=True, seq=5),
            Sent("u", DIRECTORY, UNCHANGED, target=("circles", "ana"), value=("c1",), seq=6)]
    base = {("member", "zoe"): True, ("circles", "ana"): ("c1",)}
    assert check(sent, [], {}, {**base, target: 12.0}).ok
    assert check(sent, [], {}, {**base, target: 20.0}).ok
    stale = check(sent, [], {}, {**base, target: 10.0})
    assert len(stale.lost) == 1 and "capacity/ana" in stale.lost[0]
    assert len(check(sent, [], {}, {target: 12.0, ("circles", "ana"): ("c1",)}).lost) == 1  # zoe never arrived


def test_alerts_expected_delivered_and_duplicates_inside_and_outside_the_send_window() -> None:
    members = {"al-1": ("ana", "overextended"), "al-2": ("cy", "overextended"), "al-3": ("ana", "overextended")}
    expected = [("ana", "lead-a"), ("ana", "lead-b"), ("cy", "lead-a")]
    mails = [Mail("al-1", "lead-a", 100.0), Mail("al-1", "lead-b", 100.0), Mail("al-1", "lead-a", 140.0)]
    # cy's alert never came; the second copy to lead-a follows a notify kill 2 s after the first: explained.
    verdict = check_alerts(expected, members, mails, notify_kills=[102.0])
    assert (verdict.expected, verdict.delivered, verdict.duplicates) == (3, 2, 1)
    assert verdict.missing == ["no over-extension email about cy to lead-a"]
    assert not verdict.unexplained_duplicates

    # No kill near the first copy: a duplicate outside the window.
    assert len(check_alerts(expected, members, mails, notify_kills=[130.0]).unexplained_duplicates) == 1
    # A second alert about the same member to the same lead (raised twice): a duplicate too.
    twice = check_alerts(expected, members, [*mails[:2], Mail("al-3", "lead-a", 200.0)], notify_kills=[])
    assert twice.duplicates == 1 and "told 2x that ana is overextended" in twice.unexplained_duplicates[0]


def test_the_procfile_runs_on_the_runs_own_ports() -> None:
    from bench.chaos.stack import map_ports, role_of

    numbers = {"8001": 41001}
    assert map_ports("PORT=8001 exec python -m reciprocity.ledger.app", numbers) == (
        "PORT=41001 exec python -m reciprocity.ledger.app", 41001)
    worker, probe = map_ports("HEALTH_PORT=8012 exec python -m reciprocity.balance.worker projector", numbers)
    assert probe == numbers["8012"] and "8012" not in worker
    mail, probe = map_ports("exec python -m devstack.mail_sink --maildir var/mail --port 1025", numbers)
    assert probe is None and mail.endswith(f"--port {numbers['1025']}")
    assert [role_of(n) for n in ("balance", "balance-projector", "notify_sender")] == ["balance", "balance", "notify"]


def test_a_delivery_notify_calls_sent_must_be_in_the_mailbox_and_none_left_behind() -> None:
    members = {"al-1": ("ana", "overextended")}
    mails = [Mail("al-1", "lead-a", 100.0)]
    assert check_alerts([], members, mails, [], marked_sent=[("al-1", "lead-a")]).ok
    lost = check_alerts([], members, mails, [], marked_sent=[("al-1", "lead-a"), ("al-1", "lead-b")])
    assert lost.missing == ["notify logged alert al-1 as sent to lead-b; the mailbox has no such email"]
    assert not check_alerts([], members, mails, [], not_sent=["al-2 to lead-a: failed (no route)"]).ok



def test_an_acknowledged_correction_must_be_what_the_read_model_shows() -> None:
    target = ("correction", "x-a")
    sent = [record("a"), Sent("c", "correct", ACKNOWLEDGED, exchange_id="x-a", target=target,
                              value=(5, "help", "2026-12-01"), seq=2)]
    rows = [row("a", minutes=5)]
    assert check(sent, rows, consistent(rows), {target: (5, "help", "2026-12-01")}).ok
    stale = check(sent, rows, consistent(rows), {target: (10, "care", "2026-12-02")})
    assert len(stale.lost) == 1 and "correction/x-a" in stale.lost[0]
