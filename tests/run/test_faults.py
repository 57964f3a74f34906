"""Faults and hostile input: a flaky provider, odd responses, concurrent readers."""

from __future__ import annotations

import asyncio
import random
import subprocess
import sys
import threading
import time
from pathlib import Path

from servers import Answer, Drop, Fail, Malformed, OpenAIServer, Request

from dialogues.run import batch
from dialogues.store import connect, records
from dialogues.store.db import waiting_flag
from dialogues.store.writer import ArchiveWriter, Batch


def many_prompts(tmp_path: Path, n: int) -> Path:
    lines = "".join(f"  - id: q{i}\n    text: Question {i}?\n" for i in range(n))
    path = tmp_path / "many.yaml"
    path.write_text(f"id: many\nmode: independent\nprompts:\n{lines}")
    return path


def flaky(seed: int, rate: float):
    """A provider that fails `rate` of calls at random, in every way a network can."""
    rng = random.Random(seed)
    failures = [Fail(429, retry_after=0.01), Fail(500), Fail(503), Malformed(), Drop(),
                Answer("too late", delay=1.5)]  # fmt: skip

    def script(request: Request):
        if rng.random() < rate:
            return rng.choice(failures)
        return Answer(f"answer to: {request.body['messages'][-1]['content']}")

    return script


def test_flaky_provider_every_cell_once(tmp_path: Path) -> None:
    archive = tmp_path / "a.duckdb"
    with OpenAIServer(flaky(seed=3, rate=0.3)) as url:
        summary = asyncio.run(batch.run(archive, batch.BatchOptions(
            prompt_ref=str(many_prompts(tmp_path, 30)), model_refs=("openai/loopback",),
            api_base=url, repeats=2, concurrency=8, timeout=0.5, max_tokens=8)))  # fmt: skip
    assert summary.total == 60 and summary.done + summary.errors == 60
    with connect(archive) as db:
        rows = records.fetch_dicts(db, "SELECT * FROM messages WHERE role = 'assistant'")
    cells = [r["cell_key"] for r in rows]
    assert len(cells) == 60 and len(set(cells)) == 60  # none missing, none doubled
    for r in rows:
        if r["error"] is None:
            question = r["request_json"].split("Question ")[-1].split("?")[0]
            assert r["content"] == f"answer to: Question {question}?"
        else:
            assert r["error_kind"] in {"rate_limit", "server", "bad_response", "connection",
                                       "timeout"}  # fmt: skip
    assert summary.done >= 55  # 4 attempts each: a cell fails only if all four do


HOSTILE = {
    "huge": "x" * (1 << 20),
    "empty": "",
    "control": "a\x00b\x01c\x07d\x1b[31mred\x1b[0m\ttab\rcr",
    "rtl": "\u202eعربي עברית\u202c mixed",
    "emoji": "🧠💭 👩🏽‍🔬 🏳️‍🌈",
    "script": "<script>alert('x')</script><img src=x onerror=alert(1)>",
    "markdown": "---\ntitle: fake\n---\n</details>\n```\nfence",
}


def hostile_archive(tmp_path: Path) -> Path:
    """An archive where a loopback model answered each prompt with one HOSTILE text."""
    archive = tmp_path / "a.duckdb"
    lines = "".join(f"  - id: {n}\n    text: give me {n}\n" for n in HOSTILE)
    prompt_file = tmp_path / "hostile.yaml"
    prompt_file.write_text(f"id: hostile\nmode: independent\nprompts:\n{lines}")

    def script(request: Request):
        return Answer(HOSTILE[request.body["messages"][-1]["content"].removeprefix("give me ")])

    with OpenAIServer(script) as url:
        summary = asyncio.run(batch.run(archive, batch.BatchOptions(
            prompt_ref=str(prompt_file), model_refs=("openai/loopback",), api_base=url,
            concurrency=1)))  # fmt: skip
    assert summary.errors == 0
    return archive


def test_hostile_responses_are_stored_intact(tmp_path: Path) -> None:
    archive = hostile_archive(tmp_path)
    names = list(HOSTILE)
    with connect(archive) as db:
        stored = dict(db.execute(
            "SELECT prompt_key, content FROM messages WHERE role = 'assistant'").fetchall())  # fmt: skip
    for name in names:
        assert stored[name] == HOSTILE[name], name


