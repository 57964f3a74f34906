"""Power planning: more data gives more power, and the plan reports where 80% is reached."""

from __future__ import annotations

import json

from click.testing import CliRunner

from dialogues.analyse import power
from dialogues.cli import cli


def test_power_grows_with_repeats_and_the_plan_stops_at_the_target():
    low = power.simulate(0.2, 0.15, 20, 1, n_sims=400)
    high = power.simulate(0.2, 0.15, 20, 6, n_sims=400)
    assert low < 0.5 < high
    p = power.plan(0.2, 0.15, prompts=20, n_sims=400)
    assert p.solve_for == "repeats" and p.needed is not None
    assert p.rows[-1]["power"] >= 0.8 and all(r["power"] < 0.8 for r in p.rows[:-1])
    assert p.rows[-1]["repeats"] == p.needed


def test_plan_power_prints_json_for_prompts():
    done = CliRunner().invoke(cli, ["plan-power", "--baseline", "0.3", "--effect", "0.3",
                                    "--repeats", "1", "--sims", "200", "--json"])  # fmt: skip
    assert done.exit_code == 0, done.output
    found = json.loads(done.output)
    assert found["solve_for"] == "prompts" and found["needed"] == found["rows"][-1]["prompts"]
    assert found["rows"][-1]["power"] >= 0.8


def test_an_effect_too_small_to_reach_says_so():
    p = power.plan(0.5, 0.01, prompts=5, n_sims=100, up_to=3)
    assert p.needed is None and "not reached by 3 repeats" in p.reason
