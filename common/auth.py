"""Bearer tokens for the service APIs, written once: the ledger, balance and notify all use it.

Every request needs `Authorization: Bearer <token>` except the paths named open (/health and /metrics,
which carry no personal data, so a load balancer or Prometheus can read them without a credential).
The check runs before routing, so an unknown path answers 401 as well and nobody can map the API
without the token. Tokens are compared in constant time.
"""

from __future__ import annotations

import hmac
from collections.abc import Callable, Iterable

from flask import Flask, Response, jsonify, request

OPEN_PATHS = ("/health", "/metrics")


def bearer_token(header: str) -> bytes | None:
    """The credentials of an `Authorization: Bearer ...` header, or None for any other header."""
    scheme, _, credentials = header.partition(" ")
    if scheme.lower() != "bearer" or not credentials.strip():
        return None
    return credentials.strip().encode()


def token_matches(given: bytes | None, expected: bytes) -> bool:
    # compare_digest takes as long for a near miss as for a wild guess; an empty expected token
    # (never allowed outside development anyway) matches nothing.
    return bool(expected) and given is not None and hmac.compare_digest(given, expected)


def require_bearer_token(app: Flask, token: str, *, variable: str, open_paths: Iterable[str] = OPEN_PATHS,
                         on_refused: Callable[[], None] | None = None) -> None:
    """Make every request to `app` outside `open_paths` present `token` (the value of the environment
    variable `variable`, named in the answer so an operator knows which one is missing)."""
    expected = token.encode()
    opened = frozenset(open_paths)
    realm = app.name.rsplit(".", 1)[-1]

    @app.before_request
    def _authenticate() -> tuple[Response, int, dict[str, str]] | None:
        if request.path in opened:
            return None
        if token_matches(bearer_token(request.headers.get("Authorization", "")), expected):
            return None
        if on_refused is not None:
            on_refused()
        return (jsonify(error=f"a valid bearer token is required (Authorization: Bearer <{variable}>)"), 401,
                {"WWW-Authenticate": f'Bearer realm="{realm}"'})
