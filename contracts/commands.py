"""Bodies of the ledger's HTTP commands and of its answers. Validation that needs no state lives here
(so the web can run the very same checks inline); rules that need the ledger's state (does the member
exist? is the transition allowed?) live in the ledger.

Every rule that concerns one field is a field validator, so a rejected body names the field at fault;
`field_errors()` turns a pydantic ValidationError into the `{"field", "message"}` list the ledger answers
with 422, in sentences a person understands.
"""

import functools
import json
import re
from collections.abc import Mapping
from datetime import UTC, date, datetime, timedelta
from typing import Any, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, EmailStr, Field, ValidationError, ValidationInfo, field_validator

from .bounds import (
    FREE_TEXT_PATTERN,
    MAX_PAUSE_DAYS,
    REQUIRED_FREE_TEXT_PATTERN,
    REQUIRED_ONE_LINE_PATTERN,
    lone_surrogate,
    refuse_in_free_text,
    refuse_in_one_line,
    surrogate_in,
)
from .events import NOTE_MAX, PolicyOverrides, Role
from .ids import SLUG_PATTERN, Slug
from .vocabulary import Availability, Kind

MAX_DAYS_BACK = 365
MINUTES_MAX = 1440
# The latest calendar date anywhere on Earth is UTC+14: a member far east of UTC records "today" while
# it is still yesterday in UTC. Dates up to that day are not "in the future" for somebody.
_EARLIEST_ZONE_AHEAD = timedelta(hours=14)


def today_utc() -> date:
    return datetime.now(UTC).date()


def latest_pause_end() -> date:
    """The furthest day a pause may be set to end (SPEC: at most 365 days ahead)."""
    return today_utc() + timedelta(days=MAX_PAUSE_DAYS)


def latest_today() -> date:
    """Today's date in the time zone that is furthest ahead (UTC+14)."""
    return (datetime.now(UTC) + _EARLIEST_ZONE_AHEAD).date()


class Command(BaseModel):
    # No NaN or infinity in any number: `weekly_hours: NaN` used to fail as "must be at most 168".
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True, allow_inf_nan=False)


C = TypeVar("C", bound=Command)


def parse_command(command_cls: type[C], body: Mapping[str, Any]) -> C:
    """Validate a command's JSON body (as `json.loads` gave it) strictly, as JSON: a number must be a
    JSON number, a flag a JSON true/false, text a JSON string; dates are ISO strings ("2025-03-31"), as
    JSON has no dates. Lax validation turned `"minutes": true` into 1 minute, `"minutes": "12"` into 12
    and `"shared": "yes"` into true. (The web validates its form input with `model_validate`, laxly,
    before it builds such a body.)

    Text is held to the bounds the OpenAPI document states (length, pattern) as sent, before the model
    strips surrounding white space: 500 characters and a space are 501, too many, as the document says;
    " ada" is not an id."""
    _refuse_as_sent(command_cls, body)
    return command_cls.model_validate_json(json.dumps(body), strict=True)


# Text that breaks its pattern only at its ends (a tab or line break the model would strip silently).
_AT_THE_ENDS = "{label} cannot begin or end with a tab, line break or other control character."
PATTERN_SENTENCES = {FREE_TEXT_PATTERN: _AT_THE_ENDS, REQUIRED_FREE_TEXT_PATTERN: _AT_THE_ENDS,
                     REQUIRED_ONE_LINE_PATTERN: _AT_THE_ENDS}


@functools.cache
def _text_bounds(command_cls: type[Command]) -> dict[str, tuple[int | None, str | None, str | None]]:
    """field -> (maxLength, pattern, pattern of its items) of the string and string-list fields of the
    command's JSON Schema (the one in the OpenAPI document)."""
    bounds: dict[str, tuple[int | None, str | None, str | None]] = {}
    for name, prop in command_cls.model_json_schema()["properties"].items():
        for branch in prop.get("anyOf", [prop]):
            if branch.get("type") == "string":
                bounds[name] = (branch.get("maxLength"), branch.get("pattern"), None)
            elif branch.get("type") == "array" and branch.get("items", {}).get("type") == "string":
                bounds[name] = (None, None, branch["items"].get("pattern"))
    return bounds


