"""Data files the workbench ships (conditions, instruments): found by name or by path."""

from __future__ import annotations

from pathlib import Path


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
