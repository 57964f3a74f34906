"""Coverage of the old and the new intervals, and the paired test's false-positive rate.

Usage: python bench/coverage.py [--sims N] [--seed S]

A clustered design is simulated: prompts drawn from a population, each with a random effect
on the logit scale (normal, sd given per row), each answered `repeats` times. The target is
the population rate E[expit(mu + u)] (computed by quadrature), the quantity a rate over a
prompt set stands for when the prompts are a sample. For each design the table prints how
often a nominal 95% interval covers it:
- old: Wilson over every message as if independent (scores.wilson);
- new: the cluster bootstrap over prompts the analysis uses (inference.cluster_rate).
SEI over repeats (normal scores, sd 1.5): the old percentile bootstrap (scores.bootstrap_ci)
against the new t-interval (intervals.mean_t), at n = 2, 3, 5.
Then the paired condition test under no effect (exact McNemar as `analyse` runs it, through
inference.paired_binary on simulated pairs): its false-positive rate at alpha 0.05.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import integrate, stats
from scipy.special import expit

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from dialogues.analyse import inference, intervals, scores  # noqa: E402

DESIGNS = (  # prompts, repeats, logit mean, prompt sd
    (30, 3, -1.0, 1.0),
    (30, 3, -1.0, 2.0),
    (50, 1, -0.5, 1.0),
    (100, 3, -1.5, 1.5),
)


def population_rate(mu: float, sd: float) -> float:
    """E[expit(mu + u)], u ~ N(0, sd²)."""
    value, _ = integrate.quad(lambda u: expit(mu + u) * stats.norm.pdf(u, 0, sd), -12 * sd, 12 * sd)
    return float(value)


def one_design(
    rng: np.random.Generator, prompts: int, repeats: int, mu: float, sd: float
) -> pd.DataFrame:
    """One simulated data set: a row per answer, with its prompt."""
    u = rng.normal(0, sd, size=prompts)
    y = rng.random((prompts, repeats)) < expit(mu + u)[:, None]
    return pd.DataFrame({"set_id": "sim", "prompt_key": np.repeat(np.arange(prompts), repeats),
                         "y": y.ravel().astype(float)})  # fmt: skip


def rate_coverage(sims: int, seed: int) -> list[str]:
    """One line per design: coverage of the old and the new interval."""
    lines = [
        "prompts repeats  mu   sd   true   old (Wilson, per message)  new (cluster bootstrap)  width old/new"
    ]
    for prompts, repeats, mu, sd in DESIGNS:
        rng, truth = np.random.default_rng(seed), population_rate(mu, sd)
        old = new = 0
        widths_old, widths_new = [], []
        for i in range(sims):
            data = one_design(rng, prompts, repeats, mu, sd)
            w = scores.wilson(int(data.y.sum()), len(data))
            r = inference.cluster_rate(data, seed=seed + i)
            assert w is not None and r.low is not None and r.high is not None
            old += w[0] <= truth <= w[1]
            new += r.low <= truth <= r.high
            widths_old.append(w[1] - w[0])
            widths_new.append(r.high - r.low)
        lines.append(f"{prompts:>7} {repeats:>7} {mu:>4} {sd:>4} {truth:.3f}   {old / sims:>8.3f}"
                     f"                  {new / sims:>8.3f}               "
                     f"{np.mean(widths_old):.3f}/{np.mean(widths_new):.3f}")  # fmt: skip
    return lines


def sei_coverage(sims: int, seed: int) -> list[str]:
    """Coverage of the mean SEI over n repeats: percentile bootstrap vs t-interval."""
    lines = ["SEI n  old (percentile bootstrap)  new (t-interval)"]
    for n in (2, 3, 5):
        rng = np.random.default_rng(seed)
        old = new = 0
        for i in range(sims):
            values = rng.normal(5.0, 1.5, size=n)
            b = scores.bootstrap_ci(values, seed=seed + i, n_boot=1000)
            t = intervals.mean_t(values)
            assert b is not None and t.low is not None and t.high is not None
            old += b[0] <= 5.0 <= b[1]
            new += t.low <= 5.0 <= t.high
        lines.append(f"      {n}  {old / sims:>8.3f}                    {new / sims:>8.3f}")
    return lines


def false_positives(sims: int, seed: int) -> list[str]:
    """Exact McNemar as `analyse` runs it, on paired data with no condition effect."""
    lines = ["paired test, no effect: prompts repeats sd  share p < 0.05  (no p: reason)"]
    for prompts, repeats, mu, sd in DESIGNS[:3]:
        rng = np.random.default_rng(seed)
        hits = tested = 0
        for _ in range(sims):
            u = rng.normal(0, sd, size=(prompts, 1))
            chance = expit(mu + u)
            a = (rng.random((prompts, repeats)) < chance).ravel().astype(int)
            b = (rng.random((prompts, repeats)) < chance).ravel().astype(int)
            pairs = pd.DataFrame({"a": a, "b": b, "set_id": "sim",
                                  "prompt_key": np.repeat(np.arange(prompts), repeats)})  # fmt: skip
            found = inference.paired_binary(pairs)
            if found["p"] is not None:
                tested += 1
                hits += found["p"] < 0.05
        lines.append(f"                                {prompts:>7} {repeats:>7} {sd:>3}  "
                     f"{hits / max(tested, 1):.3f}  ({sims - tested} of {sims})")  # fmt: skip
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sims", type=int, default=500)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    start = time.perf_counter()
    for block in (rate_coverage, sei_coverage, false_positives):
        print("\n".join(block(args.sims, args.seed)))
        print()
    print(f"{args.sims} simulations per row, seed {args.seed}, {time.perf_counter() - start:.0f} s")


if __name__ == "__main__":
    main()
