"""Settings of the web front end: environment variables only, each with a local default."""

import logging

from pydantic import Field
from reciprocity.common.settings import LOCAL_SECRETS, ServiceSettings

log = logging.getLogger(__name__)

# Good enough on a laptop; refused outside development, and behind https even there.
LOCAL_SECRET_KEY = LOCAL_SECRETS["SECRET_KEY"]


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
    # Seconds a web process remembers the directory's answers (web/directory.py); 0: ask every time.
    web_directory_cache_s: float = Field(default=2.0, ge=0, le=60)
    # Sign-in throttling (web/throttle.py): per account, this many failures are free, then each further
    # one doubles the wait before the next attempt (1 s, 2 s, ...) up to WEB_LOGIN_MAX_DELAY_S; per
    # client address, at most WEB_LOGIN_ATTEMPTS failures (any accounts) per WEB_LOGIN_WINDOW_S.
    web_login_free_failures: int = Field(default=5, ge=1)
    web_login_max_delay_s: int = Field(default=900, ge=1)
    web_login_attempts: int = Field(default=50, ge=1)
    web_login_window_s: int = Field(default=900, ge=1)
    # Addresses or networks of reverse proxies whose X-Forwarded-For is believed (comma-separated).
    web_trusted_proxies: str = ""
    # A session ends after this long unused (idle), and this long after sign-in however used (absolute).
    web_session_idle_s: int = Field(default=14 * 24 * 3600, ge=60)
    web_session_max_s: int = Field(default=30 * 24 * 3600, ge=60)

    @property
    def is_https(self) -> bool:
        return self.web_base_url.lower().startswith("https://")

    @property
    def secure_cookies(self) -> bool:
        return self.web_secure_cookies if self.web_secure_cookies is not None else self.is_https

    def check(self) -> None:
        """Refuse local secrets outside development; in development, refuse the local key behind https
        (sessions would be forgeable) and warn about it otherwise."""
        self.refuse_local_secrets("SECRET_KEY", "LEDGER_TOKEN", "BALANCE_TOKEN", "NOTIFY_TOKEN")
        if self.secret_key == LOCAL_SECRET_KEY:
            if self.is_https:
                raise ValueError("SECRET_KEY must be set when WEB_BASE_URL is https (sessions would be forgeable)")
            log.warning("SECRET_KEY is not set: using the local development key (fine on this machine only)")
