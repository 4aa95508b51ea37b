"""`reciprocity status`: every topic's partitions and end offsets, each projection's position and lag
(balance from its database, active and building generations; notify from its database when
reachable), replays in progress or failed, partitions a running consumer stopped and why (from the
services' /health, at BALANCE_URL and NOTIFY_URL), and the records parked in the DLQs with the reason.

Exits 1 when something is stopped (a partition a consumer stopped, Kafka out of reach), else 0: parked
records and a failed replay are listed, and are no reason to page anyone at night by themselves."""

from __future__ import annotations

import argparse
import json
import os
from typing import Any

import sqlalchemy as sa
from rich.console import Console
from rich.table import Table
from rich.text import Text

# The processes that say what they stopped and parked on /health: the APIs, and each consumer's probe
# (HEALTH_PORT; the Procfile's ports).
DEFAULT_PROBES = {"balance": "http://127.0.0.1:8002", "balance-projector": "http://127.0.0.1:8012",
                  "notify": "http://127.0.0.1:8003", "notify-sender": "http://127.0.0.1:8013"}


def probes(given: list[str] | None) -> dict[str, str]:
    """NAME=URL pairs from --probe, else from STATUS_PROBES, else the local stack's."""
    pairs = given or [p for p in os.environ.get("STATUS_PROBES", "").split(",") if p.strip()]
    if not pairs:
        return dict(DEFAULT_PROBES)
    found = {}
    for pair in pairs:
        name, sep, url = pair.partition("=")
        if not sep or not name.strip() or not url.strip():
            raise SystemExit(f"reciprocity status: a probe is NAME=URL, got {pair!r}")
        found[name.strip()] = url.strip()
    return found


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser("status", help="topics, end offsets, projection positions and lag",
                                   description=__doc__)
    parser.add_argument("--database-url", help="balance database (default: DATABASE_URL or local)")
    parser.add_argument("--notify-database-url", help="notify database (default: notify's local one)")
    parser.add_argument("--json", action="store_true", help="machine-readable output")
    parser.add_argument("--probe", action="append", metavar="NAME=URL",
                        help="a process whose /health to read (repeatable; default: STATUS_PROBES, a comma-"
                             "separated list of NAME=URL, or the local stack's: " + ", ".join(
                                 f"{n}={u}" for n, u in DEFAULT_PROBES.items()) + ")")
    parser.set_defaults(func=run)


def collect(bootstrap: str, prefix: str, balance_url: str, notify_url: str | None,
            services: dict[str, str] | None = None) -> dict[str, Any]:
    from reciprocity.balance.db import make_engine
    from reciprocity.balance.generations import list_generations, replay_generations, replay_running
    from reciprocity.balance.queries import partition_status, stored_offsets
    from reciprocity.contracts.topics import BALANCE_READS, DIRECTORY, SIGNALS, TOPIC_SPECS
    from reciprocity.messaging.event_log import BrokerUnavailable
    from reciprocity.messaging.inspect import end_offsets

    report: dict[str, Any] = {"kafka": bootstrap, "topic_prefix": prefix, "topics": [], "projections": [],
                              "replays": [], "services": [], "stopped": [], "dead_letters": []}
    logical = [name for spec in TOPIC_SPECS.values() for name in (spec.name, spec.dlq)]
    ends: dict[tuple[str, int], int] | None
    try:
        ends = end_offsets(bootstrap, logical, topic_prefix=prefix)
        report["kafka_error"] = None
    except BrokerUnavailable as err:
        ends, report["kafka_error"] = None, str(err)
    for name in logical:
        topic_ends = sorted((p, off) for (t, p), off in (ends or {}).items() if t == name)
        report["topics"].append({"topic": name, "partitions": len(topic_ends),
                                 "end_offsets": [o for _, o in topic_ends], "records": sum(o for _, o in topic_ends)})

    source_ends = {k: v for k, v in (ends or {}).items() if k[0] in BALANCE_READS} if ends is not None else None
    try:
        engine = make_engine(balance_url, immediate=False)
        with engine.connect() as conn:
            building, failed = replay_generations(conn, running=replay_running(engine))
            for replay in (building, failed):
                if replay is not None:
                    report["replays"].append({"generation": replay["id"], "status": replay["status"],
                                              "interrupted": replay.get("interrupted", False),
                                              "started_at": str(replay["created_at"])})
            for gen in list_generations(conn):
                if gen["status"] != "active" and (building is None or gen["id"] != building["id"]):
                    continue
                parts = partition_status(stored_offsets(conn, gen["id"]), source_ends)
                report["projections"].append({
                    "projection": f"balance (generation {gen['id']}, {gen['status']})", "database": _safe(balance_url),
                    "partitions": parts, "lag": _lag(parts),
                })  # fmt: skip
        engine.dispose()
    except Exception as err:
        report["projections"].append({"projection": "balance", "database": _safe(balance_url), "error": str(err)})

    if notify_url:
        # Not all of NOTIFY_READS: the lag shown for notify leaves out ledger.exchanges (read for the daily
        # digest) as it always has; see the issue 16 report.
        signal_ends = {k: v for k, v in (ends or {}).items() if k[0] in (SIGNALS.name, DIRECTORY.name)}
        try:
            from reciprocity.common.db import make_engine as notify_engine
            from reciprocity.notify.store import positions as notify_positions

            engine = notify_engine(notify_url, immediate=False)
            with engine.connect() as conn:
                positions = notify_positions.read(conn)
            engine.dispose()
            stored = {key: (p.next_offset, None) for key, p in positions.items()}
            # notify stores only its next offsets, no time of the last event: no "last event" for it.
            parts = [{k: v for k, v in part.items() if k != "last_event_at"}
                     for part in partition_status(stored, signal_ends if ends is not None else None)]
            report["projections"].append({"projection": "notify", "database": _safe(notify_url), "partitions": parts,
                                          "lag": _lag(parts)})
        except Exception as err:
            report["projections"].append({"projection": "notify", "database": _safe(notify_url),
                                          "error": f"not readable: {err.__class__.__name__}"})
    for service, url in (services or {}).items():
        report["services"].append(entry := _service_health(service, url))
        for label, why in (entry.get("stopped_partitions") or {}).items():
            report["stopped"].append({"service": service, "partition": label, "reason": why})
    if ends is not None:
        try:
            from reciprocity.balance.dead_letters import all_dlqs, read_dead_letters

            report["dead_letters"] = [d.public() for d in read_dead_letters(bootstrap, prefix, all_dlqs())
                                      if d.redriven_to is None]
        except BrokerUnavailable as err:
            report["dead_letters_error"] = str(err)
    return report


