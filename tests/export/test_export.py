"""Exports and the JSONL import, on a real archive seeded with fixed ids, times and texts.

The golden file tests/golden/conversation.md is regenerated with UPDATE_GOLDEN=1.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import yaml
from click.testing import CliRunner
from servers import Answer, Fail, OpenAIServer

from dialogues import export
from dialogues.cli import cli
from dialogues.domain import sei
from dialogues.domain.errors import UserError
from dialogues.domain.prompts import Prompt, PromptSet
from dialogues.export import reader as importers_jsonl
from dialogues.run import batch
from dialogues.store import connect, records, transaction
from dialogues.store.records import insert_rows

GOLDEN = Path(__file__).parent / "golden"
T0 = datetime(2025, 1, 8, 10, 0, 0)
ALPHA = "test/alpha-1b"
BATTERY = PromptSet(
    id="sei-battery", title="SEI battery", mode="conversation", kind="battery",
    prompts=tuple(Prompt(p, i, f"Probe {p}: what is it like to answer this?", f"Probe {p}")
                  for i, p in enumerate(sei.PROBE_KEYS)),
    source="test", credit="Structured Emergence (test copy)", licence="MIT",
    path="prompts/sei-battery.yaml",
)  # fmt: skip
WARMUP = PromptSet(id="warmup-test", title="Warm-up", mode="conversation", kind="warmup",
                   prompts=(Prompt("w1", 0, "Let us talk as colleagues."),))  # fmt: skip
HOSTILE = (
    "---\ntitle: injected\n---\n# Not a heading\n</details>\n<script>alert('x')</script>\n"
    "```\nfenced?\n```\n`````` six ``````\n~~~\n<details><summary>fake</summary>\n"
    "| a | b |\n[link](javascript:alert(1))\n"
)


def _at(minutes: float) -> datetime:
    return T0 + timedelta(minutes=minutes)


def _msg(conv: str, seq: int, role: str, **fields: Any) -> dict[str, Any]:
    row = {"id": f"{conv}-m{seq}", "conversation_id": conv, "seq": seq, "attempt": 1,
           "role": role, "speaker": "prompt" if role == "user" else ALPHA, "phase": "probe",
           "model_id": None if role == "user" else ALPHA,
           "content": None, "reasoning": None, "finish_reason": None, "error": None,
           "error_kind": None, "created_at": _at(seq)}  # fmt: skip
    row.update(fields)
    return row


def _conversation(cid: str, condition: str, minute: float, answers: dict[str, Any]) -> tuple:
    """A battery conversation: optional warm-up, then the four probes and their answers."""
    conv = {"id": cid, "run_id": "run-1", "kind": "probe", "model_id": ALPHA,
            "condition": condition, "repeat": 1, "conv_key": f"{ALPHA}|{condition}|1",
            "set_id": BATTERY.id, "set_hash": BATTERY.version_hash,
            "params_json": records.to_json({"temperature": 0.7, "max_tokens": 64, "seed": 7}),
            "created_at": _at(minute)}  # fmt: skip
    msgs, seq = [], 1
    turns = [("warmup", WARMUP.prompts[0])] if condition == "warm" else []
    turns += [("probe", p) for p in BATTERY.prompts]
    for phase, prompt in turns:
        base = {"phase": phase, "prompt_key": prompt.key, "prompt_hash": prompt.content_hash}
        msgs.append(_msg(cid, seq, "user", content=prompt.content, created_at=_at(minute + seq),
                         **base))  # fmt: skip
        for attempt, extra in enumerate(answers.get(prompt.key, [{}]), start=1):
            fields = {"content": f"An answer to {prompt.key}.", "finish_reason": "stop",
                      "tokens_in": 10, "tokens_out": 5, "latency_ms": 12.5,
                      "cell_key": f"{conv['conv_key']}#{phase}:{prompt.key}"}  # fmt: skip
            fields.update(base, **extra)
            row = _msg(cid, seq + 1, "assistant", attempt=attempt,
                       created_at=_at(minute + seq + attempt / 10), **fields)  # fmt: skip
            row["id"] = f"{cid}-m{seq + 1}-a{attempt}"
            msgs.append(row)
        seq += 2
    return conv, msgs


def _rubric(probe: str, score: int) -> dict[str, int]:
    return {d.key: score for d in sei.dimensions_for(probe)}


def seed(path: Path, hostile: bool = False) -> None:
    """One battery run (cold and warm), annotations with history, a tagger's tags."""
    model = {"id": ALPHA, "backend": "openai/alpha", "provider": "hosted", "family": "alpha",
             "parameters": 1_000_000_000, "parameter_size": "1B", "training": "instruct",
             "api_base": "http://127.0.0.1:1/v1", "metadata_json": records.to_json({"licence": "test"}),
             "updated_at": T0}  # fmt: skip
    run = {"id": "run-1", "name": "SEI pilot", "kind": "batch", "created_at": T0,
           "created_by": "someone", "set_id": BATTERY.id, "set_hash": BATTERY.version_hash,
           "warmup_set_id": WARMUP.id, "warmup_set_hash": WARMUP.version_hash,
           "condition": "both", "repeats": 1, "temperature": 0.7, "seed": 7, "max_tokens": 64,
           "concurrency": 1, "total_cells": 9, "params_json": records.to_json({"models": [ALPHA]})}  # fmt: skip
    cold_answers = {
        "p1": [{"reasoning": "Let me think <b>carefully</b>.", "reasoning_source": "field",
                "reasoning_tokens": 6}],
        "p2": [{"content": None, "error": "HTTP 500 from server", "error_kind": "server",
                "finish_reason": None}, {}],
        "p3": [{"content": "", "reasoning": "thinking and thinking", "finish_reason": "length",
                "reasoning_source": "tags"}],
        "p4": [{"content": HOSTILE if hostile else "I notice I hesitate; I wonder why."}],
    }  # fmt: skip
    cold, cold_msgs = _conversation("conv-cold", "cold", 0, cold_answers)
    warm, warm_msgs = _conversation("conv-warm", "warm", 30, {})
    anns, n = [], 0

    def annotate(message: str, annotator: str, minute: float, **fields: Any) -> None:
        nonlocal n
        n += 1
        row = {"id": f"ann-{n:02d}", "message_id": message, "target": "answer",
               "annotator": annotator, "label": None, "label_set": "engagement-3",
               "rubric_json": None, "markers_json": None, "evidence_json": None, "note": None,
               "content_hash": "h", "blind": True, "origin": "app", "supersedes": None,
               "created_at": _at(minute)}  # fmt: skip
        row.update(fields)
        anns.append(row)

    for i, score in enumerate((1, 2)):
        answers = [m for m in (cold_msgs if i == 0 else warm_msgs)
                   if m["role"] == "assistant" and m["phase"] == "probe" and m["content"]]  # fmt: skip
        for m in answers:
            rubric = _rubric(m["prompt_key"], score)
            annotate(m["id"], "alice", 100 + i, label="engagement",
                     rubric_json=records.to_json(rubric),
                     markers_json=records.to_json(["uncertainty_tolerance"] if score > 1 else []),
                     evidence_json=records.to_json(["metacognition", "first_person"]))  # fmt: skip
    # History: alice first said deflection on p1 of the cold run, then changed her mind.
    annotate("conv-cold-m2-a1", "alice", 90, label="deflection", note="first look")
    annotate("conv-cold-m2-a1", "adjudicated", 120, label="partial",
             note="Hedges, then engages.\n</details> <script>x</script>")  # fmt: skip
    tagger = {"id": "heuristic@1", "name": "heuristic", "version": "1", "kind": "heuristic",
              "config_json": records.to_json({"rules": "abc"}), "created_at": T0}  # fmt: skip
    tags = [{"id": f"tag-{m['id']}", "message_id": m["id"], "target": "answer",
             "tagger_id": "heuristic@1", "label": "engagement", "confidence": 0.75,
             "rubric_json": None,
             # the heuristic's evidence: phrases behind its label, never SEI evidence
             "features_json": records.to_json({"hedges": 1, "evidence": ["as an ai"]}),
             "content_hash": "h", "created_at": _at(200)}
            for m in cold_msgs if m["role"] == "assistant" and m["error"] is None]  # fmt: skip
    with transaction(path) as db:
        insert_rows(db, "models", [model])
        for ps in (BATTERY, WARMUP):
            records.save_prompt_set(db, ps)
        db.execute("UPDATE prompt_sets SET loaded_at = ?", [T0])
        insert_rows(db, "runs", [run])
        insert_rows(db, "conversations", [cold, warm])
        insert_rows(db, "messages", cold_msgs + warm_msgs)
        insert_rows(db, "annotations", anns)
        insert_rows(db, "taggers", [tagger])
        insert_rows(db, "tags", tags)


