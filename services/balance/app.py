"""The balance service: the read API (port 8002), and the BalanceService its worker roles run.

`python -m reciprocity.balance.app` serves the read API under gunicorn; the projector (the
ProjectionConsumer over ledger.directory + ledger.exchanges, with the evaluation of the members it
touched) and the scheduled sweep run as processes of their own (`python -m reciprocity.balance.worker
projector|sweep`); bootstrap.py wires all three. `create_app(...)` builds the read API alone.
"""

from __future__ import annotations

import logging
import re
import sys
import threading
import time
from collections.abc import Callable
from datetime import date
from typing import Any

import sqlalchemy as sa
from flask import Flask, Response, jsonify, request
from reciprocity.common.auth import require_bearer_token
from reciprocity.common.sealing import projection_opener
from reciprocity.common.service import add_metrics_route, health_response, serve_api
from reciprocity.contracts.envelope import ContractError, decode
from reciprocity.contracts.topics import DIRECTORY, EXCHANGES, SIGNALS, all_topics
from reciprocity.messaging.consumer import ConsumerHealth, PartitionKey, ProjectionConsumer
from reciprocity.messaging.event_log import BrokerUnavailable, EventLog
from reciprocity.messaging.inspect import end_offsets, read_all
from reciprocity.messaging.topics_admin import ensure_topics
from sqlalchemy.engine import Engine

from . import metrics, queries
from . import tables as t
from .db import make_engine, migrate
from .dead_letters import DeadLetter, all_dlqs, dlq_names, read_dead_letters
from .generations import active_generation, replay_generations, replay_running
from .projection import BalanceProjection
from .settings import BalanceSettings
from .signals import OutboxPublisher, SignalEngine, restore_from_log

log = logging.getLogger(__name__)

SOURCE_TOPICS = (DIRECTORY.name, EXCHANGES.name)
STATUSES = ("recorded", "acknowledged", "disputed", "withdrawn")
_WINDOW = re.compile(r"^(\d{1,4})d?$")
MAX_WINDOW_DAYS = 730


class BadRequest(ValueError):
    pass


def parse_window(raw: str | None, default: int = 28) -> int:
    if raw is None or raw == "":
        return default
    match = _WINDOW.match(raw.strip())
    if not match or not 1 <= int(match.group(1)) <= MAX_WINDOW_DAYS:
        raise BadRequest(f"window must look like 28d (1 to {MAX_WINDOW_DAYS} days), got {raw!r}")
    return int(match.group(1))


def _int_arg(name: str, default: int, low: int, high: int) -> int:
    raw = request.args.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise BadRequest(f"{name} must be an integer, got {raw!r}") from None
    if not low <= value <= high:
        raise BadRequest(f"{name} must be between {low} and {high}")
    return value


def _date_arg(name: str) -> date | None:
    raw = request.args.get(name)
    if raw is None or raw == "":
        return None
    try:
        return date.fromisoformat(raw)
    except ValueError:
        raise BadRequest(f"{name} must be a date like 2026-03-01, got {raw!r}") from None


class EndOffsetCache:
    """Log end offsets for the status endpoint, fetched at most every `ttl_s` (each fetch is a round
    trip to the broker)."""

    def __init__(self, fetch: Callable[[], dict[PartitionKey, int]], ttl_s: float = 2.0) -> None:
        self._fetch = fetch
        self._ttl = ttl_s
        self._at = 0.0
        self._value: dict[PartitionKey, int] | None = None
        self._lock = threading.Lock()

    def get(self) -> dict[PartitionKey, int] | None:
        with self._lock:
            if time.monotonic() - self._at > self._ttl:
                try:
                    self._value = self._fetch()
                except Exception as err:  # Kafka away: the status still shows what the database knows
                    log.info("end offsets unavailable: %r", err)
                    self._value = None
                self._at = time.monotonic()
            return self._value


