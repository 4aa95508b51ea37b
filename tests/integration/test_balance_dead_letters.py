"""Balance's operator read API over a real broker: GET /v1/dead-letters (positions and errors, never the
payload; 503 when the DLQs cannot be read) and replay progress in GET /v1/projection/status."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest
from reciprocity.balance.app import create_app
from reciprocity.balance.db import make_engine, migrate
from reciprocity.balance.replay import replay
from reciprocity.balance.settings import BalanceSettings
from reciprocity.contracts.envelope import encode
from reciprocity.contracts.events import ExchangeRecorded
from reciprocity.contracts.topics import EXCHANGES
from reciprocity.messaging.event_log import EventLog, Outgoing

from tests.support.auth import authorized
from tests.support.balance_stack import InProcessBalance, make_topics
from tests.support.events import Exchange, append, envelope, member
from tests.support.services import wait_for

pytestmark = pytest.mark.kafka

SECRET = "a private note nobody else may read"


def test_dead_letters_show_where_and_why_but_not_what(kafka_bootstrap: str, unique_id: str, tmp_path) -> None:  # type: ignore[no-untyped-def]
    prefix = f"t{unique_id}."
    make_topics(kafka_bootstrap, prefix)
    url = f"sqlite:///{tmp_path}/balance.db"
    good = Exchange("ann", "bob", 25, date.today(), "knowledge", note=SECRET)
    recorded = envelope(ExchangeRecorded(**{**good.recorded().model_dump(), "exchange_id": "x-poison"}))
    poison = recorded.model_copy(update={"payload": {**recorded.payload, "minutes": 0}})
    log = EventLog(kafka_bootstrap, client_id="test-ledger", topic_prefix=prefix)
    try:
        with InProcessBalance(kafka_bootstrap, prefix, url) as balance:
            empty = balance.get("/v1/dead-letters")
            assert empty == {"dead_letters": [], "counts": {"ledger.directory.dlq": 0, "ledger.exchanges.dlq": 0,
                                                            "balance.signals.dlq": 0}}
            before = datetime.now(UTC)
            (where,) = log.append([Outgoing(EXCHANGES.name, b"x-poison", encode(poison))])
            append(log, [member("ann"), member("bob"), good.recorded()])

            def listed() -> dict | None:
                answer = balance.get("/v1/dead-letters?topic=ledger.exchanges")
                return answer if answer["dead_letters"] else None

            found = wait_for(listed, 30, what="the poison record listed")  # the answer is cached a few seconds
            (letter,) = found["dead_letters"]
            assert found["counts"] == {"ledger.exchanges.dlq": 1}
            assert letter["topic"] == "ledger.exchanges.dlq" and letter["source_topic"] == "ledger.exchanges"
            assert (letter["source_partition"], letter["source_offset"]) == (where.partition, where.offset)
            assert letter["error"].startswith("invalid ExchangeRecorded") and "minutes" in letter["error"]
            assert letter["key"] == "x-poison" and letter["size"] == len(encode(poison))
            assert letter["redriven"] is False and letter["offset"] == 0
            assert datetime.fromisoformat(letter["dead_lettered_at"]) >= before.replace(microsecond=0)
            assert "value" not in letter and SECRET not in balance.client.get("/v1/dead-letters").get_data(
                as_text=True)
            assert balance.get("/v1/dead-letters?topic=ledger.exchanges.dlq&limit=1")["dead_letters"] == [letter]
            assert balance.get("/v1/dead-letters?topic=ledger.directory")["dead_letters"] == []
            balance.get("/v1/dead-letters?topic=ledger.nowhere", status=422)
            balance.get("/v1/dead-letters?limit=0", status=422)

            # Replay progress: a replay built with --no-switch leaves its generation `building`, complete.
            balance.wait_caught_up()
            assert balance.get("/v1/projection/status")["building"] is None
            built = replay(balance.engine, kafka_bootstrap, topic_prefix=prefix, switch=False)
            status = balance.get("/v1/projection/status")
            assert status["generation"] == 1
            progress = status["building"]
            assert progress["generation"] == built.generation == 2
            assert progress["applied"] == progress["end"] == sum(built.ends.values()) > 0
            assert progress["progress"] == 1.0 and progress["started_at"]
    finally:
        log.close()


def test_dead_letters_answer_503_when_the_topics_cannot_be_read(tmp_path, kafka_bootstrap: str,  # type: ignore[no-untyped-def]
                                                                 unique_id: str) -> None:
    url = f"sqlite:///{tmp_path}/balance.db"
    engine = make_engine(url)
    migrate(engine)
    # No topics were created under this prefix (and the broker does not create them on demand).
    settings = BalanceSettings(kafka_bootstrap_servers=kafka_bootstrap, topic_prefix=f"missing{unique_id}.",
                               database_url=url)
    client = authorized(create_app(settings, engine=engine).test_client(), settings.balance_token)
    answer = client.get("/v1/dead-letters")
    assert answer.status_code == 503 and "does not exist" in answer.get_json()["error"]
    assert client.get("/v1/projection/status").get_json()["building"] is None
    engine.dispose()
