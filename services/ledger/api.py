"""The ledger's HTTP API as data: one route table that both registers the Flask views (app.py) and
generates the OpenAPI 3.1 document from the pydantic models, so nothing is written twice."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ConfigDict, Field
from pydantic.json_schema import models_json_schema
from reciprocity.contracts.commands import (
    Acknowledge,
    Appended,
    ChangeAvailability,
    ChangeCircles,
    Command,
    CorrectExchange,
    DeclareCapacity,
    Dispute,
    ErrorBody,
    FieldErrors,
    ForgetMember,
    FormCircle,
    RecordExchange,
    RegisterMember,
    SetLeads,
    SetNotifications,
    ShareExchange,
    Unchanged,
    Withdraw,
)

from .responses import CircleView, ExchangeView, MemberView, Stats


@dataclass(frozen=True)
class CommandRoute:
    name: str  # also the `command` label of the metrics
    method: str
    path: str  # Flask syntax; at most one <param>, the target id
    body: type[Command]
    summary: str
    conflicts: str | None = None  # when it answers 409
    may_be_unchanged: bool = False  # may answer 200 Unchanged (nothing to append)

    @property
    def param(self) -> str | None:
        found = re.search(r"<(\w+)>", self.path)
        return found.group(1) if found else None


@dataclass(frozen=True)
class QueryRoute:
    name: str
    path: str
    answer: type[BaseModel]
    summary: str

    @property
    def param(self) -> str | None:
        found = re.search(r"<(\w+)>", self.path)
        return found.group(1) if found else None


COMMANDS: tuple[CommandRoute, ...] = (
    CommandRoute("form_circle", "POST", "/v1/circles", FormCircle,
                 "Form a circle, optionally nested in an existing parent circle.",
                 conflicts="a circle with this id already exists"),
    CommandRoute("set_leads", "PUT", "/v1/circles/<circle_id>/leads", SetLeads,
                 "Set the circle's leads (registered members; they get the circle's alerts)."),
    CommandRoute("register_member", "POST", "/v1/members", RegisterMember,
                 "Register a member in existing circles.",
                 conflicts="a member with this id or this email address already exists"),
    CommandRoute("change_circles", "PUT", "/v1/members/<member_id>/circles", ChangeCircles,
                 "Join and leave circles: `circles` is the full new list. Appends one MemberJoinedCircle or "
                 "MemberLeftCircle per difference, in one transaction; 200 Unchanged when there is none.",
                 may_be_unchanged=True),
    CommandRoute("declare_capacity", "PUT", "/v1/members/<member_id>/capacity", DeclareCapacity,
                 "Declare (or withdraw, with null) the member's weekly capacity in hours."),
    CommandRoute("change_availability", "PUT", "/v1/members/<member_id>/availability", ChangeAvailability,
                 "Pause (optionally until a date) or resume."),
    CommandRoute("set_notifications", "PUT", "/v1/members/<member_id>/notifications", SetNotifications,
                 "Choose the emails about herself a member gets: her own alerts, the daily digest. "
                 "200 Unchanged when they are already so.", may_be_unchanged=True),
    CommandRoute("record_exchange", "POST", "/v1/exchanges", RecordExchange,
                 "Record an exchange between two registered members. The answer's `id` is the new exchange's "
                 "id: 'x-' and 16 hex digits, derived from the Idempotency-Key.",
                 conflicts="an exchange with this id already exists"),
    CommandRoute("acknowledge", "POST", "/v1/exchanges/<exchange_id>/acknowledge", Acknowledge,
                 "The other party (not the recorder) acknowledges a recorded exchange, optionally with thanks.",
                 conflicts="the exchange is no longer recorded (acknowledged, disputed or withdrawn)"),
    CommandRoute("dispute", "POST", "/v1/exchanges/<exchange_id>/dispute", Dispute,
                 "The other party (not the recorder) disputes a recorded exchange, giving a reason.",
                 conflicts="the exchange is no longer recorded (acknowledged, disputed or withdrawn)"),
    CommandRoute("withdraw", "POST", "/v1/exchanges/<exchange_id>/withdraw", Withdraw,
                 "The recorder withdraws an exchange while it is still recorded.",
                 conflicts="the exchange is no longer recorded (acknowledged, disputed or withdrawn)"),
    CommandRoute("correct", "POST", "/v1/exchanges/<exchange_id>/correct", CorrectExchange,
                 "The recorder corrects kind, minutes, day and note while the exchange is still recorded "
                 "(ExchangeCorrected carries what it replaced, so the other party sees what changed). "
                 "200 Unchanged when nothing differs.",
                 conflicts="the exchange is no longer recorded (acknowledged, disputed or withdrawn)",
                 may_be_unchanged=True),
    CommandRoute("share", "PUT", "/v1/exchanges/<exchange_id>/sharing", ShareExchange,
                 "Either party agrees to show the exchange on the appreciation wall (`shared`: true) or stops "
                 "sharing it (false), at any time. The wall shows an acknowledged exchange while both share "
                 "it. 200 Unchanged when it is already so.", may_be_unchanged=True),
    CommandRoute("forget_member", "POST", "/v1/members/<member_id>/forget", ForgetMember,
                 "Forget a member for good (`by`: an operator; `confirm`: the member's id again). Destroys the "
                 "member's key, so every name, email, note, thanks and reason of or about them in the log becomes "
                 "unreadable, then appends MemberForgotten; projections blank what they hold. Their exchanges "
                 "still count, as a former member's. 200 Unchanged when the member was forgotten before.",
                 may_be_unchanged=True),
)

QUERIES: tuple[QueryRoute, ...] = (
    QueryRoute("get_circle", "/v1/circles/<circle_id>", CircleView, "A circle as the ledger knows it."),
    QueryRoute("get_member", "/v1/members/<member_id>", MemberView, "A member as the ledger knows it."),
    QueryRoute("get_exchange", "/v1/exchanges/<exchange_id>", ExchangeView,
               "An exchange and its status as the ledger knows it."),
    QueryRoute("stats", "/v1/stats", Stats, "How many circles, members and exchanges (by status) there are."),
)


def _openapi_path(path: str) -> str:
    return re.sub(r"<(\w+)>", r"{\1}", path)


def _ref(model: type[BaseModel]) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{model.__name__}"}


def _json(model: type[BaseModel], description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": _ref(model)}}}


class KeysRequest(BaseModel):
    """Whose keys a projection asks for."""

    model_config = ConfigDict(extra="forbid")
    members: list[str] = Field(max_length=10_000)


class MemberKeys(BaseModel):
    """Each member's key (base64 of 32 bytes); forgotten members are listed, without one."""

    keys: dict[str, str]
    forgotten: list[str]


