"""Thin typed clients of the ledger, balance and notify services.

This is the only module of the web that knows their URLs and the shapes of their answers. Pages get
pydantic models (unknown fields ignored, so a service may add fields without breaking the web) and
a small set of exceptions:

- `Unavailable`: the service could not be reached, answered 503 or another error the person cannot fix,
  or answered something we cannot read. Pages show a friendly "try again" message; nothing was changed.
- `OutcomeUnknown` (an `Unavailable`): the request may have reached the service and been carried out,
  but no usable answer came back (a timeout, a dropped connection, a 5xx other than 503). A command
  must then be retried with the same Idempotency-Key, never reported as lost.
- `NotFound`: 404 for an id.
- `Invalid`: 422 with field errors (ledger commands).
- `Conflict`: 409, the state does not allow the transition (e.g. already acknowledged).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, Protocol

import requests
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from urllib3.exceptions import ConnectTimeoutError, NewConnectionError

log = logging.getLogger(__name__)

KINDS = ("mentoring", "feedback", "help", "knowledge", "resource", "care")


# -- errors --------------------------------------------------------------------------------------------


class ClientError(Exception):
    """Base of every error a client raises; `service` names which one."""

    def __init__(self, service: str, message: str) -> None:
        super().__init__(f"{service}: {message}")
        self.service = service
        self.message = message


class Unavailable(ClientError):
    def __init__(self, service: str, message: str, retry_after: int | None = None) -> None:
        super().__init__(service, message)
        self.retry_after = retry_after


class OutcomeUnknown(Unavailable):
    """Sent, but no answer to trust: the command may or may not have been carried out."""


class NotFound(ClientError):
    pass


class Conflict(ClientError):
    pass


@dataclass(frozen=True)
class FieldError:
    field: str
    message: str


class Invalid(ClientError):
    def __init__(self, service: str, errors: list[FieldError]) -> None:
        super().__init__(service, "; ".join(f"{e.field}: {e.message}" for e in errors) or "invalid")
        self.errors = errors


# -- shapes --------------------------------------------------------------------------------------------


class Shape(BaseModel):
    model_config = ConfigDict(extra="ignore", populate_by_name=True, frozen=True)


class Totals(Shape):
    minutes: int = 0
    count: int = 0
    pending_minutes: int = 0
    pending_count: int = 0


class KindTotals(Shape):
    given_minutes: int = 0
    given_count: int = 0
    received_minutes: int = 0
    received_count: int = 0
    pending_given_minutes: int = 0
    pending_received_minutes: int = 0


class Capacity(Shape):
    weekly_hours: float | None = None
    given_last_7_days_minutes: int = 0
    used_fraction: float | None = None


class Summary(Shape):
    member_id: str
    window_days: int
    from_: date | None = Field(default=None, alias="from")
    to: date | None = None
    given: Totals = Totals()
    received: Totals = Totals()
    by_kind: dict[str, KindTotals] = {}
    reciprocity_index: float = 1.0
    capacity: Capacity = Capacity()

    def kind(self, kind: str) -> KindTotals:
        return self.by_kind.get(kind, KindTotals())


class Week(Shape):
    week_start: date
    given: dict[str, int] = {}
    received: dict[str, int] = {}
    pending_given: int = 0
    pending_received: int = 0


class Timeline(Shape):
    member_id: str
    weeks: list[Week] = []
    pending_given: int = 0
    pending_received: int = 0


class Relationship(Shape):
    other: str
    other_name: str = ""
    given_minutes: int = 0
    received_minutes: int = 0
    given_count: int = 0
    received_count: int = 0
    by_kind: dict[str, dict[str, int]] = {}
    last_exchange_on: date | None = None
    # Recorded and not yet acknowledged, as balance counts them per pair.
    pending_given_minutes: int = 0
    pending_received_minutes: int = 0
    pending_given_count: int = 0
    pending_received_count: int = 0
    pending_by_kind: dict[str, dict[str, int]] = {}

    @property
    def name(self) -> str:
        return self.other_name or self.other

    @property
    def settled_count(self) -> int:
        return self.given_count + self.received_count


class Exchange(Shape):
    exchange_id: str
    giver: str
    giver_name: str = ""
    receiver: str
    receiver_name: str = ""
    kind: str
    minutes: int
    note: str = ""
    occurred_on: date
    recorded_by: str
    recorded_at: datetime | None = None
    status: str = "recorded"
    thanks: str | None = None
    dispute_reason: str | None = None
    shared_by_recorder: bool = False
    shared_by_acknowledger: bool = False
    acknowledged_at: datetime | None = None  # on the wall only: when it was thanked
    correction: dict[str, Any] | None = None  # what the recorder's latest correction replaced

    def name_of(self, member_id: str) -> str:
        if member_id == self.giver:
            return self.giver_name or self.giver
        if member_id == self.receiver:
            return self.receiver_name or self.receiver
        return member_id

    @property
    def counterpart(self) -> str:
        """The party who did not record it: the one who may acknowledge or dispute."""
        return self.receiver if self.recorded_by == self.giver else self.giver

    def involves(self, member_id: str) -> bool:
        return member_id in (self.giver, self.receiver)

    def other_party(self, member_id: str) -> str:
        return self.receiver if member_id == self.giver else self.giver


class WallPage(Shape):
    """One page of the appreciation wall, newest first; `next_cursor` fetches older ones (None: the oldest)."""

    appreciations: list[Exchange] = []
    next_cursor: str | None = None


class ExchangePage(Shape):
    """One page of a member's history, newest first; `next_cursor` fetches the next (None: the last)."""

    exchanges: list[Exchange] = []
    next_cursor: str | None = None