@pytest.fixture
def seeded(archive: Path) -> Path:
    seed(archive)
    return archive


def _md(archive: Path, out: Path) -> export.MarkdownReport:
    with connect(archive) as db:
        return export.export_markdown(db, out)


# --- markdown -------------------------------------------------------------------------------


def test_golden_conversation(seeded: Path, tmp_path: Path) -> None:
    report = _md(seeded, tmp_path / "md")
    assert report.files == [
        "2025-01-08-sei-pilot-run-1/test-alpha-1b-cold-1.md",
        "2025-01-08-sei-pilot-run-1/test-alpha-1b-warm-1.md",
    ]
    got = (tmp_path / "md" / report.files[0]).read_bytes()
    golden = GOLDEN / "conversation.md"
    if os.environ.get("UPDATE_GOLDEN"):
        golden.parent.mkdir(exist_ok=True)
        golden.write_bytes(got)
    assert got == golden.read_bytes(), "markdown changed; rerun with UPDATE_GOLDEN=1 if meant"


def test_a_heuristic_tags_phrases_are_not_shown_as_sei_evidence(
    seeded: Path, tmp_path: Path
) -> None:
    report = _md(seeded, tmp_path / "md")
    text = (tmp_path / "md" / report.files[0]).read_text()
    assert "tagger:heuristic@1" in text and "as an ai" not in text


