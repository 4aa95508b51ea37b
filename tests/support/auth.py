"""The service tokens tests present: the local development defaults the test processes start with."""

from __future__ import annotations

from typing import Any

from reciprocity.common.settings import LOCAL_SECRETS

BALANCE_TOKEN = LOCAL_SECRETS["BALANCE_TOKEN"]
NOTIFY_TOKEN = LOCAL_SECRETS["NOTIFY_TOKEN"]


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def authorized(client: Any, token: str) -> Any:
    """A Flask test client that presents `token` on every request, as the web does."""
    client.environ_base["HTTP_AUTHORIZATION"] = f"Bearer {token}"
    return client
