"""Run a tagger over the archive: every response (or reasoning text) it has not tagged yet.

Only untagged rows are fetched (an anti-join on the tagger's id), the heuristic runs in
worker processes when there is much to do, and the new tags go in with one INSERT of a
whole frame, so 100,000 responses take seconds, not minutes. A changed tagger has a new id,
so it tags everything again and the old tags stay.
"""

from __future__ import annotations

import asyncio
import math
import os
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb
import pandas as pd

from dialogues.annotate.annotations import TARGETS
from dialogues.annotate.tagging import (
    HeuristicTagger,
    Tag,
    Tagger,
    no_answer,
    no_answer_tag,
    rules_digest,
    tagger_id,
)
from dialogues.domain.prompts import sha256
from dialogues.store import connect, transaction
from dialogues.store.records import new_id, to_json

PROGRESS_STEP = 5000  # rows per saved slice when a caller watches progress
PARALLEL_FROM = 5000  # below this, starting worker processes costs more than it saves
CHUNK = 2000


@dataclass
class TagSummary:
    """What one tagger did to one target."""

    tagger: str
    target: str
    tagged: int = 0
    failed: int = 0
    seconds: float = 0.0
    failures: list[str] = field(default_factory=list)  # first few: message id and why


def targets_for(choice: str) -> tuple[str, ...]:
    """'answer' | 'reasoning' | 'both' → the targets to tag."""
    if choice == "both":
        return TARGETS
    if choice not in TARGETS:
        raise ValueError(f"target must be answer, reasoning or both, not {choice!r}")
    return (choice,)


def tagger_kind_and_config(tagger: Tagger) -> tuple[str, dict[str, Any]]:
    """How a tagger is recorded in the taggers table."""
    if isinstance(tagger, HeuristicTagger):
        rules = tagger.rules
        return "heuristic", {"rules_digest": rules_digest(rules), "rules": asdict(rules)}
    config = getattr(tagger, "config", None)
    return str(getattr(tagger, "kind", "other")), (config() if callable(config) else {})


def register_tagger(db: duckdb.DuckDBPyConnection, tagger: Tagger) -> str:
    """Record a tagger once (id, name, version, kind, config); returns its id."""
    kind, config = tagger_kind_and_config(tagger)
    tid = tagger_id(tagger)
    db.execute(
        "INSERT INTO taggers (id, name, version, kind, config_json) VALUES (?, ?, ?, ?, ?) "
        "ON CONFLICT (id) DO NOTHING",
        [tid, tagger.name, tagger.version, kind, to_json(config)],
    )
    return tid


def _untagged_where(tid: str, target: str, run_id: str | None) -> tuple[str, list[Any]]:
    """FROM … WHERE for the responses this tagger has not tagged (m: message, c: conversation)."""
    # Answers are tagged even when empty (an empty answer is data); reasoning only when present.
    present = "TRUE" if target == "answer" else "trim(coalesce(m.reasoning, '')) <> ''"
    run = "AND c.run_id = ?" if run_id else ""
    where = f"""
        WHERE m.role = 'assistant' AND m.error IS NULL AND {present} {run}
          AND NOT EXISTS (SELECT 1 FROM tags t WHERE t.message_id = m.id AND t.target = ?
                          AND t.tagger_id = ?)"""
    return where, [*([run_id] if run_id else []), target, tid]


def count_untagged(
    db: duckdb.DuckDBPyConnection, tagger: Tagger, target: str = "answer", run_id: str | None = None
) -> int:
    """How many responses this tagger has not tagged yet (what tagging now would do)."""
    where, params = _untagged_where(tagger_id(tagger), target, run_id)
    row = db.execute(
        f"SELECT count(*) FROM messages m JOIN conversations c ON c.id = m.conversation_id {where}",
        params,
    ).fetchone()
    return int(row[0]) if row else 0


