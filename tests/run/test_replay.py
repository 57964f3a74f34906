"""replay: a stored conversation's setup run again into a new run, the same requests turn by turn."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest
from servers import Answer, OpenAIServer, Request

from dialogues.domain.errors import UserError
from dialogues.run import batch, replay
from dialogues.store import connect, records


def echo(request: Request) -> Answer:
    return Answer(f"reply {len(request.body['messages'])}")


def requests(archive: Path, run_id: str) -> list[dict]:
    with connect(archive) as db:
        rows = records.fetch_dicts(
            db,
            "SELECT m.request_json FROM messages m JOIN conversations c ON c.id = m.conversation_id"
            " WHERE c.run_id = ? AND m.role = 'assistant' ORDER BY m.seq",
            [run_id],
        )
    return [json.loads(r["request_json"]) for r in rows]


def test_rerun_of_a_batch_conversation_sends_the_same_requests(
    archive: Path, tiny_set: Path
) -> None:
    server = OpenAIServer(echo)
    with server:
        opts = batch.BatchOptions(prompt_ref=str(tiny_set), model_refs=("openai/one",),
                                  api_base=server.url, max_tokens=8, seed=3, quiet=True)  # fmt: skip
        asyncio.run(batch.run(archive, opts))
        with connect(archive) as db:
            ((old_run, conv_id),) = db.execute("SELECT run_id, id FROM conversations").fetchall()
        result = replay.rerun(archive, conv_id)
    assert (result.kind, result.rerun_of, result.status) == ("probe", conv_id, "finished")
    assert result.run_id != old_run and result.conversation_id != conv_id
    assert requests(archive, result.run_id) == requests(archive, old_run)
    summary = replay.summary_json(archive, result)
    assert summary["rerun_of"] == conv_id and summary["run"] == result.run_id


def test_only_runs_can_be_rerun(archive: Path) -> None:
    with pytest.raises(UserError):
        replay.rerun(archive, "no-such-conversation")
    with connect(archive) as db:
        db.execute("INSERT INTO conversations (id, run_id, kind, conv_key) "
                   "VALUES ('imp', 'r', 'import', 'k')")  # fmt: skip
    with pytest.raises(UserError, match="only runs can be re-run"):
        replay.rerun(archive, "imp")