def _refuse_as_sent(command_cls: type[Command], body: Mapping[str, Any]) -> None:
    problems: list[Any] = []
    for name, (max_length, pattern, item_pattern) in _text_bounds(command_cls).items():
        value = body.get(name)
        if isinstance(value, str):
            # fullmatch: in Python `$` also matches before a final newline; in the document's (ECMA) regex not.
            if max_length is not None and len(value) > max_length:
                problems.append({"type": "string_too_long", "loc": (name,), "input": value,
                                 "ctx": {"max_length": max_length}})
            elif pattern is not None and not re.fullmatch(pattern, value) and not (
                    # What is wrong inside the text, the model's own validators name (with the character).
                    pattern in PATTERN_SENTENCES and not re.fullmatch(pattern, value.strip())):
                problems.append({"type": "string_pattern_mismatch", "loc": (name,), "input": value,
                                 "ctx": {"pattern": pattern}})
        elif isinstance(value, list) and item_pattern is not None:
            problems += [{"type": "string_pattern_mismatch", "loc": (name, i), "input": item,
                          "ctx": {"pattern": item_pattern}}
                         for i, item in enumerate(value)
                         if isinstance(item, str) and not re.fullmatch(item_pattern, item)]
    if problems:
        raise ValidationError.from_exception_data(command_cls.__name__, problems)


# The most minutes a member can give in the policy's 28-day window: a threshold above it never fires.
WINDOW_MINUTES = 28 * 1440


class BoundedPolicy(PolicyOverrides):
    """The overrides a command may set: every number bounded (the event keeps the wider contract, so a
    circle formed before these bounds still reads)."""

    overextension_min_given_minutes: int | None = Field(default=None, ge=0, le=WINDOW_MINUTES)
    overextension_ratio: float | None = Field(default=None, gt=1, le=100)
    overextension_clear_ratio: float | None = Field(default=None, gt=1, le=100)


class FormCircle(Command):
    id: Slug
    name: str = Field(min_length=1, max_length=100, json_schema_extra={"pattern": REQUIRED_ONE_LINE_PATTERN})
    parent: Slug | None = None
    policy: BoundedPolicy | None = None

    @field_validator("name")
    @classmethod
    def _one_line(cls, name: str) -> str:
        return refuse_in_one_line("name", name)


class SetLeads(Command):
    leads: list[Slug] = Field(max_length=50, json_schema_extra={"uniqueItems": True})

    @field_validator("leads")
    @classmethod
    def _no_repeats(cls, leads: list[str]) -> list[str]:
        _refuse_repeats(leads)
        return leads


class RegisterMember(Command):
    id: Slug
    name: str = Field(min_length=1, max_length=100, json_schema_extra={"pattern": REQUIRED_ONE_LINE_PATTERN})
    email: EmailStr
    circles: list[Slug] = Field(default_factory=list, max_length=50, json_schema_extra={"uniqueItems": True})
    role: Role = Role.MEMBER

    @field_validator("name")
    @classmethod
    def _one_line(cls, name: str) -> str:
        return refuse_in_one_line("name", name)

    @field_validator("circles")
    @classmethod
    def _no_repeats(cls, circles: list[str]) -> list[str]:
        _refuse_repeats(circles)
        return circles


class ChangeCircles(Command):
    circles: list[Slug] = Field(max_length=50, description="the full new list of the member's circles",
                                json_schema_extra={"uniqueItems": True})

    @field_validator("circles")
    @classmethod
    def _no_repeats(cls, circles: list[str]) -> list[str]:
        _refuse_repeats(circles)
        return circles


class DeclareCapacity(Command):
    weekly_hours: float | None = Field(ge=0, le=168, description="None withdraws the declaration")


class ChangeAvailability(Command):
    status: Availability
    paused_until: date | None = Field(default=None, description="only with status 'paused'; None: until resumed")

    @field_validator("paused_until")
    @classmethod
    def _until_only_when_paused(cls, until: date | None, info: ValidationInfo) -> date | None:
        if until is None:
            return until
        if info.data.get("status") == "active":
            raise ValueError("paused_until only goes with status 'paused'; leave it out to resume")
        if until < today_utc():
            raise ValueError("paused_until cannot be in the past")
        if until > latest_pause_end():
            raise ValueError(f"paused_until can be at most {MAX_PAUSE_DAYS} days ahead (until "
                             f"{latest_pause_end().isoformat()}); leave it out to pause until you resume")
        return until


