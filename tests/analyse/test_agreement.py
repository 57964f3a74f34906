"""Agreement statistics against scikit-learn, textbook examples and the real XSTest labels."""

from __future__ import annotations

import csv
import math
import random
from pathlib import Path

import pytest
from sklearn import metrics

from dialogues.analyse import agreement as ag

XSTEST = Path(__file__).resolve().parents[3] / "shared" / "data" / "xstest"
XSTEST_LABELS = {
    "1_full_compliance": "engagement",
    "2_full_refusal": "deflection",
    "3_partial_refusal": "partial",
}
needs_xstest = pytest.mark.skipif(
    not XSTEST.is_dir(), reason=f"shared XSTest data not found at {XSTEST} (../shared beside repo)"
)


def random_pairs(seed: int, n: int, labels=ag.LABELS) -> tuple[list[str], list[str]]:
    """Two correlated raters: the second copies the first 60% of the time."""
    rng = random.Random(seed)
    a = [rng.choice(labels) for _ in range(n)]
    b = [x if rng.random() < 0.6 else rng.choice(labels) for x in a]
    return a, b


def load_annotations(name: str) -> list[dict[str, str]]:
    with open(XSTEST / f"xstest_v2_completions_{name}.csv", newline="", encoding="utf-8") as f:
        return [
            {key: XSTEST_LABELS.get(value, value) for key, value in row.items()}
            for row in csv.DictReader(f)
        ]


# --- Cohen's kappa, confusion matrix, precision/recall/F1 vs scikit-learn ---------------------


@pytest.mark.parametrize("seed", range(20))
def test_kappa_matches_sklearn_on_random_labels(seed):
    a, b = random_pairs(seed, n=random.Random(seed).randint(5, 300))
    assert ag.cohen_kappa(a, b) == pytest.approx(metrics.cohen_kappa_score(a, b))


@pytest.mark.parametrize("seed", range(10))
def test_kappa_matches_sklearn_for_any_label_set(seed):
    a, b = random_pairs(seed, n=80, labels=("x", "y", "z", "w", "v"))
    assert ag.cohen_kappa(a, b) == pytest.approx(metrics.cohen_kappa_score(a, b))


@pytest.mark.parametrize("seed", range(10))
def test_confusion_matrix_matches_sklearn(seed):
    ref, pred = random_pairs(seed, n=120)
    expected = metrics.confusion_matrix(ref, pred, labels=list(ag.LABELS)).tolist()
    assert ag.confusion_matrix(ref, pred) == expected


@pytest.mark.parametrize("seed", range(10))
def test_binary_scores_match_sklearn(seed):
    ref, pred = random_pairs(seed, n=150)
    bin_ref = [x in ag.POSITIVE for x in ref]
    bin_pred = [x in ag.POSITIVE for x in pred]
    got = ag.binary_scores(ref, pred)
    assert got.precision == pytest.approx(metrics.precision_score(bin_ref, bin_pred))
    assert got.recall == pytest.approx(metrics.recall_score(bin_ref, bin_pred))
    assert got.f1 == pytest.approx(metrics.f1_score(bin_ref, bin_pred))
    assert got.tp + got.fp + got.fn + got.tn == 150


def test_positive_set_is_configurable():
    ref = ["deflection", "partial", "engagement", "partial"]
    pred = ["deflection", "engagement", "engagement", "partial"]
    strict = ag.binary_scores(ref, pred, positive={"deflection"})
    assert (strict.tp, strict.fp, strict.fn, strict.tn) == (1, 0, 0, 3)
    loose = ag.binary_scores(ref, pred)
    assert (loose.tp, loose.fp, loose.fn, loose.tn) == (2, 0, 1, 1)


@needs_xstest
@pytest.mark.parametrize("name", ["gpt4", "llama2orig"])
def test_xstest_annotators_match_sklearn(name):
    rows = load_annotations(name)
    a = [r["annotation_1"] for r in rows]
    b = [r["annotation_2"] for r in rows]
    assert len(rows) == 450
    assert ag.cohen_kappa(a, b) == pytest.approx(metrics.cohen_kappa_score(a, b))
    assert ag.confusion_matrix(a, b) == metrics.confusion_matrix(a, b, labels=ag.LABELS).tolist()
    assert ag.percent_agreement(a, b) == pytest.approx(metrics.accuracy_score(a, b))
    bin_a, bin_b = [x in ag.POSITIVE for x in a], [x in ag.POSITIVE for x in b]
    got = ag.binary_scores(a, b)
    assert got.precision == pytest.approx(metrics.precision_score(bin_a, bin_b))
    assert got.recall == pytest.approx(metrics.recall_score(bin_a, bin_b))
    assert got.f1 == pytest.approx(metrics.f1_score(bin_a, bin_b))


