"""`reciprocity account set-password MEMBER [--password-stdin]`: give a member a web sign-in password.

The password goes to the web's own database (DATABASE_URL, as the web reads it), hashed with
Argon2id; it never enters the event log. Without --password-stdin the password is asked for twice on
the terminal, without echo. Only members the ledger knows get one (asked at LEDGER_URL with LEDGER_TOKEN
from the environment): a password for a mistyped id would be an account nobody is. Setting a password
signs the member out everywhere.
"""

from __future__ import annotations

import argparse
import getpass
import os
import sys

from reciprocity.cli import credentials
from reciprocity.common.service_client import ClientError
from reciprocity.ledger.client import LedgerClient
from reciprocity.web.accounts import set_password
from reciprocity.web.settings import WebSettings


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    account = subparsers.add_parser("account", help="web sign-in accounts", description=__doc__)
    actions = account.add_subparsers(dest="action", required=True, metavar="ACTION")
    setpw = actions.add_parser("set-password", help="set or replace a member's web password")
    setpw.add_argument("member", help="member id (as in the directory)")
    setpw.add_argument("--password-stdin", action="store_true",
                       help="read the password from the first line of standard input (for scripts)")
    setpw.add_argument("--database-url", default=None, help="default: DATABASE_URL, else sqlite:///var/web.db")
    setpw.add_argument("--ledger-url", default=os.environ.get("LEDGER_URL", "http://127.0.0.1:8001"),
                       help="where to check that the member exists; default: LEDGER_URL, else http://127.0.0.1:8001")
    setpw.set_defaults(func=set_password_command)


def set_password_command(args: argparse.Namespace) -> int:
    try:
        with LedgerClient.patient(args.ledger_url, credentials.token(args, "LEDGER_TOKEN"), patience_s=10) as ledger:
            known = ledger.member(args.member)
    except ClientError as err:
        print(f"Not set: cannot ask the ledger whether {args.member!r} is a member ({err}).", file=sys.stderr)
        return 1
    if known is None:
        print(f"Not set: the ledger knows no member {args.member!r}. Register or import them first.",
              file=sys.stderr)
        return 2
    if args.password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        password = getpass.getpass(f"New password for {args.member}: ")
        if getpass.getpass("Again: ") != password:
            print("The two passwords differ; nothing changed.", file=sys.stderr)
            return 2
    database_url = args.database_url or WebSettings().database_url
    try:
        set_password(database_url, args.member, password)
    except ValueError as err:
        print(f"Not set: {err}.", file=sys.stderr)
        return 2
    print(f"Password set for {args.member}.")
    return 0
