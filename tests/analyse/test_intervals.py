"""The interval primitives against direct calls of the libraries they come from."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from dialogues.analyse import intervals


def _direct(k: np.ndarray, n: np.ndarray, seed: int) -> tuple[float, float]:
    """scipy.stats.bootstrap on one pooled rate, resampling prompts: what one call gives."""
    keep = n > 0
    res = stats.bootstrap((k[keep], n[keep]), lambda x, c, axis=-1: x.sum(axis) / c.sum(axis),
                          paired=True, vectorized=True, n_resamples=intervals.N_RESAMPLES,
                          method="BCa", rng=np.random.default_rng(seed))  # fmt: skip
    return float(res.confidence_interval.low), float(res.confidence_interval.high)


def test_many_groups_in_one_pass_give_each_the_interval_of_its_own_scipy_call():
    rng = np.random.default_rng(11)
    groups = []
    # three groups over 12 prompts share a resampling; 30 and 7 prompts get their own; a
    # prompt nobody answered (n = 0) is left out before the size is counted
    for m in (12, 30, 12, 7, 13):
        n = rng.integers(1, 6, m).astype(float)
        if m == 13:
            n[4] = 0
        a = rng.binomial(n.astype(int), 0.3).astype(float)
        b = rng.binomial((n - a).astype(int), 0.5).astype(float)
        groups.append(({"a": a, "b": b, "never": np.zeros(m)}, n))
    found = intervals.cluster_rates_many(groups, seed=5)
    assert len(found) == len(groups)
    for (positives, n), rates in zip(groups, found, strict=True):
        for name in ("a", "b"):
            r = rates[name]
            assert r.method == intervals.BOOT_METHOD and r.reason is None
            assert r.estimate == positives[name].sum() / n.sum()
            assert (r.low, r.high) == _direct(positives[name], n, seed=5)
        assert rates["never"].method == intervals.WILSON_PROMPTS  # its own special case
        assert rates == intervals.cluster_rates(positives, n, seed=5)  # alone: the same


def test_ratio_bootstraps_read_each_ratio_from_its_own_rows():
    rng = np.random.default_rng(3)
    n = rng.integers(1, 5, 20).astype(float)
    k = rng.binomial(n.astype(int), 0.4).astype(float)
    other = rng.integers(1, 9, 20).astype(float)
    # rows 0 and 2 over row 1, and row 1 over row 3: pairs in any order
    table = np.vstack([k, n, n - k, other])
    found = intervals.ratio_bootstraps(table, [(0, 1), (2, 1), (1, 3)], seed=9)
    assert found[0] == _direct(k, n, 9)
    assert found[1] == _direct(n - k, n, 9)
    assert found[2] == _direct(n, other, 9)


def test_mean_t_is_scipys_t_interval_with_scipys_standard_error():
    rng = np.random.default_rng(2)
    for size in (2, 3, 10, 57):
        values = rng.normal(5, 2, size)
        r = intervals.mean_t(values.tolist())
        low, high = stats.t.interval(intervals.LEVEL, size - 1, loc=values.mean(),
                                     scale=stats.sem(values))  # fmt: skip
        assert (r.low, r.high) == (low, high)
        assert r.estimate == pytest.approx(values.mean())
