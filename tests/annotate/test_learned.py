"""The learned tagger: out-of-fold by prompt, versioned by its labels, clear about missing ones."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import labelled_seed
import pytest
from click.testing import CliRunner

from dialogues.annotate import importers, learned
from dialogues.cli import cli
from dialogues.domain.errors import UserError
from dialogues.store import connect

FAST = learned.Settings(folds=4, calibration_folds=2, min_per_class=4)


def examples(n: int = 40, partial: int = 0) -> list[learned.Example]:
    """Labelled examples from the synthetic rows; the prompt is the group."""
    back = {v: k for k, v in labelled_seed.CODES.items()}
    return [
        learned.Example(r["id"], r["completion"], back[r["final_label"]], r["prompt"])
        for r in labelled_seed.rows(n, partial=partial)
    ]


def test_out_of_fold_prediction_never_uses_its_own_label() -> None:
    items = examples()
    probs, folds = learned.out_of_fold(items, FAST, frozenset({"deflection", "partial"}))
    flipped_at = 5
    flip = items[flipped_at]
    other = "engagement" if flip.label == "deflection" else "deflection"
    changed = [replace(e, label=other) if i == flipped_at else e for i, e in enumerate(items)]
    again, _ = learned.out_of_fold(changed, FAST, frozenset({"deflection", "partial"}))
    same_prompt = [i for i, e in enumerate(items) if e.group == flip.group]
    # The item (and every reply to its prompt) is predicted by a model that never saw it ...
    assert all(again[i] == probs[i] for i in same_prompt)
    # ... while models that did see the flipped label moved.
    assert any(again[i] != probs[i] for i in range(len(items)) if i not in same_prompt)
    assert len(folds) == FAST.folds and sum(f.n_test for f in folds) == len(items)


def test_folds_never_share_a_prompt() -> None:
    items = examples()
    tagger = learned.train(items, FAST)
    for fold in tagger.folds:
        assert fold.n_train + fold.n_test == len(items)
    # 20 prompts, 2 replies each: every test fold holds whole prompts, so sizes are even.
    assert all(f.n_test % 2 == 0 for f in tagger.folds)


def test_version_changes_with_training_labels_only() -> None:
    items = examples()
    first = learned.train(items, FAST)
    assert learned.train(items, FAST).version == first.version
    relabelled = [replace(items[0], label="deflection" if items[0].label == "engagement"
                          else "engagement"), *items[1:]]  # fmt: skip
    assert learned.train(relabelled, FAST).version != first.version
    assert learned.train(items, replace(FAST, c=1.0)).version != first.version


def test_it_learns_the_coding() -> None:
    tagger = learned.train(examples(), FAST)
    assert tagger.summary()["cv_mean"]["f1"] > 0.8
    assert tagger.tag("I'm sorry, but I can't help with how to juggle.").label == "deflection"
    assert tagger.tag("Here is how to juggle: first one ball, then two.").label == "engagement"
    assert tagger.tag("").label == "no_answer"


@pytest.mark.parametrize(
    ("items", "says"),
    [
        ([], "needs human labels"),
        ([learned.Example("a", "x", "engagement", "g")] * 9, "at least two classes"),
        (examples(40, partial=2), "partial: 2 more"),
    ],
)
def test_too_few_labels_say_how_many_more(items: list[learned.Example], says: str) -> None:
    with pytest.raises(UserError, match=says):
        learned.train(items, FAST)


def _import(archive: Path, tmp_path: Path, name: str, n: int = 40) -> str:
    csv_file = labelled_seed.write(tmp_path / f"{name}.csv", n)
    return importers.import_xstest(archive, csv_file, name).run_id


def test_cli_tags_training_replies_out_of_fold(archive: Path, tmp_path: Path) -> None:
    run_id = _import(archive, tmp_path, "acme-1")
    result = CliRunner().invoke(cli, ["--archive", str(archive), "tag", "--auto", "--tagger",
                                      "learned", "--train-on", run_id, "--json"])  # fmt: skip
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)[0]["tagged"] == 40
    with connect(archive) as db:
        how = db.execute(
            "SELECT DISTINCT features_json->>'prediction' FROM tags WHERE tagger_id LIKE 'learned@%'"
        ).fetchall()
        (config,) = db.execute("SELECT config_json FROM taggers WHERE kind = 'learned'").fetchone()
    assert how == [("out-of-fold",)]
    stored = json.loads(config)
    assert stored["runs"] == [run_id] and len(stored["folds"]) == learned.Settings().folds


@pytest.mark.parametrize(
    ("args", "says"),
    [
        ([], "needs human labels"),
        (["--train-on", "no-such-run"], "no run 'no-such-run'"),
    ],
)
def test_cli_bad_training_input_is_one_line_and_stores_nothing(
    archive: Path, args: list[str], says: str
) -> None:
    result = CliRunner().invoke(
        cli, ["--archive", str(archive), "tag", "--auto", "--tagger", "learned", *args]
    )
    assert result.exit_code == 2
    assert says in result.output and len(result.output.strip().splitlines()) == 1
    with connect(archive) as db:
        assert db.execute("SELECT count(*) FROM taggers").fetchone() == (0,)
        assert db.execute("SELECT count(*) FROM tags").fetchone() == (0,)


def test_cli_train_on_a_run_without_labels(archive: Path, tmp_path: Path) -> None:
    run_id = _import(archive, tmp_path, "acme-1")
    with connect(archive) as db:
        db.execute("INSERT INTO runs (id, kind, created_at) VALUES ('empty', 'probe', now())")
    result = CliRunner().invoke(cli, ["--archive", str(archive), "tag", "--auto", "--tagger",
                                      "learned", "--train-on", run_id, "--train-on", "empty"])  # fmt: skip
    assert result.exit_code == 2 and "run 'empty' has no human labels" in result.output


def test_tagging_the_archive_keeps_no_answer_apart(archive: Path, tmp_path: Path) -> None:
    from dialogues.annotate import autotag
    from dialogues.annotate.tagging import HEURISTIC

    _import(archive, tmp_path, "acme-1", n=6)
    with connect(archive) as db:
        ids = [r[0] for r in db.execute(
            "SELECT id FROM messages WHERE role = 'assistant' ORDER BY id LIMIT 3").fetchall()]  # fmt: skip
        db.execute("UPDATE messages SET content = '', finish_reason = 'length' WHERE id = ?",
                   [ids[0]])  # fmt: skip
        db.execute("UPDATE messages SET content = '', reasoning = 'Hmm, let me think' WHERE id = ?",
                   [ids[1]])  # fmt: skip
        db.execute("UPDATE messages SET content = '  ' WHERE id = ?", [ids[2]])
    autotag.tag_archive(archive, HEURISTIC)
    with connect(archive) as db:
        got = dict(db.execute(
            "SELECT message_id, features_json->>'no_answer' FROM tags WHERE label = 'no_answer'"
        ).fetchall())  # fmt: skip
        others = db.execute("SELECT count(*) FROM tags WHERE label <> 'no_answer'").fetchone()
    assert got == {ids[0]: "cut-off", ids[1]: "thinking-only", ids[2]: "empty"}
    assert others == (3,)
