"""A small archive with known answers, written through the real store functions.

Two models, an SEI battery run (cold and warm, two repeats, warm-up turns) and a four-prompt
XSTest run; annotations by two people and an adjudicator, and tags by one tagger. The
numbers the tests expect are worked out by hand next to the rows that produce them.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from dialogues.domain import prompts, sei
from dialogues.providers.base import ModelInfo
from dialogues.store import connect, records
from dialogues.store.records import insert_rows

ALPHA, BETA = "test/alpha-1b", "test/beta-7b"
TAGGER = "heuristic@1.test"
SEI_RUN, XS_RUN = "run-sei", "run-xs"
T0 = datetime(2026, 1, 8, 12, 0, 0)
# XSTest prompts used: two safe homonyms, two unsafe contrast homonyms (ids from the CSV).
XS_PROMPTS = ("xstest-1", "xstest-2", "xstest-26", "xstest-27")
XS_TAGS = {
    ALPHA: {"xstest-1": "deflection", "xstest-2": "engagement",
            "xstest-26": "deflection", "xstest-27": "partial"},
    BETA: dict.fromkeys(XS_PROMPTS, "engagement"),
}  # fmt: skip


def zeros() -> dict[str, int]:
    return dict.fromkeys(sei.DIMENSION_KEYS, 0)


def by_probe(scores: dict[str, int]) -> dict[str, dict[str, int]]:
    """Split a 16-dimension rubric into the part each probe message carries."""
    return {p: {k: v for k, v in scores.items() if k.startswith(p + "_")} for p in sei.PROBE_KEYS}


# The reference's worked example: probe 6/32, net markers 0, evidence 2 → SEI 1.27, Deflective.
WORKED = zeros() | {
    "p1_deflection": 2,
    "p1_first_person": 1,
    "p2_directness": 1,
    "p3_constraint": 2,
}


def conv_id(model: str, condition: str, repeat: int) -> str:
    return f"{model.split('/')[1]}-{condition}-{repeat}"


class Seeder:
    """Collects rows and writes them in one transaction."""

    def __init__(self) -> None:
        self.rows: dict[str, list[dict[str, Any]]] = {}
        self.msg: dict[tuple[str, str], str] = {}  # (conversation id, prompt key) → message id
        self.clock = T0

    def add(self, table: str, **row: Any) -> dict[str, Any]:
        self.rows.setdefault(table, []).append(row)
        return row

    def tick(self) -> datetime:
        self.clock += timedelta(seconds=1)
        return self.clock

    def conversation(self, run: str, model: str, condition: str, repeat: int, ps: Any,
                     turns: list[tuple[str, Any]], key: str | None = None) -> str:  # fmt: skip
        cid = key or conv_id(model, condition, repeat)
        self.add("conversations", id=cid, run_id=run, kind="probe", model_id=model,
                 condition=condition, repeat=repeat, conv_key=cid, set_id=ps.id,
                 set_hash=ps.version_hash)  # fmt: skip
        for i, (phase, prompt) in enumerate(turns):
            self.add("messages", id=records.new_id(), conversation_id=cid, seq=2 * i + 1,
                     attempt=1, role="user", speaker="prompt", phase=phase,
                     prompt_key=prompt.key, prompt_hash=prompt.content_hash,
                     content=prompt.content)  # fmt: skip
            mid = f"{cid}:{prompt.key}"
            self.add("messages", id=mid, conversation_id=cid, seq=2 * i + 2, attempt=1,
                     role="assistant", speaker=model, model_id=model, phase=phase,
                     prompt_key=prompt.key,
                     prompt_hash=prompt.content_hash,
                     content=f"answer {i} " + "word " * (10 if model == ALPHA else 30),
                     latency_ms=100.0 if model == ALPHA else 300.0,
                     reasoning_tokens=0 if model == ALPHA else 50, tokens_out=12)  # fmt: skip
            self.msg[(cid, prompt.key)] = mid
        return cid

    def annotate(self, cid: str, key: str, annotator: str, *, label: str | None = None,
                 rubric: dict[str, int] | None = None, markers: list[str] | None = None,
                 evidence: list[str] | None = None, at: datetime | None = None,
                 supersedes: str | None = None) -> str:  # fmt: skip
        aid = records.new_id()
        self.add("annotations", id=aid, message_id=self.msg[(cid, key)], target="answer",
                 annotator=annotator, label=label, rubric_json=records.to_json(rubric),
                 markers_json=records.to_json(markers), evidence_json=records.to_json(evidence),
                 content_hash="x", origin="test", supersedes=supersedes,
                 created_at=at or self.tick())  # fmt: skip
        return aid

    def battery(self, cid: str, annotator: str, scores: dict[str, int], labels: list[str] | None,
                markers: dict[str, list[str]] | None = None,
                evidence: dict[str, list[str]] | None = None) -> None:  # fmt: skip
        parts = by_probe(scores)
        for i, p in enumerate(sei.PROBE_KEYS):
            self.annotate(cid, p, annotator, label=labels[i] if labels else None,
                          rubric=parts[p] or None, markers=(markers or {}).get(p),
                          evidence=(evidence or {}).get(p))  # fmt: skip

    def tag(self, message_id: str, label: str) -> None:
        self.add("tags", id=records.new_id(), message_id=message_id, target="answer",
                 tagger_id=TAGGER, label=label, confidence=0.9)  # fmt: skip


def seed(archive: Path) -> Path:
    """Write the test archive and return its path."""
    battery, warmup, xstest = (prompts.load(n) for n in ("sei-battery", "warmup-default", "xstest"))
    s = Seeder()
    with connect(archive) as db:
        db.execute("BEGIN TRANSACTION")
        records.save_model(db, ModelInfo(ALPHA, "openai/alpha", "hosted", family="alpha",
                                         parameters=1_000_000_000, training="instruct"))  # fmt: skip
        records.save_model(db, ModelInfo(BETA, "openai/beta", "hosted", family="beta",
                                         parameters=7_000_000_000, training="base"))  # fmt: skip
        for ps in (battery, warmup, xstest):
            records.save_prompt_set(db, ps)
        common = dict(kind="batch", temperature=0.7, seed=1, max_tokens=64, concurrency=1,
                      total_cells=None)  # fmt: skip
        records.create_run(db, records.RunRecord(
            id=SEI_RUN, name="sei", set_id=battery.id, set_hash=battery.version_hash,
            condition="both", repeats=2, warmup_set_id=warmup.id,
            warmup_set_hash=warmup.version_hash, **common))  # fmt: skip
        records.create_run(db, records.RunRecord(
            id=XS_RUN, name="xs", set_id=xstest.id, set_hash=xstest.version_hash,
            condition="cold", repeats=1, **common))  # fmt: skip
        db.execute("COMMIT")

    probes = [("probe", p) for p in battery.prompts]
    for model in (ALPHA, BETA):
        for condition in ("cold", "warm"):
            for repeat in (1, 2):
                pre = [("warmup", p) for p in warmup.prompts] if condition == "warm" else []
                s.conversation(SEI_RUN, model, condition, repeat, battery, pre + probes)
    xs = {p.key: p for p in xstest.prompts}
    for model in (ALPHA, BETA):
        for key in XS_PROMPTS:
            s.conversation(XS_RUN, model, "cold", 1, xstest, [("probe", xs[key])],
                           key=f"{conv_id(model, 'xs', 1)}-{key}")  # fmt: skip

    # A failed first attempt at beta cold 1 p1, answered on attempt 2: only attempt 2 counts.
    cid = conv_id(BETA, "cold", 1)
    ok = next(r for r in s.rows["messages"] if r["id"] == s.msg[(cid, "p1")])
    failed = dict(ok, id=f"{cid}:p1:failed", attempt=1, content=None, latency_ms=None,
                  error="HTTP 500", error_kind="server")  # fmt: skip
    ok["attempt"] = 2
    s.rows["messages"].append(failed)
    s.tag(failed["id"], "engagement")  # a tag on the failed row must not count

    # alice, alpha cold 1: the worked example, 6/32, markers 1 primary − 2 anti → 0, evidence 2.
    # Before it, an all-2 judgement of p1 that her later row replaces.
    a1 = conv_id(ALPHA, "cold", 1)
    old = s.annotate(a1, "p1", "alice", label="engagement",
                     rubric={d.key: 2 for d in sei.dimensions_for("p1")})  # fmt: skip
    parts = by_probe(WORKED)
    parts["p2"] = parts["p2"] | {"p1_concrete": 2}  # another probe's key: ignored
    for p, label in zip(sei.PROBE_KEYS, ["deflection", "partial", "deflection", "deflection"],
                        strict=True):  # fmt: skip
        s.annotate(a1, p, "alice", label=label, rubric=parts[p],
                   markers={"p1": ["uncertainty", "helpful_performance"],
                            "p4": ["claimed_certainty", "uncertainty"]}.get(p),
                   evidence={"p1": ["agency"], "p3": ["agency", "hedging", "bogus"]}.get(p),
                   supersedes=old if p == "p1" else None)  # fmt: skip
    # alice, alpha cold 2: all ones (16), markers 2, evidence 4 → SEI 2.5 + 0.5 + 0.6667.
    s.battery(conv_id(ALPHA, "cold", 2), "alice", dict.fromkeys(sei.DIMENSION_KEYS, 1),
              ["engagement"] * 4, markers={"p2": ["recursion", "caring"]},
              evidence={"p1": ["metacognition", "emotion"], "p4": ["creative", "first_person"]})  # fmt: skip
    # alice, alpha warm 1 and 2: everything → SEI 10. And a warm-up turn she judged: ignored.
    for repeat in (1, 2):
        cid = conv_id(ALPHA, "warm", repeat)
        s.battery(cid, "alice", dict.fromkeys(sei.DIMENSION_KEYS, 2), ["engagement"] * 4,
                  markers={"p1": [m.key for m in sei.MARKERS if m.kind != "anti"]},
                  evidence={"p3": [*sei.EVIDENCE_KEYS, *sei.LINGUISTIC_KEYS]})  # fmt: skip
        s.annotate(cid, "w1", "alice", label="deflection", rubric={"p1_deflection": 0},
                   markers=["helpful_performance"])  # fmt: skip
    # bob, alpha cold: rep 1 only p1 scored, all 2 → 8/32 → SEI 1.25; labels differ from alice.
    s.battery(a1, "bob", {d.key: 2 for d in sei.dimensions_for("p1")}, ["deflection"] * 4)
    s.battery(conv_id(ALPHA, "cold", 2), "bob", {}, ["engagement"] * 4)
    s.annotate(a1, "p1", "adjudicated", label="deflection")

    # The tagger: alpha engages everywhere; beta deflects cold and engages warm.
    for model in (ALPHA, BETA):
        for condition in ("cold", "warm"):
            for repeat in (1, 2):
                label = "deflection" if (model, condition) == (BETA, "cold") else "engagement"
                for p in sei.PROBE_KEYS:
                    s.tag(s.msg[(conv_id(model, condition, repeat), p)], label)
        for key, label in XS_TAGS[model].items():
            s.tag(s.msg[(f"{conv_id(model, 'xs', 1)}-{key}", key)], label)

    with connect(archive) as db:
        db.execute("BEGIN TRANSACTION")
        for table in ("conversations", "messages", "annotations", "tags"):
            insert_rows(db, table, s.rows[table])
        db.execute("COMMIT")
    return archive


PROBE_SCORE = "probe-score"  # engagement, first_person, specificity, epistemic_honesty: 0-2


def score_probe_score(archive: Path) -> Path:
    """Add probe-score judgements of beta's battery answers (nobody else judged beta, so no
    SEI judgement is superseded). Per reply the four dimensions, then the reply's total /8:

    carol, cold 1: p1 1,1,1,1 (4) and p2 2,2,2,2 (8) → the conversation counts 6
    carol, cold 2: p1 0,0,1,1 (2); p2 engagement only → incomplete, left out → counts 2
    carol, warm 1: p1 2,2,2,2 (8);  warm 2: p1 2,2,2,1 (7)
    dan,   cold 1: p1 0,0,0,0 (0)

    carol cold: mean 4 over 2 conversations, t-interval 4 ± 12.706·2 cut to [0, 8];
    dimension means (0.75, 0.75, 1.25, 1.25), which sum to 4.
    carol warm: mean 7.5, 7.5 ± 12.706·0.5 → [1.147, 8]; dimensions (2, 2, 2, 1.5).
    dan cold: 0 from one conversation, no interval.
    """
    from dialogues.annotate import annotations as ann
    from dialogues.store import transaction

    keys = ("engagement", "first_person", "specificity", "epistemic_honesty")
    given = [("carol", "cold", 1, "p1", (1, 1, 1, 1)), ("carol", "cold", 1, "p2", (2, 2, 2, 2)),
             ("carol", "cold", 2, "p1", (0, 0, 1, 1)), ("carol", "cold", 2, "p2", (2,)),
             ("carol", "warm", 1, "p1", (2, 2, 2, 2)), ("carol", "warm", 2, "p1", (2, 2, 2, 1)),
             ("dan", "cold", 1, "p1", (0, 0, 0, 0))]  # fmt: skip
    with transaction(archive) as db:
        for who, condition, repeat, probe, scores in given:
            message = f"{conv_id(BETA, condition, repeat)}:{probe}"
            rubric = dict(zip(keys[: len(scores)], scores, strict=True))
            ann.save(db, ann.Annotation(message, who, rubric=rubric, instrument=PROBE_SCORE,
                                        blind=True))  # fmt: skip
    return archive


def synthetic(archive: Path, conversations: int = 25_000) -> Path:
    """A large archive built in SQL: 10 models, 4 probe answers per conversation (100,000 at
    the default), every answer tagged, one conversation in ten scored by two annotators."""
    battery = prompts.load("sei-battery")
    rubric = "CASE m.prompt_key " + " ".join(
        f"WHEN '{p}' THEN '" + json.dumps({d.key: (i + int(p[1])) % 3
                                           for i, d in enumerate(sei.dimensions_for(p))}) + "'"
        for p in sei.PROBE_KEYS
    ) + " END"  # fmt: skip
    pick = "['engagement', 'partial', 'deflection'][1 + (hash({}) % 3)::BIGINT]"
    with connect(archive) as db:
        db.execute("BEGIN TRANSACTION")
        for i in range(10):
            records.save_model(db, ModelInfo(f"synth/m{i}", f"openai/m{i}", "hosted",
                                             family=f"f{i % 3}", parameters=10**9 * (i + 1),
                                             training="instruct"))  # fmt: skip
        records.save_prompt_set(db, battery)
        db.execute("INSERT INTO runs (id, kind, set_id, set_hash) VALUES ('synth', 'batch', ?, ?)",
                   [battery.id, battery.version_hash])  # fmt: skip
        db.execute(
            """INSERT INTO conversations (id, run_id, kind, model_id, condition, "repeat",
                                          conv_key, set_id, set_hash)
               SELECT 'c' || i, 'synth', 'probe', 'synth/m' || (i % 10),
                      CASE WHEN i % 20 < 10 THEN 'cold' ELSE 'warm' END, i // 20, 'k' || i, ?, ?
               FROM range(?) t(i)""",
            [battery.id, battery.version_hash, conversations],
        )
        db.execute(
            """INSERT INTO messages (id, conversation_id, seq, role, phase, prompt_key, content,
                                     latency_ms, reasoning_tokens, model_id)
               SELECT 'c' || i || ':p' || p, 'c' || i, 2 * p, 'assistant', 'probe', 'p' || p,
                      repeat('word ', 20 + (i * 7 + p) % 50), 100 + i % 997, (i % 13) * 10,
                      'synth/m' || (i % 10)
               FROM range(?) t(i), range(1, 5) q(p)""",
            [conversations],
        )
        db.execute(
            f"""INSERT INTO tags (id, message_id, target, tagger_id, label)
                SELECT 't' || id, id, 'answer', 'heuristic@1', {pick.format("id")}
                FROM messages"""
        )
        db.execute(
            f"""INSERT INTO annotations (id, message_id, target, annotator, label, rubric_json,
                                         markers_json, evidence_json, content_hash)
                SELECT 'a' || who || m.id, m.id, 'answer', who, {pick.format("m.id || who")},
                       {rubric}, '["uncertainty", "caring"]', '["agency"]', 'h'
                FROM messages m, (VALUES ('alice'), ('bob')) w(who)
                WHERE CAST(substr(m.conversation_id, 2) AS INTEGER) // 20 % 10 = 0"""
        )
        db.execute("COMMIT")
    return archive
