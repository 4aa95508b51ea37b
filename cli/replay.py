"""`reciprocity replay balance`: rebuild the balance read models from offset 0 into a new generation
while the active one keeps serving, verify, then switch (see reciprocity.balance.replay)."""

from __future__ import annotations

import argparse
import sys

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, ProgressColumn, Task, TextColumn, TimeElapsedColumn
from rich.table import Table
from rich.text import Text


class _EventsPerSecond(ProgressColumn):
    def render(self, task: Task) -> Text:
        speed = task.finished_speed or task.speed
        return Text(f"{speed:,.0f} events/s" if speed else "- events/s", style="cyan")


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("replay", help="rebuild a projection from offset 0 (blue/green)",
                                   description=__doc__)
    parser.add_argument("projection", choices=["balance"], help="the projection to rebuild")
    parser.add_argument("--database-url", help="the projection's database (default: DATABASE_URL or local)")
    parser.add_argument("--batch-size", type=int, default=20000, help="events per transaction")
    parser.add_argument("--no-switch", action="store_true", help="build and verify, but keep the old one active")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from reciprocity.balance.db import make_engine, migrate
    from reciprocity.balance.replay import VerificationFailed, replay
    from reciprocity.balance.settings import BalanceSettings
    from reciprocity.messaging.event_log import BrokerUnavailable

    settings = BalanceSettings()
    console = Console(stderr=True)
    engine = make_engine(args.database_url or settings.database_url)
    migrate(engine)
    columns = [TextColumn("[bold]replay balance"), BarColumn(), MofNCompleteColumn(), _EventsPerSecond(),
               TimeElapsedColumn()]
    try:
        with Progress(*columns, console=console, disable=args.quiet, transient=False) as bar:
            task = bar.add_task("replay", total=None)

            def progress(done: int, total: int) -> None:
                bar.update(task, completed=done, total=total)

            result = replay(engine, settings.kafka_bootstrap_servers, topic_prefix=settings.topic_prefix,
                            batch_size=args.batch_size, progress=progress, switch=not args.no_switch)
    except VerificationFailed as err:
        console.print(f"[red]verification failed, nothing switched:[/red] {err}")
        return 2
    except BrokerUnavailable as err:
        console.print(f"[red]Kafka unreachable:[/red] {err}")
        return 3
    finally:
        engine.dispose()

    table = Table(title=f"generation {result.generation} verified", show_header=True)
    table.add_column("check")
    table.add_column("projected", justify="right")
    table.add_column("recount", justify="right")
    for name, (got, expected) in result.checks.items():
        table.add_row(name, f"{got:,}", f"{expected:,}")
    console.print(table)
    console.print(f"{result.events:,} events ({result.dead_letters} unreadable, skipped) in {result.seconds:.1f}s "
                  f"= {result.rate:,.0f} events/s")
    if args.no_switch:
        console.print(f"generation {result.generation} built; still serving the previous one (--no-switch)")
    else:
        console.print(f"[green]switched[/green]: generation {result.generation} is active; generation "
                      f"{result.retired} retired (kept until the next replay)")
    print(result.generation, file=sys.stdout)
    return 0
