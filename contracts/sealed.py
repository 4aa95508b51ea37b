"""Personal values in events: sealed with the keys of the members they are about.

The log is kept forever and never rewritten, so a person's name, email and the free text written by
or about them (notes, thanks, dispute reasons) enter it only encrypted with that person's key, which
lives outside the log, in the ledger's key store. Forgetting a member destroys their key: every copy
of those values, in every record of every topic, becomes unreadable at once ("crypto-shredding").

A `Sealed` value names the members whose keys seal it (`to`). A value about two people (the note on an
exchange between A and B) is sealed under a key derived from BOTH their keys, so forgetting either of
them makes it unreadable: what was written about the pair is about each of them. The associated data
binds every ciphertext to its event id, its field and its members (`associated_data`), so a sealed
value copied into another event, field or pair does not open.

The crypto itself lives in `reciprocity.common.sealing`; this module is the wire format only.
"""

from __future__ import annotations

from typing import Final, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from .ids import Slug

SEALED_ALG: Final = "A256GCM"
# Clear text: what an event written before sealing (an old version, upcast on read) held, and what a
# projection holds in memory once it has opened a value. The ledger never writes it (tested); the
# migration (`reciprocity.ledger.migrate_sealing`) copies old records into sealed ones.
CLEAR_ALG: Final = "none"
# A sealed value is at most 500 characters of text: 2,000 bytes of UTF-8, 16 of tag, base64.
SEALED_DATA_MAX = 4096


class Sealed(BaseModel):
    """One personal value. `data` is base64 of AES-256-GCM ciphertext and tag (`alg` "A256GCM", `iv`
    base64 of its 12-byte nonce), or the clear text itself (`alg` "none", `iv` empty)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    alg: Literal["A256GCM", "none"]
    to: list[Slug] = Field(min_length=1, max_length=2, description="the members whose keys seal it")
    iv: str = Field(default="", max_length=24)
    data: str = Field(max_length=SEALED_DATA_MAX)

    @model_validator(mode="after")
    def _consistent(self) -> Sealed:
        if self.alg == CLEAR_ALG and self.iv:
            raise ValueError("a clear value has no iv")
        if self.alg == SEALED_ALG and len(self.iv) != 16:
            raise ValueError("an A256GCM value needs a 12-byte iv (16 base64 characters)")
        if len(set(self.to)) != len(self.to):
            raise ValueError("`to` names a member twice")
        return self

    @classmethod
    def clear(cls, text: str, to: list[str] | tuple[str, ...]) -> Sealed:
        """A value not sealed (yet): the ledger's handlers build events with these, and the ledger seals
        them once it knows the event's id, before anything is appended."""
        return cls(alg=CLEAR_ALG, to=list(dict.fromkeys(to)), data=text)

    @property
    def is_clear(self) -> bool:
        return self.alg == CLEAR_ALG

    @property
    def text(self) -> str:
        """The clear text of an opened value: "" when it could not be opened (its key was destroyed)."""
        if not self.is_clear:
            raise ValueError("this value is sealed; open the event first (reciprocity.common.sealing)")
        return self.data


def associated_data(event_id: str, field: str, to: list[str] | tuple[str, ...]) -> bytes:
    """What a sealed value is bound to: its event, its field and its members."""
    return f"reciprocity/sealed/v1|{event_id}|{field}|{'+'.join(to)}".encode()


def text_of(value: Sealed | None) -> str:
    """The clear text of an opened optional value ("" for none)."""
    return value.text if value is not None else ""
