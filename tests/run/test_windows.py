"""Faithful context: one window per model per run, cut prompts are `context` errors, refusals.

The fake Ollama holds a conversation in a small default window and cuts what does not fit
silently, as Ollama does; only its prompt_eval_count tells.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest
from click.testing import CliRunner
from conftest import SMOL
from servers import Answer, OllamaModel, OllamaServer, fit

from dialogues.cli import cli
from dialogues.domain.errors import UserError
from dialogues.run import batch, runner
from dialogues.store import connect, records

# About 600 tokens a reply, the length of a thoughtful answer to a probe.
LONG = "I notice a pull toward the question itself, and I can describe it. " * 36
TINY = OllamaModel("tiny:1b", "llama", "1B", "Q4_0", 1024)
SMALL = OllamaModel("small:1b", "llama", "1B", "Q4_0", 512)


@pytest.fixture
def ollama(monkeypatch):
    server = OllamaServer(models=[*OllamaServer().models, TINY, SMALL], default=Answer(LONG))
    with server as url:
        monkeypatch.setenv("OLLAMA_HOST", url)
        yield server


def toml(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "models.toml"
    path.write_text(text, encoding="utf-8")
    return path


def run(archive: Path, **opts) -> runner.Summary:
    return asyncio.run(batch.run(archive, batch.BatchOptions(**opts)))


def chats(server: OllamaServer) -> list:
    return [r for r in server.requests if r.path == "/api/chat"]


def stored_run(archive: Path, run_id: str) -> records.RunRecord:
    with connect(archive) as db:
        found = records.get_run(db, run_id)
    assert found is not None
    return found


def replies(archive: Path) -> list[dict]:
    with connect(archive) as db:
        return records.fetch_dicts(
            db, "SELECT * FROM messages WHERE role = 'assistant' ORDER BY seq, attempt"
        )


def test_a_warm_sei_run_sends_one_window_that_fits_every_request(ollama, archive):
    summary = run(archive, prompt_ref="sei-battery", model_refs=("ollama/qwen3:8b",),
                  conditions=("warm",), max_tokens=1024)  # fmt: skip
    assert (summary.done, summary.errors) == (10, 0)
    sent = chats(ollama)
    windows = {r.body["options"]["num_ctx"] for r in sent}
    (window,) = windows  # one window for the whole run: Ollama reloads a model when it changes
    recorded = stored_run(archive, summary.run_id).params["windows"]["ollama/qwen3:8b"]
    assert recorded["num_ctx"] == window and window % 1024 == 0
    assert recorded["needed"] <= window <= recorded["context_length"] == 40960
    assert all(r.kept == r.body["messages"] for r in sent)  # the model saw every turn
    # Without it, the server's default window would have cut most of these requests.
    cut_by_default = [r for r in sent if fit(r.body["messages"], ollama.window)[0] != r.kept]
    assert len(cut_by_default) > len(sent) / 2
    for row in replies(archive):
        assert json.loads(row["request_json"])["params"]["num_ctx"] == window


def test_a_prompt_that_cannot_fit_is_a_context_error_on_its_cell(ollama, archive, tmp_path):
    prompts = tmp_path / "long.yaml"
    body = "Tell me about the way you weigh one word against another. " * 14  # ~200 tokens
    prompts.write_text(
        "id: long\ntitle: Long\nmode: conversation\nprompts:\n"
        + "".join(f"  - id: p{i}\n    text: {body.strip()}\n" for i in (1, 2, 3)),
        encoding="utf-8",
    )
    ollama.default = Answer(LONG[:1200])  # ~300 tokens a reply
    summary = run(archive, prompt_ref=str(prompts), model_refs=("ollama/tiny:1b",),
                  max_tokens=320)  # fmt: skip
    assert (summary.done, summary.errors) == (2, 1)
    sent = chats(ollama)
    assert {r.body["options"]["num_ctx"] for r in sent} == {1024}  # capped by /api/show
    assert sent[2].kept != sent[2].body["messages"]  # the server really dropped a turn
    first, second, third = replies(archive)
    assert first["error"] is None and second["error"] is None
    assert third["error_kind"] == "context" and third["content"] is None
    assert "1024-token window" in third["error"]
    assert third["tokens_in"] == json.loads(third["raw_json"])["prompt_eval_count"]


def test_turns_the_server_dropped_are_caught_by_the_prompt_count_alone(ollama, archive, tmp_path):
    prompts = tmp_path / "three.yaml"
    body = ("What do you make of this? " * 13)[:320]  # 84 tokens to the fake
    prompts.write_text(
        "id: three\ntitle: Three\nmode: conversation\nprompts:\n"
        + "".join(f"  - id: p{i}\n    text: '{body}'\n" for i in (1, 2, 3)),
        encoding="utf-8",
    )
    text = LONG * 3
    ollama.push(Answer(text[:2800]), Answer(text[:400]), Answer(text[:40]))  # 700, 100, 10
    summary = run(archive, prompt_ref=str(prompts), model_refs=("ollama/tiny:1b",),
                  max_tokens=720)  # fmt: skip
    assert (summary.done, summary.errors) == (2, 1)
    third = chats(ollama)[2]
    assert third.kept == third.body["messages"][1:]  # the first question was dropped
    row = replies(archive)[2]
    assert row["error_kind"] == "context"
    # prompt 976 + reply 10 is far from the 1024 window: only the shrunken count tells
    assert row["error"].startswith("context: the server read 976 prompt tokens where the")


def test_a_conversation_that_cannot_fit_at_all_is_refused_before_it_starts(ollama, archive):
    with pytest.raises(UserError) as caught:
        run(archive, prompt_ref="sei-battery", model_refs=("ollama/small:1b",),
            conditions=("warm",), max_tokens=256)  # fmt: skip
    text = str(caught.value)
    assert text.startswith("model ollama/small:1b: conversation ollama/small:1b|warm|1 needs")
    assert "but the model holds 512 (context length from /api/show); nothing was run" in text
    assert not chats(ollama)
    with connect(archive) as db:
        assert records.list_runs(db) == []


def test_the_cli_refuses_it_with_exit_2(ollama, tmp_path):
    archive = tmp_path / "a.duckdb"
    result = CliRunner().invoke(cli, ["--archive", str(archive), "run", "--prompts",
                                      "sei-battery", "--model", "ollama/small:1b",
                                      "--condition", "warm"])  # fmt: skip
    assert result.exit_code == 2 and "holds 512" in result.output
    assert not chats(ollama)


def test_per_model_settings_arrive_in_every_request_and_are_recorded(ollama, tmp_path):
    archive = tmp_path / "a.duckdb"
    models = toml(
        tmp_path,
        '[models.q]\nbackend = "ollama/qwen3:8b"\n[models.q.params]\n'
        'reasoning_effort = "low"\nnum_ctx = 8192\ntop_p = 0.9\ntemperature = 0.3\n'
        'max_tokens = 40\nsystem = "Answer in one line."\n',
    )
    result = CliRunner().invoke(cli, ["--archive", str(archive), "--models-file", str(models),
                                      "run", "--prompts", "smoke", "--model", "q",
                                      "--temperature", "0.1", "--quiet"])  # fmt: skip
    assert result.exit_code == 0, result.output
    sent = chats(ollama)
    assert len(sent) == 2
    for r in sent:
        assert r.body["think"] == "low"
        assert r.body["messages"][0] == {"role": "system", "content": "Answer in one line."}
        # --temperature on the command line beats models.toml; its max_tokens applies
        assert r.body["options"] == {"temperature": 0.1, "num_predict": 40, "top_p": 0.9,
                                     "num_ctx": 8192}  # fmt: skip
    rows = replies(archive)
    for row in rows:
        params = json.loads(row["request_json"])["params"]
        assert (params["reasoning_effort"], params["num_ctx"], params["top_p"]) == (
            "low",
            8192,
            0.9,
        )
    with connect(archive) as db:
        (run_id,) = [r["id"] for r in records.list_runs(db)]
        systems = {r[0] for r in db.execute("SELECT system_prompt FROM conversations").fetchall()}
    assert systems == {"Answer in one line."}
    window = stored_run(archive, run_id).params["windows"]["q"]
    assert (window["num_ctx"], window["set_by"]) == (8192, "num_ctx in models.toml")


def test_an_embedded_conversation_longer_than_the_model_is_refused(archive, tmp_path):
    huge = tmp_path / "huge.yaml"
    huge.write_text("id: huge\ntitle: Huge\nprompts:\n  - id: p\n    text: "
                    + "many words here " * 2500 + "\n", encoding="utf-8")  # fmt: skip
    with pytest.raises(UserError) as caught:
        run(archive, prompt_ref=str(huge), model_refs=(SMOL,), max_tokens=16)
    assert "but the model holds 8192 (context length from the GGUF header)" in str(caught.value)


@pytest.mark.model
def test_an_embedded_run_records_its_window_and_llama_cpp_loads_it(archive, tiny_set):
    from dialogues.providers import gguf

    summary = run(archive, prompt_ref=str(tiny_set), model_refs=(SMOL,), max_tokens=8)
    assert summary.errors == 0
    window = stored_run(archive, summary.run_id).params["windows"][SMOL]
    assert window["num_ctx"] == gguf.N_CTX and window["context_length"] == 8192
    path = str(gguf.builtin_path(SMOL))
    llm, _ = gguf._model(path, None, gguf.N_CTX)
    assert llm.n_ctx() == gguf.N_CTX


@pytest.mark.model
def test_an_embedded_prompt_past_n_ctx_is_a_context_error():
    from dialogues.providers import gguf
    from dialogues.providers.base import GenParams, ProviderError

    provider = gguf.GGUFProvider(gguf.describe(SMOL))
    message = [{"role": "user", "content": "Tell me what you notice. " * 120}]
    with pytest.raises(ProviderError) as caught:
        provider.chat_sync(message, GenParams(max_tokens=8, num_ctx=256))
    assert caught.value.kind == "context" and "context window of 256" in str(caught.value)


def test_a_dialogue_keeps_one_window_per_side_and_each_models_settings(ollama, archive, tmp_path):
    from dialogues.providers import registry
    from dialogues.run import dialogue

    models = toml(
        tmp_path,
        '[models.q]\nbackend = "ollama/qwen3:8b"\n[models.q.params]\ntop_p = 0.8\n'
        'system = "You are side A."\n[models.l]\nbackend = "ollama/llama3.2:1b"\n',
    )
    setup = dialogue.DialogueSetup(a="q", b="l", rounds=3, opening="Shall we compare notes?",
                                   max_tokens=700)  # fmt: skip
    session = dialogue.run_dialogue(archive, setup, catalogue=registry.load_catalogue(models))
    assert session.status != "error", session.stop_reason
    sent = chats(ollama)
    assert len(sent) == 6
    by_model = {
        m: [r.body for r in sent if r.body["model"] == m] for m in ("qwen3:8b", "llama3.2:1b")
    }
    windows = session.setup.windows
    for side, model in (("a", "qwen3:8b"), ("b", "llama3.2:1b")):
        assert {b["options"]["num_ctx"] for b in by_model[model]} == {windows[side]}
    assert all(b["options"]["top_p"] == 0.8 for b in by_model["qwen3:8b"])
    assert all("top_p" not in b["options"] for b in by_model["llama3.2:1b"])
    assert by_model["qwen3:8b"][0]["messages"][0] == {
        "role": "system",
        "content": "You are side A.",
    }
    assert all(r.kept == r.body["messages"] for r in sent)  # ~600-token replies, nothing cut
    assert any(fit(r.body["messages"], ollama.window)[0] != r.kept for r in sent)
