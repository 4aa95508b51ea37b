"""Ledger settings: environment variables with local defaults (see common.settings for the shared ones:
KAFKA_BOOTSTRAP_SERVERS, TOPIC_PREFIX, HOST, LOG_LEVEL, LEDGER_TOKEN)."""

from pydantic import Field, field_validator
from reciprocity.common.settings import LOCAL_SECRETS, ServiceSettings


class LedgerSettings(ServiceSettings):
    port: int = 8001
    # How long one append (or a health ping) may wait for Kafka before the request answers 503.
    kafka_timeout_s: float = 5.0
    # What a 503 tells the client to wait before retrying (Retry-After, seconds).
    retry_after_s: int = 5
    # The ledger is the single writer of its topics and validates commands against state it keeps in
    # memory: one server process, many threads. A second process would accept commands against a
    # state that does not know the first one's appends.
    http_workers: int = 1
    http_threads: int = Field(default=8, ge=1, le=256)

    @field_validator("http_workers")
    @classmethod
    def _one_process(cls, value: int) -> int:
        if value != 1:
            raise ValueError("the ledger runs as exactly one process (HTTP_WORKERS=1); raise HTTP_THREADS instead")
        return value

    # The key store (services/ledger/keystore.py): its own database, not the read models' DATABASE_URL.
    ledger_keys_database_url: str = "sqlite:///var/ledger-keys.db"
    # Wraps every stored key; a copy of the key store is useless without it. Keep it apart from backups.
    ledger_keys_secret: str = LOCAL_SECRETS["LEDGER_KEYS_SECRET"]
