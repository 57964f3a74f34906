"""The markdown archive: one file per conversation, written only where its bytes changed."""

from __future__ import annotations

import os
import time
from collections import deque
from collections.abc import Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import duckdb

from dialogues.domain import sei
from dialogues.export.common import Row, people_errors, redact, response_state, secret_values
from dialogues.export.frontmatter import MARKER, Front, front_matter
from dialogues.export.index import render_index, score_table
from dialogues.export.judgements import (
    ConversationSEI,
    Judgement,
    conversation_judgements,
    conversation_seis,
)
from dialogues.export.paths import plan_paths, safe_target
from dialogues.export.snapshot import Snapshot, check_runs, snapshot
from dialogues.export.text import fenced, inline

NO_ANSWER = "No answer: thinking used the whole token budget."
NO_ANSWER_PLAIN = "No answer: the token budget ran out before any visible text."


def _speaker(m: Row) -> str:
    if m["role"] == "assistant":
        return m.get("speaker") or "assistant"
    if m["role"] == "system":
        return "system"
    return "researcher" if m.get("speaker") == "researcher" else "user"


def _turn_heading(m: Row) -> str:
    """'### <speaker> · seq n, attempt n, prompt key, phase, side'."""
    bits = [f"seq {m['seq']}"]
    if m.get("attempt", 1) != 1:
        bits.append(f"attempt {m['attempt']}")
    if m.get("prompt_key"):
        bits.append(f"prompt {m['prompt_key']}")
    if m.get("phase"):
        bits.append("warm-up" if m["phase"] == "warmup" else m["phase"])
    if m.get("side"):
        bits.append(f"side {m['side']}")
    return f"### {inline(_speaker(m))} · {inline(', '.join(bits))}\n\n"


def _reasoning(m: Row, secrets: list[str]) -> str:
    """The reasoning folded in <details>, its source and token count in the summary."""
    source = inline(m.get("reasoning_source") or "")
    tokens = f", {m['reasoning_tokens']} tokens" if m.get("reasoning_tokens") else ""
    return (f"<details>\n<summary>Reasoning{(' (' + source + tokens + ')') if source or tokens else ''}"
            f"</summary>\n\n{fenced(redact(m['reasoning'], secrets))}\n</details>\n\n")  # fmt: skip


def _turn(m: Row, secrets: list[str]) -> str:
    """One message: a heading naming the speaker, reasoning folded away, the text fenced."""
    out = [_turn_heading(m)]
    state = response_state(m) if m["role"] == "assistant" else "ok"
    if state == "error":
        out.append(f"**Failed ({inline(m.get('error_kind') or 'error')})**\n\n")
        out.append(fenced(redact(str(m.get("error") or ""), secrets)) + "\n")
        return "".join(out)
    if m.get("reasoning"):
        out.append(_reasoning(m, secrets))
    if state == "no-answer":
        out.append(f"**{NO_ANSWER if m.get('reasoning') else NO_ANSWER_PLAIN}**\n\n")
        return "".join(out)
    if state == "cut-off":
        out.append("*Cut off at the token limit.*\n\n")
    if state == "empty":
        out.append("*Empty answer.*\n\n")
        return "".join(out)
    out.append(fenced(redact(m.get("content") or "", secrets)) + "\n")
    return "".join(out)


def _annotations_table(msgs: list[Row], judged: list[Judgement], secrets: list[str]) -> str:
    """Every current judgement as a table row, then each note fenced."""
    seq = {m["id"]: m for m in msgs}
    out = ["| seq | prompt | target | source | label | rubric | markers | evidence |\n",
           "|---|---|---|---|---|---|---|---|\n"]  # fmt: skip
    for j in sorted(judged, key=lambda j: (seq[j.message_id]["seq"], seq[j.message_id]["attempt"],
                                           j.target, j.source)):  # fmt: skip
        m = seq[j.message_id]
        rubric = ", ".join(f"{k}={v}" for k, v in sorted(j.rubric.items()))
        cells = [m["seq"], m.get("prompt_key") or "", j.target, j.source, j.label or "",
                 rubric, ", ".join(map(str, j.markers)), ", ".join(map(str, j.evidence))]  # fmt: skip
        out.append("| " + " | ".join(inline(redact(str(c), secrets)) for c in cells) + " |\n")
    out.append("\n")
    for j in judged:
        if j.note:
            m = seq[j.message_id]
            out.append(f"Note by {inline(j.source)} on seq {m['seq']} ({inline(j.target)}):\n\n")
            out.append(fenced(redact(j.note, secrets)) + "\n")
    return "".join(out)


def _scores_table(seis: dict[str, ConversationSEI]) -> str:
    out = ["## Scores\n\n| source | dimensions scored | probe total | net markers "
           "| evidence | SEI | class |\n|---|---|---|---|---|---|---|\n"]  # fmt: skip
    for source, c in seis.items():
        r = c.result
        out.append(f"| {inline(source)} | {c.dimensions_scored}/{len(sei.DIMENSION_KEYS)} "
                   f"| {r.probe_total:g} | {r.net_markers:g} | {r.evidence:g} "
                   f"| {r.shown:.1f} | {r.sei_class} |\n")  # fmt: skip
    return "".join(out) + "\n"


def _judgement_sections(msgs: list[Row], judged: list[Judgement],
                        seis: dict[str, ConversationSEI], secrets: list[str]) -> str:  # fmt: skip
    if not judged and not seis:
        return ""
    out = "## Annotations\n\n"
    if judged:
        out += _annotations_table(msgs, judged, secrets)
    if seis:
        out += _scores_table(seis)
    return out


