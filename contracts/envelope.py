"""The envelope every message carries, and the one codec between events and bytes."""

import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, ValidationError

from .events import EVENT_TYPES, Event
from .upcasting import upcast


class Envelope(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    event_id: uuid.UUID
    type: str = Field(min_length=1)
    version: int = Field(ge=1)
    occurred_at: AwareDatetime
    producer: str = Field(min_length=1)
    key: str = Field(min_length=1)
    payload: dict[str, Any]


class ContractError(ValueError):
    """A record that is not a valid event of any known contract: a poison record for the DLQ."""


def wrap(event: Event, *, producer: str, event_id: uuid.UUID | None = None,
         occurred_at: datetime | None = None) -> Envelope:
    return Envelope(
        event_id=event_id or uuid.uuid4(),
        type=event.TYPE,
        version=event.VERSION,
        occurred_at=occurred_at or datetime.now(UTC),
        producer=producer,
        key=event.key(),
        payload=event.model_dump(mode="json"),
    )


def encode(envelope: Envelope) -> bytes:
    return envelope.model_dump_json().encode()


def decode(raw: bytes | str) -> tuple[Envelope, Event]:
    """Parse a message value into its envelope and the newest version of its event.

    Raises ContractError for anything that is not valid JSON, a known type, or a valid payload. Records
    of the newest versions as our producers write them take the fast path (fastcodec.py); anything it
    declines takes the pydantic path, which decides.
    """
    found = (_fast_decode or _decode_trusted)(raw)
    return found if found is not None else decode_validated(raw)


def decode_validated(raw: bytes | str) -> tuple[Envelope, Event]:
    """`decode` through pydantic alone: the reference the fast path is held to."""
    try:
        envelope = Envelope.model_validate_json(raw)  # parsed and checked in one pass, in Rust
    except ValidationError as err:
        if any(e["type"] == "json_invalid" for e in err.errors()):
            raise ContractError(f"not JSON: {_brief(err)}") from err
        raise ContractError(f"invalid envelope: {_brief(err)}") from err
    event_cls = EVENT_TYPES.get(envelope.type)
    if event_cls is None:
        raise ContractError(f"unknown event type {envelope.type!r}")
    try:
        version, payload = upcast(envelope.type, envelope.version, envelope.payload)
    except (ValidationError, ValueError, KeyError, TypeError) as err:
        brief = _brief(err) if isinstance(err, ValidationError) else repr(err)
        raise ContractError(f"invalid {envelope.type} v{envelope.version}: {brief}") from err
    if version != event_cls.VERSION:
        raise ContractError(
            f"{envelope.type} v{envelope.version} cannot be read as v{event_cls.VERSION}"
        )
    try:
        event = event_cls.model_validate(payload)
    except ValidationError as err:
        raise ContractError(f"invalid {envelope.type} v{envelope.version}: {_brief(err)}") from err
    return envelope, event


def _brief(err: ValidationError) -> str:
    return "; ".join(f"{'.'.join(map(str, e['loc'])) or '(root)'}: {e['msg']}" for e in err.errors()[:5])


_fast_decode: Callable[[bytes | str], tuple[Envelope, Event] | None] | None = None


def _decode_trusted(raw: bytes | str) -> tuple[Envelope, Event] | None:
    global _fast_decode
    if _fast_decode is None:  # imported on first use: fastcodec derives its decoders from this module's models
        from .fastcodec import decode_trusted

        _fast_decode = decode_trusted
    return _fast_decode(raw)
