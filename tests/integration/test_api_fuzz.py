"""schemathesis against the three service APIs, in-process over WSGI: every route documented, and a
bounded number of generated requests per API (FUZZ_EXAMPLES per operation and mode) with zero 5xx, zero
answers that break the document (status codes, content types, bodies) and every request the document
calls invalid refused; for the ledger also every request it calls valid accepted, bar rules no schema
can state.

The ledger runs over an in-memory log (its real validation and handlers), balance over a real SQLite
read model with a small organisation projected into it, notify over its real delivery log.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from datetime import date, timedelta
from typing import Any

import pytest
import schemathesis
from flask import Flask
from hypothesis import HealthCheck, Phase, settings
from reciprocity.balance.app import create_app as balance_app
from reciprocity.balance.db import make_engine, migrate
from reciprocity.balance.openapi import openapi_document as balance_document
from reciprocity.balance.projection import BalanceProjection
from reciprocity.balance.settings import BalanceSettings
from reciprocity.ledger.api import openapi_document as ledger_document
from reciprocity.ledger.app import create_app as ledger_app
from reciprocity.ledger.app import ledger_of
from reciprocity.ledger.settings import LedgerSettings
from reciprocity.notify.app import STATUSES as NOTIFY_STATUSES
from reciprocity.notify.app import create_app as notify_app
from reciprocity.notify.bootstrap import Notifier
from reciprocity.notify.openapi import openapi_document as notify_document
from reciprocity.notify.settings import NotifySettings
from schemathesis.checks import not_a_server_error
from schemathesis.generation.modes import GenerationMode
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    negative_data_rejection,
    response_schema_conformance,
    status_code_conformance,
)

from tests.support.events import Exchange, Feeder, circle, member
from tests.support.memory_log import MemoryLog

TOKEN = "fuzz-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
# Per operation and generation mode (positive, negative): a few hundred requests per API in all.
FUZZ_EXAMPLES = 10
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]
FUZZ = settings(max_examples=FUZZ_EXAMPLES, deadline=None, derandomize=True, database=None,
                phases=[Phase.explicit, Phase.generate],
                suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow,
                                       HealthCheck.filter_too_much])

# Rules a JSON Schema cannot state: a date within a window around today, two different parties, the
# recorder being one of them, a pause end only with a pause; references to what does not exist yet (state);
# and whole numbers written as such (JSON Schema counts 10.0 as an integer; the ledger wants 10).
BEYOND_THE_SCHEMA = {"occurred_on", "receiver", "recorded_by", "paused_until"}
BEYOND_THE_SCHEMA_MESSAGES = re.compile(r"there is no |must be a whole number")


def schema_valid_commands_are_accepted(ctx: Any, response: Any, case: Any) -> bool | None:
    """schemathesis' positive_data_acceptance, for the ledger: a request the document says is valid is
    not refused as invalid (422), unless only for a rule beyond the schema's reach."""
    if not (case.meta and case.meta.generation.mode == GenerationMode.POSITIVE) or response.status_code != 422:
        return None
    wrong = [error for error in response.json().get("errors", [])
             if error.get("field") not in BEYOND_THE_SCHEMA
             and not BEYOND_THE_SCHEMA_MESSAGES.search(str(error.get("message")))]
    if wrong:
        raise AssertionError(f"a schema-valid request was refused: {wrong}")
    return True


def _schema(document: dict[str, Any]) -> Any:
    schema = schemathesis.openapi.from_dict(document)
    # The APIs ignore query parameters they do not know (as HTTP APIs commonly do): a request is not
    # "schema-violating" for carrying one.
    schema.config.generation.update(allow_extra_parameters=False)
    # /health takes no input and answers 503 by design while Kafka is away (as it is here).
    return schema.exclude(path="/health")


LEDGER = _schema(ledger_document())
BALANCE = _schema(balance_document())
NOTIFY = _schema(notify_document(NOTIFY_STATUSES))