class DeadLetterCache:
    """The dead letters of every DLQ, read at most every `ttl_s` (each read walks the DLQ topics from the
    start); a failed read is remembered as long, so a polling page does not hammer an unreachable broker."""

    def __init__(self, fetch: Callable[[], list[DeadLetter]], ttl_s: float = 5.0) -> None:
        self._fetch = fetch
        self._ttl = ttl_s
        self._at = -float("inf")
        self._value: list[DeadLetter] | str = []
        self._lock = threading.Lock()
        self._refreshing = threading.Lock()

    def peek(self) -> list[DeadLetter] | str | None:
        """What was read last (None before the first read), without waiting: a stale value starts a
        read in the background. For /health, which must answer at once even when Kafka does not."""
        with self._lock:
            value, stale = (None if self._at == -float("inf") else self._value), time.monotonic() - self._at > self._ttl
        if stale and self._refreshing.acquire(blocking=False):
            def refresh() -> None:
                try:
                    self.get()
                finally:
                    self._refreshing.release()
            threading.Thread(target=refresh, name="dead-letter-refresh", daemon=True).start()
        return value

    def get(self) -> list[DeadLetter] | str:
        """The dead letters, or why they cannot be read."""
        with self._lock:
            if time.monotonic() - self._at > self._ttl:
                try:
                    self._value = self._fetch()
                except Exception as err:  # BrokerUnavailable: Kafka away or a DLQ topic missing
                    log.info("dead letters unavailable: %r", err)
                    self._value = f"dead letters cannot be read: {err}"
                self._at = time.monotonic()
            return self._value