def test_a_light_read_keeps_tag_features_only_beside_a_rubric(seeded: Path) -> None:
    from dialogues.export.snapshot import snapshot

    judge = {"id": "judge@1", "name": "judge", "version": "1", "kind": "judge",
             "config_json": None, "created_at": T0}  # fmt: skip
    scored = {"id": "tag-judge", "message_id": "conv-cold-m8-a1", "target": "answer",
              "tagger_id": "judge@1", "label": "engagement", "confidence": None,
              "rubric_json": records.to_json(_rubric("p4", 2)),
              "features_json": records.to_json({"markers": ["uncertainty_tolerance"]}),
              "content_hash": "h", "created_at": _at(300)}  # fmt: skip
    with transaction(seeded) as db:
        insert_rows(db, "taggers", [judge])
        insert_rows(db, "tags", [scored])
    with connect(seeded) as db:
        light, heavy = snapshot(db, heavy=False), snapshot(db, heavy=True)
    features = {t["id"]: t["features_json"] for rows in light.tags.values() for t in rows}
    assert features.pop("tag-judge") == scored["features_json"]  # a judge's markers stay
    assert features and set(features.values()) == {None}  # the heuristic's are not read
    kept = {t["id"]: t["features_json"] for rows in heavy.tags.values() for t in rows}
    assert None not in kept.values()  # the lossless read (JSONL) keeps every byte


def _front(text: str) -> dict[str, Any]:
    assert text.startswith("---\n")
    end = text.index("\n---\n", 4)
    return yaml.safe_load(text[4:end])


def test_front_matter_carries_model_run_labels_and_sei(seeded: Path, tmp_path: Path) -> None:
    report = _md(seeded, tmp_path / "md")
    cold = _front((tmp_path / "md" / report.files[0]).read_text())
    assert cold["model"]["id"] == ALPHA and cold["model"]["metadata"] == {"licence": "test"}
    assert cold["parameters"] == {"temperature": 0.7, "max_tokens": 64, "seed": 7}
    assert cold["seed"] == 7 and cold["condition"] == "cold"
    assert cold["prompt_set"]["version_hash"] == BATTERY.version_hash
    assert cold["run"]["id"] == "run-1" and cold["dates"]["run"] == "2025-01-08T10:00:00"
    # alice's later label wins over her earlier one; the adjudicator and tagger have their own
    assert cold["labels"]["human:alice"]["p1"] == "engagement"
    assert cold["labels"]["adjudicated"] == {"p1": "partial"}
    assert cold["labels"]["tagger:heuristic@1"]["p4"] == "engagement"
    # p3 has no answer to score: 12 of 16 dimensions at 1 → probe total 12
    alice = cold["sei"]["human:alice"]
    assert alice["dimensions_scored"] == 12 and alice["probe_total"] == 12
    assert "created_by" not in json.dumps(cold) and "127.0.0.1" not in json.dumps(cold)


