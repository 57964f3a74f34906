"""Agreement between raters: percent, Cohen's and Fleiss' kappa, Krippendorff's alpha, P/R/F1.

Everything here is exact arithmetic on label lists; no pandas, no scikit-learn (the tests use
scikit-learn as the independent check). Missing ratings are `None` and are skipped pairwise;
a tagger's skipped items are counted in its row's `coverage`, so abstaining is visible.

Degenerate cases return values instead of raising, and the choice is the same everywhere:
- nothing to compare (n = 0, or no unit with two ratings) -> None;
- chance agreement is total because every rating is the same single label -> 1.0 (the raters
  agree perfectly, there is just nothing else they could have said; scikit-learn gives NaN);
- precision with no predicted positives, recall with no reference positives, F1 with neither
  -> None (scikit-learn warns and gives 0.0).
Mismatched list lengths and labels outside a confusion matrix's label list raise ValueError.
Bootstrap intervals are percentile intervals over resampled items with a fixed seed.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Callable, Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from itertools import combinations
from typing import Any, TypeVar

import numpy as np

Label = str
LABELS: tuple[Label, ...] = ("engagement", "partial", "deflection")
POSITIVE: frozenset[Label] = frozenset({"deflection", "partial"})
N_BOOT = 1000
LEVEL = 0.95
SEED = 0

SMALL_N = 20
"""Below this many items an interval says little: a few items can all agree by luck."""
# Landis & Koch (1977), Biometrics 33:159-174: the conventional words for a kappa.
READINGS: tuple[tuple[float, str], ...] = (
    (0.0, "poor (below chance)"), (0.20, "slight"), (0.40, "fair"), (0.60, "moderate"),
    (0.80, "substantial"), (1.0, "almost perfect"),
)  # fmt: skip

T = TypeVar("T")
K = TypeVar("K", bound=Hashable)  # item ids
Stat = Callable[..., float | None]


def _paired(a: Sequence[Label | None], b: Sequence[Label | None]) -> list[tuple[Label, Label]]:
    """Pairs where both ratings exist; the two lists must describe the same items."""
    if len(a) != len(b):
        raise ValueError(f"rating lists differ in length: {len(a)} vs {len(b)}")
    return [(x, y) for x, y in zip(a, b, strict=True) if x is not None and y is not None]


def kappa_reading(kappa: float | None) -> str:
    """The conventional reading of a kappa (Landis & Koch 1977), e.g. 0.5 -> 'moderate'."""
    if kappa is None or kappa != kappa:
        return "no value"
    if kappa < 0:
        return READINGS[0][1]
    return next(word for bound, word in READINGS[1:] if kappa <= bound)


def percent_agreement(a: Sequence[Label | None], b: Sequence[Label | None]) -> float | None:
    """Share of items (rated by both) on which the two raters give the same label."""
    pairs = _paired(a, b)
    if not pairs:
        return None
    return sum(x == y for x, y in pairs) / len(pairs)


def cohen_kappa(a: Sequence[Label | None], b: Sequence[Label | None]) -> float | None:
    """Cohen's kappa for two raters over any label set: 1.0 if both are identical and constant."""
    pairs = _paired(a, b)
    n = len(pairs)
    if n == 0:
        return None
    observed = sum(x == y for x, y in pairs) / n
    count_a = Counter(x for x, _ in pairs)
    count_b = Counter(y for _, y in pairs)
    expected = sum(count_a[k] * count_b[k] for k in count_a) / (n * n)
    if expected >= 1.0:
        # Only possible when both raters used one and the same label throughout.
        return 1.0
    return (observed - expected) / (1.0 - expected)


def confusion_matrix(
    reference: Sequence[Label | None],
    predicted: Sequence[Label | None],
    labels: Sequence[Label] = LABELS,
) -> list[list[int]]:
    """Counts with rows = reference label and columns = predicted label, in `labels` order."""
    index = {label: i for i, label in enumerate(labels)}
    matrix = [[0] * len(labels) for _ in labels]
    for ref, pred in _paired(reference, predicted):
        for label in (ref, pred):
            if label not in index:
                raise ValueError(f"label {label!r} is not one of {list(labels)}")
        matrix[index[ref]][index[pred]] += 1
    return matrix


