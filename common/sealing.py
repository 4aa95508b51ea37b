"""Sealing and opening personal values: the one place that does the crypto (`contracts/sealed.py` is
the wire format, the ledger's key store keeps the keys).

- Every member has a random 256-bit key. A value is sealed with AES-256-GCM (`cryptography`) under a
  key derived by HKDF-SHA256 from the keys of the members it is about: one member (a name, an email)
  or two (a note, thanks or dispute reason on an exchange between them). Deriving from both keys means
  both are needed to open it: forgetting either member makes it unreadable, as it is about each.
- The associated data binds each value to its event id, field and members.
- `Opener` is what projections use: it fetches keys in bulk from a `KeySource` (the ledger's key API,
  or the key store itself inside the ledger), caches them in memory for `ttl_s`, and turns an event's
  sealed values into clear ones, or into "" when a member's key is destroyed. A member it has seen
  forgotten stays forgotten for the life of the process.
"""

from __future__ import annotations

import base64
import logging
import os
import threading
import time
import typing
import uuid
from collections.abc import Callable, Collection, Iterable, Sequence
from typing import Any, Protocol, TypeVar

import msgspec
import requests
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from reciprocity.contracts.events import Event
from reciprocity.contracts.sealed import CLEAR_ALG, SEALED_ALG, Sealed, associated_data

log = logging.getLogger(__name__)

KEY_BYTES = 32
NONCE_BYTES = 12
E = TypeVar("E", bound=Event)


class KeysUnavailable(ConnectionError):
    """The keys could not be fetched (the ledger is unreachable, or has no key for a member whose value
    is sealed): an infrastructure failure, never the event's (a ConnectionError, so the consumer's poison
    rule, messaging/poison.py, stops the partition and retries instead of parking the events)."""


class SealBroken(ValueError):
    """A sealed value does not open with its members' keys: altered, or copied into another event,
    field or pair. A poison record, not something to retry."""


class KeySource(Protocol):
    def member_keys(self, member_ids: Collection[str]) -> dict[str, bytes | None]:
        """Each member's key, or None for a forgotten member; members with no key are left out."""
        ...


def new_member_key() -> bytes:
    return os.urandom(KEY_BYTES)


def _b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode()


def _unb64(text: str) -> bytes:
    return base64.b64decode(text, validate=True)


def derive_cipher(keys: dict[str, bytes], to: Iterable[str]) -> AESGCM:
    """The AES-GCM cipher for values about the members `to` (order does not matter)."""
    members = sorted(set(to))
    hkdf = HKDF(algorithm=hashes.SHA256(), length=KEY_BYTES, salt=None,
                info=("reciprocity/seal/v1|" + "+".join(members)).encode())
    return AESGCM(hkdf.derive(b"".join(keys[m] for m in members)))


def sealed_fields(cls: type[Event]) -> tuple[str, ...]:
    """The fields of an event type (or of its checked struct: contracts.fastcodec) that hold sealed
    values, computed once per type."""
    found = _SEALED_FIELDS.get(cls)
    if found is None:
        found = _SEALED_FIELDS[cls] = tuple(
            name for name, info in getattr(cls, "MODEL", cls).model_fields.items()
            if info.annotation is Sealed or Sealed in typing.get_args(info.annotation)
        )
    return found


_SEALED_FIELDS: dict[type, tuple[str, ...]] = {}


class Sealer:
    """Seals values for the ledger. `key_for(member)` returns the member's key (creating it when the
    member has none yet) and raises when the member was forgotten."""

    def __init__(self, key_for: Callable[[str], bytes]) -> None:
        self._key_for = key_for

    def seal(self, text: str, to: list[str], event_id: str, field: str) -> Sealed:
        keys = {m: self._key_for(m) for m in to}
        nonce = os.urandom(NONCE_BYTES)
        data = derive_cipher(keys, to).encrypt(nonce, text.encode(), associated_data(event_id, field, to))
        return Sealed(alg=SEALED_ALG, to=to, iv=_b64(nonce), data=_b64(data))

    def seal_event(self, event: E, event_id: str) -> E:
        """`event` with each clear value sealed (the handlers build events with clear values)."""
        update: dict[str, Any] = {}
        for name in sealed_fields(type(event)):
            value = getattr(event, name)
            if value is not None and value.is_clear:
                update[name] = self.seal(value.data, list(value.to), event_id, name)
        return event.model_copy(update=update) if update else event


