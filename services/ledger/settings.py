"""Ledger settings: environment variables with local defaults (see common.settings for the shared ones:
KAFKA_BOOTSTRAP_SERVERS, TOPIC_PREFIX, HOST, LOG_LEVEL, LEDGER_TOKEN)."""

from reciprocity.common.settings import ServiceSettings


class LedgerSettings(ServiceSettings):
    port: int = 8001
    # How long one append (or a health ping) may wait for Kafka before the request answers 503.
    kafka_timeout_s: float = 5.0
    # What a 503 tells the client to wait before retrying (Retry-After, seconds).
    retry_after_s: int = 5
