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


def test_totals_and_dimension_means_of_a_seeded_archive(tmp_path: Path) -> None:
    from archive_seed import BETA, PROBE_SCORE, score_probe_score, seed

    from dialogues.analyse.instrument_scores import dimension_means

    archive = score_probe_score(seed(tmp_path / "a.duckdb"))
    inst = instruments.load(PROBE_SCORE)
    with connect(archive) as db:
        rows = {(r["condition"], r["source"]): r for r in instrument_rows(db, inst, Filters())}
        means = dimension_means(db, inst, Filters())
        warm_only = dimension_means(db, inst, Filters(conditions=("warm",)))
        nobody = instrument_rows(db, inst, Filters(models=("x",)))
    # worked out by hand in archive_seed.score_probe_score; alice's SEI rubrics never count
    assert set(rows) == {("cold", "human:carol"), ("warm", "human:carol"), ("cold", "human:dan")}
    cold, warm = rows["cold", "human:carol"], rows["warm", "human:carol"]
    dan = rows["cold", "human:dan"]
    assert (cold["model"], cold["replies"], cold["conversations"], cold["max"]) == (BETA, 3, 2, 8)
    assert (cold["mean_total"], cold["ci_low"], cold["ci_high"]) == (4.0, 0.0, 8.0)
    assert warm["mean_total"] == 7.5 and warm["ci_high"] == 8.0
    assert warm["ci_low"] == pytest.approx(7.5 - 12.7062047 * 0.5)
    assert (dan["mean_total"], dan["ci_low"]) == (0.0, None) and "n = 1" in dan["ci_note"]
    keys = ["engagement", "first_person", "specificity", "epistemic_honesty"]
    assert list(means.columns) == ["model", "condition", "source", *keys]
    table = means.set_index(["condition", "source"])[keys]
    assert table.loc[("cold", "human:carol")].tolist() == [0.75, 0.75, 1.25, 1.25]
    assert table.loc[("warm", "human:carol")].tolist() == [2.0, 2.0, 2.0, 1.5]
    assert table.loc[("cold", "human:dan")].tolist() == [0.0] * 4
    # a prompt-wide instrument: the dimension means add up to the mean total
    assert table.loc[("cold", "human:carol")].sum() == cold["mean_total"]
    assert list(warm_only["condition"]) == ["warm"] and nobody == []


def test_scoring_a_reply_on_a_second_instrument_keeps_the_first_ones_scores(
    archive: Path,
) -> None:
    from archive_seed import BETA, conv_id, seed

    from dialogues.analyse import frames
    from dialogues.domain import sei

    seed(archive)
    reply = f"{conv_id(BETA, 'cold', 1)}:p1"
    sei_scores = {d.key: 2 for d in sei.DIMENSIONS if d.probe == "p1"}
    probe = instruments.load("probe-score")
    probe_scores = {d.key: 1 for d in probe.dimensions_for("p1")}
    with transaction(archive) as db:
        ann.save(db, ann.Annotation(reply, "erin", label="engagement", rubric=sei_scores))
        ann.save(db, ann.Annotation(reply, "erin", label="partial", rubric=probe_scores,
                                    instrument="probe-score"))  # fmt: skip
    with connect(archive) as db:
        dims = frames.rubric_dimensions(db, Filters(target="answer"))
        (now,) = ann.current(db, message_ids=[reply], annotator="erin")
        found = instrument_rows(db, probe, Filters(target="answer"))
    mine = dims[dims["source"] == "human:erin"]
    # the SEI rubric still reads erin's SEI scores (and never her probe-score ones) ...
    assert dict(zip(mine["dimension"], mine["score"], strict=True)) == sei_scores
    # ... the probe score reads hers, and her label is her latest judgement
    (row,) = [r for r in found if r["source"] == "human:erin"]
    assert row["mean_total"] == len(probe_scores)
    assert now["label"] == "partial"


