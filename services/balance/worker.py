"""`python -m reciprocity.balance.worker projector|sweep`: one of balance's worker roles in this process
(see bootstrap.py), with its probe on HEALTH_PORT."""

from reciprocity.common.service import worker_main

from .bootstrap import bootstrap
from .settings import BalanceSettings


def main() -> None:
    settings = BalanceSettings()
    settings.refuse_local_secrets("LEDGER_KEYS_TOKEN")  # the projector opens sealed values with member keys
    worker_main(bootstrap(settings), settings)


if __name__ == "__main__":
    main()
