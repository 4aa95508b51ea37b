"""The one place that wires the web: its app in each server process (gunicorn forks HTTP_WORKERS of
them; sessions are signed cookies and accounts live in the database, so any worker serves any request),
and its tables (accounts, sessions, sign-in counters) migrated once, before they start."""

from __future__ import annotations

from reciprocity.common.service import ApiProcess, ServiceRoles

from .settings import WebSettings


def bootstrap(settings: WebSettings | None = None) -> ServiceRoles:
    settings = settings or WebSettings()

    def api() -> ApiProcess:
        from .app import create_app

        return ApiProcess(create_app(settings))

    def migrate() -> None:
        from .accounts import AccountStore

        AccountStore(settings.database_url).engine.dispose()

    return ServiceRoles("web", api=api, migrate=migrate)
