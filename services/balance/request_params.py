"""The query parameters of balance's read API (and of `reciprocity export`, which takes the same window):
each parsed once, a bad one answered 422 with what it should look like."""

from __future__ import annotations

import re
from datetime import date

from flask import request

_WINDOW = re.compile(r"^(\d{1,4})d?$")
MAX_WINDOW_DAYS = 730


class BadRequest(ValueError):
    pass


def parse_window(raw: str | None, default: int = 28) -> int:
    if raw is None or raw == "":
        return default
    match = _WINDOW.match(raw.strip())
    if not match or not 1 <= int(match.group(1)) <= MAX_WINDOW_DAYS:
        raise BadRequest(f"window must look like 28d (1 to {MAX_WINDOW_DAYS} days), got {raw!r}")
    return int(match.group(1))


def int_arg(name: str, default: int, low: int, high: int) -> int:
    raw = request.args.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise BadRequest(f"{name} must be an integer, got {raw!r}") from None
    if not low <= value <= high:
        raise BadRequest(f"{name} must be between {low} and {high}")
    return value


def date_arg(name: str) -> date | None:
    raw = request.args.get(name)
    if raw is None or raw == "":
        return None
    try:
        return date.fromisoformat(raw)
    except ValueError:
        raise BadRequest(f"{name} must be a date like 2026-03-01, got {raw!r}") from None
