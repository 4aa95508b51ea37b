"""The ledger's application service: idempotency, handlers, appending, and keeping the state in step.

One lock serialises commands: the state a command is checked against is the state its events are
appended on top of (the ledger is the single writer of `ledger.*`). No Flask here; the HTTP layer maps
the outcomes and exceptions to statuses.

Idempotency survives restarts: a command's events get ids derived from its Idempotency-Key
(`command_event_id(key, i)`), and its first event carries a header with a fingerprint of the request.
Rebuilding the state from the topics therefore rebuilds "event id -> first answer" as well, so a retry
after a restart gets the first answer again instead of appending twice.
"""

from __future__ import annotations

import hashlib
import json
import logging
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from reciprocity.common.sealing import Opener, Sealer
from reciprocity.contracts.commands import Appended, Command, RecordExchange, Unchanged, parse_command
from reciprocity.contracts.envelope import ContractError, decode, encode, wrap
from reciprocity.contracts.events import MemberForgotten
from reciprocity.contracts.ids import command_event_id, exchange_id_for
from reciprocity.contracts.topics import EXCHANGES, LEDGER_TOPICS
from reciprocity.messaging.event_log import BrokerUnavailable, EventLog, Outgoing
from reciprocity.messaging.inspect import read_all

from .handlers import handle
from .keystore import KeyStore
from .state import LedgerState

log = logging.getLogger(__name__)
T = TypeVar("T")

PRODUCER = "ledger"
# Headers on the first event of each command (Kafka record headers, outside the event contract).
HEADER_REQUEST = "ledger.request"  # sha256 of the request: tells a retry from a reused key
HEADER_COUNT = "ledger.events"  # how many events the command appended


class NotReady(Exception):
    """The state is being (re)read from Kafka; commands must wait (503 with Retry-After)."""


class KeyReused(Exception):
    """The Idempotency-Key was used before for a different request (or its events' ids are in the log)."""


def fingerprint(method: str, path: str, body: Any) -> str:
    """Identifies a request: the same method, path and JSON body (key order and spacing aside)."""
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(f"{method} {path}\n{canonical}".encode()).hexdigest()


@dataclass(frozen=True)
class CommandAnswer:
    """The ledger's answer to a command, kept under its Idempotency-Key so a retry gets it again."""

    status: int
    body: dict[str, Any]
    fingerprint: str | None = None
    replayed: bool = False  # True when this is the first answer given again to a retry


@dataclass
class LoadReport:
    events: int = 0
    skipped: int = 0
    seconds: float = 0.0
    counts: dict[str, int] = field(default_factory=dict)


