"""Where each conversation's markdown file goes: stable, OS-safe names inside the export root."""

from __future__ import annotations

import hashlib
import re
import unicodedata
from collections import defaultdict
from pathlib import Path
from typing import Any

from dialogues.domain.errors import UserError
from dialogues.export.common import Row
from dialogues.export.snapshot import Snapshot

SLUG_MAX = 48
RESERVED = {"con", "prn", "aux", "nul", *(f"com{i}" for i in range(10)),
            *(f"lpt{i}" for i in range(10))}  # fmt: skip


def _short_hash(text: str, n: int = 8) -> str:
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()[:n]


def slug(text: Any, limit: int = SLUG_MAX) -> str:
    """A file-name part safe on every OS: ASCII [a-z0-9-], capped, never empty or reserved."""
    raw = "" if text is None else str(text)
    ascii_text = unicodedata.normalize("NFKD", raw).encode("ascii", "ignore").decode("ascii")
    s = re.sub(r"[^a-z0-9]+", "-", ascii_text.lower()).strip("-")
    if not s:
        return f"x-{_short_hash(raw)}"
    if len(s) > limit:  # keep long names distinct: cut, then add a hash of the whole
        s = s[: limit - 9].rstrip("-") + "-" + _short_hash(raw)
    if s in RESERVED:
        s += "-x"
    return s


def run_folder(run: Row) -> str:
    """'<date>-<name or prompt set>-<id8>' for a run."""
    day = str(run.get("created_at") or "")[:10] or "undated"
    name = run.get("name") or run.get("set_id") or run.get("kind") or "run"
    return f"{slug(day, 10)}-{slug(name, 32)}-{slug(run['id'], 8)}"


def conversation_stem(conv: Row) -> str:
    """'<model>[-vs-<model b>]-<condition>-<repeat>[-<prompt>]' for a conversation."""
    model = slug(conv.get("model_id") or "unknown")
    if conv.get("model_b_id"):
        model += "-vs-" + slug(conv["model_b_id"])
    cond = slug(conv.get("condition") or conv.get("kind") or "none", 16)
    stem = f"{model}-{cond}-{conv.get('repeat') or 1}"
    planned = f"{conv.get('model_id')}|{conv.get('condition')}|{conv.get('repeat')}"
    key = conv.get("conv_key") or ""
    if key.startswith(planned + "|"):  # an independent set: one conversation per prompt
        stem += "-" + slug(key[len(planned) + 1 :], 32)
    elif key != planned and conv.get("kind") not in ("dialogue",):
        stem += "-" + slug(key, 32)
    return stem


def _run_folders(snap: Snapshot) -> dict[str, str]:
    """run id → its folder name, unique among the runs of the snapshot."""
    folders: dict[str, str] = {}
    taken: dict[str, str] = {}
    for run_id, run in sorted(snap.runs.items()):
        name = run_folder(run)
        if name in taken:  # two runs alike down to the id prefix: spell the whole id
            name = f"{name}-{slug(run_id, 40)}"
        taken[name] = run_id
        folders[run_id] = name
    return folders


def plan_paths(snap: Snapshot) -> dict[str, str]:
    """conversation id → 'folder/file.md', unique and stable for the same archive."""
    folders = _run_folders(snap)
    stems: dict[tuple[str, str], list[str]] = defaultdict(list)
    by_id = {c["id"]: c for c in snap.conversations}
    for c in snap.conversations:
        stems[(folders[c["run_id"]], conversation_stem(c))].append(c["id"])
    paths = {}
    for (folder, stem), ids in stems.items():
        for cid in ids:
            # Names that would clash (model ids that slug alike) get a hash of their own key.
            unique = stem if len(ids) == 1 else f"{stem}-{_short_hash(by_id[cid]['conv_key'], 6)}"
            paths[cid] = f"{folder}/{unique}.md"
    return paths


def safe_target(root: Path, relative: str) -> Path:
    """root/relative, refusing any path that would land outside root."""
    base = root.resolve()
    target = (base / relative).resolve()
    if not target.is_relative_to(base) or target == base:
        raise UserError(f"refusing to write {relative!r}: it is outside {root}")
    return target
