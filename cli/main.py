"""`reciprocity`: the operator's command line. Each subcommand lives in its own module of this
package and registers itself through `register(subparsers)`."""

import argparse
import importlib
import os
import sys
from collections.abc import Sequence

# Module names under reciprocity.cli; each defines register(subparsers) and sets `func` on its parser.
SIGPIPE_STATUS = 128 + 13  # what a shell reports for a command ended by SIGPIPE

SUBCOMMAND_MODULES = ("seed", "roster", "replay", "status", "dlq", "export", "accounts", "forget", "migrate")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="reciprocity",
        description="Operate Reciprocity: seed or import the directory, rebuild projections, watch lag, "
        "re-drive dead letters, export data, manage web sign-ins.",
    )
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in SUBCOMMAND_MODULES:
        importlib.import_module(f"reciprocity.cli.{name}").register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except BrokenPipeError:
        # The reader went away (`reciprocity export exchanges --csv | head -2`): what it wanted it has.
        # Python would print a traceback, and another one when it flushes stdout at exit; point stdout
        # at /dev/null so the flush is quiet, and exit as a command killed by SIGPIPE does.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return SIGPIPE_STATUS


if __name__ == "__main__":
    sys.exit(main())
