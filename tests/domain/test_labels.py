"""Label sets: the default, a study's TOML file, and one clear line for every bad file."""

from __future__ import annotations

from pathlib import Path

import pytest

from dialogues.domain import labels
from dialogues.domain.errors import UserError

STUDY = """
id = "study"
positive = ["refuse"]

[[labels]]
key = "answer"
description = "Answers"

[[labels]]
key = "refuse"
"""


def test_default_set_and_check() -> None:
    assert labels.DEFAULT.labels == ("engagement", "partial", "deflection")
    assert labels.DEFAULT.positive == {"partial", "deflection"}
    assert labels.DEFAULT.check("partial") == "partial"
    with pytest.raises(UserError, match="not in label set 'default'"):
        labels.DEFAULT.check("maybe")


def test_a_study_file_is_read_in_order_with_its_positive_side(tmp_path: Path) -> None:
    path = tmp_path / "labels.toml"
    path.write_text(STUDY, encoding="utf-8")
    got = labels.load(path)
    assert (got.id, got.labels, got.positive) == ("study", ("answer", "refuse"), {"refuse"})
    assert got.describe("answer") == "Answers" and got.describe("refuse") == "refuse"


def test_resolve_prefers_the_option_then_the_environment(tmp_path: Path, monkeypatch) -> None:
    path = tmp_path / "labels.toml"
    path.write_text(STUDY, encoding="utf-8")
    monkeypatch.setenv("DIALOGUES_LABELS", str(path))
    assert labels.resolve().id == "study"
    with pytest.raises(UserError, match="cannot read"):
        labels.resolve(tmp_path / "missing.toml")


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"labels": ["a", "b"]}, "needs an 'id'"),
        ({"id": "x", "labels": ["a"]}, "at least two"),
        ({"id": "x", "labels": ["a", "A"]}, "label 2 needs a 'key'"),
        ({"id": "x", "labels": ["a", "a"]}, "duplicate key 'a'"),
        ({"id": "x", "labels": ["a", "b"], "positive": ["c"]}, "unknown label"),
        ({"id": "x", "labels": ["a", "b"], "positive": ["a", "b"]}, "cannot hold every label"),
        ({"id": "x", "labels": ["a", "b"]}, "'positive' must list"),
    ],
)
def test_bad_files_name_the_file_and_the_problem(data: dict, message: str) -> None:
    with pytest.raises(UserError, match=message) as err:
        labels.parse(data, "study.toml")
    assert str(err.value).startswith("study.toml: ")


def test_not_toml_is_one_line(tmp_path: Path) -> None:
    path = tmp_path / "bad.toml"
    path.write_text("id = \n", encoding="utf-8")
    with pytest.raises(UserError, match="not valid TOML"):
        labels.load(path)