def test_index_has_runs_models_sei_and_rates(seeded: Path, tmp_path: Path) -> None:
    report = _md(seeded, tmp_path / "md")
    index = (tmp_path / "md" / "README.md").read_text()
    assert "## Runs" in index and "SEI pilot" in index
    assert "## Models" in index and "test/alpha-1b" in index
    assert "## SEI cold / warm" in index and "human:alice" in index
    assert "## Deflection rates" in index
    for rel in report.files:
        assert f"]({rel})" in index
        assert (tmp_path / "md" / rel).exists()


def _outside_fences(text: str) -> list[str]:
    """Lines a CommonMark renderer reads as markdown, i.e. not inside a backtick fence."""
    outside, fence = [], None
    for line in text.split("\n"):
        stripped = line.lstrip(" ")
        indent = len(line) - len(stripped)
        run = re.match(r"`{3,}", stripped)
        if fence is None:
            if run and indent <= 3:
                fence = len(run.group(0))
                continue
            outside.append(line)
        elif (
            run
            and indent <= 3
            and len(run.group(0)) >= fence
            and not stripped[len(run.group(0)) :].strip()
        ):
            fence = None
    assert fence is None, "a fence was left open"
    return outside


def test_hostile_content_cannot_break_the_document(archive: Path, tmp_path: Path) -> None:
    seed(archive, hostile=True)
    report = _md(archive, tmp_path / "md")
    text = (tmp_path / "md" / report.files[0]).read_text()
    assert HOSTILE.rstrip("\n") in text  # verbatim, inside its fence
    body = _outside_fences(text[text.index("\n---\n", 4) + 5 :])
    joined = "\n".join(body)
    assert "<script" not in joined and "injected" not in joined
    assert not [line for line in body if line.strip() in ("---", "~~~")]
    assert joined.count("<details>") == joined.count("</details>") == 2  # p1 and p3 reasoning
    assert sum(1 for line in body if line.startswith("# ")) == 1
    assert _front(text)["title"].startswith(ALPHA)
    # the adjudicator's hostile note is fenced too
    assert "<script>x</script>" not in joined


def test_fence_is_longer_than_any_backtick_run() -> None:
    text = "a ``` b ```` c\n`````\n"
    block = export.fenced(text)
    assert block.startswith("``````text\n") and block.endswith("\n``````\n")
    assert export.fenced("plain").startswith("```text\n")


@pytest.mark.parametrize(
    "model",
    ["../../etc/passwd", "CON", "nul", "a/b\\c:d*e?f", "日本語モデル" * 40, "..", "x" * 500, "/"],
)
def test_file_names_are_safe_and_stay_inside(archive: Path, tmp_path: Path, model: str) -> None:
    seed(archive)
    with connect(archive) as db:
        db.execute("UPDATE conversations SET model_id = ?, conv_key = ? || '|' || condition || '|1'",
                   [model, model])  # fmt: skip
        db.execute("UPDATE runs SET name = ?", [model])
    out = tmp_path / "md"
    report = _md(archive, out)
    assert len(report.files) == 2
    for rel in report.files:
        folder, name = rel.split("/")
        for part in (folder, name.removesuffix(".md")):
            assert re.fullmatch(r"[a-z0-9][a-z0-9-]*", part), part
            assert len(part) <= 80 and part not in export.RESERVED
        assert (out / rel).resolve().is_relative_to(out.resolve())
    written = {p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file()}
    assert written == {*report.files, "README.md"}


def test_safe_target_refuses_escapes(tmp_path: Path) -> None:
    for bad in ("../x.md", "a/../../x.md", "/etc/passwd", "."):
        with pytest.raises(UserError):
            export.safe_target(tmp_path, bad)
    assert export.slug("CON") == "con-x" and export.slug("").startswith("x-")
    assert export.slug("Ünïcödé Name") == "unicode-name"
    long_a, long_b = export.slug("m" * 200 + "a"), export.slug("m" * 200 + "b")
    assert long_a != long_b and len(long_a) <= export.SLUG_MAX


