"""Create the topics a deployment needs, idempotently.

The topic registry lives in `reciprocity.contracts.topics`; this module takes a plain mapping so it
stays independent of it:

    ensure_topics(bootstrap, {name: (spec.partitions, spec.config) for name, spec in TOPICS.items()})
"""

from __future__ import annotations

import logging
from collections.abc import Mapping

from kafka import KafkaAdminClient
from kafka.errors import KafkaError, TopicAlreadyExistsError, for_code

from .event_log import RECONNECT_BACKOFF_MAX_MS

log = logging.getLogger(__name__)

TopicPlan = Mapping[str, tuple[int, Mapping[str, str]]]


def ensure_topics(
    bootstrap_servers: str,
    topics: TopicPlan,
    *,
    replication_factor: int = -1,
    timeout_s: float = 30.0,
    client_id: str = "reciprocity-topics-admin",
) -> list[str]:
    """Create each missing topic with its partition count and config; return the names created.

    Existing topics are left alone (their partitions and config are not altered, only a differing
    partition count is logged), so this is safe to call from every service at start. Racing callers
    are fine: TopicAlreadyExists counts as success. `replication_factor=-1` takes the broker's
    `default.replication.factor` (1 on the local broker, the cluster's choice in production). Returns
    after every requested topic has a leader for every partition, so producing right away works.
    """
    if not topics:
        return []
    admin = KafkaAdminClient(
        bootstrap_servers=bootstrap_servers,
        client_id=client_id,
        request_timeout_ms=int(timeout_s * 1000),
        bootstrap_timeout_ms=int(timeout_s * 1000),
        reconnect_backoff_max_ms=RECONNECT_BACKOFF_MAX_MS,
    )
    try:
        existing = {t["name"]: t for t in admin.describe_topics(list(topics)) if t.get("error_code") == 0}
        for name, topic in existing.items():
            actual = len(topic.get("partitions") or [])
            if actual != topics[name][0]:
                log.warning("topic %s has %d partitions, the registry asks for %d", name, actual, topics[name][0])

        missing = {name: plan for name, plan in topics.items() if name not in existing}
        created: list[str] = []
        if missing:
            request = {
                name: {
                    "num_partitions": partitions,
                    "replication_factor": replication_factor,
                    "configs": {str(k): str(v) for k, v in config.items()},
                }
                for name, (partitions, config) in missing.items()
            }
            response = admin.create_topics(request, timeout_ms=int(timeout_s * 1000), raise_errors=False)
            failures = []
            for result in response["topics"]:
                error = for_code(result["error_code"])
                if result["error_code"] == 0:
                    created.append(result["name"])
                elif error is not TopicAlreadyExistsError:  # lost a race with another caller: fine
                    failures.append(f"{result['name']}: {error.__name__} {result.get('error_message') or ''}".strip())
            if failures:
                raise KafkaError("creating topics failed: " + "; ".join(failures))
            log.info("created topics %s", ", ".join(sorted(created)) or "(none)")
        admin.wait_for_topics(list(topics), timeout_ms=int(timeout_s * 1000))
        return sorted(created)
    finally:
        admin.close()


def delete_topics(bootstrap_servers: str, names: list[str], *, timeout_s: float = 30.0,
                  client_id: str = "reciprocity-topics-admin") -> list[str]:
    """Delete the topics named (those that exist); return the names deleted. Irreversible: callers
    verify first (the sealing migration deletes the old topics only after checking the copies)."""
    admin = KafkaAdminClient(bootstrap_servers=bootstrap_servers, client_id=client_id,
                             request_timeout_ms=int(timeout_s * 1000), bootstrap_timeout_ms=int(timeout_s * 1000),
                             reconnect_backoff_max_ms=RECONNECT_BACKOFF_MAX_MS)
    try:
        existing = [t["name"] for t in admin.describe_topics(names) if t.get("error_code") == 0]
        if existing:
            admin.delete_topics(existing, timeout_ms=int(timeout_s * 1000))
            log.info("deleted topics %s", ", ".join(sorted(existing)))
        return sorted(existing)
    finally:
        admin.close()
