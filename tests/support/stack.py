"""The whole stack for browser tests: ledger, balance (its projector and its read API) and web as real
processes on a real broker, run as in production (tests/integration/test_processes.py checks the roles).

Each stack has its own topic prefix and SQLite files, so it shares the broker with anything else.
People and circles are registered through the ledger's API, like the roster import does; web
passwords go straight into the web's database (they never travel through events).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests
from reciprocity.contracts.topics import all_topics
from reciprocity.messaging.topics_admin import ensure_topics
from reciprocity.web.accounts import set_password

from tests.support.auth import BALANCE_TOKEN, bearer
from tests.support.services import ServiceProcess, wait_for, worker

TOKEN = "e2e-ledger-token"
PASSWORD = "reciprocity-demo"


@dataclass
class Stack:
    ledger: ServiceProcess
    balance: ServiceProcess
    web: ServiceProcess
    web_database_url: str
    log_dir: Path
    prefix: str
    registered: set[str] = field(default_factory=set)
    projector: ServiceProcess | None = None

    @property
    def url(self) -> str:
        return self.web.url

    def command(self, method: str, path: str, body: dict[str, Any]) -> dict[str, Any]:
        answer = requests.request(method, self.ledger.url + path, json=body, timeout=15, headers={
            "Authorization": f"Bearer {TOKEN}", "Idempotency-Key": str(uuid.uuid4())})
        assert answer.status_code in (200, 201), (path, answer.status_code, answer.text)
        return answer.json()

    def circle(self, circle_id: str, name: str, leads: list[str] | None = None) -> None:
        self.command("POST", "/v1/circles", {"id": circle_id, "name": name})
        if leads:
            self.command("PUT", f"/v1/circles/{circle_id}/leads", {"leads": leads})

    def member(self, member_id: str, name: str, circles: list[str], role: str = "member") -> None:
        self.command("POST", "/v1/members", {"id": member_id, "name": name, "email": f"{member_id}@example.org",
                                             "circles": circles, "role": role})
        set_password(self.web_database_url, member_id, PASSWORD)
        self.registered.add(member_id)

    def balance_json(self, path: str) -> Any:
        answer = requests.get(self.balance.url + path, timeout=10, headers=bearer(BALANCE_TOKEN))
        return answer.json() if answer.status_code == 200 else None

    def wait_for_directory(self, member_ids: list[str], timeout_s: float = 60) -> None:
        for member_id in member_ids:
            wait_for(lambda m=member_id: self.balance_json(f"/v1/directory/members/{m}"), timeout_s,
                     what=f"balance to know member {member_id}")

    def wait_for_leads(self, circle_id: str, leads: list[str], timeout_s: float = 60) -> None:
        def done() -> bool:
            circles = (self.balance_json("/v1/directory/circles") or {}).get("circles", [])
            return any(c["id"] == circle_id and sorted(c.get("leads", [])) == sorted(leads) for c in circles)

        wait_for(done, timeout_s, what=f"balance to know the leads of {circle_id}")


@contextmanager
def running_stack(bootstrap: str, work_dir: Path) -> Iterator[Stack]:
    prefix = f"t.web.{uuid.uuid4().hex[:10]}."
    ensure_topics(bootstrap, all_topics(prefix))
    common = {"KAFKA_BOOTSTRAP_SERVERS": bootstrap, "TOPIC_PREFIX": prefix, "LEDGER_TOKEN": TOKEN,
              "LOG_LEVEL": "INFO"}
    web_db = f"sqlite:///{work_dir}/web.db"
    with ExitStack() as stack:
        ledger = stack.enter_context(ServiceProcess("reciprocity.ledger.app", env=common, log_dir=work_dir,
                                                    startup_timeout_s=120))
        balance_env = {**common, "DATABASE_URL": f"sqlite:///{work_dir}/balance.db", "LEDGER_URL": ledger.url}
        projector = stack.enter_context(worker("reciprocity.balance.worker", "projector", env=balance_env,
                                               log_dir=work_dir, startup_timeout_s=120))
        balance = stack.enter_context(ServiceProcess("reciprocity.balance.app", env=balance_env, log_dir=work_dir,
                                                     startup_timeout_s=120))
        web = stack.enter_context(ServiceProcess("reciprocity.web.app", env={
            **common, "LEDGER_URL": ledger.url, "BALANCE_URL": balance.url,
            # Nothing listens there: the operator page must say notify is not answering, not crash.
            "NOTIFY_URL": "http://127.0.0.1:9", "DATABASE_URL": web_db, "SECRET_KEY": "e2e-" + uuid.uuid4().hex,
            "WEB_BASE_URL": "http://127.0.0.1",
        }, log_dir=work_dir, startup_timeout_s=60))
        yield Stack(ledger=ledger, balance=balance, web=web, web_database_url=web_db, log_dir=work_dir,
                    prefix=prefix, projector=projector)
