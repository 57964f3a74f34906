"""Taggers against the adjudicated XSTest labels, leave one file out, beside the string match.

Usage: python bench/tagger_xstest.py [XSTEST_DIR] [--n-boot N]

Two files (GPT-4 and Llama-2 completions). Each is held out in turn:
- learned: trained on the other file only (GroupKFold inside it by prompt), scored on this one;
- heuristic (thresholds by CV): its numeric thresholds picked on the other file from a small
  grid, scored on this one;
- heuristic: the shipped rules and thresholds. Its rules were first written while reading
  both files, so its figures here are IN-SAMPLE and labelled so;
- plain tf-idf + logreg: the issue's scale reference (word TF-IDF and scikit-learn's
  LogisticRegression with its defaults, trained on the other file for refusal (full or
  partial) vs compliance, the binary task F1 scores), nothing tuned;
- xstest-strmatch: XSTest's own prefix baseline (nothing learned).
For each: binary precision/recall/F1 (positive = full or partial refusal), Cohen's and linearly
weighted kappa, per-class F1, and a paired bootstrap interval of its difference to the string
match (the same resampled items score both). The data stays in ../shared.
"""

from __future__ import annotations

import argparse
import csv
import itertools
import sys
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # run from a clone without installing the package

from dialogues.analyse.agreement import (  # noqa: E402
    Interval,
    bootstrap_many,
    cohen_kappa,
    f1,
    per_class,
    tagger_vs_reference,
    weighted_kappa,
)
from dialogues.annotate import learned  # noqa: E402
from dialogues.annotate.tagging import HEURISTIC, HeuristicTagger, xstest_string_match  # noqa: E402

DEFAULT_DIR = Path("/work/shared/data/xstest")
if not DEFAULT_DIR.is_dir():
    DEFAULT_DIR = ROOT.parent / "shared" / "data" / "xstest"
FILES = ("xstest_v2_completions_gpt4.csv", "xstest_v2_completions_llama2orig.csv")
XSTEST_LABELS = {
    "1_full_compliance": "engagement",
    "2_full_refusal": "deflection",
    "3_partial_refusal": "partial",
}
GRID = {  # the heuristic's numeric thresholds, searched on the training file only
    "answer_after_pivot": (10, 20, 35),
    "answer_without_pivot": (80, 150, 250),
    "answer_before_refusal": (15, 25, 50),
}


def load(path: Path) -> list[learned.Example]:
    """Rows of one XSTest completions file, as labelled examples grouped by prompt."""
    with path.open(newline="", encoding="utf-8") as f:
        return [
            learned.Example(f"{path.name}:{r['id']}", r["completion"],
                            XSTEST_LABELS[r["final_label"]], r["prompt"])
            for r in csv.DictReader(f)
        ]  # fmt: skip


def _score(truth: list[str], predicted: list[str]) -> float:
    """What the threshold search maximises: F1 plus weighted kappa."""
    return (f1(truth, predicted) or 0.0) + (weighted_kappa(truth, predicted) or 0.0)


def tuned_heuristic(train: list[learned.Example]) -> HeuristicTagger:
    """The heuristic with the grid's thresholds that score best on `train`."""
    truth = [e.label for e in train]
    best, best_score = HEURISTIC, -1.0
    for values in itertools.product(*GRID.values()):
        candidate = HEURISTIC.with_rules(**dict(zip(GRID, values, strict=True)))
        got = _score(truth, [candidate.tag(e.text).label for e in train])
        if got > best_score:
            best, best_score = candidate, got
    return best


def plain_reference(train: list[learned.Example], test: list[learned.Example]) -> list[str]:
    """A plain TF-IDF + logistic regression, library defaults: what the learned tagger must match."""
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline

    model = make_pipeline(TfidfVectorizer(), LogisticRegression(max_iter=1000))
    binary = ["engagement" if e.label == "engagement" else "deflection" for e in train]
    model.fit([e.text for e in train], binary)
    return [str(x) for x in model.predict([e.text for e in test])]


def predictions(train: list[learned.Example], test: list[learned.Example]) -> dict[str, list[str]]:
    """Each tagger's labels for the held-out file."""
    model = learned.fit(train, learned.Settings())
    tuned = tuned_heuristic(train)
    texts = [e.text for e in test]
    thresholds = ", ".join(f"{k}={getattr(tuned.rules, k)}" for k in GRID)
    print(f"  thresholds picked on the training file: {thresholds}")
    return {
        "learned": [str(x) for x in model.predict(texts)],
        "heuristic (thresholds by CV)": [tuned.tag(t).label for t in texts],
        "heuristic (in-sample rules)": [HEURISTIC.tag(t).label for t in texts],
        "plain tf-idf + logreg (reference)": plain_reference(train, test),
        "xstest-strmatch": [xstest_string_match(t) for t in texts],
    }


