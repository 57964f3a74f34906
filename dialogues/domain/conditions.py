"""Conditions as data: a named treatment of a probe (system prompt, prefix turns, framing, params).

A condition file is YAML in prompts/conditions/ (or any path). Keys:

    id: permission                 # the name runs and scores use
    title: Permission statement    # optional
    description: ...               # optional
    system_prompt: ...             # optional
    warmup: warmup-default         # optional: a warm-up prompt set run before the probes
    prefix: [ "turn one", ... ]    # optional, instead of warmup: warm-up turns written inline
    framing_before: ...            # optional: text put before each probe (a blank line between)
    framing_after: ...             # optional: text put after each probe
    params: {temperature: 0.2, reasoning_effort: none, max_tokens: 512}   # optional overrides

A run records each condition's definition and hash, so it replays from the archive alone.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

from dialogues.domain import files, prompts
from dialogues.domain.config import PROMPTS_DIR
from dialogues.domain.errors import ConditionFileError, PromptFileError

CONDITIONS_DIR = PROMPTS_DIR / "conditions"
KEYS = ("id", "title", "description", "system_prompt", "warmup", "prefix", "framing_before",
        "framing_after", "params")  # fmt: skip
REASONING_EFFORTS = ("none", "minimal", "low", "medium", "high")


def _temperature(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= 2:
        raise ValueError("must be a number from 0 to 2")
    return float(value)


def _effort(value: Any) -> str:
    text = "none" if value is None or value is False else str(value)
    if text not in REASONING_EFFORTS:
        raise ValueError(f"must be one of {', '.join(REASONING_EFFORTS)}")
    return text


def _max_tokens(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError("must be a whole number of at least 1")
    return value


# The parameters a condition may override, each with its check; all are GenParams fields.
PARAMS: dict[str, Callable[[Any], Any]] = {
    "temperature": _temperature,
    "reasoning_effort": _effort,
    "max_tokens": _max_tokens,
}


@dataclass(frozen=True)
class Condition:
    """A named treatment: what a conversation holds around its probes, and parameter overrides."""

    name: str
    title: str | None = None
    system_prompt: str | None = None
    prefix: prompts.PromptSet | None = None
    """Warm-up turns the model answers before the probes (a warm-up set, or inline turns)."""
    framing_before: str | None = None
    framing_after: str | None = None
    params: tuple[tuple[str, Any], ...] = ()
    """Generation parameter overrides, as (name, value) pairs in PARAMS order."""
    path: str | None = None

    def frame(self, probe: str) -> str:
        """The probe text as sent: framing before and after it, a blank line between."""
        parts = [self.framing_before, probe, self.framing_after]
        return "\n\n".join(p for p in parts if p)

    def definition(self) -> dict[str, Any]:
        """What makes the condition what it is (stored with a run; its hash names this version)."""
        prefix = None
        if self.prefix is not None:
            prefix = {"id": self.prefix.id, "version_hash": self.prefix.version_hash}
        return {"name": self.name, "system_prompt": self.system_prompt, "prefix": prefix,
                "framing_before": self.framing_before, "framing_after": self.framing_after,
                "params": dict(self.params)}  # fmt: skip

    @cached_property
    def version_hash(self) -> str:
        text = json.dumps(self.definition(), sort_keys=True, ensure_ascii=False)
        return prompts.sha256(text)[:16]


COLD = Condition("cold", "Cold: the probes alone")


def warm(warmup: prompts.PromptSet) -> Condition:
    """The shipped warm condition with a given warm-up set (the --warmup option)."""
    return Condition("warm", "Warm: a warm-up conversation before the probes", prefix=warmup)


def from_definition(data: dict[str, Any], prefix: prompts.PromptSet | None) -> Condition:
    """A condition back from its stored definition (the prefix set read from the archive)."""
    params = data.get("params") or {}
    return Condition(
        name=data["name"], system_prompt=data.get("system_prompt"), prefix=prefix,
        framing_before=data.get("framing_before"), framing_after=data.get("framing_after"),
        params=tuple((k, params[k]) for k in PARAMS if k in params),
    )  # fmt: skip


def available(directory: Path = CONDITIONS_DIR) -> list[Path]:
    """The shipped condition files."""
    return files.yaml_files(directory)


def resolve(ref: str, directory: Path = CONDITIONS_DIR) -> Path:
    """A condition name (file stem) or a path → the file."""
    return files.find(ref, directory, ConditionFileError, "condition")


def load(ref: str | Path, directory: Path = CONDITIONS_DIR) -> Condition:
    """Read and check one condition file; an error names the file and the field."""
    path = resolve(str(ref), directory)
    where = str(path)
    data = _read(path)
    files.check_keys(data, KEYS, where, ConditionFileError)
    name = _text(data, "id", where)
    if name is None:
        raise ConditionFileError(f"{where}: missing required field 'id'")
    if "warmup" in data and "prefix" in data:
        raise ConditionFileError(f"{where}: give either 'warmup' or 'prefix', not both")
    return Condition(
        name=name, title=_text(data, "title", where), system_prompt=_text(data, "system_prompt", where),
        prefix=_prefix(path, data, name), framing_before=_text(data, "framing_before", where),
        framing_after=_text(data, "framing_after", where), params=_params(data, where),
        path=where,
    )  # fmt: skip


def _read(path: Path) -> dict[str, Any]:
    return files.read_mapping(path, ConditionFileError, "at least 'id'")


def _text(data: dict[str, Any], key: str, where: str) -> str | None:
    value = data.get(key)
    if value is None:
        return None
    if not isinstance(value, str) or not value.strip():
        raise ConditionFileError(f"{where}: {key}: expected non-empty text")
    return value.strip()


def _prefix(path: Path, data: dict[str, Any], name: str) -> prompts.PromptSet | None:
    where = str(path)
    if "warmup" in data:
        ref = _text(data, "warmup", where) or ""
        beside = path.parent / ref
        try:
            found = prompts.load(beside if beside.suffix in (".yaml", ".yml") else ref)
        except PromptFileError as exc:
            raise ConditionFileError(f"{where}: warmup: {exc}") from exc
        return found
    if "prefix" in data:
        items = data["prefix"]
        if not isinstance(items, list) or not items:
            raise ConditionFileError(f"{where}: prefix: expected a non-empty list of turns")
        try:
            turns = prompts._prompts_from_list(f"{where}: prefix", items)
        except PromptFileError as exc:
            raise ConditionFileError(str(exc)) from exc
        return prompts.PromptSet(f"{name}-prefix", f"Prefix turns of condition {name}",
                                 "conversation", "warmup", tuple(turns), path=where)  # fmt: skip
    return None


def _params(data: dict[str, Any], where: str) -> tuple[tuple[str, Any], ...]:
    given = data.get("params") or {}
    if not isinstance(given, dict):
        raise ConditionFileError(f"{where}: params: expected a mapping")
    out = []
    for key, value in given.items():
        check = PARAMS.get(key)
        if check is None:
            raise ConditionFileError(
                f"{where}: params.{key}: not a parameter a condition can set "
                f"(known: {', '.join(PARAMS)})"
            )
        try:
            out.append((key, check(value)))
        except ValueError as exc:
            raise ConditionFileError(f"{where}: params.{key}: {exc}, not {value!r}") from exc
    return tuple(sorted(out, key=lambda kv: list(PARAMS).index(kv[0])))
