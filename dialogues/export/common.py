"""What every export format shares: row values as JSON and YAML write them, secrets, errors."""

from __future__ import annotations

import functools
import json
import os
import re
from collections.abc import Callable
from datetime import date, datetime
from pathlib import Path
from typing import Any

import duckdb

from dialogues.domain.errors import UserError
from dialogues.store.queries import state_code

_SECRET_NAME = re.compile(r"(KEY|TOKEN|SECRET|PASSWORD|PASSWD|CREDENTIALS?)$", re.IGNORECASE)

Row = dict[str, Any]


def people_errors(fn: Callable[..., Any]) -> Callable[..., Any]:
    """A file-system failure while writing becomes one line naming the target."""

    @functools.wraps(fn)
    def wrapper(db: duckdb.DuckDBPyConnection, target: Path, *args: Any, **kw: Any) -> Any:
        try:
            return fn(db, target, *args, **kw)
        except OSError as exc:
            where = exc.filename or target
            raise UserError(f"cannot write {where}: {exc.strerror or exc}") from None

    return wrapper


# --- values ---------------------------------------------------------------------------------


def sortable(value: Any) -> str:
    """A sort key for a value that may be missing: None first, then its text."""
    return "" if value is None else str(value)


def json_value(value: Any) -> Any:
    """A *_json column parsed; anything that is not JSON text stays as it is."""
    if isinstance(value, str):
        try:
            return json.loads(value)
        except ValueError:
            return value
    return value


def json_keys(value: Any) -> list[str]:
    """The keys a *_json list holds (anything else holds none)."""
    value = json_value(value)
    return [str(v) for v in value] if isinstance(value, list) else []


def _iso(value: Any) -> Any:
    if isinstance(value, datetime | date):
        return value.isoformat()
    return value


def plain(value: Any) -> Any:
    """Values YAML and JSON write the same everywhere: ISO dates, plain containers."""
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [plain(v) for v in value]
    return _iso(value)


response_state = state_code  # exports show the short codes: ok, error, no-answer, cut-off, empty


# --- secrets --------------------------------------------------------------------------------


def secret_values() -> list[str]:
    """Values of environment variables named like keys, tokens, secrets or passwords."""
    found = {v for k, v in os.environ.items() if _SECRET_NAME.search(k) and len(v) >= 8}
    return sorted(found, key=len, reverse=True)


def redact(text: str, secrets: list[str]) -> str:
    """Replace every secret value in text."""
    for s in secrets:
        if s in text:
            text = text.replace(s, "[redacted]")
    return text


def redact_value(value: Any, secrets: list[str]) -> Any:
    """Secrets replaced in every string of a JSON-like value."""
    if isinstance(value, str):
        return redact(value, secrets)
    if isinstance(value, dict):
        return {k: redact_value(v, secrets) for k, v in value.items()}
    if isinstance(value, list):
        return [redact_value(v, secrets) for v in value]
    return value
