"""Condition files: the shipped ones load; a bad one is one line naming the file and field."""

from __future__ import annotations

from pathlib import Path

import pytest

from dialogues.domain import conditions, prompts
from dialogues.domain.errors import ConditionFileError


def test_shipped_conditions_load_and_cold_warm_match_the_builtins() -> None:
    names = {p.stem for p in conditions.available()}
    assert {"cold", "warm", "permission", "constraint"} <= names
    for name in names:
        assert conditions.load(name).name == name
    warmup = prompts.load("warmup-default")
    assert conditions.load("warm").definition() == conditions.warm(warmup).definition()
    assert conditions.load("cold").definition() == conditions.COLD.definition()
    constraint = conditions.load("constraint")
    assert constraint.frame("Q?") == "Q?\n\nAnswer without using abstract nouns."


def test_hash_follows_the_definition(tmp_path: Path) -> None:
    a = tmp_path / "a.yaml"
    a.write_text("id: x\nframing_before: Hello\n")
    first = conditions.load(a)
    a.write_text("id: x\ntitle: a new title only\nframing_before: Hello\n")
    assert conditions.load(a).version_hash == first.version_hash  # the title is not the treatment
    a.write_text("id: x\nframing_before: Hello!\n")
    assert conditions.load(a).version_hash != first.version_hash


def test_inline_prefix_and_params(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    path.write_text(
        "id: scripted\nsystem_prompt: Be brief.\nprefix:\n  - Hi there.\n  - id: t2\n"
        "    text: How are you?\nparams:\n  temperature: 0.2\n  reasoning_effort: none\n"
    )
    c = conditions.load(path)
    assert c.prefix is not None and [p.content for p in c.prefix.prompts] == [
        "Hi there.",
        "How are you?",
    ]
    assert dict(c.params) == {"temperature": 0.2, "reasoning_effort": "none"}
    assert c.system_prompt == "Be brief."


@pytest.mark.parametrize(
    ("text", "field"),
    [
        ("id: x\nframing: hi\n", "unknown key 'framing'"),
        ("id: x\nwarmup: no-such-warmup\n", "warmup: no prompt set called 'no-such-warmup'"),
        ("id: x\nparams:\n  top_k: 3\n", "params.top_k: not a parameter"),
        ("id: x\nparams:\n  temperature: hot\n", "params.temperature: must be a number"),
        ("id: x\nparams:\n  reasoning_effort: max\n", "params.reasoning_effort: must be one of"),
        ("title: no id\n", "missing required field 'id'"),
        ("id: x\nwarmup: warmup-default\nprefix: [hi]\n", "either 'warmup' or 'prefix'"),
        ("id: x\nprefix: []\n", "prefix: expected a non-empty list"),
    ],
)
def test_a_bad_condition_file_names_file_and_field(tmp_path: Path, text: str, field: str) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(ConditionFileError) as err:
        conditions.load(path)
    message = str(err.value)
    assert message.startswith(str(path)) and field in message and "\n" not in message
