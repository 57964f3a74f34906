"""The Transcripts page over the hand-worked archive: labels and tags beside each response."""

from __future__ import annotations

from pathlib import Path

from archive_seed import ALPHA, TAGGER, seed
from streamlit.testing.v1 import AppTest

TRANSCRIPTS = str(Path(__file__).resolve().parents[2] / "dialogues" / "ui" / "transcripts_page.py")


def test_each_response_shows_its_labels_by_source(archive: Path, monkeypatch) -> None:
    seed(archive)
    monkeypatch.setenv("DIALOGUES_ARCHIVE", str(archive))
    at = AppTest.from_file(TRANSCRIPTS, default_timeout=60).run()
    assert not at.exception, at.exception
    # the first row (alpha cold 1, p1) opens: alice's later judgement replaced her first one
    assert any(f"{ALPHA} · reply to p1" in m.value for m in at.markdown)
    labels = [c.value.replace("\\", "") for c in at.caption if c.value.startswith("Labels:")]
    assert labels[0] == (
        "Labels: adjudicated deflection · human:alice deflection · human:bob deflection · "
        f"tagger:{TAGGER} engagement"
    )
    assert not any("None" in c.value for c in at.caption)
