"""The one-time migration of a log written before sealing: copy, verify, switch, delete.

Events written before `contracts/sealed.py` hold names, emails and members' words in clear text, and the
topics keep them forever. Upcasting them on read is not enough (the clear text stays in the log), and
topics are never rewritten in place. So, as a replay does for read models:

1. `copy`: with the ledger stopped, every record of `ledger.directory` and `ledger.exchanges` under the
   current TOPIC_PREFIX is read (committed records, in partition order), lifted to the newest version of
   its event and sealed with the members' keys from the ledger's key store (created for members that
   have none yet), and appended to the same topic under a new prefix with the same key (so the same
   partition), event id, time, producer and headers (the ledger's idempotency answers survive).
   `balance.signals` holds no personal value and is copied as it is. A member forgotten before the
   migration gets values sealed under a throwaway key: unreadable from the start. A record that is not
   a valid event is not copied (it is reported: it may hold anything, and its dead letter is in the DLQ).
2. `verify`: every copied record is where it should be, opens to exactly the values of its original,
   holds no clear value, and no clear personal text of the old topics appears in the new ones' bytes.
3. Switch: start every service with TOPIC_PREFIX set to the new prefix, after `reciprocity replay
   balance` and `reciprocity migrate-sealing rewind-notify` under it (README "Forgetting a member").
4. `delete-source`: verify again, then delete the old topics (and their dead-letter topics).
"""

from __future__ import annotations

import logging
import os
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from reciprocity.common.sealing import Opener, Sealer, sealed_fields
from reciprocity.contracts.envelope import ContractError, Envelope, decode, encode, wrap
from reciprocity.contracts.events import Event
from reciprocity.contracts.topics import DIRECTORY, EXCHANGES, SIGNALS, all_topics
from reciprocity.messaging.event_log import BrokerUnavailable, EventLog, Outgoing
from reciprocity.messaging.inspect import RawRecord, read_all
from reciprocity.messaging.topics_admin import delete_topics, ensure_topics

from .keystore import KeyStore, MemberForgottenError

log = logging.getLogger(__name__)

SEALED_TOPICS = (DIRECTORY.name, EXCHANGES.name)
COPIED_AS_IS = (SIGNALS.name,)
BATCH = 500


class MigrationFailed(RuntimeError):
    """The copy does not match its source; nothing may be switched or deleted."""


@dataclass
class Report:
    copied: Counter[str] = field(default_factory=Counter)  # by topic
    sealed: int = 0  # records whose values were clear and are now sealed
    skipped: list[str] = field(default_factory=list)  # unreadable records, by position (not copied)

    def lines(self) -> list[str]:
        out = [f"{topic}: {n} record(s)" for topic, n in sorted(self.copied.items())]
        out.append(f"sealed: {self.sealed} record(s) that held clear values")
        out += [f"not copied (not a valid event): {where}" for where in self.skipped]
        return out


def _sealer(keys: KeyStore) -> Sealer:
    def key_for(member_id: str) -> bytes:
        try:
            return keys.key_for(member_id)
        except MemberForgottenError:
            return os.urandom(32)  # forgotten before the migration: sealed for nobody, never readable

    return Sealer(key_for)


def _lift(record: RawRecord, sealer: Sealer) -> tuple[Envelope, Event, bool] | None:
    """The record's event at its newest version, sealed; None when it is not a valid event."""
    try:
        envelope, event = decode(record.value)
    except ContractError:
        return None
    clear = any(getattr(event, f) is not None and getattr(event, f).is_clear for f in sealed_fields(type(event)))
    sealed = sealer.seal_event(event, str(envelope.event_id))
    return wrap(sealed, producer=envelope.producer, event_id=envelope.event_id,
                occurred_at=envelope.occurred_at), sealed, clear


def copy(bootstrap: str, keys: KeyStore, *, source_prefix: str, target_prefix: str,
         progress: Callable[[int], None] | None = None) -> Report:
    """Copy the log under `source_prefix` into sealed topics under `target_prefix` (created here)."""
    if source_prefix == target_prefix:
        raise MigrationFailed("the new prefix must differ from the current one: topics are never rewritten")
    ensure_topics(bootstrap, all_topics(target_prefix))
    if any(True for _ in read_all(bootstrap, (*SEALED_TOPICS, *COPIED_AS_IS), topic_prefix=target_prefix)):
        raise MigrationFailed(f"the topics under {target_prefix!r} are not empty: copy into a fresh prefix")
    sealer = _sealer(keys)
    report = Report()
    out = EventLog(bootstrap, client_id="ledger-migration", topic_prefix=target_prefix,
                   transactional_id=f"{target_prefix}ledger-migration", timeout_s=30)
    batch: list[Outgoing] = []
    try:
        for record in read_all(bootstrap, (*SEALED_TOPICS, *COPIED_AS_IS), topic_prefix=source_prefix):
            headers = tuple(record.headers.items())
            if record.topic in COPIED_AS_IS:
                batch.append(Outgoing(record.topic, record.key, record.value, headers))
            else:
                lifted = _lift(record, sealer)
                if lifted is None:
                    report.skipped.append(f"{record.topic}[{record.partition}]@{record.offset}")
                    continue
                envelope, _event, was_clear = lifted
                report.sealed += was_clear
                batch.append(Outgoing(record.topic, record.key, encode(envelope), headers))
            report.copied[record.topic] += 1
            if len(batch) >= BATCH:
                out.append(batch)
                batch = []
                if progress is not None:
                    progress(sum(report.copied.values()))
        if batch:
            out.append(batch)
    finally:
        out.close()
    log.info("sealing migration copied %s into %r", dict(report.copied), target_prefix)
    return report


