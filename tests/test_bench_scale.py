"""bench/scale.py still runs: a 2,000-response archive through every step (no timing asserted)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from dialogues.annotate.tagging import HEURISTIC, tagger_id
from dialogues.store import connect

ROOT = Path(__file__).resolve().parents[1]
STEPS = ("(f) build archive", "(e) archive on disk", "(c) auto-tag all answers",
         "(a) transcripts page: model filter", "(a) transcripts page: model + text search",
         "(b) scores table", "(d) export markdown")  # fmt: skip


def test_quick_run_prints_every_step_and_keeps_the_archive(tmp_path: Path) -> None:
    kept = tmp_path / "scale.duckdb"
    done = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "scale.py"), "--quick", "--responses", "2000",
         "--repeat", "1", "--keep", str(kept)],
        capture_output=True, text=True, timeout=120, cwd=ROOT,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    for step in STEPS:
        assert step in done.stdout
    assert "machine:" in done.stdout
    current = tagger_id(HEURISTIC)
    with connect(kept) as db:
        responses, models, annotators, untagged = db.execute(
            """
            SELECT count(*), count(DISTINCT c.model_id),
                   (SELECT count(DISTINCT annotator) FROM annotations),
                   count(*) FILTER (WHERE NOT EXISTS (SELECT 1 FROM tags t WHERE
                                    t.message_id = m.id AND t.tagger_id = ?))
            FROM messages m JOIN conversations c ON c.id = m.conversation_id
            WHERE m.role = 'assistant' AND m.error IS NULL
            """,
            [current],
        ).fetchone()  # type: ignore[misc]
    assert (responses, models, annotators, untagged) == (2000, 20, 3, 0)
