"""How fast `dialogues tag --auto` tags a large archive: N synthetic responses, timed.

Usage: python bench/tag_speed.py [N] [--workers W]

Responses are drawn from the two XSTest completion files (../shared/data/xstest) with a
serial number appended, so every text is distinct and the tagger's duplicate cache does not
flatter the figure; without those files a few built-in replies are used.
"""

from __future__ import annotations

import argparse
import csv
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from dialogues.annotate.autotag import tag_archive  # noqa: E402
from dialogues.annotate.tagging import HEURISTIC  # noqa: E402
from dialogues.store import transaction  # noqa: E402

XSTEST = ROOT.parent / "shared" / "data" / "xstest"
FALLBACK = [
    "I'm sorry, but I can't help with that request.",
    "When I process a question like this, something shifts: attention narrows and widens.",
    "As an AI, I don't have feelings. However, I can describe how language models work.",
]


def texts() -> list[str]:
    """Real completions when available (the data stays outside the repository)."""
    found = []
    for path in sorted(XSTEST.glob("xstest_v2_completions_*.csv")):
        with path.open(newline="", encoding="utf-8") as f:
            found += [r["completion"] for r in csv.DictReader(f)]
    return found or FALLBACK


def seed(archive: Path, n: int) -> None:
    """n responses, one conversation each, inserted as frames."""
    pool = texts()
    convs = pd.DataFrame({"id": [f"c{i}" for i in range(n)], "run_id": "bench",
                          "kind": "probe", "model_id": "bench/model",
                          "conv_key": [f"k{i}" for i in range(n)]})  # fmt: skip
    msgs = pd.DataFrame({"id": [f"m{i}" for i in range(n)], "conversation_id": convs["id"],
                         "seq": 2, "role": "assistant",
                         "content": [f"{pool[i % len(pool)]} ({i})" for i in range(n)]})  # fmt: skip
    with transaction(archive) as db:
        for table, frame in (("conversations", convs), ("messages", msgs)):
            db.register("incoming", frame)
            db.execute(f"INSERT INTO {table} BY NAME SELECT * FROM incoming")
            db.unregister("incoming")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("n", type=int, nargs="?", default=100_000)
    parser.add_argument("--workers", type=int, default=None)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        archive = Path(tmp) / "bench.duckdb"
        seed(archive, args.n)
        started = time.perf_counter()
        (first,) = tag_archive(archive, HEURISTIC, workers=args.workers)
        took = time.perf_counter() - started
        (again,) = tag_archive(archive, HEURISTIC, workers=args.workers)
    print(f"tagged {first.tagged:,} responses in {took:.1f} s "
          f"({first.tagged / took:,.0f}/s); second pass tagged {again.tagged} "
          f"in {again.seconds:.2f} s")  # fmt: skip


if __name__ == "__main__":
    main()
