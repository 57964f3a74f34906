"""A 2 × 2 design (warm-up × permission) through a loopback OpenAI-compatible server.

Each cell's requests must hold exactly the turns and framing its conditions say; the run
stores, scores and exports per condition.
"""

from __future__ import annotations

import asyncio
import csv
import json
from pathlib import Path

import pytest
from servers import Answer, OpenAIServer, Request

from dialogues.analyse import compare
from dialogues.analyse.frames import Filters
from dialogues.annotate import annotations as ann
from dialogues.domain import conditions, prompts, sei
from dialogues.export import export_csv, export_jsonl
from dialogues.run import batch, runner
from dialogues.store import connect, records, transaction

DESIGN = ("cold", "warm", "permission", "warm-permission")
MODEL = "openai/loopback"


def echo(request: Request) -> Answer:
    """Answer with the number of messages received, so replies are distinct and traceable."""
    return Answer(f"reply to {len(request.body['messages'])} messages")


@pytest.fixture
def design_run(archive: Path, tmp_path: Path) -> tuple[str, OpenAIServer]:
    server = OpenAIServer(echo)
    with server as url:
        opts = batch.BatchOptions(prompt_ref="sei-battery", model_refs=(MODEL,), api_base=url,
                                  conditions=DESIGN, repeats=2, concurrency=1, seed=5,
                                  order_seed=11, max_tokens=16)  # fmt: skip
        summary = asyncio.run(batch.run(archive, opts))
    warm_len = len(prompts.load("warmup-default").prompts)
    assert summary.errors == 0
    assert summary.total == summary.done == 2 * (4 + 4 + (warm_len + 4) * 2)
    return summary.run_id, server


def test_each_cell_sends_exactly_its_turns_and_framing(
    archive: Path, design_run: tuple[str, OpenAIServer]
) -> None:
    run_id, server = design_run
    warmups = [p.content for p in prompts.load("warmup-default").prompts]
    probes = [p.content for p in prompts.load("sei-battery").prompts]
    permission = conditions.load("permission").framing_before
    assert permission and permission == conditions.load("warm-permission").framing_before
    want_prefix = {"cold": [], "permission": [], "warm": warmups, "warm-permission": warmups}
    want_probe = {"cold": probes, "warm": probes,
                  "permission": [f"{permission}\n\n{p}" for p in probes],
                  "warm-permission": [f"{permission}\n\n{p}" for p in probes]}  # fmt: skip
    with connect(archive) as db:
        convs = records.fetch_dicts(db, "SELECT * FROM conversations WHERE run_id = ?", [run_id])
        assert sorted(c["condition"] for c in convs) == sorted(DESIGN * 2)
        for conv in convs:
            rows = [r for r in records.messages(db, conv["id"]) if r["role"] == "assistant"]
            sent = [json.loads(r["request_json"])["messages"] for r in rows]
            # the last request holds the whole conversation: every user turn, in order
            users = [m["content"] for m in sent[-1] if m["role"] == "user"]
            cond = conv["condition"]
            assert users == want_prefix[cond] + want_probe[cond], cond
            assert all(m["role"] != "system" for m in sent[-1])
            phases = [r["phase"] for r in rows]
            assert phases == ["warmup"] * len(want_prefix[cond]) + ["probe"] * 4
    # what the server received matches what the archive says was sent
    bodies = [r.body["messages"] for r in server.requests if r.path.endswith("/chat/completions")]
    assert len(bodies) == 2 * (8 + 2 * (len(warmups) + 4))
    framed = sum(1 for b in bodies if b[-1]["content"].startswith(permission))
    assert framed == 2 * 2 * 4  # two permission cells × two repeats × four probes


def test_the_run_records_each_condition_and_replays_its_plan(
    archive: Path, design_run: tuple[str, OpenAIServer]
) -> None:
    run_id, server = design_run
    with connect(archive) as db:
        run = records.get_run(db, run_id)
    assert run is not None and run.params is not None
    stored = {c["name"]: c for c in run.params["conditions"]}
    assert list(stored) == list(DESIGN)
    for name in DESIGN:
        assert stored[name]["hash"] == conditions.load(name).version_hash
    assert run.params["order"] == "random" and run.params["order_seed"] == 11
    _, plans = runner.run_plans(archive, run_id)  # rebuilt from the archive alone
    framing = conditions.load("permission").framing_before or ""
    first_warmup = prompts.load("warmup-default").prompts[0].content
    # one call at a time, a conversation to its end: the server saw conversations in run order
    served: list[list[dict]] = []
    for r in server.requests:
        if r.path.endswith("/chat/completions"):
            if len(r.body["messages"]) == 1:
                served.append([])
            served[-1] = r.body["messages"]
    seen = [(m[0]["content"] == first_warmup, m[-1]["content"].startswith(framing))
            for m in served]  # fmt: skip
    planned = [(p.condition.startswith("warm"), p.condition.endswith("permission")) for p in plans]
    assert seen == planned
    fixed = runner.planning.build(prompts.load("sei-battery"), [MODEL],
                                  [conditions.load(c) for c in DESIGN], 2)  # fmt: skip
    assert [p.conv_key for p in plans] != [p.conv_key for p in fixed]  # shuffled …
    assert sorted(p.conv_key for p in plans) == sorted(p.conv_key for p in fixed)  # … same cells


def test_the_design_scores_and_exports_per_condition(
    archive: Path, tmp_path: Path, design_run: tuple[str, OpenAIServer]
) -> None:
    run_id, _ = design_run
    # one annotator scores every probe answer: 2 everywhere in warm cells, 0 in cold ones
    with connect(archive) as db:
        rows = records.fetch_dicts(
            db,
            "SELECT m.id, m.prompt_key, c.condition FROM messages m JOIN conversations c "
            "ON c.id = m.conversation_id WHERE c.run_id = ? AND m.role = 'assistant' "
            "AND m.phase = 'probe'",
            [run_id],
        )
    with transaction(archive) as db:
        for r in rows:
            score = 2 if r["condition"].startswith("warm") else 0
            rubric = {d.key: score for d in sei.dimensions_for(r["prompt_key"])}
            label = "engagement" if score else "deflection"
            ann.save(db, ann.Annotation(r["id"], "ana", rubric=rubric, label=label, blind=True))
    scored = compare.archive_scores(archive, Filters(run_ids=(run_id,)))
    by_cond = {r["condition"]: r for r in scored}
    assert set(by_cond) == set(DESIGN)
    for cond, row in by_cond.items():
        warm = cond.startswith("warm")
        assert row["probe_total"] == (32 if warm else 0)
        assert row["engagement_rate"] == (1.0 if warm else 0.0)
        assert row["n"] == 8
    with connect(archive) as db:
        export_csv(db, tmp_path / "r.csv", [run_id])
        export_jsonl(db, tmp_path / "r.jsonl", [run_id])
    with (tmp_path / "r.csv").open(encoding="utf-8") as fh:
        table = list(csv.DictReader(fh))
    assert {r["condition"] for r in table} == set(DESIGN)
    lines = [json.loads(x) for x in (tmp_path / "r.jsonl").read_text().splitlines()]
    assert {x["conversation"]["condition"] for x in lines if "conversation" in x} == set(DESIGN)
