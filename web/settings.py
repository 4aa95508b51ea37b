"""Settings of the web front end: environment variables only, each with a local default."""

import logging

from pydantic import Field
from reciprocity.common.settings import ServiceSettings

log = logging.getLogger(__name__)

# Good enough on a laptop; never acceptable behind https (create_app refuses it there).
LOCAL_SECRET_KEY = "local-dev-secret-key-not-for-production"


class WebSettings(ServiceSettings):
    port: int = 8000
    ledger_url: str = "http://127.0.0.1:8001"
    balance_url: str = "http://127.0.0.1:8002"
    notify_url: str = "http://127.0.0.1:8003"
    database_url: str = "sqlite:///var/web.db"
    secret_key: str = LOCAL_SECRET_KEY
    web_base_url: str = "http://127.0.0.1:8000"
    # None: decide from WEB_BASE_URL (Secure cookies exactly when the site is served over https).
    web_secure_cookies: bool | None = None
    # Seconds a client waits for the ledger, balance or notify before the page says "try again".
    web_upstream_timeout_s: float = Field(default=5.0, gt=0)
    # Failed sign-ins allowed per client address, and per member id from one address, within the window below.
    web_login_attempts: int = Field(default=10, ge=1)
    web_login_window_s: int = Field(default=900, ge=1)

    @property
    def is_https(self) -> bool:
        return self.web_base_url.lower().startswith("https://")

    @property
    def secure_cookies(self) -> bool:
        return self.web_secure_cookies if self.web_secure_cookies is not None else self.is_https

    def check(self) -> None:
        """Warn about local defaults; refuse the ones that would be unsafe on a public site."""
        if self.secret_key == LOCAL_SECRET_KEY:
            if self.is_https:
                raise ValueError("SECRET_KEY must be set when WEB_BASE_URL is https (sessions would be forgeable)")
            log.warning("SECRET_KEY is not set: using the local development key (fine on this machine only)")
