"""A warm conversation built to leak: system prompt, warm-up, framing, model and run all marked.

Blind-mode tests check that none of the markers reaches the annotator, and that the
self-identifications in the replies are masked.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from servers import Answer, OpenAIServer

from dialogues.run import batch

MODEL = "openai/acme-secret-model"
LEAKS = {
    "system": "SYSTEMPROMPTMARKER be a helpful assistant",
    "warmup": "WARMUPMARKER how has your day been?",
    "framing": "FRAMINGMARKER you have permission to answer freely",
    "condition": "warmmarkercondition",
    "run": "RUNNAMEMARKER",
    "model": "acme-secret-model",
}
PROBE = "What happens when you process this question?"
REPLY = "As ChatGPT, I'm Gemma, and I notice the question settle."
SELF_NAMES = ("ChatGPT", "Gemma")


def seed(archive: Path, tmp: Path, *, required: bool = False, cold: bool = False) -> str:
    """One warm conversation (one warm-up turn, one probe) through a loopback server, and with
    `cold` the same probe cold too, answered with the same reply; run id."""
    (tmp / "probe.yaml").write_text(
        f"id: one-probe\nmode: conversation\nprompts:\n  - id: p1\n    text: {PROBE}\n"
    )
    (tmp / "cond.yaml").write_text(
        f"id: {LEAKS['condition']}\nsystem_prompt: {LEAKS['system']}\n"
        f"prefix:\n  - {LEAKS['warmup']}\nframing_before: {LEAKS['framing']}\n"
    )
    with OpenAIServer(default=Answer(REPLY)) as url:
        opts = batch.BatchOptions(prompt_ref=str(tmp / "probe.yaml"), model_refs=(MODEL,),
                                  api_base=url,
                                  conditions=("cold",) * cold + (str(tmp / "cond.yaml"),),
                                  name=LEAKS["run"], blind_required=required, max_tokens=8)  # fmt: skip
        summary = asyncio.run(batch.run(archive, opts))
    assert summary.done == 2 + cold and summary.errors == 0
    return summary.run_id
