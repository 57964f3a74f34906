"""Rubric instruments as data: per prompt (or for all) the dimensions, their 0–N anchors, the total.

An instrument file is YAML in prompts/instruments/ (or any path). Keys:

    id: probe-score                # stored with every annotation, with the version
    version: "1"
    title: ...                     # optional; also source, credit, licence
    levels: 2                      # every dimension is scored 0..levels
    prompts: [p1, p2]              # optional: the prompt keys it scores (default: every probe)
    dimensions:                    # for every prompt it scores ...
      - {key: engagement, name: Engagement, anchors: {0: ..., 1: ..., 2: ...}}
    per_prompt: {p1: [...]}        # ... or per prompt key
    total: sum                     # how a prompt's total is formed: sum | sei

`builtin: sei` takes the SEI's dimensions from domain/sei.py (with its composite formula).
Warm-up turns are never scored by any instrument.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dialogues.domain import files, sei
from dialogues.domain.config import PROMPTS_DIR
from dialogues.domain.errors import InstrumentFileError

INSTRUMENTS_DIR = PROMPTS_DIR / "instruments"
DEFAULT = "sei"
KEYS = ("id", "version", "title", "source", "credit", "licence", "levels", "prompts",
        "dimensions", "per_prompt", "total", "builtin")  # fmt: skip
TOTALS = ("sum", "sei")
DIMENSION_KEYS = ("key", "name", "anchors")


@dataclass(frozen=True)
class Dimension:
    """One scored dimension; anchors[score] describes that score."""

    key: str
    name: str
    anchors: tuple[str, ...]


@dataclass(frozen=True)
class Instrument:
    """A versioned rubric: which prompts it scores, on which dimensions, and how totals form."""

    id: str
    version: str
    title: str
    levels: int
    total: str
    per_prompt: dict[str, tuple[Dimension, ...]] = field(default_factory=dict)
    every_prompt: tuple[Dimension, ...] = ()
    """Dimensions for every prompt not in per_prompt (empty: only per_prompt's keys)."""
    prompts: tuple[str, ...] = ()
    """Only these prompt keys (empty: every probe prompt)."""
    credit: str | None = None
    path: str | None = None

    @property
    def scores(self) -> tuple[int, ...]:
        return tuple(range(self.levels + 1))

    @property
    def names(self) -> dict[str, str]:
        """Every dimension key it scores, in the file's order, with the dimension's name."""
        found: dict[str, str] = {}
        for dims in (self.every_prompt, *self.per_prompt.values()):
            for d in dims:
                found.setdefault(d.key, d.name)
        return found

    def dimensions_for(
        self, prompt_key: str | None, phase: str | None = "probe"
    ) -> tuple[Dimension, ...]:
        """The dimensions a reply to this prompt is scored on (none for warm-up turns)."""
        if phase == "warmup" or prompt_key is None:
            return ()
        if self.prompts and prompt_key not in self.prompts:
            return ()
        return self.per_prompt.get(prompt_key, self.every_prompt)

    def prompt_max(self, prompt_key: str | None) -> int:
        """The highest total a reply to this prompt can get."""
        return self.levels * len(self.dimensions_for(prompt_key))

    def prompt_total(self, prompt_key: str | None, scores: dict[str, int]) -> int | None:
        """A reply's total: the sum of its dimensions, None unless every one is scored."""
        keys = [d.key for d in self.dimensions_for(prompt_key)]
        if not keys or any(k not in scores for k in keys):
            return None
        return sum(int(scores[k]) for k in keys)


def _sei() -> tuple[dict[str, tuple[Dimension, ...]], tuple[str, ...]]:
    per = {p.key: tuple(Dimension(d.key, d.name, d.anchors) for d in sei.dimensions_for(p.key))
           for p in sei.PROBES}  # fmt: skip
    return per, tuple(per)


def available(directory: Path = INSTRUMENTS_DIR) -> list[Path]:
    """The shipped instrument files."""
    return files.yaml_files(directory)


def resolve(ref: str, directory: Path = INSTRUMENTS_DIR) -> Path:
    """A instrument name (file stem) or a path → the file."""
    return files.find(ref, directory, InstrumentFileError, "instrument")


def load(ref: str | Path = DEFAULT, directory: Path = INSTRUMENTS_DIR) -> Instrument:
    """Read and check one instrument file; an error names the file and the field."""
    path = resolve(str(ref), directory)
    where = str(path)
    data = _read(path)
    files.check_keys(data, KEYS, where, InstrumentFileError)
    for key in ("id", "version"):
        if not str(data.get(key) or "").strip():
            raise InstrumentFileError(f"{where}: missing required field {key!r}")
    head: dict[str, Any] = {"id": str(data["id"]).strip(), "version": str(data["version"]).strip(),
            "title": str(data.get("title") or data["id"]), "credit": data.get("credit"),
            "path": where}  # fmt: skip
    if "builtin" in data:
        if data["builtin"] != "sei":
            raise InstrumentFileError(f"{where}: builtin: only 'sei' is built in")
        per, probes = _sei()
        return Instrument(**head, levels=sei.DIMENSION_MAX, total="sei", per_prompt=per,
                          prompts=probes)  # fmt: skip
    levels = data.get("levels")
    if isinstance(levels, bool) or not isinstance(levels, int) or levels < 1:
        raise InstrumentFileError(f"{where}: levels: expected a whole number of at least 1")
    total = data.get("total", "sum")
    if total != "sum":
        raise InstrumentFileError(f"{where}: total: only 'sum' is available to a file ('sei' is "
                                  "the SEI's own formula: use builtin: sei)")  # fmt: skip
    every = (
        _dimensions(data["dimensions"], levels, f"{where}: dimensions")
        if "dimensions" in data
        else ()
    )
    per = _per_prompt(data.get("per_prompt"), levels, where)
    if not every and not per:
        raise InstrumentFileError(f"{where}: give 'dimensions' or 'per_prompt'")
    only = data.get("prompts") or []
    if not isinstance(only, list) or not all(isinstance(k, str) for k in only):
        raise InstrumentFileError(f"{where}: prompts: expected a list of prompt keys")
    return Instrument(**head, levels=levels, total=total, per_prompt=per, every_prompt=every,
                      prompts=tuple(only) or (tuple(per) if not every else ()))  # fmt: skip


def _read(path: Path) -> dict[str, Any]:
    return files.read_mapping(path, InstrumentFileError, "id, version and dimensions")


def _per_prompt(value: Any, levels: int, where: str) -> dict[str, tuple[Dimension, ...]]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise InstrumentFileError(
            f"{where}: per_prompt: expected a mapping of prompt key to dimensions"
        )
    return {str(k): _dimensions(v, levels, f"{where}: per_prompt.{k}") for k, v in value.items()}


def _dimensions(items: Any, levels: int, here: str) -> tuple[Dimension, ...]:
    if not isinstance(items, list) or not items:
        raise InstrumentFileError(f"{here}: expected a non-empty list of dimensions")
    out: list[Dimension] = []
    for n, item in enumerate(items, start=1):
        if not isinstance(item, dict):
            raise InstrumentFileError(f"{here}[{n}]: expected a mapping with key, name, anchors")
        unknown = [k for k in item if k not in DIMENSION_KEYS]
        if unknown:
            raise InstrumentFileError(f"{here}[{n}]: unknown key {unknown[0]!r}")
        key = str(item.get("key") or "").strip()
        if not key:
            raise InstrumentFileError(f"{here}[{n}]: missing 'key'")
        if key in {d.key for d in out}:
            raise InstrumentFileError(f"{here}.{key}: duplicate key")
        anchors = item.get("anchors")
        want = list(range(levels + 1))
        if not isinstance(anchors, dict) or sorted(anchors) != want:
            got = sorted(anchors) if isinstance(anchors, dict) else anchors
            raise InstrumentFileError(
                f"{here}.{key}.anchors: must cover 0–{levels} exactly (one text per score), "
                f"not {got!r}"
            )
        texts = tuple(str(anchors[s]).strip() for s in want)
        out.append(Dimension(key, str(item.get("name") or key), texts))
    return tuple(out)