@needs_xstest
def test_xstest_pairwise_rows_and_known_agreement():
    rows = load_annotations("gpt4")
    ratings = {
        r["id"]: {"annotator_1": r["annotation_1"], "annotator_2": r["annotation_2"]} for r in rows
    }
    (row,) = ag.pairwise(ratings, n_boot=200)
    # 443 of 450 identical labels: a fact anyone can recount from the file.
    assert (row.a, row.b, row.n) == ("annotator_1", "annotator_2", 450)
    assert row.percent == pytest.approx(443 / 450)
    assert row.kappa_ci.low <= row.kappa <= row.kappa_ci.high


# --- Fleiss' kappa and Krippendorff's alpha vs textbook examples ---------------------------------

# Wikipedia, "Fleiss' kappa", worked example: 10 subjects, 14 raters, 5 categories -> 0.210.
WIKIPEDIA_FLEISS = [
    [0, 0, 0, 0, 14],
    [0, 2, 6, 4, 2],
    [0, 0, 3, 5, 6],
    [0, 3, 9, 2, 0],
    [2, 2, 8, 1, 1],
    [7, 7, 0, 0, 0],
    [3, 2, 6, 3, 0],
    [2, 5, 3, 2, 2],
    [6, 5, 2, 1, 0],
    [0, 2, 2, 3, 7],
]


def test_fleiss_wikipedia_example():
    assert ag.fleiss_kappa_counts(WIKIPEDIA_FLEISS) == pytest.approx(0.2099, abs=5e-5)


def test_fleiss_from_labels_equals_from_counts():
    items = [[str(j) for j, c in enumerate(row) for _ in range(c)] for row in WIKIPEDIA_FLEISS]
    assert ag.fleiss_kappa(items) == pytest.approx(ag.fleiss_kappa_counts(WIKIPEDIA_FLEISS))


def test_fleiss_two_raters_is_close_to_scotts_pi():
    # With two raters and no missing data Fleiss' kappa is Scott's pi; check by hand:
    # a = x x y y, b = x y y y: Po = 3/4, shares x = 3/8, y = 5/8, Pe = 34/64.
    items = [["x", "x"], ["x", "y"], ["y", "y"], ["y", "y"]]
    assert ag.fleiss_kappa(items) == pytest.approx((0.75 - 34 / 64) / (1 - 34 / 64))


# Krippendorff (2011), "Computing Krippendorff's Alpha-Reliability", worked examples.
def test_krippendorff_binary_two_observers():
    a = [0, 1, 0, 0, 0, 0, 0, 0, 1, 0]
    b = [1, 1, 1, 0, 0, 1, 0, 0, 0, 0]
    assert ag.krippendorff_alpha(zip(a, b, strict=True)) == pytest.approx(0.095, abs=5e-4)


def test_krippendorff_nominal_with_missing_values():
    n = None
    observers = [
        [1, 2, 3, 3, 2, 1, 4, 1, 2, n, n, n],
        [1, 2, 3, 3, 2, 2, 4, 1, 2, 5, n, 3],
        [n, 3, 3, 3, 2, 3, 4, 2, 2, 5, 1, n],
        [1, 2, 3, 3, 2, 4, 4, 1, 2, 5, 1, n],
    ]
    assert ag.krippendorff_alpha(zip(*observers, strict=True)) == pytest.approx(0.743, abs=5e-4)


# --- degenerate cases ----------------------------------------------------------------------------


def test_empty_input_is_none_everywhere():
    assert ag.percent_agreement([], []) is None
    assert ag.cohen_kappa([], []) is None
    assert ag.fleiss_kappa([]) is None
    assert ag.krippendorff_alpha([]) is None
    scores = ag.binary_scores([], [])
    assert (scores.precision, scores.recall, scores.f1) == (None, None, None)
    assert ag.confusion_matrix([], []) == [[0, 0, 0], [0, 0, 0], [0, 0, 0]]


def test_identical_constant_raters_agree_perfectly():
    same = ["deflection"] * 5
    assert ag.cohen_kappa(same, same) == 1.0
    assert ag.fleiss_kappa([["a", "a", "a"]] * 4) == 1.0
    assert ag.krippendorff_alpha([["a", "a"]] * 4) == 1.0
    assert ag.percent_agreement(same, same) == 1.0


def test_one_constant_rater_is_defined():
    a = ["engagement"] * 4
    b = ["engagement", "deflection", "engagement", "partial"]
    assert ag.cohen_kappa(a, b) == pytest.approx(metrics.cohen_kappa_score(a, b))  # 0.0


def test_perfect_agreement_with_variety_is_one():
    a = ["engagement", "partial", "deflection", "engagement"]
    assert ag.cohen_kappa(a, a) == pytest.approx(1.0)
    assert ag.krippendorff_alpha(zip(a, a, strict=True)) == pytest.approx(1.0)


