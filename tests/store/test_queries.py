"""Transcripts query: a typed search is a literal, case-insensitive substring; paging keeps the total."""

from __future__ import annotations

from pathlib import Path

from dialogues.store import connect, queries
from dialogues.store.records import insert_rows

TEXTS = ["50% off_now", "(a+b)*c [x]", "Plain Text", "a.b", "axb"]


def _seed(archive: Path) -> None:
    with connect(archive) as db:
        insert_rows(db, "conversations", [{"id": "c1", "run_id": "r1", "kind": "probe",
                                           "model_id": "m", "conv_key": "k"}])  # fmt: skip
        insert_rows(db, "messages", [
            {"id": f"m{i}", "conversation_id": "c1", "seq": i + 1, "role": "assistant",
             "content": text, "reasoning": None}
            for i, text in enumerate(TEXTS)
        ])  # fmt: skip


def _search(archive: Path, text: str, page: int = 1) -> tuple[list[str], int]:
    with connect(archive) as db:
        rows, total = queries.transcript_page(db, queries.TranscriptFilter(text=text), page, 2)
    return [r["preview"] for r in rows], total


def test_search_is_literal_and_case_insensitive(archive: Path) -> None:
    _seed(archive)
    assert _search(archive, "0% OFF_") == (["50% off_now"], 1)
    assert _search(archive, "(a+b)*c [") == (["(a+b)*c [x]"], 1)
    assert _search(archive, "a.b") == (["a.b"], 1)  # the dot is not a wildcard
    assert _search(archive, "plain t") == (["Plain Text"], 1)


def test_pages_keep_the_total_even_past_the_end(archive: Path) -> None:
    _seed(archive)
    first, total = _search(archive, "")
    second, _ = _search(archive, "", page=2)
    assert total == 5 and len(first) == 2 and not set(first) & set(second)
    assert _search(archive, "", page=9) == ([], 5)
