"""The service tokens a command presents: from the environment, or from standard input with
--token-stdin (for a secret store piping it in). Never from the command line, where `ps` and the
shell history would show it to everyone on the machine."""

from __future__ import annotations

import argparse
import sys

from reciprocity.common.settings import ServiceSettings


def add_token_argument(parser: argparse.ArgumentParser, variable: str) -> None:
    # No abbreviations: `--token SECRET` must be refused, not read as --token-stdin plus a stray word.
    parser.allow_abbrev = False
    parser.add_argument("--token-stdin", action="store_true",
                        help=f"read the bearer token from the first line of standard input (default: {variable})")


def token(args: argparse.Namespace, variable: str) -> str:
    """The token for `variable` (LEDGER_TOKEN, BALANCE_TOKEN, NOTIFY_TOKEN). Outside development an
    empty or local-default token stops the command with one line saying so."""
    if getattr(args, "token_stdin", False):
        given = sys.stdin.readline().strip()
        if not given:
            raise SystemExit(f"--token-stdin: no {variable} on standard input")
        return given
    settings = ServiceSettings()
    settings.refuse_local_secrets(variable)
    return str(getattr(settings, variable.lower()))
