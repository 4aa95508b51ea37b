"""Every event of the product, newest versions. Older versions live in `legacy.py`.

Events carry the facts needed to project them: lifecycle events of an exchange repeat the
exchange's giver, receiver, kind, minutes, day and circles, so no projection joins across
partitions or reads state it did not build itself.
"""

from enum import StrEnum
from typing import ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from .bounds import EARLIEST_EVENT_DAY, LATEST_EVENT_DAY, EventDay, OneLine, PauseEnd
from .ids import Slug
from .sealed import Sealed
from .vocabulary import Availability, Kind, SignalKind

Minutes = int
NOTE_MAX = 500
# Sums a signal carries fit a 32-bit column with room to spare (a year of 1440-minute days is 525,600).
MINUTES_BOUND = 2**31 - 1
MAX_DAYS_WITHOUT = (LATEST_EVENT_DAY - EARLIEST_EVENT_DAY).days


class Role(StrEnum):
    MEMBER = "member"
    OPERATOR = "operator"


class Event(BaseModel):
    """Base of every event payload. `TYPE` and `VERSION` name the schema; `TOPIC` where it lives."""

    # No NaN or infinity in any number (JSON has neither; a ratio of NaN compares false to everything).
    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)

    TYPE: ClassVar[str]
    VERSION: ClassVar[int] = 1
    TOPIC: ClassVar[str]

    def key(self) -> str:
        """The aggregate id: the message key, so one aggregate's events stay in order."""
        raise NotImplementedError


def _sealed_for(event: BaseModel, fields: tuple[str, ...], members: list[str]) -> None:
    """A sealed field names exactly the members it is about: the wrong `to` is a contract error, not
    a value that would open for somebody else or stay readable after its subject is forgotten."""
    for name in fields:
        value = getattr(event, name)
        if value is not None and value.to != members:
            raise ValueError(f"{name} must be sealed for {members}, not {value.to}")


# --- ledger.directory -------------------------------------------------------------------------


class PolicyOverrides(BaseModel):
    """Per-circle overrides of the alert policy's defaults; None keeps the default."""

    # An infinite ratio would pass `gt=1` and make the policy meaningless; NaN compares false to all.
    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)

    overextension_min_given_minutes: int | None = Field(default=None, ge=0)
    overextension_ratio: float | None = Field(default=None, gt=1)
    overextension_clear_ratio: float | None = Field(default=None, gt=1)
    disconnection_days: int | None = Field(default=None, ge=1, le=365)


class DirectoryEvent(Event):
    TOPIC: ClassVar[str] = "ledger.directory"


class CircleFormed(DirectoryEvent):
    TYPE: ClassVar[str] = "CircleFormed"
    circle_id: Slug
    name: OneLine = Field(min_length=1, max_length=100)
    parent: Slug | None = None
    policy: PolicyOverrides | None = None

    def key(self) -> str:
        return self.circle_id


class CircleLeadsChanged(DirectoryEvent):
    TYPE: ClassVar[str] = "CircleLeadsChanged"
    circle_id: Slug
    leads: list[Slug]

    def key(self) -> str:
        return self.circle_id


class MemberRegistered(DirectoryEvent):
    """v2 seals `name` and `email` with the member's own key (`contracts/sealed.py`)."""

    TYPE: ClassVar[str] = "MemberRegistered"
    VERSION: ClassVar[int] = 2
    member_id: Slug
    name: Sealed = Field(description="the display name, sealed for the member")
    email: Sealed = Field(description="the email address, sealed for the member")
    circles: list[Slug]
    role: Role = Role.MEMBER

    @model_validator(mode="after")
    def _sealed_for_the_member(self) -> "MemberRegistered":
        _sealed_for(self, ("name", "email"), [self.member_id])
        return self

    def key(self) -> str:
        return self.member_id


