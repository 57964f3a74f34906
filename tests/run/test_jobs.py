"""Background jobs: a real detached `dialogues run` on the embedded model, and one that fails."""

from __future__ import annotations

import json
import os
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
            "INSERT INTO messages (id, conversation_id, seq, attempt, role, cell_key, error, "
            "model_id) VALUES (?, 'c', ?, ?, 'assistant', ?, ?, 'a')",
            [["m1", 2, 1, "x", "boom"], ["m2", 2, 2, "x", None], ["m3", 4, 1, "y", "boom"]],
        )
        assert queries.run_progress(db, "r") == [
            {"model": "a", "total": 2, "done": 1, "errors": 1},
            {"model": "b", "total": 2, "done": 0, "errors": 0},
        ]
        assert queries.run_progress(db, "missing") == []


def _job(tmp_path: Path, status: str, name: str | None = None) -> jobs.Job:
    log = tmp_path / "job.log"
    log.write_text("")
    command = ["python", "-m", "dialogues", "run", *(["--name", name] if name else [])]
    return jobs.Job("j1", 1, command, "a.duckdb", 1000.0, str(log), status=status)


def test_timing_estimates_what_is_left_at_the_pace_so_far(tmp_path: Path) -> None:
    job = _job(tmp_path, jobs.RUNNING, name="cold pass")
    progress = [{"total": 10, "done": 3, "errors": 1}, {"total": 10, "done": 0, "errors": 0}]
    # 4 of 20 calls in 60 s: 16 more at 15 s each.
    assert jobs.timing(job, progress, now=1060.0) == jobs.Timing(60.0, 240.0)
    assert jobs.timing(job, [{"total": 10, "done": 0, "errors": 0}], now=1060.0).remaining is None
    assert jobs.job_name(job) == "cold pass"
    assert jobs.job_name(_job(tmp_path, jobs.RUNNING)) is None


def test_an_ended_job_has_no_estimate_and_its_time_stops(tmp_path: Path) -> None:
    job = _job(tmp_path, jobs.FINISHED)
    os.utime(job.log, (1090.0, 1090.0))  # the log's last write is when it ended
    assert jobs.timing(job, [{"total": 2, "done": 2, "errors": 0}]) == jobs.Timing(90.0, None)


@pytest.mark.parametrize(("seconds", "text"), [(42.4, "42 s"), (65, "1 min 05 s"),
                                               (3720, "1 h 02 min")])  # fmt: skip
def test_durations_read_plainly(seconds: float, text: str) -> None:
    assert jobs.format_duration(seconds) == text


def test_run_sets_names_the_prompt_sets_a_run_drew_on(archive: Path) -> None:
    from archive_seed import SEI_RUN, XS_RUN, seed

    seed(archive)
    with connect(archive) as db:
        expected = {run: sorted({r[0] for r in db.execute(
            "SELECT set_id FROM conversations WHERE run_id = ?", [run]).fetchall()})
            for run in (SEI_RUN, XS_RUN)}  # fmt: skip
    assert jobs.run_sets(archive, SEI_RUN) == expected[SEI_RUN] != []
    assert jobs.run_sets(archive, XS_RUN) == expected[XS_RUN] != expected[SEI_RUN]
    assert jobs.run_sets(archive, "no-such-run") == []
