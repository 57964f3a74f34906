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
from dialogues.annotate.annotations import CURRENT_RUBRIC_SQL, instrument_of
from dialogues.domain import sources
from dialogues.domain.instruments import Instrument
from dialogues.store.records import latest_attempt
from dialogues.store.sql import is_in

REPLY_COLUMNS = ("model", "condition", "source", "conversation_id", "message_id", "prompt_key",
                 "total", "max")  # fmt: skip


def _complete(
    db: duckdb.DuckDBPyConnection, inst: Instrument, f: Filters
) -> list[tuple[tuple[Any, ...], dict[str, int]]]:
    """Each reply × source scored on every dimension this instrument gives its prompt: the
    reply's (model, condition, source, conversation, message, prompt key) and its scores.
    Sources are people (their latest judgement under this instrument) and judges that scored
    it (a tag per reply and judge); the model is the one that wrote the reply. A turn that
    was redone counts its latest attempt, as every score does."""
    narrow: list[Any] = []
    reply = ["m.role = 'assistant'", latest_attempt("m")]  # a redone turn: its latest reply
    for column, values in (("c.run_id", f.run_ids), ("c.set_id", f.set_ids),
                           ("c.condition", f.conditions), ("m.model_id", f.models)):  # fmt: skip
        if values:
            reply.append(is_in(column, values, narrow))
    blind = " AND a.blind IS TRUE" if f.blind_only else ""  # tags stay, as in scores
    rows = db.execute(
        f"""
        WITH judged AS (
            SELECT a.message_id, {sources.annotator_sql("a.annotator")} AS source, a.rubric_json
            FROM ({CURRENT_RUBRIC_SQL}) a
            WHERE a.target = ? AND {instrument_of("a")} = ? AND a.rubric_json IS NOT NULL{blind}
            UNION ALL
            SELECT t.message_id, {sources.tagger_sql("t.tagger_id")}, t.rubric_json
            FROM tags t
            WHERE t.target = ? AND {instrument_of("t")} = ? AND t.rubric_json IS NOT NULL
        )
        SELECT m.model_id, c.condition, j.source, m.conversation_id, m.id, m.prompt_key,
               m.phase, j.rubric_json
        FROM messages m JOIN conversations c ON c.id = m.conversation_id
        JOIN judged j ON j.message_id = m.id
        WHERE {" AND ".join(reply)}
        """,
        [f.target, inst.id, f.target, inst.id, *narrow],  # placeholders in text order
    ).fetchall()
    out = []
    for model, cond, source, conv, msg, key, phase, rubric in rows:
        if f.sources and source not in f.sources or not inst.dimensions_for(key, phase):
            continue
        given = json.loads(rubric) if isinstance(rubric, str) else rubric
        if not isinstance(given, dict) or inst.prompt_total(key, given) is None:
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
    # a dialogue has no condition: its group is kept (None), as the heatmap keeps it ('–')
    by = ["model", "condition", "source"]
    for (model, cond, source), group in replies.groupby(by, dropna=False):
        per_conv = group.groupby("conversation_id")["total"].mean()
        top = int(group["max"].max())
        ci = intervals.mean_t(per_conv.tolist(), bounds=(0.0, float(top)))
        rows.append({"instrument": inst.id, "version": inst.version, "model": model,
                     "condition": None if pd.isna(cond) else cond, "source": source,
                     "replies": len(group),
                     "conversations": ci.n, "mean_total": ci.estimate, "ci_low": ci.low,
                     "ci_high": ci.high, "ci_note": ci.reason, "max": top})  # fmt: skip
    return rows
