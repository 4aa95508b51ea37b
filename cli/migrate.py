"""`reciprocity migrate-sealing copy|verify|rewind-notify|delete-source --to-prefix NEW`: take the clear
personal values of a log written before sealing out of Kafka, without rewriting a topic in place.

Run where the ledger's key store is (LEDGER_KEYS_DATABASE_URL, LEDGER_KEYS_SECRET), with the ledger
stopped, under the current TOPIC_PREFIX. The steps, in order (README "Forgetting a member"):

  copy           seal every event into the same topics under the prefix NEW
  verify         check every copy opens to its original's values and no clear text is left
  (switch)       TOPIC_PREFIX=NEW reciprocity replay balance; TOPIC_PREFIX=NEW reciprocity migrate-sealing
                 rewind-notify; then start every service with TOPIC_PREFIX=NEW
  delete-source  verify again, then delete the old topics (irreversible)
"""

from __future__ import annotations

import argparse
import sys


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    migrate = subparsers.add_parser("migrate-sealing", help="seal a log written before sealing (one time)",
                                    description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    migrate.add_argument("step", choices=("copy", "verify", "rewind-notify", "delete-source"))
    migrate.add_argument("--to-prefix", default=None, help="the new topic prefix (copy, verify, delete-source)")
    migrate.add_argument("--confirm", action="store_true", help="delete-source: yes, delete the old topics")
    migrate.add_argument("--notify-database-url", default=None,
                         help="rewind-notify: notify's database (default: NOTIFY_DATABASE_URL, else DATABASE_URL)")
    migrate.set_defaults(func=migrate_command)


def migrate_command(args: argparse.Namespace) -> int:
    if args.step == "rewind-notify":
        return _rewind_notify(args)
    from reciprocity.ledger import keystore
    from reciprocity.ledger.migrate_sealing import MigrationFailed, copy, delete_source, verify
    from reciprocity.ledger.settings import LedgerSettings

    if not args.to_prefix:
        print(f"{args.step} needs --to-prefix NEW (a prefix the current topics do not have).", file=sys.stderr)
        return 2
    settings = LedgerSettings()
    settings.refuse_local_secrets("LEDGER_KEYS_SECRET")
    keys = keystore.KeyStore(keystore.make_engine(settings.ledger_keys_database_url), settings.ledger_keys_secret)
    where = {"source_prefix": settings.topic_prefix, "target_prefix": args.to_prefix}
    try:
        if args.step == "copy":
            report = copy(settings.kafka_bootstrap_servers, keys, **where)
            print("\n".join(report.lines()))
        elif args.step == "verify":
            checked = verify(settings.kafka_bootstrap_servers, keys, **where)
            print("verified: " + ", ".join(f"{t} {n}" for t, n in sorted(checked.items())))
        else:
            if not args.confirm:
                print("delete-source deletes the old topics for good: add --confirm.", file=sys.stderr)
                return 2
            deleted = delete_source(settings.kafka_bootstrap_servers, keys, **where)
            print("deleted: " + ", ".join(deleted))
    except MigrationFailed as err:
        print(f"migration stopped: {err}", file=sys.stderr)
        return 1
    finally:
        keys.engine.dispose()
    return 0


def _rewind_notify(args: argparse.Namespace) -> int:
    import os

    from reciprocity.common.db import make_engine
    from reciprocity.notify import store
    from reciprocity.notify.settings import NotifySettings

    url = args.notify_database_url or os.environ.get("NOTIFY_DATABASE_URL") or NotifySettings().database_url
    engine = make_engine(url)
    try:
        store.migrate(engine)
        # Alerts are keyed by event id: reading the copied signals again mails nobody twice.
        rewound = store.rewind_offsets(engine)
    finally:
        engine.dispose()
    print(f"notify will read its topics from the start: {rewound} stored offset(s) dropped")
    return 0
