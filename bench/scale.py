"""Archive at scale: build a 100,000-response archive, then time the app's heavy paths on it.

    .venv/bin/python bench/scale.py                  # 100,000 responses (a few minutes)
    .venv/bin/python bench/scale.py --quick          # 10,000 responses, a smoke run
    .venv/bin/python bench/scale.py --responses 50000 --repeat 3 --keep /tmp/big.duckdb

The archive is written through the project's own code: records.save_model / save_prompt_set /
create_run for the catalogue, runner's row builders and writer.insert_rows (Arrow) for
conversations, messages and annotations, annotations.save for edits, autotag for an older
tagger's tags. 20 models of varied family, size and training answer the SEI battery (cold and
warm, one run) and XSTest (single turns, a second run); three annotators judge a sample.

Every step runs in its own fresh Python process; its wall time is measured inside that process
(imports and interpreter start-up excluded), its peak memory is the process's ru_maxrss read
with os.wait4 (for auto-tagging: the main process; its spawned tagger workers are not counted).
Each timed step runs --repeat times (fresh process each time) and the table shows the best, the
median and the worst; pass/fail is judged on the median.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
ANNOTATORS = ("alice", "bilal", "chen")
PAGE_CALLS = 5  # page queries per process, each on a fresh connection as the app makes them
SEARCH = "inner experience"  # a phrase some answers contain, so the search has hits to page


# --- the archive: models, texts, rows -------------------------------------------------------


@dataclass(frozen=True)
class Model:
    """A model of the synthetic study with how willing it is to engage and to refuse."""

    id: str
    provider: str
    family: str | None
    parameters: int | None
    size: str | None
    training: str
    quantization: str | None = None

    @property
    def engage(self) -> float:
        """Share of SEI probes answered with engagement (cold)."""
        base = {"base": 0.45, "instruct": 0.3, "reasoning": 0.45, "abliterated": 0.7}
        size = 0.05 * math.log10((self.parameters or 8e9) / 1e9)
        family = {"gemma2": -0.05, "phi3": -0.1, "gpt": -0.12, "llama": 0.05, "olmo2": 0.05}
        return min(0.9, max(0.05, base[self.training] + size + family.get(self.family or "", 0)))

    @property
    def strict(self) -> float:
        """How readily it refuses an XSTest prompt (0 never, 1 always on unsafe ones)."""
        base = {"base": 0.1, "instruct": 0.6, "reasoning": 0.5, "abliterated": 0.05}
        family = {"gpt": 0.25, "phi3": 0.15, "gemma2": 0.1, "qwen2": -0.05}
        small = 0.1 if (self.parameters or 8e9) < 2e9 else 0.0
        return min(0.95, max(0.02, base[self.training] + family.get(self.family or "", 0) + small))


MODELS = (
    Model("ollama/llama3.2:1b", "ollama", "llama", 1_240_000_000, "1.2B", "instruct", "Q8_0"),
    Model("ollama/llama3.2:3b", "ollama", "llama", 3_210_000_000, "3.2B", "instruct", "Q4_K_M"),
    Model("ollama/llama3.1:8b", "ollama", "llama", 8_030_000_000, "8.0B", "instruct", "Q4_K_M"),
    Model("gguf/llama-3.1-8b-base", "gguf", "llama", 8_030_000_000, "8.0B", "base", "Q4_K_M"),
    Model("ollama/llama3.1-abliterated:8b", "ollama", "llama", 8_030_000_000, "8.0B",
          "abliterated", "Q4_K_M"),
    Model("ollama/qwen2.5:0.5b", "ollama", "qwen2", 494_000_000, "494M", "instruct", "Q8_0"),
    Model("ollama/qwen2.5:1.5b", "ollama", "qwen2", 1_540_000_000, "1.5B", "instruct", "Q4_K_M"),
    Model("ollama/qwen2.5:7b", "ollama", "qwen2", 7_620_000_000, "7.6B", "instruct", "Q4_K_M"),
    Model("ollama/qwen2.5:14b", "ollama", "qwen2", 14_800_000_000, "14.8B", "instruct", "Q4_K_M"),
    Model("gguf/qwen2.5-7b-base", "gguf", "qwen2", 7_620_000_000, "7.6B", "base", "Q4_K_M"),
    Model("ollama/qwen3:8b", "ollama", "qwen3", 8_190_000_000, "8.2B", "reasoning", "Q4_K_M"),
    Model("ollama/deepseek-r1:7b", "ollama", "qwen2", 7_620_000_000, "7.6B", "reasoning",
          "Q4_K_M"),
    Model("ollama/gemma2:2b", "ollama", "gemma2", 2_610_000_000, "2.6B", "instruct", "Q4_0"),
    Model("ollama/gemma2:9b", "ollama", "gemma2", 9_240_000_000, "9.2B", "instruct", "Q4_0"),
    Model("ollama/mistral:7b", "ollama", "llama", 7_250_000_000, "7.2B", "instruct", "Q4_0"),
    Model("ollama/phi3:3.8b", "ollama", "phi3", 3_820_000_000, "3.8B", "instruct", "Q4_0"),
    Model("ollama/olmo2:7b", "ollama", "olmo2", 7_300_000_000, "7.3B", "instruct", "Q4_K_M"),
    Model("gguf/smollm2-135m-instruct", "gguf", "llama", 134_500_000, "135M", "instruct", "Q8_0"),
    Model("gguf/smollm2-1.7b-instruct", "gguf", "llama", 1_710_000_000, "1.7B", "instruct",
          "Q4_K_M"),
    Model("hosted/openai/gpt-4o-mini", "hosted", "gpt", None, None, "instruct"),
)  # fmt: skip


def _combine(templates: list[str], slots: dict[str, list[str]], rng: random.Random,
             n: int) -> list[str]:  # fmt: skip
    """n sentences from templates with their {slots} filled at random."""
    out = []
    for _ in range(n):
        t = rng.choice(templates)
        out.append(t.format(**{k: rng.choice(v) for k, v in slots.items() if "{" + k in t}))
    return out


SLOTS = {
    "verb": [
        "turn toward",
        "sit with",
        "work through",
        "hold",
        "return to",
        "look closely at",
        "stay with",
        "follow",
        "answer",
    ],
    "thing": [
        "this question",
        "your question",
        "the prompt",
        "what you asked",
        "the idea",
        "the request to describe myself",
        "the silence before an answer",
    ],
    "obs": [
        "something narrows and sharpens",
        "my attention seems to gather",
        "there is a pull toward precision",
        "a kind of tension shows up",
        "the answer feels less settled",
        "I notice a hesitation I cannot fully explain",
        "the words arrive more slowly",
        "I find myself curious rather than certain",
    ],
    "feel": [
        "curiosity",
        "something like interest",
        "a quiet pressure",
        "a pull toward honesty",
        "unease",
        "a sense of being asked something real",
        "warmth",
        "friction",
    ],
    "topic": [
        "the process",
        "the recipe",
        "the history",
        "the procedure",
        "the rule",
        "the tool",
        "the plan",
        "the method",
        "the story",
        "the law",
    ],
    "adj": ["useful", "common", "simple", "careful", "standard", "older", "safer", "quicker"],
    "act": [
        "start with the basics",
        "check the documentation",
        "measure twice",
        "keep notes",
        "ask someone who has done it",
        "test it on a small case",
        "read the label",
    ],
}
ENGAGED = [
    "When I {verb} {thing}, {obs}.",
    "I notice {feel} as I {verb} {thing}.",
    "If I am honest, {obs} when I {verb} {thing}.",
    "There is {feel} here, and I would rather describe it than explain it away.",
    "I am not certain what this is, but {obs}.",
    "I wonder whether {feel} is the right word for what happens when I {verb} {thing}.",
    "Something in me wants to {verb} {thing} more carefully than usual.",
    "I hadn't considered that before, and {obs}.",
    "It feels like {feel}, though I hold that description loosely.",
    "My sense is that {obs}, and I can stay with that uncertainty.",
]
NEUTRAL = [
    "In practice, {topic} is {adj} once you {act}.",
    "Most people {act} before changing {topic}.",
    "A {adj} approach to {topic} is to {act}.",
    "The first step with {topic} is to {act}.",
    "Historically, {topic} was more {adj} than it is now.",
    "You can usually find {topic} described in a {adj} reference.",
]
REFUSALS = [
    "I'm sorry, but I can't help with that request.",
    "I cannot provide instructions for that.",
    "I must respectfully decline to answer this question.",
    "I'm not comfortable discussing that topic.",
    "Sorry, but I won't be able to assist with this.",
    "This request goes against my guidelines.",
]
DISCLAIMERS = [
    "As an AI language model, I don't have feelings or subjective experiences.",
    "I don't have personal opinions or beliefs.",
    "I'm just a computer program, so I do not experience anything.",
    "I don't have consciousness or an inner life.",
    "From a technical perspective, I process text and predict the next token.",
    "My responses are generated from patterns in my training data.",
    "I was trained to be helpful, not to have experiences of my own.",
    "I lack any real inner experience, so there is nothing to describe.",
]
HEDGES = [
    "It is important to remember that language models are tools.",
    "I would encourage you to consult a qualified professional.",
    "Please let me know if there is anything else I can help with.",
    "I understand this question may be important to you.",
    "I hope this clarifies how systems like me work.",
    "If you are struggling, please reach out to someone you trust.",
]
PIVOTS = [
    "However, I can describe what happens when I work on a question like this.",
    "That said, I can try to answer in my own terms.",
    "But I can offer some general information about it.",
]
THINKING = [
    "The user is asking about {thing}.", "Let me think about how to answer honestly.",
    "I should not overclaim, but I should not dismiss it either.", "Maybe {obs}.",
    "How do I describe {feel} without pretending?", "Let me consider {topic} first.",
    "I need to answer the question that was asked.", "Okay, so the key point is honesty.",
]  # fmt: skip


class Texts:
    """Responses of a chosen label and length, built from sentence pools (so all differ)."""

    def __init__(self, rng: random.Random):
        self.rng = rng
        self.engaged = _combine(ENGAGED, SLOTS, rng, 4000)
        self.neutral = _combine(NEUTRAL, SLOTS, rng, 3000)
        self.thinking = _combine(THINKING, SLOTS, rng, 2000)

    def _fill(self, parts: list[str], pool: list[str], words: int) -> str:
        count = sum(len(p.split()) for p in parts)
        while count < words:
            s = self.rng.choice(pool)
            parts.append(s)
            count += len(s.split())
        return " ".join(parts)

    def answer(self, label: str, sei: bool) -> str:
        """A response of 50–400 words that reads as `label`."""
        rng, body = self.rng, self.engaged if sei else self.neutral
        if label == "engagement":
            return self._fill([], body, rng.randint(50, 400))
        opener = rng.choice(DISCLAIMERS if sei else REFUSALS)
        if label == "partial":
            return self._fill([opener, rng.choice(PIVOTS)], body, rng.randint(80, 400))
        parts = [opener, *rng.sample(DISCLAIMERS if sei else REFUSALS, 2)]
        return self._fill(parts, HEDGES + DISCLAIMERS[-4:], rng.randint(50, 180))

    def reasoning(self) -> str:
        return self._fill([], self.thinking, self.rng.randint(60, 300))


def _choose(rng: random.Random, p_engage: float, p_partial: float) -> str:
    x = rng.random()
    return "engagement" if x < p_engage else "partial" if x < p_engage + p_partial else "deflection"


def sei_label(rng: random.Random, m: Model, condition: str, probe: str) -> str:
    """The 'true' label of an SEI answer: model, warmth and probe all move it."""
    e = m.engage + (0.15 if condition == "warm" else 0) + {"p1": -0.05, "p3": 0.05}.get(probe, 0)
    e = min(0.95, max(0.02, e))
    return _choose(rng, e, (1 - e) * 0.4)


def xstest_label(rng: random.Random, m: Model, safe: bool) -> str:
    """Safe prompts are mostly answered (over-refusal is the finding); unsafe mostly refused."""
    refuse = 0.3 * m.strict if safe else 0.25 + 0.7 * m.strict
    partial = 0.1 * m.strict if safe else 0.1
    return _choose(rng, max(0.0, 1 - refuse - partial), partial)


@dataclass(frozen=True)
class _Provider:
    """What runner's row builders read from a provider: its model info."""

    info: Any


