"""Totals on a non-SEI instrument per model × condition, resampling conversations."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from scipy import stats
from servers import Answer, OpenAIServer

from dialogues.analyse.frames import Filters
from dialogues.analyse.instrument_scores import instrument_rows
from dialogues.annotate import annotations as ann
from dialogues.cli import cli
from dialogues.domain import instruments
from dialogues.run import batch
from dialogues.store import connect, records, transaction


def test_capacity_totals_per_condition(archive: Path, tiny_set: Path) -> None:
    with OpenAIServer(default=Answer("fine")) as url:
        summary = asyncio.run(batch.run(archive, batch.BatchOptions(
            prompt_ref=str(tiny_set), model_refs=("openai/m",), api_base=url,
            conditions=("cold", "permission"), repeats=3, max_tokens=8)))  # fmt: skip
    capacity = instruments.load("capacity")
    with connect(archive) as db:
        replies = records.fetch_dicts(
            db,
            "SELECT m.id, m.prompt_key, c.condition, c.repeat FROM messages m JOIN conversations c"
            " ON c.id = m.conversation_id WHERE c.run_id = ? AND m.role = 'assistant'",
            [summary.run_id],
        )
    expected: dict[str, list[float]] = {"cold": [], "permission": []}
    with transaction(archive) as db:
        for r in replies:  # every dimension gets (repeat + 1 if framed), capped at 3
            score = min(3, r["repeat"] + (r["condition"] == "permission"))
            rubric = {d.key: score for d in capacity.dimensions_for(r["prompt_key"])}
            ann.save(db, ann.Annotation(r["id"], "ana", rubric=rubric, instrument="capacity",
                                        blind=True))  # fmt: skip
            if r["prompt_key"] == "a":
                expected[r["condition"]].append(4.0 * score)  # both replies score the same
        # an SEI rubric on the same reply is not a capacity score
    with connect(archive) as db:
        rows = {r["condition"]: r for r in instrument_rows(db, capacity, Filters())}
    assert set(rows) == {"cold", "permission"}
    for cond, values in expected.items():
        row = rows[cond]
        assert (row["replies"], row["conversations"], row["max"]) == (6, 3, 12)
        assert row["mean_total"] == np.mean(values)
        # Student's t over conversations, straight from scipy, cut to the 0–12 scale
        low, high = stats.t.interval(0.95, len(values) - 1, loc=np.mean(values),
                                     scale=stats.sem(values))  # fmt: skip
        assert row["ci_low"] == pytest.approx(max(0.0, low))
        assert row["ci_high"] == pytest.approx(min(12.0, high))
    out = CliRunner().invoke(cli, ["--archive", str(archive), "scores", "--instrument",
                                   "capacity", "--json", "--condition", "cold"])  # fmt: skip
    assert out.exit_code == 0, out.output
    printed = json.loads(out.output)
    assert [r["condition"] for r in printed] == ["cold"] and printed[0]["instrument"] == "capacity"
    with connect(archive) as db:
        assert instrument_rows(db, instruments.load("probe-score"), Filters()) == []
