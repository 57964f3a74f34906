"""The OUTCOMES frame: one row per (response, label source) with its prompt and binary outcome.

What the tests and models of dialogues.analyse.inference and .architecture read. Unlike the
LABELS frame, the raw label is kept and read through a label set (domain.labels): a label the
set does not know is missing (NaN outcome), and `y` is 1 for the set's `positive` labels (the
refusal side: deflection or partial by default), 0 for its other labels. `engaged` is 1 for
'engagement' when the set has it, else for any non-positive label.

Columns: model, family, parameters, training, condition, source, run_id, set_id, prompt_key,
repeat, conversation_id, message_id, label, y, engaged. The clustering unit is the prompt:
(set_id, prompt_key); a repeat of a prompt is one conversation within that cluster.
"""

from __future__ import annotations

from typing import Any

import duckdb
import numpy as np
import pandas as pd

from dialogues.analyse import frames, scores
from dialogues.analyse.frames import Filters
from dialogues.domain.labels import DEFAULT, LabelSet

COLUMNS = ("model", "family", "parameters", "training", "condition", "source", "run_id",
           "set_id", "prompt_key", "repeat", "conversation_id", "message_id", "label", "y",
           "engaged")  # fmt: skip


def load(db: duckdb.DuckDBPyConnection, f: Filters, labels: LabelSet = DEFAULT) -> pd.DataFrame:
    """OUTCOMES for some filters, read through a label set."""
    params: list[Any] = []
    resp = frames._responses_sql(f, params)
    lab = frames._labelled_sql(f, params)
    sql = f"""
        WITH r AS ({resp}), l AS ({lab})
        SELECT r.model, mo.family, mo.parameters, mo.training, r.condition, l.source, r.run_id,
               r.set_id, r.prompt_key, r."repeat", r.conversation_id, r.message_id, l.label
        FROM r JOIN l ON l.message_id = r.message_id
        LEFT JOIN models mo ON mo.id = r.model
        ORDER BY r.model, r.condition, l.source, r.set_id, r.prompt_key, r."repeat", r.seq
    """
    raw = db.execute(sql, params).df()
    return outcomes(raw, labels)


def read_label(label: Any, labels: LabelSet) -> str | None:
    """The label set's key for a stored label (known aliases read as their canonical key)."""
    if scores._missing(label):
        return None
    key = str(label).strip().lower()
    if key in labels.labels:
        return key
    canonical = scores.LABEL_ALIASES.get(key)
    return canonical if canonical in labels.labels else None


def outcomes(raw: pd.DataFrame, labels: LabelSet = DEFAULT) -> pd.DataFrame:
    """Add `y` and `engaged` to rows with a raw `label`; unknown labels become missing."""
    out = raw.copy()
    read = [read_label(x, labels) for x in out["label"]]
    engaged = "engagement" if "engagement" in labels.labels else None
    out["label"] = read
    out["y"] = [np.nan if x is None else float(x in labels.positive) for x in read]
    out["engaged"] = [
        np.nan if x is None else float(x == engaged if engaged else x not in labels.positive)
        for x in read
    ]
    return out.reindex(columns=list(COLUMNS))
