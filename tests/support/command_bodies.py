"""Command bodies and the field errors a command model gives for them, for the contracts' unit tests."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import BaseModel, ValidationError
from reciprocity.contracts.commands import field_errors, today_utc


def errors_of(model: type[BaseModel], data: Any) -> dict[str, str]:
    """field -> message of the errors `model` refuses `data` with (fails the test when it accepts it)."""
    with pytest.raises(ValidationError) as caught:
        model.model_validate(data)
    return {e.field: e.message for e in field_errors(caught.value)}


def exchange_body(**overrides: Any) -> dict[str, Any]:
    """A valid RecordExchange body from ada-l to bob-m today, with `overrides`."""
    return {"giver": "ada-l", "receiver": "bob-m", "kind": "help", "minutes": 30,
            "occurred_on": str(today_utc()), "recorded_by": "ada-l", **overrides}
