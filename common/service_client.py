"""What every HTTP client of our own services shares: one error model, and one JSON-over-HTTP call.

The web's clients of balance and notify (web/clients/) and the one client of the ledger
(reciprocity.ledger.client, used by the web and the CLI) raise only these:

- `Unavailable`: the service could not be reached, answered 503 or another error the person cannot fix,
  or answered something we cannot read. Pages show a friendly "try again" message; nothing was changed.
- `OutcomeUnknown` (an `Unavailable`): the request may have reached the service and been carried out,
  but no usable answer came back (a timeout, a dropped connection, a 5xx other than 503). A command
  must then be retried with the same Idempotency-Key, never reported as lost.
- `NotFound`: 404 for an id.
- `Invalid`: 422 with field errors (ledger commands), each a `contracts.commands.FieldError`.
- `Conflict`: 409, the state does not allow the transition (e.g. already acknowledged).

Answers are parsed into `Shape`s: pydantic models that ignore unknown fields, so a service may add
fields without breaking its clients.

The calls go through `Http`, a keep-alive connection pool of urllib3's, not through `requests`: a page
makes one to three calls, and under load `requests`' own layer (merging settings, preparing, hooks,
cookies, adapters) cost as much CPU in the web as the HTTP exchange itself.
"""

from __future__ import annotations

import functools
import json as jsonlib
import logging
import os
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import quote, urlencode

import msgspec
import requests.certs
import requests.utils
import urllib3
from pydantic import BaseModel, ConfigDict, TypeAdapter, ValidationError
from reciprocity.contracts.commands import FieldError
from urllib3.exceptions import ConnectTimeoutError, HTTPError, MaxRetryError, ProtocolError, ReadTimeoutError

log = logging.getLogger(__name__)


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


class Invalid(ClientError):
    def __init__(self, service: str, errors: list[FieldError]) -> None:
        super().__init__(service, "; ".join(f"{e.field}: {e.message}" for e in errors) or "invalid")
        self.errors = errors


class Shape(BaseModel):
    model_config = ConfigDict(extra="ignore", populate_by_name=True, frozen=True)


class Answer:
    """A service's answer, read whole: status, headers (case-insensitive), body."""

    __slots__ = ("content", "headers", "reason", "status_code")

    def __init__(self, status_code: int, headers: Mapping[str, str], content: bytes, reason: str = "") -> None:
        self.status_code = status_code
        self.headers = headers
        self.content = content
        self.reason = reason

    def json(self) -> Any:
        """The body as JSON; ValueError when it is not."""
        try:
            return msgspec.json.decode(self.content)
        except msgspec.DecodeError as err:
            raise ValueError(f"not JSON: {err}") from None

    @property
    def text(self) -> str:
        return self.content.decode("utf-8", "replace")


class Http:
    """JSON over HTTP to one service: a pool of keep-alive connections (as many as the process has
    threads calling at once), its fixed headers (the bearer token), no retries and no redirects (a
    command sent twice is the caller's decision, made with its Idempotency-Key).

    The environment (a proxy for the service's address, honouring NO_PROXY; the CA bundle of
    REQUESTS_CA_BUNDLE or CURL_CA_BUNDLE) is read once, here, as `requests` would read it."""

    def __init__(self, base_url: str, headers: Mapping[str, str] | None = None) -> None:
        self.headers = dict(headers or {})
        ca_certs = os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE") or requests.certs.where()
        pool: dict[str, Any] = {"num_pools": 4, "maxsize": 32, "ca_certs": ca_certs, "retries": False}
        proxy = requests.utils.get_environ_proxies(base_url).get(base_url.split(":", 1)[0].lower())
        self.pool: urllib3.PoolManager = (urllib3.ProxyManager(proxy, **pool) if proxy
                                          else urllib3.PoolManager(**pool))

    def request(self, method: str, url: str, *, params: Mapping[str, Any] | None = None, json: Any = None,
                headers: Mapping[str, str] | None = None, timeout: float) -> Answer:
        """Raises urllib3's HTTPError (and its kinds) when no answer came."""
        if params:
            url = f"{url}?{urlencode(params)}"
        sent = {**self.headers, **(headers or {})}
        body = None
        if json is not None:
            body = jsonlib.dumps(json).encode()
            sent["Content-Type"] = "application/json"
        answer = self.pool.request(method, url, body=body, headers=sent, timeout=timeout, retries=False,
                                   redirect=False)
        return Answer(answer.status, answer.headers, answer.data, answer.reason or "")

    def get(self, url: str, *, timeout: float) -> Answer:
        return self.request("GET", url, timeout=timeout)

    def close(self) -> None:
        self.pool.clear()


