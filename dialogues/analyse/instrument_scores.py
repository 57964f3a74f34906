"""Totals on any rubric instrument, per model × condition × label source.

A reply's total is the sum of its dimensions on the instrument (only when every dimension is
scored). Replies of one conversation are not independent, so the unit is the conversation:
each contributes the mean total of its scored replies, and the interval is Student's t over
conversations (cut to the instrument's 0..max scale). The per-dimension means behind the
Compare heatmap average the same replies the same way.
"""

from __future__ import annotations

import json
from typing import Any

import duckdb
import pandas as pd

from dialogues.analyse import intervals
from dialogues.analyse.frames import Filters
from dialogues.annotate.annotations import ADJUDICATED, CURRENT_RUBRIC_SQL
from dialogues.domain.instruments import Instrument

REPLY_COLUMNS = ("model", "condition", "source", "conversation_id", "message_id", "prompt_key",
                 "total", "max")  # fmt: skip


def _in(column: str, values: tuple[str, ...], params: list[Any]) -> str:
    if not values:
        return ""
    params.extend(values)
    return f" AND {column} IN ({', '.join('?' for _ in values)})"


def _complete(
    db: duckdb.DuckDBPyConnection, inst: Instrument, f: Filters
) -> list[tuple[tuple[Any, ...], dict[str, int]]]:
    """Each reply × person scored on every dimension this instrument gives its prompt: the
    reply's (model, condition, source, conversation, message, prompt key) and its scores."""
    params: list[Any] = [f.target, inst.id]
    # annotations from before m006 carry no instrument: their rubric is the SEI's
    same = "a.instrument_id = ?" + (" OR a.instrument_id IS NULL" if inst.id == "sei" else "")
    where = " AND a.blind IS TRUE" if f.blind_only else ""
    where += _in("c.run_id", f.run_ids, params) + _in("c.set_id", f.set_ids, params)
    where += _in("c.condition", f.conditions, params) + _in("c.model_id", f.models, params)
    rows = db.execute(
        f"""
        SELECT c.model_id, c.condition,
               CASE WHEN a.annotator = '{ADJUDICATED}' THEN '{ADJUDICATED}'
                    ELSE 'human:' || a.annotator END AS source,
               m.conversation_id, m.id, m.prompt_key, m.phase, a.rubric_json
        FROM ({CURRENT_RUBRIC_SQL}) a JOIN messages m ON m.id = a.message_id
        JOIN conversations c ON c.id = m.conversation_id
        WHERE a.target = ? AND ({same}) AND a.rubric_json IS NOT NULL{where}
        """,
        params,
    ).fetchall()
    out = []
    for model, cond, source, conv, msg, key, phase, rubric in rows:
        if f.sources and source not in f.sources or not inst.dimensions_for(key, phase):
            continue
        given = json.loads(rubric) if isinstance(rubric, str) else rubric
        if inst.prompt_total(key, given) is None:
            continue
        scores = {d.key: int(given[d.key]) for d in inst.dimensions_for(key)}
        out.append(((model, cond, source, conv, msg, key), scores))
    return out


def reply_totals(db: duckdb.DuckDBPyConnection, inst: Instrument, f: Filters) -> pd.DataFrame:
    """One row per reply × person scored completely on this instrument (warm-up never)."""
    out = [(*reply, sum(scores.values()), inst.prompt_max(reply[-1]))
           for reply, scores in _complete(db, inst, f)]  # fmt: skip
    return pd.DataFrame(out, columns=list(REPLY_COLUMNS))


def dimension_means(db: duckdb.DuckDBPyConnection, inst: Instrument, f: Filters) -> pd.DataFrame:
    """Mean score per model × condition × source × dimension, over the replies the totals
    count, conversations weighted alike (for a prompt-wide instrument the means sum to the
    mean total); one column per dimension key, blank where none was scored."""
    keys = list(inst.names)
    long = [(*reply[:4], key, score) for reply, scores in _complete(db, inst, f)
            for key, score in scores.items()]  # fmt: skip
    group = ["model", "condition", "source"]
    if not long:
        return pd.DataFrame(columns=[*group, *keys])
    frame = pd.DataFrame(long, columns=[*group, "conversation_id", "dimension", "score"])
    filled = frame.fillna({c: "–" for c in group[1:]})  # a dialogue has no condition
    per_conv = filled.groupby([*group, "conversation_id", "dimension"])["score"].mean()
    table = per_conv.groupby([*group, "dimension"]).mean().unstack("dimension")
    table = table.reindex(columns=keys)
    table.columns.name = None
    return table.reset_index()


def instrument_rows(
    db: duckdb.DuckDBPyConnection, inst: Instrument, f: Filters
) -> list[dict[str, Any]]:
    """Per model × condition × source: replies, conversations, mean total and its interval."""
    replies = reply_totals(db, inst, f)
    rows = []
    for (model, cond, source), group in replies.groupby(["model", "condition", "source"]):
        per_conv = group.groupby("conversation_id")["total"].mean()
        top = int(group["max"].max())
        ci = intervals.mean_t(per_conv.tolist(), bounds=(0.0, float(top)))
        rows.append({"instrument": inst.id, "version": inst.version, "model": model,
                     "condition": cond, "source": source, "replies": len(group),
                     "conversations": ci.n, "mean_total": ci.estimate, "ci_low": ci.low,
                     "ci_high": ci.high, "ci_note": ci.reason, "max": top})  # fmt: skip
    return rows
