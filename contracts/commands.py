"""Bodies of the ledger's HTTP commands. Validation that needs no state lives here; rules that need
the ledger's state (does the member exist? is the transition allowed?) live in the ledger."""

from datetime import UTC, date, datetime, timedelta
from typing import Literal

from pydantic import BaseModel, ConfigDict, EmailStr, Field, field_validator, model_validator

from .events import NOTE_MAX, Kind, PolicyOverrides, Role
from .ids import Slug

MAX_DAYS_BACK = 365


def today_utc() -> date:
    return datetime.now(UTC).date()


class Command(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class FormCircle(Command):
    id: Slug
    name: str = Field(min_length=1, max_length=100)
    parent: Slug | None = None
    policy: PolicyOverrides | None = None


class SetLeads(Command):
    leads: list[Slug] = Field(max_length=50)


class RegisterMember(Command):
    id: Slug
    name: str = Field(min_length=1, max_length=100)
    email: EmailStr
    circles: list[Slug] = Field(default_factory=list, max_length=50)
    role: Role = Role.MEMBER


class ChangeCircles(Command):
    circles: list[Slug] = Field(max_length=50)


class DeclareCapacity(Command):
    weekly_hours: float | None = Field(ge=0, le=168, description="None withdraws the declaration")


class ChangeAvailability(Command):
    status: Literal["active", "paused"]
    paused_until: date | None = None

    @model_validator(mode="after")
    def _until_only_when_paused(self) -> "ChangeAvailability":
        if self.status == "active" and self.paused_until is not None:
            raise ValueError("paused_until only goes with status 'paused'")
        if self.paused_until is not None and self.paused_until < today_utc():
            raise ValueError("paused_until is in the past")
        return self


class RecordExchange(Command):
    giver: Slug
    receiver: Slug
    kind: Kind
    minutes: int = Field(ge=1, le=1440)
    note: str = Field(default="", max_length=NOTE_MAX)
    occurred_on: date
    recorded_by: Slug
    shared: bool = False

    @field_validator("occurred_on")
    @classmethod
    def _not_future_nor_too_old(cls, day: date) -> date:
        today = today_utc()
        if day > today:
            raise ValueError("occurred_on is in the future")
        if day < today - timedelta(days=MAX_DAYS_BACK):
            raise ValueError(f"occurred_on is more than {MAX_DAYS_BACK} days back")
        return day

    @model_validator(mode="after")
    def _two_parties(self) -> "RecordExchange":
        if self.giver == self.receiver:
            raise ValueError("giver and receiver must be two different members")
        if self.recorded_by not in (self.giver, self.receiver):
            raise ValueError("recorded_by must be the giver or the receiver")
        return self


class Acknowledge(Command):
    by: Slug
    thanks: str = Field(default="", max_length=NOTE_MAX)
    shared: bool = False


class Dispute(Command):
    by: Slug
    reason: str = Field(min_length=1, max_length=NOTE_MAX)


class Withdraw(Command):
    by: Slug


class Appended(BaseModel):
    """The answer to a successful command: where its (first) event landed."""

    event_id: str
    topic: str
    partition: int
    offset: int
    id: str | None = Field(default=None, description="the new aggregate's id, e.g. the exchange id")
