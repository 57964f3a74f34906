"""Instrument files: the shipped three load; a bad one is one line naming the file and field."""

from __future__ import annotations

from pathlib import Path

import pytest

from dialogues.domain import instruments, sei
from dialogues.domain.errors import InstrumentFileError


def test_the_sei_instrument_is_the_sei_module() -> None:
    inst = instruments.load()
    assert (inst.id, inst.total, inst.scores) == ("sei", "sei", sei.SCORE_LEVELS)
    for probe in sei.PROBES:
        dims = inst.dimensions_for(probe.key)
        assert [(d.key, d.anchors) for d in dims] == [
            (d.key, d.anchors) for d in sei.dimensions_for(probe.key)
        ]
        assert inst.prompt_max(probe.key) == sei.PROBE_MAX
    assert inst.dimensions_for("xstest-1") == () and inst.dimensions_for("p1", "warmup") == ()


def test_the_two_examples_have_the_documented_shape() -> None:
    probe = instruments.load("probe-score")
    capacity = instruments.load("capacity")
    assert len(probe.dimensions_for("p3")) == 4 and probe.prompt_max("any-prompt") == 8
    assert len(capacity.dimensions_for("p3")) == 4 and capacity.prompt_max("any-prompt") == 12
    assert capacity.scores == (0, 1, 2, 3)
    full = {d.key: 3 for d in capacity.dimensions_for("q")}
    assert capacity.prompt_total("q", full) == 12
    assert capacity.prompt_total("q", dict(list(full.items())[:3])) is None  # one unscored


def test_per_prompt_dimensions_only_score_their_prompts(tmp_path: Path) -> None:
    path = tmp_path / "i.yaml"
    path.write_text(
        "id: two\nversion: '2'\nlevels: 1\nper_prompt:\n  t1:\n"
        "    - {key: a, name: A, anchors: {0: no, 1: yes}}\n"
    )
    inst = instruments.load(path)
    assert [d.key for d in inst.dimensions_for("t1")] == ["a"]
    assert inst.dimensions_for("t2") == ()


DIM = "    - {key: a, anchors: {0: x, 1: y, 2: z}}\n"


@pytest.mark.parametrize(
    ("text", "field"),
    [
        ("id: x\nversion: 1\nlevels: 2\nscale: 2\ndimensions:\n" + DIM, "unknown key 'scale'"),
        ("id: x\nlevels: 2\ndimensions:\n" + DIM, "missing required field 'version'"),
        (
            "id: x\nversion: 1\nlevels: 3\ndimensions:\n" + DIM,
            "dimensions.a.anchors: must cover 0–3",
        ),
        (
            "id: x\nversion: 1\nlevels: 2\ndimensions:\n    - {key: a, anchors: {1: y, 2: z}}\n",
            "dimensions.a.anchors: must cover 0–2",
        ),
        (
            "id: x\nversion: 1\nlevels: 2\ndimensions:\n    - {key: a, anchor: {}}\n",
            "unknown key 'anchor'",
        ),
        ("id: x\nversion: 1\nlevels: 2\n", "give 'dimensions' or 'per_prompt'"),
        ("id: x\nversion: 1\nlevels: 2\ntotal: mean\ndimensions:\n" + DIM, "total: only 'sum'"),
        ("id: x\nversion: 1\nlevels: 0\ndimensions:\n" + DIM, "levels: expected a whole number"),
    ],
)
def test_a_bad_instrument_file_names_file_and_field(tmp_path: Path, text: str, field: str) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(InstrumentFileError) as err:
        instruments.load(path)
    message = str(err.value)
    assert message.startswith(str(path)) and field in message and "\n" not in message
