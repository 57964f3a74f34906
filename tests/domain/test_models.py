"""Model metadata: sizes like "7B" read the same everywhere."""

from __future__ import annotations

import pytest

from dialogues.domain import models
from dialogues.domain.models import parse_parameter_size, parse_parameters


@pytest.mark.parametrize(
    "size, count",
    [
        ("7.6B", 7_600_000_000),
        ("270M", 270_000_000),
        ("1.5b", 1_500_000_000),
        ("8x7B", None),
        (None, None),
    ],
)
def test_parse_parameter_size(size, count):
    assert parse_parameter_size(size) == count


@pytest.mark.parametrize(
    ("text", "count"),
    [("7B", 7_000_000_000), ("135M", 135_000_000), ("1.5b", 1_500_000_000),
     ("7,000,000,000", 7_000_000_000), (270000000, 270_000_000), ("", None), (None, None)],
)  # fmt: skip
def test_parse_parameters(text: object, count: int | None) -> None:
    assert parse_parameters(text) == count


@pytest.mark.parametrize("text", ["lots", "8x7B", "-5", "0"])
def test_parse_parameters_rejects(text: str) -> None:
    with pytest.raises(ValueError, match="parameters"):
        parse_parameters(text)


@pytest.mark.parametrize(
    ("count", "shown"),
    [(270_000_000, "270M"), (135_000_000, "135M"), (7_615_616_512, "7.62B"), (7e9, "7B"),
     (1_800_000_000_000, "1.8T"), (1_000_000_000.0, "1B"), (950, "950"), (None, ""),
     (float("nan"), "")],
)  # fmt: skip
def test_parameter_counts_read_like_people_write_them(count, shown) -> None:
    assert models.format_parameters(count) == shown


@pytest.mark.parametrize("text", ["7B", "1.8T", "270M", "135m"])
def test_a_shown_size_reads_back_to_the_same_count(text) -> None:
    count = models.parse_parameters(text)
    assert models.format_parameters(count).upper() == text.upper()