@dataclass(frozen=True)
class BinaryScores:
    """Precision, recall and F1 of `predicted` against `reference` for one positive set."""

    tp: int
    fp: int
    fn: int
    tn: int
    precision: float | None
    recall: float | None
    f1: float | None


def _ratio(num: int, den: int) -> float | None:
    return num / den if den else None


def binary_scores(
    reference: Sequence[Label | None],
    predicted: Sequence[Label | None],
    positive: Iterable[Label] = POSITIVE,
) -> BinaryScores:
    """Collapse labels to positive/negative and score the prediction; None where undefined."""
    pos = frozenset(positive)
    tp = fp = fn = tn = 0
    for ref, pred in _paired(reference, predicted):
        r, p = ref in pos, pred in pos
        tp += r and p
        fp += p and not r
        fn += r and not p
        tn += not r and not p
    return BinaryScores(
        tp=tp,
        fp=fp,
        fn=fn,
        tn=tn,
        precision=_ratio(tp, tp + fp),
        recall=_ratio(tp, tp + fn),
        f1=_ratio(2 * tp, 2 * tp + fp + fn),
    )


def precision(
    reference: Sequence[Label | None],
    predicted: Sequence[Label | None],
    positive: Iterable[Label] = POSITIVE,
) -> float | None:
    """Binary precision (positive = `positive` labels)."""
    return binary_scores(reference, predicted, positive).precision


def recall(
    reference: Sequence[Label | None],
    predicted: Sequence[Label | None],
    positive: Iterable[Label] = POSITIVE,
) -> float | None:
    """Binary recall (positive = `positive` labels)."""
    return binary_scores(reference, predicted, positive).recall


def f1(
    reference: Sequence[Label | None],
    predicted: Sequence[Label | None],
    positive: Iterable[Label] = POSITIVE,
) -> float | None:
    """Binary F1 (positive = `positive` labels)."""
    return binary_scores(reference, predicted, positive).f1


@dataclass(frozen=True)
class ClassScores:
    """One label's precision, recall and F1 (that label against all others) and its support."""

    label: Label
    precision: float | None
    recall: float | None
    f1: float | None
    support: int  # reference items with this label


def per_class(
    reference: Sequence[Label | None],
    predicted: Sequence[Label | None],
    labels: Sequence[Label] = LABELS,
) -> list[ClassScores]:
    """Per label, one-vs-rest precision, recall and F1 (sklearn's classification_report)."""
    pairs = _paired(reference, predicted)
    ref, pred = [r for r, _ in pairs], [p for _, p in pairs]
    out = []
    for label in labels:
        s = binary_scores(ref, pred, {label})
        out.append(ClassScores(label, s.precision, s.recall, s.f1, s.tp + s.fn))
    return out


def weighted_kappa(
    a: Sequence[Label | None],
    b: Sequence[Label | None],
    order: Sequence[Label] = LABELS,
) -> float | None:
    """Linearly weighted kappa over ordered labels; pairs with a label outside `order` skipped.

    The default order is engagement > partial > deflection: calling a partial refusal a full
    one is half the error of calling an answer a refusal.
    """
    rank = {label: i for i, label in enumerate(order)}
    pairs = [(rank[x], rank[y]) for x, y in _paired(a, b) if x in rank and y in rank]
    n, k = len(pairs), len(order)
    if n == 0 or k < 2:
        return None
    observed = np.zeros((k, k))
    for x, y in pairs:
        observed[x, y] += 1
    expected = np.outer(observed.sum(axis=1), observed.sum(axis=0)) / n
    weights = np.abs(np.subtract.outer(np.arange(k), np.arange(k))) / (k - 1)
    disagreement = float((weights * expected).sum())
    if disagreement == 0:
        return 1.0  # one label throughout on both sides
    return 1.0 - float((weights * observed).sum()) / disagreement


