"""Intervals that respect the design: a cluster bootstrap over prompts, Student's t over repeats.

The primitives every figure's interval comes from (scores, Compare, `scores --json`, the
analysis), so each says its method and its number of clusters the same way:
- a rate over answers clustered by prompt: scipy.stats.bootstrap, BCa, resampling prompts
  (per-prompt positive counts and answer counts, statistic = pooled rate); a rate of exactly
  0 or 1 has no spread to resample, so its interval is Wilson's with each prompt one trial
  (statsmodels proportion_confint), conservative, and the method says so; fewer than
  MIN_CLUSTERS prompts give no interval and a reason;
- a mean over conversations (the SEI over repeats): Student's t (scipy.stats.t); with fewer
  than two, or no spread, no interval and a reason.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import stats
from statsmodels.stats.proportion import proportion_confint

from dialogues.analyse import bootstrap

LEVEL = bootstrap.LEVEL
N_RESAMPLES = bootstrap.N_BOOT
MIN_CLUSTERS = 5
SEED = bootstrap.SEED
# Resamples drawn and evaluated this many at a time: the same draws and interval as all at
# once (one generator, drawn in order). On 140 prompts a call took 8 ms at 200, 10 ms at 100
# and 18 ms with all 2,000 at once.
BATCH = 200
BOOT_METHOD = f"cluster bootstrap over prompts (BCa, {N_RESAMPLES} resamples)"
WILSON_PROMPTS = "Wilson over prompts (no variation: each prompt counted once)"
T_METHOD = "t-interval over conversations"


@dataclass(frozen=True)
class Interval:
    """An estimate with its interval, the unit it was computed over, and why one is missing."""

    estimate: float | None
    low: float | None
    high: float | None
    n: int
    n_clusters: int
    method: str
    reason: str | None = None


def pooled_bootstrap(
    sums: np.ndarray, counts: np.ndarray, *, seed: int = SEED, level: float = LEVEL
) -> tuple[float, float] | None:
    """BCa bootstrap interval of sum(sums)/sum(counts), resampling clusters; None if degenerate."""
    return pooled_bootstraps([sums], counts, seed=seed, level=level)[0]


def pooled_bootstraps(
    sums: list[np.ndarray], counts: np.ndarray, *, seed: int = SEED, level: float = LEVEL
) -> list[tuple[float, float] | None]:
    """pooled_bootstrap for several numerators over the same clusters, in one resampling."""
    table = np.vstack([*(np.asarray(s, dtype=float) for s in sums), np.asarray(counts, float)])
    return ratio_bootstraps(table, [(j, len(sums)) for j in range(len(sums))], seed=seed,
                            level=level)  # fmt: skip


def ratio_bootstraps(
    table: np.ndarray, ratios: Sequence[tuple[int, int]], *, seed: int = SEED,
    level: float = LEVEL,
) -> list[tuple[float, float] | None]:  # fmt: skip
    """BCa intervals of sum(table[a]) / sum(table[b]) for each pair (a, b), resampling the
    columns (the clusters) with scipy.stats.bootstrap; None where the interval is degenerate.

    One resampling serves every row, and each interval is the one a call of scipy on that
    ratio alone gives (same seed, same number of clusters: the same draws). The statistic reads
    the resampled cluster indices (as scipy's own paired resampling does) and takes each row's
    resampled sum as how often each cluster was drawn times the table, one matrix product for
    all rows instead of gathering every row's values 2,000 times.
    """
    table = np.asarray(table, dtype=float)
    m = table.shape[1]
    num = np.array([a for a, _ in ratios])
    den = np.array([b for _, b in ratios])
    columns = np.ascontiguousarray(table.T)  # clusters × rows

    def ratio(drawn: np.ndarray, axis: int = -1) -> np.ndarray:
        lead, flat = drawn.shape[:-1], drawn.reshape(-1, drawn.shape[-1])
        slots = (flat + m * np.arange(len(flat))[:, None]).ravel()
        times = np.bincount(slots, minlength=len(flat) * m).reshape(len(flat), m)
        totals = times.astype(float) @ columns  # resamples × rows: exact for whole counts
        found = totals[:, num] / totals[:, den]
        return np.moveaxis(found.reshape(*lead, len(ratios)), -1, 0)

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # a degenerate BCa warns and returns NaN: handled below
        res = stats.bootstrap((np.arange(m),), ratio, vectorized=True, confidence_level=level,
                              n_resamples=N_RESAMPLES, method="BCa", batch=BATCH,
                              rng=np.random.default_rng(seed))  # fmt: skip
    out: list[tuple[float, float] | None] = []
    for low, high in zip(res.confidence_interval.low, res.confidence_interval.high, strict=True):
        ok = np.isfinite(low) and np.isfinite(high)
        out.append((float(low), float(high)) if ok else None)
    return out


def cluster_rate(
    positives: Sequence[float], answers: Sequence[float], *, seed: int = SEED,
    level: float = LEVEL, boot: bool = True,
) -> Interval:  # fmt: skip
    """A rate from per-prompt counts (positives and answers per prompt), interval over prompts.
    Without `boot`, a rate that needs the bootstrap comes back pending (cluster_rates)."""
    k_i = np.asarray(positives, dtype=float)
    n_i = np.asarray(answers, dtype=float)
    keep = n_i > 0
    k_i, n_i = k_i[keep], n_i[keep]
    n, k, m = int(n_i.sum()), float(k_i.sum()), len(n_i)
    if n == 0:
        return Interval(None, None, None, 0, 0, BOOT_METHOD, "no labelled answers")
    estimate = k / n
    if m < MIN_CLUSTERS:
        return Interval(estimate, None, None, n, m, BOOT_METHOD,
                        f"{m} prompt(s): too few for an interval across prompts "
                        f"(need {MIN_CLUSTERS})")  # fmt: skip
    if k in (0, n):
        low, high = proportion_confint(m if k else 0, m, alpha=1 - level, method="wilson")
        return Interval(estimate, 0.0 if k == 0 else float(low), 1.0 if k else float(high), n, m,
                        WILSON_PROMPTS)  # fmt: skip
    if not boot:
        return Interval(estimate, None, None, n, m, BOOT_METHOD, _PENDING)
    ci = pooled_bootstrap(k_i, n_i, seed=seed, level=level)
    if ci is None:
        return Interval(estimate, None, None, n, m, BOOT_METHOD, "bootstrap is degenerate")
    return Interval(estimate, ci[0], ci[1], n, m, BOOT_METHOD)


def cluster_rates(
    positives: dict[str, Sequence[float]], answers: Sequence[float], *, seed: int = SEED,
    level: float = LEVEL,
) -> dict[str, Interval]:  # fmt: skip
    """Several rates over the same prompts (engagement, partial, deflection ...) at once: one
    bootstrap draws the prompts for all of them, so they are as fast as one."""
    return cluster_rates_many([(positives, answers)], seed=seed, level=level)[0]


def cluster_rates_many(
    groups: Sequence[tuple[dict[str, Sequence[float]], Sequence[float]]], *, seed: int = SEED,
    level: float = LEVEL,
) -> list[dict[str, Interval]]:  # fmt: skip
    """cluster_rates of many groups (every model × condition × source of a table). Groups over
    the same number of prompts share one resampling; each interval is still the one its own
    call gives, since the same seed over as many prompts draws the same resamples."""
    found = [{name: cluster_rate(k, answers, seed=seed, level=level, boot=False)
              for name, k in positives.items()} for positives, answers in groups]  # fmt: skip
    by_size: dict[int, list[tuple[int, list[str], np.ndarray, np.ndarray]]] = {}
    for j, ((positives, answers), rates) in enumerate(zip(groups, found, strict=True)):
        wanted = [name for name, r in rates.items() if r.reason == _PENDING]
        if wanted:
            n_i = np.asarray(answers, dtype=float)
            keep = n_i > 0
            sums = np.vstack([np.asarray(positives[name], dtype=float)[keep] for name in wanted])
            by_size.setdefault(int(keep.sum()), []).append((j, wanted, sums, n_i[keep]))
    for parts in by_size.values():
        rows: list[np.ndarray] = []
        ratios: list[tuple[int, int]] = []
        slots: list[tuple[int, str]] = []
        for j, wanted, sums, counts in parts:
            total = len(rows) + len(wanted)  # the row of this group's answer counts
            for name, row in zip(wanted, sums, strict=True):
                ratios.append((len(rows), total))
                slots.append((j, name))
                rows.append(row)
            rows.append(counts)
        cis = ratio_bootstraps(np.vstack(rows), ratios, seed=seed, level=level)
        for (j, name), ci in zip(slots, cis, strict=True):
            r = found[j][name]
            found[j][name] = Interval(r.estimate, ci[0] if ci else None, ci[1] if ci else None,
                                      r.n, r.n_clusters, BOOT_METHOD,
                                      None if ci else "bootstrap is degenerate")  # fmt: skip
    return found


_PENDING = "\x00bootstrap pending"


def mean_t(
    values: Sequence[float], level: float = LEVEL, bounds: tuple[float, float] | None = None
) -> Interval:
    """A mean over conversations with Student's t interval (cut to `bounds`, the scale's ends,
    when given); a reason when n < 2 or no spread."""
    arr = np.asarray(values, dtype=float)
    if len(arr) == 0:
        return Interval(None, None, None, 0, 0, T_METHOD, "no scored conversations")
    mean = float(arr.mean())
    if len(arr) < 2:
        return Interval(mean, None, None, 1, 1, T_METHOD, "n = 1: too few for an interval")
    # scipy.stats.sem's own formula, without its per-call axis and NaN handling (about 1 ms a
    # call, most of the SEI table's time); a test holds the two equal.
    sem = float(np.std(arr, ddof=1) / len(arr) ** 0.5)
    if sem == 0:
        return Interval(mean, None, None, len(arr), len(arr), T_METHOD,
                        "every repeat scored the same: no spread for an interval")  # fmt: skip
    low, high = stats.t.interval(level, len(arr) - 1, loc=mean, scale=sem)
    if bounds is not None:
        low, high = max(low, bounds[0]), min(high, bounds[1])
    return Interval(mean, float(low), float(high), len(arr), len(arr), T_METHOD)
