"""The one place that wires the ledger: its API, with the loader that keeps its write-side state, in
exactly one server process (it is the single writer; see LedgerSettings.http_workers)."""

from __future__ import annotations

from reciprocity.common.service import ApiProcess, ServiceRoles

from .settings import LedgerSettings


def bootstrap(settings: LedgerSettings | None = None) -> ServiceRoles:
    settings = settings or LedgerSettings()

    def api() -> ApiProcess:
        from .app import create_app, keep_loaded, ledger_of

        app = create_app(settings)
        return ApiProcess(app, threads=[("ledger-loader", keep_loaded(app, settings))],
                          close=ledger_of(app).event_log.close)

    return ServiceRoles("ledger", api=api)