class EmailSettings(Shape):
    """Which emails about herself a member gets (the ledger's member view); both on by default."""

    own_alert_emails: bool = True
    daily_digest: bool = True


class LedgerExchange(Shape):
    """An exchange as the ledger (the write side) knows it: whether it exists, before balance shows it."""

    exchange_id: str
    giver: str
    receiver: str
    recorded_by: str
    status: str = "recorded"

    def involves(self, member_id: str) -> bool:
        return member_id in (self.giver, self.receiver)


class Member(Shape):
    id: str
    name: str = ""
    email: str = ""
    circles: list[str] = []
    role: str = "member"
    weekly_hours: float | None = None
    status: str = "active"
    paused_until: date | None = None
    leads_circles: list[str] = []
    former: bool = False  # forgotten: no name, no email, no sign-in; exchanges still count

    @property
    def display_name(self) -> str:
        return self.name or self.id

    @property
    def is_operator(self) -> bool:
        return self.role == "operator"

    @property
    def is_paused(self) -> bool:
        return self.status == "paused"


class Circle(Shape):
    id: str
    name: str = ""
    parent: str | None = None
    leads: list[str] = []
    member_count: int = 0


class Flow(Shape):
    giver: str
    receiver: str
    minutes: int


class CircleHealth(Shape):
    circle_id: str
    name: str = ""
    window_days: int = 28
    member_count: int = 0
    private: bool = False
    participation_rate: float | None = None
    mutual_ties: float | None = None
    gini: float | None = None
    cross_circle_breadth: float | None = None
    mentoring_minutes: int | None = None
    mentoring_count: int | None = None
    feedback_cycles: float | None = None
    flows: list[Flow] = []


class Signal(Shape):
    event_id: str
    type: str
    member_id: str
    circles: list[str] = []
    raised_at: datetime | None = None
    window_start: date | None = None
    window_end: date | None = None
    details: dict[str, Any] = {}
    active: bool = True
    cleared_at: datetime | None = None


class Dashboard(Shape):
    """Balance's one answer for the dashboard (GET /v1/members/{id}/dashboard)."""

    summary: Summary
    timeline: Timeline
    waiting: list[Exchange] = []  # recorded, newest first
    recent: list[Exchange] = []
    signals: list[Signal] = []  # in force, about the member


class PartitionStatus(Shape):
    topic: str
    partition: int
    applied_offset: int | None = None
    end_offset: int | None = None
    lag: int | None = None
    last_event_at: datetime | None = None


class BuildingProgress(Shape):
    """A replay filling a new generation (another process); `end`/`progress` are None while Kafka is away."""

    generation: str | int | None = None
    started_at: datetime | None = None
    applied: int = 0
    end: int | None = None
    progress: float | None = None

    @property
    def percent(self) -> int | None:
        return None if self.progress is None else max(0, min(100, int(self.progress * 100)))


class FailedReplay(Shape):
    """The latest replay, which failed or whose process ended mid-way (`interrupted`): its generation is
    not used (the next replay deletes it)."""

    generation: str | int | None = None
    started_at: datetime | None = None
    interrupted: bool = False


