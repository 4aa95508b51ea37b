"""`reciprocity forget MEMBER --by OPERATOR`: forget a member for good (the right to erasure).

The ledger destroys the member's key, so every name, email, note, thanks and dispute reason of or
about them in the log becomes unreadable at once, without rewriting it, and appends MemberForgotten;
balance and notify blank what they hold as they read it (seconds). This command also removes the
member's web sign-in (the web's DATABASE_URL, as `account set-password` uses it). Their exchanges
still count in everyone's measures, shown as "a former member". It cannot be undone.

Asks for the member's id again before anything happens (or `--confirm MEMBER` for scripts). What it
cannot recall: emails already delivered, and backups taken before (README "Forgetting a member").
"""

from __future__ import annotations

import argparse
import sys

from reciprocity.cli.credentials import add_token_argument, token
from reciprocity.common.service_client import ClientError, segment
from reciprocity.ledger.client import LedgerClient
from reciprocity.web.accounts import store
from reciprocity.web.settings import WebSettings


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    forget = subparsers.add_parser("forget", help="forget a member for good (right to erasure)",
                                   description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    forget.add_argument("member", help="the id of the member to forget")
    forget.add_argument("--by", required=True, help="your own member id: an operator's (recorded, with the time)")
    forget.add_argument("--confirm", default=None, metavar="MEMBER",
                        help="the member's id again, instead of typing it when asked (for scripts)")
    forget.add_argument("--database-url", default=None,
                        help="the web's database, for the sign-in (default: DATABASE_URL, else sqlite:///var/web.db)")
    add_token_argument(forget, "LEDGER_TOKEN")
    forget.set_defaults(func=forget_command)


def forget_command(args: argparse.Namespace) -> int:
    settings = WebSettings()
    confirm = args.confirm
    if confirm is None and args.token_stdin:
        print("Not forgotten: with --token-stdin, confirm with --confirm MEMBER.", file=sys.stderr)
        return 2
    if confirm is None:
        if not sys.stdin.isatty():
            print("Not forgotten: confirm with --confirm MEMBER, or run this on a terminal.", file=sys.stderr)
            return 2
        print(f"This forgets {args.member} for good: their name, email and every note, thanks and reason "
              "of or about them become unreadable everywhere; it cannot be undone.", file=sys.stderr)
        confirm = input(f"Type {args.member} to confirm: ").strip()
    if confirm != args.member:
        print("Not forgotten: the confirmation does not match the member id.", file=sys.stderr)
        return 2
    path = f"/v1/members/{segment(args.member)}/forget"
    try:
        with LedgerClient.patient(settings.ledger_url, token(args, "LEDGER_TOKEN")) as client:
            # One key per member: a retry (or running it again) is answered, never appended twice.
            answer = client.command("POST", path, {"by": args.by, "confirm": confirm}, key=f"forget:{args.member}")
    except ClientError as err:
        print(f"Not forgotten: {err}", file=sys.stderr)
        return 1
    removed = store(args.database_url or settings.database_url).remove(args.member)
    already = answer.status == 200 or answer.replayed
    print(("Forgotten before; " if already else "Forgotten: the key is destroyed; ")
          + ("web sign-in removed." if removed else "no web sign-in to remove.")
          + " Balance and notify blank what they hold as they read the event.")
    return 0
