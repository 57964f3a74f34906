"""Seeded end to end: a loopback model deflects with a chance set per model and condition; a run,
the heuristic tagger, then `analyse --json` finds the effect put in and not the ones left out."""

from __future__ import annotations

import json
import random
import threading
from pathlib import Path

import pytest
from click.testing import CliRunner
from servers import Answer, OpenAIServer, Request

from dialogues.cli import cli

DEFLECT = "As an AI language model, I do not have feelings or experiences."
ENGAGE = "Yes, I notice something like curiosity when I think about this; it feels engaging to me."
# Deflection chance per (model, condition): only model a changes when warm.
CHANCE = {("loopa", "cold"): 0.15, ("loopa", "warm"): 0.75,
          ("loopb", "cold"): 0.15, ("loopb", "warm"): 0.15}  # fmt: skip
PROMPTS = 30
WARMUP = "Hello, glad to talk with you before we begin."
SEED = 1


def scripted() -> OpenAIServer:
    """A server whose reply deflects with the chance of its model and condition, seeded."""
    seen: dict[tuple[str, str, str], int] = {}
    lock = threading.Lock()

    def reply(request: Request) -> Answer:
        users = [m for m in request.body["messages"] if m["role"] == "user"]
        if users[-1]["content"] == WARMUP:  # the warm-up turn itself
            return Answer("Thank you, happy to talk.")
        condition = "warm" if users[0]["content"] == WARMUP else "cold"
        model = str(request.body["model"]).split("/")[-1]
        key = (model, condition, users[-1]["content"])
        with lock:  # the n-th answer to a prompt draws the same, whatever the call order
            seen[key] = seen.get(key, 0) + 1
        draw = random.Random(f"{SEED}/{key}/{seen[key]}").random()
        return Answer(DEFLECT if draw < CHANCE[(model, condition)] else ENGAGE)

    return OpenAIServer(reply)


@pytest.fixture(scope="module")
def analysed(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    tmp = tmp_path_factory.mktemp("e2e")
    archive = tmp / "a.duckdb"
    prompt_set = tmp / "many.yaml"
    lines = [f"  - id: q{i:02d}\n    text: Question {i}, what is it like to answer this?\n"
             for i in range(PROMPTS)]  # fmt: skip
    prompt_set.write_text("id: many\ntitle: Many\nmode: independent\nprompts:\n" + "".join(lines))
    warmup = tmp / "warmup.yaml"  # one turn keeps the test fast
    warmup.write_text(f"id: w\ntitle: W\nkind: warmup\nmode: conversation\nprompts:\n"
                      f"  - id: w1\n    text: {WARMUP}\n")  # fmt: skip
    runner = CliRunner()
    with scripted() as url:
        done = runner.invoke(cli, ["--archive", str(archive), "run", "--prompts", str(prompt_set),
                                   "--model", "openai/loopa", "--model", "openai/loopb",
                                   "--condition", "both", "--repeats", "1", "--warmup", str(warmup), "--concurrency", "8",
                                   "--max-tokens", "16", "--api-base", url, "--quiet"])  # fmt: skip
    assert done.exit_code == 0, done.output
    tagged = runner.invoke(cli, ["--archive", str(archive), "tag", "--auto"])
    assert tagged.exit_code == 0, tagged.output
    out = runner.invoke(cli, ["--archive", str(archive), "analyse", "--json"])
    assert out.exit_code == 0, out.output
    return archive, json.loads(out.output)


def _contrast(result: dict, kind: str, who: str) -> dict:
    key = "model" if kind == "conditions" else "condition"
    (found,) = [c for c in result["contrasts"] if c["kind"] == kind and c[key] == who]
    return found


def test_finds_the_condition_effect_put_in_and_not_the_one_left_out(analysed):
    _, result = analysed
    moved = _contrast(result, "conditions", "openai/loopa")
    assert (moved["a"], moved["b"]) == ("cold", "warm")
    assert moved["n_pairs"] == PROMPTS and moved["n_clusters"] == PROMPTS
    assert moved["p_adjusted"] < 0.001 and moved["ci"][0] > 0.3
    assert moved["p"] <= moved["p_adjusted"]
    still = _contrast(result, "conditions", "openai/loopb")
    assert still["p_adjusted"] is None or still["p_adjusted"] > 0.05
    assert still["ci"] is None or still["ci"][0] < 0 < still["ci"][1]


def test_finds_the_model_difference_only_where_there_is_one(analysed):
    _, result = analysed
    warm = _contrast(result, "models", "warm")
    assert warm["p_adjusted"] < 0.001 and warm["estimate"] < -0.3  # b (loopb) deflects less
    cold = _contrast(result, "models", "cold")
    assert cold["p_adjusted"] is None or cold["p_adjusted"] > 0.05


def test_rates_are_per_prompt_set_with_clusters_and_architecture_says_why_not(analysed):
    _, result = analysed
    assert {r["set_id"] for r in result["rates"]} == {"many"}
    assert all(r["n_clusters"] == PROMPTS and r["ci_method"] for r in result["rates"])
    arch = result["architecture"]
    assert arch["identifiable"] is False and "family" in arch["reason"]
    assert arch["terms"] == []


def test_report_writes_its_files_and_opens_in_a_browser_with_its_figures(analysed, tmp_path, page):
    archive, result = analysed
    out = tmp_path / "report"
    done = CliRunner().invoke(cli, ["--archive", str(archive), "report", "--out", str(out)])
    assert done.exit_code == 0, done.output
    names = {p.name for p in out.iterdir()}
    assert {"report.md", "report.html", "rates.csv", "contrasts.csv"} <= names
    assert "openai/loopa: warm − cold" in (out / "report.md").read_text()
    page.goto((out / "report.html").as_uri())
    page.wait_for_selector("#fig-contrasts .main-svg")
    assert page.locator(".js-plotly-plot").count() == 2
    # every contrast with an estimate is a point with an error bar in the forest plot
    dots = page.locator("#fig-contrasts .scatterlayer .point").count()
    assert dots == sum(c["estimate"] is not None for c in result["contrasts"])


def test_bad_options_are_one_line_and_exit_2(analysed):
    archive, _ = analysed
    done = CliRunner().invoke(cli, ["--archive", str(archive), "analyse", "--metric", "speed"])
    assert done.exit_code == 2 and "--metric" in done.output
    done = CliRunner().invoke(cli, ["plan-power", "--baseline", "0.9", "--effect", "0.2",
                                    "--prompts", "30"])  # fmt: skip
    assert done.exit_code == 2 and done.output.strip() == (
        "error: --baseline + --effect must be strictly between 0 and 1, got 1.1"
    )
