"""Data files the workbench ships (conditions, instruments): found by name or by path."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml


def yaml_files(directory: Path) -> list[Path]:
    """The .yaml and .yml files of a folder, sorted."""
    return sorted(directory.glob("*.yaml")) + sorted(directory.glob("*.yml"))


def find(ref: str, directory: Path, error: type[Exception], what: str) -> Path:
    """A name (file stem) or a path → the file; `error` names what is missing."""
    path = Path(ref).expanduser()
    if path.suffix in (".yaml", ".yml"):
        if not path.exists():
            raise error(f"{path}: no such {what} file")
        return path
    for candidate in yaml_files(directory):
        if candidate.stem == ref:
            return candidate
    names = ", ".join(p.stem for p in yaml_files(directory)) or "none"
    raise error(f"no {what} called {ref!r} (shipped: {names})")


def read_mapping(path: Path, error: type[Exception], expected: str) -> dict[str, Any]:
    """A YAML file's top-level mapping; `error` names the file and what is wrong with it."""
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise error(f"{path}: not valid YAML ({str(exc).splitlines()[0]})") from exc
    except (OSError, UnicodeDecodeError) as exc:
        raise error(f"{path}: cannot be read ({exc})") from exc
    if not isinstance(data, dict):
        raise error(f"{path}: expected a mapping with {expected}")
    return data


def check_keys(data: dict[str, Any], known: tuple[str, ...], where: str,
               error: type[Exception]) -> None:  # fmt: skip
    """Refuse the first key of a file's mapping that is not among `known`, naming the file."""
    unknown = [k for k in data if k not in known]
    if unknown:
        raise error(f"{where}: unknown key {unknown[0]!r} (known: {', '.join(known)})")