class ServiceClient:
    """One service at `base_url`, with its bearer token; subclasses name the service and its calls."""

    service = "service"

    def __init__(self, base_url: str, *, timeout_s: float = 5.0, token: str | None = None) -> None:
        self.base_url = base_url.rstrip("/")
        self.timeout_s = timeout_s
        self.http = Http(self.base_url, {"Authorization": f"Bearer {token}"} if token else None)

    def close(self) -> None:
        self.http.close()

    def _request(self, method: str, path: str, *, params: dict[str, Any] | None = None,
                 json: Any = None, headers: dict[str, str] | None = None) -> Answer:
        """The answer when it is a 200 or 201; any other outcome raised as one of the errors above."""
        url = self.base_url + path
        try:
            answer = self.http.request(method, url, params=params, json=json, headers=headers, timeout=self.timeout_s)
        except HTTPError as err:
            log.warning("%s %s failed: %r", method, url, err)
            if _may_have_arrived(err):
                raise OutcomeUnknown(self.service, "did not answer in time") from err
            raise Unavailable(self.service, "did not answer") from err
        if answer.status_code in (200, 201):
            return answer
        message = _error_message(answer)
        if answer.status_code == 404:
            raise NotFound(self.service, message)
        if answer.status_code == 409:
            raise Conflict(self.service, message)
        if answer.status_code == 422:
            raise Invalid(self.service, _field_errors(answer))
        if answer.status_code == 503:
            raise Unavailable(self.service, message, retry_after=_retry_after(answer))
        # 401 (wrong token), 400, 5xx: nothing the person at the browser can fix; log it loudly.
        log.error("%s %s answered %d: %s", method, url, answer.status_code, answer.text[:500])
        if answer.status_code >= 500:
            # Only a 503 promises that nothing was done; a crash or a proxy's 502/504 may come after it was.
            raise OutcomeUnknown(self.service, f"answered {answer.status_code}")
        raise Unavailable(self.service, f"answered {answer.status_code}")

    def _call(self, method: str, path: str, *, params: dict[str, Any] | None = None,
              json: Any = None, headers: dict[str, str] | None = None) -> Any:
        """The JSON of a 200 or 201 answer."""
        return self._json(self._request(method, path, params=params, json=json, headers=headers))

    def _json(self, answer: Answer) -> Any:
        try:
            return answer.json()
        except ValueError as err:
            raise Unavailable(self.service, "answered something that is not JSON") from err

    def _parse(self, model: type[Shape], data: Any) -> Any:
        return self._validated(model, model.model_validate, data)

    def _parse_list(self, model: type[Shape], data: Any, key: str) -> list[Any]:
        if not isinstance(data, dict) or not isinstance(data.get(key), list):
            raise Unavailable(self.service, f"answered without a {key!r} list")
        return self._validated(model, _list_of(model).validate_python, data[key])

    def _validated(self, model: type[Shape], validate: Callable[[Any], Any], data: Any) -> Any:
        """`validate(data)`; an answer that is not a `model` (or a list of them) is the service's fault."""
        try:
            return validate(data)
        except ValidationError as err:
            log.error("%s answered an unexpected %s: %s", self.service, model.__name__, err)
            raise Unavailable(self.service, f"answered an unexpected {model.__name__}") from err

    def health(self) -> str | None:
        """None when /health answers 200, else a short reason (for the web's own /health)."""
        try:
            answer = self.http.get(self.base_url + "/health", timeout=min(self.timeout_s, 3.0))
        except HTTPError as err:
            return f"no answer from {self.base_url} ({type(err).__name__})"
        if answer.status_code != 200:
            return f"{self.base_url}/health answered {answer.status_code}"
        return None


@functools.cache
def _list_of(model: type[Shape]) -> TypeAdapter[list[Any]]:
    """A list of `model`s validated in one call (a page of fifty exchanges was fifty validations, each a
    call from Python), built once per model."""
    return TypeAdapter(list[model])  # type: ignore[valid-type]


def segment(value: str) -> str:
    """One URL path segment: ids are slugs, but never let a stray '/' or '?' reach another route."""
    return quote(value, safe="")


def _may_have_arrived(err: HTTPError) -> bool:
    """Whether the request may have reached the service before it failed.

    Only a failure to connect proves it did not; a read timeout or a connection dropped mid-way may
    come after the service carried the request out (e.g. the ledger appended, then the answer was lost).
    """
    if isinstance(err, MaxRetryError) and err.reason is not None:
        err = err.reason  # type: ignore[assignment]
    if isinstance(err, ConnectTimeoutError):  # NewConnectionError (refused, no such host) is one
        return False
    return isinstance(err, ReadTimeoutError | ProtocolError)


def _error_message(answer: Answer) -> str:
    try:
        body = answer.json()
    except ValueError:
        return answer.text[:200] or answer.reason
    if isinstance(body, dict) and isinstance(body.get("error"), str):
        return body["error"]
    return str(body)[:200]


def _field_errors(answer: Answer) -> list[FieldError]:
    def error(field: str, message: str) -> FieldError:
        return FieldError(field=field, message=message)

    try:
        body = answer.json()
    except ValueError:
        return [error("", answer.text[:200])]
    raw = body.get("errors") if isinstance(body, dict) else body
    if isinstance(raw, list):
        return [
            error(str(e.get("field") or ""), str(e.get("message") or "is not valid"))
            for e in raw if isinstance(e, dict)
        ] or [error("", "the request was not valid")]
    if isinstance(body, dict) and body.get("error"):
        return [error("", str(body["error"]))]
    return [error("", "the request was not valid")]


def _retry_after(answer: Answer) -> int | None:
    try:
        return int(answer.headers.get("Retry-After", ""))
    except ValueError:
        return None
