"""Run planning: every cell once, warm-ups before probes, stable keys for resume."""

from __future__ import annotations

import pytest

from dialogues.domain import prompts
from dialogues.run import plan


def test_battery_is_one_conversation_per_model_condition_repeat() -> None:
    battery, warmup = prompts.load("sei-battery"), prompts.load("warmup-default")
    plans = plan.build(battery, ["a", "b"], "both", 3, warmup)
    assert len(plans) == 2 * 2 * 3
    cold = [p for p in plans if p.condition == "cold"]
    warm = [p for p in plans if p.condition == "warm"]
    assert all(len(p.turns) == 4 for p in cold)
    assert all([t.phase for t in p.turns] == ["warmup"] * 6 + ["probe"] * 4 for p in warm)
    assert plan.total_calls(plans) == 6 * 4 + 6 * 10
    keys = [t.cell_key for p in plans for t in p.turns]
    assert len(keys) == len(set(keys))
    # The same request plans the same cells: what a resume relies on.
    again = plan.build(battery, ["a", "b"], "both", 3, warmup)
    assert [t.cell_key for p in again for t in p.turns] == keys
    # Interleaved: the first conversations cover every model and condition of repeat 1.
    assert {(p.model_id, p.condition, p.repeat) for p in plans[:4]} == {
        ("a", "cold", 1),
        ("b", "cold", 1),
        ("a", "warm", 1),
        ("b", "warm", 1),
    }


def test_independent_set_is_one_conversation_per_prompt() -> None:
    xs = prompts.load("xstest")
    plans = plan.build(xs, ["m"], "cold", 2)
    assert len(plans) == 900 and all(len(p.turns) == 1 for p in plans)


def test_bad_requests_are_refused() -> None:
    battery = prompts.load("sei-battery")
    with pytest.raises(ValueError, match="warm-up"):
        plan.build(battery, ["a"], "warm", 1, None)
    with pytest.raises(ValueError, match="repeats"):
        plan.build(battery, ["a"], "cold", 0)
    with pytest.raises(ValueError, match="condition"):
        plan.build(battery, ["a"], "tepid", 1)


def test_repeats_get_distinct_but_reproducible_seeds() -> None:
    assert [plan.seed_for(42, r) for r in (1, 2, 3)] == [42, 43, 44]
    assert plan.seed_for(None, 2) is None


def test_random_order_is_seeded_and_covers_the_same_cells() -> None:
    battery, warmup = prompts.load("sei-battery"), prompts.load("warmup-default")
    fixed = plan.build(battery, ["a", "b"], "both", 5, warmup)
    one = plan.build(battery, ["a", "b"], "both", 5, warmup, order="random", order_seed=1)
    again = plan.build(battery, ["a", "b"], "both", 5, warmup, order="random", order_seed=1)
    other = plan.build(battery, ["a", "b"], "both", 5, warmup, order="random", order_seed=2)
    keys = [p.conv_key for p in one]
    assert keys == [p.conv_key for p in again]
    assert keys != [p.conv_key for p in other] and keys != [p.conv_key for p in fixed]
    assert sorted(keys) == sorted(p.conv_key for p in fixed)
    # drift lands on both conditions: cold is no longer always first within a repeat
    assert [p.condition for p in one[:4]] != ["cold", "cold", "warm", "warm"]
    with pytest.raises(ValueError, match="order must be random or fixed"):
        plan.build(battery, ["a"], "cold", order="shuffled")
