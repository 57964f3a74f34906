"""The markdown archive's README.md: runs, models, SEI cold/warm, deflection rates, links."""

from __future__ import annotations

import html
from collections import defaultdict
from collections.abc import Iterator
from typing import Any

from dialogues.analyse import scores
from dialogues.export.common import Row, sortable
from dialogues.export.judgements import conversation_seis, current_judgements
from dialogues.export.snapshot import Snapshot
from dialogues.export.text import inline


def _fmt(value: float | None, digits: int = 1) -> str:
    return "–" if value is None else f"{value:.{digits}f}"


def _answers(snap: Snapshot) -> Iterator[tuple[Row, Row]]:
    """(conversation, assistant message) for every answered, non-warm-up response."""
    for conv in snap.conversations:
        for m in snap.messages.get(conv["id"], []):
            if m["role"] == "assistant" and m.get("error") is None and m.get("phase") != "warmup":
                yield conv, m


def rates_rows(snap: Snapshot) -> list[dict[str, Any]]:
    """Engagement / partial / deflection rates per model and source, over current labels."""
    labels: dict[tuple[str, str], list[str]] = defaultdict(list)
    for conv, m in _answers(snap):
        for j in current_judgements(snap, m["id"]):
            if j.target == "answer" and j.label and j.label.strip().lower() in scores.LABEL_ALIASES:
                labels[(m.get("speaker") or conv.get("model_id") or "?", j.source)].append(j.label)
    rows = []
    for (model, source), values in sorted(labels.items()):
        r = scores.label_rates(values)
        rows.append({"model": model, "source": source, "n": r.n, "deflection": r.deflection,
                     "partial": r.partial, "engagement": r.engagement,
                     "no_answer": r.no_answer})  # fmt: skip
    return rows


def sei_rows(snap: Snapshot) -> list[dict[str, Any]]:
    """SEI cold/warm per model and source, from conversations with a complete rubric."""
    by: dict[tuple[str, str], dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
    for conv in snap.conversations:
        for source, c in conversation_seis(snap, conv).items():
            by[(conv.get("model_id") or "?", source)][conv.get("condition") or "?"].append(
                c.result.sei
            )
    rows = []
    for (model, source), conds in sorted(by.items()):
        cold, warm = conds.get("cold", []), conds.get("warm", [])
        row: dict[str, Any] = {"model": model, "source": source,
                               "cold": scores.summarize(cold), "warm": scores.summarize(warm),
                               "cw": scores.sei_cw(cold, warm) if cold and warm else None}  # fmt: skip
        rows.append(row)
    return rows


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


def render_index(snap: Snapshot, paths: dict[str, str]) -> str:
    """README.md: runs, models, SEI C/W, deflection rates, and a link to every file."""
    out = ["# Dialogues archive\n\n",
           f"{len(snap.conversations)} conversations in {len(snap.runs)} runs, exported by "
           "`dialogues export markdown`. Each file holds one conversation: front matter, the "
           "turns (reasoning folded in `<details>`), then annotations and scores.\n\n"]  # fmt: skip
    out.append(_runs_section(snap))
    out.append(_models_section(snap))
    out.append(_sei_section(sei_rows(snap)))
    out.append(_rates_section(rates_rows(snap)))
    out.append(_links_section(snap, paths))
    return "".join(out)


def _sei_section(rows: list[dict[str, Any]]) -> str:
    out = ["\n## SEI cold / warm\n\n"]
    if not rows:
        return out[0] + "No conversation carries a complete SEI rubric yet.\n"
    out.append("| model | source | cold n | cold SEI | cold class | warm n | warm SEI | warm class "
               "| delta | reading |\n|---|---|---|---|---|---|---|---|---|---|\n")  # fmt: skip
    for r in rows:
        c, w, cw = r["cold"], r["warm"], r["cw"]
        cells = [r["model"], r["source"], c.n, _fmt(c.mean),
                 scores.sei_class(c.mean) if c.mean is not None else "", w.n, _fmt(w.mean),
                 scores.sei_class(w.mean) if w.mean is not None else "",
                 f"{scores.round1(cw.delta):+.1f}" if cw else "",
                 cw.delta_interpretation if cw else ""]  # fmt: skip
        out.append("| " + " | ".join(inline(x) for x in cells) + " |\n")
    return "".join(out)


def _rates_section(rows: list[dict[str, Any]]) -> str:
    out = ["\n## Deflection rates\n\n"]
    if not rows:
        return out[0] + "No response carries a label yet.\n"
    out.append("Over labelled answers (warm-up turns and failed calls left out); 95% Wilson "
               "intervals. No answer (empty, cut off, thinking only) is its own column, never a "
               "deflection.\n\n| model | source | n | deflection | 95% CI | partial | engagement "
               "| no answer |\n|---|---|---|---|---|---|---|---|\n")  # fmt: skip
    for r in rows:
        d = r["deflection"]
        ci = f"{d.low:.2f}–{d.high:.2f}" if d.low is not None else ""
        cells = [r["model"], r["source"], r["n"], _fmt(d.rate, 2), ci,
                 _fmt(r["partial"].rate, 2), _fmt(r["engagement"].rate, 2),
                 _fmt(r["no_answer"].rate, 2)]  # fmt: skip
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
