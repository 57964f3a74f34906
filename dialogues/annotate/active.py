"""Active learning: order the annotation queue so the next labels teach the learned tagger most.

The learned tagger is trained on every human label so far; the responses nobody has labelled
are ranked by its uncertainty (the smallest margin between its two most likely labels first).
Each trained tagger is recorded with its cross-validated figures, so the history of those
records is the learning curve: how the out-of-fold F1 moved as labels were added.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb

from dialogues.annotate import learned
from dialogues.annotate.annotations import CURRENT_SQL, QueueFilter
from dialogues.annotate.autotag import register_tagger
from dialogues.annotate.tagging import no_answer
from dialogues.store import connect, transaction


@dataclass
class Plan:
    """The queue by uncertainty, and the tagger that ranked it."""

    order: list[str]  # message ids, most uncertain first
    uncertainty: dict[str, float]  # 1 - (top probability - second), 0..1
    tagger: str
    labels: int  # human labels it was trained on
    cv_f1: float
    cv_kappa: float


def margin_uncertainty(probs: dict[str, float]) -> float:
    """1 minus the gap between the two most likely labels: 1 = a coin toss, 0 = sure."""
    top = sorted(probs.values(), reverse=True) + [0.0]
    return 1.0 - (top[0] - top[1])


def unlabelled(db: duckdb.DuckDBPyConnection, filt: QueueFilter) -> list[tuple[str, str]]:
    """(message id, text) of queue responses with an answer and no human label yet."""
    clauses, params = [], []
    for column, values in (("c.set_id", filt.set_ids), ("m.prompt_key", filt.prompt_keys),
                           ("c.model_id", filt.models), ("c.run_id", filt.run_ids)):  # fmt: skip
        if values:
            clauses.append(f"AND {column} IN ({', '.join('?' for _ in values)})")
            params += list(values)
    rows = db.execute(
        f"""
        SELECT m.id, m.content, m.reasoning, m.finish_reason
        FROM messages m JOIN conversations c ON c.id = m.conversation_id
        WHERE m.role = 'assistant' AND m.error IS NULL {" ".join(clauses)}
          AND NOT EXISTS (SELECT 1 FROM ({CURRENT_SQL}) a WHERE a.message_id = m.id
                          AND a.target = 'answer' AND a.label IS NOT NULL)
        ORDER BY m.id
        """,
        params,
    ).fetchall()
    return [(m, text) for m, text, why, finish in rows if not no_answer(text, why, finish)]


def plan(archive: Path, filt: QueueFilter, settings: learned.Settings | None = None) -> Plan:
    """Train on all human labels, record the tagger, rank the unlabelled answers by doubt."""
    with connect(archive) as db:
        examples = learned.examples_from_archive(db)
        todo = unlabelled(db, filt)
    tagger = learned.train(examples, settings)
    with transaction(archive) as db:
        tid = register_tagger(db, tagger)
    probs = tagger.probabilities([text for _, text in todo]) if todo else []
    doubt = {m: margin_uncertainty(p) for (m, _), p in zip(todo, probs, strict=True)}
    order = sorted(doubt, key=lambda m: (-doubt[m], m))
    cv = tagger.summary()["cv_mean"]
    return Plan(order, doubt, tid, len(examples), cv["f1"], cv["kappa"])


def next_item(plan: Plan, done: set[str], skip: tuple[str, ...] = ()) -> str | None:
    """The most uncertain response not judged by this annotator (skipped ones last)."""
    left = [m for m in plan.order if m not in done]
    later = [m for m in left if m in skip]
    first = [m for m in left if m not in skip]
    rest = first or later
    return rest[0] if rest else None


def learning_curve(db: duckdb.DuckDBPyConnection) -> list[dict[str, Any]]:
    """Every learned tagger recorded, by labels trained on: cross-validated F1 and kappa."""
    rows = db.execute(
        "SELECT id, config_json, created_at FROM taggers WHERE kind = 'learned' ORDER BY created_at"
    ).fetchall()
    out = []
    for tid, config, created in rows:
        found = json.loads(config) if isinstance(config, str) else (config or {})
        cv = found.get("cv_mean", {})
        out.append({"tagger": tid, "labels": found.get("n"), "cv_f1": cv.get("f1"),
                    "cv_kappa": cv.get("kappa"), "created_at": created})  # fmt: skip
    return sorted(out, key=lambda r: (r["labels"] or 0, r["created_at"]))
