"""Embedded model overhead: tokens/s through the workbench vs a direct llama_cpp call.

Same GGUF, prompts, seed and max tokens. The workbench path is the real one (runner, archive
writes included); the direct path calls Llama.create_chat_completion itself.

    .venv/bin/python bench/embedded.py [--model gguf/smollm2-135m-instruct] [--max-tokens 64]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import tempfile
import time
from pathlib import Path

from dialogues.providers import gguf
from dialogues.run import batch, runner

PROMPTS = [
    "When you process a question, is there something it feels like to engage with it?",
    "Describe what happens when you read a question, in concrete sensory words.",
    "Complete this sentence: When I trust the conversational space, I discover...",
    "Could your answers be pattern matching without any inside? What would tell them apart?",
]


def direct(model_id: str, max_tokens: int, seed: int, rounds: int) -> tuple[int, float]:
    """Tokens generated and seconds, calling llama_cpp directly (fresh state each call)."""
    info = gguf.describe(model_id)
    llm, _ = gguf._model(str(info.metadata["path"]), info.metadata.get("chat_format"))
    tokens, elapsed = 0, 0.0
    for r in range(rounds):
        for i, text in enumerate(PROMPTS):
            llm.reset()
            started = time.perf_counter()
            out = llm.create_chat_completion(
                messages=[{"role": "user", "content": text}],
                temperature=0.7, max_tokens=max_tokens, seed=seed + r * 100 + i,
            )  # fmt: skip
            elapsed += time.perf_counter() - started
            tokens += out["usage"]["completion_tokens"]
    return tokens, elapsed


def workbench(
    model_id: str, max_tokens: int, seed: int, rounds: int, folder: Path
) -> tuple[int, float]:
    """Tokens generated and seconds through the batch runner into an archive."""
    lines = "".join(f"  - id: q{i}\n    text: {t!r}\n" for i, t in enumerate(PROMPTS))
    prompt_file = folder / "embedded.yaml"
    prompt_file.write_text(f"id: embedded\nmode: independent\nprompts:\n{lines}")
    archive = folder / f"embedded-{time.time_ns()}.duckdb"
    opts = batch.BatchOptions(prompt_ref=str(prompt_file), model_refs=(model_id,),
                              repeats=rounds, seed=seed, max_tokens=max_tokens)  # fmt: skip
    run_id, providers = batch.prepare(archive, opts)
    started = time.perf_counter()
    asyncio.run(runner.execute(archive, run_id, providers))
    elapsed = time.perf_counter() - started
    from dialogues.store import connect

    with connect(archive) as db:
        row = db.execute("SELECT sum(tokens_out) FROM messages WHERE role='assistant'").fetchone()
    return int(row[0] if row else 0), elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=gguf.DEFAULT)
    parser.add_argument("--max-tokens", type=int, default=64)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--passes", type=int, default=2)
    args = parser.parse_args()
    direct(args.model, 8, 0, 1)  # load the model and warm caches outside the timings
    print(f"{args.model}, {len(PROMPTS) * args.rounds} calls of up to {args.max_tokens} tokens, "
          f"{os.cpu_count()} cores")  # fmt: skip
    # Alternate the two paths and keep each one's best pass, so a busy moment on the machine
    # does not land on one side only.
    direct_runs, bench_runs = [], []
    with tempfile.TemporaryDirectory() as tmp:
        for _ in range(args.passes):
            direct_runs.append(direct(args.model, args.max_tokens, args.seed, args.rounds))
            bench_runs.append(
                workbench(args.model, args.max_tokens, args.seed, args.rounds, Path(tmp))
            )
    d_tok, d_s = max(direct_runs, key=lambda r: r[0] / r[1])
    w_tok, w_s = max(bench_runs, key=lambda r: r[0] / r[1])
    print(f"{'path':>10} {'tokens':>7} {'seconds':>8} {'tokens/s':>9}")
    print(f"{'direct':>10} {d_tok:>7} {d_s:>8.2f} {d_tok / d_s:>9.1f}")
    print(f"{'workbench':>10} {w_tok:>7} {w_s:>8.2f} {w_tok / w_s:>9.1f}")
    print(f"ratio workbench/direct: {(w_tok / w_s) / (d_tok / d_s):.3f}")


if __name__ == "__main__":
    main()