def create_app(
    settings: BalanceSettings | None = None,
    *,
    engine: Engine | None = None,
    consumer_health: ConsumerHealth | None = None,
    clock: Callable[[], date] | None = None,
    end_offsets_fn: Callable[[], dict[PartitionKey, int]] | None = None,
    dead_letters_fn: Callable[[], list[DeadLetter]] | None = None,
) -> Flask:
    settings = settings or BalanceSettings()
    settings.refuse_local_secrets("BALANCE_TOKEN")
    engine = engine or make_engine(settings.database_url, immediate=False)
    today = clock or settings.today
    if end_offsets_fn is None:
        def end_offsets_fn() -> dict[PartitionKey, int]:
            return end_offsets(settings.kafka_bootstrap_servers, SOURCE_TOPICS, topic_prefix=settings.topic_prefix,
                               timeout_s=2.0)
    ends = EndOffsetCache(end_offsets_fn)
    if dead_letters_fn is None:
        def dead_letters_fn() -> list[DeadLetter]:
            return read_dead_letters(settings.kafka_bootstrap_servers, settings.topic_prefix, all_dlqs(),
                                     timeout_s=3.0)
    dead_letter_cache = DeadLetterCache(dead_letters_fn)

    app = Flask(__name__)
    app.json.sort_keys = False  # type: ignore[attr-defined]
    # Notes, thanks, dispute reasons, emails and wellbeing signals: nothing here is for anyone but
    # the holders of BALANCE_TOKEN (the web, the operator's CLI).
    require_bearer_token(app, settings.balance_token, variable="BALANCE_TOKEN")
    add_metrics_route(app)

    def read(fn: Callable[..., Any]) -> Any:
        with engine.connect() as conn:
            return fn(conn, active_generation(conn))

    @app.errorhandler(BadRequest)
    def bad_request(err: BadRequest) -> tuple[Response, int]:
        return jsonify({"error": str(err)}), 422

    def not_found(what: str) -> tuple[Response, int]:
        return jsonify({"error": f"unknown {what}"}), 404

    @app.get("/openapi.json")
    def openapi() -> Response:
        from .openapi import openapi_document  # it reads this module's constants

        return jsonify(openapi_document())

    @app.get("/health")
    def health() -> tuple[Response, int]:
        problems: dict[str, str | None] = {"database": database_problem(engine)}
        details: dict[str, Any] = {}
        if consumer_health is not None:
            problems["consumer"] = consumer_health.reason()
            details["consumer"] = consumer_health.summary()
        # Parked records are no failure (the read side goes on) but are never silent: how many wait in
        # the DLQs, as last read (the read itself happens off this request, see DeadLetterCache.peek).
        waiting = dead_letter_cache.peek()
        details["dead_letters_waiting"] = (None if waiting is None or isinstance(waiting, str)
                                           else sum(d.redriven_to is None for d in waiting))
        return health_response(problems, details)

    @app.get("/v1/members/<member_id>/summary")
    def member_summary(member_id: str) -> Any:
        window = parse_window(request.args.get("window"))

        def run(conn: Any, gen: int) -> Any:
            if not queries.member_known(conn, gen, member_id):
                return None
            return queries.summary(conn, gen, member_id, window, today())

        found = read(run)
        return jsonify(found) if found else not_found(f"member {member_id}")

    @app.get("/v1/members/<member_id>/timeline")
    def member_timeline(member_id: str) -> Any:
        weeks = _int_arg("weeks", 12, 1, 104)

        def run(conn: Any, gen: int) -> Any:
            if not queries.member_known(conn, gen, member_id):
                return None
            return queries.timeline(conn, gen, member_id, weeks, today())

        found = read(run)
        return jsonify(found) if found else not_found(f"member {member_id}")

    @app.get("/v1/members/<member_id>/dashboard")
    def member_dashboard(member_id: str) -> Any:
        """What the web's dashboard shows, in one answer instead of five round trips: the summary and
        timeline, the exchanges waiting (recorded, newest first), the most recent ones, and the signals
        in force about the member."""
        window = parse_window(request.args.get("window"))
        weeks = _int_arg("weeks", 12, 1, 104)
        waiting = _int_arg("waiting", 100, 0, 500)
        recent = _int_arg("recent", 10, 0, 500)

        def run(conn: Any, gen: int) -> Any:
            if not queries.member_known(conn, gen, member_id):
                return None
            on = today()
            return {
                "summary": queries.summary(conn, gen, member_id, window, on),
                "timeline": queries.timeline(conn, gen, member_id, weeks, on),
                "waiting": queries.exchange_page(conn, gen, member_id, queries.HistoryFilter(status="recorded"),
                                                 waiting)["exchanges"] if waiting else [],
                "recent": queries.exchange_page(conn, gen, member_id, queries.HistoryFilter(),
                                                recent)["exchanges"] if recent else [],
                "signals": queries.signals(conn, member=member_id, active=True),
            }

        found = read(run)
        return jsonify(found) if found else not_found(f"member {member_id}")

    @app.get("/v1/members/<member_id>/relationships")
    def member_relationships(member_id: str) -> Any:
        window = parse_window(request.args.get("window"), default=90)

        def run(conn: Any, gen: int) -> Any:
            if not queries.member_known(conn, gen, member_id):
                return None
            return queries.relationships(conn, gen, member_id, window, today())

        found = read(run)
        return jsonify(found) if found else not_found(f"member {member_id}")

    @app.get("/v1/members/<member_id>/exchanges")
    def member_exchanges(member_id: str) -> Any:
        """The member's exchanges, newest first, a page at a time (README: "Balance read API")."""
        status = request.args.get("status") or None
        if status is not None and status not in STATUSES:
            raise BadRequest(f"status must be one of {', '.join(STATUSES)}")
        kind = request.args.get("kind") or None
        if kind is not None and kind not in t.KINDS:
            raise BadRequest(f"kind must be one of {', '.join(t.KINDS)}")
        other = request.args.get("with") or None
        if other is not None and len(other) > 64:
            raise BadRequest("with must be a member id (at most 64 characters)")
        since, until = _date_arg("from"), _date_arg("to")
        if since and until and since > until:
            raise BadRequest("from must not be after to")
        limit = _int_arg("limit", 50, 1, 500)
        cursor = request.args.get("cursor") or None
        wanted = queries.HistoryFilter(status=status, kind=kind, other=other, since=since, until=until)

        def run(conn: Any, gen: int) -> Any:
            if not queries.member_known(conn, gen, member_id):
                return None
            try:
                return queries.exchange_page(conn, gen, member_id, wanted, limit, cursor)
            except queries.BadCursor as err:
                raise BadRequest(str(err)) from err

        found = read(run)
        return jsonify(found) if found else not_found(f"member {member_id}")

    @app.get("/v1/exchanges/<exchange_id>")
    def exchange(exchange_id: str) -> Any:
        found = read(lambda conn, gen: queries.exchange(conn, gen, exchange_id))
        return jsonify(found) if found else not_found(f"exchange {exchange_id}")

    @app.get("/v1/appreciations")
    def appreciations() -> Any:
        limit = _int_arg("limit", 50, 1, 500)
        cursor = request.args.get("cursor") or None

        def run(conn: Any, gen: int) -> Any:
            try:
                return queries.appreciations(conn, gen, limit, cursor)
            except queries.BadCursor as err:
                raise BadRequest(str(err)) from err

        return jsonify(read(run))

    @app.get("/v1/directory/members")
    def directory_members() -> Any:
        q, circle = request.args.get("q", ""), request.args.get("circle", "")
        return jsonify({"members": read(lambda conn, gen: queries.directory_members(conn, gen, q, circle))})

    @app.get("/v1/directory/members/<member_id>")
    def directory_member(member_id: str) -> Any:
        found = read(lambda conn, gen: queries.directory_member(conn, gen, member_id))
        return jsonify(found) if found else not_found(f"member {member_id}")

    @app.get("/v1/directory/circles")
    def directory_circles() -> Any:
        return jsonify({"circles": read(queries.directory_circles)})

    @app.get("/v1/circles/<circle_id>/health")
    def circle_health(circle_id: str) -> Any:
        window = parse_window(request.args.get("window"))
        found = read(lambda conn, gen: queries.circle_health(conn, gen, circle_id, window, today()))
        return jsonify(found) if found else not_found(f"circle {circle_id}")

    @app.get("/v1/signals")
    def signals() -> Any:
        raw = (request.args.get("active") or "").lower()
        if raw not in ("", "true", "false"):
            raise BadRequest("active must be true or false")
        active = None if raw == "" else raw == "true"
        circle, member = request.args.get("circle") or None, request.args.get("member") or None

        def run(conn: Any, gen: int) -> Any:
            # A mistyped filter must not read as "no alerts".
            if circle and not queries.circle_known(conn, gen, circle):
                return not_found(f"circle {circle}")
            if member and not queries.member_known(conn, gen, member):
                return not_found(f"member {member}")
            return jsonify({"signals": queries.signals(conn, circle=circle, member=member, active=active)})

        return read(run)

    @app.get("/v1/projection/status")
    def projection_status() -> Any:
        with engine.connect() as conn:
            gen = active_generation(conn)
            stored = queries.stored_offsets(conn, gen)
            # A replay (another process) projects into a `building` generation and stores its offsets
            # with its rows, batch by batch: its progress is in the database.
            # One that no live replay holds the lock of is shown as failed: its replay died.
            building, failed = replay_generations(conn, running=replay_running(engine))
            building_stored = queries.stored_offsets(conn, building["id"]) if building else {}
        now_ends = ends.get()
        partitions = queries.partition_status(stored, now_ends)
        for p in partitions:
            if p["lag"] is not None:
                metrics.LAG.labels(p["topic"], str(p["partition"])).set(p["lag"])
        reason = consumer_health.reason() if consumer_health is not None else None
        return jsonify({"generation": gen, "healthy": reason is None, "reason": reason, "partitions": partitions,
                        "building": queries.building_progress(building, building_stored, now_ends),
                        "failed_replay": None if failed is None else {
                            "generation": int(failed["id"]), "started_at": queries.iso_time(failed["created_at"]),
                            "interrupted": failed["interrupted"]}})

    @app.get("/v1/dead-letters")
    def dead_letters() -> Any:
        topic = request.args.get("topic") or None
        wanted = dlq_names(topic)
        if not set(wanted) <= set(all_dlqs()):
            raise BadRequest(f"topic must be one of {', '.join(all_dlqs())} or their source topics, got {topic!r}")
        limit = _int_arg("limit", 100, 1, 1000)
        found = dead_letter_cache.get()
        if isinstance(found, str):
            return jsonify({"error": found}), 503
        chosen = [d for d in found if d.dlq in wanted]
        newest_first = sorted(chosen, key=lambda d: (d.timestamp_ms or 0, d.dlq, d.offset), reverse=True)
        return jsonify({"dead_letters": [d.public() for d in newest_first[:limit]],
                        "counts": {name: sum(d.dlq == name for d in chosen) for name in wanted}})

    return app


