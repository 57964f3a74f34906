"""Intervals over clusters and paired tests, checked against direct scipy/statsmodels calls."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats
from statsmodels.stats.contingency_tables import mcnemar
from statsmodels.stats.multitest import multipletests

from dialogues.analyse import inference, intervals, outcomes, power, scores
from dialogues.domain.labels import DEFAULT, LabelSet


def clustered(n_prompts: int, repeats: int, effect: float, sd: float, seed: int) -> pd.DataFrame:
    """Paired cold/warm answers with a prompt effect on the logit scale."""
    rng = np.random.default_rng(seed)
    rows = []
    for p in range(n_prompts):
        u = rng.normal(0, sd)
        for r in range(repeats):
            for condition, shift in (("cold", 0.0), ("warm", effect)):
                chance = 1 / (1 + np.exp(-(-0.5 + u + shift)))
                y = float(rng.random() < chance)
                rows.append({"model": "m", "source": "s", "condition": condition, "set_id": "x",
                             "prompt_key": f"p{p}", "repeat": r, "y": y, "engaged": 1 - y})  # fmt: skip
    return pd.DataFrame(rows)


def pairs_of(a: list[int], b: list[int], prompts: list[str]) -> pd.DataFrame:
    return pd.DataFrame({"a": a, "b": b, "set_id": "x", "prompt_key": prompts})


def test_mcnemar_equals_the_binomial_test_on_discordant_pairs():
    a = [1, 1, 0, 0, 0, 1, 0, 0, 0, 0, 1, 0]
    b = [1, 0, 1, 1, 1, 1, 1, 0, 1, 0, 1, 1]
    found = inference.paired_binary(pairs_of(a, b, [f"p{i}" for i in range(12)]))
    only_a = sum(x == 1 and y == 0 for x, y in zip(a, b, strict=True))
    only_b = sum(x == 0 and y == 1 for x, y in zip(a, b, strict=True))
    assert found["p"] == pytest.approx(stats.binomtest(only_b, only_a + only_b, 0.5).pvalue)
    assert found["estimate"] == pytest.approx(np.mean(b) - np.mean(a))
    low, high = found["ci"]
    assert low < found["estimate"] < high


def test_the_difference_interval_is_scipys_cluster_bootstrap():
    data = clustered(30, 3, 0.8, 1.0, seed=3)
    pairs = inference._matched(data, "y", inference.PAIR, "condition", "cold", "warm")
    found = inference.paired_binary(pairs, seed=11)
    per = pairs.assign(d=pairs.b - pairs.a).groupby(["set_id", "prompt_key"])["d"]
    sums, counts = per.sum().to_numpy(float), per.count().to_numpy(float)
    direct = stats.bootstrap((sums, counts), lambda s, c, axis=-1: s.sum(axis) / c.sum(axis),
                             paired=True, vectorized=True, n_resamples=inference.N_RESAMPLES,
                             method="BCa", rng=np.random.default_rng(11))  # fmt: skip
    assert found["ci"] == pytest.approx(
        (direct.confidence_interval.low, direct.confidence_interval.high)
    )


def test_a_cluster_interval_is_wider_than_wilson_when_prompts_differ():
    cold = clustered(40, 5, 0.0, 2.0, seed=5).query("condition == 'cold'")
    r = inference.cluster_rate(cold)
    wilson = scores.wilson(int(cold.y.sum()), len(cold))
    assert r.n == 200 and r.n_clusters == 40 and r.reason is None
    assert (r.high - r.low) > 1.3 * (wilson[1] - wilson[0])


def test_a_rate_without_variation_or_with_few_prompts_says_so():
    none = pd.DataFrame({"set_id": "x", "prompt_key": [f"p{i}" for i in range(10)], "y": 0.0})
    r = inference.cluster_rate(none)
    assert r.estimate == 0 and r.low == 0 and r.high == pytest.approx(scores.wilson(0, 10)[1])
    assert "Wilson over prompts" in r.method
    few = none.head(3).assign(y=[0.0, 1.0, 1.0])
    r = inference.cluster_rate(few)
    assert r.low is None and "too few" in r.reason


def test_too_few_pairs_or_no_discordant_pairs_give_a_reason_not_a_p():
    few = inference.paired_binary(pairs_of([0, 1, 0], [1, 1, 1], ["a", "b", "c"]))
    assert few["p"] is None and "too few" in few["reason"]
    same = inference.paired_binary(pairs_of([0, 1] * 5, [0, 1] * 5, list("abcdefghij")))
    assert same["p"] is None and "no discordant" in same["reason"] and same["estimate"] == 0


def test_paired_t_and_wilcoxon_are_scipys():
    a = [2.1, 3.4, 1.9, 4.0, 2.8, 3.1, 2.2]
    b = [3.0, 4.1, 2.0, 5.2, 3.9, 3.3, 3.5]
    t = inference.paired_continuous(a, b)
    direct = stats.ttest_rel(b, a)
    assert t["p"] == pytest.approx(direct.pvalue)
    ci = direct.confidence_interval()
    assert t["ci"] == pytest.approx((ci.low, ci.high))
    w = inference.paired_continuous(a, b, test="wilcoxon")
    assert w["p"] == pytest.approx(stats.wilcoxon(b, a).pvalue)
    assert inference.paired_continuous([1.0], [2.0])["reason"]
    flat = inference.paired_continuous([1.0, 2.0, 3.0], [2.0, 3.0, 4.0])
    assert flat["p"] is None and "no variation" in flat["reason"]


def test_mean_t_is_the_t_interval_and_n_1_has_none():
    values = [4.2, 5.1, 3.9]
    r = intervals.mean_t(values)
    low, high = stats.t.interval(0.95, 2, loc=np.mean(values), scale=stats.sem(values))
    assert (r.low, r.high) == pytest.approx((low, high))
    assert intervals.mean_t([5.0]).reason.startswith("n = 1")


@pytest.mark.parametrize("correction,method", [("holm", "holm"), ("bh", "fdr_bh")])
def test_adjusted_p_is_multipletests_per_family(correction, method):
    base = dict(model=None, a="x", b="y", source="s", condition=None, n_pairs=10, n_clusters=10,
                estimate=0.1, ci=None, p_adjusted=None, method="m", ci_method="c")  # fmt: skip
    ps = [0.01, 0.04, 0.03, 0.2]
    found = [inference.Contrast(kind="models", metric="deflection", p=p, **base) for p in ps]
    found.append(inference.Contrast(kind="conditions", metric="deflection", p=0.04, **base))
    found.append(inference.Contrast(kind="models", metric="deflection", p=None, **base))
    adjusted = inference.adjust(found, correction)
    expected = multipletests(ps, method=method)[1]
    assert [c.p_adjusted for c in adjusted[:4]] == pytest.approx(list(expected))
    assert adjusted[4].p_adjusted == pytest.approx(0.04)  # a family of one
    assert adjusted[5].p_adjusted is None


def test_a_large_simulated_effect_is_found():
    data = clustered(40, 3, 2.0, 1.0, seed=9)
    (c,) = inference.adjust(inference.condition_contrasts(data))
    assert c.p_adjusted < 0.001 and c.ci[0] > 0


def test_the_paired_test_rejects_a_null_effect_at_about_the_nominal_rate():
    rate = power.simulate(0.3, 0.0, 30, 3, prompt_sd=1.5, n_sims=4000, seed=2)
    assert 0.02 <= rate <= 0.06


def test_vectorised_mcnemar_matches_statsmodels():
    only_a, only_b = np.array([0, 3, 7, 1]), np.array([0, 9, 7, 12])
    direct = [1.0] + [mcnemar([[0, x], [y, 0]], exact=True).pvalue for x, y in
                      zip(only_a[1:], only_b[1:], strict=True)]  # fmt: skip
    assert power.mcnemar_p(only_a, only_b) == pytest.approx(direct)


def test_conditions_are_set_against_the_reference_cold_by_default():
    assert inference.reference_first(["warm", "kind", "cold"], None) == ["cold", "kind", "warm"]
    assert inference.reference_first(["warm", "kind"], "kind") == ["kind", "warm"]


def test_labels_outside_the_label_set_are_missing_and_positive_labels_are_one():
    custom = LabelSet("s", ("engagement", "deflection", "no_answer"), frozenset({"deflection"}))
    raw = pd.DataFrame({"label": ["engagement", "deflected", "no_answer", "partial", None]})
    out = outcomes.outcomes(raw, custom)
    read = [x if isinstance(x, str) else None for x in out["label"]]
    assert read == ["engagement", "deflection", "no_answer", None, None]
    assert out["y"].tolist()[:3] == [0.0, 1.0, 0.0] and out["y"].isna().tolist()[3:] == [True] * 2
    assert out["engaged"].tolist()[:3] == [1.0, 0.0, 0.0]
    default = outcomes.outcomes(raw, DEFAULT)
    assert default["y"].tolist()[:2] == [0.0, 1.0] and default["y"][3] == 1.0  # partial counts
