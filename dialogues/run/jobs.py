"""Batches in the background: a detached `dialogues run` per job, outliving the app that started it.

Each job is three small files under <archive dir>/jobs/: `<job>.json` (pid, command, start
time), `<job>.log` (the child's stdout and stderr) and `<job>.runid` (written by the child as
soon as its run exists). Status comes from the files and the pid, never from memory, so a job
started in a closed browser tab, or by an app that has since restarted, is still listed.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from dialogues.run.batch import BatchOptions
from dialogues.store import connect, queries

RUNNING, FINISHED, FAILED = "running", "finished", "failed"


@dataclass
class Job:
    """One background batch, as recorded when it started and as it stands now."""

    id: str
    pid: int
    command: list[str]
    archive: str
    started_at: float
    """Unix time the child was started."""
    log: str
    run_id: str | None = None
    status: str = RUNNING
    exit_code: int | None = None
    summary: dict[str, Any] | None = None
    """The child's final JSON (run, total, done, errors, per_model), once it printed it."""
    message: str | None = None
    """The last line the child wrote to its log: the reason, when it failed."""


def jobs_dir(archive: Path) -> Path:
    """Where an archive's job records live."""
    return Path(archive).resolve().parent / "jobs"


def run_args(opts: BatchOptions) -> list[str]:
    """`dialogues run` arguments that ask for exactly this batch."""
    args = ["run"]
    if opts.resume_id:
        args += ["--resume", opts.resume_id]
        if opts.retry_errors:
            args.append("--retry-errors")
    else:
        args += ["--prompts", str(opts.prompt_ref)]
        for ref in opts.model_refs:
            args += ["--model", ref]
        for cond in opts.conditions:
            args += ["--condition", cond]
        if opts.warmup:
            args += ["--warmup", opts.warmup]
        if opts.blind_required:
            args.append("--blind-required")
        if opts.order_seed is not None:
            args += ["--order-seed", str(opts.order_seed)]
        args += ["--order", opts.order,
                 "--repeats", str(opts.repeats), "--temperature", repr(opts.temperature),
                 "--max-tokens", str(opts.max_tokens)]  # fmt: skip
        if opts.seed is not None:
            args += ["--seed", str(opts.seed)]
        if opts.system_prompt:
            args += ["--system", opts.system_prompt]
        if opts.name:
            args += ["--name", opts.name]
    args += ["--concurrency", str(opts.concurrency), "--timeout", repr(opts.timeout)]
    if opts.api_base:
        args += ["--api-base", opts.api_base]
    return args


def start(archive: Path, opts: BatchOptions, models_file: Path | None = None) -> Job:
    """Start a batch as a detached process and record it; returns at once."""
    folder = jobs_dir(archive)
    folder.mkdir(parents=True, exist_ok=True)
    job_id = time.strftime("%Y%m%d-%H%M%S-") + uuid.uuid4().hex[:6]
    log = folder / f"{job_id}.log"
    cmd = [sys.executable, "-m", "dialogues", "--archive", str(Path(archive).resolve())]
    if models_file is not None:
        cmd += ["--models-file", str(models_file)]
    cmd += [*run_args(opts), "--quiet", "--json", "--run-id-file", str(folder / f"{job_id}.runid")]
    with open(log, "wb") as out:
        # A new session: closing the tab, or stopping the app with Ctrl-C, does not stop the run.
        child = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=out,
                                 stderr=subprocess.STDOUT, start_new_session=True)  # fmt: skip
    job = Job(job_id, child.pid, cmd, str(archive), time.time(), str(log))
    _write_record(folder, job)
    return job


def _write_record(folder: Path, job: Job) -> None:
    record = {k: v for k, v in asdict(job).items()
              if k in ("id", "pid", "command", "archive", "started_at", "log")}  # fmt: skip
    tmp = folder / f"{job.id}.json.tmp"
    tmp.write_text(json.dumps(record, indent=2), encoding="utf-8")
    tmp.replace(folder / f"{job.id}.json")


def list_jobs(archive: Path, limit: int | None = None) -> list[Job]:
    """The archive's jobs, newest first, each with its current status."""
    folder = jobs_dir(archive)
    if not folder.exists():
        return []
    found = []
    for path in sorted(folder.glob("*.json"), reverse=True)[:limit]:
        try:
            record = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue  # a record being written, or one someone broke: not ours to fix here
        found.append(refresh(Job(**record)))
    return found


