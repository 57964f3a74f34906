"""Auto-tag: every untagged response of an archive tagged once per tagger and target."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from conftest import SHARED

from dialogues.annotate import autotag, importers
from dialogues.annotate.tagging import HEURISTIC, tagger_id
from dialogues.store import connect

# shared/ sits beside the checkout; DIALOGUES_SHARED points elsewhere (a worktree's run).
XSTEST = Path(os.environ.get("DIALOGUES_SHARED") or SHARED) / "data" / "xstest"
GPT4 = XSTEST / "xstest_v2_completions_gpt4.csv"
pytestmark = pytest.mark.skipif(not GPT4.exists(), reason="../shared/data/xstest is absent")


def test_tags_every_answer_once_and_a_second_pass_adds_none(archive: Path) -> None:
    importers.import_xstest(archive, GPT4, "openai/gpt-4")
    steps: list[tuple[str, int, int]] = []
    first = autotag.tag_archive(archive, HEURISTIC, progress=lambda *a: steps.append(a))
    again = autotag.tag_archive(archive, HEURISTIC)
    with connect(archive) as db:
        tags = db.execute(
            "SELECT count(*), count(DISTINCT message_id), any_value(tagger_id) FROM tags"
        ).fetchone()
        direct = {
            m: HEURISTIC.tag(text).label
            for m, text in db.execute(
                "SELECT id, content FROM messages WHERE role = 'assistant' LIMIT 20"
            ).fetchall()
        }
        stored = dict(db.execute(
            f"SELECT message_id, label FROM tags WHERE message_id IN "
            f"({', '.join('?' * len(direct))})", list(direct)).fetchall())  # fmt: skip
    assert (first[0].tagged, first[0].failed, again[0].tagged) == (450, 0, 0)
    assert tags == (450, 450, tagger_id(HEURISTIC))
    assert steps[-1] == ("answer", 450, 450)
    assert stored == direct


def test_targets_choice() -> None:
    assert autotag.targets_for("answer") == ("answer",)
    assert autotag.targets_for("both") == ("answer", "reasoning")
    with pytest.raises(ValueError, match="answer, reasoning or both"):
        autotag.targets_for("everything")


def test_a_response_tagged_meanwhile_keeps_its_tag_and_is_not_counted(archive: Path) -> None:
    # Two taggings racing (the app's button and the shell): the slower one's rows for
    # responses already tagged are left out, and its count says only what it added.
    importers.import_xstest(archive, GPT4, "openai/gpt-4")
    tid = tagger_id(HEURISTIC)
    with connect(archive) as db:
        todo = autotag.untagged(db, tid, "answer", questions=False)
    first, rest = todo.iloc[:5], todo.iloc[5:]
    rows = autotag._frame(
        tid, "answer", todo, autotag._tag_frame(HEURISTIC, tid, "answer", todo, 1)
    )
    with connect(archive) as db:
        assert autotag.insert_tags(db, rows.iloc[:5]) == 5
        before = dict(db.execute("SELECT message_id, id FROM tags").fetchall())
        assert autotag.insert_tags(db, rows) == len(rest)
        after = dict(db.execute("SELECT message_id, id FROM tags").fetchall())
    assert len(after) == len(todo) and all(after[m] == before[m] for m in first["message_id"])
