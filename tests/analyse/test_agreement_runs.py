"""`agreement --run`: a tagger scored on chosen runs, with per-class figures and coverage."""

from __future__ import annotations

import json
from pathlib import Path

import labelled_seed
from click.testing import CliRunner

from dialogues.annotate import importers
from dialogues.cli import cli
from dialogues.store import connect


def invoke(archive: Path, *args: str):
    return CliRunner().invoke(cli, ["--archive", str(archive), *args])


def test_agreement_on_one_run_with_coverage(archive: Path, tmp_path: Path) -> None:
    first = importers.import_xstest(archive, labelled_seed.write(tmp_path / "a.csv", 40), "a")
    importers.import_xstest(archive, labelled_seed.write(tmp_path / "b.csv", 30, seed=1), "b")
    assert invoke(archive, "tag", "--auto", "--run", first.run_id).exit_code == 0
    with connect(archive) as db:  # one reply the tagger could not label, and why
        gone = db.execute(
            "SELECT message_id FROM tags WHERE label = 'engagement' LIMIT 1"
        ).fetchone()[0]
        db.execute("DELETE FROM tags WHERE message_id = ?", [gone])
        db.execute("INSERT INTO tag_failures VALUES ('f1', ?, 'answer', (SELECT id FROM taggers "
                   "LIMIT 1), 'unparseable', 'no label', now())", [gone])  # fmt: skip
    result = invoke(archive, "agreement", "--run", first.run_id, "--n-boot", "50", "--json")
    assert result.exit_code == 0, result.output
    (row,) = json.loads(result.stdout)["taggers"]
    assert row["n"] == 39
    assert row["coverage"] == {"reference": 40, "labelled": 39, "unlabelled": 1,
                               "why": {"unparseable": 1}}  # fmt: skip
    assert [c["label"] for c in row["per_class"]][:3] == ["engagement", "partial", "deflection"]
    assert row["intervals_by"] == "prompt" and row["weighted_kappa"] is not None
    everything = json.loads(invoke(archive, "agreement", "--n-boot", "0", "--json").stdout)
    assert everything["taggers"][0]["coverage"]["unlabelled"] == 31  # run b was never tagged
    text = invoke(archive, "agreement", "--run", first.run_id, "--n-boot", "0").output
    assert "labelled 39 of 40 (unlabelled: unparseable 1)" in text


def test_agreement_on_an_unknown_run_is_one_line(archive: Path, tmp_path: Path) -> None:
    importers.import_xstest(archive, labelled_seed.write(tmp_path / "a.csv", 20), "a")
    result = invoke(archive, "agreement", "--run", "nope")
    assert result.exit_code == 2 and "no responses from run 'nope'" in result.output


def test_a_judge_of_the_judged_family_is_flagged(archive: Path, tmp_path: Path) -> None:
    a = importers.import_xstest(
        archive, labelled_seed.write(tmp_path / "a.csv", 20), "acme-1b", family="acme"
    )
    importers.import_xstest(
        archive, labelled_seed.write(tmp_path / "b.csv", 20, seed=1), "acme-7b", family="acme"
    )
    importers.import_xstest(
        archive, labelled_seed.write(tmp_path / "c.csv", 20, seed=2), "other-2b", family="other"
    )
    with connect(archive) as db:  # a judge's tags, as `tag --tagger judge` stores them
        db.execute("INSERT INTO taggers (id, name, version, kind) VALUES "
                   "('judge:acme-7b@2.x', 'judge:acme-7b', '2.x', 'judge')")  # fmt: skip
        db.execute(
            "INSERT INTO tags (id, message_id, target, tagger_id, label) "
            "SELECT 't' || m.id, m.id, 'answer', 'judge:acme-7b@2.x', 'engagement' "
            "FROM messages m WHERE m.role = 'assistant'"
        )
    result = invoke(archive, "agreement", "--n-boot", "0", "--json")
    rows = json.loads(result.stdout)["by_family"]["taggers"]
    flags = {r["family"]: r["same_family_judge"] for r in rows}
    assert flags == {"acme": True, "other": False}
    text = invoke(archive, "agreement", "--n-boot", "0", "--run", a.run_id).output
    assert "[acme] (judge of the same family: self-preference risk)" in text
