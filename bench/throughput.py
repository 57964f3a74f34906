"""Batch throughput: the workbench's runner vs a bare litellm.acompletion loop.

A loopback OpenAI-compatible server answers every call after a fixed delay. The same calls go
through `dialogues run` (reading the prompt file, planning, the run record, retries, storage,
progress; all timed) and through a bare litellm loop, the floor the workbench is built on.
Prints calls/s, the ideal, and the workbench's own overhead per call.

    .venv/bin/python bench/throughput.py [--calls 500] [--delay 0.1] [--concurrency 1 8 32] [--passes 5]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

import subprocess  # noqa: E402

from dialogues.providers import hosted  # noqa: E402
from dialogues.run import batch  # noqa: E402
from dialogues.store import connect  # noqa: E402


def prompt_file(folder: Path, n: int) -> Path:
    """An independent prompt set of n prompts: n cells, one call each."""
    lines = "".join(f"  - id: q{i}\n    text: Question {i}?\n" for i in range(n))
    path = folder / "bench.yaml"
    path.write_text(f"id: bench\nmode: independent\nprompts:\n{lines}")
    return path


async def bare_litellm(url: str, calls: int, concurrency: int) -> float:
    """calls/s of litellm.acompletion with a semaphore: the floor.

    The same calls the workbench makes: `dialogues run`'s defaults for temperature and
    timeout, max_tokens as given, and no retries inside litellm.
    """
    litellm = hosted._load_litellm()
    sem = asyncio.Semaphore(concurrency)
    defaults = batch.BatchOptions()

    async def one(i: int) -> None:
        async with sem:
            await litellm.acompletion(
                model="openai/loopback",
                api_base=url,
                api_key="not-needed",
                messages=[{"role": "user", "content": f"Question {i}?"}],
                temperature=defaults.temperature,
                max_tokens=8,
                timeout=defaults.timeout,
                num_retries=0,
                max_retries=0,
            )

    started = time.perf_counter()
    await asyncio.gather(*(one(i) for i in range(calls)))
    return calls / (time.perf_counter() - started)


def workbench(url: str, calls: int, concurrency: int, folder: Path) -> float:
    """calls/s of `dialogues run`, all of it: reading the prompt file, planning, the run record,
    the calls, archive writes and the progress bar (drawn to /dev/null)."""
    archive = folder / "bench.duckdb"  # one archive for every pass, as a study keeps one
    opts = batch.BatchOptions(
        prompt_ref=str(prompt_file(folder, calls)),
        model_refs=("openai/loopback",),
        api_base=url,
        concurrency=concurrency,
        max_tokens=8,
    )
    with open(os.devnull, "w") as null, contextlib.redirect_stderr(null):
        started = time.perf_counter()
        summary = asyncio.run(batch.run(archive, opts, progress=True))
        elapsed = time.perf_counter() - started
    assert summary.done == calls, summary
    return calls / elapsed


SERVE = """
import gc, sys, time
sys.path.insert(0, sys.argv[2])
from servers import Answer, OpenAIServer
server = OpenAIServer(default=Answer("ok"), delay=float(sys.argv[1]), keep_requests=False)
print(server.start(), flush=True)
gc.freeze()  # a steady server: no full collections over its startup objects mid-pass
time.sleep(3600)
"""


def start_server(delay: float) -> tuple[subprocess.Popen, str]:
    """The loopback server in its own process, as a real API is: it must not share our cores'
    GIL with the client, or the client's own costs look bigger than they are."""
    proc = subprocess.Popen([sys.executable, "-c", SERVE, str(delay), str(ROOT / "tests")],
                            stdout=subprocess.PIPE, text=True)  # fmt: skip
    assert proc.stdout is not None
    return proc, proc.stdout.readline().strip()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=500)
    parser.add_argument("--delay", type=float, default=0.1)
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 8, 32])
    parser.add_argument("--passes", type=int, default=5, help="alternating passes per concurrency")
    args = parser.parse_args()
    hosted._load_litellm()  # import cost (~5 s) is paid once, outside every timing
    print(f"{args.calls} calls, server delay {args.delay * 1000:.0f} ms, {os.cpu_count()} cores")
    print(f"{'conc':>5} {'ideal/s':>9} {'litellm/s':>10} {'workbench/s':>12} {'ratio':>6} "
          f"{'overhead ms/call':>17} {'median pair ratio':>18} {'middle half':>11} "
          f"{'95% CI of median':>16}")  # fmt: skip
    server, url = start_server(args.delay)
    try:
        run_all(url, args)
    finally:
        server.kill()


def run_all(url: str, args: argparse.Namespace) -> None:
    """Both paths at every concurrency, side by side."""
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        asyncio.run(bare_litellm(url, 20, 4))  # warm the connection pool and code paths
        with connect(folder / "bench.duckdb"):  # the archive exists, as it does in a study
            pass
        for conc in args.concurrency:
            ideal = conc / args.delay if args.delay else float("inf")
            # Alternate the two paths, so a busy moment on a shared machine does not land on
            # one side only. On a 2-core VM one pass varies by ±15%, so report both each
            # path's best pass and the median ratio of passes run side by side.
            bares, ours = [], []
            for i in range(args.passes):
                if i % 2:  # which path goes first alternates too
                    ours.append(workbench(url, args.calls, conc, folder))
                bares.append(asyncio.run(bare_litellm(url, args.calls, conc)))
                if not i % 2:
                    ours.append(workbench(url, args.calls, conc, folder))
            bare, best = max(bares), max(ours)
            pairs = [o / b for o, b in zip(ours, bares, strict=True)]
            pair = statistics.median(pairs)
            low, high = _quartiles(pairs)
            ci_low, ci_high = _median_ci(pairs)
            overhead = (1 / best - 1 / bare) * 1000  # wall ms per call beyond the floor
            print(f"{conc:>5} {ideal:>9.1f} {bare:>10.1f} {best:>12.1f} {best / bare:>6.2f} "
                  f"{overhead:>17.2f} {pair:>18.3f} {low:>6.2f}–{high:.2f} "
                  f"{ci_low:>10.3f}–{ci_high:.3f}", flush=True)  # fmt: skip


def _median_ci(values: list[float], resamples: int = 2000) -> tuple[float, float]:
    """95% bootstrap interval of the median: is a figure near a target told apart from it?"""
    draw = random.Random(0)
    medians = sorted(
        statistics.median(draw.choices(values, k=len(values))) for _ in range(resamples)
    )
    return medians[int(0.025 * resamples)], medians[int(0.975 * resamples) - 1]


def _quartiles(values: list[float]) -> tuple[float, float]:
    """First and third quartile (both the value itself for one pass)."""
    if len(values) < 2:
        return values[0], values[0]
    q = statistics.quantiles(values, n=4, method="inclusive")
    return q[0], q[2]


if __name__ == "__main__":
    main()
