"""The archive for notebooks: lossless JSONL, Parquet per table, and a flat responses CSV."""

from __future__ import annotations

import json
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb
import pandas as pd

from dialogues.export.common import (
    Row,
    json_value,
    people_errors,
    plain,
    redact,
    redact_value,
    response_state,
    secret_values,
)
from dialogues.export.judgements import current_judgements
from dialogues.export.snapshot import ORDER, TABLES, Snapshot, check_runs, run_filters, snapshot

JSONL_FORMAT = "dialogues-jsonl/1"
RESPONSE_COLUMNS = (
    "run_id", "run_name", "conversation_id", "message_id", "model", "family", "parameter_size",
    "training", "condition", "repeat", "set_id", "set_hash", "phase", "seq", "attempt",
    "prompt_key", "prompt", "content", "reasoning", "state", "finish_reason", "tokens_in",
    "tokens_out", "reasoning_tokens", "latency_ms", "error_kind", "error", "created_at",
)  # fmt: skip
# ...then one 'label:<source>' column per source, and '<target>_label:<source>' for reasoning.


@dataclass
class FileReport:
    """What a data export wrote."""

    paths: list[Path]
    rows: dict[str, int]  # table (or file) → rows written
    seconds: float


# --- JSONL ----------------------------------------------------------------------------------


def _record(row: Row, secrets: list[str]) -> Row:
    """A row as JSON-ready values: JSON columns parsed, timestamps ISO, secrets redacted."""
    out = {}
    for k, v in row.items():
        if k.endswith("_json"):
            v = json_value(v)
        out[k] = redact_value(plain(v), secrets) if secrets else plain(v)
    return out


def _prefix_sets(run: Row) -> list[tuple[Any, Any]]:
    """(id, version) of a run's warm-up set and of every prefix set its conditions recorded."""
    out = [(run.get("warmup_set_id"), run.get("warmup_set_hash"))]
    params = json_value(run.get("params_json")) or {}
    for cond in params.get("conditions") or [] if isinstance(params, dict) else []:
        prefix = cond.get("prefix") if isinstance(cond, dict) else None
        if prefix:
            out.append((prefix.get("id"), prefix.get("version_hash")))
    return out


def _used_prompts(snap: Snapshot, conv: Row, msgs: list[Row], whole: bool = False) -> list[Row]:
    """The prompt rows this conversation sent, from its set and its run's warm-up set.

    With `whole`, every prompt of those sets: the first line of a run carries them, so an
    archive rebuilt from the file can plan, and so resume, the run's unfinished cells.
    """
    run = snap.runs[conv["run_id"]]
    wanted = {(m.get("prompt_key"), m.get("prompt_hash")) for m in msgs if m.get("prompt_key")}
    out = []
    for set_hash in dict.fromkeys(
        h for h in (conv.get("set_hash"), *(v for _, v in _prefix_sets(run))) if h
    ):
        out += [p for p in snap.prompts.get(set_hash, [])
                if whole or (p["key"], p["content_hash"]) in wanted]  # fmt: skip
    return out


def _messages(snap: Snapshot, msgs: list[Row], secrets: list[str]) -> tuple[list[Row], set[str]]:
    """Each message with every annotation row and tag nested; and the taggers they name."""
    messages: list[Row] = []
    tagger_ids: set[str] = set()
    for m in msgs:
        rec = _record(m, secrets)
        rec["annotations"] = [_record(a, secrets) for a in snap.annotations.get(m["id"], [])]
        tags = snap.tags.get(m["id"], [])
        rec["tags"] = [_record(t, secrets) for t in tags]
        tagger_ids.update(t["tagger_id"] for t in tags)
        messages.append(rec)
    return messages, tagger_ids