class Opener:
    """Opens sealed values with keys from `source`, cached in memory. Thread-safe."""

    def __init__(self, source: KeySource | None, *, ttl_s: float = 30.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._source = source
        self._ttl_s = ttl_s
        self._clock = clock
        self._keys: dict[str, tuple[bytes, float]] = {}  # member -> (key, fetched at)
        self._forgotten: set[str] = set()
        self._ciphers: dict[tuple[str, ...], AESGCM] = {}
        self._lock = threading.Lock()
        self.fetches = 0  # requests made to the source (the bench and tests read it)

    # --- what projections call ----------------------------------------------------------------------

    def forget(self, member_id: str) -> None:
        """`member_id` was forgotten (a MemberForgotten was read): drop the key, never open for them again."""
        with self._lock:
            self._forgotten.add(member_id)
            self._keys.pop(member_id, None)
            for members in [t for t in self._ciphers if member_id in t]:
                del self._ciphers[members]

    def open_event(self, event: E, event_id: str) -> E:
        """`event` with every sealed value opened: clear text, or "" when a member it is sealed for was
        forgotten. Clear values (old versions) are blanked the same way once their member is forgotten."""
        names = sealed_fields(type(event))
        if not names:
            return event
        update: dict[str, Any] = {}
        for name in names:
            value = getattr(event, name)
            if value is not None:
                opened = self.open(value, event_id, name)
                if opened is not value:  # a clear value nobody forgot stays as it is: no copy of the event
                    update[name] = opened
        if not update:
            return event
        # A checked struct (contracts.fastcodec) is copied as a struct: the opened values are models, read
        # alike (`text`, `to`).
        if isinstance(event, msgspec.Struct):
            return msgspec.structs.replace(event, **update)
        return event.model_copy(update=update)

    def open_events(self, items: Sequence[tuple[str | uuid.UUID, Event]]) -> list[Event]:
        """Open a batch of (event id, event): the keys it needs are fetched in one request. An event whose
        values are all clear and about nobody forgotten (events written before sealing, tests' events)
        is passed on as it is, after one look at each value; so the id may be the envelope's UUID, made
        text only for an event that is opened."""
        needed: set[str] = set()
        to_open: list[int] = []
        forgotten = self._forgotten
        for i, (_, event) in enumerate(items):
            opens = False
            for name in sealed_fields(type(event)):
                value = getattr(event, name)
                if value is None:
                    continue
                if value.alg != CLEAR_ALG:
                    needed.update(value.to)
                    opens = True
                elif forgotten and not forgotten.isdisjoint(value.to):
                    opens = True
            if opens:
                to_open.append(i)
        self.prefetch(needed)
        opened = [event for _, event in items]
        for i in to_open:
            event_id, event = items[i]
            opened[i] = self.open_event(event, str(event_id))
        return opened

    def open(self, value: Sealed, event_id: str, field: str) -> Sealed:
        to = tuple(value.to)
        if not self._forgotten.isdisjoint(to):
            return Sealed(alg="none", to=list(to), data="")
        if value.is_clear:
            return value
        cipher = self._cipher(to)
        if cipher is None:  # a key was destroyed meanwhile
            return Sealed(alg="none", to=list(to), data="")
        try:
            text = cipher.decrypt(_unb64(value.iv), _unb64(value.data), associated_data(event_id, field, to))
        except (InvalidTag, ValueError) as err:
            raise SealBroken(f"{field} of event {event_id} does not open with the keys of {list(to)}") from err
        return Sealed(alg="none", to=list(to), data=text.decode())

    def prefetch(self, member_ids: Collection[str]) -> None:
        now = self._clock()
        with self._lock:
            stale = [m for m in member_ids if m not in self._forgotten
                     and (m not in self._keys or now - self._keys[m][1] > self._ttl_s)]
        if stale:
            self._fetch(stale)

    # --- keys ---------------------------------------------------------------------------------------

    def _cipher(self, to: tuple[str, ...]) -> AESGCM | None:
        members = tuple(sorted(to))
        now = self._clock()
        with self._lock:
            fresh = all(m in self._keys and now - self._keys[m][1] <= self._ttl_s for m in members)
            cipher = self._ciphers.get(members) if fresh else None
        if cipher is not None:
            return cipher
        if not fresh:
            self._fetch([m for m in members if m not in self._forgotten])
        with self._lock:
            if any(m in self._forgotten for m in members):
                return None
            missing = [m for m in members if m not in self._keys]
            if missing:
                raise KeysUnavailable(f"the key store has no key for {missing}")
            cipher = self._ciphers[members] = derive_cipher({m: self._keys[m][0] for m in members}, members)
            return cipher

    def _fetch(self, member_ids: list[str]) -> None:
        if not member_ids:
            return
        if self._source is None:
            raise KeysUnavailable("no key source is configured, and a sealed value needs one")
        try:
            found = self._source.member_keys(member_ids)
        except KeysUnavailable:
            raise
        except Exception as err:
            raise KeysUnavailable(f"fetching keys failed: {err!r}") from err
        self.fetches += 1
        now = self._clock()
        with self._lock:
            for member, key in found.items():
                if key is None:
                    self._forgotten.add(member)
                    self._keys.pop(member, None)
                    for members in [t for t in self._ciphers if member in t]:
                        del self._ciphers[members]
                else:
                    old = self._keys.get(member)
                    if old is not None and old[0] != key:  # cannot happen unless the store was restored
                        for members in [t for t in self._ciphers if member in t]:
                            del self._ciphers[members]
                    self._keys[member] = (key, now)


class LedgerKeySource:
    """Keys from the ledger's key API (`POST /v1/keys`), behind its own read-only token
    (`LEDGER_KEYS_TOKEN`): a projection can read keys, not append commands."""

    def __init__(self, ledger_url: str, token: str, *, timeout_s: float = 5.0) -> None:
        self._url = ledger_url.rstrip("/") + "/v1/keys"
        self._token = token
        self._timeout_s = timeout_s
        self._session = requests.Session()

    def member_keys(self, member_ids: Collection[str]) -> dict[str, bytes | None]:
        try:
            answer = self._session.post(self._url, json={"members": sorted(set(member_ids))},
                                        headers={"Authorization": f"Bearer {self._token}"},
                                        timeout=self._timeout_s)
        except requests.RequestException as err:
            raise KeysUnavailable(f"the ledger's key API does not answer: {type(err).__name__}") from err
        if answer.status_code != 200:
            raise KeysUnavailable(f"the ledger's key API answered {answer.status_code}")
        body = answer.json()
        keys: dict[str, bytes | None] = {m: _unb64(k) for m, k in body.get("keys", {}).items()}
        keys.update({m: None for m in body.get("forgotten", [])})
        return keys


def projection_opener(settings: Any) -> Opener:
    """The opener a projection process uses: keys from the ledger's key API (LEDGER_URL,
    LEDGER_KEYS_TOKEN), cached for KEYS_CACHE_TTL_S."""
    return Opener(LedgerKeySource(settings.ledger_url, settings.ledger_keys_token), ttl_s=settings.keys_cache_ttl_s)