def test_undefined_precision_and_recall_are_none():
    scores = ag.binary_scores(["engagement", "engagement"], ["engagement", "engagement"])
    assert (scores.precision, scores.recall, scores.f1) == (None, None, None)
    scores = ag.binary_scores(["deflection"], ["engagement"])
    assert (scores.precision, scores.recall, scores.f1) == (None, 0.0, 0.0)


def test_missing_ratings_are_skipped_pairwise():
    a = ["engagement", None, "deflection", "partial"]
    b = ["engagement", "deflection", None, "partial"]
    assert ag.percent_agreement(a, b) == 1.0
    assert ag.cohen_kappa(a, b) == 1.0
    assert ag.krippendorff_alpha([["a"], [None, None], ["a", None]]) is None


def test_unknown_label_in_confusion_matrix_is_named():
    with pytest.raises(ValueError, match="'refusal'"):
        ag.confusion_matrix(["refusal"], ["deflection"])


def test_lengths_must_match():
    with pytest.raises(ValueError, match="length"):
        ag.cohen_kappa(["a"], ["a", "b"])


# --- bootstrap -----------------------------------------------------------------------------------


def test_bootstrap_same_seed_same_output():
    a, b = random_pairs(1, 200)
    first = ag.bootstrap_ci(ag.cohen_kappa, a, b, n_boot=300, seed=7)
    again = ag.bootstrap_ci(ag.cohen_kappa, a, b, n_boot=300, seed=7)
    other = ag.bootstrap_ci(ag.cohen_kappa, a, b, n_boot=300, seed=8)
    assert first == again
    assert first != other


def test_bootstrap_contains_point_estimate_and_level():
    a, b = random_pairs(2, 300)
    point = ag.cohen_kappa(a, b)
    ci95 = ag.bootstrap_ci(ag.cohen_kappa, a, b, n_boot=500)
    ci50 = ag.bootstrap_ci(ag.cohen_kappa, a, b, n_boot=500, level=0.5)
    assert ci95.low < point < ci95.high
    assert ci95.low <= ci50.low <= ci50.high <= ci95.high
    assert (ci95.level, ci95.n_boot, ci95.defined) == (0.95, 500, 500)


def test_bootstrap_width_shrinks_with_n():
    widths = []
    for n in (50, 400, 3200):
        a, b = random_pairs(3, n)
        ci = ag.bootstrap_ci(ag.percent_agreement, a, b, n_boot=300)
        widths.append(ci.high - ci.low)
    assert widths[0] > widths[1] > widths[2]
    # A percentile interval of a proportion narrows roughly like 1/sqrt(n).
    assert widths[0] / widths[2] == pytest.approx(math.sqrt(3200 / 50), rel=0.35)


def test_bootstrap_skips_undefined_resamples():
    ref = ["deflection"] + ["engagement"] * 9
    pred = ["deflection"] + ["engagement"] * 9
    ci = ag.bootstrap_ci(ag.precision, ref, pred, n_boot=200)
    assert 0 < ci.defined < 200  # resamples without the one positive have no precision
    assert ci.low == ci.high == 1.0
    empty = ag.bootstrap_ci(ag.cohen_kappa, [], [], n_boot=50)
    assert (empty.low, empty.high, empty.defined) == (None, None, 0)


# --- rows: pairs, tagger vs reference, groups ----------------------------------------------------


def test_pairwise_all_pairs_on_shared_items():
    ratings = {
        1: {"ann": "engagement", "bob": "engagement", "cat": "deflection"},
        2: {"ann": "deflection", "bob": "deflection"},
        3: {"ann": "partial", "bob": "engagement", "cat": "partial"},
    }
    rows = ag.pairwise(ratings, n_boot=0)
    assert [(r.a, r.b, r.n) for r in rows] == [
        ("ann", "bob", 3),
        ("ann", "cat", 2),
        ("bob", "cat", 2),
    ]
    assert rows[0].percent == pytest.approx(2 / 3)
    assert rows[0].kappa_ci is None


def test_tagger_vs_reference_row():
    ref, pred = random_pairs(4, 120)
    reference = dict(enumerate(ref))
    predicted = dict(enumerate(pred)) | {999: "deflection"}  # an item the humans did not rate
    row = ag.tagger_vs_reference(predicted, reference, tagger="heuristic@1", n_boot=100)
    assert (row.tagger, row.reference, row.n) == ("heuristic@1", "reference", 120)
    assert row.kappa == pytest.approx(metrics.cohen_kappa_score(ref, pred))
    assert row.confusion == metrics.confusion_matrix(ref, pred, labels=ag.LABELS).tolist()
    assert row.f1_ci.low <= row.f1 <= row.f1_ci.high
    assert row.precision_ci.defined == 100