class Forgetting(BaseModel):
    at: str | None = Field(description="when (UTC, ISO 8601)")
    requested_by: str = Field(description="the operator who asked")


class Forgettings(BaseModel):
    """Members forgotten, newest first: when and who asked, never whom."""

    forgettings: list[Forgetting]


def openapi_document(version: str = "1") -> dict[str, Any]:
    models: list[type[BaseModel]] = [
        *(r.body for r in COMMANDS), *(q.answer for q in QUERIES), Appended, Unchanged, FieldErrors, ErrorBody,
        KeysRequest, MemberKeys, Forgettings,
    ]
    _, definitions = models_json_schema(
        [(m, "validation") for m in dict.fromkeys(models)], ref_template="#/components/schemas/{model}"
    )
    schemas = definitions.get("$defs", {})
    unauthorized = _json(ErrorBody, "missing or wrong bearer token")
    unavailable = {**_json(ErrorBody, "Kafka is unreachable (or the ledger is still reading its state); "
                                      "nothing was appended"),
                   "headers": {"Retry-After": {"schema": {"type": "integer"}, "description": "seconds"}}}
    paths: dict[str, dict[str, Any]] = {}
    for route in COMMANDS:
        parameters: list[dict[str, Any]] = [{
            "name": "Idempotency-Key", "in": "header", "required": True,
            "schema": {"type": "string", "minLength": 1, "maxLength": 255},
            "description": "Required (422 without it): a fresh value per command. A retry with the same key and "
                           "body gets the first answer and appends nothing; the same key with another body is "
                           "refused (422).",
        }]
        if route.param:
            parameters.insert(0, {"name": route.param, "in": "path", "required": True, "schema": {"type": "string"}})
        responses: dict[str, Any] = {
            "201": _json(Appended, "appended; where the (first) event landed"),
            "401": unauthorized,
            "422": _json(FieldErrors, "the request is wrong, field by field; nothing was appended"),
            "503": unavailable,
        }
        if route.may_be_unchanged:
            responses["200"] = _json(Unchanged, "nothing to change; nothing was appended")
        if route.param:
            responses["404"] = _json(ErrorBody, f"no such {route.param.removesuffix('_id')}")
        if route.conflicts:
            responses["409"] = _json(ErrorBody, route.conflicts)
        paths.setdefault(_openapi_path(route.path), {})[route.method.lower()] = {
            "operationId": route.name,
            "summary": route.summary,
            "parameters": parameters,
            "requestBody": {"required": True, "content": {"application/json": {"schema": _ref(route.body)}}},
            "responses": dict(sorted(responses.items())),
        }
    for query in QUERIES:
        responses = {"200": _json(query.answer, "found"), "401": unauthorized, "503": unavailable}
        parameters = []
        if query.param:
            parameters.append({"name": query.param, "in": "path", "required": True, "schema": {"type": "string"}})
            responses["404"] = _json(ErrorBody, f"no such {query.param.removesuffix('_id')}")
        paths.setdefault(_openapi_path(query.path), {})["get"] = {
            "operationId": query.name, "summary": query.summary, "parameters": parameters,
            "responses": dict(sorted(responses.items())),
        }
    paths["/v1/keys"] = {"post": {
        "operationId": "member_keys",
        "summary": "Member keys for the projections that open sealed values (balance, notify, replay). Takes its own "
                   "token, LEDGER_KEYS_TOKEN: LEDGER_TOKEN does not open it, and it appends nothing.",
        "security": [{"keys": []}],
        "requestBody": {"required": True, "content": {"application/json": {"schema": _ref(KeysRequest)}}},
        "responses": {"200": _json(MemberKeys, "the keys that exist; forgotten members without one"),
                      "401": _json(ErrorBody, "missing or wrong LEDGER_KEYS_TOKEN"),
                      "422": _json(FieldErrors, "not a list of member ids")},
    }}
    paths["/v1/forgettings"] = {"get": {
        "operationId": "forgettings", "summary": "Members forgotten: when and which operator asked, never whom.",
        "parameters": [], "responses": {"200": _json(Forgettings, "found"), "401": unauthorized, "503": unavailable},
    }}
    open_paths = {
        "/health": {"get": {"operationId": "health", "summary": "200 when the state is loaded and Kafka answers",
                            "security": [], "responses": {"200": {"description": "ok"},
                                                          "503": {"description": "not ready, with reasons"}}}},
        "/metrics": {"get": {"operationId": "metrics", "summary": "Prometheus metrics", "security": [],
                             "responses": {"200": {"description": "text/plain metrics"}}}},
    }
    return {
        "openapi": "3.1.0",
        "info": {"title": "Reciprocity ledger", "version": version,
                 "description": "The only writer of ledger.directory and ledger.exchanges. Every command answers "
                                "201 with where its event landed; 422 lists field errors; 404 names an unknown "
                                "id in the path; 409 a state that does not allow it; 401 a missing or wrong "
                                "token; 503 Kafka out of reach, with Retry-After. No failed request appends "
                                "anything."},
        "servers": [{"url": "/"}],
        "security": [{"bearer": []}],
        "paths": {**paths, **open_paths},
        "components": {"schemas": schemas,
                       "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"},
                                           "keys": {"type": "http", "scheme": "bearer",
                                                    "description": "LEDGER_KEYS_TOKEN"}}},
    }