def _title(snap: Snapshot, conv: Row) -> str:
    """The heading and the line under it naming the run and prompt set."""
    title = f"{conv.get('model_id') or 'unknown'}"
    if conv.get("model_b_id"):
        title += f" and {conv['model_b_id']}"
    title += f" · {conv.get('condition') or conv.get('kind')} · repeat {conv.get('repeat') or 1}"
    run = snap.runs[conv["run_id"]]
    return (f"# {inline(title)}\n\n"
            f"Run {inline(run['id'])} ({inline(run.get('name') or run.get('set_id') or '')}), "
            f"{inline(str(run.get('created_at') or '')[:19])}; prompt set "
            f"{inline(conv.get('set_id') or '-')} {inline((conv.get('set_hash') or '')[:12])}\n\n")  # fmt: skip


def render_conversation(snap: Snapshot, conv: Row, front: Front | None = None) -> str:
    """One conversation as a markdown document."""
    secrets = front.secrets if front else secret_values()
    front = front or Front(snap, secrets)
    msgs = snap.messages.get(conv["id"], [])
    judged = conversation_judgements(snap, conv)
    seis = conversation_seis(snap, conv)
    parts = [front_matter(snap, conv, msgs, judged, seis, front), "\n", _title(snap, conv)]
    if conv.get("system_prompt"):
        parts.append(
            "### system prompt\n\n" + fenced(redact(conv["system_prompt"], secrets)) + "\n"
        )
    parts.append("## Conversation\n\n")
    parts += [_turn(m, secrets) for m in msgs]
    parts.append(_judgement_sections(msgs, judged, seis, secrets))
    return "".join(parts).rstrip("\n") + "\n"


@dataclass
class MarkdownReport:
    """What a markdown export did."""

    root: Path
    conversations: int
    written: int  # new or changed files
    unchanged: int
    removed: list[str]
    files: list[str]  # every conversation file, relative to root
    seconds: float


WRITE_AHEAD = 256  # rendered files that may wait for a writer thread


def _write_if_changed(path: Path, text: str, size: int | None) -> bool:
    """Write unless the file already holds these bytes; `size` is its size, None if absent."""
    data = text.encode("utf-8")
    if size == len(data) and path.read_bytes() == data:
        return False
    path.write_bytes(data)
    return True


def _existing_sizes(root: Path, folders: Iterable[str]) -> dict[str, int]:
    """'folder/name' → size of the files already there (one directory scan per folder)."""
    sizes = {}
    for folder in folders:
        try:
            with os.scandir(root / folder) as it:
                sizes.update({f"{folder}/{e.name}": e.stat().st_size for e in it if e.is_file()})
        except FileNotFoundError:
            (root / folder).mkdir(parents=True)
    return sizes


def _ours(path: Path) -> bool:
    try:
        with path.open("rb") as f:
            return f.read(len(MARKER) + 5) == f"---\n{MARKER}\n".encode()
    except OSError:
        return False


def _remove_stale(root: Path, keep: set[str]) -> list[str]:
    """Our files in the run folders we just wrote whose conversation is gone."""
    removed = []
    for folder in sorted({p.split("/")[0] for p in keep}):
        for path in sorted((root / folder).glob("*.md")):
            rel = f"{folder}/{path.name}"
            if rel not in keep and _ours(path):
                path.unlink()
                removed.append(rel)
    return removed


def _write_conversations(root: Path, snap: Snapshot, paths: dict[str, str],
                         front: Front) -> tuple[int, int]:  # fmt: skip
    """Write each conversation's file where it changed; returns (written, unchanged)."""
    sizes = _existing_sizes(root, sorted({p.split("/")[0] for p in paths.values()}))
    # Files are written by two threads while this one renders: creating a file costs about a
    # millisecond on some file systems (10 s of 10,000), time the rendering can use. At most
    # WRITE_AHEAD rendered files wait in memory; a write that fails stops the export with its
    # error, as a failed write in this thread would.
    results: list[bool] = []
    pending: deque[Future[bool]] = deque()
    with ThreadPoolExecutor(2, thread_name_prefix="export-write") as pool:
        for conv in snap.conversations:
            rel = paths[conv["id"]]
            text = render_conversation(snap, conv, front)
            pending.append(pool.submit(_write_if_changed, root / rel, text, sizes.get(rel)))
            while len(pending) > WRITE_AHEAD or (pending and pending[0].done()):
                results.append(pending.popleft().result())
        results += [f.result() for f in pending]
    written = sum(results)
    return written, len(results) - written


@people_errors
def export_markdown(db: duckdb.DuckDBPyConnection, root: Path,
                    run_ids: Iterable[str] | None = None) -> MarkdownReport:  # fmt: skip
    """Write one markdown file per conversation and an index README.md under root."""
    started = time.perf_counter()
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    snap = snapshot(db, run_ids, heavy=False)
    front = Front(snap, secret_values())
    paths = plan_paths(snap)
    for rel in {*paths.values(), "README.md"}:
        safe_target(root, rel)  # every name checked before anything is written
    written, unchanged = _write_conversations(root, snap, paths, front)
    removed = _remove_stale(root, set(paths.values()))
    rows = score_table(db, check_runs(db, run_ids))
    index = redact(render_index(snap, paths, rows), front.secrets)
    readme = root / "README.md"
    written += _write_if_changed(readme, index, readme.stat().st_size if readme.exists() else None)
    files = [paths[c["id"]] for c in snap.conversations]
    return MarkdownReport(root, len(files), written, unchanged, removed, files,
                          time.perf_counter() - started)  # fmt: skip
