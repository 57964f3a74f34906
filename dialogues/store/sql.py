"""Shared SQL pieces: placeholders for a list of values, travelling as parameters."""

from __future__ import annotations

from collections.abc import Iterable, Sized
from typing import Any


def marks(values: Sized) -> str:
    """'?, ?, ?': one placeholder per value."""
    return ", ".join("?" * len(values))


def is_in(column: str, values: Iterable[Any], params: list[Any]) -> str:
    """'column IN (?, …)' with the values appended to params; FALSE for no values at all."""
    values = list(values)
    if not values:
        return "FALSE"
    params.extend(values)
    return f"{column} IN ({marks(values)})"
