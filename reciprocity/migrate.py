"""`python -m reciprocity.migrate`: every service's migrations, once, before any service starts.

compose.yaml runs it as a one-shot service the others wait for; each service's `bootstrap.py` says what
its migration is (balance and notify: alembic to head, under a lock on PostgreSQL; web: its accounts
table). Idempotent: a second run changes nothing. The ledger's state is the log; its key store, a database
of its own where only the ledger reaches it, is migrated by the ledger as it opens the store.
"""

from __future__ import annotations

import logging
import time

from sqlalchemy.exc import OperationalError

from reciprocity.balance.bootstrap import bootstrap as balance
from reciprocity.balance.settings import BalanceSettings
from reciprocity.common.service import setup_logging
from reciprocity.notify.bootstrap import bootstrap as notify
from reciprocity.notify.settings import NotifySettings
from reciprocity.web.bootstrap import bootstrap as web
from reciprocity.web.settings import WebSettings

log = logging.getLogger("reciprocity.migrate")


def main(wait_s: float = 120.0) -> None:
    setup_logging("migrate")
    for roles in (balance(BalanceSettings()), notify(NotifySettings()), web(WebSettings())):
        began = time.monotonic()
        while True:
            try:
                roles.migrate()
                break
            except OperationalError as err:  # the database is not accepting connections yet
                if time.monotonic() - began > wait_s:
                    raise
                log.warning("%s: database not reachable yet (%s); retrying", roles.name, str(err).splitlines()[0])
                time.sleep(2.0)
        log.info("%s: schema up to date (%.1fs)", roles.name, time.monotonic() - began)


if __name__ == "__main__":
    main()
