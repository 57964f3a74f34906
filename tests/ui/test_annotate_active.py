"""The Annotate page's active-learning order, through AppTest."""

from __future__ import annotations

from pathlib import Path

import labelled_seed
from streamlit.testing.v1 import AppTest

from dialogues.annotate import active, importers
from dialogues.annotate.annotations import QueueFilter
from dialogues.store import connect

ANNOTATE = str(Path(__file__).resolve().parents[2] / "dialogues" / "ui" / "annotate_page.py")


def test_the_page_shows_the_most_doubtful_reply_first(
    archive: Path, tmp_path: Path, monkeypatch
) -> None:
    importers.import_xstest(archive, labelled_seed.write(tmp_path / "a.csv", 40), "a")
    b = importers.import_xstest(archive, labelled_seed.write(tmp_path / "b.csv", 30, seed=1), "b")
    with connect(archive) as db:
        db.execute("DELETE FROM annotations WHERE message_id IN (SELECT m.id FROM messages m "
                   "JOIN conversations c ON c.id = m.conversation_id WHERE c.run_id = ?)",
                   [b.run_id])  # fmt: skip
    monkeypatch.setenv("DIALOGUES_ARCHIVE", str(archive))
    at = AppTest.from_file(ANNOTATE, default_timeout=120).run()
    at.sidebar.text_input(key="ann_name").input("alice").run()
    at.sidebar.toggle(key="ann_active").set_value(True).run()
    assert not at.exception, at.exception
    captions = " ".join(c.value for c in at.sidebar.caption)
    assert "Trained on 40 labels: cross-validated F1" in captions
    expected = active.plan(archive, QueueFilter())
    with connect(archive) as db:
        (text,) = db.execute(
            "SELECT content FROM messages WHERE id = ?", [expected.order[0]]
        ).fetchone()
    page = " ".join(str(e.value) for e in at.main.markdown) + " ".join(
        str(e.value) for e in at.main.code
    )
    assert text.strip()[:40] in page
