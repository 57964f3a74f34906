"""A run that requires blind annotation: the open Annotate queue leaves it out and says so."""

from __future__ import annotations

from pathlib import Path

from blind_seed import LEAKS, seed
from streamlit.testing.v1 import AppTest

ANNOTATE = str(Path(__file__).resolve().parents[2] / "dialogues" / "ui" / "annotate_page.py")


def test_open_mode_cannot_show_a_blind_only_run(archive: Path, tmp_path: Path, monkeypatch) -> None:
    seed(archive, tmp_path, required=True)
    monkeypatch.setenv("DIALOGUES_ARCHIVE", str(archive))
    at = AppTest.from_file(ANNOTATE, default_timeout=30).run()
    at.sidebar.toggle(key="ann_blind").set_value(False).run()
    at.sidebar.text_input(key="ann_name").input("alice").run()
    assert not at.exception, at.exception
    captions = " ".join(c.value for c in at.sidebar.caption)
    assert "runs that require blind annotation (1) are only in the blind queue" in captions
    shown = " ".join(str(e.value) for e in [*at.markdown, *at.caption, *at.success])
    assert "Nothing left in this queue" in shown
    assert LEAKS["model"] not in shown and LEAKS["system"] not in shown
