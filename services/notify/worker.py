"""`python -m reciprocity.notify.worker sender`: notify's consumer and sender in this process (see
bootstrap.py), with its probe on HEALTH_PORT."""

from reciprocity.common.service import worker_main

from .bootstrap import bootstrap
from .settings import NotifySettings


def main() -> None:
    settings = NotifySettings()
    settings.refuse_local_secrets("LEDGER_KEYS_TOKEN")  # the consumer opens sealed names and addresses
    worker_main(bootstrap(settings), settings)


if __name__ == "__main__":
    main()
