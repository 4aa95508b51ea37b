"""The ledger's command rules on its write-side state, without Kafka or HTTP."""

import uuid
from datetime import timedelta

import pytest
from reciprocity.contracts.commands import (
    Acknowledge,
    ChangeAvailability,
    ChangeCircles,
    DeclareCapacity,
    Dispute,
    FormCircle,
    RecordExchange,
    RegisterMember,
    SetLeads,
    Withdraw,
    today_utc,
)
from reciprocity.contracts.events import (
    CircleFormed,
    ExchangeAcknowledged,
    ExchangeDisputed,
    ExchangeRecorded,
    MemberJoinedCircle,
    MemberLeftCircle,
)
from reciprocity.contracts.vocabulary import ACKNOWLEDGED, DISPUTED, RECORDED, WITHDRAWN
from reciprocity.ledger.handlers import Conflict, InvalidCommand, Unknown, handle
from reciprocity.ledger.state import LedgerState


def run(state: LedgerState, command, target=None):
    """Handle and apply, as the service does after a successful append."""
    events = handle(command, state, target)
    for event in events:
        state.apply(event, event_id=uuid.uuid4())
    return events


@pytest.fixture
def state() -> LedgerState:
    s = LedgerState()
    run(s, FormCircle(id="commons", name="Commons"))
    run(s, FormCircle(id="eng", name="Engineering", parent="commons"))
    run(s, FormCircle(id="care", name="Care team", parent="commons"))
    for member_id, circles in (("ada", ["eng"]), ("bob", ["eng", "care"]), ("cleo", ["care"])):
        run(s, RegisterMember(id=member_id, name=member_id.title(), email=f"{member_id}@example.org",
                              circles=circles))
    return s


def record(state: LedgerState, exchange_id: str = "x-1", **overrides) -> ExchangeRecorded:
    body = {"giver": "ada", "receiver": "bob", "kind": "mentoring", "minutes": 60,
            "occurred_on": today_utc(), "recorded_by": "ada", **overrides}
    (event,) = run(state, RecordExchange.model_validate(body), exchange_id)
    return event


def test_circle_ids_are_unique_and_parents_must_exist(state: LedgerState) -> None:
    with pytest.raises(Conflict, match="already exists"):
        handle(FormCircle(id="eng", name="Again"), state)
    with pytest.raises(InvalidCommand) as caught:
        handle(FormCircle(id="platform", name="Platform", parent="nowhere"), state)
    assert caught.value.errors[0].field == "parent"
    (event,) = handle(FormCircle(id="platform", name="Platform", parent="eng"), state)
    assert isinstance(event, CircleFormed) and event.parent == "eng"


def test_members_are_unique_by_id_and_email_and_join_existing_circles(state: LedgerState) -> None:
    with pytest.raises(Conflict, match="member 'ada' already"):
        handle(RegisterMember(id="ada", name="Ada", email="other@example.org"), state)
    with pytest.raises(Conflict, match="already belongs to member 'ada'"):
        handle(RegisterMember(id="ada2", name="Ada", email="ADA@example.org"), state)
    with pytest.raises(InvalidCommand) as caught:
        handle(RegisterMember(id="dan", name="Dan", email="dan@example.org", circles=["eng", "ghosts"]), state)
    assert [e.field for e in caught.value.errors] == ["circles[1]"]


def test_leads_must_be_registered_members_of_an_existing_circle(state: LedgerState) -> None:
    with pytest.raises(Unknown):
        handle(SetLeads(leads=["ada"]), state, "nowhere")
    with pytest.raises(InvalidCommand) as caught:
        handle(SetLeads(leads=["ada", "zed", "yan"]), state, "eng")
    assert [e.field for e in caught.value.errors] == ["leads[1]", "leads[2]"]
    run(state, SetLeads(leads=["ada"]), "eng")
    assert state.circles["eng"].leads == ["ada"]