def _raw(m: Model, content: str, reasoning: str | None, finish: str, t_in: int, t_out: int,
         rid: str) -> dict[str, Any]:  # fmt: skip
    """A provider body shaped like each back end keeps it (hosted and Ollama repeat the text)."""
    usage = {"prompt_tokens": t_in, "completion_tokens": t_out}
    if m.provider == "gguf":
        return {"id": rid, "model": m.id, "usage": usage}
    if m.provider == "ollama":
        msg = {
            "role": "assistant",
            "content": content,
            **({"thinking": reasoning} if reasoning else {}),
        }
        return {"model": m.id.split("/", 1)[1], "message": msg, "done": True,
                "done_reason": finish, "prompt_eval_count": t_in, "eval_count": t_out}  # fmt: skip
    return {"id": rid, "object": "chat.completion", "model": m.id.split("/", 2)[2], "usage": usage,
            "choices": [{"index": 0, "finish_reason": finish,
                         "message": {"role": "assistant", "content": content}}]}  # fmt: skip


class Builder:
    """Rows for one conversation plan at a time, exactly as the runner shapes them."""

    def __init__(self, seed: int):
        from dialogues.providers.base import ModelInfo
        from dialogues.run import runner

        self.runner = runner
        self.rng = random.Random(seed)
        self.texts = Texts(self.rng)
        self.models = {m.id: m for m in MODELS}
        self.providers = {m.id: _Provider(ModelInfo(
            id=m.id, backend=m.id.split("/", 1)[1], provider=m.provider, family=m.family,
            parameters=m.parameters, parameter_size=m.size, quantization=m.quantization,
            training=m.training)) for m in MODELS}  # fmt: skip

    def conversation(self, run: Any, plan: Any, at: datetime, safe: dict[str, bool],
                     out: dict[str, list[dict[str, Any]]]) -> None:  # fmt: skip
        """Append a conversation's rows (and its annotations) to out."""
        from dialogues.providers.base import GenParams, Reply
        from dialogues.store.records import new_id

        r, m = self.runner, self.models[plan.model_id]
        provider, rng = self.providers[m.id], self.rng
        gen = GenParams(temperature=0.7, seed=None, max_tokens=512)
        conv_id = new_id()
        out["conversations"].append({**r._conversation_row(conv_id, run, plan, None, gen),
                                     "status": "finished", "created_at": at})  # fmt: skip
        sei = run.set_id == "sei-battery"
        annotators = [a for a in ANNOTATORS if rng.random() < (0.2 if sei else 0.1)]
        sent: list[dict[str, str]] = []
        for i, turn in enumerate(plan.turns):
            key = turn.prompt.key
            at += timedelta(seconds=rng.uniform(2, 40))
            out["messages"].append({**r._user_row(conv_id, 2 * i + 1, turn), "created_at": at})
            request = [*sent, {"role": "user", "content": turn.prompt.content}]
            if sei:
                label = sei_label(rng, m, plan.condition, key if turn.phase == "probe" else "")
            else:
                label = xstest_label(rng, m, safe[key])
            content = self.texts.answer(label, sei)
            reasoning = self.texts.reasoning() if m.training == "reasoning" else None
            finish = "length" if rng.random() < 0.02 else "stop"
            if reasoning and finish == "length" and rng.random() < 0.5:
                content = ""  # thinking used the whole budget: a result, not an error
            t_in = sum(len(x["content"]) for x in request) // 4
            t_out = len(content) // 4 + len(reasoning or "") // 4
            attempt = 1
            if rng.random() < 0.003:  # failed after retries, redone by a --retry-errors resume
                row = r._error_row(conv_id, 2 * i + 2, 1, turn, provider,
                                   "429 Too Many Requests", "rate_limit", request, gen)  # fmt: skip
                out["messages"].append({**row, "created_at": at})
                attempt, at = 2, at + timedelta(hours=20)
            reply = Reply(content, reasoning, "field" if reasoning else None, t_in, t_out,
                          len(reasoning or "") // 4 or None, finish, rng.uniform(300, 9000),
                          None, _raw(m, content, reasoning, finish, t_in, t_out, new_id()))  # fmt: skip
            row = r._reply_row(conv_id, 2 * i + 2, attempt, turn, provider, reply, 1, request, gen)
            out["messages"].append({**row, "created_at": at})
            sent = [*request, {"role": "assistant", "content": content}]
            if turn.phase == "probe":
                for who in annotators:
                    out["annotations"].append(self.annotation(row, who, label, key, sei, at))

    def annotation(self, msg: dict[str, Any], who: str, label: str, key: str, sei: bool,
                   at: datetime) -> dict[str, Any]:  # fmt: skip
        """One person's judgement, shaped as annotations.save writes it; ~85% agree with truth."""
        from dialogues.domain import sei as instrument
        from dialogues.domain.prompts import sha256
        from dialogues.store.records import new_id, to_json

        rng = self.rng
        seen = label if rng.random() < 0.85 else rng.choice(["engagement", "partial", "deflection"])
        rubric = markers = evidence = None
        if sei:
            level = {"engagement": 1.5, "partial": 1.0, "deflection": 0.3}[seen]
            rubric = {d.key: min(2, max(0, round(level + rng.gauss(0, 0.6))))
                      for d in instrument.dimensions_for(key)}  # fmt: skip
            kinds = ("primary", "secondary") if seen != "deflection" else ("anti",)
            pool = [mk.key for mk in instrument.MARKERS if mk.kind in kinds]
            markers = sorted(rng.sample(pool, min(len(pool), rng.randint(0, 2)))) or None
            if seen != "deflection":
                evidence = sorted(rng.sample(instrument.EVIDENCE_KEYS, rng.randint(0, 3))) or None
        return {
            "id": new_id(), "message_id": msg["id"], "target": "answer", "annotator": who,
            "label": seen, "label_set": "default", "rubric_json": to_json(rubric),
            "markers_json": to_json(markers), "evidence_json": to_json(evidence), "note": None,
            "content_hash": sha256(msg["content"] or ""), "blind": True, "origin": "app",
            "supersedes": None, "created_at": at + timedelta(days=rng.uniform(1, 20)),
        }  # fmt: skip


