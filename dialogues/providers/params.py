"""Per-model generation settings from models.toml ([models.NAME.params]): checked, then layered.

Precedence, lowest first: the back end's own defaults < the run's options < a model's params in
models.toml < a condition's overrides < flags given explicitly on the command line.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping
from dataclasses import fields, replace
from pathlib import Path
from typing import Any

from dialogues.domain.errors import UserError
from dialogues.providers.base import GenParams

ALL = frozenset({"hosted", "ollama", "gguf"})
LOCAL = frozenset({"ollama", "gguf"})
# What each back end does with reasoning_effort: litellm passes it on; Ollama's think takes
# a level or false ('none'); llama.cpp has no such knob.
EFFORTS = {
    "hosted": ("none", "minimal", "low", "medium", "high"),
    "ollama": ("none", "low", "medium", "high"),
}


def _number(low: float | None, high: float | None) -> Callable[[Any], str | None]:
    def check(value: Any) -> str | None:
        ok = isinstance(value, int | float) and not isinstance(value, bool)
        if ok and (low is None or value >= low) and (high is None or value <= high):
            return None
        if low is not None and high is not None:
            return f"must be a number from {low:g} to {high:g}"
        return f"must be a number above {low:g}" if low is not None else "must be a number"

    return check


def _count(low: int) -> Callable[[Any], str | None]:
    def check(value: Any) -> str | None:
        ok = isinstance(value, int) and not isinstance(value, bool) and value >= low
        return None if ok else f"must be a whole number of at least {low}"

    return check


def _text(value: Any) -> str | None:
    return None if isinstance(value, str) and value.strip() else "must be a non-empty string"


def _texts(value: Any) -> str | None:
    ok = isinstance(value, list) and all(isinstance(v, str) and v for v in value)
    return None if ok else "must be a list of non-empty strings"


def _flag(value: Any) -> str | None:
    return None if isinstance(value, bool) else "must be true or false"


# key → (check, back ends that take it)
SPECS: dict[str, tuple[Callable[[Any], str | None], frozenset[str]]] = {
    "system": (_text, ALL),
    "temperature": (_number(0, 2), ALL),
    "top_p": (_number(0, 1), ALL),
    "max_tokens": (_count(1), ALL),
    "presence_penalty": (_number(-2, 2), ALL),
    "frequency_penalty": (_number(-2, 2), ALL),
    "stop": (_texts, ALL),
    "reasoning_effort": (_text, frozenset(EFFORTS)),
    "top_k": (_count(1), LOCAL),
    "min_p": (_number(0, 1), LOCAL),
    "repeat_penalty": (_number(0, None), LOCAL),
    "num_ctx": (_count(256), LOCAL),
    "think": (_flag, frozenset({"ollama"})),
}
_FIELDS = {f.name for f in fields(GenParams)}


def check(path: Path, name: str, kind: str, table: Any) -> dict[str, Any]:
    """The [models.NAME.params] table, validated for its back end; errors name file and field."""
    where = f"{path}: [models.{name}.params]"
    if not isinstance(table, dict):
        raise UserError(f"{where} must be a table of settings")
    out: dict[str, Any] = {}
    for key, value in table.items():
        if key not in SPECS:
            known = ", ".join(sorted(SPECS))
            raise UserError(f"{where} {key}: not a setting the workbench knows ({known})")
        test, kinds = SPECS[key]
        if kind not in kinds:
            takes = " and ".join(sorted(kinds))
            raise UserError(f"{where} {key}: a {kind} back end does not take it (only {takes})")
        problem = test(value)
        if problem is None and key == "reasoning_effort" and value not in EFFORTS[kind]:
            problem = f"must be one of {', '.join(EFFORTS[kind])} for a {kind} back end"
        if problem:
            raise UserError(f"{where} {key}: {problem}, not {value!r}")
        out[key] = value
    return out


def apply(gen: GenParams, values: Mapping[str, Any], keep: Collection[str] = ()) -> GenParams:
    """gen with the settings laid over it, except the fields named in `keep` (set explicitly)."""
    direct = {k: v for k, v in values.items() if k in _FIELDS and k not in keep and k != "options"}
    extra = {k: v for k, v in values.items() if k not in _FIELDS and k != "system"}
    if extra:
        merged = {**dict(gen.options), **{k: _frozen(v) for k, v in extra.items()}}
        direct["options"] = tuple(sorted(merged.items()))
    return replace(gen, **direct) if direct else gen


def _frozen(value: Any) -> Any:
    """Lists become tuples, so GenParams stays hashable."""
    return tuple(value) if isinstance(value, list) else value


def as_record(gen: GenParams) -> dict[str, Any]:
    """GenParams as the JSON a request records: options as a mapping, unset extras left out."""
    out = {f.name: getattr(gen, f.name) for f in fields(gen)}
    for key in ("reasoning_effort", "top_p", "num_ctx"):
        if out[key] is None:
            del out[key]
    options = out.pop("options")
    if options:
        out["options"] = {k: list(v) if isinstance(v, tuple) else v for k, v in options}
    return out
