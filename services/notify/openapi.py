"""The OpenAPI 3.1 document of notify's operator API (GET /openapi.json, behind NOTIFY_TOKEN like the
rest), written from the routes in app.py; tests/integration/test_api_fuzz.py runs schemathesis on it."""

from __future__ import annotations

from typing import Any

NULLABLE_STRING = {"type": ["string", "null"]}


def _object(required: dict[str, Any]) -> dict[str, Any]:
    return {"type": "object", "required": list(required), "properties": required}


def _ref(name: str) -> dict[str, Any]:
    return {"content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{name}"}}}}


DELIVERY = _object({"alert_id": {"type": "string"}, "member_id": NULLABLE_STRING, "recipient": NULLABLE_STRING,
                    "status": {"type": "string"}})

SCHEMAS: dict[str, Any] = {
    "Error": _object({"error": {"type": "string"}}),
    "Delivery": DELIVERY,
    "Deliveries": _object({"deliveries": {"type": "array", "items": {"$ref": "#/components/schemas/Delivery"}},
                           "counts": {"type": "object", "additionalProperties": {"type": "integer"}}}),
    "Alert": _object({"alert_id": {"type": "string"}, "type": {"type": "string"}, "member_id": NULLABLE_STRING,
                      "status": {"type": "string"}, "attempts": {"type": "integer"},
                      "deliveries": {"type": "array", "items": {"$ref": "#/components/schemas/Delivery"}}}),
    "Health": _object({"status": {"enum": ["ok", "unavailable"]}, "checks": {"type": "object"}}),
}


def openapi_document(statuses: tuple[str, ...]) -> dict[str, Any]:
    unauthorized = {"description": "no or a wrong bearer token", **_ref("Error")}
    return {
        "openapi": "3.1.0",
        "info": {"title": "Reciprocity notify operator API", "version": "1",
                 "description": "The delivery log of alert emails: leads' addresses and subjects. Every route "
                                "but /health and /metrics needs Authorization: Bearer <NOTIFY_TOKEN>."},
        "paths": {
            "/v1/deliveries": {"get": {
                "operationId": "list_deliveries", "summary": "deliveries, newest first, with counts by status",
                "parameters": [
                    {"name": "status", "in": "query", "required": False,
                     "schema": {"type": "string", "enum": [*statuses, ""]}},
                    {"name": "member", "in": "query", "required": False, "schema": {"type": "string"}},
                    {"name": "alert_id", "in": "query", "required": False, "schema": {"type": "string"}},
                    {"name": "limit", "in": "query", "required": False,
                     "schema": {"type": "integer", "minimum": 1, "maximum": 1000}},
                ],
                "responses": {"200": {"description": "OK", **_ref("Deliveries")}, "401": unauthorized,
                              "422": {"description": "a bad status or limit", **_ref("Error")}},
            }},
            "/v1/alerts/{event_id}": {"get": {
                "operationId": "get_alert", "summary": "one alert and its deliveries",
                "parameters": [{"name": "event_id", "in": "path", "required": True,
                                "schema": {"type": "string", "minLength": 1}}],
                "responses": {"200": {"description": "OK", **_ref("Alert")}, "401": unauthorized,
                              "404": {"description": "no such alert", **_ref("Error")}},
            }},
            "/health": {"get": {"operationId": "health", "summary": "database, consumer, SMTP", "security": [],
                                "responses": {"200": {"description": "fine", **_ref("Health")},
                                              "503": {"description": "a check fails", **_ref("Health")}}}},
        },
        "components": {"schemas": SCHEMAS, "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}}},
        "security": [{"bearer": []}],
    }

