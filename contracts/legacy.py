"""Older versions of events, frozen as they were written. Only upcasters and schema files use them:
producers always write the newest version."""

from typing import ClassVar

from pydantic import Field

from .events import NOTE_MAX, ExchangeFacts
from .ids import Slug


class ExchangeRecordedV1(ExchangeFacts):
    TYPE: ClassVar[str] = "ExchangeRecorded"
    VERSION: ClassVar[int] = 1
    note: str = Field(default="", max_length=NOTE_MAX)
    recorded_by: Slug


LEGACY_MODELS: list[type[ExchangeFacts]] = [ExchangeRecordedV1]