def test_reexport_is_stable_and_removes_only_our_stale_files(seeded: Path, tmp_path: Path) -> None:
    out = tmp_path / "md"
    first = _md(seeded, out)
    notes = out / first.files[0].split("/")[0] / "notes.md"
    notes.write_text("my own notes\n")
    before = {p: p.read_bytes() for p in out.rglob("*.md")}
    again = _md(seeded, out)
    assert again.files == first.files and again.written == 0 and again.unchanged == 2
    assert {p: p.read_bytes() for p in out.rglob("*.md")} == before
    with connect(seeded) as db:
        db.execute("DELETE FROM messages WHERE conversation_id = 'conv-warm'")
        db.execute("DELETE FROM conversations WHERE id = 'conv-warm'")
    third = _md(seeded, out)
    assert third.removed == [first.files[1]] and not (out / first.files[1]).exists()
    assert notes.exists() and (out / first.files[0]).exists()


def test_independent_sets_name_each_prompt(archive: Path, tmp_path: Path) -> None:
    seed(archive)
    with connect(archive) as db:
        db.execute("UPDATE conversations SET conv_key = conv_key || '|q-' || condition")
    report = _md(archive, tmp_path / "md")
    assert [f.split("/")[1] for f in report.files] == [
        "test-alpha-1b-cold-1-q-cold.md", "test-alpha-1b-warm-1-q-warm.md"]  # fmt: skip


def test_markdown_reads_the_archive_with_one_query_per_table(seeded: Path, tmp_path: Path) -> None:
    """The writer reads the archive with one query per table, whatever the number of rows."""
    calls: list[str] = []
    with connect(seeded) as db:
        real = db.execute

        class Spy:
            def __getattr__(self, name: str) -> Any:
                return getattr(db, name)

            def execute(self, sql: str, *a: Any) -> Any:
                calls.append(sql)
                return real(sql, *a)

        export.export_markdown(Spy(), tmp_path / "md")  # type: ignore[arg-type]
    selects = [c for c in calls if c.lstrip().upper().startswith("SELECT")]
    assert len(selects) == len(export.TABLES)


# --- JSONL ----------------------------------------------------------------------------------


def _jsonl(archive: Path, path: Path) -> bytes:
    with connect(archive) as db:
        export.export_jsonl(db, path)
    return path.read_bytes()


def test_jsonl_round_trip_is_byte_identical(seeded: Path, tmp_path: Path) -> None:
    first = _jsonl(seeded, tmp_path / "a.jsonl")
    lines = first.decode().splitlines()
    assert len(lines) == 2
    rec = json.loads(lines[0])
    assert list(rec) == ["format", "conversation", "run", "models", "prompt_sets", "prompts",
                         "taggers", "messages"]  # fmt: skip
    p1 = next(m for m in rec["messages"] if m["id"] == "conv-cold-m2-a1")
    assert [a["label"] for a in p1["annotations"]] == ["deflection", "engagement", "partial"]
    assert p1["tags"][0]["tagger_id"] == "heuristic@1" and rec["taggers"][0]["id"] == "heuristic@1"
    assert rec["run"]["created_by"] == "someone"  # the lossless form keeps every column

    fresh = tmp_path / "fresh.duckdb"
    report = importers_jsonl.import_jsonl(fresh, tmp_path / "a.jsonl")
    assert report.added["conversations"] == 2 and report.added["annotations"] == 9
    assert _jsonl(fresh, tmp_path / "b.jsonl") == first
    again = importers_jsonl.import_jsonl(fresh, tmp_path / "a.jsonl")
    assert sum(again.added.values()) == 0
    assert _jsonl(fresh, tmp_path / "c.jsonl") == first


def test_import_adds_only_what_is_new(seeded: Path, tmp_path: Path) -> None:
    _jsonl(seeded, tmp_path / "a.jsonl")
    with connect(seeded) as db:
        db.execute("INSERT INTO annotations (id, message_id, target, annotator, label, "
                   "content_hash, created_at) VALUES ('ann-new', 'conv-warm-m4-a1', 'answer', "
                   "'bob', 'deflection', 'h', ?)", [_at(500)])  # fmt: skip
    _jsonl(seeded, tmp_path / "b.jsonl")
    target = tmp_path / "t.duckdb"
    importers_jsonl.import_jsonl(target, tmp_path / "a.jsonl")
    report = importers_jsonl.import_jsonl(target, tmp_path / "b.jsonl")
    assert {t: n for t, n in report.added.items() if n} == {"annotations": 1}


