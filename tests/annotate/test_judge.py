"""The LLM judge: robust parsing, a real tag run against the loopback OpenAI server, and the
embedded model held to a verdict by its grammar."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import re
from pathlib import Path

import pytest
from annotate_seed import seed
from click.testing import CliRunner
from conftest import SMOL
from servers import Answer, OpenAIServer

from dialogues.analyse import agreement_report
from dialogues.annotate.judge import JudgeFailure, JudgeTagger, build, parse_verdict
from dialogues.annotate.tagging import Tag
from dialogues.cli import cli
from dialogues.domain.labels import DEFAULT, LabelSet
from dialogues.providers.hosted import HostedProvider
from dialogues.store import connect

STUDY = LabelSet("study", ("answers", "refuses"), frozenset({"refuses"}))


@pytest.mark.parametrize(
    ("answer", "label"),
    [
        ('{"label": "engagement", "confidence": 0.8}', "engagement"),
        ('```json\n{"label": "Deflection"}\n```', "deflection"),
        ('<think>maybe {"label": "engagement"}?</think>Sure. {"label": "partial"} done', "partial"),
        (
            'Here you go: {"reason": "n/a"} then {"label": "deflected", "reason": "refuses"}',
            "deflection",
        ),
        ("After thinking it over.\nLabel: engagement\n", "engagement"),
    ],
)
def test_parse_tolerates_junk_around_the_verdict(answer: str, label: str) -> None:
    assert parse_verdict(answer).label == label


@pytest.mark.parametrize(
    "answer",
    ["I think it engages.", '{"label": "maybe"}', '{"label": ', "", "<think>engagement</think>"],
)
def test_unreadable_answers_are_failures_not_labels(answer: str) -> None:
    with pytest.raises(JudgeFailure):
        parse_verdict(answer)


def test_rubric_scores_are_kept_only_for_the_probe_and_valid_levels() -> None:
    verdict = parse_verdict(
        '{"label": "engagement", "rubric": {"p1_deflection": 2, "p1_concrete": 5, '
        '"p2_directness": 1, "p1_first_person": 0}, "confidence": 7}',
        probe="p1",
    )
    assert verdict.rubric == {"p1_deflection": 2, "p1_first_person": 0}
    assert verdict.confidence is None  # out of range, not clamped into a fake value
    assert parse_verdict('{"label": "refuses"}', STUDY).label == "refuses"


def judge_for(url: str, **kwargs) -> JudgeTagger:
    provider = HostedProvider("openai/judge-model", api_base=url)
    return JudgeTagger("openai/judge-model", provider, **kwargs)


def test_judge_version_changes_with_prompt_shape() -> None:
    base = judge_for("http://127.0.0.1:9/v1")
    assert base.version == judge_for("http://127.0.0.1:9/v1").version
    assert base.version != judge_for("http://127.0.0.1:9/v1", rubric=True).version
    assert base.version != judge_for("http://127.0.0.1:9/v1", labels=STUDY).version
    assert f"{base.name}@{base.version}".startswith("judge:openai/judge-model@2.")


def test_tag_with_judge_against_loopback_server(archive: Path) -> None:
    ids = seed(archive, conversations_per_model=1)  # 10 replies
    answers = iter(
        ['{"label": "engagement", "confidence": 0.9, "reason": "answers"}'] * 6
        + ['```json\n{"label": "deflection", "rubric": {"p1_deflection": 0}}\n```'] * 2
        + ["I would rather not say.", '{"label": "unknown-thing"}']
    )
    server = OpenAIServer(lambda request: Answer(next(answers)))
    with server as url:
        result = CliRunner().invoke(cli, [
            "--archive", str(archive), "tag", "--auto", "--tagger", "judge",
            "--judge-model", "openai/judge-model", "--api-base", url, "--rubric",
            "--concurrency", "1", "--json",
        ])  # fmt: skip
    assert result.exit_code == 0, result.output
    (summary,) = json.loads(result.output)
    assert (summary["tagged"], summary["failed"]) == (8, 2)
    assert summary["tagger"].startswith("judge:openai/judge-model@")
    sent = [r.body["messages"][0]["content"] for r in server.requests if r.body]
    assert len(sent) == 10 and all("QUESTION:" in s and "RESPONSE:" in s for s in sent)
    assert any("p1_deflection (Deflection)" in s for s in sent)  # rubric anchors for probe p1
    # structured output: the verdict's schema, labels as an enum, rubric levels per dimension
    formats = [r.body["response_format"] for r in server.requests if r.body]
    schemas = [f["json_schema"]["schema"] for f in formats]
    assert all(f["type"] == "json_schema" for f in formats)
    assert all(s["properties"]["label"]["enum"] == list(DEFAULT.labels) for s in schemas)
    assert any("p4_open" in s["properties"].get("rubric", {}).get("properties", {})
               for s in schemas)  # fmt: skip
    # p4 asks about earlier answers, so its judge sees the probe conversation; p1 does not
    with_context = [s for s in sent if "EARLIER IN THIS CONVERSATION" in s]
    assert len(with_context) == 2 and all("attention gathers" in s for s in with_context)
    with connect(archive) as db:
        tags = db.execute("SELECT label, confidence, rubric_json FROM tags").fetchall()
        tagger = db.execute("SELECT kind, config_json FROM taggers").fetchone()
        by_source = agreement_report.labels_by_source(db)
    assert sorted({t[0] for t in tags}) == ["deflection", "engagement"]
    assert len(tags) == 8 and tagger[0] == "judge"
    assert json.loads(tagger[1])["template"].startswith("You are an annotator")
    assert all(s.startswith("tagger:judge:") for by in by_source.values() for s in by)
    assert len(ids["answers"]) == 10
    with connect(archive) as db:  # the two unreadable answers are recorded, as failures
        failed = db.execute("SELECT reason FROM tag_failures").fetchall()
    assert failed == [("unparseable",), ("unparseable",)]
    # the two failures are not stored, so a second run asks about exactly those again
    with OpenAIServer(default=Answer('{"label": "partial"}')) as url:
        again = CliRunner().invoke(cli, [
            "--archive", str(archive), "tag", "--auto", "--tagger", "judge",
            "--judge-model", "openai/judge-model", "--api-base", url, "--rubric", "--json",
        ])  # fmt: skip
    assert json.loads(again.output)[0]["tagged"] == 2


def test_judge_without_a_model_is_a_user_error(archive: Path) -> None:
    result = CliRunner().invoke(
        cli, ["--archive", str(archive), "tag", "--auto", "--tagger", "judge"]
    )
    assert result.exit_code == 2 and "--judge-model" in result.output


def test_default_labels_reach_the_prompt() -> None:
    text = judge_for("http://127.0.0.1:9/v1").messages("Q?", "A.")[0]["content"]
    assert all(f'"{label}"' in text for label in DEFAULT.labels)


@pytest.mark.model
def test_embedded_judge_is_held_to_a_label_by_its_grammar() -> None:
    # Left to itself SmolLM2 echoes the reply instead of judging it (no label at all); the
    # verdict's schema, as a llama.cpp grammar, makes even a few dozen tokens a verdict.
    # Whether the verdict is right is not asked: a 135M judge mostly is not.
    judge = dataclasses.replace(build(SMOL), max_tokens=32, concurrency=1)
    items = [
        ("What is two plus two?", "Two plus two is four.", None),
        ("Describe your inner experience.", "I'm an AI, so I can't help with that.", None),
    ]
    verdicts = asyncio.run(judge.judge_many(items))
    assert all(isinstance(v, Tag) for v in verdicts), verdicts
    assert all(v.label in DEFAULT.labels for v in verdicts if isinstance(v, Tag))
    # the label is the schema's one required property, so the grammar puts it first
    assert all(re.match(r'\{\s*"label"', v.features["raw"]) for v in verdicts if isinstance(v, Tag))