class MemberForgotten(DirectoryEvent):
    """The member was forgotten: their key is destroyed, so every value sealed for them (alone or with
    someone else) can no longer be read. Projections blank what they hold of them; their exchanges
    still count, shown as "a former member". Carries no personal value."""

    TYPE: ClassVar[str] = "MemberForgotten"
    member_id: Slug
    requested_by: Slug = Field(description="the operator who asked")

    def key(self) -> str:
        return self.member_id


class MemberJoinedCircle(DirectoryEvent):
    TYPE: ClassVar[str] = "MemberJoinedCircle"
    member_id: Slug
    circle_id: Slug

    def key(self) -> str:
        return self.member_id


class MemberLeftCircle(DirectoryEvent):
    TYPE: ClassVar[str] = "MemberLeftCircle"
    member_id: Slug
    circle_id: Slug

    def key(self) -> str:
        return self.member_id


class CapacityDeclared(DirectoryEvent):
    TYPE: ClassVar[str] = "CapacityDeclared"
    member_id: Slug
    weekly_hours: float | None = Field(description="None withdraws the declaration", ge=0, le=168)

    def key(self) -> str:
        return self.member_id


class AvailabilityChanged(DirectoryEvent):
    TYPE: ClassVar[str] = "AvailabilityChanged"
    member_id: Slug
    status: Availability
    paused_until: PauseEnd = None

    def key(self) -> str:
        return self.member_id


class NotificationSettingsChanged(DirectoryEvent):
    """What a member chose to hear by email about herself (both on unless she turned them off)."""

    TYPE: ClassVar[str] = "NotificationSettingsChanged"
    member_id: Slug
    own_alert_emails: bool = Field(description="a short email to her when a signal about her is raised")
    daily_digest: bool = Field(description="a daily email of what waits for her and what others did with hers")

    def key(self) -> str:
        return self.member_id


# --- ledger.exchanges -------------------------------------------------------------------------


class ExchangeFacts(Event):
    """What every exchange event repeats, so each can be projected on its own."""

    TOPIC: ClassVar[str] = "ledger.exchanges"
    exchange_id: str = Field(min_length=1, max_length=64)
    giver: Slug
    receiver: Slug
    kind: Kind
    minutes: Minutes = Field(ge=1, le=1440)
    occurred_on: EventDay
    giver_circles: list[Slug] = Field(description="the giver's circles when it was recorded")
    receiver_circles: list[Slug] = Field(description="the receiver's circles when it was recorded")

    def key(self) -> str:
        return self.exchange_id


class ExchangeRecorded(ExchangeFacts):
    """v2 added `shared`: the recorder agrees to show it on the appreciation wall. v3 seals `note` for
    both parties (None: no note)."""

    TYPE: ClassVar[str] = "ExchangeRecorded"
    VERSION: ClassVar[int] = 3
    note: Sealed | None = Field(default=None, description="sealed for giver and receiver together")
    recorded_by: Slug
    shared: bool = False

    @model_validator(mode="after")
    def _sealed_for_the_pair(self) -> "ExchangeRecorded":
        _sealed_for(self, ("note",), [self.giver, self.receiver])
        return self


class ExchangeAcknowledged(ExchangeFacts):
    """v2 seals `thanks` for both parties (None: no thanks)."""

    TYPE: ClassVar[str] = "ExchangeAcknowledged"
    VERSION: ClassVar[int] = 2
    by: Slug
    thanks: Sealed | None = Field(default=None, description="sealed for giver and receiver together")
    shared: bool = Field(default=False, description="the acknowledger agrees to share it too")

    @model_validator(mode="after")
    def _sealed_for_the_pair(self) -> "ExchangeAcknowledged":
        _sealed_for(self, ("thanks",), [self.giver, self.receiver])
        return self


class ExchangeDisputed(ExchangeFacts):
    """v2 seals `reason` for both parties."""

    TYPE: ClassVar[str] = "ExchangeDisputed"
    VERSION: ClassVar[int] = 2
    by: Slug
    reason: Sealed = Field(description="sealed for giver and receiver together")

    @model_validator(mode="after")
    def _sealed_for_the_pair(self) -> "ExchangeDisputed":
        _sealed_for(self, ("reason",), [self.giver, self.receiver])
        return self