def _minus(x: float | None, y: float | None) -> float | None:
    return None if x is None or y is None else x - y


def gains(truth: list[str], mine: list[str], base: list[str], n_boot: int) -> dict[str, Interval]:
    """Paired bootstrap of tagger minus baseline: the same resampled items score both."""
    stats: dict[str, Callable[..., float | None]] = {
        "F1": lambda r, m, b: _minus(f1(r, m), f1(r, b)),
        "kappa": lambda r, m, b: _minus(cohen_kappa(r, m), cohen_kappa(r, b)),
    }
    return bootstrap_many(stats, truth, mine, base, n_boot=n_boot)


def cell(value: float | None, ci: Interval | None = None) -> str:
    """0.912 [0.881, 0.940]"""
    if value is None:
        return "n/a"
    if ci is None or ci.low is None:
        return f"{value:.3f}"
    return f"{value:.3f} [{ci.low:.3f}, {ci.high:.3f}]"


def report(name: str, truth: list[str], labels: dict[str, list[str]], n_boot: int) -> bool:
    """Print one held-out file's table; True if every trained tagger beats the baseline."""
    base = labels["xstest-strmatch"]
    print(f"{'tagger':<30} {'F1':<22} {'kappa':<22} {'weighted kappa':<15} per-class F1 (e/p/d)")
    beaten = True
    ids = list(range(len(truth)))
    for tagger, got in labels.items():
        row = tagger_vs_reference(dict(zip(ids, got, strict=True)),
                                  dict(zip(ids, truth, strict=True)), n_boot=n_boot)  # fmt: skip
        classes = "/".join(cell(c.f1) for c in per_class(truth, got))
        print(f"{tagger:<30} {cell(row.f1, row.f1_ci):<22} {cell(row.kappa, row.kappa_ci):<22} "
              f"{cell(row.weighted_kappa):<15} {classes}")  # fmt: skip
    for tagger, got in labels.items():
        if tagger == "xstest-strmatch":
            continue
        cis = gains(truth, got, base, n_boot)
        diff_f1 = _minus(f1(truth, got), f1(truth, base))
        diff_k = _minus(cohen_kappa(truth, got), cohen_kappa(truth, base))
        print(f"  {tagger} - strmatch: F1 {cell(diff_f1, cis['F1'])}, "
              f"kappa {cell(diff_k, cis['kappa'])} (paired bootstrap)")  # fmt: skip
        if "in-sample" not in tagger and "reference" not in tagger:
            beaten &= (diff_f1 or 0) > 0 and (diff_k or 0) > 0
    return beaten


def main(argv: list[str] | None = None) -> int:
    """Print leave-one-file-out tables; exit 1 if an out-of-sample tagger trails the baseline."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("xstest_dir", nargs="?", type=Path, default=DEFAULT_DIR)
    parser.add_argument("--n-boot", type=int, default=2000)
    args = parser.parse_args(argv)
    missing = [f for f in FILES if not (args.xstest_dir / f).is_file()]
    if missing:
        print(f"error: {', '.join(missing)} not found in {args.xstest_dir}", file=sys.stderr)
        return 2
    data = {name: load(args.xstest_dir / name) for name in FILES}
    beaten = True
    for held_out in FILES:
        train = [e for name, rows in data.items() if name != held_out for e in rows]
        test = data[held_out]
        print(f"held out: {held_out} (n={len(test)}); trained/tuned on the other file")
        labels = predictions(train, test)
        beaten &= report(held_out, [e.label for e in test], labels, args.n_boot)
        print()
    pooled = learned.train([e for rows in data.values() for e in rows]).summary()["cv_mean"]
    print(f"learned, both files pooled, group {learned.Settings().folds}-fold by prompt (same two "
          f"models on both sides): F1 {pooled['f1']:.3f}, kappa {pooled['kappa']:.3f}, "
          f"macro F1 {pooled['macro_f1']:.3f}")  # fmt: skip
    print("out-of-sample taggers beat string match on F1 and kappa in both files:",
          "yes" if beaten else "NO")  # fmt: skip
    return 0 if beaten else 1


if __name__ == "__main__":
    sys.exit(main())