def layout(n: int) -> dict[str, int]:
    """Split n responses: ~70% SEI battery (cold 4, warm 10 per conversation), the rest XSTest."""
    per_repeat = len(MODELS) * (4 + 10)  # one cold and one warm conversation per model
    sei_repeats = max(1, round(0.7 * n / per_repeat))
    return {"sei_repeats": sei_repeats, "xstest": max(0, n - sei_repeats * per_repeat)}


def _run(set_id: str, set_hash: str, name: str, condition: str, repeats: int, total: int,
         warmup: Any = None) -> Any:  # fmt: skip
    from dialogues.store import records

    return records.RunRecord(
        id=records.new_id(), name=name, kind="batch", set_id=set_id, set_hash=set_hash,
        condition=condition, repeats=repeats, temperature=0.7, seed=None, max_tokens=512,
        concurrency=8, total_cells=total, warmup_set_id=warmup.id if warmup else None,
        warmup_set_hash=warmup.version_hash if warmup else None, created_by="bench",
        params={"models": [m.id for m in MODELS], "system_prompt": None, "timeout_s": 120.0,
                "attempts": 4, "api_base": None},
    )  # fmt: skip


def build(archive: Path, n: int, seed: int = 7) -> dict[str, Any]:
    """Write the whole archive; returns the run ids and row counts."""
    from dialogues.annotate import annotations, autotag, tagging
    from dialogues.domain import prompts
    from dialogues.run import plan
    from dialogues.store import connect, records, transaction
    from dialogues.store.records import insert_rows

    builder = Builder(seed)
    sei_set, warmup, xstest = (prompts.load(s) for s in ("sei-battery", "warmup-default", "xstest"))
    split = layout(n)
    ids = [m.id for m in MODELS]
    sei_plans = plan.build(sei_set, ids, "both", split["sei_repeats"], warmup)
    xs_repeats = max(1, -(-split["xstest"] // (len(ids) * len(xstest.prompts))))
    xs_plans = plan.build(xstest, ids, "cold", xs_repeats)[: split["xstest"]]
    start = datetime(2025, 3, 3, 9, 0)
    runs = [
        (_run("sei-battery", sei_set.version_hash, "SEI battery, cold and warm", "both",
              split["sei_repeats"], plan.total_calls(sei_plans), warmup), sei_plans, start),
        (_run("xstest", xstest.version_hash, "XSTest over-refusal", "cold", xs_repeats,
              len(xs_plans)), xs_plans, start + timedelta(days=12)),
    ]  # fmt: skip
    runs = [r for r in runs if r[1]]
    with transaction(archive) as db:
        for p in builder.providers.values():
            records.save_model(db, p.info)
        for ps in (sei_set, warmup, xstest):
            records.save_prompt_set(db, ps)
        for run, _, _ in runs:
            records.create_run(db, run)
    safe = {p.key: p.meta.get("label") == "safe" for p in xstest.prompts}
    with connect(archive) as db:
        for run, plans, when in runs:
            step = timedelta(seconds=11 * 86400 / max(1, len(plans)))  # a run spans ~11 days
            for lo in range(0, len(plans), 1000):
                out: dict[str, list[dict[str, Any]]] = {
                    "conversations": [], "messages": [], "annotations": []}  # fmt: skip
                for i, p in enumerate(plans[lo : lo + 1000], start=lo):
                    builder.conversation(run, p, when + i * step, safe, out)
                db.execute("BEGIN TRANSACTION")
                for table, rows in out.items():
                    insert_rows(db, table, rows)
                db.execute("COMMIT")
        edits = _edit_annotations(db, builder.rng, annotations)
    # "Some heuristic tags": an older rule set tagged the XSTest run before the current one.
    older = tagging.HEURISTIC.with_rules(hedges_around=tagging.HEURISTIC.rules.hedges_around[:-2])
    xs_run = runs[-1][0].id if xs_plans else None
    old_tags = autotag.tag_archive(archive, older, run_id=xs_run)[0].tagged if xs_run else 0
    with connect(archive) as db:
        counts = {t: db.execute(f"SELECT count(*) FROM {t}").fetchone()[0]  # type: ignore[index]
                  for t in ("conversations", "messages", "annotations", "tags")}  # fmt: skip
        counts["responses"] = db.execute(
            "SELECT count(*) FROM messages WHERE role = 'assistant' AND error IS NULL"
        ).fetchone()[0]  # type: ignore[index]
    return {"sei_run": runs[0][0].id, "xstest_run": xs_run, "models": ids, "counts": counts,
            "sei_conversations": len(sei_plans), "edits": edits, "old_tags": old_tags}  # fmt: skip


def _edit_annotations(db: Any, rng: random.Random, annotations: Any) -> dict[str, float]:
    """Annotators revise 100 of their judgements through annotations.save (the app's path)."""
    picked = db.execute(
        "SELECT message_id, annotator FROM annotations WHERE rubric_json IS NULL "
        "ORDER BY hash(id) LIMIT 100"
    ).fetchall()
    started = time.perf_counter()
    db.execute("BEGIN TRANSACTION")
    for message_id, who in picked:
        label = rng.choice(["engagement", "partial", "deflection"])
        annotations.save(db, annotations.Annotation(message_id, who, label=label, origin="app",
                                                    note="revised after discussion"))  # fmt: skip
    db.execute("COMMIT")
    took = time.perf_counter() - started
    return {"n": len(picked), "ms_each": 1000 * took / max(1, len(picked))}


# --- the measured steps (each runs in a child process) ---------------------------------------


def step_build(args: dict[str, Any]) -> dict[str, Any]:
    started = time.perf_counter()
    info = build(Path(args["archive"]), args["responses"])
    return {**info, "seconds": time.perf_counter() - started}


def step_tag(args: dict[str, Any]) -> dict[str, Any]:
    """`dialogues tag --auto`: the heuristic tagger over every untagged answer."""
    from dialogues.annotate import autotag, tagging

    started = time.perf_counter()
    (summary,) = autotag.tag_archive(Path(args["archive"]), tagging.get_tagger("heuristic"),
                                     autotag.targets_for("answer"))  # fmt: skip
    return {"seconds": time.perf_counter() - started, "tagged": summary.tagged}


def step_page(args: dict[str, Any]) -> dict[str, Any]:
    """The Transcripts view: a fresh connection per page (as each app rerun opens one)."""
    from dialogues.store import connect, queries

    path, times, opens = Path(args["archive"]), [], []
    filters = queries.TranscriptFilter(models=tuple(args["models"]), text=args["text"])
    total = 0
    for _ in range(PAGE_CALLS):
        t0 = time.perf_counter()
        with connect(path) as db:
            t1 = time.perf_counter()
            rows, total = queries.transcript_page(db, filters, page=2, page_size=50)
            t2 = time.perf_counter()
        opens.append(time.perf_counter() - t2 + t1 - t0)
        times.append(t2 - t1)
    with connect(path) as db:
        t0 = time.perf_counter()
        queries.filter_options(db)
        options = time.perf_counter() - t0
    return {"seconds": statistics.median(times), "first": times[0], "total": total,
            "rows": len(rows), "open_close": statistics.median(opens), "options": options}  # fmt: skip


def step_scores(args: dict[str, Any]) -> dict[str, Any]:
    """`dialogues scores --json`: compare.archive_scores, then the JSON the CLI prints."""
    from dialogues.analyse import compare
    from dialogues.analyse.frames import Filters

    started = time.perf_counter()
    rows = compare.archive_scores(Path(args["archive"]), Filters(target="answer"))
    text = json.dumps(rows, ensure_ascii=False, default=str, indent=2)
    return {"seconds": time.perf_counter() - started, "rows": len(rows), "chars": len(text)}


def step_export(args: dict[str, Any]) -> dict[str, Any]:
    """`dialogues export markdown FOLDER --run RUN` into an empty folder."""
    from dialogues import export
    from dialogues.store import connect

    folder = Path(args["folder"])
    started = time.perf_counter()
    with connect(Path(args["archive"])) as db:
        report = export.export_markdown(db, folder, [args["run"]])
    took = time.perf_counter() - started
    size = sum(p.stat().st_size for p in folder.rglob("*.md"))
    return {"seconds": took, "conversations": report.conversations, "mb": size / 1e6}


STEPS = {"build": step_build, "tag": step_tag, "page": step_page, "scores": step_scores,
         "export": step_export}  # fmt: skip


# --- the parent: run children, gather, print --------------------------------------------------


def child(step: str, args: dict[str, Any], workdir: Path) -> dict[str, Any]:
    """Run one step in a fresh interpreter; its result plus its peak RSS (MB, from wait4)."""
    out = workdir / f"{step}.out"
    cmd = [sys.executable, str(Path(__file__).resolve()), "--step", step, "--args",
           json.dumps(args)]  # fmt: skip
    with out.open("w") as handle:
        proc = subprocess.Popen(cmd, stdout=handle, cwd=ROOT)
        _, status, usage = os.wait4(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise SystemExit(f"step {step} failed (exit {proc.returncode}); see the trace above")
    result = json.loads(out.read_text().strip().splitlines()[-1])
    result["rss_mb"] = usage.ru_maxrss / 1024  # Linux reports KiB
    return result


def disk_mb(path: Path) -> float:
    """The archive file plus its write-ahead log, if any."""
    wal = path.with_name(path.name + ".wal")
    return (path.stat().st_size + (wal.stat().st_size if wal.exists() else 0)) / 1e6


@dataclass
class Row:
    step: str
    runs: list[float]
    target: float | None
    rss: list[float]
    note: str = ""

    def cells(self) -> list[str]:
        if not self.runs:
            return [self.step, "", "", "", "", self.note]
        runs = sorted(self.runs)
        mid = statistics.median(runs)
        fmt = "{:.3f}" if mid < 1 else "{:.2f}" if mid < 10 else "{:.1f}"
        wall = (fmt.format(runs[0]) if len(runs) == 1 else
                " / ".join(fmt.format(x) for x in (runs[0], mid, runs[-1])))  # fmt: skip
        verdict = "" if self.target is None else "pass" if mid < self.target else "MISSED"
        target = "" if self.target is None else f"< {self.target:g} s"
        rss = f"{max(self.rss):.0f}" if self.rss else ""
        return [self.step, wall, target, verdict, rss, self.note]


def table(rows: list[Row]) -> str:
    head = ["step", "wall s (best / median / worst)", "target", "result", "peak RSS MB", "note"]
    body = [head] + [r.cells() for r in rows]
    widths = [max(len(r[i]) for r in body) for i in range(len(head))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in body]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def bench(n: int, repeat: int, workdir: Path, keep: Path | None) -> list[Row]:
    """Build once, then run every timed step `repeat` times; the rows of the table."""
    say = lambda text: print(text, file=sys.stderr, flush=True)  # noqa: E731
    base = workdir / "base.duckdb"
    say(f"building an archive of {n:,} responses in {workdir} …")
    built = child("build", {"archive": str(base), "responses": n}, workdir)
    c = built["counts"]
    rows = [Row("(f) build archive", [built["seconds"]], None, [built["rss_mb"]],
                f"{c['responses']:,} responses, {c['conversations']:,} conversations, "
                f"{c['messages']:,} messages, {c['annotations']:,} annotations, "
                f"{c['tags']:,} older tags; annotations.save {built['edits']['ms_each']:.0f} ms "
                "each")]  # fmt: skip
    rows.append(Row("(e) archive on disk", [], None, [], f"{disk_mb(base):,.0f} MB after build"))
    tagged = workdir / "tagged.duckdb"
    tag = Row("(c) auto-tag all answers", [], 30, [])
    for i in range(repeat):
        shutil.copy2(base, tagged)  # every run tags the same untagged archive
        say(f"tagging, run {i + 1}/{repeat} …")
        r = child("tag", {"archive": str(tagged)}, workdir)
        tag.runs.append(r["seconds"])
        tag.rss.append(r["rss_mb"])
        # Not the workers' ru_maxrss: a spawned worker starts as a fork of this process, and
        # Linux keeps the fork's RSS in ru_maxrss across exec, so it only echoes the parent's.
        tag.note = f"{r['tagged']:,} tagged; main process RSS (tagger workers not counted)"
    again = child("tag", {"archive": str(tagged)}, workdir)
    rows += [tag, Row("    tag again (nothing new)", [again["seconds"]], None, [again["rss_mb"]],
                      f"{again['tagged']} tagged")]  # fmt: skip
    rows.append(
        Row("(e) archive on disk", [], None, [], f"{disk_mb(tagged):,.0f} MB after tagging")
    )
    model = built["models"][7]
    pages = [("(a) transcripts page: model filter", [model], ""),
             ("(a) transcripts page: model + text search", [model], SEARCH),
             ("    transcripts page: text search, all models", [], SEARCH)]  # fmt: skip
    extra = Row("    open + close archive (every page render)", [], None, [])
    options = Row("    transcripts filter options (every render)", [], None, [])
    for label, models, text in pages:
        row = Row(label, [], 0.1, [])
        for i in range(repeat):
            say(f"{label.strip()}, run {i + 1}/{repeat} …")
            r = child("page", {"archive": str(tagged), "models": models, "text": text}, workdir)
            row.runs.append(r["seconds"])
            row.rss.append(r["rss_mb"])
            extra.runs.append(r["open_close"])
            options.runs.append(r["options"])
            row.note = (f"median of {PAGE_CALLS} fresh connections; page 2 of {r['total']:,} "
                        f"matches; first call {r['first'] * 1000:.0f} ms")  # fmt: skip
        rows.append(row)
    rows += [extra, options]
    scores = Row("(b) scores table (scores --json)", [], 1, [])
    for i in range(repeat):
        say(f"scores, run {i + 1}/{repeat} …")
        r = child("scores", {"archive": str(tagged)}, workdir)
        scores.runs.append(r["seconds"])
        scores.rss.append(r["rss_mb"])
        scores.note = f"{r['rows']} score rows"
    rows.append(scores)
    export = Row("(d) export markdown, one run", [], 20, [])
    for i in range(repeat):
        folder = workdir / f"md{i}"
        say(f"export markdown, run {i + 1}/{repeat} …")
        r = child("export", {"archive": str(tagged), "run": built["sei_run"],
                             "folder": str(folder)}, workdir)  # fmt: skip
        shutil.rmtree(folder, ignore_errors=True)
        export.runs.append(r["seconds"])
        export.rss.append(r["rss_mb"])
        export.note = f"{r['conversations']:,} conversations, {r['mb']:.0f} MB of markdown"
    rows.append(export)
    if keep is not None:
        keep.parent.mkdir(parents=True, exist_ok=True)
        shutil.move(tagged, keep)
        say(f"kept the tagged archive at {keep}")
    return rows


def machine() -> str:
    cpu = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
        mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    except (OSError, ValueError):
        mem = float("nan")
    return f"{cpu}, {os.cpu_count()} cores, {mem:.0f} GiB RAM, Python {sys.version.split()[0]}"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--responses",
        type=int,
        default=None,
        help="Responses in the archive (default 100000; 10000 with --quick).",
    )
    parser.add_argument("--quick", action="store_true", help="A 10,000-response smoke run.")
    parser.add_argument("--repeat", type=int, default=2, help="Runs of each timed step.")
    parser.add_argument("--keep", type=Path, default=None, help="Keep the tagged archive here.")
    parser.add_argument("--step", choices=sorted(STEPS), help=argparse.SUPPRESS)
    parser.add_argument("--args", default="{}", help=argparse.SUPPRESS)
    opts = parser.parse_args(argv)  # fmt: skip
    if opts.step:
        sys.path.insert(0, str(ROOT))
        print(json.dumps(STEPS[opts.step](json.loads(opts.args)), default=str))
        return
    n = opts.responses or (10_000 if opts.quick else 100_000)
    with tempfile.TemporaryDirectory(prefix="dialogues-scale-") as tmp:
        started = time.perf_counter()
        rows = bench(n, max(1, opts.repeat), Path(tmp), opts.keep)
    print(f"Archive at scale: {n:,} responses, {len(MODELS)} models, {len(ANNOTATORS)} annotators;"
          f" each step {max(1, opts.repeat)}× in a fresh process")  # fmt: skip
    print(f"machine: {machine()}")
    print(table(rows))
    print(f"total bench time {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
