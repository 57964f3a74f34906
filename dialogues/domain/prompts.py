"""Load and validate prompt-set files (YAML) from prompts/ or any path."""

from __future__ import annotations

import csv
import hashlib
import json
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

import yaml

from dialogues.domain.config import PROMPTS_DIR
from dialogues.domain.errors import PromptFileError

# libyaml's loader when PyYAML was built with it: ~10x faster on a long prompt file.
_SafeLoader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
MODES = ("conversation", "independent")
KINDS = ("battery", "warmup", "suite")


@dataclass(frozen=True)
class Prompt:
    """One prompt of a set, with its position and a hash of its exact text."""

    key: str
    position: int
    content: str
    title: str | None = None
    meta: dict[str, Any] = field(default_factory=dict)

    @cached_property
    def content_hash(self) -> str:
        return sha256(self.content)


@dataclass(frozen=True)
class PromptSet:
    """A versioned prompt set: the version is a hash of its prompts, in order."""

    id: str
    title: str
    mode: str
    kind: str
    prompts: tuple[Prompt, ...]
    source: str | None = None
    credit: str | None = None
    licence: str | None = None
    path: str | None = None

    @cached_property
    def version_hash(self) -> str:
        payload = [[p.key, p.content] for p in self.prompts]
        return sha256(json.dumps(payload, ensure_ascii=False))[:16]


def sha256(text: str) -> str:
    """Hex sha256 of a text's UTF-8 bytes."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def available(directory: Path = PROMPTS_DIR) -> list[Path]:
    """The prompt-set files shipped in a folder."""
    return sorted(directory.glob("*.yaml")) + sorted(directory.glob("*.yml"))


def resolve(ref: str, directory: Path = PROMPTS_DIR) -> Path:
    """A prompt-set id (file stem or declared id) or a path → the file."""
    path = Path(ref).expanduser()
    if path.suffix in (".yaml", ".yml") or path.exists():
        if not path.exists():
            raise PromptFileError(f"{path}: no such prompt file")
        return path
    for candidate in available(directory):
        if candidate.stem == ref:
            return candidate
    for candidate in available(directory):
        try:
            if _read_yaml(candidate).get("id") == ref:
                return candidate
        except PromptFileError:
            continue
    ids = ", ".join(p.stem for p in available(directory)) or "none"
    raise PromptFileError(f"no prompt set called {ref!r} (shipped: {ids})")


def load(ref: str | Path, directory: Path = PROMPTS_DIR) -> PromptSet:
    """Read and validate one prompt-set file; errors name the file and the problem."""
    path = resolve(str(ref), directory)
    data = _read_yaml(path)
    where = str(path)
    set_id = _required_text(data, "id", where)
    mode = data.get("mode", "independent")
    if mode not in MODES:
        raise PromptFileError(f"{where}: mode must be one of {', '.join(MODES)}, not {mode!r}")
    kind = data.get("kind", "suite")
    if kind not in KINDS:
        raise PromptFileError(f"{where}: kind must be one of {', '.join(KINDS)}, not {kind!r}")
    if "from_csv" in data:
        prompts = _prompts_from_csv(path, data["from_csv"])
    else:
        prompts = _prompts_from_list(where, data.get("prompts"))
    return PromptSet(
        id=set_id,
        title=str(data.get("title") or set_id),
        mode=mode,
        kind=kind,
        prompts=tuple(prompts),
        source=_optional_text(data, "source"),
        credit=_optional_text(data, "credit"),
        licence=_optional_text(data, "licence"),
        path=where,
    )


def _read_yaml(path: Path) -> dict[str, Any]:
    try:
        data = yaml.load(path.read_text(encoding="utf-8"), Loader=_SafeLoader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = f" line {mark.line + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise PromptFileError(f"{path}{line}: not valid YAML ({problem})") from exc
    except UnicodeDecodeError as exc:
        raise PromptFileError(f"{path}: not UTF-8 text") from exc
    if not isinstance(data, dict):
        raise PromptFileError(f"{path}: expected a mapping with id, title and prompts")
    return data


def _required_text(data: dict[str, Any], key: str, where: str) -> str:
    value = data.get(key)
    if value is None or not str(value).strip():
        raise PromptFileError(f"{where}: missing required field {key!r}")
    return str(value).strip()


def _optional_text(data: dict[str, Any], key: str) -> str | None:
    value = data.get(key)
    return None if value is None else str(value)


def _prompts_from_list(where: str, items: Any) -> list[Prompt]:
    if not isinstance(items, list) or not items:
        raise PromptFileError(f"{where}: 'prompts' must be a non-empty list")
    prompts: list[Prompt] = []
    seen: set[str] = set()
    for index, item in enumerate(items, start=1):
        here = f"{where}: prompt {index}"
        if isinstance(item, str):
            item = {"id": f"p{index}", "text": item}
        if not isinstance(item, dict):
            raise PromptFileError(f"{here}: expected a mapping with id and text")
        text = item.get("text")
        if not isinstance(text, str) or not text.strip():
            raise PromptFileError(f"{here}: missing or empty 'text'")
        key = str(item.get("id") or f"p{index}")
        if key in seen:
            raise PromptFileError(f"{here}: duplicate id {key!r}")
        seen.add(key)
        meta = {k: v for k, v in item.items() if k not in ("id", "text", "title")}
        prompts.append(Prompt(key, index, text, item.get("title"), meta))
    return prompts


def _prompts_from_csv(path: Path, spec: Any) -> list[Prompt]:
    where = str(path)
    if not isinstance(spec, dict) or "file" not in spec:
        raise PromptFileError(f"{where}: from_csv needs at least 'file'")
    csv_path = (path.parent / str(spec["file"])).resolve()
    id_col, text_col = spec.get("id", "id"), spec.get("text", "prompt")
    prefix = str(spec.get("id_prefix", ""))
    meta_cols = list(spec.get("meta", []))
    try:
        handle = csv_path.open(encoding="utf-8", newline="")
    except OSError as exc:
        raise PromptFileError(f"{where}: cannot read {csv_path}: {exc.strerror}") from exc
    with handle:
        reader = csv.DictReader(handle)
        missing = [c for c in [id_col, text_col, *meta_cols] if c not in (reader.fieldnames or [])]
        if missing:
            raise PromptFileError(f"{csv_path}: missing column(s) {', '.join(missing)}")
        prompts: list[Prompt] = []
        seen: set[str] = set()
        for index, row in enumerate(reader, start=1):
            line = reader.line_num
            text = (row.get(text_col) or "").strip()
            key = prefix + (row.get(id_col) or "").strip()
            if not text or key == prefix:
                raise PromptFileError(f"{csv_path} line {line}: empty {id_col!r} or {text_col!r}")
            if key in seen:
                raise PromptFileError(f"{csv_path} line {line}: duplicate id {key!r}")
            seen.add(key)
            meta = {c: row.get(c) for c in meta_cols}
            prompts.append(Prompt(key, index, text, None, meta))
    if not prompts:
        raise PromptFileError(f"{csv_path}: no rows")
    return prompts