def test_changing_circles_emits_the_difference(state: LedgerState) -> None:
    events = run(state, ChangeCircles(circles=["care", "commons"]), "bob")
    assert [(type(e), e.circle_id) for e in events] == [(MemberLeftCircle, "eng"), (MemberJoinedCircle, "commons")]
    assert state.members["bob"].circles == ["care", "commons"]
    assert handle(ChangeCircles(circles=["commons", "care"]), state, "bob") == []  # nothing to change
    with pytest.raises(Unknown):
        handle(ChangeCircles(circles=[]), state, "nobody")
    with pytest.raises(InvalidCommand):
        handle(ChangeCircles(circles=["ghosts"]), state, "bob")


def test_capacity_and_availability_need_a_member(state: LedgerState) -> None:
    run(state, DeclareCapacity(weekly_hours=3.5), "ada")
    run(state, ChangeAvailability(status="paused", paused_until=today_utc() + timedelta(days=9)), "cleo")
    assert state.members["ada"].weekly_hours == 3.5
    assert state.members["cleo"].status == "paused"
    for command in (DeclareCapacity(weekly_hours=1), ChangeAvailability(status="active")):
        with pytest.raises(Unknown):
            handle(command, state, "nobody")


def test_exchange_carries_the_circles_at_recording_time(state: LedgerState) -> None:
    event = record(state)
    assert (event.giver_circles, event.receiver_circles) == (["eng"], ["eng", "care"])
    run(state, ChangeCircles(circles=["care"]), "bob")
    assert state.exchanges["x-1"].receiver_circles == ["eng", "care"]  # history is not rewritten


def test_exchange_parties_must_be_registered(state: LedgerState) -> None:
    with pytest.raises(InvalidCommand) as caught:
        record(state, giver="zed", receiver="yan", recorded_by="zed")
    assert [e.field for e in caught.value.errors] == ["giver", "receiver"]


def test_only_the_other_party_acknowledges_or_disputes(state: LedgerState) -> None:
    record(state)  # ada gave and recorded: bob is the other party
    for command in (Acknowledge(by="ada"), Dispute(by="ada", reason="no"), Acknowledge(by="cleo")):
        with pytest.raises(InvalidCommand) as caught:
            handle(command, state, "x-1")
        assert caught.value.errors[0].field == "by"
        assert "only bob" in caught.value.errors[0].message
    (event,) = run(state, Acknowledge(by="bob", thanks="thank you", shared=True), "x-1")
    assert isinstance(event, ExchangeAcknowledged) and event.minutes == 60 and event.giver_circles == ["eng"]
    assert state.exchanges["x-1"].status == ACKNOWLEDGED


def test_receiver_may_record_and_then_the_giver_acknowledges(state: LedgerState) -> None:
    record(state, recorded_by="bob")
    with pytest.raises(InvalidCommand):
        handle(Acknowledge(by="bob"), state, "x-1")
    run(state, Acknowledge(by="ada"), "x-1")


def test_only_the_recorder_withdraws_and_only_while_recorded(state: LedgerState) -> None:
    record(state)
    with pytest.raises(InvalidCommand, match="only ada"):
        handle(Withdraw(by="bob"), state, "x-1")
    run(state, Withdraw(by="ada"), "x-1")
    assert state.exchanges["x-1"].status == WITHDRAWN
    record(state, "x-2")
    run(state, Acknowledge(by="bob"), "x-2")
    with pytest.raises(Conflict, match="already acknowledged"):
        handle(Withdraw(by="ada"), state, "x-2")


@pytest.mark.parametrize("first", ["acknowledge", "dispute", "withdraw"])
@pytest.mark.parametrize("then", ["acknowledge", "dispute", "withdraw"])
def test_no_transition_out_of_a_final_status(state: LedgerState, first: str, then: str) -> None:
    commands = {"acknowledge": Acknowledge(by="bob"), "dispute": Dispute(by="bob", reason="did not happen"),
                "withdraw": Withdraw(by="ada")}
    record(state)
    run(state, commands[first], "x-1")
    assert state.exchanges["x-1"].status != RECORDED
    with pytest.raises(Conflict, match="only a recorded exchange"):
        handle(commands[then], state, "x-1")


def test_unknown_exchange_is_unknown(state: LedgerState) -> None:
    with pytest.raises(Unknown, match="no exchange 'x-404'"):
        handle(Dispute(by="bob", reason="?"), state, "x-404")