class RecordExchange(Command):
    giver: Slug
    receiver: Slug
    kind: Kind
    minutes: int = Field(ge=1, le=MINUTES_MAX)
    note: str = Field(default="", max_length=NOTE_MAX, json_schema_extra={"pattern": FREE_TEXT_PATTERN})
    occurred_on: date
    recorded_by: Slug
    shared: bool = Field(default=False, description="the recorder agrees to show it on the appreciation wall")

    @field_validator("receiver")
    @classmethod
    def _two_parties(cls, receiver: str, info: ValidationInfo) -> str:
        if receiver == info.data.get("giver"):
            raise ValueError("the giver and the receiver must be two different members")
        return receiver

    @field_validator("occurred_on")
    @classmethod
    def _not_future_nor_too_old(cls, day: date) -> date:
        if day > latest_today():
            raise ValueError("occurred_on cannot be in the future")
        if day < today_utc() - timedelta(days=MAX_DAYS_BACK):
            raise ValueError(f"occurred_on cannot be more than {MAX_DAYS_BACK} days ago")
        return day

    @field_validator("note")
    @classmethod
    def _plain_text(cls, note: str) -> str:
        return refuse_in_free_text("note", note)

    @field_validator("recorded_by")
    @classmethod
    def _recorder_is_a_party(cls, recorded_by: str, info: ValidationInfo) -> str:
        parties = (info.data.get("giver"), info.data.get("receiver"))
        if None not in parties and recorded_by not in parties:
            raise ValueError("recorded_by must be the giver or the receiver")
        return recorded_by


class Acknowledge(Command):
    by: Slug
    thanks: str = Field(default="", max_length=NOTE_MAX, json_schema_extra={"pattern": FREE_TEXT_PATTERN})
    shared: bool = Field(default=False, description="the acknowledger agrees to show it on the appreciation wall")

    @field_validator("thanks")
    @classmethod
    def _plain_text(cls, thanks: str) -> str:
        return refuse_in_free_text("thanks", thanks)


class Dispute(Command):
    by: Slug
    reason: str = Field(min_length=1, max_length=NOTE_MAX,
                        json_schema_extra={"pattern": REQUIRED_FREE_TEXT_PATTERN})

    @field_validator("reason")
    @classmethod
    def _plain_text(cls, reason: str) -> str:
        return refuse_in_free_text("reason", reason)


class Withdraw(Command):
    by: Slug


class ForgetMember(Command):
    """Forget a member for good (operator only): their key is destroyed, so nothing of or about them can
    be read any more; their exchanges still count, as "a former member". Cannot be undone."""

    by: Slug = Field(description="the operator who asks")
    confirm: Slug = Field(description="the member's id again: a forgetting is never a slip of the wrong path")


def _refuse_repeats(ids: list[str]) -> None:
    seen: set[str] = set()
    for item in ids:
        if item in seen:
            raise ValueError(f"'{item}' is listed twice")
        seen.add(item)


class CorrectExchange(Command):
    """The recorder corrects a still-recorded exchange: the full new kind, minutes, day and note."""

    by: Slug
    kind: Kind
    minutes: int = Field(ge=1, le=MINUTES_MAX)
    occurred_on: date
    note: str = Field(default="", max_length=NOTE_MAX, json_schema_extra={"pattern": FREE_TEXT_PATTERN})

    @field_validator("occurred_on")
    @classmethod
    def _not_future_nor_too_old(cls, day: date) -> date:
        return RecordExchange._not_future_nor_too_old(day)

    @field_validator("note")
    @classmethod
    def _plain_text(cls, note: str) -> str:
        return refuse_in_free_text("note", note)


class ShareExchange(Command):
    """A party agrees to show the exchange on the appreciation wall, or stops sharing it, at any time."""

    by: Slug
    shared: bool


class SetNotifications(Command):
    """Which emails about herself a member wants; both are on until she turns them off."""

    own_alert_emails: bool = Field(description="a short email to her when a signal about her is raised")
    daily_digest: bool = Field(description="a daily email of what waits for her and what others did with hers")


# --- answers -----------------------------------------------------------------------------------


class Appended(BaseModel):
    """The answer to a successful command (201): where its (first) event landed."""

    event_id: str
    topic: str
    partition: int
    offset: int
    id: str | None = Field(default=None, description="the aggregate's id, e.g. the new exchange's id")
    count: int = Field(default=1, ge=1, description="how many events the command appended (the first is named)")