class ProjectionStatus(Shape):
    generation: str | int | None = None
    healthy: bool = True
    reason: str | None = None
    partitions: list[PartitionStatus] = []
    building: BuildingProgress | None = None
    failed_replay: FailedReplay | None = None


class DeadLetter(Shape):
    """A record set aside on a DLQ: where it came from and why; balance never sends the payload."""

    topic: str
    offset: int | None = None
    source_topic: str | None = None
    source_partition: int | None = None
    source_offset: int | None = None
    error: str | None = None
    consumer: str | None = None  # the consumer group that parked it
    key: str | None = None
    size: int | None = None
    dead_lettered_at: datetime | None = None
    redriven: bool = False
    redriven_to: str | None = None

    @property
    def source_position(self) -> str:
        partition = "?" if self.source_partition is None else self.source_partition
        offset = "?" if self.source_offset is None else self.source_offset
        return f"{self.source_topic or '?'}[{partition}]@{offset}"


class DeadLetters(Shape):
    dead_letters: list[DeadLetter] = []
    counts: dict[str, int] = {}

    @property
    def total(self) -> int:
        return sum(self.counts.values())


class Appended(Shape):
    event_id: str | None = None  # None on a 200 "unchanged" answer: nothing needed appending
    topic: str = ""
    partition: int = 0
    offset: int = 0
    id: str | None = None


# -- the interfaces pages depend on (fakes in tests implement the same) ---------------------------------


class Ledger(Protocol):
    def health(self) -> str | None: ...
    def exchange(self, exchange_id: str) -> LedgerExchange: ...
    def record_exchange(self, body: dict[str, Any], *, key: str) -> Appended: ...
    def acknowledge(self, exchange_id: str, *, by: str, thanks: str, shared: bool, key: str) -> Appended: ...
    def dispute(self, exchange_id: str, *, by: str, reason: str, key: str) -> Appended: ...
    def withdraw(self, exchange_id: str, *, by: str, key: str) -> Appended: ...
    def declare_capacity(self, member_id: str, *, weekly_hours: float | None, key: str) -> Appended: ...
    def change_availability(self, member_id: str, *, status: str, paused_until: date | None, key: str) -> Appended: ...
    def share(self, exchange_id: str, *, by: str, shared: bool, key: str) -> Appended: ...
    def correct(self, exchange_id: str, *, by: str, kind: str, minutes: int, occurred_on: date, note: str,
                key: str) -> Appended: ...
    def email_settings(self, member_id: str) -> EmailSettings: ...
    def set_email_settings(self, member_id: str, *, own_alert_emails: bool, daily_digest: bool,
                           key: str) -> Appended: ...
    def forgettings(self) -> list[dict[str, Any]]: ...


class Balance(Protocol):
    def health(self) -> str | None: ...
    def summary(self, member_id: str, window: str = "28d") -> Summary: ...
    def timeline(self, member_id: str, weeks: int = 12) -> Timeline: ...
    def dashboard(self, member_id: str, window: str = "28d", weeks: int = 12) -> Dashboard: ...
    def relationships(self, member_id: str, window: str = "90d") -> list[Relationship]: ...
    def exchanges(self, member_id: str, status: str | None = None, limit: int = 50) -> list[Exchange]: ...
    def exchange_page(self, member_id: str, *, status: str | None = None, kind: str | None = None,
                      other: str | None = None, since: date | None = None, until: date | None = None,
                      limit: int = 50, cursor: str | None = None) -> ExchangePage: ...
    def exchange(self, exchange_id: str) -> Exchange: ...
    def appreciations(self, limit: int = 50, cursor: str | None = None) -> WallPage: ...
    def members(self, q: str = "", circle: str = "") -> list[Member]: ...
    def member(self, member_id: str) -> Member: ...
    def circles(self) -> list[Circle]: ...
    def circle_health(self, circle_id: str, window: str = "28d") -> CircleHealth: ...
    def signals(self, *, circle: str = "", member: str = "", active: bool = True) -> list[Signal]: ...
    def projection_status(self) -> ProjectionStatus: ...
    def dead_letters(self, topic: str = "", limit: int = 100) -> DeadLetters: ...


class Notify(Protocol):
    def health(self) -> str | None: ...
    def failed_deliveries(self) -> list[dict[str, Any]]: ...


@dataclass
class Clients:
    ledger: Ledger
    balance: Balance
    notify: Notify


# -- HTTP implementations ------------------------------------------------------------------------------


