"""The local infrastructure the other tests stand on: a real broker and a real PostgreSQL."""

from __future__ import annotations

import time

import pytest
import sqlalchemy as sa
from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer, TopicPartition
from reciprocity.messaging.topics_admin import ensure_topics

from devstack.local_kafka import LocalKafka
from devstack.local_postgres import LocalPostgres
from devstack.ports import free_port


def _partitions(bootstrap: str, topic: str) -> int:
    admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    try:
        (described,) = admin.describe_topics([topic])
        assert described["error_code"] == 0, described
        return len(described["partitions"])
    finally:
        admin.close()


@pytest.mark.kafka
def test_broker_answers_metadata(kafka_bootstrap: str) -> None:
    admin = KafkaAdminClient(bootstrap_servers=kafka_bootstrap)
    try:
        cluster = admin.describe_cluster()
    finally:
        admin.close()
    assert len(cluster["brokers"]) >= 1
    assert cluster["cluster_id"]


@pytest.mark.kafka
def test_ensure_topics_creates_with_partitions_and_is_idempotent(kafka_bootstrap: str, unique_id: str) -> None:
    topic = f"test.infra.{unique_id}"
    plan = {topic: (4, {"cleanup.policy": "delete", "retention.ms": "-1"})}

    assert ensure_topics(kafka_bootstrap, plan) == [topic]
    assert _partitions(kafka_bootstrap, topic) == 4

    assert ensure_topics(kafka_bootstrap, plan) == []  # second call: nothing to do, no error
    assert _partitions(kafka_bootstrap, topic) == 4


@pytest.mark.kafka
def test_produced_message_is_consumed_back(kafka_bootstrap: str, unique_id: str) -> None:
    topic = f"test.roundtrip.{unique_id}"
    ensure_topics(kafka_bootstrap, {topic: (1, {})})

    producer = KafkaProducer(bootstrap_servers=kafka_bootstrap, acks="all")
    try:
        metadata = producer.send(topic, key=b"k-" + unique_id.encode(), value=b"hello " + unique_id.encode()).get(
            timeout=30
        )
    finally:
        producer.close()
    assert metadata.offset == 0

    consumer = KafkaConsumer(bootstrap_servers=kafka_bootstrap, enable_auto_commit=False)
    try:
        consumer.assign([TopicPartition(topic, 0)])
        consumer.seek_to_beginning()
        received = []
        deadline = time.monotonic() + 30
        while not received and time.monotonic() < deadline:
            for records in consumer.poll(timeout_ms=500).values():
                received.extend(records)
    finally:
        consumer.close()
    assert [(r.key, r.value) for r in received] == [(b"k-" + unique_id.encode(), b"hello " + unique_id.encode())]


@pytest.mark.kafka
def test_local_kafka_keeps_topics_across_restart(tmp_path, unique_id: str) -> None:
    """`make run` restarts the broker on the same data directory; the events must still be there."""
    topic = f"test.restart.{unique_id}"
    kafka = LocalKafka(tmp_path / "kafka", port=free_port(), controller_port=free_port())
    with kafka:
        assert int(kafka.version.split(".")[0]) >= 4
        ensure_topics(kafka.bootstrap_servers, {topic: (2, {})})
        producer = KafkaProducer(bootstrap_servers=kafka.bootstrap_servers, acks="all")
        producer.send(topic, value=b"kept", partition=1).get(timeout=30)
        producer.close()
    with kafka:  # same ports, same data directory
        consumer = KafkaConsumer(bootstrap_servers=kafka.bootstrap_servers)
        try:
            end = consumer.end_offsets([TopicPartition(topic, 0), TopicPartition(topic, 1)])
        finally:
            consumer.close()
    assert end == {TopicPartition(topic, 0): 0, TopicPartition(topic, 1): 1}


@pytest.mark.postgres
def test_local_postgres_accepts_sqlalchemy_connections(postgres_url: str, postgres_server: LocalPostgres) -> None:
    assert postgres_server.version is not None and postgres_server.version.startswith("15.")
    engine = sa.create_engine(postgres_url)
    try:
        with engine.connect() as conn:
            assert conn.execute(sa.text("select 1")).scalar_one() == 1
            version = conn.execute(sa.text("show server_version_num")).scalar_one()
            assert conn.execute(sa.text("select current_database()")).scalar_one() == postgres_url.rsplit("/", 1)[1]
    finally:
        engine.dispose()
    assert int(version) // 10000 == 15