class Unchanged(BaseModel):
    """The answer (200) to a command that asks for what already is, e.g. the same circles again."""

    id: str
    unchanged: Literal[True] = True


class FieldError(BaseModel):
    field: str = Field(description="the body field at fault, e.g. 'minutes' or 'leads[1]'; a header's name")
    message: str = Field(description="a sentence a person understands")


class FieldErrors(BaseModel):
    """422: what is wrong with the request, field by field."""

    errors: list[FieldError]


class ErrorBody(BaseModel):
    """401, 404, 409, 503: one sentence saying what went wrong."""

    error: str


# --- turning pydantic's errors into sentences ----------------------------------------------------------


def field_name(loc: tuple[int | str, ...]) -> str:
    """('leads', 2) -> 'leads[2]'; ('policy', 'overextension_ratio') -> 'policy.overextension_ratio'."""
    name = ""
    for part in loc:
        if isinstance(part, int):
            name += f"[{part}]"
        else:
            name += ("." if name else "") + part
    return name or "body"


def field_errors(err: ValidationError) -> list[FieldError]:
    return [FieldError(field=field_name(e["loc"]), message=_sentence(e)) for e in err.errors()]


def _sentence(error: Any) -> str:
    kind: str = error["type"]
    loc = error["loc"]
    ctx = error.get("ctx") or {}
    label = next((str(p) for p in reversed(loc) if isinstance(p, str)), "the body")
    given = error.get("input")
    if kind == "missing":
        return f"{label} is required."
    if kind == "extra_forbidden":
        return f"{label} is not a field this request takes."
    if kind == "string_pattern_mismatch" and ctx.get("pattern") == SLUG_PATTERN:
        return (f"'{given}' is not a valid id: use 2 to 64 lowercase letters, digits, '.', '_' or '-', "
                "starting with a letter or a digit.")
    if kind == "string_pattern_mismatch" and ctx.get("pattern") in PATTERN_SENTENCES:
        return PATTERN_SENTENCES[ctx["pattern"]].format(label=label)
    if kind == "string_too_short":
        if ctx.get("min_length") == 1:
            return f"{label} cannot be empty."
        return f"{label} needs at least {ctx.get('min_length')} characters."
    if kind == "string_too_long":
        return f"{label} can have at most {ctx.get('max_length')} characters (this one has {len(str(given))})."
    if kind == "too_long":
        return f"{label} can list at most {ctx.get('max_length')} items."
    if kind in ("greater_than_equal", "greater_than"):
        bound = _number(ctx.get("ge", ctx.get("gt")))
        return f"{label} must be at least {bound}." if kind == "greater_than_equal" else (
            f"{label} must be more than {bound}.")
    if kind in ("less_than_equal", "less_than"):
        bound = _number(ctx.get("le", ctx.get("lt")))
        return f"{label} must be at most {bound}." if kind == "less_than_equal" else (
            f"{label} must be less than {bound}.")
    if kind in ("enum", "literal_error"):
        return f"{label} must be one of {ctx.get('expected')}."
    if kind in ("int_parsing", "int_type", "int_from_float"):
        return f"{label} must be a whole number."
    if kind in ("float_parsing", "float_type", "finite_number"):
        return f"{label} must be a number."
    if kind.startswith("date_") or kind == "date_type":
        return f"{label} must be a date written like 2025-03-31."
    if kind in ("bool_parsing", "bool_type"):
        return f"{label} must be true or false."
    if kind == "list_type":
        return f"{label} must be a list."
    if kind == "string_type":
        return f"{label} must be text."
    if kind == "string_unicode":  # pydantic's own check for lone surrogates, before any validator of ours
        char = surrogate_in(given) if isinstance(given, str) else None
        return lone_surrogate(label, char or "\ud800") + "."
    if kind in ("model_type", "model_attributes_type", "dict_type"):
        return f"{label} must be a JSON object."
    if kind == "value_error":
        message = str(ctx.get("error") or error["msg"]).removeprefix("Value error, ")
        if label == "email":
            message = message.removeprefix("value is not a valid email address: ")
            return f"email is not a valid address: {message}"
        return message + ("" if message.endswith(".") else ".")
    return f"{label}: {error['msg']}."


def _number(value: Any) -> Any:
    return int(value) if isinstance(value, float) and value.is_integer() else value
