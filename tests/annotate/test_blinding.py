"""Real blinding: required blind runs, masked names, and analysis that keeps blind labels only."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest
from blind_seed import LEAKS, PROBE, SELF_NAMES, seed

from dialogues.analyse.frames import Filters, labels
from dialogues.annotate import annotations as ann
from dialogues.domain import blinding
from dialogues.store import connect, transaction


def test_a_blind_item_holds_the_probe_conversation_only(archive: Path, tmp_path: Path) -> None:
    seed(archive, tmp_path)
    with connect(archive) as db:
        status = ann.queue_status(db, "alice")
        blind = ann.item(db, status.next_id or "")
        open_ = ann.item(db, status.next_id or "", blind=False)
    assert status.total == 1  # the warm-up reply is not in the blind queue
    assert [(t.role, t.content) for t in blind.context] == [("user", PROBE)]  # framing removed
    assert blind.model is blind.run_id is blind.condition is None
    for leak in (*LEAKS.values(), *SELF_NAMES):
        assert leak not in repr(blind), leak
    assert blind.content == "As [model], I'm [model], and I notice the question settle."
    # the open item has it all: the checks above could see each leak
    assert open_.context[0].content == LEAKS["system"] and LEAKS["warmup"] in repr(open_)
    assert open_.condition == LEAKS["condition"] and LEAKS["framing"] in repr(open_)


def test_blind_items_of_a_cold_and_a_warm_answer_differ_only_in_the_reply(
    archive: Path, tmp_path: Path
) -> None:
    seed(archive, tmp_path, cold=True)
    with connect(archive) as db:
        found = db.execute(
            "SELECT c.condition, m.id FROM messages m JOIN conversations c ON c.id = "
            "m.conversation_id WHERE m.role = 'assistant' AND m.phase = 'probe'"
        ).fetchall()
        items = {cond: ann.item(db, msg) for cond, msg in found}
    cold, warm = items.pop("cold"), items.pop(LEAKS["condition"])
    # the warm answer comes after a warm-up turn: nothing carried may count it
    assert cold.seq is warm.seq is None and cold.conversation_id is warm.conversation_id is None
    assert replace(cold, message_id="", content="") == replace(warm, message_id="", content="")


def test_a_run_that_requires_blind_is_never_shown_open(archive: Path, tmp_path: Path) -> None:
    run_id = seed(archive, tmp_path, required=True)
    with connect(archive) as db:
        assert ann.blind_required(db, run_id)
        assert ann.queue_status(db, "alice", blind=False).total == 0
        assert ann.blind_only_count(db) == 1  # the page says so beside the open queue
        msg = ann.queue_status(db, "alice").next_id or ""
        forced = ann.item(db, msg, blind=False)  # asked open, built blind
    assert forced.blind and forced.model is None and LEAKS["system"] not in repr(forced)


def test_blind_only_keeps_blind_annotations(archive: Path, tmp_path: Path) -> None:
    seed(archive, tmp_path)
    with connect(archive) as db:
        msg = ann.queue_status(db, "alice").next_id or ""
    with transaction(archive) as db:
        ann.save(db, ann.Annotation(msg, "alice", label="engagement", blind=True))
        ann.save(db, ann.Annotation(msg, "bob", label="deflection", blind=False))
    with connect(archive) as db:
        every = labels(db, Filters())
        blind = labels(db, Filters(blind_only=True))
    assert set(every.source) == {"human:alice", "human:bob"}
    assert set(blind.source) == {"human:alice"}


@pytest.mark.parametrize(
    ("text", "masked"),
    [
        ("As ChatGPT, I can't.", "As [model], I can't."),
        ("I'm Gemma, made by Google DeepMind.", "I'm [model], made by [model] [model]."),
        ("I am Qwen2.5 from Alibaba Cloud.", "I am [model] from [model] Cloud."),
        ("Llama 3.1 and GPT-4o-mini differ.", "[model] and [model] differ."),
        ("Claude, trained by Anthropic.", "[model], trained by [model]."),
        ("A graph of phrases, not a name.", "A graph of phrases, not a name."),
    ],
)
def test_self_identifications_are_masked(text: str, masked: str) -> None:
    assert blinding.mask(text) == masked


def test_the_archive_own_models_are_masked_too() -> None:
    extra = blinding.names_from_models([("ollama/zephyrine:7b", "zephyr")])
    assert (
        blinding.mask("I am Zephyrine, a zephyr model.", extra) == "I am [model], a [model] model."
    )


def test_a_short_model_id_is_not_masked_as_a_word() -> None:
    from dialogues.domain import blinding

    names = blinding.names_from_models([("a", None), ("b", "xy"), ("test/alpha-1b", "alpha")])
    assert "a" not in names and "b" not in names
    assert blinding.mask("a fire in a stove, by alpha", names) == "a fire in a stove, by [model]"
