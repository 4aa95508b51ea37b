"""A small HTTP client of the ledger for tools (the seed and roster commands, tests).

Every command carries an Idempotency-Key, so retrying after a 503 or a dropped connection is safe:
the ledger answers a repeat with the first answer and appends nothing.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import requests


class LedgerError(RuntimeError):
    """The ledger refused a command (4xx) or stayed unavailable; `status` and `body` say why."""

    def __init__(self, status: int, body: Any, method: str, path: str) -> None:
        self.status, self.body, self.method, self.path = status, body, method, path
        super().__init__(f"{method} {path} -> {status}: {describe(body)}")


def describe(body: Any) -> str:
    """The ledger's error body as one line: its `error`, or its field errors."""
    if isinstance(body, dict):
        if "error" in body:
            return str(body["error"])
        if "errors" in body:
            return "; ".join(f"{e.get('field')}: {e.get('message')}" for e in body["errors"])
    return str(body)[:300]


@dataclass
class Answer:
    status: int
    body: Any
    replayed: bool = False  # the ledger had seen this key and body: first answer again, nothing appended


def segment(value: str) -> str:
    return quote(value, safe="")


class LedgerClient:
    def __init__(self, base_url: str, token: str, *, timeout_s: float = 15.0, patience_s: float = 60.0) -> None:
        self.base_url = base_url.rstrip("/")
        self.timeout_s = timeout_s
        self.patience_s = patience_s  # how long to keep retrying while the ledger answers 503 or is away
        self.session = requests.Session()
        self.session.headers["Authorization"] = f"Bearer {token}"

    def close(self) -> None:
        self.session.close()

    def __enter__(self) -> LedgerClient:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def _send(self, method: str, path: str, **kw: Any) -> Answer:
        deadline = time.monotonic() + self.patience_s
        while True:
            try:
                response = self.session.request(method, self.base_url + path, timeout=self.timeout_s, **kw)
            except requests.ConnectionError as err:
                if time.monotonic() > deadline:
                    raise LedgerError(0, f"cannot reach the ledger at {self.base_url}: {err}", method, path) from err
                time.sleep(1.0)
                continue
            try:
                body = response.json()
            except ValueError:
                body = response.text
            if response.status_code == 503 and time.monotonic() < deadline:
                time.sleep(min(float(response.headers.get("Retry-After", "1")), 5.0))
                continue
            return Answer(response.status_code, body, response.headers.get("Idempotent-Replayed") == "true")

    def command(self, method: str, path: str, body: dict[str, Any], *, key: str,
                accept: tuple[int, ...] = ()) -> Answer:
        """Send a command; 200/201 (and any status in `accept`) return, anything else raises LedgerError."""
        answer = self._send(method, path, json=body, headers={"Idempotency-Key": key})
        if answer.status in (200, 201, *accept):
            return answer
        raise LedgerError(answer.status, answer.body, method, path)

    def get(self, path: str) -> Any | None:
        """GET a ledger resource; None when it does not exist (404)."""
        answer = self._send("GET", path)
        if answer.status == 404:
            return None
        if answer.status != 200:
            raise LedgerError(answer.status, answer.body, "GET", path)
        return answer.body

    # --- named calls --------------------------------------------------------------------------------------

    def stats(self) -> dict[str, int]:
        found = self.get("/v1/stats")
        assert found is not None
        return found

    def member(self, member_id: str) -> dict[str, Any] | None:
        return self.get(f"/v1/members/{segment(member_id)}")

    def circle(self, circle_id: str) -> dict[str, Any] | None:
        return self.get(f"/v1/circles/{segment(circle_id)}")

    def exchange(self, exchange_id: str) -> dict[str, Any] | None:
        return self.get(f"/v1/exchanges/{segment(exchange_id)}")