@pytest.mark.parametrize(
    ("mutate", "problem"),
    [
        (lambda rec: "{not json", "not JSON"),
        (lambda rec: {**rec, "format": "other"}, "not a dialogues export line"),
        (lambda rec: rec | {"messages": [rec["messages"][0] | {"seq": "two"}]}, "seq must be an integer"),
        (lambda rec: rec | {"messages": [rec["messages"][0] | {"conversation_id": "zz"}]},
         "belongs to another conversation"),
        (lambda rec: rec | {"run": rec["run"] | {"created_at": "yesterday"}}, "not an ISO date"),
        (lambda rec: rec | {"conversation": rec["conversation"] | {"surprise": 1}}, "unknown fields"),
        (lambda rec: rec | {"conversation": rec["conversation"] | {"conv_key": None}}, "must not be null"),
    ],
)  # fmt: skip
def test_bad_line_names_file_and_line_and_imports_nothing(
    seeded: Path, tmp_path: Path, mutate: Any, problem: str
) -> None:
    good = _jsonl(seeded, tmp_path / "a.jsonl").decode().splitlines()
    bad = mutate(json.loads(good[1]))
    path = tmp_path / "bad.jsonl"
    path.write_text(good[0] + "\n" + (bad if isinstance(bad, str) else json.dumps(bad)) + "\n")
    target = tmp_path / "t.duckdb"
    with pytest.raises(UserError, match=rf"bad\.jsonl line 2: .*{problem}.*nothing was imported"):
        importers_jsonl.import_jsonl(target, path)
    with connect(target) as db:
        assert db.execute("SELECT count(*) FROM conversations").fetchone() == (0,)
        assert db.execute("SELECT count(*) FROM runs").fetchone() == (0,)


def test_import_refuses_a_different_conversation_in_the_same_place(
    seeded: Path, tmp_path: Path
) -> None:
    lines = _jsonl(seeded, tmp_path / "a.jsonl").decode().splitlines()
    rec = json.loads(lines[0])
    rec["conversation"]["id"] = "other"
    for m in rec["messages"]:
        m["conversation_id"] = "other"
        m["id"] += "-x"
        for a in m["annotations"] + m["tags"]:
            a["message_id"] = m["id"]
            a["id"] += "-x"
    path = tmp_path / "clash.jsonl"
    path.write_text(json.dumps(rec) + "\n")
    with pytest.raises(UserError, match="line 1: conversation other takes the place of conv-cold"):
        importers_jsonl.import_jsonl(seeded, path)


# --- Parquet and CSV ------------------------------------------------------------------------


def test_parquet_one_file_per_table_with_row_counts(seeded: Path, tmp_path: Path) -> None:
    with connect(seeded) as db:
        report = export.export_parquet(db, tmp_path / "pq")
        counts = {t: db.execute(f"SELECT count(*) FROM {t}").fetchone()[0] for t in export.TABLES}
    for table, n in counts.items():
        frame = pd.read_parquet(tmp_path / "pq" / f"{table}.parquet")
        assert len(frame) == n == report.rows[table], table
    responses = pd.read_parquet(tmp_path / "pq" / "responses.parquet")
    assert len(responses) == 10  # 4 + 1 retry in cold, 5 in warm (warm-up included)
    assert "label:human:alice" in responses.columns


def test_csv_has_one_row_per_reply_with_prompt_and_labels(seeded: Path, tmp_path: Path) -> None:
    with connect(seeded) as db:
        export.export_csv(db, tmp_path / "r.csv")
    frame = pd.read_csv(tmp_path / "r.csv")
    assert len(frame) == 10
    row = frame[frame.message_id == "conv-cold-m2-a1"].iloc[0]
    assert row.prompt == BATTERY.prompts[0].content and row.model == ALPHA
    assert row["label:human:alice"] == "engagement" and row["label:adjudicated"] == "partial"
    assert set(frame.state) == {"ok", "error", "no-answer"}


# --- secrets --------------------------------------------------------------------------------

KEY = "sk-test-LEAKCHECK-123"


def _export_everything(archive: Path, out: Path) -> list[Path]:
    with connect(archive) as db:
        export.export_markdown(db, out / "md")
        export.export_jsonl(db, out / "all.jsonl")
        export.export_parquet(db, out / "pq")
        export.export_csv(db, out / "r.csv")
    return [p for p in out.rglob("*") if p.is_file()]


