"""notify's configuration: environment variables only, each with a local default."""

from pydantic import Field, SecretStr
from reciprocity.common.settings import ServiceSettings


class NotifySettings(ServiceSettings):
    port: int = 8003
    database_url: str = "sqlite:///var/notify.db"

    smtp_host: str = "127.0.0.1"
    smtp_port: int = 1025
    smtp_user: str | None = None
    smtp_password: SecretStr | None = None
    smtp_starttls: bool = False
    smtp_ssl: bool = False  # implicit TLS (usually port 465); exclusive with STARTTLS
    smtp_ca_file: str | None = None  # PEM file of a private CA to trust for the server's certificate
    smtp_from: str = "Reciprocity <alerts@reciprocity.local>"
    smtp_timeout_s: float = Field(default=10.0, gt=0)

    web_base_url: str = "http://127.0.0.1:8000"

    # Retrying a delivery the SMTP server did not take: initial * 2^(n-1), capped.
    notify_retry_initial_s: float = Field(default=1.0, gt=0)
    notify_retry_max_s: float = Field(default=60.0, gt=0)
    # A claimed delivery is someone else's for this long; after a crash it becomes sendable again.
    notify_send_lease_s: float = Field(default=60.0, gt=0)
    # How long a signal waits for the directory to know its member, circles and leads before it is
    # recorded as failed (visible in /v1/deliveries?status=failed).
    notify_directory_wait_s: float = Field(default=600.0, gt=0)
    # On an empty delivery log (a lost notify database, or notify added beside a running balance): record
    # the alerts already in balance.signals without mailing them. Otherwise every one of them is mailed.
    notify_skip_history: bool = False
    # At most one email per lead, per member, per signal kind within this many days.
    notify_rate_limit_days: float = Field(default=7.0, ge=0)
    # The daily digest is planned from this hour (UTC) on, once a day per member at most.
    notify_digest_hour: int = Field(default=8, ge=0, le=23)
    # How often the sender looks for due deliveries when nobody wakes it.
    notify_poll_s: float = Field(default=1.0, gt=0)
