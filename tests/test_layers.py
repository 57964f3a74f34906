"""The package's layers: arrows only downward (import-linter), and no import cycles."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import grimp

ROOT = Path(__file__).resolve().parents[1]
LINT = Path(sys.executable).with_name("lint-imports")


def lint(root: Path) -> subprocess.CompletedProcess[str]:
    """Run import-linter on the package under `root` with the project's contract."""
    env = {**os.environ, "PYTHONPATH": str(root)}
    return subprocess.run([str(LINT), "--config", str(ROOT / "pyproject.toml"), "--no-cache"],
                          cwd=root, env=env, capture_output=True, text=True, timeout=120)  # fmt: skip


def test_layers_contract_is_kept() -> None:
    result = lint(ROOT)
    assert result.returncode == 0, result.stdout + result.stderr


def test_layers_check_fails_on_an_upward_import(tmp_path: Path) -> None:
    shutil.copytree(ROOT / "dialogues", tmp_path / "dialogues",
                    ignore=shutil.ignore_patterns("__pycache__"))  # fmt: skip
    db = tmp_path / "dialogues" / "store" / "db.py"
    db.write_text(db.read_text() + "\nfrom dialogues.analyse import scores  # noqa\n")
    result = lint(tmp_path)
    assert result.returncode != 0
    assert "dialogues.store.db -> dialogues.analyse.scores" in result.stdout


def cycles(graph: grimp.ImportGraph) -> list[list[str]]:
    """Strongly connected groups of more than one module (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for nxt in graph.find_modules_directly_imported_by(node):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            group = []
            while True:
                top = stack.pop()
                group.append(top)
                if top == node:
                    break
            if len(group) > 1:
                found.append(sorted(group))

    sys.setrecursionlimit(10_000)
    for module in sorted(graph.modules):
        if module not in index:
            visit(module)
    return found


def test_no_import_cycles() -> None:
    graph = grimp.build_graph("dialogues", cache_dir=None)
    # A package's __init__ re-exporting its own modules is not a cycle between modules.
    for module in list(graph.modules):
        for child in graph.find_children(module):
            if graph.direct_import_exists(importer=module, imported=child):
                graph.remove_import(importer=module, imported=child)
    assert cycles(graph) == []