class _Http:
    service = "service"

    def __init__(self, base_url: str, *, timeout_s: float = 5.0, token: str | None = None) -> None:
        self.base_url = base_url.rstrip("/")
        self.timeout_s = timeout_s
        self.http = requests.Session()
        if token:
            self.http.headers["Authorization"] = f"Bearer {token}"

    def _call(self, method: str, path: str, *, params: dict[str, Any] | None = None,
              json: Any = None, headers: dict[str, str] | None = None) -> Any:
        url = self.base_url + path
        try:
            answer = self.http.request(method, url, params=params, json=json, headers=headers, timeout=self.timeout_s)
        except requests.RequestException as err:
            log.warning("%s %s failed: %r", method, url, err)
            if _may_have_arrived(err):
                raise OutcomeUnknown(self.service, "did not answer in time") from err
            raise Unavailable(self.service, "did not answer") from err
        if answer.status_code in (200, 201):
            try:
                return answer.json()
            except ValueError as err:
                raise Unavailable(self.service, "answered something that is not JSON") from err
        message = _error_message(answer)
        if answer.status_code == 404:
            raise NotFound(self.service, message)
        if answer.status_code == 409:
            raise Conflict(self.service, message)
        if answer.status_code == 422:
            raise Invalid(self.service, _field_errors(answer))
        if answer.status_code == 503:
            raise Unavailable(self.service, message, retry_after=_retry_after(answer))
        # 401 (wrong LEDGER_TOKEN), 400, 5xx: nothing the person at the browser can fix; log it loudly.
        log.error("%s %s answered %d: %s", method, url, answer.status_code, answer.text[:500])
        if answer.status_code >= 500:
            # Only a 503 promises that nothing was done; a crash or a proxy's 502/504 may come after it was.
            raise OutcomeUnknown(self.service, f"answered {answer.status_code}")
        raise Unavailable(self.service, f"answered {answer.status_code}")

    def _parse(self, model: type[Shape], data: Any) -> Any:
        try:
            return model.model_validate(data)
        except ValidationError as err:
            log.error("%s answered an unexpected %s: %s", self.service, model.__name__, err)
            raise Unavailable(self.service, f"answered an unexpected {model.__name__}") from err

    def _parse_list(self, model: type[Shape], data: Any, key: str) -> list[Any]:
        if not isinstance(data, dict) or not isinstance(data.get(key), list):
            raise Unavailable(self.service, f"answered without a {key!r} list")
        return [self._parse(model, item) for item in data[key]]

    def health(self) -> str | None:
        """None when /health answers 200, else a short reason (for the web's own /health)."""
        try:
            answer = self.http.get(self.base_url + "/health", timeout=min(self.timeout_s, 3.0))
        except requests.RequestException as err:
            return f"no answer from {self.base_url} ({type(err).__name__})"
        if answer.status_code != 200:
            return f"{self.base_url}/health answered {answer.status_code}"
        return None


def _may_have_arrived(err: requests.RequestException) -> bool:
    """Whether the request may have reached the service before it failed.

    Only a failure to connect proves it did not; a read timeout or a connection dropped mid-way may
    come after the service carried the request out (e.g. the ledger appended, then the answer was lost).
    """
    if isinstance(err, requests.ConnectTimeout):
        return False
    if isinstance(err, requests.Timeout):
        return True
    if isinstance(err, requests.ConnectionError):
        reason = getattr(err.args[0], "reason", None) if err.args else None
        return not isinstance(reason, NewConnectionError | ConnectTimeoutError)
    return False


def _error_message(answer: requests.Response) -> str:
    try:
        body = answer.json()
    except ValueError:
        return answer.text[:200] or answer.reason
    if isinstance(body, dict) and isinstance(body.get("error"), str):
        return body["error"]
    return str(body)[:200]


def _field_errors(answer: requests.Response) -> list[FieldError]:
    try:
        body = answer.json()
    except ValueError:
        return [FieldError("", answer.text[:200])]
    raw = body.get("errors") if isinstance(body, dict) else body
    if isinstance(raw, list):
        return [
            FieldError(str(e.get("field") or ""), str(e.get("message") or "is not valid"))
            for e in raw if isinstance(e, dict)
        ] or [FieldError("", "the request was not valid")]
    if isinstance(body, dict) and body.get("error"):
        return [FieldError("", str(body["error"]))]
    return [FieldError("", "the request was not valid")]


