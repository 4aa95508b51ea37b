"""Kafka plumbing: the one package that imports `kafka`.

- `event_log.EventLog` appends events (idempotent, `acks=all`, optionally transactional);
- `consumer.ProjectionConsumer` feeds decoded batches to a projection that stores its own offsets;
- `topics_admin` creates topics; `inspect` reads end offsets and group positions.
"""