class BalanceService:
    """Wires the projection, the consumer, the signal engine and the outbox publisher (bootstrap)."""

    def __init__(self, settings: BalanceSettings) -> None:
        self.settings = settings
        self.engine = make_engine(settings.database_url)
        migrate(self.engine)
        self.event_log = EventLog(settings.kafka_bootstrap_servers, client_id="balance",
                                  topic_prefix=settings.topic_prefix)
        self.signals = SignalEngine(clock=settings.today, settle_s=settings.balance_signal_settle_s,
                                    max_defer_s=settings.balance_signal_max_defer_s)
        self.publisher = OutboxPublisher(self.engine, self.event_log)
        self.projection = BalanceProjection(self.engine, signals=self.signals, after_commit=self.publish,
                                            opener=projection_opener(settings))
        self.consumer = ProjectionConsumer(
            settings.kafka_bootstrap_servers,
            group_id=settings.balance_consumer_group,
            topics=list(SOURCE_TOPICS),
            projection=self.projection,
            dead_letters=self.event_log,
            topic_prefix=settings.topic_prefix,
            client_id="balance",
            max_records=settings.balance_max_poll_records,
        )

    def publish(self) -> None:
        if self.settings.balance_publish_signals:
            self.publisher.publish()

    def prepare(self, stop: threading.Event) -> bool:
        """Topics exist, signal state known, catch-up target set; retried until Kafka answers."""
        s = self.settings
        while not stop.is_set():
            try:
                ensure_topics(s.kafka_bootstrap_servers, all_topics(s.topic_prefix), timeout_s=10)
                self._restore_signals()
                targets = end_offsets(s.kafka_bootstrap_servers, SOURCE_TOPICS, topic_prefix=s.topic_prefix)
                self.signals.hold_until(targets)
                with self.engine.begin() as conn:
                    if self.signals.reached_targets(conn, active_generation(conn)):
                        self.signals.caught_up = True
                return True
            except Exception as err:
                log.warning("waiting for Kafka before consuming: %r", err)
                stop.wait(2.0)
        return False

    def _restore_signals(self) -> None:
        with self.engine.connect() as conn:
            known = conn.execute(sa.select(sa.func.count()).select_from(t.signal_state)).scalar()
        if known:
            return
        s = self.settings

        def decoded():  # type: ignore[no-untyped-def]
            for record in read_all(s.kafka_bootstrap_servers, [SIGNALS.name], topic_prefix=s.topic_prefix):
                try:
                    yield decode(record.value)
                except ContractError as err:
                    log.warning("unreadable signal at %s[%d]@%d: %s", record.topic, record.partition,
                                record.offset, err)

        restored = restore_from_log(self.engine, decoded())
        if restored:
            log.info("restored signal state from %d events of %s", restored, SIGNALS.name)

    def consume(self, stop: threading.Event) -> None:
        if self.prepare(stop):
            self.consumer.run(stop)

    def sweep(self, stop: threading.Event, *, on_settle: bool = True, on_schedule: bool = True) -> None:
        """Evaluate members whose numbers settled (`on_settle`: the projector's process, where the
        batches that touched them were applied), every member now and then (`on_schedule`: disconnection
        comes with time; the first sweep soon after start also covers what a crash left unevaluated),
        and retry the outbox."""
        interval = self.settings.balance_sweep_interval_s
        tick = min(interval, max(self.settings.balance_signal_settle_s / 4, 0.25), 5.0)
        next_sweep = time.monotonic() + min(interval, 5.0)
        while not stop.wait(tick):
            settled: set[str] = set()
            try:
                if on_schedule and time.monotonic() >= next_sweep:
                    next_sweep = time.monotonic() + interval
                    with self.engine.begin() as conn:
                        self.signals.sweep(conn, active_generation(conn))
                elif on_settle and (settled := self.signals.take_settled()):
                    with self.engine.begin() as conn:
                        self.signals.evaluate(conn, active_generation(conn), settled)
                    settled = set()
                self.publish()
            except BrokerUnavailable as err:
                log.warning("signals stay in the outbox: %s", err)
            except Exception:
                log.exception("sweep failed")
                self.signals.give_back(settled)


def database_problem(engine: Engine) -> str | None:
    try:
        with engine.connect() as conn:
            conn.execute(sa.text("SELECT 1"))
        return None
    except Exception as err:
        return f"database unreachable: {err.__class__.__name__}"


def main() -> None:
    from .bootstrap import bootstrap

    settings = BalanceSettings()
    settings.refuse_local_secrets("BALANCE_TOKEN")
    serve_api(bootstrap(settings), settings)


if __name__ == "__main__":
    # Run as `python -m reciprocity.balance.app`, this module is `__main__`; bootstrap imports it by its name, and a
    # second copy would register its metrics twice.
    sys.modules.setdefault("reciprocity.balance.app", sys.modules[__name__])
    main()
