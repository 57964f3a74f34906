"""The markdown archive's README.md: runs, models, SEI cold/warm, deflection rates, links."""

from __future__ import annotations

import html
from collections import defaultdict
from typing import Any

import duckdb

from dialogues.analyse import compare, frames, scores
from dialogues.export.common import sortable
from dialogues.export.snapshot import Snapshot
from dialogues.export.text import inline


def _fmt(value: float | None, digits: int = 1) -> str:
    return "–" if value is None else f"{value:.{digits}f}"


def score_table(db: duckdb.DuckDBPyConnection, run_ids: list[str] | None) -> list[dict[str, Any]]:
    """The rows `dialogues scores --json` prints (and the Compare page shows), for these runs."""
    if run_ids == []:
        return []
    filters = frames.Filters(run_ids=tuple(run_ids or ()))
    return compare.score_rows(compare.score_frames(db, filters))


def _runs_section(snap: Snapshot) -> str:
    per_run: dict[str, int] = defaultdict(int)
    for c in snap.conversations:
        per_run[c["run_id"]] += 1
    out = ["## Runs\n\n| run | date | name | prompt set | version | condition | repeats "
           "| conversations |\n|---|---|---|---|---|---|---|---|\n"]  # fmt: skip
    for run in sorted(snap.runs.values(), key=lambda r: (sortable(r["created_at"]), r["id"])):
        cells = [run["id"], str(run.get("created_at") or "")[:19], run.get("name") or "",
                 run.get("set_id") or "", (run.get("set_hash") or "")[:12],
                 run.get("condition") or "", run.get("repeats") or "", per_run[run["id"]]]  # fmt: skip
        out.append("| " + " | ".join(inline(c) for c in cells) + " |\n")
    return "".join(out)


def _models_section(snap: Snapshot) -> str:
    per_model: dict[str, int] = defaultdict(int)
    for c in snap.conversations:
        for mid in (c.get("model_id"), c.get("model_b_id")):
            if mid:
                per_model[mid] += 1
    out = ["\n## Models\n\n| model | provider | family | parameters | quantization | "
           "training | conversations |\n|---|---|---|---|---|---|---|\n"]  # fmt: skip
    for mid in sorted(per_model):
        m = snap.models.get(mid, {})
        cells = [mid, m.get("provider") or "", m.get("family") or "",
                 m.get("parameter_size") or m.get("parameters") or "", m.get("quantization") or "",
                 m.get("training") or "", per_model[mid]]  # fmt: skip
        out.append("| " + " | ".join(inline(c) for c in cells) + " |\n")
    return "".join(out)


def render_index(snap: Snapshot, paths: dict[str, str], rows: list[dict[str, Any]]) -> str:
    """README.md: runs, models, SEI C/W, deflection rates, and a link to every file."""
    out = ["# Dialogues archive\n\n",
           f"{len(snap.conversations)} conversations in {len(snap.runs)} runs, exported by "
           "`dialogues export markdown`. Each file holds one conversation: front matter, the "
           "turns (reasoning folded in `<details>`), then annotations and scores.\n\n"]  # fmt: skip
    out.append(_runs_section(snap))
    out.append(_models_section(snap))
    out.append(_sei_section(rows))
    out.append(_rates_section(rows))
    out.append(_links_section(snap, paths))
    return "".join(out)


def _sei_section(rows: list[dict[str, Any]]) -> str:
    by: dict[tuple[str, str], dict[str, dict[str, Any]]] = defaultdict(dict)
    for r in rows:
        if r.get("sei") is not None:
            by[(r["model"], r["source"])][r.get("condition") or "?"] = r
    out = ["\n## SEI cold / warm\n\n"]
    if not by:
        return out[0] + "No conversation carries a complete SEI rubric yet.\n"
    out.append("Mean SEI over repeats, as `dialogues scores` gives it.\n\n"
               "| model | source | cold n | cold SEI | cold class | warm n | warm SEI | warm class "
               "| delta | reading |\n|---|---|---|---|---|---|---|---|---|---|\n")  # fmt: skip
    for (model, source), conds in sorted(by.items()):
        c, w = conds.get("cold", {}), conds.get("warm", {})
        delta = w["sei"] - c["sei"] if c and w else None
        cells = [model, source, c.get("sei_n", 0), _fmt(c.get("sei")), c.get("class") or "",
                 w.get("sei_n", 0), _fmt(w.get("sei")), w.get("class") or "",
                 f"{scores.round1(delta):+.1f}" if delta is not None else "",
                 scores.delta_interpretation(delta) if delta is not None else ""]  # fmt: skip
        out.append("| " + " | ".join(inline(x) for x in cells) + " |\n")
    return "".join(out)


def _rates_section(rows: list[dict[str, Any]]) -> str:
    labelled = [r for r in rows if r.get("n")]
    out = ["\n## Deflection rates\n\n"]
    if not labelled:
        return out[0] + "No response carries a label yet.\n"
    out.append("Over labelled answers (warm-up turns and failed calls left out), as "
               "`dialogues scores` gives them, with their 95% intervals. No answer (empty, cut "
               "off, thinking only) is its own column, never a deflection.\n\n| model | "
               "condition | source | n | deflection | 95% CI | partial | engagement | no answer "
               "|\n|---|---|---|---|---|---|---|---|---|\n")  # fmt: skip
    for r in labelled:
        low, high = r.get("deflection_rate_low"), r.get("deflection_rate_high")
        ci = f"{low:.2f}–{high:.2f}" if low is not None and high is not None else ""
        cells = [r["model"], r.get("condition") or "", r["source"], r["n"],
                 _fmt(r.get("deflection_rate"), 2), ci, _fmt(r.get("partial_rate"), 2),
                 _fmt(r.get("engagement_rate"), 2), _fmt(r.get("no_answer_rate"), 2)]  # fmt: skip
        out.append("| " + " | ".join(inline(x) for x in cells) + " |\n")
    return "".join(out)


def _links_section(snap: Snapshot, paths: dict[str, str]) -> str:
    out = ["\n## Conversations\n"]
    folder = None
    for c in snap.conversations:
        rel = paths[c["id"]]
        here = rel.split("/")[0]
        if here != folder:
            folder = here
            out.append(f"\n### {inline(folder)}\n\n")
        what = " · ".join(str(x) for x in (c.get("model_id"), c.get("condition"),
                                            f"repeat {c.get('repeat')}") if x)  # fmt: skip
        out.append(
            f"- [{inline(rel.split('/')[1])}]({html.escape(rel, quote=True)}) — {inline(what)}\n"
        )
    return "".join(out)
