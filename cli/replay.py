"""`reciprocity replay balance`: rebuild the balance read models from offset 0 into a new generation
while the active one keeps serving, verify, then switch (see reciprocity.balance.replay)."""

from __future__ import annotations

import argparse
import signal
import sys
from types import FrameType

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, ProgressColumn, Task, TextColumn, TimeElapsedColumn
from rich.table import Table
from rich.text import Text


class _EventsPerSecond(ProgressColumn):
    def render(self, task: Task) -> Text:
        speed = task.finished_speed or task.speed
        return Text(f"{speed:,.0f} events/s" if speed else "- events/s", style="cyan")


def _failed(why: str, status: int) -> int:
    """One plain line on stderr (no markup to misread brackets in, no wrapping), and the exit status."""
    print(f"reciprocity replay: failed: {' '.join(why.split())}", file=sys.stderr, flush=True)
    return status


def _interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser("replay", help="rebuild a projection from offset 0 (blue/green)",
                                   description=__doc__)
    parser.add_argument("projection", choices=["balance"], help="the projection to rebuild")
    parser.add_argument("--database-url", help="the projection's database (default: DATABASE_URL or local)")
    parser.add_argument("--batch-size", type=int, default=20000, help="records per transaction")
    parser.add_argument("--no-switch", action="store_true", help="build and verify, but keep the old one active")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Exits 0 when the new generation is built, verified (and switched); otherwise prints one line
    naming the cause, with no traceback: 2 verification failed, 3 Kafka unreachable, 1 anything else
    (the database, an interrupt: 130). On failure the unfinished generation is dropped and marked
    failed, and the active one keeps serving."""
    from reciprocity.balance.db import make_engine, migrate
    from reciprocity.balance.replay import VerificationFailed, replay
    from reciprocity.balance.settings import BalanceSettings
    from reciprocity.common.sealing import projection_opener
    from reciprocity.messaging.event_log import BrokerUnavailable
    from reciprocity.messaging.poison import describe_failure

    settings = BalanceSettings()
    console = Console(stderr=True)
    columns = [TextColumn("[bold]replay balance"), BarColumn(), MofNCompleteColumn(), _EventsPerSecond(),
               TimeElapsedColumn()]
    kept = "nothing switched; the active generation serves on"
    previous = signal.signal(signal.SIGTERM, _interrupt)  # a stop from outside also ends in one line
    engine = None
    try:
        engine = make_engine(args.database_url or settings.database_url)
        migrate(engine)
        # Transient: the bar is gone at the end, so a failure is one line (the result table says the rest).
        with Progress(*columns, console=console, disable=args.quiet, transient=True) as bar:
            task = bar.add_task("replay", total=None)

            def progress(done: int, total: int) -> None:
                bar.update(task, completed=done, total=total)

            result = replay(engine, settings.kafka_bootstrap_servers, topic_prefix=settings.topic_prefix,
                            batch_size=args.batch_size, progress=progress, switch=not args.no_switch,
                            opener=projection_opener(settings))
    except VerificationFailed as err:
        return _failed(f"verification failed ({err}); {kept}", 2)
    except BrokerUnavailable as err:
        return _failed(f"Kafka unreachable ({err}); {kept}", 3)
    except KeyboardInterrupt:
        return _failed(f"interrupted; {kept}", 130)
    except Exception as err:
        return _failed(f"{describe_failure(err)}; {kept}", 1)
    finally:
        signal.signal(signal.SIGTERM, previous)
        if engine is not None:
            engine.dispose()

    table = Table(title=f"generation {result.generation} verified", show_header=True)
    table.add_column("check")
    table.add_column("projected", justify="right")
    table.add_column("recount", justify="right")
    for name, (got, expected) in result.checks.items():
        table.add_row(name, f"{got:,}", f"{expected:,}")
    console.print(table)
    console.print(f"{result.events:,} events ({result.dead_letters} parked in the DLQs, left out) in "
                  f"{result.seconds:.1f}s = {result.rate:,.0f} events/s")
    if args.no_switch:
        console.print(f"generation {result.generation} built; still serving the previous one (--no-switch)")
    else:
        console.print(f"[green]switched[/green]: generation {result.generation} is active; generation "
                      f"{result.retired} retired (kept until the next replay)")
    print(result.generation, file=sys.stdout)
    return 0
