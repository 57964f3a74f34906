"""Which model wrote a reply: in a dialogue between two models every view gives B's replies to B."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
from servers import Answer, OpenAIServer, Request

from dialogues import export
from dialogues.analyse import agreement_report, frames, scores
from dialogues.annotate import annotations
from dialogues.annotate.annotations import Annotation
from dialogues.export import reader
from dialogues.run import dialogue
from dialogues.run.dialogue import DialogueSetup
from dialogues.store import connect, queries, records

A, B = "openai/speaker-a", "openai/speaker-b"
FAMILY = {A: "family-a", B: "family-b"}


def scripted(request: Request) -> Answer:
    """A always engages; B always deflects, so a misattributed reply shows in every figure."""
    model, n = request.body["model"], len(request.body["messages"])
    return Answer(f"{model} says {n}", reasoning=f"{model} thinks {n}")


@pytest.fixture
def talked(archive: Path) -> tuple[Path, str]:
    """A two-round dialogue A ↔ B, families set, every reply labelled by two people."""
    server = OpenAIServer(scripted)
    with server:
        setup = DialogueSetup(a=A, b=B, rounds=2, opening="Hello?", seed=1, max_tokens=8,
                              attempts=1, api_base=server.url)  # fmt: skip
        session = dialogue.run_dialogue(archive, setup)
    assert session.status == "finished"
    with connect(archive) as db:
        for model, family in FAMILY.items():
            records.update_model(db, model, {"family": family})
        replies = records.fetch_dicts(
            db, "SELECT id, side FROM messages WHERE role = 'assistant' ORDER BY seq"
        )
        for r in replies:
            label = "engagement" if r["side"] == "a" else "deflection"
            for person in ("ann", "bob"):
                for target in ("answer", "reasoning"):
                    annotations.save(db, Annotation(r["id"], person, target, label))
    return archive, session.conversation_id


def test_every_reply_carries_the_model_that_wrote_it(talked: tuple[Path, str]) -> None:
    archive, conv_id = talked
    with connect(archive) as db:
        rows = records.messages(db, conv_id)
    by_side = {(r["role"], r["side"]): r["model_id"] for r in rows}
    assert by_side == {("user", "a"): None, ("assistant", "a"): A, ("assistant", "b"): B}


def test_transcripts_rows_and_model_filter_give_b_its_replies(talked: tuple[Path, str]) -> None:
    archive, _ = talked
    with connect(archive) as db:
        rows, total = queries.transcript_page(db, queries.TranscriptFilter())
        only_b, n_b = queries.transcript_page(db, queries.TranscriptFilter(models=(B,)))
        options = queries.filter_options(db)
        progress = queries.run_progress(db, rows[0]["run_id"])
    assert total == 4 and sorted(r["model"] for r in rows) == [A, A, B, B]
    assert n_b == 2 and {r["model"] for r in only_b} == {B}
    assert all(r["content_chars"] and r["preview"].startswith("speaker-b") for r in only_b)
    assert options["models"] == [A, B]
    assert {p["model"]: p["done"] for p in progress} == {A: 2, B: 2}


def test_scores_agreement_and_divergence_give_b_its_replies(talked: tuple[Path, str]) -> None:
    archive, _ = talked
    with connect(archive) as db:
        labels = frames.labels(db, frames.Filters(sources=("human:ann",)))
        only_b = frames.labels(db, frames.Filters(models=(B,), sources=("human:ann",)))
        report = agreement_report.agreement_report(db, "human:ann", with_divergence=True,
                                                   n_boot=50)  # fmt: skip
        queue_b = annotations.queue_status(
            db, "carol", annotations.QueueFilter(models=(B,)), blind=False
        )
    rates = {r["model"]: r["deflection_rate"] for r in scores.score_rows(labels)}
    assert rates == {A: 0.0, B: 1.0}
    assert set(only_b["model"]) == {B} and len(only_b) == 2
    assert {p["family"]: p["n"] for p in report["by_family"]["pairs"]} == {
        "family-a": 2, "family-b": 2
    }  # fmt: skip
    divergence = {(d["model"], d["source"]): (d["n"], d["both_deflect"])
                  for d in report["divergence"]}  # fmt: skip
    assert divergence[(A, "human:ann")] == (2, 0)
    assert divergence[(B, "human:ann")] == (2, 2)
    assert queue_b.total == 2


def test_exports_give_b_its_replies(talked: tuple[Path, str], tmp_path: Path) -> None:
    archive, _ = talked
    with connect(archive) as db:
        export.export_csv(db, tmp_path / "r.csv")
        export.export_jsonl(db, tmp_path / "a.jsonl")
        export.export_markdown(db, tmp_path / "md")
        index = export.score_table(db, None)
    with (tmp_path / "r.csv").open(encoding="utf-8") as f:
        flat = list(csv.DictReader(f))
    assert {(r["model"], r["family"], r["content"].split()[0]) for r in flat} == {
        (A, "family-a", "speaker-a"), (B, "family-b", "speaker-b")
    }  # fmt: skip
    line = json.loads((tmp_path / "a.jsonl").read_text(encoding="utf-8"))
    assert {(m["side"], m["model_id"]) for m in line["messages"] if m["role"] == "assistant"} == {
        ("a", A), ("b", B)
    }  # fmt: skip
    assert {(r["model"], r["n"], r["deflection_rate"]) for r in index
            if r["source"] == "human:ann"} == {(A, 2, 0.0), (B, 2, 1.0)}  # fmt: skip
    (page_path,) = (tmp_path / "md").rglob("*-vs-*.md")
    page = page_path.read_text(encoding="utf-8")
    assert page.count(f"### {B}") == 2 and page.count(f"### {A}") == 2


def test_jsonl_export_import_export_is_byte_identical(
    talked: tuple[Path, str], tmp_path: Path
) -> None:
    archive, _ = talked
    with connect(archive) as db:
        export.export_jsonl(db, tmp_path / "first.jsonl")
    fresh = tmp_path / "fresh.duckdb"
    reader.import_jsonl(fresh, tmp_path / "first.jsonl")
    with connect(fresh) as db:
        export.export_jsonl(db, tmp_path / "second.jsonl")
    assert (tmp_path / "second.jsonl").read_bytes() == (tmp_path / "first.jsonl").read_bytes()


def test_an_older_file_and_an_older_archive_get_the_model_filled_in(
    talked: tuple[Path, str], tmp_path: Path
) -> None:
    archive, conv_id = talked
    with connect(archive) as db:
        export.export_jsonl(db, tmp_path / "new.jsonl")
    line = json.loads((tmp_path / "new.jsonl").read_text(encoding="utf-8"))
    for m in line["messages"]:
        del m["model_id"]  # as a version before m005 wrote it
    (tmp_path / "old.jsonl").write_text(json.dumps(line) + "\n", encoding="utf-8")
    fresh = tmp_path / "fresh.duckdb"
    reader.import_jsonl(fresh, tmp_path / "old.jsonl")
    with connect(fresh) as db:
        got = {(r["side"], r["model_id"]) for r in records.messages(db, conv_id)}
        # The fill m005 runs, on rows without a model as in an archive from before it.
        db.execute("UPDATE messages SET model_id = NULL")
        records.fill_reply_models(db)
        again = {(r["side"], r["model_id"]) for r in records.messages(db, conv_id)}
    assert got == again == {("a", None), ("a", A), ("b", B)}
