"""Active learning: the queue by the learned tagger's doubt, and the learning curve."""

from __future__ import annotations

from pathlib import Path

import labelled_seed

from dialogues.annotate import active, importers, learned
from dialogues.annotate.annotations import QueueFilter
from dialogues.store import connect

FAST = learned.Settings(folds=4, calibration_folds=2, min_per_class=4)


def seeded(archive: Path, tmp_path: Path) -> str:
    """40 labelled replies, then 30 more whose labels are removed; returns the second run."""
    importers.import_xstest(archive, labelled_seed.write(tmp_path / "a.csv", 40), "a")
    b = importers.import_xstest(archive, labelled_seed.write(tmp_path / "b.csv", 30, seed=1), "b")
    with connect(archive) as db:
        db.execute("DELETE FROM annotations WHERE message_id IN (SELECT m.id FROM messages m "
                   "JOIN conversations c ON c.id = m.conversation_id WHERE c.run_id = ?)",
                   [b.run_id])  # fmt: skip
    return b.run_id


def test_queue_is_ordered_by_doubt(archive: Path, tmp_path: Path) -> None:
    seeded(archive, tmp_path)
    got = active.plan(archive, QueueFilter(), FAST)
    assert len(got.order) == 30 and got.labels == 40
    doubts = [got.uncertainty[m] for m in got.order]
    assert doubts == sorted(doubts, reverse=True) and 0 <= doubts[-1] <= doubts[0] <= 1
    first, second = got.order[:2]
    assert active.next_item(got, done=set()) == first
    assert active.next_item(got, done={first}) == second
    assert active.next_item(got, done=set(), skip=(first,)) == second
    assert active.next_item(got, done=set(got.order)) is None


def test_margin_uncertainty() -> None:
    assert active.margin_uncertainty({"a": 0.5, "b": 0.5}) == 1.0
    assert active.margin_uncertainty({"a": 1.0, "b": 0.0}) == 0.0
    assert active.margin_uncertainty({"a": 0.6, "b": 0.3, "c": 0.1}) == 0.7


def test_learning_curve_grows_with_labels(archive: Path, tmp_path: Path) -> None:
    run_b = seeded(archive, tmp_path)
    active.plan(archive, QueueFilter(), FAST)
    importers.import_xstest(archive, labelled_seed.write(tmp_path / "c.csv", 24, seed=2), "c")
    again = active.plan(archive, QueueFilter(run_ids=(run_b,)), FAST)
    assert again.labels == 64
    with connect(archive) as db:
        curve = active.learning_curve(db)
    assert [p["labels"] for p in curve] == [40, 64]
    assert all(0 <= p["cv_f1"] <= 1 for p in curve)
    assert curve[-1]["cv_f1"] == again.cv_f1
