"""The one-time migration of a log written before sealing (services/ledger/migrate_sealing.py), on a
real broker, from a golden log of old versions (tests/data/sealing-migration/before.jsonl) to sealed
copies that open to the golden values (after-opened.jsonl): copy, verify, switch, delete the old topics."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from reciprocity.cli.main import main as cli
from reciprocity.common.sealing import Opener
from reciprocity.contracts.envelope import decode
from reciprocity.contracts.events import EVENT_TYPES
from reciprocity.contracts.topics import all_topics
from reciprocity.ledger.keystore import KeyStore, make_engine
from reciprocity.ledger.migrate_sealing import SEALED_TOPICS, MigrationFailed, copy, verify
from reciprocity.messaging.event_log import BrokerUnavailable, EventLog, Outgoing
from reciprocity.messaging.inspect import read_all
from reciprocity.messaging.topics_admin import ensure_topics

from tests.support.ledger import in_process_ledger

pytestmark = pytest.mark.kafka

DATA = Path(__file__).parent.parent / "data" / "sealing-migration"
SECRET = "migration test secret"


def _golden_log() -> list[dict[str, Any]]:
    return [json.loads(line) for line in (DATA / "before.jsonl").read_text().splitlines()]


def _clear_texts(log: list[dict[str, Any]]) -> list[str]:
    texts = []
    for item in log:
        value = item["value"]
        if isinstance(value, dict) and item["topic"] != "balance.signals" and value["type"] != "CircleFormed":
            p = value["payload"]
            texts += [p[f] for f in ("name", "email", "note", "thanks", "reason") if isinstance(p.get(f), str) and p[f]]
    texts.append("clear words in a poison record")
    return texts


def _append(bootstrap: str, prefix: str, log: list[dict[str, Any]]) -> None:
    out = EventLog(bootstrap, client_id="test-old-ledger", topic_prefix=prefix, timeout_s=15)
    try:
        out.append([Outgoing(item["topic"], item["key"].encode(),
                             (json.dumps(item["value"]) if isinstance(item["value"], dict) else item["value"]).encode(),
                             tuple((k, v.encode()) for k, v in item["headers"].items())) for item in log])
    finally:
        out.close()


def _opened(bootstrap: str, prefix: str, keys: KeyStore) -> list[dict[str, Any]]:
    opener = Opener(keys)
    found = []
    for record in read_all(bootstrap, SEALED_TOPICS, topic_prefix=prefix):
        envelope, event = decode(record.value)
        found.append({"topic": record.topic, "event_id": str(envelope.event_id), "type": envelope.type,
                      "version": envelope.version,
                      "payload": opener.open_event(event, str(envelope.event_id)).model_dump(mode="json")})
    return sorted(found, key=lambda f: f["event_id"])


def test_old_clear_events_are_copied_sealed_verified_and_the_old_topics_deleted(
        kafka_bootstrap: str, unique_id: str, tmp_path: Path, monkeypatch, capsys) -> None:  # type: ignore[no-untyped-def]
    old, new = f"t.mig.{unique_id}.", f"t.mig.{unique_id}.v2."
    ensure_topics(kafka_bootstrap, all_topics(old))
    log = _golden_log()
    _append(kafka_bootstrap, old, log)
    keys_url = f"sqlite:///{tmp_path}/keys.db"
    keys = KeyStore(make_engine(keys_url), SECRET)
    keys.destroy("someone-forgotten-before", by="noor-haddad")  # a tombstone the copy must respect

    report = copy(kafka_bootstrap, keys, source_prefix=old, target_prefix=new)
    assert report.copied == {"ledger.directory": 3, "ledger.exchanges": 6, "balance.signals": 1}
    assert report.sealed == 7  # every old record with a name, an email, a note, thanks or a reason
    assert len(report.skipped) == 1 and report.skipped[0].startswith("ledger.exchanges[")
    with pytest.raises(MigrationFailed, match="not empty"):
        copy(kafka_bootstrap, keys, source_prefix=old, target_prefix=new)

    checked = verify(kafka_bootstrap, keys, source_prefix=old, target_prefix=new)
    assert checked == report.copied

    # Every copy is the newest version, sealed; no clear text of the old log is left in any byte.
    secrets = _clear_texts(log)
    for record in read_all(kafka_bootstrap, (*SEALED_TOPICS, "balance.signals"), topic_prefix=new):
        envelope, _ = decode(record.value)
        assert envelope.version == EVENT_TYPES[envelope.type].VERSION
        assert b'"alg":"none"' not in record.value
        assert not [s for s in secrets if s.encode() in record.value], record
    # ... and it opens to the golden values (the upcast originals).
    golden = json.loads((DATA / "after-opened.json").read_text())
    assert _opened(kafka_bootstrap, new, keys) == golden

    # A copy that does not match its source stops the migration before anything is switched or deleted.
    ensure_topics(kafka_bootstrap, all_topics(f"t.mig.{unique_id}.empty."))
    with pytest.raises(MigrationFailed, match=r"has no copy|was not copied"):
        verify(kafka_bootstrap, keys, source_prefix=old, target_prefix=f"t.mig.{unique_id}.empty.")
    with pytest.raises(MigrationFailed, match="cannot be read"):
        verify(kafka_bootstrap, keys, source_prefix=old, target_prefix=f"t.mig.{unique_id}.missing.")

    # The switch: a ledger on the new prefix, with the same key store, rebuilds its state from the copies.
    switched = {"ledger_keys_database_url": keys_url, "ledger_keys_secret": SECRET}
    with in_process_ledger(kafka_bootstrap, new, **switched) as ledger:
        lukas = ledger.get("/v1/members/lukas-brandt").get_json()
        assert (lukas["name"], lukas["email"]) == ("Lukas Brandt", "lukas.brandt@example.org")
        # The correction (a later event of the same exchange) is applied: its sealed note was opened too.
        assert ledger.get("/v1/exchanges/x-1111111111111111").get_json()["note"].startswith("Review of the")
        # Its idempotency survived: the registration's request header was copied with it.
        assert sum(1 for _, e in ledger.events() if type(e).__name__ == "MemberRegistered") == 2

    # Then the old topics go, after one more verification, through the operator's command.
    for name, value in {"KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap, "TOPIC_PREFIX": old,
                        "LEDGER_KEYS_DATABASE_URL": keys_url, "LEDGER_KEYS_SECRET": SECRET}.items():
        monkeypatch.setenv(name, value)
    assert cli(["migrate-sealing", "delete-source", "--to-prefix", new]) == 2  # not without --confirm
    assert cli(["migrate-sealing", "verify", "--to-prefix", new]) == 0
    assert cli(["migrate-sealing", "delete-source", "--to-prefix", new, "--confirm"]) == 0
    assert "deleted: " + ", ".join(sorted(all_topics(old))) in capsys.readouterr().out
    with pytest.raises(BrokerUnavailable, match="does not exist"):
        list(read_all(kafka_bootstrap, SEALED_TOPICS, topic_prefix=old))
