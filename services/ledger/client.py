"""The one HTTP client of the ledger, for the web (its pages' commands) and the CLI (seed, roster import,
forget, accounts), and tests.

It lives beside the API it speaks (api.py, responses.py), so a change of the ledger's API and of its client
is one change in one package, and neither the web nor the CLI depends on the other to reach the ledger.
Its errors are those of every client of our services (common/service_client.py): `Unavailable` /
`OutcomeUnknown`, `NotFound`, `Conflict`, `Invalid`.

Every command carries an Idempotency-Key and every read is a GET, so every call is safe to repeat:
with `patience_s` (tools) a call the ledger could not take or answer (503, unreachable, no answer) is
sent again until that much time has passed; the ledger answers a repeated command with its first answer
and appends nothing. The web gives no patience: a page says "try again" at once.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import date
from typing import Any

from reciprocity.common.service_client import NotFound, ServiceClient, Shape, Unavailable, segment
from reciprocity.contracts.vocabulary import RECORDED

REPLAYED_HEADER = "Idempotent-Replayed"


@dataclass(frozen=True)
class LedgerAnswer:
    """What the ledger answered to a command, as tools need it."""

    status: int  # 201: appended; 200: nothing needed appending
    body: Any
    replayed: bool = False  # the ledger had seen this key and body: first answer again, nothing appended


class CommandReceipt(Shape):
    """What the ledger answered to a command, as the web reads it (contracts.commands.Appended and Unchanged,
    leniently): where its first event landed, or no `event_id` when nothing needed appending."""

    event_id: str | None = None  # None on a 200 "unchanged" answer: nothing needed appending
    topic: str = ""
    partition: int = 0
    offset: int = 0
    id: str | None = None


class LedgerExchange(Shape):
    """An exchange as the ledger (the write side) knows it: whether it exists, before balance shows it."""

    exchange_id: str
    giver: str
    receiver: str
    recorded_by: str
    status: str = RECORDED
    occurred_on: date | None = None

    def involves(self, member_id: str) -> bool:
        return member_id in (self.giver, self.receiver)


class EmailSettings(Shape):
    """Which emails about herself a member gets (the ledger's member view); both on by default."""

    own_alert_emails: bool = True
    daily_digest: bool = True


class LedgerClient(ServiceClient):
    service = "ledger"

    def __init__(self, base_url: str, token: str, *, timeout_s: float = 5.0, patience_s: float = 0.0) -> None:
        super().__init__(base_url, timeout_s=timeout_s, token=token)
        self.patience_s = patience_s  # how long to keep sending a call again while the ledger is away or busy

    @classmethod
    def patient(cls, base_url: str, token: str, *, patience_s: float = 60.0) -> LedgerClient:
        """For tools (the CLI): waits out a ledger that is starting or briefly away, and a slow answer."""
        return cls(base_url, token, timeout_s=15.0, patience_s=patience_s)

    def __enter__(self) -> LedgerClient:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def _request(self, method: str, path: str, **kw: Any) -> Any:
        deadline = time.monotonic() + self.patience_s
        while True:
            try:
                return super()._request(method, path, **kw)
            except Unavailable as err:  # OutcomeUnknown too: every ledger call is safe to repeat
                if time.monotonic() >= deadline:
                    raise
                time.sleep(min(float(err.retry_after or 1), 5.0, max(deadline - time.monotonic(), 0.0)))

    # --- any command or resource (tools) ------------------------------------------------------------------

    def command(self, method: str, path: str, body: dict[str, Any], *, key: str) -> LedgerAnswer:
        """Send a command; a 200 or 201 is returned, anything else raised."""
        answer = self._request(method, path, json=body, headers={"Idempotency-Key": key})
        return LedgerAnswer(answer.status_code, self._json(answer), answer.headers.get(REPLAYED_HEADER) == "true")

    def stats(self) -> dict[str, int]:
        found: dict[str, int] = self._call("GET", "/v1/stats")
        return found

    def member(self, member_id: str) -> dict[str, Any] | None:
        """The ledger's member view; None when it knows no such member."""
        return self._resource(f"/v1/members/{segment(member_id)}")

    def circle(self, circle_id: str) -> dict[str, Any] | None:
        return self._resource(f"/v1/circles/{segment(circle_id)}")

    def _resource(self, path: str) -> dict[str, Any] | None:
        try:
            found: dict[str, Any] = self._call("GET", path)
        except NotFound:
            return None
        return found

    # --- the web's calls ---------------------------------------------------------------------------------

    def _command(self, method: str, path: str, body: dict[str, Any], key: str) -> CommandReceipt:
        return self._parse(CommandReceipt, self._call(method, path, json=body, headers={"Idempotency-Key": key}))

    def exchange(self, exchange_id: str) -> LedgerExchange:
        """Whether the ledger has this exchange (NotFound if not), even if balance does not show it yet."""
        return self._parse(LedgerExchange, self._call("GET", f"/v1/exchanges/{segment(exchange_id)}"))

    def record_exchange(self, body: dict[str, Any], *, key: str) -> CommandReceipt:
        return self._command("POST", "/v1/exchanges", body, key)

    def acknowledge(self, exchange_id: str, *, by: str, thanks: str, shared: bool, key: str) -> CommandReceipt:
        return self._command("POST", f"/v1/exchanges/{segment(exchange_id)}/acknowledge",
                             {"by": by, "thanks": thanks, "shared": shared}, key)

    def dispute(self, exchange_id: str, *, by: str, reason: str, key: str) -> CommandReceipt:
        return self._command("POST", f"/v1/exchanges/{segment(exchange_id)}/dispute",
                             {"by": by, "reason": reason}, key)

    def withdraw(self, exchange_id: str, *, by: str, key: str) -> CommandReceipt:
        return self._command("POST", f"/v1/exchanges/{segment(exchange_id)}/withdraw", {"by": by}, key)

    def declare_capacity(self, member_id: str, *, weekly_hours: float | None, key: str) -> CommandReceipt:
        return self._command("PUT", f"/v1/members/{segment(member_id)}/capacity", {"weekly_hours": weekly_hours},
                             key)

    def change_availability(self, member_id: str, *, status: str, paused_until: date | None,
                            key: str) -> CommandReceipt:
        body = {"status": status, "paused_until": paused_until.isoformat() if paused_until else None}
        return self._command("PUT", f"/v1/members/{segment(member_id)}/availability", body, key)

    def correct(self, exchange_id: str, *, by: str, kind: str, minutes: int, occurred_on: date, note: str,
                key: str) -> CommandReceipt:
        body = {"by": by, "kind": kind, "minutes": minutes, "occurred_on": occurred_on.isoformat(), "note": note}
        return self._command("POST", f"/v1/exchanges/{segment(exchange_id)}/correct", body, key)

    def share(self, exchange_id: str, *, by: str, shared: bool, key: str) -> CommandReceipt:
        return self._command("PUT", f"/v1/exchanges/{segment(exchange_id)}/sharing", {"by": by, "shared": shared},
                             key)

    def email_settings(self, member_id: str) -> EmailSettings:
        return self._parse(EmailSettings, self._call("GET", f"/v1/members/{segment(member_id)}"))

    def set_email_settings(self, member_id: str, *, own_alert_emails: bool, daily_digest: bool,
                           key: str) -> CommandReceipt:
        return self._command("PUT", f"/v1/members/{segment(member_id)}/notifications",
                             {"own_alert_emails": own_alert_emails, "daily_digest": daily_digest}, key)

    def forgettings(self) -> list[dict[str, Any]]:
        """Members forgotten: when, and which operator asked; never whom (the ledger does not say)."""
        found = self._call("GET", "/v1/forgettings")
        items = found.get("forgettings") if isinstance(found, dict) else None
        return [dict(at=i.get("at"), requested_by=i.get("requested_by")) for i in items or [] if isinstance(i, dict)]
