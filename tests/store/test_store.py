"""The archive file: schema, migrations, and the clear failures of a file we must not touch."""

from __future__ import annotations

import os
import time
from pathlib import Path

import duckdb
import pytest
from conftest import lock_held

from dialogues.domain.errors import ArchiveError
from dialogues.store import connect, migrations
from dialogues.store import db as store_db


@pytest.fixture(autouse=True)
def forget_migrated():
    """Each test sees migrations run as a fresh process would."""
    store_db._migrated.clear()
    yield
    store_db._migrated.clear()


def columns(path: Path, table: str) -> list[str]:
    with connect(path) as db:
        return [r[1] for r in db.execute(f"PRAGMA table_info('{table}')").fetchall()]


def test_blank_archive_gets_every_migration(archive: Path) -> None:
    with connect(archive) as db:
        done = [r[0] for r in db.execute("SELECT name FROM _migrations ORDER BY name").fetchall()]
    assert done == sorted(m.__name__ for m in migrations.MIGRATIONS)
    assert columns(archive, "messages")[:6] == [
        "id",
        "conversation_id",
        "seq",
        "attempt",
        "role",
        "speaker",
    ]
    for needed in ("content", "reasoning", "reasoning_source", "tokens_in", "tokens_out",
                   "latency_ms", "finish_reason", "error", "request_json", "raw_json"):  # fmt: skip
        assert needed in columns(archive, "messages")
    for needed in ("family", "parameters", "quantization", "training", "digest", "notes"):
        assert needed in columns(archive, "models")
    assert "content_hash" in columns(archive, "prompts")
    for table in ("annotations", "tags"):  # m006: the instrument a rubric follows
        assert columns(archive, table)[-2:] == ["instrument_id", "instrument_version"]
    assert columns(archive, "tag_failures") == [
        "id", "message_id", "target", "tagger_id", "reason", "detail", "created_at"
    ]  # fmt: skip


def test_version_1_archive_upgrades_in_place(archive: Path, monkeypatch) -> None:
    monkeypatch.setattr(migrations, "MIGRATIONS", migrations.MIGRATIONS[:1])
    with connect(archive) as db:
        db.execute("INSERT INTO runs (id, kind) VALUES ('old-run', 'batch')")
    monkeypatch.undo()
    store_db._migrated.clear()
    with connect(archive) as db:
        names = {r[0] for r in db.execute("SELECT name FROM _migrations").fetchall()}
        kept = db.execute("SELECT id FROM runs").fetchall()
    assert names == {m.__name__ for m in migrations.MIGRATIONS}
    assert kept == [("old-run",)]
    backups = list(archive.parent.glob("*.bak"))
    assert bool(backups) == (len(migrations.MIGRATIONS) > 1)


def test_failed_migration_leaves_no_record(archive: Path, monkeypatch) -> None:
    def m999_broken(db: duckdb.DuckDBPyConnection) -> None:
        db.execute("CREATE TABLE half_done (x INTEGER)")
        raise RuntimeError("boom")

    monkeypatch.setattr(migrations, "MIGRATIONS", [*migrations.MIGRATIONS, m999_broken])
    with pytest.raises(RuntimeError), connect(archive):
        pass
    monkeypatch.undo()
    store_db._migrated.clear()
    with connect(archive) as db:
        tables = {r[0] for r in db.execute("SHOW TABLES").fetchall()}
        names = {r[0] for r in db.execute("SELECT name FROM _migrations").fetchall()}
    assert "half_done" not in tables and "m999_broken" not in names


def test_not_a_duckdb_file_is_refused_untouched(tmp_path: Path) -> None:
    path = tmp_path / "notes.duckdb"
    path.write_bytes(b"these are my notes, not a database\n" * 10)
    before = path.read_bytes()
    with pytest.raises(ArchiveError, match="not a DuckDB database") as err, connect(path):
        pass
    assert str(path) in str(err.value)
    assert path.read_bytes() == before


def test_newer_schema_is_refused(archive: Path) -> None:
    with connect(archive) as db:
        db.execute("INSERT INTO _migrations VALUES ('m999_from_the_future', now())")
    store_db._migrated.clear()
    with pytest.raises(ArchiveError, match="newer dialogues"), connect(archive):
        pass


def test_lock_held_by_another_process_gives_one_line(archive: Path) -> None:
    with connect(archive):
        pass
    with lock_held(archive):
        started = time.monotonic()
        with pytest.raises(ArchiveError) as err, connect(archive, timeout=0.5):
            pass
        assert time.monotonic() - started < 5
    message = str(err.value)
    assert str(archive) in message and "in use by another process" in message
    assert "\n" not in message


def test_lock_released_in_time_is_waited_for(archive: Path) -> None:
    with connect(archive):
        pass
    with lock_held(archive, seconds=0.7), connect(archive, timeout=10) as db:
        assert db.execute("SELECT count(*) FROM runs").fetchone() == (0,)


def test_read_only_archive_is_read_but_never_written(archive: Path) -> None:
    with connect(archive) as db:
        db.execute("INSERT INTO runs (id, kind) VALUES ('r1', 'batch')")
    store_db._migrated.clear()
    os.chmod(archive, 0o444)
    try:
        before = archive.read_bytes()
        with connect(archive) as db:
            assert db.execute("SELECT id FROM runs").fetchall() == [("r1",)]
            with pytest.raises(duckdb.Error):
                db.execute("INSERT INTO runs (id, kind) VALUES ('r2', 'batch')")
        assert archive.read_bytes() == before
    finally:
        os.chmod(archive, 0o644)
