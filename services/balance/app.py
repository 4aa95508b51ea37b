"""The balance read API (port 8002): its routes over the read models, and its entry point.

`python -m reciprocity.balance.app` serves it under gunicorn; the projector and the scheduled sweep run
as processes of their own (`python -m reciprocity.balance.worker projector|sweep`). bootstrap.py wires
all three; `create_app(...)` builds the read API alone. Query parameters are parsed in request_params.py.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from typing import Any

import sqlalchemy as sa
from flask import Flask, Response, jsonify, request
from reciprocity.common.auth import require_bearer_token
from reciprocity.common.service import FastJSON, add_metrics_route, health_response, serve_api
from reciprocity.common.ttl_cache import TtlCache
from reciprocity.contracts.topics import BALANCE_READS
from reciprocity.contracts.vocabulary import EXCHANGE_KINDS, EXCHANGE_STATUSES, RECORDED
from reciprocity.messaging.consumer import ConsumerHealth, PartitionKey
from reciprocity.messaging.inspect import end_offsets
from sqlalchemy.engine import Engine

from . import metrics, queries
from .db import make_engine
from .dead_letters import DeadLetter, all_dlqs, dlq_names, read_dead_letters
from .generations import ActiveGenerationMemo, active_generation, replay_generations, replay_running
from .request_params import BadRequest, date_arg, int_arg, parse_window
from .settings import BalanceSettings

# How long the read API may go on serving a generation after a replay in another process switched away
# from it (the retired one is kept, whole, until the next replay starts).
GENERATION_MAX_AGE_S = 1.0


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
            return end_offsets(settings.kafka_bootstrap_servers, BALANCE_READS, topic_prefix=settings.topic_prefix,
                               timeout_s=2.0)
    ends = TtlCache(end_offsets_fn, ttl_s=2.0, what="end offsets",
                    on_error=lambda err: None)  # Kafka away: the status still shows what the database knows
    if dead_letters_fn is None:
        def dead_letters_fn() -> list[DeadLetter]:
            return read_dead_letters(settings.kafka_bootstrap_servers, settings.topic_prefix, all_dlqs(),
                                     timeout_s=3.0)
    # Each read walks the DLQ topics from the start; Kafka away or a DLQ topic missing is said, not raised.
    dead_letter_cache: TtlCache[list[DeadLetter] | str] = TtlCache(
        dead_letters_fn, ttl_s=5.0, what="dead letters", on_error=lambda err: f"dead letters cannot be read: {err}")

    app = Flask(__name__)
    app.json = FastJSON(app)  # in the order each answer is built, and cheaper than the stdlib's
    # Notes, thanks, dispute reasons, emails and wellbeing signals: nothing here is for anyone but
    # the holders of BALANCE_TOKEN (the web, the operator's CLI).
    require_bearer_token(app, settings.balance_token, variable="BALANCE_TOKEN")
    add_metrics_route(app)

    # Read once a second at most, not on every request; the projection status reads it afresh.
    serving = ActiveGenerationMemo(max_age_s=GENERATION_MAX_AGE_S)

    def read(fn: Callable[..., Any]) -> Any:
        with engine.connect() as conn:
            return fn(conn, serving.get(conn))

    @app.errorhandler(BadRequest)
    def bad_request(err: BadRequest) -> tuple[Response, int]:
        return jsonify({"error": str(err)}), 422

    def not_found(what: str) -> tuple[Response, int]:
        return jsonify({"error": f"unknown {what}"}), 404

    def found_or_404(found: Any, what: str) -> Any:
        return jsonify(found) if found else not_found(what)

    def about_member(member_id: str, answer: Callable[[Any, int], Any]) -> Any:
        """`answer(conn, generation)` as JSON when the read models know the member, else 404, on one
        connection; a cursor that is not one of ours is the caller's mistake (422)."""

        def run(conn: Any, gen: int) -> Any:
            if not queries.member_known(conn, gen, member_id):
                return None
            try:
                return answer(conn, gen)
            except queries.BadCursor as err:
                raise BadRequest(str(err)) from err

        return found_or_404(read(run), f"member {member_id}")

    @app.get("/openapi.json")
    def openapi() -> Response:
        from .openapi import openapi_document

        return jsonify(openapi_document())

    @app.get("/health")
    def health() -> tuple[Response, int]:
        problems: dict[str, str | None] = {"database": database_problem(engine)}
        details: dict[str, Any] = {}
        if consumer_health is not None:
            problems["consumer"] = consumer_health.reason()
            details["consumer"] = consumer_health.summary()
        # Parked records are no failure (the read side goes on) but are never silent: how many wait in
        # the DLQs, as last read (the read itself happens off this request, see TtlCache.peek).
        waiting = dead_letter_cache.peek()
        details["dead_letters_waiting"] = (None if waiting is None or isinstance(waiting, str)
                                           else sum(d.redriven_to is None for d in waiting))
        return health_response(problems, details)

    @app.get("/v1/members/<member_id>/summary")
    def member_summary(member_id: str) -> Any:
        window = parse_window(request.args.get("window"))
        return about_member(member_id, lambda conn, gen: queries.summary(conn, gen, member_id, window, today()))

    @app.get("/v1/members/<member_id>/timeline")
    def member_timeline(member_id: str) -> Any:
        weeks = int_arg("weeks", 12, 1, 104)
        return about_member(member_id, lambda conn, gen: queries.timeline(conn, gen, member_id, weeks, today()))

    @app.get("/v1/members/<member_id>/dashboard")
    def member_dashboard(member_id: str) -> Any:
        """What the web's dashboard shows, in one answer instead of five round trips: the summary and
        timeline, the newest exchanges waiting for the member's answer (recorded by the other party) and
        how many wait either way, the most recent exchanges, and the signals in force about the member.
        Each list is a page (newest first), so the answer costs the same however much has piled up."""
        window = parse_window(request.args.get("window"))
        weeks = int_arg("weeks", 12, 1, 104)
        waiting = int_arg("waiting", 10, 0, 500)
        recent = int_arg("recent", 10, 0, 500)
        for_me = queries.HistoryFilter(status=RECORDED, recorded_by=queries.RECORDED_BY_OTHER)

        def answer(conn: Any, gen: int) -> Any:
            on = today()
            return {
                "summary": queries.summary(conn, gen, member_id, window, on),
                "timeline": queries.timeline(conn, gen, member_id, weeks, on),
                "waiting": queries.exchange_page(conn, gen, member_id, for_me, waiting)["exchanges"]
                if waiting else [],
                "waiting_count": queries.waiting_count(conn, gen, member_id),
                "recent": queries.exchange_page(conn, gen, member_id, queries.HistoryFilter(),
                                                recent)["exchanges"] if recent else [],
                "signals": queries.signals(conn, member=member_id, active=True),
            }

        return about_member(member_id, answer)

    @app.get("/v1/members/<member_id>/relationships")
    def member_relationships(member_id: str) -> Any:
        """The member's relationships in the window, by name: all of them, or with `limit` a page of
        people and the `next_cursor` of the next page (what the web's people page shows)."""
        window = parse_window(request.args.get("window"), default=90)
        limit = int_arg("limit", 0, 1, 500) or None
        cursor = request.args.get("cursor") or None
        if cursor and limit is None:
            raise BadRequest("cursor pages by limit: give both")
        return about_member(member_id, lambda conn, gen: queries.relationships(conn, gen, member_id, window, today(),
                                                                               limit, cursor))

    @app.get("/v1/members/<member_id>/exchanges")
    def member_exchanges(member_id: str) -> Any:
        """The member's exchanges, newest first, a page at a time (README: "Balance read API")."""
        status = request.args.get("status") or None
        if status is not None and status not in EXCHANGE_STATUSES:
            raise BadRequest(f"status must be one of {', '.join(EXCHANGE_STATUSES)}")
        kind = request.args.get("kind") or None
        if kind is not None and kind not in EXCHANGE_KINDS:
            raise BadRequest(f"kind must be one of {', '.join(EXCHANGE_KINDS)}")
        recorded_by = request.args.get("recorded_by") or None
        if recorded_by is not None and recorded_by not in queries.RECORDED_BY:
            raise BadRequest(f"recorded_by must be one of {', '.join(queries.RECORDED_BY)}")
        other = request.args.get("with") or None
        if other is not None and len(other) > 64:
            raise BadRequest("with must be a member id (at most 64 characters)")
        since, until = date_arg("from"), date_arg("to")
        if since and until and since > until:
            raise BadRequest("from must not be after to")
        limit = int_arg("limit", 50, 1, 500)
        cursor = request.args.get("cursor") or None
        wanted = queries.HistoryFilter(status=status, kind=kind, other=other, since=since, until=until,
                                       recorded_by=recorded_by)
        return about_member(member_id,
                            lambda conn, gen: queries.exchange_page(conn, gen, member_id, wanted, limit, cursor))

    @app.get("/v1/exchanges/<exchange_id>")
    def exchange(exchange_id: str) -> Any:
        return found_or_404(read(lambda conn, gen: queries.exchange(conn, gen, exchange_id)),
                            f"exchange {exchange_id}")

    @app.get("/v1/appreciations")
    def appreciations() -> Any:
        limit = int_arg("limit", 50, 1, 500)
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
        return found_or_404(read(lambda conn, gen: queries.directory_member(conn, gen, member_id)),
                            f"member {member_id}")

    @app.get("/v1/directory/circles")
    def directory_circles() -> Any:
        return jsonify({"circles": read(queries.directory_circles)})

    @app.get("/v1/circles/<circle_id>/health")
    def circle_health(circle_id: str) -> Any:
        window = parse_window(request.args.get("window"))
        picture = request.args.get("picture") or "none"
        if picture not in queries.PICTURES:
            raise BadRequest(f"picture must be one of {', '.join(queries.PICTURES)}, got {picture!r}")
        return found_or_404(read(lambda conn, gen: queries.circle_health(conn, gen, circle_id, window, today(),
                                                                         picture)),
                            f"circle {circle_id}")

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
        limit = int_arg("limit", 100, 1, 1000)
        found = dead_letter_cache.get()
        if isinstance(found, str):
            return jsonify({"error": found}), 503
        chosen = [d for d in found if d.dlq in wanted]
        newest_first = sorted(chosen, key=lambda d: (d.timestamp_ms or 0, d.dlq, d.offset), reverse=True)
        return jsonify({"dead_letters": [d.public() for d in newest_first[:limit]],
                        "counts": {name: sum(d.dlq == name for d in chosen) for name in wanted}})

    return app


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
    main()
