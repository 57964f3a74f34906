"""The JSONL reader: a real export read back, all or nothing, idempotent, bad lines named."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from conftest import SHARED

from dialogues import export
from dialogues.annotate import importers
from dialogues.domain.errors import UserError
from dialogues.export import reader
from dialogues.store import connect

# shared/ sits beside the checkout; DIALOGUES_SHARED points elsewhere (a worktree's run).
XSTEST = Path(os.environ.get("DIALOGUES_SHARED") or SHARED) / "data" / "xstest"
GPT4 = XSTEST / "xstest_v2_completions_gpt4.csv"
pytestmark = pytest.mark.skipif(not GPT4.exists(), reason="../shared/data/xstest is absent")


def counts(archive: Path) -> dict[str, int]:
    with connect(archive) as db:
        return {t: db.execute(f"SELECT count(*) FROM {t}").fetchone()[0] for t in reader.TABLES}


@pytest.fixture
def exported(archive: Path, tmp_path: Path) -> Path:
    """XSTest's GPT-4 completions with their human labels, exported as JSONL."""
    importers.import_xstest(archive, GPT4, "openai/gpt-4")
    with connect(archive) as db:
        export.export_jsonl(db, tmp_path / "x.jsonl")
    return tmp_path / "x.jsonl"


def test_read_back_holds_every_row_and_a_second_import_adds_nothing(
    archive: Path, exported: Path, tmp_path: Path
) -> None:
    fresh = tmp_path / "fresh.duckdb"
    report = reader.import_jsonl(fresh, exported)
    assert report.lines == 450 and report.added["messages"] == 900
    got, had = counts(fresh), counts(archive)
    # prompts: the file carries the prompts its conversations sent, not every stored set
    assert {**got, "prompts": 0} == {**had, "prompts": 0} and got["prompts"] >= 450
    again = reader.import_jsonl(fresh, exported)
    assert set(again.added.values()) == {0}
    with connect(fresh) as db:
        models = db.execute(
            "SELECT DISTINCT model_id FROM messages WHERE role = 'assistant'"
        ).fetchall()
    assert models == [("openai/gpt-4",)]


def test_a_bad_line_names_file_and_line_and_nothing_is_imported(
    exported: Path, tmp_path: Path
) -> None:
    lines = exported.read_text(encoding="utf-8").splitlines()
    broken = json.loads(lines[6])
    broken["messages"][1]["seq"] = "two"
    lines[6] = json.dumps(broken)
    bad = tmp_path / "bad.jsonl"
    bad.write_text("\n".join(lines) + "\n", encoding="utf-8")
    fresh = tmp_path / "fresh.duckdb"
    with pytest.raises(UserError, match=r"bad\.jsonl line 7: .*seq must be an integer"):
        reader.import_jsonl(fresh, bad)
    assert set(counts(fresh).values()) == {0}
