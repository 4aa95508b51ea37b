"""Window parameters of the balance read API."""

import pytest
from reciprocity.balance.request_params import BadRequest, parse_window


def test_windows() -> None:
    assert parse_window(None) == 28
    assert parse_window("", default=90) == 90
    assert parse_window("7d") == 7 and parse_window("365d") == 365 and parse_window("30") == 30
    for bad in ("0d", "731d", "28w", "-3d", "d", "28 days"):
        with pytest.raises(BadRequest):
            parse_window(bad)
