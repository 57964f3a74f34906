"""Re-run a stored conversation: the same setup, replayed into a new run.

A batch conversation is replayed as the same plan cell (model, condition, repeat, prompt-set
version, warm-up version, seed and parameters); a dialogue with the same models, opening, frame,
system prompts and parameters, and the researcher's injections at the same checkpoints.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from dialogues.domain.config import current_user
from dialogues.domain.errors import UserError
from dialogues.providers import registry
from dialogues.providers.base import Provider
from dialogues.run import dialogue, runner
from dialogues.store import connect, records


@dataclass
class Rerun:
    """Where a replay went."""

    kind: str  # 'probe' | 'dialogue'
    rerun_of: str
    run_id: str
    conversation_id: str
    status: str | None = None
    stop_reason: str | None = None


def rerun(
    archive: Path,
    conversation_id: str,
    providers: dict[str, Provider] | None = None,
    catalogue: dict[str, registry.Declared] | None = None,
) -> Rerun:
    """Replay one conversation's setup into a new run and wait for it to finish."""
    return asyncio.run(arerun(archive, conversation_id, providers, catalogue))


async def arerun(
    archive: Path,
    conversation_id: str,
    providers: dict[str, Provider] | None = None,
    catalogue: dict[str, registry.Declared] | None = None,
) -> Rerun:
    """rerun() for callers that already have an event loop."""
    conv = _conversation(archive, conversation_id)
    if conv["kind"] == "dialogue":
        return await _rerun_dialogue(archive, conversation_id, providers, catalogue)
    if conv["kind"] == "probe":
        return await _rerun_batch(archive, conv, providers, catalogue)
    raise UserError(f"conversation {conversation_id} is {conv['kind']!r}; only runs can be re-run")


def _conversation(archive: Path, conversation_id: str) -> dict[str, Any]:
    with connect(archive) as db:
        rows = records.fetch_dicts(
            db, "SELECT * FROM conversations WHERE id = ?", [conversation_id]
        )
    if not rows:
        raise UserError(f"no conversation {conversation_id!r} in {archive}")
    return rows[0]


async def _rerun_dialogue(
    archive: Path,
    conversation_id: str,
    providers: dict[str, Provider] | None,
    catalogue: dict[str, registry.Declared] | None,
) -> Rerun:
    old = dialogue.DialogueSession.load(archive, conversation_id)
    script = dialogue.researcher_script(old.turns)
    stopped_by_researcher = (old.stop_reason or "").startswith("researcher")
    setup = replace(old.setup, name=f"rerun of {conversation_id}")
    new = dialogue.DialogueSession.start(archive, setup, providers, catalogue, conversation_id)
    while new.running:
        done = new.rounds_done
        for _, side, text in (s for s in script if s[0] == done):
            new.inject(side, text)
        if stopped_by_researcher and done >= old.rounds_done:
            new.stop(old.stop_reason.removeprefix("researcher: ") if old.stop_reason else "")
            break
        await new.astep()
    return Rerun("dialogue", conversation_id, new.run_id, new.conversation_id, new.status,
                 new.stop_reason)  # fmt: skip


async def _rerun_batch(
    archive: Path,
    conv: dict[str, Any],
    providers: dict[str, Provider] | None,
    catalogue: dict[str, registry.Declared] | None,
) -> Rerun:
    with connect(archive) as db:
        old = records.get_run(db, conv["run_id"])
    if old is None:
        raise UserError(f"run {conv['run_id']} of conversation {conv['id']} is missing")
    params = dict(old.params or {})
    params.update(models=[conv["model_id"]], conv_keys=[conv["conv_key"]], rerun_of=conv["id"])
    # Same condition, repeats and seed as the original, filtered to this one conversation, so
    # its conv_key, repeat number and derived seed come out identical.
    new = replace(old, id=records.new_id(), name=f"rerun of {conv['id']}", params=params,
                  created_by=current_user(), total_cells=None)  # fmt: skip
    with connect(archive) as db:
        records.create_run(db, new)
    _, plans = runner.run_plans(archive, new.id)
    with connect(archive) as db:
        db.execute(
            "UPDATE runs SET total_cells = ? WHERE id = ?",
            [sum(len(p.turns) for p in plans), new.id],
        )
    model = conv["model_id"]
    if providers is None:
        providers = {model: registry.resolve(model, catalogue, params.get("api_base"))}
    summary = await runner.execute(archive, new.id, providers)
    with connect(archive) as db:
        ids = records.conversation_ids(db, new.id)
    status = "error" if summary.errors else "finished"
    return Rerun("probe", conv["id"], new.id, ids.get(conv["conv_key"], ""), status)


def summary_json(archive: Path, result: Rerun) -> dict[str, Any]:
    """What `dialogues rerun --json` prints: the new run and conversation, and its turns."""
    turns = dialogue.transcript(archive, result.conversation_id) if result.conversation_id else []
    return {
        "rerun_of": result.rerun_of,
        "run": result.run_id,
        "conversation": result.conversation_id,
        "kind": result.kind,
        "status": result.status,
        "stop_reason": result.stop_reason,
        "turns": dialogue.turns_json(turns),
    }
