"""The OpenAPI 3.1 document of balance's read API (GET /openapi.json, behind BALANCE_TOKEN like the rest).

Written by hand from the routes in app.py: every answer's shape is described (the keys a client may rely
on, with their types), every query parameter with the bounds the code enforces, and every error status.
tests/integration/test_api_fuzz.py checks that every route is documented and runs schemathesis against it.
"""

from __future__ import annotations

from typing import Any

from reciprocity.contracts.vocabulary import EXCHANGE_KINDS, EXCHANGE_STATUSES

from .queries import PICTURES, RECORDED_BY
from .request_params import MAX_WINDOW_DAYS

NULLABLE_STRING = {"type": ["string", "null"]}
NULLABLE_INT = {"type": ["integer", "null"]}
DATE = {"type": "string", "format": "date"}
NULLABLE_DATE = {"type": ["string", "null"], "format": "date"}
NULLABLE_TIME = {"type": ["string", "null"]}  # ISO 8601 with offset, or null


def _object(required: dict[str, Any], **optional: Any) -> dict[str, Any]:
    """An object with these keys always present (more may be added later: clients ignore them)."""
    return {"type": "object", "required": list(required), "properties": {**required, **optional}}


def _list_of(key: str, item: str, **more: Any) -> dict[str, Any]:
    return _object({key: {"type": "array", "items": {"$ref": f"#/components/schemas/{item}"}}, **more})


TOTALS = _object({"minutes": {"type": "integer"}, "count": {"type": "integer"},
                  "pending_minutes": {"type": "integer"}, "pending_count": {"type": "integer"}})

SCHEMAS: dict[str, Any] = {
    "Error": _object({"error": {"type": "string"}}),
    "Summary": _object({
        "member_id": {"type": "string"}, "window_days": {"type": "integer"}, "from": DATE, "to": DATE,
        "given": TOTALS, "received": TOTALS, "by_kind": {"type": "object"},
        "reciprocity_index": {"type": "number", "minimum": 0, "maximum": 1},
        "capacity": _object({"weekly_hours": {"type": ["number", "null"]},
                             "given_last_7_days_minutes": {"type": "integer"},
                             "used_fraction": {"type": ["number", "null"]}}),
    }),
    "Timeline": _object({"member_id": {"type": "string"}, "weeks": {"type": "array", "items": _object({
        "week_start": DATE, "given": {"type": "object"}, "received": {"type": "object"},
        "pending_given": {"type": "integer"}, "pending_received": {"type": "integer"}})}}),
    "Relationships": _object({"member_id": {"type": "string"}, "relationships": {"type": "array",
                                                                                  "items": {"type": "object"}},
                              "next_cursor": NULLABLE_STRING}),
    "Exchange": _object({
        "exchange_id": {"type": "string"}, "giver": {"type": "string"}, "giver_name": {"type": "string"},
        "receiver": {"type": "string"}, "receiver_name": {"type": "string"}, "kind": {"enum": list(EXCHANGE_KINDS)},
        "minutes": {"type": "integer"}, "note": {"type": "string"}, "occurred_on": NULLABLE_DATE,
        "recorded_by": {"type": "string"}, "recorded_at": NULLABLE_TIME, "status": {"enum": list(EXCHANGE_STATUSES)},
        "thanks": NULLABLE_STRING, "dispute_reason": NULLABLE_STRING, "shared_by_recorder": {"type": "boolean"},
        "shared_by_acknowledger": {"type": "boolean"},
    }, correction={"type": ["object", "null"], "description": "what the recorder's latest correction replaced: "
                   "previous {kind, minutes, occurred_on}, note_changed, at, event_id"}),
    "Dashboard": _object({
        "summary": {"$ref": "#/components/schemas/Summary"}, "timeline": {"$ref": "#/components/schemas/Timeline"},
        "waiting": {"type": "array", "items": {"$ref": "#/components/schemas/Exchange"}},
        "waiting_count": _object({"for_me": {"type": "integer"}, "for_others": {"type": "integer"},
                                  "complete": {"type": "boolean"}}),
        "recent": {"type": "array", "items": {"$ref": "#/components/schemas/Exchange"}},
        "signals": {"type": "array", "items": {"$ref": "#/components/schemas/Signal"}},
    }),
    "ExchangePage": _list_of("exchanges", "Exchange", next_cursor=NULLABLE_STRING),
    "Appreciations": _list_of("appreciations", "Exchange", next_cursor=NULLABLE_STRING),
    "Member": _object({"id": {"type": "string"}, "name": {"type": "string"}, "email": {"type": "string"},
                       "circles": {"type": "array", "items": {"type": "string"}}, "role": {"type": "string"}}),
    "Members": _list_of("members", "Member"),
    "Circle": _object({"id": {"type": "string"}, "name": {"type": "string"}, "parent": NULLABLE_STRING,
                       "leads": {"type": "array", "items": {"type": "string"}}, "member_count": {"type": "integer"}}),
    "Circles": _list_of("circles", "Circle"),
    "CircleHealth": _object({"circle_id": {"type": "string"}, "name": {"type": "string"},
                             "window_days": {"type": "integer"}}),
    "Signal": _object({
        "event_id": {"type": "string"}, "type": {"type": "string"}, "member_id": {"type": "string"},
        "circles": {"type": "array", "items": {"type": "string"}}, "raised_at": NULLABLE_TIME,
        "window_start": NULLABLE_DATE, "window_end": NULLABLE_DATE, "details": {"type": "object"},
        "active": {"type": "boolean"}, "cleared_at": NULLABLE_TIME,
    }),
    "Signals": _list_of("signals", "Signal"),
    "ProjectionStatus": _object({
        "generation": {"type": "integer"}, "healthy": {"type": "boolean"}, "reason": NULLABLE_STRING,
        "partitions": {"type": "array", "items": _object({
            "topic": {"type": "string"}, "partition": {"type": "integer"}, "applied_offset": {"type": "integer"},
            "end_offset": NULLABLE_INT, "lag": NULLABLE_INT, "last_event_at": NULLABLE_TIME})},
        "building": {"type": ["object", "null"]},
        # The last replay, when it failed or its process died (`interrupted`); null once another one started.
        "failed_replay": {"type": ["object", "null"]},
    }),
    "DeadLetters": _object({"dead_letters": {"type": "array", "items": {"type": "object"}},
                            "counts": {"type": "object", "additionalProperties": {"type": "integer"}}}),
    "Health": _object({"status": {"enum": ["ok", "unavailable"]}, "checks": {"type": "object"}}),
}

