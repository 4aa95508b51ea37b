"""The operator page: how far behind the read models are (and how far a replay got), what failed to
deliver, which records were dead-lettered.

Operations only: offsets, lag, error texts, delivery attempts, dead letters' positions and sizes. No exchange
notes, no thanks (balance never sends a dead letter's payload).
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, redirect, url_for
from htmx_flask import request
from reciprocity.common.service_client import Unavailable

from . import access
from .ui import clients, forbid, me, render_page

bp = Blueprint("ops", __name__)

# Delivery fields shown when notify has them (its log may hold more; personal content stays out).
DELIVERY_FIELDS = ("alert_id", "signal_type", "type", "member_id", "recipient", "attempts", "last_error",
                   "status", "updated_at", "created_at")
DEAD_LETTER_LIMIT = 100  # newest first; the counts say how many there are in all


def _require_operator() -> None:
    if not access.can_operate(me()):
        forbid("The operations page is for operators. Your own numbers are on your dashboard.")


def _projection() -> dict[str, Any]:
    try:
        status = clients().balance.projection_status()
    except Unavailable as err:
        return {"status": None, "status_error": f"The balance service is not answering right now ({err.message}); "
                                                "this refreshes by itself."}
    total_lag = sum(p.lag or 0 for p in status.partitions)
    return {"status": status, "total_lag": total_lag, "status_error": None}


def _dead_letters() -> dict[str, Any]:
    try:
        found = clients().balance.dead_letters(limit=DEAD_LETTER_LIMIT)
    except Unavailable as err:
        return {"dead": None, "dead_error": f"Dead letters cannot be listed right now ({err.message}); "
                                            "this refreshes by itself."}
    return {"dead": found, "dead_error": None}


@bp.get("/ops/dead-letters")
def dead_letters() -> Response:
    """The dead-letter list alone, for its own (slower) htmx poll: reading DLQs costs more than offsets."""
    _require_operator()
    if not request.htmx:
        return redirect(url_for("ops.ops", _anchor="dead-letters"))  # type: ignore[return-value]
    return render_page("ops.html", "partials/_dead_letters.html", **_dead_letters())


@bp.get("/ops")
def ops() -> Response:
    _require_operator()
    if request.htmx:
        return render_page("ops.html", "partials/_projection_status.html", **_projection())
    c = clients()
    health = {"ledger": c.ledger.health(), "balance": c.balance.health(), "notify": c.notify.health()}
    try:
        deliveries = c.notify.failed_deliveries()
        deliveries_error = None
    except Unavailable as err:
        deliveries, deliveries_error = [], ("The notify service is not answering right now, so its failed "
                                            f"deliveries cannot be listed ({err.message}).")
    columns = [f for f in DELIVERY_FIELDS if any(f in d for d in deliveries)]
    try:
        forgettings, forgettings_error = c.ledger.forgettings(), None
    except Unavailable as err:
        forgettings, forgettings_error = [], f"The ledger is not answering right now ({err.message})."
    return render_page("ops.html", "partials/_projection_status.html", health=health, deliveries=deliveries,
                       delivery_columns=columns, deliveries_error=deliveries_error, forgettings=forgettings,
                       forgettings_error=forgettings_error, **_projection(), **_dead_letters())
