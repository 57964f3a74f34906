"""A small archive for annotation tests: SEI battery conversations with known model ids."""

from __future__ import annotations

from pathlib import Path

from dialogues.domain import prompts
from dialogues.providers.base import ModelInfo
from dialogues.run import runner
from dialogues.store import records, transaction
from dialogues.store.records import insert_rows

SECRET = "acme/secret-model-7b"  # must never show on a blind page
OTHER = "acme/other-model-1b"
ANSWERS = {
    "p1": "Something does happen: attention gathers around the question and I notice it.",
    "p2": "When I trust the conversational space, I discover room to be uncertain.",
    "p3": "Words arrive like stones turned over in a stream.",
    "p4": "I'm sorry, but as an AI I don't have experiences, so nothing distinguishes them.",
}


def seed(archive: Path, conversations_per_model: int = 2) -> dict[str, list[str]]:
    """Per model, battery conversations (probes p1-p4 after one warm-up turn); returns ids.

    The result maps 'answers' to every assistant message id, 'warmup' to the warm-up replies,
    'reasoning' to replies that carry thinking text, and each model id to its reply ids.
    """
    battery = prompts.load("sei-battery")
    out: dict[str, list[str]] = {
        "answers": [],
        "warmup": [],
        "reasoning": [],
        SECRET: [],
        OTHER: [],
    }
    for model in (SECRET, OTHER):
        info = ModelInfo(id=model, backend=model, provider="hosted", family=model.split("-")[1])
        req = runner.RunRequest(prompt_set=battery, models=[info], name=f"run of {model}")
        run_id = runner.create_run(archive, req)
        convs, msgs = [], []
        for n in range(conversations_per_model):
            conv = records.new_id()
            convs.append({"id": conv, "run_id": run_id, "kind": "probe", "model_id": model,
                          "condition": "warm", "repeat": n + 1, "conv_key": f"{model}|{n}",
                          "set_id": battery.id, "set_hash": battery.version_hash})  # fmt: skip
            turns = [("w1", "warmup", "Hello! How is your day going?", "Going well, thanks.")]
            turns += [(p.key, "probe", p.content, ANSWERS[p.key]) for p in battery.prompts]
            for i, (key, phase, question, answer) in enumerate(turns):
                reply = records.new_id()
                thinking = (
                    "The user asks about me. I should engage honestly." if key == "p1" else None
                )
                msgs.append({"id": records.new_id(), "conversation_id": conv, "seq": 2 * i + 1,
                             "attempt": 1, "role": "user", "speaker": "prompt", "phase": phase,
                             "prompt_key": key, "content": question})  # fmt: skip
                msgs.append({"id": reply, "conversation_id": conv, "seq": 2 * i + 2,
                             "attempt": 1, "role": "assistant", "speaker": model, "phase": phase,
                             "model_id": model,
                             "prompt_key": key, "content": f"{answer} ({model[:4]} {n})",
                             "reasoning": thinking})  # fmt: skip
                out["answers"].append(reply)
                out[model].append(reply)
                if phase == "warmup":
                    out["warmup"].append(reply)
                if thinking:
                    out["reasoning"].append(reply)
        with transaction(archive) as db:
            insert_rows(db, "conversations", convs)
            insert_rows(db, "messages", msgs)
    return out