class ExchangeWithdrawn(ExchangeFacts):
    TYPE: ClassVar[str] = "ExchangeWithdrawn"
    by: Slug


class CorrectedFacts(BaseModel):
    """The values a correction replaced (the note only as changed or not: it is private text)."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    kind: Kind
    minutes: Minutes = Field(ge=1, le=1440)
    occurred_on: EventDay


class ExchangeCorrected(ExchangeFacts):
    """The recorder corrected a still-`recorded` exchange. The facts are the corrected ones; `previous`
    holds what they replaced, so a projection can move the minutes without reading its own rows."""

    TYPE: ClassVar[str] = "ExchangeCorrected"
    VERSION: ClassVar[int] = 2
    by: Slug
    note: Sealed | None = Field(default=None, description="v2: sealed for giver and receiver together")
    previous: CorrectedFacts
    note_changed: bool = False

    @model_validator(mode="after")
    def _sealed_for_the_pair(self) -> "ExchangeCorrected":
        _sealed_for(self, ("note",), [self.giver, self.receiver])
        return self


class ExchangeSharingChanged(ExchangeFacts):
    """One party agrees to show the exchange on the appreciation wall, or stops sharing it. The wall
    shows an acknowledged exchange only while both parties share it."""

    TYPE: ClassVar[str] = "ExchangeSharingChanged"
    by: Slug
    shared: bool


# --- balance.signals --------------------------------------------------------------------------


class SignalEvent(Event):
    TOPIC: ClassVar[str] = "balance.signals"
    member_id: Slug
    circles: list[Slug]
    window_start: EventDay
    window_end: EventDay

    def key(self) -> str:
        return self.member_id


class MemberOverextended(SignalEvent):
    TYPE: ClassVar[str] = "MemberOverextended"
    reason: Literal["ratio", "capacity", "ratio_and_capacity"]
    given_minutes: int = Field(ge=0, le=MINUTES_BOUND, description="given in the 28-day window, settled and pending")
    received_minutes: int = Field(ge=0, le=MINUTES_BOUND)
    ratio: float | None = Field(ge=0, description="given / received; None when nothing was received")
    given_last_7_days: int = Field(ge=0, le=MINUTES_BOUND)
    weekly_capacity_minutes: int | None = Field(ge=0, le=MINUTES_BOUND)


class MemberDisconnected(SignalEvent):
    TYPE: ClassVar[str] = "MemberDisconnected"
    last_exchange_on: EventDay | None
    days_without_exchange: int = Field(ge=0, le=MAX_DAYS_WITHOUT)


class SignalCleared(SignalEvent):
    """v2 added `reason`: why it cleared. A pause clears a signal without anyone being told (SPEC)."""

    TYPE: ClassVar[str] = "SignalCleared"
    VERSION: ClassVar[int] = 2
    signal_kind: SignalKind
    raised_event_id: str = Field(min_length=1, max_length=64, description="event_id of the signal this clears")
    reason: Literal["rebalanced", "exchanged", "paused"] | None = Field(
        default=None, description="None: cleared before v2, when the reason was not recorded")


EVENT_TYPES: dict[str, type[Event]] = {
    cls.TYPE: cls
    for cls in (
        CircleFormed,
        CircleLeadsChanged,
        MemberRegistered,
        MemberJoinedCircle,
        MemberLeftCircle,
        CapacityDeclared,
        AvailabilityChanged,
        NotificationSettingsChanged,
        MemberForgotten,
        ExchangeRecorded,
        ExchangeAcknowledged,
        ExchangeDisputed,
        ExchangeWithdrawn,
        ExchangeCorrected,
        ExchangeSharingChanged,
        MemberOverextended,
        MemberDisconnected,
        SignalCleared,
    )
}