def fleiss_kappa_counts(counts: Sequence[Sequence[int]]) -> float | None:
    """Fleiss' kappa from an items x categories table of how many raters chose each category.

    Items may have different numbers of raters (each item's agreement uses its own count);
    items with fewer than two ratings carry no agreement information and are skipped.
    """
    rows = [list(map(int, row)) for row in counts if sum(row) >= 2]
    if not rows:
        return None
    total = sum(sum(row) for row in rows)
    per_item = [(sum(c * c for c in row) - sum(row)) / (sum(row) * (sum(row) - 1)) for row in rows]
    observed = sum(per_item) / len(rows)
    shares = [sum(row[j] for row in rows) / total for j in range(len(rows[0]))]
    expected = sum(p * p for p in shares)
    if expected >= 1.0:
        return 1.0  # every rating is the same category
    return (observed - expected) / (1.0 - expected)


def fleiss_kappa(items: Iterable[Sequence[Label | None]]) -> float | None:
    """Fleiss' kappa for many raters; each item is the list of labels it received (None skipped)."""
    ratings = [[x for x in item if x is not None] for item in items]
    categories = sorted({x for item in ratings for x in item})
    index = {c: i for i, c in enumerate(categories)}
    table = []
    for item in ratings:
        row = [0] * len(categories)
        for x in item:
            row[index[x]] += 1
        table.append(row)
    return fleiss_kappa_counts(table)


def krippendorff_alpha(units: Iterable[Sequence[Hashable | None]]) -> float | None:
    """Krippendorff's alpha for nominal data; each unit lists its ratings, None = missing."""
    coincidence: defaultdict[tuple[Hashable, Hashable], float] = defaultdict(float)
    for unit in units:
        values = [v for v in unit if v is not None]
        m = len(values)
        if m < 2:
            continue  # a lone rating cannot be paired with anything
        for i, j in ((i, j) for i in range(m) for j in range(m) if i != j):
            coincidence[(values[i], values[j])] += 1.0 / (m - 1)
    n_c: defaultdict[Hashable, float] = defaultdict(float)
    for (c, _), weight in coincidence.items():
        n_c[c] += weight
    n = sum(n_c.values())
    if n == 0:
        return None
    observed = sum(w for (c, k), w in coincidence.items() if c != k)
    expected = (n * n - sum(v * v for v in n_c.values())) / (n - 1)
    if expected <= 0:
        return 1.0  # one value throughout: no disagreement was possible or seen
    return 1.0 - observed / expected


@dataclass(frozen=True)
class Interval:
    """A percentile bootstrap interval; `defined` counts resamples where the statistic existed."""

    low: float | None
    high: float | None
    level: float
    n_boot: int
    defined: int


def _resamples(
    n: int, n_boot: int, seed: int, clusters: Sequence[Hashable] | None
) -> Iterable[list[int]]:
    """Item indices per resample: items drawn alone, or whole clusters drawn together."""
    rng = np.random.default_rng(seed)
    if clusters is None:
        yield from (list(idx) for idx in rng.integers(0, n, size=(n_boot, n)))
        return
    members: dict[Hashable, list[int]] = {}
    for i, c in enumerate(clusters):
        members.setdefault(c, []).append(i)
    groups = list(members.values())
    for pick in rng.integers(0, len(groups), size=(n_boot, len(groups))):
        yield [i for g in pick for i in groups[g]]