def conversation_record(
    snap: Snapshot, conv: Row, secrets: list[str], first_of_run: bool = False
) -> dict[str, Any]:
    """One JSONL line as a dict: the conversation with everything it refers to, nested.

    The first line of each run also carries every prompt of its sets (see `_used_prompts`).
    """
    run = snap.runs[conv["run_id"]]
    msgs = snap.messages.get(conv["id"], [])
    sets = [snap.prompt_sets[k] for k in dict.fromkeys(
        [(conv.get("set_id"), conv.get("set_hash")), *_prefix_sets(run)])
        if k in snap.prompt_sets]  # fmt: skip
    messages, tagger_ids = _messages(snap, msgs, secrets)
    model_ids = [i for i in (conv.get("model_id"), conv.get("model_b_id")) if i]
    return {
        "format": JSONL_FORMAT,
        "conversation": _record(conv, secrets),
        "run": _record(run, secrets),
        "models": [_record(snap.models[i], secrets) for i in model_ids if i in snap.models],
        "prompt_sets": [_record(s, secrets) for s in sets],
        "prompts": [_record(p, secrets) for p in _used_prompts(snap, conv, msgs, first_of_run)],
        "taggers": [
            _record(snap.taggers[t], secrets) for t in sorted(tagger_ids) if t in snap.taggers
        ],  # fmt: skip
        "messages": messages,
    }


def jsonl_lines(snap: Snapshot) -> Iterator[str]:
    """One line per conversation, same bytes for the same archive content."""
    secrets = secret_values()
    runs: set[str] = set()
    for conv in snap.conversations:
        first = conv["run_id"] not in runs
        runs.add(conv["run_id"])
        rec = conversation_record(snap, conv, secrets, first)
        yield json.dumps(rec, ensure_ascii=False, separators=(",", ":"), allow_nan=False) + "\n"


@people_errors
def export_jsonl(db: duckdb.DuckDBPyConnection, path: Path,
                 run_ids: Iterable[str] | None = None) -> FileReport:  # fmt: skip
    """Write every conversation (or those of the runs named) as one JSON object per line."""
    started = time.perf_counter()
    snap = snapshot(db, run_ids, judgements=False)  # JSONL carries rows, not judgements
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".partial")
    with tmp.open("w", encoding="utf-8", newline="\n") as f:
        f.writelines(jsonl_lines(snap))
    tmp.replace(path)  # a reader never sees half a file
    return FileReport([path], {"conversations": len(snap.conversations)},
                      time.perf_counter() - started)  # fmt: skip


# --- Parquet and CSV ------------------------------------------------------------------------


def _response_row(snap: Snapshot, conv: Row, m: Row, prompt: Any) -> dict[str, Any]:
    """The flat row of one assistant message, labels not yet added."""
    run = snap.runs[conv["run_id"]]
    model = snap.models.get(m.get("model_id") or "", {})
    return {
        "run_id": conv["run_id"], "run_name": run.get("name"),
        "conversation_id": conv["id"], "message_id": m["id"],
        "model": m.get("model_id"), "family": model.get("family"),
        "parameter_size": model.get("parameter_size"), "training": model.get("training"),
        "condition": conv.get("condition"), "repeat": conv.get("repeat"),
        "set_id": conv.get("set_id"), "set_hash": conv.get("set_hash"),
        "phase": m.get("phase"), "seq": m["seq"], "attempt": m["attempt"],
        "prompt_key": m.get("prompt_key"), "prompt": prompt,
        "content": m.get("content"), "reasoning": m.get("reasoning"),
        "state": response_state(m), "finish_reason": m.get("finish_reason"),
        "tokens_in": m.get("tokens_in"), "tokens_out": m.get("tokens_out"),
        "reasoning_tokens": m.get("reasoning_tokens"), "latency_ms": m.get("latency_ms"),
        "error_kind": m.get("error_kind"), "error": m.get("error"),
        "created_at": m.get("created_at"),
    }  # fmt: skip


