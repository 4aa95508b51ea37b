"""Settings every service shares. Environment variables only, each with a local default.

Secrets have local defaults too, so `make run` works on a fresh clone; they are good for local development
only. `RECIPROCITY_ENV=development` (set by `make run` and the tests) is the one switch that says so:
without it, `refuse_local_secrets` stops a service that would start with an empty secret or one of these
defaults, naming the variable.
"""

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

DEVELOPMENT = "development"

# The local development value of each secret, by environment variable.
LOCAL_SECRETS: dict[str, str] = {
    "SECRET_KEY": "local-dev-secret-key-not-for-production",
    "LEDGER_TOKEN": "local-dev-token",
    "BALANCE_TOKEN": "local-dev-balance-token",
    "NOTIFY_TOKEN": "local-dev-notify-token",
    # Member keys (crypto-shredding, README "Forgetting a member"): the token projections read keys with,
    # and the secret the ledger's key store wraps every key with.
    "LEDGER_KEYS_TOKEN": "local-dev-keys-token",
    "LEDGER_KEYS_SECRET": "local-dev-keys-secret",
}


class LocalSecretRefused(SystemExit):
    """A service was started outside development with an empty or local-default secret. A SystemExit
    carrying one line: Python prints it on stderr and exits with status 1, with no traceback."""


class ServiceSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="", extra="ignore", case_sensitive=False)

    # "development" on a laptop and in tests; anything else (the default) is a real deployment.
    reciprocity_env: str = "production"
    kafka_bootstrap_servers: str = "127.0.0.1:9092"
    # Prepended to every topic and consumer group: lets tests (or tenants) share one broker.
    topic_prefix: str = ""
    host: str = "127.0.0.1"
    log_level: str = "INFO"
    # Bearer tokens of the three HTTP APIs: each service checks its own, the web and the CLI present them.
    ledger_token: str = LOCAL_SECRETS["LEDGER_TOKEN"]
    balance_token: str = LOCAL_SECRETS["BALANCE_TOKEN"]
    notify_token: str = LOCAL_SECRETS["NOTIFY_TOKEN"]
    # Where the ledger answers: the web sends commands there, the projections fetch member keys there.
    ledger_url: str = "http://127.0.0.1:8001"
    # Reads member keys from the ledger (POST /v1/keys): the projections hold it; it cannot append.
    ledger_keys_token: str = LOCAL_SECRETS["LEDGER_KEYS_TOKEN"]
    # How long a projection keeps a member key in memory before asking the ledger again.
    keys_cache_ttl_s: float = 30.0

    @property
    def is_development(self) -> bool:
        return self.reciprocity_env.strip().lower() == DEVELOPMENT

    def refuse_local_secrets(self, *names: str) -> None:
        """Outside development, exit at once when one of these secrets (environment variable names) is
        empty or still its local default. Called by every service before it serves anything."""
        if self.is_development:
            return
        for name in names:
            value = str(getattr(self, name.lower(), "") or "")
            if not value.strip() or value == LOCAL_SECRETS.get(name):
                state = "empty" if not value.strip() else "the local development default"
                raise LocalSecretRefused(
                    f"refusing to start: {name} is {state}; set it to a long random value "
                    f"(or RECIPROCITY_ENV={DEVELOPMENT} on a development machine)")
    # The API's server (gunicorn, common/service.py): processes, threads in each, how long one request
    # may take before its worker is replaced, how long a stop waits for requests in flight.
    http_workers: int = Field(default=1, ge=1, le=64)
    http_threads: int = Field(default=4, ge=1, le=256)
    http_timeout_s: int = Field(default=60, ge=1)
    http_graceful_timeout_s: int = Field(default=20, ge=1)
    http_access_log: bool = False
    # A worker role's probe (GET /health, GET /metrics) listens here; 0: no probe.
    health_port: int = Field(default=0, ge=0, le=65535)