def bootstrap_many(
    stats: Mapping[str, Stat],
    *columns: Sequence[Any],
    n_boot: int = N_BOOT,
    level: float = LEVEL,
    seed: int = SEED,
    clusters: Sequence[Hashable] | None = None,
) -> dict[str, Interval]:
    """Percentile intervals for several statistics over the same item resamples.

    Each statistic is called with the resampled columns (lists of equal length, one entry per
    item). With `clusters` (one key per item, e.g. its prompt) whole clusters are resampled,
    so replies to one prompt count as the correlated evidence they are. A fixed seed gives a
    fixed result. Resamples where a statistic is undefined (None) are left out of its
    interval; if none remain the bounds are None.
    """
    n = len(columns[0]) if columns else 0
    if any(len(c) != n for c in columns) or (clusters is not None and len(clusters) != n):
        raise ValueError("bootstrap columns must have one entry per item")
    values: dict[str, list[float]] = {name: [] for name in stats}
    if n > 0:
        for idx in _resamples(n, n_boot, seed, clusters):
            sample = [[col[i] for i in idx] for col in columns]
            for name, stat in stats.items():
                value = stat(*sample)
                if value is not None and value == value:  # skip None and NaN
                    values[name].append(value)
    tail = (1.0 - level) / 2 * 100
    out = {}
    for name, got in values.items():
        low = high = None
        if got:
            low, high = (float(v) for v in np.percentile(got, [tail, 100 - tail]))
        out[name] = Interval(low, high, level, n_boot, len(got))
    return out


def bootstrap_ci(
    stat: Stat,
    *columns: Sequence[Any],
    n_boot: int = N_BOOT,
    level: float = LEVEL,
    seed: int = SEED,
    clusters: Sequence[Hashable] | None = None,
) -> Interval:
    """Percentile bootstrap interval of one statistic, resampling items with a fixed seed."""
    return bootstrap_many(
        {"stat": stat}, *columns, n_boot=n_boot, level=level, seed=seed, clusters=clusters
    )["stat"]


@dataclass
class PairRow:
    """Agreement between two annotators on the items both rated."""

    a: str
    b: str
    n: int
    percent: float | None
    kappa: float | None
    percent_ci: Interval | None = None
    kappa_ci: Interval | None = None
    group: str | None = None


@dataclass
class TaggerRow:
    """How a tagger's labels compare with a reference (human) labelling."""

    tagger: str
    reference: str
    n: int
    precision: float | None
    recall: float | None
    f1: float | None
    kappa: float | None
    percent: float | None
    labels: tuple[Label, ...] = LABELS
    confusion: list[list[int]] = field(default_factory=list)  # rows reference, cols tagger
    precision_ci: Interval | None = None
    recall_ci: Interval | None = None
    f1_ci: Interval | None = None
    kappa_ci: Interval | None = None
    group: str | None = None
    weighted_kappa: float | None = None  # linear weights over engagement > partial > deflection
    weighted_kappa_ci: Interval | None = None
    per_class: list[ClassScores] = field(default_factory=list)
    coverage: dict[str, Any] = field(default_factory=dict)
    """Reference items, how many the tagger labelled, and why the rest went unlabelled."""
    clustered: bool = False  # intervals resample whole clusters (prompts), not single items


def coverage(
    reference: Mapping[K, Label | None],
    predicted: Mapping[K, Label | None],
    why: Mapping[K, str] | None = None,
) -> dict[str, Any]:
    """How many reference items a tagger labelled, and per reason how many it did not."""
    items = [i for i in reference if reference[i] is not None]
    missing = [i for i in items if predicted.get(i) is None]
    reasons = Counter((why or {}).get(i, "not tagged") for i in missing)
    return {"reference": len(items), "labelled": len(items) - len(missing),
            "unlabelled": len(missing), "why": dict(sorted(reasons.items()))}  # fmt: skip


def pairwise(
    ratings: Mapping[K, Mapping[str, Label | None]],
    *,
    n_boot: int = N_BOOT,
    level: float = LEVEL,
    seed: int = SEED,
    group: str | None = None,
) -> list[PairRow]:
    """Percent agreement and Cohen's kappa for every pair of annotators (n_boot=0: no intervals)."""
    annotators = sorted({name for by in ratings.values() for name in by})
    rows = []
    for a, b in combinations(annotators, 2):
        pairs = [
            (by[a], by[b])
            for by in ratings.values()
            if by.get(a) is not None and by.get(b) is not None
        ]
        left, right = [x for x, _ in pairs], [y for _, y in pairs]
        row = PairRow(a, b, len(pairs), percent_agreement(left, right), cohen_kappa(left, right))
        if n_boot:
            cis = bootstrap_many(
                {"percent": percent_agreement, "kappa": cohen_kappa},
                left,
                right,
                n_boot=n_boot,
                level=level,
                seed=seed,
            )
            row.percent_ci, row.kappa_ci = cis["percent"], cis["kappa"]
        row.group = group
        rows.append(row)
    return rows