@pytest.fixture(scope="module")
def ledger() -> Flask:
    app = ledger_app(LedgerSettings(kafka_bootstrap_servers="127.0.0.1:1", ledger_token=TOKEN),
                     event_log=MemoryLog())  # type: ignore[arg-type]
    ledger_of(app).stale_reason = None  # as if loaded from empty topics
    client = app.test_client()
    for n, (path, body) in enumerate([
        ("/v1/circles", {"id": "aa", "name": "AA"}),
        *(("/v1/members", {"id": m, "name": m.title(), "email": f"{m}@example.org", "circles": ["aa"]})
           for m in ("ada", "bob")),
    ]):
        assert client.post(path, json=body, headers={**AUTH, "Idempotency-Key": f"seed-{n}"}).status_code == 201
    return app


@pytest.fixture(scope="module")
def balance(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Flask]:
    url = f"sqlite:///{tmp_path_factory.mktemp('fuzz-balance')}/balance.db"
    engine = make_engine(url)
    migrate(engine)
    feeder = Feeder(BalanceProjection(engine), partition=0)
    feeder.feed([circle("core"), *(member(m, ["core"]) for m in ("ann", "bob", "cat"))])
    today = date.today()
    exchanges = [Exchange("ann", "bob", 30 + i, today - timedelta(days=i), exchange_id=f"x-{i}") for i in range(5)]
    feeder.feed([x.recorded() for x in exchanges])
    feeder.feed([exchanges[0].acknowledged("thanks!", shared=True), exchanges[1].disputed()])
    yield balance_app(BalanceSettings(database_url=url, balance_token=TOKEN), engine=engine,
                      end_offsets_fn=dict, dead_letters_fn=list)
    engine.dispose()


@pytest.fixture(scope="module")
def notify(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Flask]:
    notifier = Notifier(NotifySettings(database_url=f"sqlite:///{tmp_path_factory.mktemp('fuzz-notify')}/n.db",
                                       kafka_bootstrap_servers="127.0.0.1:9", notify_token=TOKEN))
    yield notify_app(notifier=notifier)
    notifier.close()


def _documented(app: Flask, document: dict[str, Any]) -> None:
    served = {re.sub(r"<(?:\w+:)?(\w+)>", r"{\1}", rule.rule) for rule in app.url_map.iter_rules()
              if rule.endpoint != "static"}
    assert served - {"/metrics", "/openapi.json"} == set(document["paths"]) - {"/metrics"}, "every route documented"


def test_every_route_is_documented(ledger: Flask, balance: Flask, notify: Flask) -> None:
    _documented(ledger, ledger_document())
    _documented(balance, balance_document())
    _documented(notify, notify_document(NOTIFY_STATUSES))
    for app, document in ((balance, balance_document()), (notify, notify_document(NOTIFY_STATUSES))):
        served = app.test_client().get("/openapi.json", headers=AUTH)
        assert served.status_code == 200 and served.get_json() == document
        assert app.test_client().get("/openapi.json").status_code == 401


@LEDGER.parametrize()
@FUZZ
def test_ledger_api(case: Any, ledger: Flask) -> None:
    headers = {**(case.headers or {}), **AUTH}
    if "Idempotency-Key" in headers and case.meta and case.meta.generation.mode == GenerationMode.POSITIVE:
        # A fresh key per request, as a client makes one per command: a generated key that happens to
        # repeat one sent with another body is refused (422), rightly, whatever the body.
        headers["Idempotency-Key"] = str(uuid.uuid4())
    case.call_and_validate(app=ledger, headers=headers,
                           checks=[*CHECKS, negative_data_rejection, schema_valid_commands_are_accepted])


@BALANCE.parametrize()
@FUZZ
def test_balance_api(case: Any, balance: Flask) -> None:
    case.call_and_validate(app=balance, headers={**(case.headers or {}), **AUTH},
                           checks=[*CHECKS, negative_data_rejection])


@NOTIFY.parametrize()
@FUZZ
def test_notify_api(case: Any, notify: Flask) -> None:
    case.call_and_validate(app=notify, headers={**(case.headers or {}), **AUTH},
                           checks=[*CHECKS, negative_data_rejection])
