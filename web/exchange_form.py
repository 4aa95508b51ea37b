"""The "record an exchange" form: from what the browser sent to the ledger's RecordExchange body.

Checks here are the ledger's stateless rules (the same pydantic command from contracts) phrased for
people, so blur-time validation can say what the ledger would say before anything is sent. Rules that
need state (does that member exist?) are the ledger's; its 422 field errors are mapped back onto the
form's fields with `form_field`.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, timedelta

from pydantic import ValidationError
from reciprocity.contracts.commands import MAX_DAYS_BACK, Command, RecordExchange, field_errors, latest_today
from reciprocity.contracts.events import NOTE_MAX
from reciprocity.contracts.ids import SLUG_RE
from reciprocity.contracts.vocabulary import EXCHANGE_KINDS

from .format import DAY_EXAMPLE, day_field, parse_day

FIELDS = ("direction", "other", "kind", "minutes", "occurred_on", "note", "shared")
FORM_WIDE = "__all__"
KEY_FIELD = "idempotency-key"  # how the ledger names the Idempotency-Key header in its field errors


@dataclass
class ExchangeForm:
    """What the person typed (strings, so a re-rendered form shows exactly that) and the errors."""

    direction: str = "gave"
    other: str = ""
    kind: str = ""
    minutes: str = ""
    occurred_on: str = ""
    note: str = ""
    shared: bool = False
    idempotency_key: str = ""
    errors: dict[str, str] = field(default_factory=dict)

    @classmethod
    def blank(cls, today: date) -> ExchangeForm:
        return cls(occurred_on=day_field(today), idempotency_key=new_key())

    @classmethod
    def from_form(cls, data: Mapping[str, str]) -> ExchangeForm:
        return cls(
            direction=(data.get("direction") or "gave").strip(),
            other=(data.get("other") or "").strip(),
            kind=(data.get("kind") or "").strip(),
            minutes=(data.get("minutes") or "").strip(),
            occurred_on=(data.get("occurred_on") or "").strip(),
            note=(data.get("note") or "").replace("\r\n", "\n").strip(),
            shared=(data.get("shared") or "") in ("on", "true", "1", "yes"),
            idempotency_key=valid_key(data.get("idempotency_key")),
        )


def new_key() -> str:
    return str(uuid.uuid4())


def valid_key(value: str | None) -> str:
    """The form's idempotency key if it is one we could have made, else a fresh one."""
    try:
        return str(uuid.UUID((value or "").strip()))
    except ValueError:
        return new_key()


def other_id(typed: str) -> str:
    """The autocomplete offers "Name (id)" labels but submits ids; accept either, lower-cased."""
    typed = typed.strip()
    if typed.endswith(")") and "(" in typed:
        typed = typed[typed.rindex("(") + 1:-1]
    return typed.strip().lower()


def check(form: ExchangeForm, me: str, today: date, latest: date | None = None) -> dict[str, str]:
    """Field errors in plain words ({} when the ledger's stateless rules all pass).

    `today` is the UTC date, from which the year back is counted; `latest` (default `latest_today()`)
    is the latest date anywhere, the ledger's bound for "not in the future": a member east of UTC may
    already be a day ahead of it, and must be able to record what happened on their today.
    """
    latest = latest or latest_today()
    errors: dict[str, str] = {}
    if form.direction not in ("gave", "received"):
        errors["direction"] = "Choose whether you gave or received."
    other = other_id(form.other)
    if not other:
        errors["other"] = "Who was it with? Start typing a name."
    elif not SLUG_RE.match(other):
        errors["other"] = "That is not a member id. Pick someone from the suggestions."
    elif other == me:
        errors["other"] = "An exchange is between two people: choose someone other than yourself."
    if form.kind not in EXCHANGE_KINDS:
        errors["kind"] = "Choose what kind of exchange it was."
    try:
        minutes = int(form.minutes)
    except ValueError:
        errors["minutes"] = "How long did it take, in minutes? For example 30 or 90."
    else:
        if not 1 <= minutes <= 1440:
            errors["minutes"] = "Minutes go from 1 to 1440 (a whole day)."
    try:
        occurred = parse_day(form.occurred_on, today)
    except ValueError as refused:
        errors["occurred_on"] = (f"Give the date it happened, like {DAY_EXAMPLE}." if not form.occurred_on
                                 else str(refused))
    else:
        if occurred > latest:
            errors["occurred_on"] = "That date is in the future. Record it once it has happened."
        elif occurred < today - timedelta(days=MAX_DAYS_BACK):
            errors["occurred_on"] = f"That is more than {MAX_DAYS_BACK} days ago; the ledger only goes back a year."
    if len(form.note) > NOTE_MAX:
        errors["note"] = f"The note is {len(form.note)} characters long; keep it to {NOTE_MAX}."
    if not errors:
        # The contract itself is the last word: anything it still refuses is shown on the form.
        for name, message in contract_errors(RecordExchange, ledger_body(form, me)).items():
            errors.setdefault(form_field(name), message)
    return errors


def contract_errors(command: type[Command], body: Mapping[str, object]) -> dict[str, str]:
    """The command's own refusals of `body`, by body field (the first per field), in the sentences the
    ledger answers with: the web refuses before sending, and says the same."""
    try:
        command.model_validate(body)
    except ValidationError as err:
        found: dict[str, str] = {}
        for e in field_errors(err):
            found.setdefault(e.field, e.message)
        return found
    return {}


def ledger_body(form: ExchangeForm, me: str) -> dict[str, object]:
    other = other_id(form.other)
    try:  # the ledger takes ISO days; what the contract still refuses is checked by `check` before sending
        occurred_on = parse_day(form.occurred_on).isoformat()
    except ValueError:
        occurred_on = form.occurred_on
    giver, receiver = (me, other) if form.direction == "gave" else (other, me)
    return {
        "giver": giver,
        "receiver": receiver,
        "kind": form.kind,
        "minutes": int(form.minutes),
        "note": form.note,
        "occurred_on": occurred_on,
        "recorded_by": me,
        "shared": form.shared,
    }


def is_key_field(ledger_field: str) -> bool:
    """Whether a ledger field error is about the Idempotency-Key (one we made, so: used before)."""
    return ledger_field.strip().lower() == KEY_FIELD


def form_field(ledger_field: str) -> str:
    """Which form field a ledger (or contract) error belongs to."""
    name = ledger_field.rsplit(".", 1)[-1].strip()
    if "[" in name:
        name = name[:name.index("[")]
    if name in ("giver", "receiver", "recorded_by"):
        return "other"
    if name in FIELDS:
        return name
    return FORM_WIDE
