"""`reciprocity dlq list [TOPIC]` and `reciprocity dlq redrive TOPIC (--offset N | --all)`.

Dead letters are records a consumer parked (reciprocity.messaging.poison): records it could not read as
any known contract (bad JSON, unknown type, schema violation), and valid events whose projection
failed on their own (a value the code or the database cannot take). They sit in `<topic>.dlq` with
headers naming the source topic, partition, offset, the error and the consumer that parked them.

Redrive re-appends a dead letter's original key and bytes to its source topic, after the contract
was fixed (an upcaster added, a consumer upgraded), so every projection reads it again in order with
whatever comes next. This is the one documented exception to "only the ledger writes ledger.*": the
bytes are the ledger's own, unchanged (same event id). A marker record in the DLQ remembers each
redrive, so a dead letter is redriven once; `list` shows where it went.
"""

from __future__ import annotations

import argparse
import json
import sys

from reciprocity.balance.dead_letters import REDRIVE_OF, REDRIVE_TO, dlq_names, read_dead_letters
from reciprocity.contracts.topics import TOPIC_SPECS
from rich.console import Console
from rich.table import Table
from rich.text import Text

# The exit status of a command line the operator got wrong (argparse's own, and the other commands').
USAGE_ERROR = 2


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser("dlq", help="list and redrive dead letters", description=__doc__,
                                   formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="dlq_command", required=True)
    ls = sub.add_parser("list", help="dead letters of one topic (or all)")
    ls.add_argument("topic", nargs="?", help="source topic (ledger.exchanges) or its DLQ; default: all")
    ls.add_argument("--json", action="store_true")
    ls.set_defaults(func=run_list)
    rd = sub.add_parser("redrive", help="re-append dead letters to their source topic")
    rd.add_argument("topic", help="source topic (ledger.exchanges) or its DLQ")
    which = rd.add_mutually_exclusive_group(required=True)
    which.add_argument("--offset", type=int, action="append", help="DLQ offset to redrive (repeatable)")
    which.add_argument("--all", action="store_true", help="every dead letter not yet redriven")
    rd.set_defaults(func=run_redrive)


def _refuse_unknown(topic: str | None) -> bool:
    """Say in one line why `topic` names no DLQ; False for a source topic, its DLQ, or None (all of them)."""
    if topic is None or topic.removesuffix(".dlq") in TOPIC_SPECS:
        return False
    print(f"reciprocity dlq: unknown topic {topic!r}; known topics: {', '.join(TOPIC_SPECS)} "
          "(or their DLQs, the same name ending in .dlq)", file=sys.stderr)
    return True


def _unreadable(err: Exception) -> int:
    print(f"reciprocity dlq: cannot read the dead letters: {err}", file=sys.stderr)
    return 1


def run_list(args: argparse.Namespace) -> int:
    from reciprocity.common.settings import ServiceSettings
    from reciprocity.messaging.event_log import BrokerUnavailable  # imports kafka: only when reading

    if _refuse_unknown(args.topic):
        return USAGE_ERROR
    s = ServiceSettings()
    try:
        letters = read_dead_letters(s.kafka_bootstrap_servers, s.topic_prefix, dlq_names(args.topic))
    except BrokerUnavailable as err:
        return _unreadable(err)
    if args.json:
        print(json.dumps([d.as_dict() for d in letters], indent=2))
        return 0
    table = Table("dlq", "offset", "source", "key", "parked by", "error", "redriven to",
                  title=f"{len(letters)} dead letter(s)")
    for d in letters:
        x = d.as_dict()
        table.add_row(d.dlq, str(d.offset), f"{x['source_topic']}[{x['source_partition']}]@{x['source_offset']}",
                      x["key"] or "", x["consumer"] or "", Text((x["error"] or "")[:120]), d.redriven_to or "")
    Console().print(table)
    return 0


def run_redrive(args: argparse.Namespace) -> int:
    from reciprocity.common.settings import ServiceSettings
    from reciprocity.messaging.event_log import BrokerUnavailable, EventLog, Outgoing

    if _refuse_unknown(args.topic):
        return USAGE_ERROR
    s = ServiceSettings()
    (dlq,) = dlq_names(args.topic)
    try:
        letters = read_dead_letters(s.kafka_bootstrap_servers, s.topic_prefix, [dlq])
    except BrokerUnavailable as err:
        return _unreadable(err)
    chosen = letters if args.all else [d for d in letters if d.offset in set(args.offset)]
    missing = set() if args.all else set(args.offset) - {d.offset for d in chosen}
    console = Console(stderr=True)
    if missing:
        console.print(f"[red]no dead letter at offset(s) {sorted(missing)} of {dlq}[/red]")
        return 2
    log = EventLog(s.kafka_bootstrap_servers, client_id="reciprocity-dlq-redrive", topic_prefix=s.topic_prefix)
    redriven = 0
    try:
        for d in chosen:
            if d.redriven_to:
                console.print(f"{dlq}@{d.offset} already redriven to {d.redriven_to}: skipped")
                continue
            headers = (("dlq.redriven.from", f"{dlq}@{d.offset}".encode()),)
            (pos,) = log.append([Outgoing(topic=d.source, key=d.key, value=d.value, headers=headers)])
            where = f"{pos.topic}[{pos.partition}]@{pos.offset}"
            log.append([Outgoing(topic=dlq, key=d.key, value=b"",
                                 headers=((REDRIVE_OF, str(d.offset).encode()), (REDRIVE_TO, where.encode())))])
            console.print(f"{dlq}@{d.offset} -> {where}")
            redriven += 1
    finally:
        log.close()
    print(redriven)
    return 0