def _retry_after(answer: requests.Response) -> int | None:
    try:
        return int(answer.headers.get("Retry-After", ""))
    except ValueError:
        return None


class HttpLedger(_Http):
    service = "ledger"

    def _command(self, method: str, path: str, body: dict[str, Any], key: str) -> Appended:
        return self._parse(Appended, self._call(method, path, json=body, headers={"Idempotency-Key": key}))

    def exchange(self, exchange_id: str) -> LedgerExchange:
        """Whether the ledger has this exchange (NotFound if not), even if balance does not show it yet."""
        return self._parse(LedgerExchange, self._call("GET", f"/v1/exchanges/{_seg(exchange_id)}"))

    def record_exchange(self, body: dict[str, Any], *, key: str) -> Appended:
        return self._command("POST", "/v1/exchanges", body, key)

    def acknowledge(self, exchange_id: str, *, by: str, thanks: str, shared: bool, key: str) -> Appended:
        return self._command("POST", f"/v1/exchanges/{_seg(exchange_id)}/acknowledge",
                             {"by": by, "thanks": thanks, "shared": shared}, key)

    def dispute(self, exchange_id: str, *, by: str, reason: str, key: str) -> Appended:
        return self._command("POST", f"/v1/exchanges/{_seg(exchange_id)}/dispute", {"by": by, "reason": reason}, key)

    def withdraw(self, exchange_id: str, *, by: str, key: str) -> Appended:
        return self._command("POST", f"/v1/exchanges/{_seg(exchange_id)}/withdraw", {"by": by}, key)

    def declare_capacity(self, member_id: str, *, weekly_hours: float | None, key: str) -> Appended:
        return self._command("PUT", f"/v1/members/{_seg(member_id)}/capacity", {"weekly_hours": weekly_hours}, key)

    def change_availability(self, member_id: str, *, status: str, paused_until: date | None, key: str) -> Appended:
        body = {"status": status, "paused_until": paused_until.isoformat() if paused_until else None}
        return self._command("PUT", f"/v1/members/{_seg(member_id)}/availability", body, key)

    def correct(self, exchange_id: str, *, by: str, kind: str, minutes: int, occurred_on: date, note: str,
                key: str) -> Appended:
        body = {"by": by, "kind": kind, "minutes": minutes, "occurred_on": occurred_on.isoformat(), "note": note}
        return self._command("POST", f"/v1/exchanges/{_seg(exchange_id)}/correct", body, key)

    def share(self, exchange_id: str, *, by: str, shared: bool, key: str) -> Appended:
        return self._command("PUT", f"/v1/exchanges/{_seg(exchange_id)}/sharing", {"by": by, "shared": shared}, key)

    def email_settings(self, member_id: str) -> EmailSettings:
        return self._parse(EmailSettings, self._call("GET", f"/v1/members/{_seg(member_id)}"))

    def set_email_settings(self, member_id: str, *, own_alert_emails: bool, daily_digest: bool,
                           key: str) -> Appended:
        return self._command("PUT", f"/v1/members/{_seg(member_id)}/notifications",
                             {"own_alert_emails": own_alert_emails, "daily_digest": daily_digest}, key)

    def forgettings(self) -> list[dict[str, Any]]:
        """Members forgotten: when, and which operator asked; never whom (the ledger does not say)."""
        found = self._call("GET", "/v1/forgettings")
        items = found.get("forgettings") if isinstance(found, dict) else None
        return [dict(at=i.get("at"), requested_by=i.get("requested_by")) for i in items or [] if isinstance(i, dict)]


