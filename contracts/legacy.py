"""Older versions of events, frozen as they were written. Only upcasters and schema files use them:
producers always write the newest version."""

from typing import ClassVar, Literal

from pydantic import Field

from .events import NOTE_MAX, Event, ExchangeFacts, SignalEvent
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


LEGACY_MODELS: list[type[Event]] = [ExchangeRecordedV1, SignalClearedV1]