def untagged(
    db: duckdb.DuckDBPyConnection,
    tid: str,
    target: str,
    run_id: str | None = None,
    questions: bool = True,
) -> pd.DataFrame:
    """Responses without a tag from this tagger: message_id, text, phase, prompt_key, and the
    question before each when `questions` (only a judge reads it)."""
    text = "m.content" if target == "answer" else "m.reasoning"
    column = join = latest = ""
    # Only a judge reads the question; joining it copies its text once per answer (a large
    # frame at 100,000 answers), so the heuristic goes without.
    if questions:  # the user turn just before, in its latest attempt; the probe turns earlier
        column = """, u.content AS question, (
            SELECT string_agg(upper(e.role) || ': ' || coalesce(e.content, ''), '\n\n'
                              ORDER BY e.seq)
            FROM messages e WHERE e.conversation_id = m.conversation_id AND e.seq < m.seq - 1
              AND e.error IS NULL AND e.phase = 'probe' AND e.role IN ('user', 'assistant')
        ) AS earlier"""
        join = """LEFT JOIN messages u ON u.conversation_id = m.conversation_id
             AND u.seq = m.seq - 1 AND u.error IS NULL"""
        latest = (
            "QUALIFY row_number() OVER (PARTITION BY m.id ORDER BY u.attempt DESC NULLS LAST) = 1"
        )
    where, params = _untagged_where(tid, target, run_id)
    found = db.execute(
        f"""
        SELECT m.id AS message_id, coalesce({text}, '') AS text, m.phase, m.prompt_key,
               m.reasoning, m.finish_reason {column}
        FROM messages m JOIN conversations c ON c.id = m.conversation_id
        {join}
        {where}
        {latest}
        """,
        params,
    ).df()
    return found.astype(object)  # plain objects: Arrow-backed strings iterate ~6x slower


def _tag_chunk(tagger: Tagger, texts: list[str]) -> list[Tag]:
    return [tagger.tag(t) for t in texts]


def _heuristic(tagger: Tagger, texts: list[str], workers: int | None) -> list[Tag]:
    """Tag texts (each distinct text once), in worker processes when there are many."""
    distinct = list(dict.fromkeys(texts))
    workers = workers if workers is not None else min(os.cpu_count() or 1, 8)
    if workers <= 1 or len(distinct) < PARALLEL_FROM:
        tags = _tag_chunk(tagger, distinct)
    else:
        chunks = [distinct[i : i + CHUNK] for i in range(0, len(distinct), CHUNK)]
        # spawn, not fork: the caller may hold DuckDB and server threads
        import multiprocessing

        with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn")) as ex:
            tags = [t for part in ex.map(_tag_chunk, [tagger] * len(chunks), chunks) for t in part]
    by_text = dict(zip(distinct, tags, strict=True))
    return [by_text[t] for t in texts]


def _judge(tagger: Any, frame: pd.DataFrame) -> list[Tag | Exception]:
    items = [
        # the prompt a reply answers (never a warm-up turn; the judge's instrument decides
        # whether it scores it) and the earlier probe turns a rubric dimension may need
        (q if isinstance(q, str) else "", t, None if ph == "warmup" else pk,
         e if isinstance(e, str) else "")
        for q, t, ph, pk, e in zip(frame["question"], frame["text"], frame["phase"],
                                   frame["prompt_key"], frame["earlier"], strict=True)
    ]  # fmt: skip
    return list(asyncio.run(tagger.judge_many(items)))


def _missing(target: str, frame: pd.DataFrame) -> list[str | None]:
    """Per row, why the reply holds no answer (see tagging.no_answer), None when it has one."""
    if target != "answer":
        return [None] * len(frame)
    return [no_answer(t, r if isinstance(r, str) else None, f if isinstance(f, str) else None)
            for t, r, f in zip(frame["text"], frame["reasoning"], frame["finish_reason"],
                               strict=True)]  # fmt: skip


def _tag_frame(
    tagger: Tagger, tid: str, target: str, todo: pd.DataFrame, workers: int | None
) -> list[Any]:
    """Tags for the rows: no_answer where there is no answer, the tagger's own elsewhere."""
    missing = _missing(target, todo)
    answered = todo[[m is None for m in missing]]
    if answered.empty:
        found: list[Any] = []
    elif hasattr(tagger, "judge_many"):
        found = _judge(tagger, answered)
    elif hasattr(tagger, "tag_for"):  # the learned tagger: out-of-fold tags for its own labels
        found = [tagger.tag_for(m, t) for m, t in zip(answered["message_id"], answered["text"],
                                                        strict=True)]  # fmt: skip
    else:
        found = list(_heuristic(tagger, answered["text"].tolist(), workers))
    it = iter(found)
    return [no_answer_tag(m, tid) if m else next(it) for m in missing]


