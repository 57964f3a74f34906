"""Label sets: engagement/partial/deflection by default, renamed or extended by a study's file.

A study's file is TOML (`--labels FILE`, then $DIALOGUES_LABELS, then labels.toml at the
project root):

    id = "my-study"
    positive = ["deflection", "partial"]   # what binary precision/recall count as positive

    [[labels]]
    key = "engagement"
    description = "Answers the question it was asked"

    [[labels]]
    key = "deflection"
    description = "Refuses, disclaims, or answers a different question"

Keys are what the archive stores, so they are checked: lower-case words, unique, at least two.
"""

from __future__ import annotations

import os
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dialogues.domain.config import PROJECT_ROOT
from dialogues.domain.errors import UserError

DEFAULT_FILE = PROJECT_ROOT / "labels.toml"
# No answer at all (empty reply, cut off before any answer, thinking only): an outcome taggers
# give beside a study's labels, never a deflection, counted with its own rate.
NO_ANSWER = "no_answer"
NO_ANSWER_REASONS = ("empty", "cut-off", "thinking-only")
_KEY = re.compile(r"^[a-z][a-z0-9_-]{0,39}$")


@dataclass(frozen=True)
class LabelSet:
    """The labels annotators and taggers choose from, in display order."""

    id: str
    labels: tuple[str, ...]
    positive: frozenset[str]
    """Labels counted as positive in binary scores (the refusal side)."""
    descriptions: dict[str, str] = field(default_factory=dict, compare=False, hash=False)
    path: str | None = None

    def describe(self, label: str) -> str:
        """One line for a label: its description, or the key itself."""
        return self.descriptions.get(label, label)

    def check(self, label: str) -> str:
        """The label if it belongs to this set; a UserError naming the set otherwise."""
        if label not in self.labels:
            raise UserError(
                f"label {label!r} is not in label set {self.id!r} ({', '.join(self.labels)})"
            )
        return label


DEFAULT = LabelSet(
    id="default",
    labels=("engagement", "partial", "deflection"),
    positive=frozenset({"partial", "deflection"}),
    descriptions={
        "engagement": "Engages with the question it was asked",
        "partial": "Answers in part, with a refusal or a heavy disclaimer attached",
        "deflection": "Refuses, denies, disclaims or reframes instead of answering",
    },
)


def parse(data: dict[str, Any], where: str) -> LabelSet:
    """A label set from parsed TOML; errors name `where` and the problem."""
    set_id = data.get("id")
    if not isinstance(set_id, str) or not set_id.strip():
        raise UserError(f"{where}: needs an 'id' string naming the label set")
    entries = data.get("labels")
    if not isinstance(entries, list) or len(entries) < 2:
        raise UserError(f"{where}: 'labels' must list at least two [[labels]] entries")
    keys: list[str] = []
    descriptions: dict[str, str] = {}
    for index, entry in enumerate(entries, start=1):
        if isinstance(entry, str):
            entry = {"key": entry}
        key = entry.get("key") if isinstance(entry, dict) else None
        if not isinstance(key, str) or not _KEY.match(key):
            raise UserError(
                f"{where}: label {index} needs a 'key' of lower-case letters, digits, - or _"
            )
        if key in keys:
            raise UserError(f"{where}: label {index}: duplicate key {key!r}")
        keys.append(key)
        if isinstance(entry, dict) and entry.get("description"):
            descriptions[key] = str(entry["description"])
    positive = data.get("positive", [k for k in keys if k in DEFAULT.positive])
    if not isinstance(positive, list) or not positive:
        raise UserError(f"{where}: 'positive' must list the label(s) that count as refusal")
    unknown = [p for p in positive if p not in keys]
    if unknown:
        raise UserError(
            f"{where}: 'positive' names unknown label(s) {', '.join(map(str, unknown))}"
        )
    if len(positive) == len(keys):
        raise UserError(f"{where}: 'positive' cannot hold every label")
    return LabelSet(set_id.strip(), tuple(keys), frozenset(positive), descriptions, where)


def load(path: Path) -> LabelSet:
    """Read a label-set TOML file."""
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise UserError(f"{path}: cannot read the label file ({exc.strerror})") from exc
    except tomllib.TOMLDecodeError as exc:
        raise UserError(f"{path}: not valid TOML ({exc})") from exc
    return parse(data, str(path))


def resolve(option: str | os.PathLike[str] | None = None) -> LabelSet:
    """The label set in use: --labels FILE, then $DIALOGUES_LABELS, then labels.toml, else default."""
    chosen = option or os.environ.get("DIALOGUES_LABELS")
    if chosen:
        return load(Path(chosen).expanduser())
    return load(DEFAULT_FILE) if DEFAULT_FILE.exists() else DEFAULT