class Ledger:
    def __init__(self, event_log: EventLog, keys: KeyStore, *, bootstrap_servers: str, topic_prefix: str = "",
                 read_timeout_s: float = 10.0) -> None:
        self.event_log = event_log
        self.keys = keys
        self._sealer = Sealer(keys.key_for)
        self._bootstrap = bootstrap_servers
        self._prefix = topic_prefix
        self._read_timeout_s = read_timeout_s
        self._lock = threading.Lock()  # one command (or state swap) at a time
        self._load_lock = threading.Lock()  # one load at a time
        self.state = LedgerState()
        self._answers: dict[uuid.UUID, CommandAnswer] = {}
        # Why the state cannot be trusted right now (None: it can). Commands wait for a (re)load.
        self.stale_reason: str | None = "the ledger has not read its state from Kafka yet"
        self.last_load_error: str | None = None

    # --- state ---------------------------------------------------------------------------------------

    def load(self) -> LoadReport:
        """Rebuild the state and the remembered answers from the ledger's topics, then swap them in.

        Commands are refused (NotReady) from the start of a load to its end, so nothing is appended
        between the read and the swap; the read itself happens outside the command lock, so a slow or
        absent broker never blocks a request. On failure the reason is kept for /health.
        """
        with self._load_lock:
            with self._lock:  # let a command in flight finish first
                self.stale_reason = self.stale_reason or "the ledger is re-reading its state from Kafka"
            try:
                report, state, answers = self._read()
            except BrokerUnavailable as err:
                self.last_load_error = str(err)
                raise
            with self._lock:
                self.state, self._answers = state, answers
                self.stale_reason = self.last_load_error = None
            log.info("state loaded: %d events (%d skipped) in %.2fs: %s", report.events, report.skipped,
                     report.seconds, report.counts)
            return report

    def _read(self) -> tuple[LoadReport, LedgerState, dict[uuid.UUID, CommandAnswer]]:
        # The producer connects first: its init_transactions fences an earlier ledger process and aborts
        # that one's unfinished transaction, which would otherwise hold back what read_committed sees.
        began = time.monotonic()
        if not self.event_log.ping(EXCHANGES.name):
            raise BrokerUnavailable("Kafka does not answer (or the ledger topics do not exist yet)")
        state = LedgerState()
        answers: dict[uuid.UUID, CommandAnswer] = {}
        report = LoadReport()
        opener = Opener(self.keys, ttl_s=float("inf"))  # keys cannot change while the state is read
        for record in read_all(self._bootstrap, LEDGER_TOPICS, topic_prefix=self._prefix,
                               timeout_s=self._read_timeout_s):
            try:
                envelope, event = decode(record.value)
            except ContractError as err:
                # Only the ledger writes these topics, so this is a bug or a foreign writer: say so.
                log.error("skipping unreadable record %s[%d]@%d: %s", record.topic, record.partition,
                          record.offset, err)
                report.skipped += 1
                continue
            if isinstance(event, MemberForgotten):
                opener.forget(event.member_id)
            event = opener.open_event(event, str(envelope.event_id))
            if not state.apply(event, event_id=envelope.event_id, at=envelope.occurred_at):
                continue
            report.events += 1
            request = record.headers.get(HEADER_REQUEST)
            if request is not None:
                count = int(record.headers.get(HEADER_COUNT, b"1"))
                answers[envelope.event_id] = CommandAnswer(201, _appended(
                    str(envelope.event_id), record.topic, record.partition, record.offset, envelope.key, count
                ), request.decode())
        report.seconds = time.monotonic() - began
        report.counts = state.counts()
        return report, state, answers

    def _ready(self) -> None:
        if self.stale_reason is not None:
            raise NotReady(self.stale_reason)

    # --- commands -------------------------------------------------------------------------------------

    def execute(self, command_cls: type[Command], body: Any, *, target: str | None, key: str | None,
                request_fingerprint: str) -> CommandAnswer:
        """Run one command. Raises pydantic's ValidationError, the handlers' domain errors, KeyReused,
        NotReady or BrokerUnavailable; in every one of those cases nothing was appended."""
        with self._lock:
            self._ready()
            first_id = command_event_id(key, 0) if key is not None else None
            if first_id is not None and (earlier := self._answers.get(first_id)) is not None:
                if earlier.fingerprint not in (None, request_fingerprint):
                    raise KeyReused(key)
                return CommandAnswer(earlier.status, earlier.body, earlier.fingerprint, replayed=True)

            command = parse_command(command_cls, body)
            if isinstance(command, RecordExchange):
                target = exchange_id_for(key)
            events = handle(command, self.state, target)
            if not events:
                answer = CommandAnswer(200, Unchanged(id=target or "").model_dump(mode="json"), request_fingerprint)
                if first_id is not None:
                    self._answers[first_id] = answer  # in memory only: nothing was appended to remember
                return answer

            event_ids = [command_event_id(key, i) if key is not None else uuid.uuid4() for i in range(len(events))]
            if key is not None and any(event_id in self.state.applied for event_id in event_ids):
                # Only the old derivation of a command's later events (f"{key}#{i}", see command_event_id)
                # collides like this. Appended, the event would be dropped as a repeat by the ledger's own
                # state and by every consumer: refuse the key instead, nothing is appended.
                raise KeyReused(key)
            for event in events:
                if isinstance(event, MemberForgotten):
                    # The key goes before the event is appended: if the append fails, the retry finds the
                    # key gone and appends; never an event saying "forgotten" while the key still opens.
                    self.keys.destroy(event.member_id, by=event.requested_by)
            # Handlers build events with clear values; only sealed ones leave the ledger.
            envelopes = [
                wrap(self._sealer.seal_event(event, str(event_id)), producer=PRODUCER, event_id=event_id)
                for event, event_id in zip(events, event_ids, strict=True)
            ]
            marks = ((HEADER_REQUEST, request_fingerprint.encode()), (HEADER_COUNT, str(len(events)).encode()))
            outgoing = [
                Outgoing(topic=event.TOPIC, key=env.key.encode(), value=encode(env), headers=marks if i == 0 else ())
                for i, (event, env) in enumerate(zip(events, envelopes, strict=True))
            ]
            try:
                positions = self.event_log.append(outgoing)
            except BrokerUnavailable:
                # A commit that timed out may still have landed: re-read the topics (the loader does)
                # before the next command rather than trust a state that may be one command behind.
                self.stale_reason = "an append failed; the state will be re-read from Kafka"
                raise
            for event, env in zip(events, envelopes, strict=True):
                self.state.apply(event, event_id=env.event_id, at=env.occurred_at)
            first = positions[0]
            answer = CommandAnswer(201, _appended(str(envelopes[0].event_id), first.topic, first.partition,
                                                  first.offset, envelopes[0].key, len(events)), request_fingerprint)
            if first_id is not None:
                self._answers[first_id] = answer
            return answer

    def query(self, reader: Callable[[LedgerState], T]) -> T:
        """Run `reader` on the state under the lock, so it never sees a command half applied."""
        with self._lock:
            self._ready()
            return reader(self.state)


def _appended(event_id: str, topic: str, partition: int, offset: int, key: str, count: int) -> dict[str, Any]:
    return Appended(event_id=event_id, topic=topic, partition=partition, offset=offset, id=key,
                    count=count).model_dump(mode="json")