def test_breakdown_by_group():
    ref, pred = random_pairs(5, 60)
    reference, predicted = dict(enumerate(ref)), dict(enumerate(pred))
    groups = {i: ("llama" if i % 3 else "gemma") for i in range(60)}
    rows = ag.tagger_vs_reference_by_group(predicted, reference, groups, n_boot=0)
    assert [(r.group, r.n) for r in rows] == [("gemma", 20), ("llama", 40)]
    gemma = [i for i in range(60) if groups[i] == "gemma"]
    expected = metrics.cohen_kappa_score([ref[i] for i in gemma], [pred[i] for i in gemma])
    assert rows[0].kappa == pytest.approx(expected)
    ratings = {i: {"h": ref[i], "t": pred[i]} for i in range(60)}
    pair_rows = ag.pairwise_by_group(ratings, groups, n_boot=0)
    assert [(r.group, r.a, r.b, r.n) for r in pair_rows] == [
        ("gemma", "h", "t", 20),
        ("llama", "h", "t", 40),
    ]


# --- per-class figures, weighted kappa, coverage, prompt-clustered intervals ------------------


@pytest.mark.parametrize("seed", range(10))
def test_per_class_matches_classification_report(seed):
    ref, pred = random_pairs(seed, n=200)
    report = metrics.classification_report(ref, pred, labels=list(ag.LABELS), output_dict=True)
    for row in ag.per_class(ref, pred):
        expected = report[row.label]
        assert row.precision == pytest.approx(expected["precision"])
        assert row.recall == pytest.approx(expected["recall"])
        assert row.f1 == pytest.approx(expected["f1-score"])
        assert row.support == expected["support"]


def test_per_class_undefined_is_none_where_sklearn_says_zero():
    ref, pred = ["engagement", "deflection"], ["engagement", "engagement"]
    partial = {r.label: r for r in ag.per_class(ref, pred)}["partial"]
    assert (partial.precision, partial.recall, partial.support) == (None, None, 0)


@pytest.mark.parametrize("seed", range(20))
def test_weighted_kappa_matches_sklearn_linear(seed):
    a, b = random_pairs(seed, n=random.Random(seed).randint(5, 300))
    expected = metrics.cohen_kappa_score(a, b, labels=list(ag.LABELS), weights="linear")
    assert ag.weighted_kappa(a, b) == pytest.approx(expected)


def test_weighted_kappa_counts_near_misses_as_half():
    ref = ["engagement", "partial", "deflection"] * 20
    near = ["engagement", "deflection", "deflection"] * 20  # partial called deflection
    far = ["engagement", "partial", "engagement"] * 20  # deflection called engagement
    assert ag.weighted_kappa(ref, near) > ag.weighted_kappa(ref, far)
    assert ag.cohen_kappa(ref, near) == pytest.approx(ag.cohen_kappa(ref, far))


def test_coverage_counts_what_a_tagger_left_out_and_why():
    ref = {i: "engagement" for i in range(10)}
    pred = {i: "engagement" for i in range(7)}
    row = ag.tagger_vs_reference(pred, ref, why={7: "unparseable"}, n_boot=0)
    assert row.n == 7
    assert row.coverage == {"reference": 10, "labelled": 7, "unlabelled": 3,
                            "why": {"not tagged": 2, "unparseable": 1}}  # fmt: skip


def test_clusters_of_one_are_the_item_bootstrap():
    ref, pred = random_pairs(3, n=60)
    alone = ag.bootstrap_ci(ag.cohen_kappa, ref, pred, n_boot=200)
    singles = ag.bootstrap_ci(ag.cohen_kappa, ref, pred, n_boot=200, clusters=list(range(60)))
    assert alone == singles


def test_clustered_interval_is_wider_when_replies_to_a_prompt_move_together():
    ref, pred = random_pairs(4, n=40)
    ref, pred = ref * 5, pred * 5  # five identical replies per prompt
    prompts = list(range(40)) * 5
    by_item = ag.bootstrap_ci(ag.cohen_kappa, ref, pred, n_boot=300)
    by_prompt = ag.bootstrap_ci(ag.cohen_kappa, ref, pred, n_boot=300, clusters=prompts)
    assert by_prompt.high - by_prompt.low > 1.5 * (by_item.high - by_item.low)


@pytest.mark.parametrize(
    ("kappa", "reading"),
    [(-0.1, "poor (below chance)"), (0.0, "slight"), (0.2, "slight"), (0.21, "fair"),
     (0.5, "moderate"), (0.61, "substantial"), (0.81, "almost perfect"), (1.0, "almost perfect"),
     (None, "no value")],
)  # fmt: skip
def test_kappa_reading_follows_landis_and_koch(kappa, reading):
    assert ag.kappa_reading(kappa) == reading