def tagger_vs_reference(
    predicted: Mapping[K, Label | None],
    reference: Mapping[K, Label | None],
    *,
    tagger: str = "tagger",
    reference_name: str = "reference",
    labels: Sequence[Label] = LABELS,
    positive: Iterable[Label] = POSITIVE,
    n_boot: int = N_BOOT,
    level: float = LEVEL,
    seed: int = SEED,
    group: str | None = None,
    clusters: Mapping[K, Hashable] | None = None,
    why: Mapping[K, str] | None = None,
    order: Sequence[Label] = LABELS,
) -> TaggerRow:
    """Score a tagger against reference labels on the items both labelled.

    Items the tagger left unlabelled are not silently dropped: `coverage` counts them, by
    reason (`why`, e.g. 'unparseable'; else 'not tagged'). With `clusters` (item → prompt)
    the intervals resample whole prompts.
    """
    pos = frozenset(positive)
    items = [i for i in reference if reference[i] is not None and predicted.get(i) is not None]
    ref = [reference[i] for i in items]
    pred = [predicted[i] for i in items]
    keys = None if clusters is None else [clusters.get(i, i) for i in items]
    scores = binary_scores(ref, pred, pos)
    row = TaggerRow(
        tagger=tagger,
        reference=reference_name,
        n=len(items),
        precision=scores.precision,
        recall=scores.recall,
        f1=scores.f1,
        kappa=cohen_kappa(ref, pred),
        percent=percent_agreement(ref, pred),
        labels=tuple(labels),
        confusion=confusion_matrix(ref, pred, labels),
        group=group,
        weighted_kappa=weighted_kappa(ref, pred, order),
        per_class=per_class(ref, pred, labels),
        coverage=coverage(reference, predicted, why),
        clustered=keys is not None,
    )
    if n_boot:
        cis = bootstrap_many(
            {
                "precision": lambda r, p: precision(r, p, pos),
                "recall": lambda r, p: recall(r, p, pos),
                "f1": lambda r, p: f1(r, p, pos),
                "kappa": cohen_kappa,
                "weighted_kappa": lambda r, p: weighted_kappa(r, p, order),
            },
            ref,
            pred,
            n_boot=n_boot,
            level=level,
            seed=seed,
            clusters=keys,
        )
        row.precision_ci, row.recall_ci = cis["precision"], cis["recall"]
        row.f1_ci, row.kappa_ci = cis["f1"], cis["kappa"]
        row.weighted_kappa_ci = cis["weighted_kappa"]
    return row


def split_by_group(data: Mapping[K, T], groups: Mapping[K, str | None]) -> dict[str, dict[K, T]]:
    """Split an item mapping by each item's group (e.g. model family); ungrouped items dropped."""
    out: dict[str, dict[K, T]] = {}
    for item, value in data.items():
        key = groups.get(item)
        if key is not None:
            out.setdefault(key, {})[item] = value
    return dict(sorted(out.items()))


def pairwise_by_group(
    ratings: Mapping[K, Mapping[str, Label | None]],
    groups: Mapping[K, str | None],
    **options: Any,
) -> list[PairRow]:
    """`pairwise` within each group; rows carry their group name."""
    rows = []
    for key, part in split_by_group(ratings, groups).items():
        rows.extend(pairwise(part, group=key, **options))
    return rows


def tagger_vs_reference_by_group(
    predicted: Mapping[K, Label | None],
    reference: Mapping[K, Label | None],
    groups: Mapping[K, str | None],
    **options: Any,
) -> list[TaggerRow]:
    """`tagger_vs_reference` within each group of the reference items."""
    return [
        tagger_vs_reference(predicted, part, group=key, **options)
        for key, part in split_by_group(reference, groups).items()
    ]