# Query parameters, with exactly the bounds the code enforces (anything else answers 422).
WINDOW = {"name": "window", "in": "query", "required": False, "description": "days, e.g. 28d (1 to "
          f"{MAX_WINDOW_DAYS})", "schema": {"type": "string", "pattern": r"^\s*\d{1,4}d?\s*$"}}


def _int_query(name: str, low: int, high: int) -> dict[str, Any]:
    return {"name": name, "in": "query", "required": False,
            "schema": {"type": "integer", "minimum": low, "maximum": high}}


def _text_query(name: str, **schema: Any) -> dict[str, Any]:
    return {"name": name, "in": "query", "required": False, "schema": {"type": "string", **schema}}


def _path(name: str) -> dict[str, Any]:
    return {"name": name, "in": "path", "required": True, "schema": {"type": "string", "minLength": 1}}


def _ref(name: str) -> dict[str, Any]:
    return {"content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{name}"}}}}


def _answers(ok: str, *errors: int) -> dict[str, Any]:
    words = {401: "no or a wrong bearer token", 404: "unknown id", 422: "a query parameter out of bounds",
             503: "the dead letters cannot be read (Kafka away)"}
    answers = {"200": {"description": "OK", **_ref(ok)}, "401": {"description": words[401], **_ref("Error")}}
    for status in errors:
        answers[str(status)] = {"description": words[status], **_ref("Error")}
    return answers


