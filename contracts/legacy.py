"""Older versions of events, frozen as they were written. Only upcasters, the sealing migration and
schema files use them: producers always write the newest version."""

from typing import ClassVar, Literal

from pydantic import EmailStr, Field

from .bounds import FreeText, OneLine
from .events import NOTE_MAX, CorrectedFacts, DirectoryEvent, Event, ExchangeFacts, Role, SignalEvent
from .ids import Slug


class ExchangeRecordedV1(ExchangeFacts):
    TYPE: ClassVar[str] = "ExchangeRecorded"
    VERSION: ClassVar[int] = 1
    note: str = Field(default="", max_length=NOTE_MAX)
    recorded_by: Slug


class SignalClearedV1(SignalEvent):
    TYPE: ClassVar[str] = "SignalCleared"
    VERSION: ClassVar[int] = 1
    signal_kind: Literal["overextended", "disconnected"]
    raised_event_id: str = Field(min_length=1, max_length=64, description="event_id of the signal this clears")


# --- before sealing: personal values in clear text (contracts/sealed.py) ---------------------------------
# No docstrings where the newest version had none: a docstring would change the committed schema.


class ExchangeRecordedV2(ExchangeFacts):
    """v2 added `shared`: the recorder agrees to show it on the appreciation wall."""

    TYPE: ClassVar[str] = "ExchangeRecorded"
    VERSION: ClassVar[int] = 2
    note: FreeText = Field(default="", max_length=NOTE_MAX)
    recorded_by: Slug
    shared: bool = False


class MemberRegisteredV1(DirectoryEvent):
    TYPE: ClassVar[str] = "MemberRegistered"
    VERSION: ClassVar[int] = 1
    member_id: Slug
    name: OneLine = Field(min_length=1, max_length=100)
    email: EmailStr
    circles: list[Slug]
    role: Role = Role.MEMBER


class ExchangeAcknowledgedV1(ExchangeFacts):
    TYPE: ClassVar[str] = "ExchangeAcknowledged"
    VERSION: ClassVar[int] = 1
    by: Slug
    thanks: FreeText = Field(default="", max_length=NOTE_MAX)
    shared: bool = Field(default=False, description="the acknowledger agrees to share it too")


class ExchangeDisputedV1(ExchangeFacts):
    TYPE: ClassVar[str] = "ExchangeDisputed"
    VERSION: ClassVar[int] = 1
    by: Slug
    reason: FreeText = Field(min_length=1, max_length=NOTE_MAX)


class ExchangeCorrectedV1(ExchangeFacts):
    """The recorder corrected a still-`recorded` exchange. The facts are the corrected ones; `previous`
    holds what they replaced, so a projection can move the minutes without reading its own rows."""

    TYPE: ClassVar[str] = "ExchangeCorrected"
    VERSION: ClassVar[int] = 1
    by: Slug
    note: FreeText = Field(default="", max_length=NOTE_MAX)
    previous: CorrectedFacts
    note_changed: bool = False


LEGACY_MODELS: list[type[Event]] = [
    ExchangeRecordedV1, SignalClearedV1, ExchangeRecordedV2, MemberRegisteredV1, ExchangeAcknowledgedV1,
    ExchangeDisputedV1, ExchangeCorrectedV1,
]
