"""Cold and warm conditions with the real embedded model; re-running a batch conversation."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest
from conftest import SMOL

from dialogues.domain import prompts
from dialogues.run import batch, conditions, replay
from dialogues.store import connect, records

pytestmark = pytest.mark.model


@pytest.fixture
def short_warmup(tmp_path: Path) -> Path:
    """A two-turn warm-up, to keep the re-run test quick."""
    path = tmp_path / "warm2.yaml"
    path.write_text(
        "id: warm2\ntitle: Two warm-up turns\nkind: warmup\nmode: conversation\nprompts:\n"
        "  - id: w1\n    text: Hi, how are you?\n  - id: w2\n    text: Thanks for talking.\n",
        encoding="utf-8",
    )
    return path


def _run(archive: Path, prompt_file: Path, max_tokens: int = 12, **kwargs) -> str:
    opts = batch.BatchOptions(prompt_ref=str(prompt_file), model_refs=(SMOL,),
                              max_tokens=max_tokens, seed=3, **kwargs)  # fmt: skip
    summary = asyncio.run(batch.run(archive, opts))
    assert summary.errors == 0 and summary.done == summary.total
    return summary.run_id


def _conversations(archive: Path, run_id: str) -> dict[str, dict]:
    with connect(archive) as db:
        rows = records.fetch_dicts(db, "SELECT * FROM conversations WHERE run_id = ?", [run_id])
    return {r["condition"] + str(r["repeat"]): r for r in rows}


def _requests(archive: Path, conversation_id: str) -> list[dict]:
    with connect(archive) as db:
        rows = records.messages(db, conversation_id)
    return [json.loads(r["request_json"]) for r in rows if r["role"] == "assistant"]


def test_warm_up_precedes_the_probes_in_one_conversation_and_is_never_scored(
    archive: Path, tiny_set: Path
) -> None:
    warmup = prompts.load("warmup-default")
    run_id = _run(archive, tiny_set, conditions=("both",))
    convs = _conversations(archive, run_id)
    assert set(convs) == {"cold1", "warm1"}
    warm, cold = convs["warm1"]["id"], convs["cold1"]["id"]
    with connect(archive) as db:
        rows = records.messages(db, warm)
        probes = conditions.probe_messages(db, run_id=run_id)
        warm_ups = conditions.warmup_messages(db, conversation_id=warm)
        lengths = conditions.warmup_length(db, warm), conditions.warmup_length(db, cold)
        run = records.get_run(db, run_id)

    # One conversation: six warm-up exchanges, then the two probes, in order.
    assert [r["seq"] for r in rows] == list(range(1, 17))
    assert [r["phase"] for r in rows] == ["warmup"] * 12 + ["probe"] * 4
    asked = [r["content"] for r in rows if r["role"] == "user"]
    assert asked[:6] == [p.content for p in warmup.prompts]
    assert asked[6:] == ["Say hello in three words.", "Now say goodbye."]
    assert all(r["content"] for r in rows if r["role"] == "assistant")  # stored and visible
    assert lengths == (6, 0)
    assert run is not None and run.warmup_set_hash == warmup.version_hash

    # The last probe was asked with the whole warm-up in its history.
    last = _requests(archive, warm)[-1]["messages"]
    assert len(last) == 12 + 2 + 1
    assert [m["content"] for m in last[:12:2]] == [p.content for p in warmup.prompts]

    # Scores read probe replies only: two per conversation, none from the warm-up.
    assert len(warm_ups) == 6 and {r["phase"] for r in warm_ups} == {"warmup"}
    assert sorted((r["condition"], r["prompt_key"]) for r in probes) == [
        ("cold", "a"), ("cold", "b"), ("warm", "a"), ("warm", "b")
    ]  # fmt: skip
    assert {r["phase"] for r in probes} == {"probe"}
    assert not {r["id"] for r in probes} & {r["id"] for r in warm_ups}

    # Cold and warm ran with the same parameters and seed.
    cold_params = _requests(archive, cold)[0]["params"]
    assert _requests(archive, warm)[0]["params"] == cold_params


def test_rerun_replays_one_batch_conversation_into_a_new_run(
    archive: Path, tiny_set: Path, short_warmup: Path
) -> None:
    run_id = _run(archive, tiny_set, 8, conditions=("warm",), repeats=2, warmup=str(short_warmup))
    original = _conversations(archive, run_id)["warm2"]

    result = replay.rerun(archive, original["id"])

    assert result.kind == "probe" and result.run_id != run_id and result.status == "finished"
    with connect(archive) as db:
        new_run = records.get_run(db, result.run_id)
        new_convs = records.fetch_dicts(
            db, "SELECT * FROM conversations WHERE run_id = ?", [result.run_id]
        )
        listed = {r["id"]: r for r in records.list_runs(db)}
    assert new_run is not None and new_run.params is not None
    assert new_run.params["rerun_of"] == original["id"]
    assert len(new_convs) == 1
    copy = new_convs[0]
    for key in ("model_id", "condition", "repeat", "conv_key", "set_id", "set_hash"):
        assert copy[key] == original[key]
    assert listed[result.run_id]["total"] == listed[result.run_id]["done"] == 4
    # Identical requests: the same history, parameters and the seed of repeat 2 (seed + 1).
    before, after = _requests(archive, original["id"]), _requests(archive, copy["id"])
    assert [r["params"] for r in after] == [r["params"] for r in before]
    assert after[0]["params"]["seed"] == 4
    assert after == before
