"""Annotations on a chosen instrument: its dimensions and levels are checked, its id and version kept."""

from __future__ import annotations

from pathlib import Path

import pytest
from blind_seed import seed

from dialogues.annotate import annotations as ann
from dialogues.domain import instruments
from dialogues.domain.errors import UserError
from dialogues.export import export_jsonl
from dialogues.store import connect, transaction


@pytest.fixture
def reply(archive: Path, tmp_path: Path) -> str:
    seed(archive, tmp_path)
    with connect(archive) as db:
        return ann.queue_status(db, "alice").next_id or ""


def test_an_annotation_records_its_instrument_and_version(
    archive: Path, reply: str, tmp_path: Path
) -> None:
    capacity = instruments.load("capacity")
    rubric = {d.key: 3 for d in capacity.dimensions_for("p1")}
    with transaction(archive) as db:
        ann.save(db, ann.Annotation(reply, "alice", rubric=rubric, instrument="capacity"))
        ann.save(db, ann.Annotation(reply, "bob", label="engagement"))
    with connect(archive) as db:
        rows = {r["annotator"]: r for r in ann.current(db, message_ids=[reply])}
        item = ann.item(db, reply, instrument=capacity)
    assert (rows["alice"]["instrument_id"], rows["alice"]["instrument_version"]) == (
        "capacity",
        "1",
    )
    assert rows["alice"]["rubric"] == rubric
    assert rows["bob"]["instrument_id"] is None  # a label alone follows no instrument
    assert item.scores == (0, 1, 2, 3) and [d.key for d in item.dimensions] == list(rubric)
    with connect(archive) as db:  # the export carries the instrument with the scores
        export_jsonl(db, tmp_path / "out.jsonl")
    text = (tmp_path / "out.jsonl").read_text()
    assert '"instrument_id":"capacity","instrument_version":"1"' in text


@pytest.mark.parametrize(
    ("instrument", "rubric", "message"),
    [
        ("probe-score", {"engagement": 3}, "must be 0, 1 or 2, not 3"),
        ("probe-score", {"p1_deflection": 2}, "does not belong to probe p1"),
        ("sei", {"engagement": 2}, "does not belong to probe p1"),
    ],
)
def test_scores_outside_the_instrument_are_refused(
    archive: Path, reply: str, instrument: str, rubric: dict[str, int], message: str
) -> None:
    with transaction(archive) as db, pytest.raises(UserError, match=message):
        ann.save(db, ann.Annotation(reply, "alice", rubric=rubric, instrument=instrument))
    with connect(archive) as db:
        assert ann.current(db, message_ids=[reply]) == []
