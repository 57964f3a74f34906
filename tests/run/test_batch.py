"""batch: from a researcher's options to a run, and the clear refusals before anything is stored."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from servers import Answer, OpenAIServer, Request

from dialogues.domain.errors import UserError
from dialogues.run import batch
from dialogues.store import connect, records


def echo(request: Request) -> Answer:
    return Answer(f"reply {len(request.body['messages'])}")


def test_both_is_cold_then_warm_and_names_stay_unique() -> None:
    chosen = batch.resolve_conditions(("both", "cold"))
    assert [c.name for c in chosen] == ["cold", "warm"]
    assert [c.name for c in batch.resolve_conditions(())] == ["cold"]


@pytest.mark.parametrize(
    ("opts", "message"),
    [
        ({"model_refs": ("openai/x",)}, "--prompts is required"),
        ({"prompt_ref": "sei-battery"}, "give at least one --model"),
        ({"resume_id": "nope"}, "no run 'nope'"),
    ],
)
def test_missing_options_are_refused_and_nothing_is_stored(
    archive: Path, opts: dict, message: str
) -> None:
    with pytest.raises(UserError, match=message):
        batch.prepare(archive, batch.BatchOptions(**opts))
    with connect(archive) as db:
        assert db.execute("SELECT count(*) FROM runs").fetchone() == (0,)


def test_a_batch_runs_and_a_dialogue_run_does_not_resume(archive: Path, tiny_set: Path) -> None:
    server = OpenAIServer(echo)
    with server:
        opts = batch.BatchOptions(prompt_ref=str(tiny_set), model_refs=("openai/one",),
                                  api_base=server.url, max_tokens=8, quiet=True)  # fmt: skip
        summary = asyncio.run(batch.run(archive, opts))
    with connect(archive) as db:
        runs = records.list_runs(db)
        db.execute("UPDATE runs SET kind = 'dialogue'")
    assert summary.errors == 0
    assert [(r["total"], r["done"], r["errors"]) for r in runs] == [(2, 2, 0)]
    with pytest.raises(UserError, match="only batches resume"):
        batch.prepare(archive, batch.BatchOptions(resume_id=runs[0]["id"]))