def _by_partition(records: Iterator[RawRecord]) -> dict[tuple[str, int], list[RawRecord]]:
    found: dict[tuple[str, int], list[RawRecord]] = {}
    for record in records:
        found.setdefault((record.topic, record.partition), []).append(record)
    return found


def _clear_texts(event: Event) -> list[str]:
    return [getattr(event, f).data for f in sealed_fields(type(event))
            if getattr(event, f) is not None and getattr(event, f).is_clear and getattr(event, f).data]


def verify(bootstrap: str, keys: KeyStore, *, source_prefix: str, target_prefix: str) -> Counter[str]:
    """Check the copy against its source; raise MigrationFailed naming the first difference."""
    topics = (*SEALED_TOPICS, *COPIED_AS_IS)
    try:
        source = _by_partition(read_all(bootstrap, topics, topic_prefix=source_prefix))
        target = _by_partition(read_all(bootstrap, topics, topic_prefix=target_prefix))
    except BrokerUnavailable as err:
        raise MigrationFailed(f"the topics cannot be read: {err}") from err
    opener = Opener(keys, ttl_s=float("inf"))
    checked: Counter[str] = Counter()
    secrets: set[str] = set()
    for (topic, partition), originals in sorted(source.items()):
        copies = iter(target.pop((topic, partition), []))
        for original in originals:
            where = f"{topic}[{partition}]@{original.offset}"
            if topic in COPIED_AS_IS:
                copied = next(copies, None)
                if copied is None or (copied.key, copied.value) != (original.key, original.value):
                    raise MigrationFailed(f"{where} was not copied as it is")
                checked[topic] += 1
                continue
            try:
                envelope, event = decode(original.value)
            except ContractError:
                continue  # reported by copy, never copied
            copied = next(copies, None)
            if copied is None:
                raise MigrationFailed(f"{where} has no copy")
            new_envelope, new_event = decode(copied.value)
            if copied.key != original.key or copied.headers != original.headers:
                raise MigrationFailed(f"{where}: the copy's key or headers differ")
            if (new_envelope.event_id, new_envelope.type, new_envelope.occurred_at, new_envelope.producer) != (
                    envelope.event_id, envelope.type, envelope.occurred_at, envelope.producer):
                raise MigrationFailed(f"{where}: the copy's envelope differs")
            if _clear_texts(new_event) or any(getattr(new_event, f) is not None and getattr(new_event, f).is_clear
                                              for f in sealed_fields(type(new_event))):
                raise MigrationFailed(f"{where}: the copy holds a clear value")
            event_id = str(envelope.event_id)
            if opener.open_event(new_event, event_id) != opener.open_event(event, event_id):
                raise MigrationFailed(f"{where}: the copy does not open to the original's values")
            secrets.update(_clear_texts(event))
            checked[topic] += 1
        if next(copies, None) is not None:
            raise MigrationFailed(f"{topic}[{partition}] has more records in the copy than in the source")
    if any(target.values()):
        raise MigrationFailed(f"the copy has partitions the source has not: {sorted(target)}")
    # Belt and braces: no clear text of the old log anywhere in the new one's bytes.
    for record in read_all(bootstrap, SEALED_TOPICS, topic_prefix=target_prefix):
        raw = record.value.decode("utf-8", "replace")
        leaked = [s for s in secrets if len(s) >= 4 and s in raw]
        if leaked:
            raise MigrationFailed(f"{record.topic}[{record.partition}]@{record.offset} holds clear text of the old log")
    return checked


def delete_source(bootstrap: str, keys: KeyStore, *, source_prefix: str, target_prefix: str) -> list[str]:
    """Verify once more, then delete the old topics and their dead-letter topics."""
    verify(bootstrap, keys, source_prefix=source_prefix, target_prefix=target_prefix)
    return delete_topics(bootstrap, list(all_topics(source_prefix)))