ROUTES: list[tuple[str, str, list[dict[str, Any]], dict[str, Any]]] = [
    # (path, summary, parameters, responses)
    ("/v1/members/{member_id}/summary", "given and received, by kind, settled and pending; capacity used",
     [_path("member_id"), WINDOW], _answers("Summary", 404, 422)),
    ("/v1/members/{member_id}/timeline", "minutes per week and kind",
     [_path("member_id"), _int_query("weeks", 1, 104)], _answers("Timeline", 404, 422)),
    ("/v1/members/{member_id}/dashboard", "the web's dashboard in one answer: summary, timeline, the newest "
     "exchanges waiting for the member (recorded by the other party) and how many wait either way, the most "
     "recent ones, signals in force",
     [_path("member_id"), WINDOW, _int_query("weeks", 1, 104), _int_query("waiting", 0, 500),
      _int_query("recent", 0, 500)], _answers("Dashboard", 404, 422)),
    ("/v1/members/{member_id}/relationships", "what the member gives and receives, per person, by name: "
     "all, or with limit a page of people (cursor: the next_cursor of the page before)",
     [_path("member_id"), WINDOW, _int_query("limit", 1, 500), _text_query("cursor")],
     _answers("Relationships", 404, 422)),
    ("/v1/members/{member_id}/exchanges", "the member's exchanges, newest first, a page at a time",
     [_path("member_id"), _text_query("status", enum=list(EXCHANGE_STATUSES)),
      _text_query("kind", enum=list(EXCHANGE_KINDS)),
      _text_query("with", maxLength=64), _text_query("from", format="date"), _text_query("to", format="date"),
      _text_query("recorded_by", enum=list(RECORDED_BY)), _int_query("limit", 1, 500), _text_query("cursor")],
     _answers("ExchangePage", 404, 422)),
    ("/v1/exchanges/{exchange_id}", "one exchange", [_path("exchange_id")], _answers("Exchange", 404)),
    ("/v1/appreciations", "acknowledged exchanges both parties share, the newest thanks first, a page at a "
     "time; never the private note",
     [_int_query("limit", 1, 500), _text_query("cursor")], _answers("Appreciations", 422)),
    ("/v1/directory/members", "members, optionally by circle or a search",
     [_text_query("q"), _text_query("circle")], _answers("Members")),
    ("/v1/directory/members/{member_id}", "one member", [_path("member_id")], _answers("Member", 404)),
    ("/v1/directory/circles", "every circle", [], _answers("Circles")),
    ("/v1/circles/{circle_id}/health", "the circle's measures (private below 5 members); with `picture`, also "
     "who exchanged with whom, as pairs (`ties`) or per person (`linked`), or every directed flow with its "
     "minutes (`flows`)",
     [_path("circle_id"), WINDOW, _text_query("picture", enum=[*PICTURES, ""])],
     _answers("CircleHealth", 404, 422)),
    ("/v1/signals", "alerts, by circle or member, in force or not",
     [_text_query("circle"), _text_query("member"), _text_query("active", enum=["true", "false", ""])],
     _answers("Signals", 404, 422)),
    ("/v1/projection/status", "per partition: applied offset, end offset, lag; a running replay's progress",
     [], _answers("ProjectionStatus")),
    ("/v1/dead-letters", "parked records: positions and errors, never their values",
     [_text_query("topic"), _int_query("limit", 1, 1000)], _answers("DeadLetters", 422, 503)),
]


def openapi_document() -> dict[str, Any]:
    paths: dict[str, Any] = {
        path: {"get": {"operationId": path.strip("/").replace("/", "_").replace("{", "").replace("}", ""),
                       "summary": summary, "parameters": parameters, "responses": responses}}
        for path, summary, parameters, responses in ROUTES
    }
    open_answers = {"200": {"description": "every check passes", **_ref("Health")},
                    "503": {"description": "a check fails, named with why", **_ref("Health")}}
    paths["/health"] = {"get": {"operationId": "health", "summary": "database and consumer", "security": [],
                                "responses": open_answers}}
    return {
        "openapi": "3.1.0",
        "info": {"title": "Reciprocity balance read API", "version": "1",
                 "description": "Read models projected from ledger.*: private data (notes, thanks, dispute "
                                "reasons, emails, signals). Every route but /health and /metrics needs "
                                "Authorization: Bearer <BALANCE_TOKEN>."},
        "paths": paths,
        "components": {"schemas": SCHEMAS,
                       "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}}},
        "security": [{"bearer": []}],
    }