def test_a_judge_that_scored_the_instrument_is_a_source_of_its_totals(archive: Path) -> None:
    from archive_seed import BETA, conv_id, seed

    from dialogues.store.records import insert_rows, to_json

    seed(archive)
    probe = instruments.load("probe-score")
    keys = [d.key for d in probe.dimensions_for("p1")]
    judge = {"id": "judge@1", "name": "judge", "version": "1", "kind": "judge",
             "config_json": "{}"}  # fmt: skip
    tags = [{"id": f"t{i}", "message_id": f"{conv_id(BETA, 'cold', r)}:p1", "target": "answer",
             "tagger_id": "judge@1", "label": "engagement", "confidence": None,
             "rubric_json": to_json(dict.fromkeys(keys, score)), "features_json": "{}",
             "content_hash": "h", "instrument_id": "probe-score", "instrument_version": "1"}
            for i, (r, score) in enumerate(((1, 2), (2, 1)))]  # fmt: skip
    # a tag on the SEI (no instrument) is never read as a probe score
    tags.append({**tags[0], "id": "t-sei", "tagger_id": "judge@0", "instrument_id": None})
    with transaction(archive) as db:
        insert_rows(db, "taggers", [judge, {**judge, "id": "judge@0", "version": "0"}])
        insert_rows(db, "tags", tags)
    with connect(archive) as db:
        rows = instrument_rows(db, probe, Filters(target="answer"))
    (mine,) = [r for r in rows if r["source"].startswith("tagger:")]
    assert (mine["source"], mine["model"], mine["condition"]) == ("tagger:judge@1", BETA, "cold")
    # two conversations: totals 8 and 4
    assert (mine["conversations"], mine["mean_total"]) == (2, 6.0)


def test_a_conversation_without_a_condition_keeps_its_row(archive: Path) -> None:
    # a dialogue has no condition: its totals are a row of their own, not dropped
    from archive_seed import BETA, conv_id, score_probe_score, seed

    seed(archive)
    score_probe_score(archive)
    with transaction(archive) as db:
        db.execute("UPDATE conversations SET condition = NULL WHERE id = ?",
                   [conv_id(BETA, "warm", 1)])  # fmt: skip
    with connect(archive) as db:
        rows = instrument_rows(db, instruments.load("probe-score"), Filters(target="answer"))
    (none,) = [r for r in rows if r["condition"] is None]
    assert (none["source"], none["mean_total"], none["conversations"]) == ("human:carol", 8.0, 1)


def test_a_redone_turn_counts_its_latest_attempt_as_every_score_does(archive: Path) -> None:
    # the rule of scores and progress: a turn's latest attempt is its outcome; an earlier
    # reply that was judged before the turn was redone is not a second reply of the model
    from archive_seed import BETA, conv_id, seed

    from dialogues.store.records import insert_rows, to_json

    seed(archive)
    probe = instruments.load("probe-score")
    keys = [d.key for d in probe.dimensions_for("p1")]
    cid = conv_id(BETA, "cold", 2)
    with transaction(archive) as db:
        (first,) = records.fetch_dicts(db, "SELECT * FROM messages WHERE id = ?", [f"{cid}:p1"])
        insert_rows(db, "messages", [{**first, "id": f"{cid}:p1:again", "attempt": 2}])
    judge = {"id": "judge@1", "name": "judge", "version": "1", "kind": "judge",
             "config_json": "{}"}  # fmt: skip
    tags = [{"id": f"t-{mid}", "message_id": mid, "target": "answer", "tagger_id": "judge@1",
             "label": "engagement", "confidence": None,
             "rubric_json": to_json(dict.fromkeys(keys, score)), "features_json": "{}",
             "content_hash": "h", "instrument_id": "probe-score", "instrument_version": "1"}
            for mid, score in ((f"{cid}:p1", 2), (f"{cid}:p1:again", 1))]  # fmt: skip
    with transaction(archive) as db:
        insert_rows(db, "taggers", [judge])
        insert_rows(db, "tags", tags)
    with connect(archive) as db:
        rows = instrument_rows(db, probe, Filters(target="answer"))
    (mine,) = [r for r in rows if r["source"] == "tagger:judge@1"]
    # one reply, the redone one (total 4), not the first attempt's 8 beside it
    assert (mine["replies"], mine["conversations"], mine["mean_total"]) == (1, 1, 4.0)
