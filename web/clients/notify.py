"""The web's client of notify: the operator page's view of the delivery log."""

from __future__ import annotations

from typing import Any, Protocol

from reciprocity.common.service_client import ServiceClient, Unavailable


class Notify(Protocol):
    def health(self) -> str | None: ...
    def failed_deliveries(self) -> list[dict[str, Any]]: ...


class HttpNotify(ServiceClient):
    service = "notify"

    def failed_deliveries(self) -> list[dict[str, Any]]:
        # The delivery log's shape is notify's business; the operator page shows whatever fields it has.
        data = self._call("GET", "/v1/deliveries", params={"status": "failed"})
        items = data.get("deliveries") if isinstance(data, dict) else data
        if not isinstance(items, list):
            raise Unavailable(self.service, "answered without a deliveries list")
        return [item for item in items if isinstance(item, dict)]