class HttpBalance(_Http):
    service = "balance"

    def summary(self, member_id: str, window: str = "28d") -> Summary:
        return self._parse(Summary, self._call("GET", f"/v1/members/{_seg(member_id)}/summary",
                                               params={"window": window}))

    def timeline(self, member_id: str, weeks: int = 12) -> Timeline:
        return self._parse(Timeline, self._call("GET", f"/v1/members/{_seg(member_id)}/timeline",
                                                params={"weeks": weeks}))

    def dashboard(self, member_id: str, window: str = "28d", weeks: int = 12) -> Dashboard:
        return self._parse(Dashboard, self._call("GET", f"/v1/members/{_seg(member_id)}/dashboard",
                                                 params={"window": window, "weeks": weeks}))

    def relationships(self, member_id: str, window: str = "90d") -> list[Relationship]:
        data = self._call("GET", f"/v1/members/{_seg(member_id)}/relationships", params={"window": window})
        return self._parse_list(Relationship, data, "relationships")

    def exchanges(self, member_id: str, status: str | None = None, limit: int = 50) -> list[Exchange]:
        return self.exchange_page(member_id, status=status, limit=limit).exchanges

    def exchange_page(self, member_id: str, *, status: str | None = None, kind: str | None = None,
                      other: str | None = None, since: date | None = None, until: date | None = None,
                      limit: int = 50, cursor: str | None = None) -> ExchangePage:
        params: dict[str, Any] = {"limit": limit}
        for name, value in (("status", status), ("kind", kind), ("with", other), ("cursor", cursor),
                            ("from", since.isoformat() if since else None),
                            ("to", until.isoformat() if until else None)):
            if value:
                params[name] = value
        data = self._call("GET", f"/v1/members/{_seg(member_id)}/exchanges", params=params)
        exchanges = self._parse_list(Exchange, data, "exchanges")
        cursor = data.get("next_cursor")
        return ExchangePage(exchanges=exchanges, next_cursor=cursor if isinstance(cursor, str) else None)

    def exchange(self, exchange_id: str) -> Exchange:
        return self._parse(Exchange, self._call("GET", f"/v1/exchanges/{_seg(exchange_id)}"))

    def appreciations(self, limit: int = 50, cursor: str | None = None) -> WallPage:
        params: dict[str, Any] = {"limit": limit, **({"cursor": cursor} if cursor else {})}
        return self._parse(WallPage, self._call("GET", "/v1/appreciations", params=params))

    def members(self, q: str = "", circle: str = "") -> list[Member]:
        params = {k: v for k, v in (("q", q), ("circle", circle)) if v}
        return self._parse_list(Member, self._call("GET", "/v1/directory/members", params=params), "members")

    def member(self, member_id: str) -> Member:
        return self._parse(Member, self._call("GET", f"/v1/directory/members/{_seg(member_id)}"))

    def circles(self) -> list[Circle]:
        return self._parse_list(Circle, self._call("GET", "/v1/directory/circles"), "circles")

    def circle_health(self, circle_id: str, window: str = "28d") -> CircleHealth:
        return self._parse(CircleHealth, self._call("GET", f"/v1/circles/{_seg(circle_id)}/health",
                                                    params={"window": window}))

    def signals(self, *, circle: str = "", member: str = "", active: bool = True) -> list[Signal]:
        params = {k: v for k, v in (("circle", circle), ("member", member)) if v}
        params["active"] = "true" if active else "false"
        return self._parse_list(Signal, self._call("GET", "/v1/signals", params=params), "signals")

    def projection_status(self) -> ProjectionStatus:
        return self._parse(ProjectionStatus, self._call("GET", "/v1/projection/status"))

    def dead_letters(self, topic: str = "", limit: int = 100) -> DeadLetters:
        params: dict[str, Any] = {"limit": limit}
        if topic:
            params["topic"] = topic
        data = self._call("GET", "/v1/dead-letters", params=params)
        if not isinstance(data, dict) or not isinstance(data.get("dead_letters"), list):
            raise Unavailable(self.service, "answered without a 'dead_letters' list")
        return self._parse(DeadLetters, data)


class HttpNotify(_Http):
    service = "notify"

    def failed_deliveries(self) -> list[dict[str, Any]]:
        # The delivery log's shape is notify's business; the operator page shows whatever fields it has.
        data = self._call("GET", "/v1/deliveries", params={"status": "failed"})
        items = data.get("deliveries") if isinstance(data, dict) else data
        if not isinstance(items, list):
            raise Unavailable(self.service, "answered without a deliveries list")
        return [item for item in items if isinstance(item, dict)]


def _seg(value: str) -> str:
    """One URL path segment: ids are slugs, but never let a stray '/' or '?' reach another route."""
    return requests.utils.quote(value, safe="")


def http_clients(*, ledger_url: str, ledger_token: str, balance_url: str, balance_token: str, notify_url: str,
                 notify_token: str, timeout_s: float = 5.0) -> Clients:
    return Clients(
        ledger=HttpLedger(ledger_url, timeout_s=timeout_s, token=ledger_token),
        balance=HttpBalance(balance_url, timeout_s=timeout_s, token=balance_token),
        notify=HttpNotify(notify_url, timeout_s=timeout_s, token=notify_token),
    )
