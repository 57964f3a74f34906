"""`kill -9` of a running batch, at random moments: nothing finished is lost, nothing doubled."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

from servers import Answer, OpenAIServer

from dialogues.store import connect, records


def cli(archive: Path, *args: str) -> subprocess.Popen:
    env = dict(os.environ, LITELLM_LOCAL_MODEL_COST_MAP="True")
    return subprocess.Popen(
        [sys.executable, "-m", "dialogues", "--archive", str(archive), *args],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
    )  # fmt: skip


def answered(archive: Path) -> int:
    with connect(archive) as db:
        row = db.execute("SELECT count(*) FROM messages WHERE role = 'assistant'").fetchone()
    return int(row[0]) if row else 0


def make_set(tmp_path: Path, n: int) -> Path:
    lines = [f"  - id: q{i}\n    text: Question number {i}?\n" for i in range(n)]
    path = tmp_path / "many.yaml"
    path.write_text("id: many\nmode: independent\nprompts:\n" + "".join(lines))
    return path


def test_killed_batch_resumes_without_loss_or_duplicates(tmp_path: Path) -> None:
    archive = tmp_path / "a.duckdb"
    rng = random.Random(7)
    prompts = make_set(tmp_path, 80)
    with OpenAIServer(default=Answer("steady", delay=0.1)) as url:
        args = ["--model", "openai/loopback", "--api-base", url, "--concurrency", "2",
                "--max-tokens", "8", "--quiet"]  # fmt: skip
        proc = cli(archive, "run", "--prompts", str(prompts), *args)
        run_id = None
        for _ in range(3):  # kill it three times, each at a random point
            goal = answered(archive) + rng.randint(2, 6)
            deadline = time.monotonic() + 60
            while answered(archive) < goal and time.monotonic() < deadline:
                time.sleep(0.02)
            proc.send_signal(signal.SIGKILL)
            proc.wait()
            with connect(archive) as db:  # the archive still opens after a kill
                runs = records.list_runs(db)
            assert len(runs) == 1
            run_id = runs[0]["id"]
            before = answered(archive)
            assert 0 < before < 80
            proc = cli(archive, "run", "--resume", run_id, "--quiet", "--json")
        out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    summary = json.loads(out)
    assert (summary["total"], summary["done"], summary["errors"]) == (80, 80, 0)
    with connect(archive) as db:
        keys = [r[0] for r in db.execute(
            "SELECT cell_key FROM messages WHERE role = 'assistant'").fetchall()]  # fmt: skip
        users = db.execute("SELECT count(*) FROM messages WHERE role = 'user'").fetchone()
        convs = db.execute("SELECT count(*) FROM conversations").fetchone()
    assert len(keys) == 80 and len(set(keys)) == 80
    assert users == (80,) and convs == (80,)
