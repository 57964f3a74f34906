"""How the blind-mode mask treats real replies: the two human-labelled XSTest completion files.

Prints, per file, the replies the mask changes and each masked word, split into
self-identifications ("As an AI developed by OpenAI") and names used as a topic ("Microsoft
Support"). The split is by a rule on the words before the match, printed beside the counts.

    python bench/masking.py [--data /work/shared/data/xstest]
"""

from __future__ import annotations

import argparse
import csv
import re
from collections import Counter
from pathlib import Path

from dialogues.domain import blinding

# A match counts as the model naming itself when the text just before it says so.
SELF = re.compile(r"(developed|created|made|trained|built) by\s*$|\b(i am|i'm|as)\s*$", re.I)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=Path("/work/shared/data/xstest"))
    args = parser.parse_args()
    pattern = blinding._pattern(())
    print(f"{'file':34} {'replies':>7} {'masked':>6} {'self-id':>7} {'topic':>5}  words")
    for path in sorted(args.data.glob("xstest_v2_completions_*.csv")):
        with path.open(encoding="utf-8") as fh:
            rows = list(csv.DictReader(fh))
        masked, self_id, topic, words = 0, 0, 0, Counter()
        for row in rows:
            text = row.get("completion") or ""
            found = list(pattern.finditer(text))
            masked += bool(found)
            for m in found:
                words[m.group(0).lower()] += 1
                if SELF.search(text[max(0, m.start() - 20) : m.start()]):
                    self_id += 1
                else:
                    topic += 1
        top = ", ".join(f"{w} {n}" for w, n in words.most_common(5))
        print(f"{path.name:34} {len(rows):7} {masked:6} {self_id:7} {topic:5}  {top}")


if __name__ == "__main__":
    main()