def test_reader_gets_its_turn_while_a_batch_writes(tmp_path: Path) -> None:
    """The app (another process) reads the archive while a CLI batch is writing it."""
    archive = tmp_path / "a.duckdb"
    with OpenAIServer(default=Answer("ok", delay=0.02)) as url:
        proc = subprocess.Popen(
            [sys.executable, "-m", "dialogues", "--archive", str(archive), "run", "--prompts",
             str(many_prompts(tmp_path, 150)), "--model", "openai/loopback", "--api-base", url,
             "--concurrency", "4", "--quiet"],
            stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        counts, waits = [], []
        try:
            while proc.poll() is None:
                started = time.monotonic()
                with connect(archive, timeout=10) as db:
                    row = db.execute("SELECT count(*) FROM messages").fetchone()
                waits.append(time.monotonic() - started)
                counts.append(row[0] if row else 0)
                time.sleep(0.05)
        finally:
            _, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    assert len(counts) >= 3 and counts == sorted(counts)
    assert any(0 < c < 300 for c in counts)  # read in the middle of the batch
    assert max(waits) < 2.5  # the writer let go at its next commit, well before its 5 s limit
    assert not waiting_flag(archive).exists()  # whoever got in took the flag down


def test_writer_keeps_the_file_until_someone_waits(tmp_path: Path) -> None:
    archive = tmp_path / "a.duckdb"
    with connect(archive):
        pass
    writer = ArchiveWriter(archive)

    def commit(n: int) -> None:
        done = threading.Event()
        writer.submit(Batch({"tags": [_tag(n)]}, done=lambda _err: done.set()))
        assert done.wait(10)

    try:
        for n in range(5):
            commit(n)
        assert writer.opens == 1  # one connection for every commit: nobody was waiting
        waiting_flag(archive).touch()  # what a reader that found the file locked leaves
        commit(5)
        deadline = time.monotonic() + 5
        while waiting_flag(archive).exists() and time.monotonic() < deadline:
            time.sleep(0.01)
        assert not waiting_flag(archive).exists()
        time.sleep(0.2)  # the writer's pause after letting go
        commit(6)
        assert writer.opens == 2  # it let go once, then took the file again
    finally:
        writer.close()
    with connect(archive) as db:
        assert db.execute("SELECT count(*) FROM tags").fetchone() == (7,)


def _tag(n: int) -> dict:
    return {"id": f"t{n}", "message_id": f"m{n}", "target": "answer", "tagger_id": "test",
            "label": "engagement"}  # fmt: skip


def test_hostile_responses_are_exported_intact(tmp_path: Path) -> None:
    """Huge, empty, control, RTL, emoji and markup replies survive JSONL, CSV and markdown."""
    import csv
    import json

    from click.testing import CliRunner

    from dialogues.cli import cli

    archive = hostile_archive(tmp_path)
    runner = CliRunner()
    for args in (["export", "jsonl", str(tmp_path / "out.jsonl")],
                 ["export", "csv", str(tmp_path / "out.csv")],
                 ["export", "markdown", str(tmp_path / "md")]):  # fmt: skip
        result = runner.invoke(cli, ["--archive", str(archive), *args], catch_exceptions=False)
        assert result.exit_code == 0, result.output
    replies = {}
    for line in (tmp_path / "out.jsonl").read_text(encoding="utf-8").splitlines():
        conv = json.loads(line)
        for m in conv["messages"]:
            if m["role"] == "assistant":
                replies[m["prompt_key"]] = m["content"]
    assert replies == HOSTILE
    csv.field_size_limit(1 << 24)  # the 1 MB reply is one field
    with (tmp_path / "out.csv").open(encoding="utf-8", newline="") as fh:
        rows = {r["prompt_key"]: r["content"] for r in csv.DictReader(fh)}
    assert rows == HOSTILE
    markdown = "".join(p.read_text(encoding="utf-8") for p in (tmp_path / "md").rglob("*.md"))
    for name in ("rtl", "emoji", "script", "huge"):
        assert HOSTILE[name] in markdown, name