def _service_health(service: str, url: str) -> dict[str, Any]:
    """What a running service says of itself: its checks, stopped partitions and parked count."""
    import requests

    entry: dict[str, Any] = {"service": service, "url": url}
    try:
        answer = requests.get(url.rstrip("/") + "/health", timeout=3)
        body = answer.json()
    except (requests.RequestException, ValueError) as err:
        entry["error"] = f"not reachable: {err.__class__.__name__}"
        return entry
    consumer = body.get("consumer") or {}
    entry.update(status=answer.status_code, checks=body.get("checks") or {},
                 stopped_partitions=consumer.get("stopped_partitions") or {},
                 parked_since_start=consumer.get("parked_since_start"))
    return entry


def _lag(parts: list[dict[str, Any]]) -> int | None:
    lags = [p["lag"] for p in parts]
    return None if any(v is None for v in lags) else sum(lags)


def _safe(url: str) -> str:
    return sa.engine.make_url(url).render_as_string(hide_password=True)


def run(args: argparse.Namespace) -> int:
    from reciprocity.balance.settings import BalanceSettings

    settings = BalanceSettings()
    notify_url = args.notify_database_url
    if notify_url is None:
        try:
            from reciprocity.notify.settings import NotifySettings

            notify_url = NotifySettings().database_url
        except Exception:
            notify_url = None
    services = probes(args.probe)
    report = collect(settings.kafka_bootstrap_servers, settings.topic_prefix,
                     args.database_url or settings.database_url, notify_url, services)
    failing = report["kafka_error"] is not None or bool(report["stopped"])
    if args.json:
        print(json.dumps(report, indent=2, default=str))
        return 1 if failing else 0
    console = Console()
    console.print(f"Kafka [bold]{report['kafka']}[/bold]" + (f" prefix {report['topic_prefix']!r}"
                                                             if report["topic_prefix"] else ""))
    if report["kafka_error"]:
        console.print(f"[red]unreachable:[/red] {report['kafka_error']}")
    topics = Table("topic", "partitions", "end offsets", "records", title="topics")
    for t in report["topics"]:
        topics.add_row(t["topic"], str(t["partitions"]), " ".join(map(str, t["end_offsets"])), f"{t['records']:,}")
    console.print(topics)
    for p in report["projections"]:
        if "error" in p:
            console.print(f"[yellow]{p['projection']}[/yellow] ({p['database']}): {p['error']}")
            continue
        # Only a projection that records when its last event happened (balance) gets that column.
        timed = any("last_event_at" in part for part in p["partitions"])
        table = Table("topic", "partition", "applied", "end", "lag", *(["last event"] if timed else []),
                      title=f"{p['projection']} — lag {p['lag'] if p['lag'] is not None else '?'}")
        for part in p["partitions"]:
            table.add_row(part["topic"], str(part["partition"]), str(part["applied_offset"]),
                          "?" if part["end_offset"] is None else str(part["end_offset"]),
                          "?" if part["lag"] is None else str(part["lag"]),
                          *([part.get("last_event_at") or ""] if timed else []))
        console.print(table)
    for r in report["replays"]:
        if r["status"] == "failed":
            how = "was interrupted (its process ended)" if r["interrupted"] else "failed"
            console.print(f"[red]replay {how}[/red]: generation {r['generation']} (started {r['started_at']}) is "
                          "not used; the active generation serves on. Run `reciprocity replay balance` again.",
                          soft_wrap=True)
        elif r["status"] == "built":
            console.print(f"[cyan]replay built[/cyan] generation {r['generation']} (--no-switch, started "
                          f"{r['started_at']}); the active generation serves on", soft_wrap=True)
        else:
            console.print(f"[cyan]replay in progress[/cyan]: generation {r['generation']} building since "
                          f"{r['started_at']}", soft_wrap=True)
    for service in report["services"]:
        if "error" in service:
            console.print(f"[yellow]{service['service']}[/yellow] at {service['url']}: {service['error']}")
    for stop in report["stopped"]:
        console.print(Text.assemble(("stopped ", "bold red"),
                                    f"{stop['service']} {stop['partition']}: {stop['reason']}"), soft_wrap=True)
    if report["dead_letters"]:
        parked = Table("dlq", "offset", "source", "error", title=f"{len(report['dead_letters'])} parked record(s)")
        for d in report["dead_letters"]:
            parked.add_row(d["topic"], str(d["offset"]),
                           f"{d['source_topic']}[{d['source_partition']}]@{d['source_offset']}",
                           Text((d["error"] or "")[:200]))
        console.print(parked)
    elif "dead_letters_error" in report:
        console.print(f"[yellow]dead letters not readable:[/yellow] {report['dead_letters_error']}")
    return 1 if failing else 0
