"""Background jobs: a real detached `dialogues run` on the embedded model, and one that fails."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import SMOL

from dialogues.run import jobs
from dialogues.run.batch import BatchOptions
from dialogues.store import connect, queries


@pytest.fixture
def one_prompt(tmp_path: Path) -> Path:
    path = tmp_path / "one.yaml"
    path.write_text("id: one\ntitle: One\nprompts:\n  - id: hi\n    text: Say hi.\n")
    return path


@pytest.mark.model
def test_job_runs_in_the_background_and_reports_progress(archive: Path, one_prompt: Path) -> None:
    opts = BatchOptions(prompt_ref=str(one_prompt), model_refs=(SMOL,), max_tokens=8, seed=1,
                        name="background")  # fmt: skip
    job = jobs.start(archive, opts)
    record = json.loads((jobs.jobs_dir(archive) / f"{job.id}.json").read_text())
    assert record["pid"] == job.pid and "--run-id-file" in record["command"]
    assert [j.id for j in jobs.list_jobs(archive)] == [job.id]

    done = jobs.wait(archive, job.id, timeout=90)
    assert done.status == jobs.FINISHED, done.message
    assert done.exit_code == 0
    assert done.run_id and done.summary and done.summary["run"] == done.run_id
    assert jobs.progress(archive, [done]) == {
        done.run_id: [{"model": SMOL, "total": 1, "done": 1, "errors": 0}]
    }
    with connect(archive) as db:
        rows, total = queries.transcript_page(db, queries.TranscriptFilter(run_ids=(done.run_id,)))
    assert total == 1 and rows[0]["state"] in ("ok", "cut off at the token limit")
    # Status survives the app: a fresh look (as after a restart) still sees it finished.
    assert jobs.get(archive, job.id).status == jobs.FINISHED


def test_job_that_cannot_start_is_failed_with_its_reason(archive: Path) -> None:
    opts = BatchOptions(prompt_ref="no-such-set", model_refs=(SMOL,))
    job = jobs.start(archive, opts)
    done = jobs.wait(archive, job.id, timeout=60)
    assert done.status == jobs.FAILED
    assert done.exit_code == 2
    assert done.run_id is None
    assert "no prompt set called 'no-such-set'" in (done.message or "")


def test_run_args_round_trip_the_options() -> None:
    opts = BatchOptions(prompt_ref="smoke", model_refs=(SMOL, "other"), conditions=("both",),
                        repeats=3, temperature=0.2, seed=7, max_tokens=32, name="n")  # fmt: skip
    args = jobs.run_args(opts)
    assert args[:3] == ["run", "--prompts", "smoke"]
    assert args.count("--model") == 2 and "--seed" in args and "7" in args
    resume = jobs.run_args(BatchOptions(resume_id="abc", retry_errors=True))
    assert resume[:4] == ["run", "--resume", "abc", "--retry-errors"]


def test_run_progress_counts_the_latest_attempt(archive: Path) -> None:
    with connect(archive) as db:
        db.execute(
            "INSERT INTO runs (id, kind, total_cells, params_json) VALUES "
            "('r', 'batch', 4, '{\"models\": [\"a\", \"b\"]}')"
        )
        db.execute("INSERT INTO conversations (id, run_id, kind, model_id, conv_key) "
                   "VALUES ('c', 'r', 'probe', 'a', 'k')")  # fmt: skip
        db.executemany(
            "INSERT INTO messages (id, conversation_id, seq, attempt, role, cell_key, error) "
            "VALUES (?, 'c', ?, ?, 'assistant', ?, ?)",
            [["m1", 2, 1, "x", "boom"], ["m2", 2, 2, "x", None], ["m3", 4, 1, "y", "boom"]],
        )
        assert queries.run_progress(db, "r") == [
            {"model": "a", "total": 2, "done": 1, "errors": 1},
            {"model": "b", "total": 2, "done": 0, "errors": 0},
        ]
        assert queries.run_progress(db, "missing") == []
