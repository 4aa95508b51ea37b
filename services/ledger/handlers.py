"""Command handlers: `handle(command, state, target) -> [events]`, or a domain error.

Pure functions of the command and the write-side state; they neither append nor change the state (the
caller appends the events and then applies them). Status codes the HTTP layer maps the errors to:

- `Unknown`  -> 404: the id in the request's path names nothing (circle, member or exchange);
- `InvalidCommand` -> 422: the body is wrong, field by field, including ids in the body that name nothing
  ("leads[1]: there is no member 'bob'") and an actor who may not do this ("by: only the receiver ...");
- `Conflict` -> 409: the state does not allow it (the id is taken; the exchange is no longer `recorded`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from reciprocity.contracts.commands import (
    Acknowledge,
    ChangeAvailability,
    ChangeCircles,
    Command,
    CorrectExchange,
    DeclareCapacity,
    Dispute,
    FieldError,
    ForgetMember,
    FormCircle,
    RecordExchange,
    RegisterMember,
    SetLeads,
    SetNotifications,
    ShareExchange,
    Withdraw,
)
from reciprocity.contracts.events import (
    AvailabilityChanged,
    CapacityDeclared,
    CircleFormed,
    CircleLeadsChanged,
    CorrectedFacts,
    Event,
    ExchangeAcknowledged,
    ExchangeCorrected,
    ExchangeDisputed,
    ExchangeRecorded,
    ExchangeSharingChanged,
    ExchangeWithdrawn,
    MemberForgotten,
    MemberJoinedCircle,
    MemberLeftCircle,
    MemberRegistered,
    NotificationSettingsChanged,
)
from reciprocity.contracts.sealed import Sealed
from reciprocity.contracts.vocabulary import RECORDED

from .state import Exchange, LedgerState, Member


class DomainError(Exception):
    """A command the state refuses; nothing is appended."""


class Unknown(DomainError):
    pass


class Conflict(DomainError):
    pass


class InvalidCommand(DomainError):
    def __init__(self, errors: list[FieldError]) -> None:
        super().__init__("; ".join(f"{e.field}: {e.message}" for e in errors))
        self.errors = errors


class _Errors:
    """Collects every field error of a command, so the caller learns all of them at once."""

    def __init__(self) -> None:
        self.items: list[FieldError] = []

    def add(self, field: str, message: str) -> None:
        self.items.append(FieldError(field=field, message=message))

    def raise_any(self) -> None:
        if self.items:
            raise InvalidCommand(self.items)


def _check_circles(errors: _Errors, state: LedgerState, field: str, circle_ids: list[str]) -> None:
    for i, circle_id in enumerate(circle_ids):
        if circle_id not in state.circles:
            errors.add(f"{field}[{i}]", f"there is no circle '{circle_id}'; form it first.")


def _member(state: LedgerState, member_id: str | None) -> Member:
    member = state.members.get(member_id or "")
    if member is None:
        raise Unknown(f"there is no member '{member_id}'")
    return member


def _exchange(state: LedgerState, exchange_id: str | None) -> Exchange:
    exchange = state.exchanges.get(exchange_id or "")
    if exchange is None:
        raise Unknown(f"there is no exchange '{exchange_id}'")
    return exchange


# --- directory ---------------------------------------------------------------------------------------------


def form_circle(cmd: FormCircle, state: LedgerState, _target: str | None) -> list[Event]:
    if cmd.id in state.circles:
        raise Conflict(f"a circle '{cmd.id}' already exists")
    errors = _Errors()
    if cmd.parent is not None and cmd.parent not in state.circles:
        errors.add("parent", f"there is no circle '{cmd.parent}' to nest this one in; form the parent first.")
    errors.raise_any()
    return [CircleFormed(circle_id=cmd.id, name=cmd.name, parent=cmd.parent, policy=cmd.policy)]


def set_leads(cmd: SetLeads, state: LedgerState, circle_id: str | None) -> list[Event]:
    if circle_id not in state.circles:
        raise Unknown(f"there is no circle '{circle_id}'")
    errors = _Errors()
    for i, lead in enumerate(cmd.leads):
        if lead not in state.members:
            errors.add(f"leads[{i}]", f"there is no member '{lead}'; a lead must be a registered member.")
    errors.raise_any()
    return [CircleLeadsChanged(circle_id=circle_id, leads=cmd.leads)]


def register_member(cmd: RegisterMember, state: LedgerState, _target: str | None) -> list[Event]:
    if cmd.id in state.members:
        raise Conflict(f"a member '{cmd.id}' already exists")
    if cmd.id in state.forgotten:
        raise Conflict(f"the id '{cmd.id}' belonged to a member who was forgotten; ids are not given again")
    holder = state.emails.get(str(cmd.email).lower())
    if holder is not None:
        raise Conflict(f"the email address {cmd.email} already belongs to member '{holder}'")
    errors = _Errors()
    _check_circles(errors, state, "circles", cmd.circles)
    errors.raise_any()
    # Clear values here; the ledger seals them for the member once the event's id is known (service.py).
    return [MemberRegistered(member_id=cmd.id, name=Sealed.clear(cmd.name, [cmd.id]),
                             email=Sealed.clear(str(cmd.email), [cmd.id]), circles=cmd.circles, role=cmd.role)]


def change_circles(cmd: ChangeCircles, state: LedgerState, member_id: str | None) -> list[Event]:
    member = _member(state, member_id)
    errors = _Errors()
    _check_circles(errors, state, "circles", cmd.circles)
    errors.raise_any()
    left = [MemberLeftCircle(member_id=member.id, circle_id=c) for c in member.circles if c not in cmd.circles]
    joined = [MemberJoinedCircle(member_id=member.id, circle_id=c) for c in cmd.circles if c not in member.circles]
    return [*left, *joined]  # may be empty: the member is already in exactly these circles


def declare_capacity(cmd: DeclareCapacity, state: LedgerState, member_id: str | None) -> list[Event]:
    member = _member(state, member_id)
    return [CapacityDeclared(member_id=member.id, weekly_hours=cmd.weekly_hours)]


def change_availability(cmd: ChangeAvailability, state: LedgerState, member_id: str | None) -> list[Event]:
    member = _member(state, member_id)
    return [AvailabilityChanged(member_id=member.id, status=cmd.status, paused_until=cmd.paused_until)]


def set_notifications(cmd: SetNotifications, state: LedgerState, member_id: str | None) -> list[Event]:
    member = _member(state, member_id)
    if (member.own_alert_emails, member.daily_digest) == (cmd.own_alert_emails, cmd.daily_digest):
        return []  # already so: 200 Unchanged
    return [NotificationSettingsChanged(member_id=member.id, own_alert_emails=cmd.own_alert_emails,
                                        daily_digest=cmd.daily_digest)]


# --- exchanges ---------------------------------------------------------------------------------------------


def record_exchange(cmd: RecordExchange, state: LedgerState, exchange_id: str | None) -> list[Event]:
    assert exchange_id is not None, "the caller names the new exchange"
    errors = _Errors()
    for field in ("giver", "receiver"):
        member_id = getattr(cmd, field)
        if member_id not in state.members:
            errors.add(field, f"there is no member '{member_id}'.")
    errors.raise_any()
    if exchange_id in state.exchanges:
        raise Conflict(f"an exchange '{exchange_id}' already exists")
    return [ExchangeRecorded(
        exchange_id=exchange_id,
        giver=cmd.giver,
        receiver=cmd.receiver,
        kind=cmd.kind,
        minutes=cmd.minutes,
        occurred_on=cmd.occurred_on,
        # The circles at the time of recording travel with the event: no projection looks them up.
        giver_circles=list(state.members[cmd.giver].circles),
        receiver_circles=list(state.members[cmd.receiver].circles),
        note=Sealed.clear(cmd.note, [cmd.giver, cmd.receiver]) if cmd.note else None,
        recorded_by=cmd.recorded_by,
        shared=cmd.shared,
    )]


def _facts(exchange: Exchange) -> dict[str, Any]:
    return {
        "exchange_id": exchange.id,
        "giver": exchange.giver,
        "receiver": exchange.receiver,
        "kind": exchange.kind,
        "minutes": exchange.minutes,
        "occurred_on": exchange.occurred_on,
        "giver_circles": exchange.giver_circles,
        "receiver_circles": exchange.receiver_circles,
    }


def _settle(exchange: Exchange, by: str, verb: str, *, recorder_acts: bool) -> None:
    """Who may `verb` the exchange, and only while it is `recorded`."""
    if recorder_acts and by != exchange.recorded_by:
        raise InvalidCommand([FieldError(field="by", message=(
            f"only {exchange.recorded_by}, who recorded this exchange, can {verb} it."))])
    if not recorder_acts and by != exchange.other_party:
        why = "recorded it" if by == exchange.recorded_by else "is not the other party"
        raise InvalidCommand([FieldError(field="by", message=(
            f"only {exchange.other_party}, the other party, can {verb} this exchange; {by} {why}."))])
    if exchange.status != RECORDED:
        raise Conflict(f"exchange {exchange.id} is already {exchange.status}; only a recorded exchange can be "
                       f"{_past[verb]}")


_past = {"acknowledge": "acknowledged", "dispute": "disputed", "withdraw": "withdrawn", "correct": "corrected"}


def _former_party(state: LedgerState, exchange: Exchange) -> str | None:
    """The party of the exchange who was forgotten, if any."""
    return next((m for m in (exchange.giver, exchange.receiver) if m in state.forgotten), None)


def acknowledge(cmd: Acknowledge, state: LedgerState, exchange_id: str | None) -> list[Event]:
    exchange = _exchange(state, exchange_id)
    _settle(exchange, cmd.by, "acknowledge", recorder_acts=False)
    if cmd.thanks and _former_party(state, exchange):
        # Thanks are sealed for both parties; one key is destroyed, so they could never be read.
        raise InvalidCommand([FieldError(field="thanks", message=(
            "the other party is a former member (forgotten): acknowledge without thanks."))])
    thanks = Sealed.clear(cmd.thanks, [exchange.giver, exchange.receiver]) if cmd.thanks else None
    return [ExchangeAcknowledged(**_facts(exchange), by=cmd.by, thanks=thanks, shared=cmd.shared)]


def dispute(cmd: Dispute, state: LedgerState, exchange_id: str | None) -> list[Event]:
    exchange = _exchange(state, exchange_id)
    _settle(exchange, cmd.by, "dispute", recorder_acts=False)
    if _former_party(state, exchange):
        raise Conflict(f"exchange {exchange.id} is with a former member (forgotten): a reason could never be "
                       "read; acknowledge or leave it")
    return [ExchangeDisputed(**_facts(exchange), by=cmd.by,
                             reason=Sealed.clear(cmd.reason, [exchange.giver, exchange.receiver]))]


def withdraw(cmd: Withdraw, state: LedgerState, exchange_id: str | None) -> list[Event]:
    exchange = _exchange(state, exchange_id)
    _settle(exchange, cmd.by, "withdraw", recorder_acts=True)
    return [ExchangeWithdrawn(**_facts(exchange), by=cmd.by)]


def correct(cmd: CorrectExchange, state: LedgerState, exchange_id: str | None) -> list[Event]:
    """The recorder, while it is still recorded: after an acknowledgement or a dispute the other party
    agreed to (or contested) what was there, so it can no longer change under them."""
    exchange = _exchange(state, exchange_id)
    _settle(exchange, cmd.by, "correct", recorder_acts=True)
    before = (exchange.kind, exchange.minutes, exchange.occurred_on, exchange.note)
    if before == (str(cmd.kind), cmd.minutes, cmd.occurred_on, cmd.note):
        return []  # nothing to correct: 200 Unchanged
    facts = {**_facts(exchange), "kind": cmd.kind, "minutes": cmd.minutes, "occurred_on": cmd.occurred_on}
    note = Sealed.clear(cmd.note, [exchange.giver, exchange.receiver]) if cmd.note else None  # sealed by the ledger
    return [ExchangeCorrected(**facts, by=cmd.by, note=note, note_changed=cmd.note != exchange.note,
                              previous=CorrectedFacts.model_validate({
                                  "kind": exchange.kind, "minutes": exchange.minutes,
                                  "occurred_on": exchange.occurred_on}))]


def share(cmd: ShareExchange, state: LedgerState, exchange_id: str | None) -> list[Event]:
    """Either party, at any time and in any status: consent to the wall is each person's own to give and
    to take back (the wall shows an acknowledged exchange while both share it)."""
    exchange = _exchange(state, exchange_id)
    if cmd.by not in (exchange.giver, exchange.receiver):
        raise InvalidCommand([FieldError(field="by", message=(
            f"only {exchange.giver} and {exchange.receiver}, the two parties, can share this exchange."))])
    current = exchange.shared if cmd.by == exchange.recorded_by else exchange.shared_by_other
    if current == cmd.shared:
        return []  # already so: 200 Unchanged
    return [ExchangeSharingChanged(**_facts(exchange), by=cmd.by, shared=cmd.shared)]


def forget_member(cmd: ForgetMember, state: LedgerState, member_id: str | None) -> list[Event]:
    if member_id in state.forgotten:
        return []  # forgotten already: nothing to append (200 Unchanged)
    member = _member(state, member_id)
    errors = _Errors()
    if cmd.confirm != member.id:
        errors.add("confirm", f"repeat the id of the member to forget ('{member.id}') to confirm.")
    operator = state.members.get(cmd.by)
    if operator is None or operator.role != "operator":
        errors.add("by", f"only an operator can ask for a member to be forgotten; '{cmd.by}' is not one.")
    elif cmd.by == member.id:
        errors.add("by", "an operator cannot forget themself; another operator must ask.")
    errors.raise_any()
    # The ledger destroys the key before it appends this (service.py).
    return [MemberForgotten(member_id=member.id, requested_by=cmd.by)]


Handler = Callable[[Any, LedgerState, str | None], list[Event]]

HANDLERS: dict[type[Command], Handler] = {
    FormCircle: form_circle,
    SetLeads: set_leads,
    RegisterMember: register_member,
    ChangeCircles: change_circles,
    DeclareCapacity: declare_capacity,
    ChangeAvailability: change_availability,
    SetNotifications: set_notifications,
    RecordExchange: record_exchange,
    Acknowledge: acknowledge,
    Dispute: dispute,
    Withdraw: withdraw,
    ShareExchange: share,
    CorrectExchange: correct,
    ForgetMember: forget_member,
}


def handle(command: Command, state: LedgerState, target: str | None = None) -> list[Event]:
    """The events `command` appends given `state`; `target` is the path's id, or the new exchange's id.

    Raises Unknown, InvalidCommand or Conflict. An empty list means there is nothing to change.
    """
    return HANDLERS[type(command)](command, state, target)
