"""CSV cells that stay data: a spreadsheet runs a cell beginning with =, +, -, @ (or a tab or carriage
return before one) as a formula, so a member named `=HYPERLINK(...)` could run one on an operator's
machine. Exports prefix such text with an apostrophe (the OWASP "CSV injection" advice); imports refuse
such names outright (`formula_like`)."""

from __future__ import annotations

from typing import Any

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def formula_like(text: str) -> bool:
    return text.startswith(FORMULA_STARTS)


def safe_cell(value: Any) -> Any:
    """`value` as a CSV cell a spreadsheet shows as text: strings that look like formulas get a leading
    apostrophe; numbers, dates and other values are written as they are."""
    if isinstance(value, str) and formula_like(value):
        return "'" + value
    return value
