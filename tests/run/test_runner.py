"""The batch runner against real back ends: the embedded model and loopback HTTP servers."""

from __future__ import annotations

import asyncio
import json
import threading
from pathlib import Path

import pytest
from conftest import SMOL
from servers import Answer, Drop, Fail, Malformed, OpenAIServer

from dialogues.domain.errors import UserError
from dialogues.run import batch, runner
from dialogues.store import connect, records


def run_batch(archive: Path, **opts) -> runner.Summary:
    return asyncio.run(batch.run(archive, batch.BatchOptions(**opts)))


def assistant_rows(archive: Path) -> list[dict]:
    with connect(archive) as db:
        return records.fetch_dicts(
            db,
            "SELECT m.*, c.repeat, c.model_id FROM messages m "
            "JOIN conversations c ON c.id = m.conversation_id "
            "WHERE m.role = 'assistant' ORDER BY c.repeat, m.seq, m.attempt",
        )


@pytest.mark.model
def test_embedded_batch_lands_with_text_tokens_latency(archive: Path, tiny_set: Path) -> None:
    summary = run_batch(archive, prompt_ref=str(tiny_set), model_refs=(SMOL,), repeats=2,
                        seed=11, max_tokens=16)  # fmt: skip
    assert (summary.total, summary.done, summary.errors) == (4, 4, 0)
    rows = assistant_rows(archive)
    assert len(rows) == 4
    for row in rows:
        assert row["content"].strip() and row["error"] is None
        assert row["tokens_in"] > 0 and 0 < row["tokens_out"] <= 16
        assert row["latency_ms"] > 0 and row["finish_reason"] in ("stop", "length")
        assert row["speaker"] == SMOL
    # The second prompt of a conversation was sent with the first exchange as history.
    second = json.loads(rows[1]["request_json"])["messages"]
    assert [m["role"] for m in second] == ["user", "assistant", "user"]
    assert second[1]["content"] == rows[0]["content"]
    with connect(archive) as db:
        model = records.list_models(db)[0]
    assert model["training"] == "instruct" and model["digest"].startswith("sha256:")


@pytest.mark.model
def test_same_seed_gives_same_text(tmp_path: Path, tiny_set: Path) -> None:
    texts = []
    for name in ("one", "two"):
        path = tmp_path / f"{name}.duckdb"
        run_batch(path, prompt_ref=str(tiny_set), model_refs=(SMOL,), repeats=2, seed=5,
                  max_tokens=16)  # fmt: skip
        texts.append([r["content"] for r in assistant_rows(path)])
    assert texts[0] == texts[1]
    assert texts[0][0] != texts[0][2] or texts[0][1] != texts[0][3]  # repeats use other seeds


def hosted(url: str, **opts) -> dict:
    return dict(model_refs=("openai/loopback",), api_base=url, max_tokens=8, **opts)


def test_transient_failures_are_retried(archive: Path, independent_set: Path) -> None:
    script = [Fail(500), Fail(429, retry_after=0.01), Answer("fine"), Malformed(), Drop()]
    server = OpenAIServer(script, default=Answer("fine"))
    with server as url:
        summary = run_batch(archive, prompt_ref=str(independent_set), **hosted(url),
                            concurrency=1)  # fmt: skip
    assert (summary.done, summary.errors) == (2, 0)
    rows = assistant_rows(archive)
    assert [r["content"] for r in rows] == ["fine", "fine"]
    assert sum(json.loads(r["raw_json"])["_calls"] for r in rows) == 6


