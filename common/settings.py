"""Settings every service shares. Environment variables only, each with a local default."""

from pydantic_settings import BaseSettings, SettingsConfigDict


class ServiceSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="", extra="ignore", case_sensitive=False)

    kafka_bootstrap_servers: str = "127.0.0.1:9092"
    # Prepended to every topic and consumer group: lets tests (or tenants) share one broker.
    topic_prefix: str = ""
    host: str = "127.0.0.1"
    log_level: str = "INFO"
    ledger_token: str = "local-dev-token"
