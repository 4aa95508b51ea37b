"""The operator page: how far behind the read models are, what failed to deliver, where dead letters are.

Operations only: offsets, lag, error texts, delivery attempts. No exchange notes, no thanks.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response
from htmx_flask import request

from . import access
from .clients import Unavailable
from .ui import clients, forbid, me, render_page

bp = Blueprint("ops", __name__)

# Delivery fields shown when notify has them (its log may hold more; personal content stays out).
DELIVERY_FIELDS = ("alert_id", "signal_type", "type", "member_id", "recipient", "attempts", "last_error",
                   "status", "updated_at", "created_at")


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
    return render_page("ops.html", "partials/_projection_status.html", health=health, deliveries=deliveries,
                       delivery_columns=columns, deliveries_error=deliveries_error, **_projection())