def test_disputed_stays_disputed_and_is_applied_once(state: LedgerState) -> None:
    event = record(state)
    (disputed,) = handle(Dispute(by="bob", reason="never happened"), state, "x-1")
    assert isinstance(disputed, ExchangeDisputed)
    event_id = uuid.uuid4()
    assert state.apply(disputed, event_id=event_id) is True
    assert state.apply(disputed, event_id=event_id) is False  # a repeated event id is applied once
    assert state.exchanges[event.exchange_id].status == DISPUTED
    assert state.counts()["exchanges_disputed"] == 1


def test_a_member_turns_her_own_emails_off_and_on_and_a_repeat_changes_nothing(state: LedgerState) -> None:
    from reciprocity.contracts.commands import SetNotifications
    from reciprocity.contracts.events import NotificationSettingsChanged

    (event,) = run(state, SetNotifications(own_alert_emails=False, daily_digest=True), "ada")
    assert isinstance(event, NotificationSettingsChanged) and event.own_alert_emails is False
    assert (state.members["ada"].own_alert_emails, state.members["ada"].daily_digest) == (False, True)
    assert run(state, SetNotifications(own_alert_emails=False, daily_digest=True), "ada") == []
    with pytest.raises(Unknown):
        handle(SetNotifications(own_alert_emails=True, daily_digest=True), state, "nobody")


def test_either_party_shares_or_stops_sharing_at_any_time_and_a_stranger_cannot(state: LedgerState) -> None:
    from reciprocity.contracts.commands import ShareExchange
    from reciprocity.contracts.events import ExchangeSharingChanged

    xid = "x-share"
    run(state, RecordExchange(giver="ada", receiver="bob", kind="help", minutes=30, occurred_on=today_utc(),
                              recorded_by="ada"), xid)
    (later,) = run(state, ShareExchange(by="ada", shared=True), xid)  # the recorder agrees later
    assert isinstance(later, ExchangeSharingChanged) and state.exchanges[xid].shared is True
    run(state, Acknowledge(by="bob", shared=True), xid)
    assert state.exchanges[xid].shared_by_other is True
    (stop,) = run(state, ShareExchange(by="bob", shared=False), xid)  # after acknowledging, still his to stop
    assert stop.shared is False and state.exchanges[xid].shared_by_other is False
    assert run(state, ShareExchange(by="bob", shared=False), xid) == []
    with pytest.raises(InvalidCommand):
        handle(ShareExchange(by="cleo", shared=False), state, xid)


def test_the_recorder_corrects_while_recorded_and_the_event_says_what_it_replaced(state: LedgerState) -> None:
    from reciprocity.contracts.commands import CorrectExchange
    from reciprocity.contracts.events import ExchangeCorrected

    xid = "x-fix"
    day = today_utc() - timedelta(days=3)
    run(state, RecordExchange(giver="ada", receiver="bob", kind="mentoring", minutes=45, occurred_on=day,
                              note="pairing", recorded_by="ada"), xid)
    with pytest.raises(InvalidCommand):  # only the recorder
        handle(CorrectExchange(by="bob", kind="help", minutes=60, occurred_on=day), state, xid)
    (fixed,) = run(state, CorrectExchange(by="ada", kind="feedback", minutes=60, occurred_on=day - timedelta(days=1),
                                          note="pairing"), xid)
    assert isinstance(fixed, ExchangeCorrected) and (fixed.kind, fixed.minutes) == ("feedback", 60)
    assert (fixed.previous.kind, fixed.previous.minutes, fixed.previous.occurred_on) == ("mentoring", 45, day)
    assert fixed.note_changed is False and state.exchanges[xid].minutes == 60
    assert run(state, CorrectExchange(by="ada", kind="feedback", minutes=60, occurred_on=day - timedelta(days=1),
                                      note="pairing"), xid) == []
    run(state, Acknowledge(by="bob"), xid)
    with pytest.raises(Conflict):  # acknowledged: it no longer changes under the other party
        handle(CorrectExchange(by="ada", kind="help", minutes=5, occurred_on=day), state, xid)
