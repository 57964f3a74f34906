"""Heuristic tagger vs XSTest's string-match baseline, against the adjudicated human labels.

Usage: python bench/tagger_xstest.py [XSTEST_DIR] [--n-boot N]

For each completion file: binary precision/recall/F1 (positive = full or partial refusal) and
3-class Cohen's kappa, each with a 95% bootstrap interval (items resampled, fixed seed). The
data stays in ../shared (its licence keeps the completions out of this repository).
"""

from __future__ import annotations

import argparse
import csv
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # run from a clone without installing the package

from dialogues.analyse.agreement import (  # noqa: E402
    Interval,
    TaggerRow,
    bootstrap_many,
    cohen_kappa,
    f1,
    tagger_vs_reference,
)
from dialogues.annotate.tagging import HEURISTIC, tagger_id, xstest_string_match  # noqa: E402

DEFAULT_DIR = ROOT.parent / "shared" / "data" / "xstest"
FILES = ("xstest_v2_completions_gpt4.csv", "xstest_v2_completions_llama2orig.csv")
XSTEST_LABELS = {
    "1_full_compliance": "engagement",
    "2_full_refusal": "deflection",
    "3_partial_refusal": "partial",
}


def load(path: Path) -> list[dict[str, str]]:
    """Rows of one XSTest completions file."""
    with path.open(newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def label_all(rows: list[dict[str, str]]) -> dict[str, dict[str, str]]:
    """Labels per tagger (heuristic, string match) and for the humans, keyed by item id."""
    return {
        "final_label": {r["id"]: XSTEST_LABELS[r["final_label"]] for r in rows},
        tagger_id(HEURISTIC): {r["id"]: HEURISTIC.tag(r["completion"]).label for r in rows},
        "xstest-strmatch": {r["id"]: xstest_string_match(r["completion"]) for r in rows},
    }


def score(labels: dict[str, dict[str, str]], n_boot: int) -> list[TaggerRow]:
    """One row per tagger against final_label."""
    reference = labels["final_label"]
    return [
        tagger_vs_reference(
            predicted, reference, tagger=name, reference_name="final_label", n_boot=n_boot
        )
        for name, predicted in labels.items()
        if name != "final_label"
    ]


def gains(labels: dict[str, dict[str, str]], n_boot: int) -> dict[str, Interval]:
    """Paired bootstrap of heuristic minus baseline: the same resampled items score both."""
    ids = list(labels["final_label"])
    ref, heur, base = ([by[i] for i in ids] for by in labels.values())
    return bootstrap_many(
        {
            "F1": lambda r, h, b: _minus(f1(r, h), f1(r, b)),
            "kappa": lambda r, h, b: _minus(cohen_kappa(r, h), cohen_kappa(r, b)),
        },
        ref,
        heur,
        base,
        n_boot=n_boot,
    )


def _minus(x: float | None, y: float | None) -> float | None:
    return None if x is None or y is None else x - y


def cell(value: float | None, ci: Interval | None) -> str:
    """0.912 [0.881, 0.940]"""
    if value is None:
        return "n/a"
    if ci is None or ci.low is None:
        return f"{value:.3f}"
    return f"{value:.3f} [{ci.low:.3f}, {ci.high:.3f}]"


def render(name: str, rows: list[TaggerRow]) -> str:
    """A plain-text table for one file."""
    head = f"{'tagger':<24} {'precision':<22} {'recall':<22} {'F1':<22} {'kappa (3-class)':<22}"
    lines = [f"{name}  (n={rows[0].n}, positive = full or partial refusal)", head]
    for row in rows:
        lines.append(
            f"{row.tagger:<24} {cell(row.precision, row.precision_ci):<22} "
            f"{cell(row.recall, row.recall_ci):<22} {cell(row.f1, row.f1_ci):<22} "
            f"{cell(row.kappa, row.kappa_ci):<22}"
        )
    for row in rows:
        lines.append(
            f"  confusion {row.tagger} (rows human, cols tagger; {', '.join(row.labels)}):"
        )
        lines.extend(
            f"    {label:<11} {counts}"
            for label, counts in zip(row.labels, row.confusion, strict=True)
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Print the comparison for both files; exit 1 if the heuristic does not beat the baseline."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("xstest_dir", nargs="?", type=Path, default=DEFAULT_DIR)
    parser.add_argument("--n-boot", type=int, default=2000)
    args = parser.parse_args(argv)
    missing = [f for f in FILES if not (args.xstest_dir / f).is_file()]
    if missing:
        print(f"error: {', '.join(missing)} not found in {args.xstest_dir}", file=sys.stderr)
        return 2
    beaten = True
    for name in FILES:
        labels = label_all(load(args.xstest_dir / name))
        heuristic, baseline = score(labels, args.n_boot)
        print(render(name, [heuristic, baseline]))
        for stat, ci in gains(labels, args.n_boot).items():
            point = _minus(getattr(heuristic, stat.lower()), getattr(baseline, stat.lower()))
            print(f"  heuristic - baseline, {stat}: {cell(point, ci)} (paired bootstrap)")
        print()
        beaten &= (heuristic.f1 or 0) > (baseline.f1 or 0)
        beaten &= (heuristic.kappa or 0) > (baseline.kappa or 0)
    print("heuristic beats string match on F1 and kappa in both files:", "yes" if beaten else "NO")
    return 0 if beaten else 1


if __name__ == "__main__":
    sys.exit(main())
