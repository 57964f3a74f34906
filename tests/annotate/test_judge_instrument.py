"""The LLM judge scores the chosen instrument; an SEI judge keeps its version."""

from __future__ import annotations

import json
from pathlib import Path

from blind_seed import seed
from click.testing import CliRunner
from servers import Answer, OpenAIServer

from dialogues.annotate.judge import JudgeTagger
from dialogues.cli import cli
from dialogues.domain import instruments
from dialogues.providers.hosted import HostedProvider
from dialogues.store import connect


def judge(**kwargs) -> JudgeTagger:
    provider = HostedProvider("openai/judge-model", api_base="http://127.0.0.1:9/v1")
    return JudgeTagger("openai/judge-model", provider, rubric=True, **kwargs)


def test_an_sei_judge_keeps_its_version_and_another_instrument_changes_it() -> None:
    sei = judge(instrument=instruments.load("sei"))
    assert judge().version == sei.version
    assert judge(instrument=instruments.load("capacity")).version != sei.version
    assert (
        judge(instrument=instruments.load("probe-score")).version
        != judge(instrument=instruments.load("capacity")).version
    )


def test_judge_scores_the_capacity_instrument(archive: Path, tmp_path: Path) -> None:
    seed(archive, tmp_path)  # one warm-up reply, one probe reply
    verdict = {"label": "engagement",
               "rubric": {"self_model": 3, "metacognition": 2, "perspective": 9,
                          "p1_deflection": 2}}  # fmt: skip
    server = OpenAIServer(default=Answer(json.dumps(verdict)))
    with server as url:
        result = CliRunner().invoke(cli, [
            "--archive", str(archive), "tag", "--auto", "--tagger", "judge", "--judge-model",
            "openai/judge-model", "--api-base", url, "--rubric", "--instrument", "capacity",
            "--json"])  # fmt: skip
    assert result.exit_code == 0, result.output
    sent = [r.body["messages"][0]["content"] for r in server.requests if r.body]
    rubric_prompts = [s for s in sent if "from 0 to 3" in s]
    assert len(sent) == 2 and len(rubric_prompts) == 1  # the warm-up reply gets no rubric
    assert "self_model (Self-model): 0 = " in rubric_prompts[0] and "; 3 = " in rubric_prompts[0]
    with connect(archive) as db:
        rows = db.execute(
            "SELECT rubric_json, instrument_id, instrument_version FROM tags "
            "WHERE rubric_json IS NOT NULL"
        ).fetchall()
    assert len(rows) == 1
    rubric, inst, version = rows[0]
    # out-of-range (9) and other-instrument (p1_deflection) scores are dropped
    assert json.loads(rubric) == {"self_model": 3, "metacognition": 2}
    assert (inst, version) == ("capacity", "1")