def test_always_failing_provider_leaves_error_rows(archive: Path, tiny_set: Path,
                                                   independent_set: Path) -> None:  # fmt: skip
    with OpenAIServer(default=Fail(500, "overloaded")) as url:
        indep = run_batch(archive, prompt_ref=str(independent_set), **hosted(url), repeats=2)
        conv = run_batch(archive, prompt_ref=str(tiny_set), **hosted(url))
    assert (indep.total, indep.done, indep.errors) == (4, 0, 4)
    assert (conv.total, conv.done, conv.errors) == (2, 0, 2)
    rows = assistant_rows(archive)
    assert len(rows) == 6 and all(r["error"] and r["content"] is None for r in rows)
    kinds = sorted(r["error_kind"] for r in rows)
    assert kinds.count("skipped") == 1  # the conversation's second turn was never sent
    with connect(archive) as db:
        listed = {r["id"]: r for r in records.list_runs(db)}
    assert listed[indep.run_id]["errors"] == 4 and listed[indep.run_id]["done"] == 0


def test_reasoning_is_split_and_an_empty_answer_recorded(archive: Path,
                                                         independent_set: Path) -> None:  # fmt: skip
    script = [
        Answer("The answer.", reasoning="Let me think about this."),
        Answer("", reasoning="I kept thinking until the budget ran out", finish_reason="length"),
    ]
    with OpenAIServer(script) as url:
        run_batch(archive, prompt_ref=str(independent_set), **hosted(url), concurrency=1)
    first, second = assistant_rows(archive)
    assert first["content"] == "The answer." and first["reasoning"] == "Let me think about this."
    assert first["reasoning_source"] == "field"
    assert second["content"] == "" and second["finish_reason"] == "length"
    assert second["reasoning"] and second["error"] is None


def test_inline_think_tags_are_split(archive: Path, independent_set: Path) -> None:
    with OpenAIServer(default=Answer("<think>weighing it</think>Four.")) as url:
        run_batch(archive, prompt_ref=str(independent_set), **hosted(url))
    rows = assistant_rows(archive)
    assert {r["content"] for r in rows} == {"Four."}
    assert {r["reasoning"] for r in rows} == {"weighing it"}


def test_resume_does_only_missing_cells_and_retry_errors_keeps_attempts(
    archive: Path, independent_set: Path
) -> None:
    stop = threading.Event()
    seen = []

    def stop_after_two(run_id: str, progress: dict) -> None:
        seen.append(run_id)
        if sum(p.done for p in progress.values()) >= 2:
            stop.set()

    with OpenAIServer([Fail(400, "bad request")], default=Answer("ok")) as url:
        opts = batch.BatchOptions(prompt_ref=str(independent_set), **hosted(url), repeats=3,
                                  concurrency=1)  # fmt: skip
        run_id, providers = batch.prepare(archive, opts)
        first = asyncio.run(runner.execute(archive, run_id, providers, False, stop_after_two, stop))
        assert first.errors == 1 and 0 < first.done < 6
        again = run_batch(archive, resume_id=run_id)
        assert (again.total, again.done, again.errors) == (6, 5, 1)
        fixed = run_batch(archive, resume_id=run_id, retry_errors=True)
    assert (fixed.done, fixed.errors) == (6, 0)
    rows = assistant_rows(archive)
    cells = [r["cell_key"] for r in rows]
    assert len(cells) == 7 and len(set(cells)) == 6  # one cell has two attempts, both kept
    retried = [r for r in rows if r["attempt"] == 2]
    assert len(retried) == 1 and retried[0]["content"] == "ok"


def test_a_new_run_executes_once_on_its_own_connection(archive: Path, tiny_set: Path) -> None:
    """record_run hands its plan and connection to execute; the stored plan is the same one."""
    with OpenAIServer([], default=Answer("ok")) as url:
        opts = batch.BatchOptions(prompt_ref=str(tiny_set), **hosted(url), repeats=2)
        new, providers = batch._start(archive, opts)
        assert isinstance(new, runner.NewRun)
        summary = asyncio.run(runner.execute(archive, new, providers))
        assert (summary.run_id, summary.done, summary.errors) == (new.id, 4, 0)
        with pytest.raises(ValueError, match="already executed"):
            asyncio.run(runner.execute(archive, new, providers))
        # Read back from the archive, the plan is the one that ran: a resume finds nothing to do.
        _, stored = runner.run_plans(archive, new.id)
        assert [t.cell_key for p in stored for t in p.turns] == [
            t.cell_key for p in new.plans for t in p.turns
        ]
        again = run_batch(archive, resume_id=new.id)
    assert (again.total, again.done) == (4, 4)
    assert len(assistant_rows(archive)) == 4  # nothing called or written twice