def get(archive: Path, job_id: str) -> Job | None:
    """One job by id, with its current status."""
    path = jobs_dir(archive) / f"{job_id}.json"
    if not path.exists():
        return None
    return refresh(Job(**json.loads(path.read_text(encoding="utf-8"))))


def refresh(job: Job) -> Job:
    """Fill in run id, status, exit code and summary from the job's files and its pid."""
    folder = Path(job.log).parent
    run_file = folder / f"{job.id}.runid"
    if run_file.exists():
        job.run_id = run_file.read_text(encoding="utf-8").strip() or None
    exit_file = folder / f"{job.id}.exit"
    alive, code = _poll(job, exit_file)
    tail = _tail(Path(job.log))
    job.summary = _summary(tail)
    job.message = next((line for line in reversed(tail.splitlines()) if line.strip()), None)
    if job.summary and not job.run_id:
        job.run_id = job.summary.get("run")
    if alive:
        job.status = RUNNING
        return job
    job.exit_code = code
    # Exit 1 with a summary means "finished, some calls failed"; that is the run's result.
    job.status = FINISHED if job.summary is not None else FAILED
    return job


def _poll(job: Job, exit_file: Path) -> tuple[bool, int | None]:
    """Is the child alive; if not, its exit code when anyone could learn it."""
    if exit_file.exists():
        return False, _read_int(exit_file)
    try:
        pid, status = os.waitpid(job.pid, os.WNOHANG)
    except ChildProcessError:
        # Not our child (another app process started it): ask the kernel instead.
        return _is_our_process(job), None
    if pid == 0:
        return True, None
    code = os.waitstatus_to_exitcode(status)
    # Only the parent can reap the child once; keep the code for every later look.
    exit_file.write_text(str(code), encoding="utf-8")
    return False, code


def _is_our_process(job: Job) -> bool:
    """True if the pid is alive, not a zombie, and still runs this job's command."""
    proc = Path(f"/proc/{job.pid}")
    if proc.exists():
        try:
            stat = (proc / "stat").read_text()
            cmdline = (proc / "cmdline").read_bytes().decode(errors="replace")
        except OSError:
            return False
        state = stat.rsplit(")", 1)[-1].split()[0]
        return state not in ("Z", "X") and job.id in cmdline  # a reused pid runs something else
    try:
        os.kill(job.pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _read_int(path: Path) -> int | None:
    try:
        return int(path.read_text(encoding="utf-8").strip())
    except (OSError, ValueError):
        return None


def _tail(path: Path, size: int = 16_384) -> str:
    """The end of a log file (the JSON summary and any error are at the end)."""
    try:
        with open(path, "rb") as handle:
            handle.seek(0, os.SEEK_END)
            handle.seek(max(0, handle.tell() - size))
            return handle.read().decode("utf-8", errors="replace")
    except OSError:
        return ""


def _summary(text: str) -> dict[str, Any] | None:
    """The child's final `--json` summary, if the log has one (native libraries may log after)."""
    decoder = json.JSONDecoder()
    at = len(text)
    while at > 0:
        at = text.rfind("\n{", 0, at)
        start = at + 1 if at >= 0 else 0
        if at < 0 and not text.startswith("{"):
            return None
        try:
            value, _ = decoder.raw_decode(text, start)
        except ValueError:
            continue
        if isinstance(value, dict) and "run" in value:
            return value
    return None


def stop(job: Job) -> None:
    """Stop a running job; finished calls are already in the archive, so it can be resumed."""
    if refresh(job).status != RUNNING:
        return
    try:
        os.killpg(job.pid, signal.SIGTERM)
    except ProcessLookupError:
        pass


def progress(archive: Path, jobs: list[Job]) -> dict[str, list[dict[str, Any]]]:
    """run id → per-model progress (model, total, done, errors), in one archive visit."""
    run_ids = [j.run_id for j in jobs if j.run_id]
    if not run_ids:
        return {}
    with connect(Path(archive)) as db:
        return {run_id: queries.run_progress(db, run_id) for run_id in run_ids}


def wait(archive: Path, job_id: str, timeout: float = 120.0, interval: float = 0.2) -> Job:
    """Block until a job is no longer running (for scripts and tests); raises TimeoutError."""
    deadline = time.monotonic() + timeout
    while True:
        job = get(archive, job_id)
        if job is None:
            raise KeyError(job_id)
        if job.status != RUNNING:
            return job
        if time.monotonic() >= deadline:
            raise TimeoutError(f"job {job_id} still running after {timeout:.0f} s")
        time.sleep(interval)
