"""The OpenAPI document is generated from the route table and the pydantic models: every route is in
it, every reference resolves, and each request body is exactly its command model's schema."""

import json

from reciprocity.contracts.commands import Appended
from reciprocity.ledger.api import COMMANDS, QUERIES, openapi_document
from reciprocity.ledger.app import create_app
from reciprocity.ledger.settings import LedgerSettings


def _refs(node: object) -> list[str]:
    if isinstance(node, dict):
        own = [node["$ref"]] if "$ref" in node else []
        return own + [r for v in node.values() for r in _refs(v)]
    if isinstance(node, list):
        return [r for v in node for r in _refs(v)]
    return []


def test_every_route_is_documented() -> None:
    doc = openapi_document()
    assert doc["openapi"] == "3.1.0"
    for route in COMMANDS:
        path = route.path.replace("<", "{").replace(">", "}")
        operation = doc["paths"][path][route.method.lower()]
        assert operation["operationId"] == route.name
        assert {"201", "401", "422", "503"} <= set(operation["responses"])
        assert ("404" in operation["responses"]) == bool(route.param)
        assert any(p["name"] == "Idempotency-Key" for p in operation["parameters"])
    for query in QUERIES:
        assert "get" in doc["paths"][query.path.replace("<", "{").replace(">", "}")]
    assert doc["paths"]["/health"]["get"]["security"] == []


def test_every_reference_resolves() -> None:
    doc = openapi_document()
    schemas = doc["components"]["schemas"]
    for ref in _refs(doc):
        assert ref.startswith("#/components/schemas/") and ref.rsplit("/", 1)[1] in schemas, ref


def test_request_bodies_are_the_command_models() -> None:
    schemas = openapi_document()["components"]["schemas"]
    for route in COMMANDS:
        own = route.body.model_json_schema(ref_template="#/components/schemas/{model}")
        own.pop("$defs", None)
        assert schemas[route.body.__name__] == own, route.name
    assert set(schemas["Appended"]["properties"]) == set(Appended.model_fields)


def test_served_document_is_the_generated_one() -> None:
    app = create_app(LedgerSettings(kafka_bootstrap_servers="127.0.0.1:1", ledger_token="t"))
    served = app.test_client().get("/openapi.json")
    assert served.status_code == 200
    assert served.get_json() == json.loads(json.dumps(openapi_document()))
