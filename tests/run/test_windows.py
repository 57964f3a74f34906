"""Faithful context: one window per model per run, cut prompts are `context` errors, refusals.

The fake Ollama holds a conversation in a small default window and cuts what does not fit
silently, as Ollama does; only its prompt_eval_count tells.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import replace
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
    assert (recorded["set_by"], recorded["capped"]) == ("estimate", False)
    assert recorded["counted_by"] == "bytes"  # no tokenizer for a server's model here
    assert all(r.kept == r.body["messages"] for r in sent)  # the model saw every turn
    # Without it, the server's default window would have cut most of these requests.
    cut_by_default = [r for r in sent if fit(r.body["messages"], ollama.window)[0] != r.kept]
    assert len(cut_by_default) > len(sent) / 2
    for row in replies(archive):
        assert json.loads(row["request_json"])["params"]["num_ctx"] == window


def test_a_resumed_run_keeps_its_window_and_reads_the_stored_counts(ollama, archive, tmp_path):
    import threading

    stop = threading.Event()

    def stop_after_four(run_id: str, progress: dict) -> None:
        if sum(p.done for p in progress.values()) >= 4:
            stop.set()

    models = toml(
        tmp_path, '[models.q]\nbackend = "ollama/qwen3:8b"\n[models.q.params]\ntop_p = 0.5\n'
    )
    opts = batch.BatchOptions(prompt_ref="sei-battery", model_refs=("q",), models_file=models,
                              conditions=("warm",), max_tokens=1024)  # fmt: skip
    run_id, providers = batch.prepare(archive, opts)
    first = asyncio.run(runner.execute(archive, run_id, providers, False, stop_after_four, stop))
    assert 4 <= first.done < 10 and first.errors == 0
    # models.toml changes after the run started: the resumed run keeps what it recorded
    toml(tmp_path, '[models.q]\nbackend = "ollama/qwen3:8b"\n[models.q.params]\ntop_p = 0.9\n')
    again = run(archive, resume_id=run_id, models_file=models)
    assert (again.done, again.errors) == (10, 0)  # no cut flagged from the stored counts
    sent = chats(ollama)
    assert len({r.body["options"]["num_ctx"] for r in sent}) == 1
    assert {r.body["options"]["top_p"] for r in sent} == {0.5}
    assert all(r.kept == r.body["messages"] for r in sent)


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
    assert stored_run(archive, summary.run_id).params["windows"]["ollama/tiny:1b"]["capped"]
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
    # 9,001 tokens by SmolLM2's own tokenizer (and 12,000 by the ~4 bytes a token fallback)
    huge.write_text("id: huge\ntitle: Huge\nprompts:\n  - id: p\n    text: "
                    + "many words here " * 3000 + "\n", encoding="utf-8")  # fmt: skip
    with pytest.raises(UserError) as caught:
        run(archive, prompt_ref=str(huge), model_refs=(SMOL,), max_tokens=16)
    assert "but the model holds 8192 (context length from the GGUF header)" in str(caught.value)


@pytest.mark.model
def test_an_embedded_window_is_sized_by_the_models_own_tokenizer(archive, tmp_path):
    from dialogues.domain import prompts
    from dialogues.providers import context, gguf

    text = ("many words here " * 15).strip()
    short = tmp_path / "short.yaml"
    short.write_text(f"id: short\nprompts:\n  - id: p\n    text: {text}\n", encoding="utf-8")
    # 239 bytes: 60 tokens at 4 bytes a token, 8 for the template and 8 for the reply: past 64 ...
    assert context.need("k", [text], 1, 8).low == 76
    # ... but the model reads 45, so 45 + 8 fit: the run is planned, not refused
    req = runner.RunRequest(prompts.load(str(short)), [gguf.describe(SMOL)], max_tokens=8,
                            model_params={SMOL: {"num_ctx": 64}})  # fmt: skip
    window = stored_run(archive, runner.create_run(archive, req)).params["windows"][SMOL]
    assert (window["num_ctx"], window["counted_by"]) == (64, "tokenizer")
    assert window["needed"] == (45 + 8) + (8 + 8)  # the prompt and its template, one reply
    with pytest.raises(UserError, match="needs at least about 53 tokens"):  # exactly 45 + 8
        runner.create_run(archive, replace(req, model_params={SMOL: {"num_ctx": 50}}))


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


def test_a_condition_parameter_the_back_end_does_not_take_is_refused(ollama, archive):
    with pytest.raises(UserError) as caught:
        run(archive, prompt_ref="smoke", model_refs=("ollama/qwen3:8b",), conditions=(
            str(write_condition(archive.parent, "reasoning_effort: minimal")),))  # fmt: skip
    assert str(caught.value) == (
        f"{archive.parent / 'effort.yaml'}: params.reasoning_effort: model ollama/qwen3:8b: "
        "must be one of none, low, medium, high for ollama back ends, not 'minimal'"
    )
    assert not chats(ollama)
    with connect(archive) as db:
        assert records.list_runs(db) == []


def write_condition(folder: Path, param: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "effort.yaml"
    path.write_text(f"id: effort\nparams:\n  {param}\n", encoding="utf-8")
    return path


def test_a_dialogue_turn_whose_prompt_was_cut_is_a_context_error(ollama, archive):
    from dialogues.run import dialogue

    ollama.default = Answer(LONG[:1200])  # ~300 tokens a reply
    setup = dialogue.DialogueSetup(a="ollama/tiny:1b", b="ollama/tiny:1b", rounds=3,
                                   opening="Shall we compare notes?", max_tokens=320)  # fmt: skip
    session = dialogue.run_dialogue(archive, setup)
    assert session.setup.windows == {"a": 1024, "b": 1024}  # capped by /api/show
    assert session.status == "error" and "context" in (session.stop_reason or "")
    last = session.turns[-1]
    assert last.error is not None and last.content is None
    # B's second turn: a 912-token prompt and a 300-token reply overrun the 1024-token window,
    # where Ollama would shift out the start of the dialogue while generating
    assert (last.side, last.tokens[:2]) == ("b", (912, 300))
    assert "fill the 1024-token window" in (last.error or "")
    with connect(archive) as db:
        kinds = [r[0] for r in db.execute(
            "SELECT error_kind FROM messages WHERE role = 'assistant' ORDER BY seq").fetchall()]  # fmt: skip
    assert kinds[-1] == "context" and all(k is None for k in kinds[:-1])


def test_a_hosted_prompt_that_shrank_is_a_context_error_in_a_dialogue(archive):
    from servers import OpenAIServer

    from dialogues.run import dialogue

    text = LONG[:400]  # 100 tokens
    server = OpenAIServer([
        Answer(text, prompt_tokens=50, completion_tokens=100),   # A1
        Answer(text, prompt_tokens=120, completion_tokens=100),  # B1
        Answer(text, prompt_tokens=60, completion_tokens=100),   # A2: a server that dropped A1
    ])  # fmt: skip
    with server as url:
        setup = dialogue.DialogueSetup(a="openai/a", b="openai/b", rounds=2, opening="Hello?",
                                       max_tokens=120, api_base=url)  # fmt: skip
        session = dialogue.run_dialogue(archive, setup)
    last = session.turns[-1]
    assert (last.side, last.tokens[0], last.content) == ("a", 60, None)
    assert last.error is not None and "read 60 prompt tokens where" in last.error
    assert session.status == "error"