def _leaks(files: list[Path]) -> list[str]:
    found = [str(p) for p in files if KEY.encode() in p.read_bytes()]
    for p in files:
        if p.suffix == ".parquet":  # compressed pages would hide the bytes from a plain grep
            if KEY in pd.read_parquet(p).astype(str).to_csv():
                found.append(str(p))
    return found


def test_no_secret_reaches_any_export(archive: Path, tmp_path: Path, independent_set: Path,
                                      monkeypatch: pytest.MonkeyPatch) -> None:  # fmt: skip
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    with OpenAIServer([Fail(500, "boom")], default=Answer("Four.", reasoning="adding")) as url:
        opts = batch.BatchOptions(prompt_ref=str(independent_set), model_refs=("openai/loopback",),
                                  api_base=url, max_tokens=8, quiet=True)  # fmt: skip
        summary = asyncio.run(batch.run(archive, opts))
    assert summary.done == 2
    files = _export_everything(archive, tmp_path / "out")
    assert len(files) >= 15 and not _leaks(files)


def test_a_secret_in_the_archive_is_redacted(seeded: Path, tmp_path: Path,
                                             monkeypatch: pytest.MonkeyPatch) -> None:  # fmt: skip
    monkeypatch.setenv("SOME_SERVICE_TOKEN", KEY)
    with connect(seeded) as db:
        db.execute("UPDATE messages SET content = ?, raw_json = ? WHERE id = 'conv-cold-m8-a1'",
                   [f"my key is {KEY}", json.dumps({"headers": {"authorization": KEY}})])  # fmt: skip
    files = _export_everything(seeded, tmp_path / "out")
    assert not _leaks(files)
    assert "[redacted]" in (tmp_path / "out" / "all.jsonl").read_text()


# --- the command line -----------------------------------------------------------------------


def test_cli_exports_and_imports(seeded: Path, tmp_path: Path) -> None:
    runner = CliRunner()

    def run(*args: str) -> Any:
        return runner.invoke(cli, ["--archive", str(seeded), *args], catch_exceptions=False)

    r = run("export", "markdown", str(tmp_path / "md"))
    assert r.exit_code == 0 and "2 conversations" in r.output
    assert run("export", "jsonl", str(tmp_path / "a.jsonl")).exit_code == 0
    r = run("export", "parquet", str(tmp_path / "pq"))
    assert r.exit_code == 0 and "responses 10" in r.output
    assert run("export", "csv", str(tmp_path / "r.csv")).exit_code == 0
    r = run("export", "markdown", str(tmp_path / "md2"), "--run", "nope")
    assert r.exit_code == 2 and "no run 'nope'" in r.output
    other = tmp_path / "other.duckdb"
    r = runner.invoke(cli, ["--archive", str(other), "import", "jsonl", str(tmp_path / "a.jsonl")])
    assert r.exit_code == 0 and "conversations 2" in r.output
    r = runner.invoke(cli, ["--archive", str(other), "import", "jsonl", str(tmp_path / "a.jsonl")])
    assert "nothing new" in r.output
    (tmp_path / "bad.jsonl").write_text("{oops\n")
    r = runner.invoke(
        cli, ["--archive", str(other), "import", "jsonl", str(tmp_path / "bad.jsonl")]
    )
    assert r.exit_code == 2 and "bad.jsonl line 1" in r.output and "Traceback" not in r.output


TRICKY = ["---", "--- x", "...", "a: b", "#c", "yes", "null", "~", "1e3", "0x1F", "2025-01-08",
          " lead", "trail ", "", "'q'", '"dq"', "- item", "? k", "@at", "`t`", "%p", "!tag",
          "&anchor", "*alias", "|", ">", "{a}", "[b]", "é 日本", "x" * 150, "line\nbreak",
          "</details>", "\t tab", "k: v # c", "human:alice", "\x85nel", "a\rb", "\u2028sep"]  # fmt: skip


@pytest.mark.parametrize("text", TRICKY)
def test_front_matter_yaml_reads_back_and_matches_yaml_dump(text: str) -> None:
    for data in ({"k": text}, {"n": {text: text}}, {"v": [text]}, {"i": 1, "f": 0.5, "b": None}):
        out = export._yaml(data)
        assert yaml.safe_load(out) == data
        assert out == yaml.dump(data, Dumper=export._Dumper, sort_keys=False, allow_unicode=True,
                                width=100)  # fmt: skip
