"""Intervals over clusters, paired tests and multiplicity: the statistics, from scipy/statsmodels.

Design (what a reader of a figure should know):
- The clustering unit of a label rate is the prompt, (set_id, prompt_key): repeats of a prompt
  and answers of one conversation are not independent, prompts are the sample. A rate's
  interval is a cluster bootstrap over prompts (scipy.stats.bootstrap, BCa, on per-prompt
  counts, statistic = pooled rate), so it widens as the prompt effect grows. A rate of exactly
  0 or 1 has no spread to resample: its interval is Wilson's over the prompts (each prompt one
  trial), which is conservative, and `method` says so.
- An SEI is per conversation (one battery run); its interval is Student's t over those
  conversations (scipy.stats.t); with fewer than two there is none, with a reason.
- Paired conditions within a model, or models on the same prompts, are matched by
  prompt × repeat (× condition for models). Binary outcome: exact McNemar
  (statsmodels.stats.contingency_tables.mcnemar(exact=True), a binomial test on the discordant
  pairs; valid under the null with clustering, since each pair's two answers are exchangeable
  then); the difference b − a has a cluster-bootstrap interval over prompts. SEI: paired t
  (scipy.stats.ttest_rel, with its t-interval) or Wilcoxon signed-rank on request.
- Each family of comparisons (one kind × metric in one analysis) is corrected with
  statsmodels.stats.multitest.multipletests: Holm by default, Benjamini–Hochberg on request.
- Too little data gives a `reason` instead of a number: fewer than MIN_PAIRS pairs, fewer than
  MIN_CLUSTERS prompts for an interval, no discordant pairs, no variation in the differences.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, replace
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats
from statsmodels.stats.contingency_tables import mcnemar
from statsmodels.stats.multitest import multipletests

from dialogues.analyse import intervals, scores
from dialogues.analyse.intervals import BOOT_METHOD, Interval
from dialogues.domain import sei

LEVEL = intervals.LEVEL
N_RESAMPLES = intervals.N_RESAMPLES
MIN_PAIRS = 5
MIN_CLUSTERS = intervals.MIN_CLUSTERS
SEED = scores.DEFAULT_SEED
CORRECTIONS = {"holm": "holm", "bh": "fdr_bh"}
CLUSTER = ("set_id", "prompt_key")
PAIR = ("set_id", "prompt_key", "repeat")


def _per_cluster(df: pd.DataFrame, value: str, keys: Sequence[str]) -> pd.DataFrame:
    """Per cluster: the sum of `value` and the number of rows (missing values left out)."""
    present = df.dropna(subset=[value])
    return present.groupby(list(keys), dropna=False)[value].agg(["sum", "count"])


def cluster_rate(
    df: pd.DataFrame, value: str = "y", *, seed: int = SEED, level: float = LEVEL
) -> Interval:
    """A rate of a 0/1 column with a cluster-bootstrap interval over prompts."""
    per = _per_cluster(df, value, CLUSTER)
    return intervals.cluster_rate(per["sum"], per["count"], seed=seed, level=level)


# --- paired contrasts -------------------------------------------------------------------------


@dataclass(frozen=True)
class Contrast:
    """b − a on matched answers: the estimate, its interval, the test and its p (adjusted too)."""

    kind: str  # 'conditions' (within a model) or 'models' (on the same prompts)
    model: str | None  # the model, for conditions
    a: str
    b: str
    metric: str  # 'deflection' | 'engagement' | 'sei'
    source: str | None  # whose labels
    condition: str | None  # for models: the condition both answered in
    n_pairs: int
    n_clusters: int
    estimate: float | None  # mean of b minus mean of a over the pairs
    ci: tuple[float, float] | None
    p: float | None
    p_adjusted: float | None
    method: str
    ci_method: str
    reason: str | None = None

    def as_json(self) -> dict[str, Any]:
        """JSON-ready, with the interval as [lo, hi] or null."""
        out = asdict(self)
        out["ci"] = list(self.ci) if self.ci else None
        return out


MCNEMAR = "exact McNemar (binomial test on discordant pairs)"


def paired_binary(pairs: pd.DataFrame, *, seed: int = SEED, level: float = LEVEL) -> dict[str, Any]:
    """Exact McNemar and a cluster-bootstrap interval of mean(b) − mean(a).

    `pairs` has columns a, b (0/1) and the CLUSTER columns; one row per matched pair.
    """
    a, b = pairs["a"].to_numpy(int), pairs["b"].to_numpy(int)
    n = len(pairs)
    m = int(pairs.groupby(list(CLUSTER), dropna=False).ngroups) if n else 0
    out: dict[str, Any] = dict(n_pairs=n, n_clusters=m, estimate=None, ci=None, p=None,
                               method=MCNEMAR, ci_method=BOOT_METHOD, reason=None)  # fmt: skip
    if n < MIN_PAIRS:
        out["reason"] = f"{n} matched pair(s): too few for a test (need {MIN_PAIRS})"
        return out
    out["estimate"] = float(b.mean() - a.mean())
    only_b, only_a = int(((a == 0) & (b == 1)).sum()), int(((a == 1) & (b == 0)).sum())
    if only_a + only_b == 0:
        out["reason"] = "no discordant pairs: a and b never differ, so there is nothing to test"
        return out
    table = [[int(((a == 1) & (b == 1)).sum()), only_a], [only_b, int(((a == 0) & (b == 0)).sum())]]
    out["p"] = float(mcnemar(table, exact=True).pvalue)
    if m < MIN_CLUSTERS:
        out["reason"] = f"{m} prompt(s): too few for an interval across prompts"
        return out
    diff = pairs.assign(d=b - a)
    per = _per_cluster(diff, "d", CLUSTER)
    out["ci"] = intervals.pooled_bootstrap(per["sum"].to_numpy(float),
                                           per["count"].to_numpy(float), seed=seed, level=level)  # fmt: skip
    if out["ci"] is None:
        out["reason"] = "bootstrap interval is degenerate"
    return out


def paired_continuous(
    a: Sequence[float], b: Sequence[float], *, test: str = "t", level: float = LEVEL
) -> dict[str, Any]:
    """Paired t (with its t-interval of b − a) or Wilcoxon signed-rank, over matched pairs."""
    x, y = np.asarray(a, float), np.asarray(b, float)
    n = len(x)
    method = "paired t" if test == "t" else "Wilcoxon signed-rank"
    out: dict[str, Any] = dict(n_pairs=n, n_clusters=n, estimate=None, ci=None, p=None,
                               method=method, ci_method="paired t-interval over pairs",
                               reason=None)  # fmt: skip
    if n < 2:
        out["reason"] = f"{n} matched pair(s): too few for a test"
        return out
    d = y - x
    out["estimate"] = float(d.mean())
    if np.all(d == d[0]):
        out["reason"] = "every pair differs by the same amount: no variation to test"
        return out
    res = stats.ttest_rel(y, x)
    ci = res.confidence_interval(level)
    out["ci"] = (float(ci.low), float(ci.high))
    if test == "t":
        out["p"] = float(res.pvalue)
    else:
        out["p"] = float(stats.wilcoxon(y, x).pvalue)
    return out


def adjust(contrasts: list[Contrast], correction: str = "holm") -> list[Contrast]:
    """Adjusted p for each family (kind × metric) of contrasts that have a p."""
    if correction not in CORRECTIONS:
        raise ValueError(f"correction must be one of {', '.join(CORRECTIONS)}, got {correction!r}")
    out = list(contrasts)
    families: dict[tuple[str, str], list[int]] = {}
    for i, c in enumerate(out):
        if c.p is not None:
            families.setdefault((c.kind, c.metric), []).append(i)
    for members in families.values():
        ps = [out[i].p for i in members]
        adjusted = multipletests(ps, method=CORRECTIONS[correction])[1]
        for i, p in zip(members, adjusted, strict=True):
            out[i] = replace(out[i], p_adjusted=float(p),
                             method=f"{out[i].method}; {correction} over {len(members)}")  # fmt: skip
    return out


# --- contrasts over the OUTCOMES and RUBRIC frames --------------------------------------------

METRIC_COLUMN = {"deflection": "y", "engagement": "engaged"}


def reference_first(conditions: Sequence[str], reference: str | None) -> list[str]:
    """Conditions with the reference first: the given one, else 'cold' if present, else the first."""
    found = sorted(str(c) for c in conditions)
    ref = reference if reference is not None else ("cold" if "cold" in found else None)
    if ref is not None and ref in found:
        found.remove(ref)
        found.insert(0, ref)
    return found


def _matched(
    df: pd.DataFrame, value: str, keys: Sequence[str], split: str, a: str, b: str
) -> pd.DataFrame:
    """Rows of a and b (values of `split`) matched on keys: columns a, b and the keys."""
    cols = [*keys, value]
    one = df[df[split] == a].dropna(subset=[value])[cols].drop_duplicates(list(keys))
    two = df[df[split] == b].dropna(subset=[value])[cols].drop_duplicates(list(keys))
    merged = one.merge(two, on=list(keys), suffixes=("_a", "_b"))
    return merged.rename(columns={f"{value}_a": "a", f"{value}_b": "b"})


def _contrast(**fields: Any) -> Contrast:
    ci = fields.pop("ci")
    return Contrast(ci=tuple(ci) if ci else None, p_adjusted=None, **fields)


def condition_contrasts(
    data: pd.DataFrame, metric: str = "deflection", reference: str | None = None
) -> list[Contrast]:
    """Each model × source: every other condition against the reference, matched by prompt × repeat."""
    value = METRIC_COLUMN[metric]
    found = []
    for (model, source), group in data.groupby(["model", "source"], sort=True, dropna=False):
        conditions = reference_first(group["condition"].dropna().unique(), reference)
        for b in conditions[1:]:
            pairs = _matched(group, value, PAIR, "condition", conditions[0], b)
            found.append(_contrast(kind="conditions", model=model, a=conditions[0], b=b,
                                   metric=metric, source=source, condition=None,
                                   **paired_binary(pairs)))  # fmt: skip
    return found


def model_contrasts(data: pd.DataFrame, metric: str = "deflection") -> list[Contrast]:
    """Every pair of models × condition × source, matched by prompt × repeat."""
    value = METRIC_COLUMN[metric]
    found = []
    for (condition, source), group in data.groupby(["condition", "source"], sort=True,
                                                   dropna=False):  # fmt: skip
        names = sorted(group["model"].dropna().unique())
        for i, a in enumerate(names):
            for b in names[i + 1 :]:
                pairs = _matched(group, value, PAIR, "model", a, b)
                found.append(_contrast(kind="models", model=None, a=a, b=b, metric=metric,
                                       source=source, condition=condition,
                                       **paired_binary(pairs)))  # fmt: skip
    return found


def sei_values(rubric: pd.DataFrame) -> pd.DataFrame:
    """RUBRIC rows with their SEI, complete batteries only (all 16 dimensions scored)."""
    if rubric.empty:
        return rubric.assign(sei=pd.Series(dtype=float))
    complete = rubric
    if "dimensions_scored" in rubric.columns:
        complete = rubric[rubric["dimensions_scored"].fillna(0) >= len(sei.DIMENSION_KEYS)]
    complete = complete.copy()
    complete["sei"] = [scores.sei_composite(r.probe_total, r.net_markers, r.evidence)
                       for r in complete.itertuples()]  # fmt: skip
    return complete


def sei_contrasts(
    rubric: pd.DataFrame, *, reference: str | None = None, test: str = "t"
) -> list[Contrast]:
    """SEI: conditions within a model (matched by repeat) and models within a condition."""
    data = sei_values(rubric)
    found = []
    for (model, source), group in data.groupby(["model", "source"], sort=True, dropna=False):
        conditions = reference_first(group["condition"].dropna().unique(), reference)
        for b in conditions[1:]:
            pairs = _matched(group, "sei", ("repeat",), "condition", conditions[0], b)
            found.append(_contrast(kind="conditions", model=model, a=conditions[0], b=b,
                                   metric="sei", source=source, condition=None,
                                   **paired_continuous(pairs["a"], pairs["b"], test=test)))  # fmt: skip
    for (condition, source), group in data.groupby(["condition", "source"], sort=True,
                                                   dropna=False):  # fmt: skip
        names = sorted(group["model"].dropna().unique())
        for i, a in enumerate(names):
            for b in names[i + 1 :]:
                pairs = _matched(group, "sei", ("repeat",), "model", a, b)
                found.append(_contrast(kind="models", model=None, a=a, b=b, metric="sei",
                                       source=source, condition=condition,
                                       **paired_continuous(pairs["a"], pairs["b"], test=test)))  # fmt: skip
    return found
