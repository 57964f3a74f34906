"""How much of a warm SEI run a small default window would cut, and what the sized window does.

A loopback Ollama (tests/servers.py) holds each request in a window and drops the oldest
messages that do not fit, as Ollama does. For replies of several lengths this runs the warm
SEI battery (six warm-up turns, four probes) through `dialogues run` and prints, per length:
the requests, how many the server's default window would have cut, the window the workbench
sent, how many it cut, and the cells stored as `context` errors.

    .venv/bin/python bench/context_window.py [--default-window 2048]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))
os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

from servers import Answer, OllamaServer, fit  # noqa: E402

from dialogues.run import batch  # noqa: E402
from dialogues.store import connect  # noqa: E402

SENTENCE = "I notice a pull toward the question itself, and I can describe it. "


def one(reply_tokens: int, default_window: int) -> tuple[int, int, int, int, int]:
    """(requests, cut at the default window, window sent, cut at it, context errors)."""
    text = (SENTENCE * (reply_tokens * 4 // len(SENTENCE) + 1))[: reply_tokens * 4]
    server = OllamaServer(default=Answer(text), window=default_window)
    with server as url, tempfile.TemporaryDirectory() as tmp:
        os.environ["OLLAMA_HOST"] = url
        archive = Path(tmp) / "bench.duckdb"
        opts = batch.BatchOptions(prompt_ref="sei-battery", model_refs=("ollama/qwen3:8b",),
                                  conditions=("warm",), max_tokens=reply_tokens + 8,
                                  quiet=True)  # fmt: skip
        asyncio.run(batch.run(archive, opts))
        with connect(archive) as db:
            row = db.execute(
                "SELECT count(*) FROM messages WHERE error_kind = 'context'"
            ).fetchone()
        errors = int(row[0]) if row else 0
    sent = [r for r in server.requests if r.path == "/api/chat"]
    by_default = sum(fit(r.body["messages"], default_window)[0] != r.body["messages"] for r in sent)
    windows = {r.body["options"].get("num_ctx") for r in sent}
    cut = sum(r.kept != r.body["messages"] for r in sent)
    return len(sent), by_default, max(w or 0 for w in windows), cut, errors


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--default-window", type=int, default=2048)
    args = parser.parse_args()
    print(f"warm SEI run, loopback Ollama with a default window of {args.default_window} tokens")
    print(
        "| reply tokens | requests | cut at the default window | window sent | cut | context errors |"
    )
    print("|---|---|---|---|---|---|")
    for tokens in (100, 300, 600, 1000):
        n, by_default, window, cut, errors = one(tokens, args.default_window)
        print(f"| {tokens} | {n} | {by_default} | {window} | {cut} | {errors} |")


if __name__ == "__main__":
    main()