def test_a_new_run_never_executed_lets_go_of_the_archive(archive: Path, tiny_set: Path) -> None:
    opts = batch.BatchOptions(prompt_ref=str(tiny_set), **hosted("http://127.0.0.1:9"))
    new, _ = batch._start(archive, opts)
    assert isinstance(new, runner.NewRun)
    new.close()
    with connect(archive, timeout=0.5) as db:  # not locked: the file is free again
        assert records.get_run(db, new.id) is not None


def test_progress_bar_redraws_at_most_ten_times_a_second(capsys) -> None:
    bar = batch._ProgressBar("r1")
    per_model = {"m": runner.Progress(total=1000)}
    for _ in range(1000):
        per_model["m"].done += 1
        bar.update("r1", per_model)
    bar.close()
    drawn = capsys.readouterr().err
    assert drawn.count("errors=0") < 20  # 1000 updates in well under a second
    assert "1000/1000" in drawn  # the last state is always drawn


def test_a_run_rebuilt_from_jsonl_resumes(archive: Path, tmp_path: Path) -> None:
    """Stopped, exported, imported elsewhere: the rebuilt archive finishes the run exactly,
    prompts never sent included (the run's first line carries its whole prompt set)."""
    from dialogues.export import export_jsonl
    from dialogues.export import reader as importers_jsonl

    prompts = tmp_path / "four.yaml"
    prompts.write_text("id: four\nmode: independent\nprompts:\n"
                       + "".join(f"  - id: q{i}\n    text: Question {i}?\n" for i in range(4)))  # fmt: skip
    stop = threading.Event()

    def stop_after_one(run_id: str, progress: dict) -> None:
        if sum(p.done for p in progress.values()) >= 1:
            stop.set()

    with OpenAIServer([], default=Answer("ok")) as url:
        opts = batch.BatchOptions(prompt_ref=str(prompts), **hosted(url), concurrency=1)
        run_id, providers = batch.prepare(archive, opts)
        first = asyncio.run(runner.execute(archive, run_id, providers, False, stop_after_one, stop))
        assert first.done == 1
        with connect(archive) as db:
            export_jsonl(db, tmp_path / "run.jsonl")
        elsewhere = tmp_path / "elsewhere.duckdb"
        importers_jsonl.import_jsonl(elsewhere, tmp_path / "run.jsonl")
        finished = run_batch(elsewhere, resume_id=run_id)
    assert (finished.total, finished.done, finished.errors) == (4, 4, 0)
    rows = assistant_rows(elsewhere)
    assert sorted(r["prompt_key"] for r in rows) == ["q0", "q1", "q2", "q3"]  # none twice

    # A file from before whole prompt sets were written: the gap is named, nothing is run.
    lines = (tmp_path / "run.jsonl").read_text(encoding="utf-8").splitlines()
    rec = json.loads(lines[0])
    sent = {m["prompt_key"] for m in rec["messages"]}
    rec["prompts"] = [p for p in rec["prompts"] if p["key"] in sent]
    (tmp_path / "old.jsonl").write_text(json.dumps(rec) + "\n", encoding="utf-8")
    older = tmp_path / "older.duckdb"
    importers_jsonl.import_jsonl(older, tmp_path / "old.jsonl")
    with pytest.raises(UserError, match="holds only 1 of the prompts of set four"):
        run_batch(older, resume_id=run_id)
    assert len(assistant_rows(older)) == 1