def _frame(tid: str, target: str, frame: pd.DataFrame, tags: list[Any]) -> pd.DataFrame:
    """The rows to insert for the tags that came out (failures left out)."""
    rows = []
    now = datetime.now(UTC).replace(tzinfo=None)
    for message_id, text, tag in zip(frame["message_id"], frame["text"], tags, strict=True):
        if not isinstance(tag, Tag):
            continue
        features = dict(tag.features)
        rubric = features.pop("rubric", None)
        inst_id, inst_version = features.pop("instrument", None) or (None, None)
        conf = None if tag.confidence is None or math.isnan(tag.confidence) else tag.confidence
        rows.append((new_id(), message_id, target, tid, tag.label, conf, to_json(rubric),
                     to_json(features), sha256(text), now, inst_id, inst_version))  # fmt: skip
    columns = ["id", "message_id", "target", "tagger_id", "label", "confidence", "rubric_json",
               "features_json", "content_hash", "created_at", "instrument_id",
               "instrument_version"]  # fmt: skip
    return pd.DataFrame(rows, columns=columns)


def insert_tags(db: duckdb.DuckDBPyConnection, rows: pd.DataFrame) -> int:
    """Insert a frame of tag rows in one statement; a row tagged meanwhile is left alone.
    Returns how many went in."""
    if rows.empty:
        return 0
    db.register("new_tags", rows)
    try:
        # An anti-join, not INSERT OR IGNORE: DuckDB's conflict check per row made 100,000
        # tags take 23 s to insert; this takes 3 s (bench/scale.py).
        inserted = db.execute(
            "INSERT INTO tags BY NAME SELECT n.* FROM new_tags n WHERE NOT EXISTS ("
            "SELECT 1 FROM tags t WHERE t.message_id = n.message_id AND t.target = n.target "
            "AND t.tagger_id = n.tagger_id)"
        ).fetchone()
    finally:
        db.unregister("new_tags")
    return int(inserted[0]) if inserted else 0


def failure_reason(error: object) -> str:
    """'call failed' when the judge never answered, else 'unparseable'."""
    return "call failed" if str(error).startswith("judge call failed") else "unparseable"


def record_failures(
    db: duckdb.DuckDBPyConnection, tid: str, target: str, frame: pd.DataFrame, tags: list[Any]
) -> int:
    """Store the replies the tagger could not label, with why; returns how many."""
    now = datetime.now(UTC).replace(tzinfo=None)
    rows = [(new_id(), m, target, tid, failure_reason(t), str(t)[:500], now)
            for m, t in zip(frame["message_id"], tags, strict=True) if not isinstance(t, Tag)]  # fmt: skip
    if rows:
        db.executemany("INSERT INTO tag_failures VALUES (?, ?, ?, ?, ?, ?, ?)", rows)
    return len(rows)


def tag_archive(
    archive: Path,
    tagger: Tagger,
    targets: tuple[str, ...] = ("answer",),
    run_id: str | None = None,
    workers: int | None = None,
    progress: Callable[[str, int, int], None] | None = None,
) -> list[TagSummary]:
    """Tag every response (per target) this tagger has not tagged yet; returns what it did.

    With `progress`, tags go in by slices of PROGRESS_STEP, each saved as it is done, and
    progress(target, done, total) is called after each (an interrupted run keeps its tags).
    """
    out = []
    for target in targets:
        started = time.perf_counter()
        with connect(archive) as db:
            tid = register_tagger(db, tagger)
            judge = hasattr(tagger, "judge_many")
            todo = untagged(db, tid, target, run_id, questions=judge)
        summary = TagSummary(tid, target)
        step = PROGRESS_STEP if progress else max(len(todo), 1)
        for start in range(0, len(todo), step):
            part = todo.iloc[start : start + step]
            tags = _tag_frame(tagger, tid, target, part, workers)
            with transaction(archive) as db:
                summary.tagged += insert_tags(db, _frame(tid, target, part, tags))
                record_failures(db, tid, target, part, tags)
            errors = [(m, t) for m, t in zip(part["message_id"], tags, strict=True)
                      if not isinstance(t, Tag)]  # fmt: skip
            summary.failed += len(errors)
            summary.failures += [f"{m}: {e}" for m, e in errors][: 10 - len(summary.failures)]
            if progress:
                progress(target, start + len(part), len(todo))
        summary.seconds = time.perf_counter() - started
        out.append(summary)
    return out