def responses_frame(snap: Snapshot) -> pd.DataFrame:
    """One row per assistant message: model, condition, prompt, reply, reasoning, labels."""
    rows = []
    sources: set[str] = set()
    for conv in snap.conversations:
        prompt = None
        for m in snap.messages.get(conv["id"], []):
            if m["role"] != "assistant":
                if m.get("error") is None:
                    prompt = m.get("content")
                continue
            row = _response_row(snap, conv, m, prompt)
            for j in current_judgements(snap, m["id"]):
                column = ("label:" if j.target == "answer" else f"{j.target}_label:") + j.source
                row[column] = j.label
                sources.add(column)
            rows.append(row)
            if m.get("error") is None and m.get("side") is not None:
                prompt = m.get("content")  # in a dialogue, a reply is the other side's prompt
    if not rows:
        return pd.DataFrame(columns=RESPONSE_COLUMNS)
    frame = pd.DataFrame(rows)
    return frame[list(RESPONSE_COLUMNS) + sorted(sources)]


def _quote(path: Path) -> str:
    return "'" + str(path).replace("'", "''") + "'"


def _copy(db: duckdb.DuckDBPyConnection, frame: Any, target: Path, options: str) -> None:
    """COPY a DataFrame or Arrow table through DuckDB's own writer."""
    db.register("_export_frame", frame)
    try:
        db.execute(f"COPY _export_frame TO {_quote(target)} ({options})")
    finally:
        db.unregister("_export_frame")


def _table_arrow(db: duckdb.DuckDBPyConnection, name: str, where: str, params: list[Any],
                 secrets: list[str]) -> Any:  # fmt: skip
    """A table as Arrow, secret values replaced in every text column."""
    import pyarrow as pa
    import pyarrow.compute as pc

    sql = f"SELECT * FROM {name} {where} ORDER BY {ORDER[name]}"
    table: Any = db.sql(sql, params=params or None).to_arrow_table()
    if not secrets:
        return table
    cols = []
    for col in table.columns:
        if pa.types.is_string(col.type) or pa.types.is_large_string(col.type):
            for s in secrets:
                col = pc.replace_substring(col, s, "[redacted]")
        cols.append(col)
    return pa.table(cols, names=table.column_names)


def _redact_frame(frame: pd.DataFrame, secrets: list[str]) -> pd.DataFrame:
    if not secrets or frame.empty:
        return frame
    return frame.map(lambda v: redact(v, secrets) if isinstance(v, str) else v)


@people_errors
def export_parquet(db: duckdb.DuckDBPyConnection, folder: Path,
                   run_ids: Iterable[str] | None = None) -> FileReport:  # fmt: skip
    """One Parquet file per archive table, plus responses.parquet, via DuckDB's COPY."""
    started = time.perf_counter()
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    wanted = check_runs(db, run_ids)
    filters = run_filters(wanted)
    secrets = secret_values()
    paths, counts = [], {}
    for name in TABLES:
        where, params = filters.get(name, ("", []))
        table = _table_arrow(db, name, where, params, secrets)
        target = folder / f"{name}.parquet"
        _copy(db, table, target, "FORMAT parquet")
        paths.append(target)
        counts[name] = table.num_rows
    frame = _redact_frame(responses_frame(snapshot(db, wanted, heavy=False)), secrets)
    target = folder / "responses.parquet"
    _copy(db, frame, target, "FORMAT parquet")
    paths.append(target)
    counts["responses"] = len(frame)
    return FileReport(paths, counts, time.perf_counter() - started)


@people_errors
def export_csv(db: duckdb.DuckDBPyConnection, path: Path,
               run_ids: Iterable[str] | None = None) -> FileReport:  # fmt: skip
    """The flat responses table as CSV (header row, RFC 4180 quoting, UTF-8)."""
    started = time.perf_counter()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    frame = _redact_frame(responses_frame(snapshot(db, run_ids, heavy=False)), secret_values())
    _copy(db, frame, path, "FORMAT csv, HEADER true")
    return FileReport([path], {"responses": len(frame)}, time.perf_counter() - started)
