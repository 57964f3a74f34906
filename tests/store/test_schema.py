"""The exact columns of every table after all migrations: a new column is a deliberate change."""

from __future__ import annotations

from pathlib import Path

import pytest

from dialogues.store import connect, migrations
from dialogues.store import db as store_db

SCHEMA = {
    "models": [
        "id", "backend", "provider", "family", "parameters", "parameter_size", "quantization",
        "training", "digest", "context_length", "api_base", "notes", "metadata_json",
        "updated_at", "edited_json",
    ],
    "prompt_sets": [
        "id", "version_hash", "title", "source", "credit", "licence", "mode", "kind", "path",
        "loaded_at",
    ],
    "prompts": ["set_hash", "position", "key", "title", "content", "content_hash", "meta_json"],
    "runs": [
        "id", "name", "kind", "created_at", "created_by", "set_id", "set_hash", "warmup_set_id",
        "warmup_set_hash", "condition", "repeats", "temperature", "seed", "max_tokens",
        "concurrency", "total_cells", "params_json",
    ],
    "conversations": [
        "id", "run_id", "kind", "model_id", "model_b_id", "condition", "repeat", "conv_key",
        "set_id", "set_hash", "system_prompt", "params_json", "created_at", "status",
        "stop_reason",
    ],
    "messages": [
        "id", "conversation_id", "seq", "attempt", "role", "speaker", "phase", "cell_key",
        "prompt_key", "prompt_hash", "content", "reasoning", "reasoning_source", "tokens_in",
        "tokens_out", "reasoning_tokens", "latency_ms", "finish_reason", "error", "error_kind",
        "model_version", "request_json", "raw_json", "created_at", "side", "model_id",
    ],
    "annotations": [
        "id", "message_id", "target", "annotator", "label", "label_set", "rubric_json",
        "markers_json", "evidence_json", "note", "content_hash", "blind", "origin", "supersedes",
        "created_at", "instrument_id", "instrument_version",
    ],
    "taggers": ["id", "name", "version", "kind", "config_json", "created_at"],
    "tags": [
        "id", "message_id", "target", "tagger_id", "label", "confidence", "rubric_json",
        "features_json", "content_hash", "created_at", "instrument_id", "instrument_version",
    ],
    "tag_failures": [
        "id", "message_id", "target", "tagger_id", "reason", "detail", "created_at",
    ],
    "overlap_designs": ["id", "size", "set_ids_json", "seed", "created_at"],
    "_migrations": ["name", "applied_at"],
}  # fmt: skip


@pytest.fixture(autouse=True)
def forget_migrated():
    """Each test sees migrations run as a fresh process would."""
    store_db._migrated.clear()
    yield
    store_db._migrated.clear()


def test_a_blank_archive_has_exactly_these_tables_and_columns(archive: Path) -> None:
    with connect(archive) as db:
        tables = [r[0] for r in db.execute("SHOW TABLES").fetchall()]
        got = {t: [r[1] for r in db.execute(f"PRAGMA table_info('{t}')").fetchall()]
               for t in tables}  # fmt: skip
    assert got == SCHEMA


def test_m005_gives_each_stored_reply_the_model_of_its_side(archive: Path, monkeypatch) -> None:
    monkeypatch.setattr(migrations, "MIGRATIONS", migrations.MIGRATIONS[:4])
    with connect(archive) as db:
        db.execute(
            "INSERT INTO conversations (id, run_id, kind, model_id, model_b_id, conv_key) VALUES "
            "('d', 'r', 'dialogue', 'model-a', 'model-b', 'dialogue'), "
            "('p', 'r', 'probe', 'model-c', NULL, 'p1')"
        )
        db.execute(
            "INSERT INTO messages (id, conversation_id, seq, role, speaker, side) VALUES "
            "('u', 'd', 1, 'user', 'researcher', 'a'), ('a1', 'd', 2, 'assistant', 'model-a', 'a'),"
            " ('b1', 'd', 3, 'assistant', 'model-b', 'b'), ('q', 'p', 1, 'user', 'prompt', NULL),"
            " ('c1', 'p', 2, 'assistant', 'model-c', NULL)"
        )
    monkeypatch.undo()
    store_db._migrated.clear()
    with connect(archive) as db:
        got = dict(db.execute("SELECT id, model_id FROM messages").fetchall())
    assert got == {"u": None, "a1": "model-a", "b1": "model-b", "q": None, "c1": "model-c"}
