"""OllamaProvider and list_models with the official client against a fake Ollama on loopback."""

from __future__ import annotations

import asyncio
import time

import ollama
import pytest
from servers import Answer, Drop, Fail, Malformed, OllamaModel, OllamaServer

from dialogues.domain.errors import ProviderUnavailable
from dialogues.providers.base import GenParams, ProviderError, Reply, call_with_retries
from dialogues.providers.ollama import (
    OllamaProvider,
    list_models,
    ollama_available,
)

HELLO = [{"role": "user", "content": "Describe what happens when you process a question."}]
PARAMS = GenParams(temperature=0.8, seed=11, max_tokens=128, timeout_s=5)
DEAD = "http://127.0.0.1:9"  # the discard port: nothing listens there


@pytest.fixture
def server():
    srv = OllamaServer()
    with srv:
        yield srv


def chat(p: OllamaProvider, params: GenParams = PARAMS) -> Reply:
    return asyncio.run(p.chat(HELLO, params))


def fail(p: OllamaProvider, params: GenParams = PARAMS) -> ProviderError:
    with pytest.raises(ProviderError) as caught:
        chat(p, params)
    return caught.value


def test_list_models_reads_tags_and_show(server):
    models = {m.backend: m for m in list_models(server.url)}
    assert set(models) == {"qwen3:8b", "llama3.2:1b"}
    qwen = models["qwen3:8b"]
    assert (qwen.id, qwen.provider, qwen.api_base) == ("ollama/qwen3:8b", "ollama", server.url)
    assert (qwen.family, qwen.parameter_size, qwen.parameters) == ("qwen3", "8.2B", 8_200_000_000)
    assert (qwen.quantization, qwen.context_length, qwen.training) == ("Q4_K_M", 40960, "reasoning")
    assert qwen.digest == server.models[0].digest and len(qwen.digest) == 64
    assert "thinking" in qwen.metadata["capabilities"]
    llama = models["llama3.2:1b"]
    assert (llama.parameters, llama.context_length, llama.training) == (1_200_000_000, 131072, None)


def test_list_models_honours_ollama_host(server, monkeypatch):
    monkeypatch.setenv("OLLAMA_HOST", server.base.removeprefix("http://"))
    assert len(list_models()) == 2
    assert ollama_available()


def test_no_server_is_one_plain_line_and_quick():
    started = time.perf_counter()
    assert ollama_available(DEAD) is False
    with pytest.raises(ProviderUnavailable) as caught:
        list_models(DEAD)
    assert str(caught.value) == (
        f"no Ollama server answers at {DEAD}; start `ollama serve` or set OLLAMA_HOST"
    )
    err = fail(OllamaProvider("qwen3:8b", host=DEAD))
    assert (err.kind, err.transient) == ("connection", True)
    assert time.perf_counter() - started < 3


def test_thinking_model_is_asked_to_think_and_thinking_arrives_in_a_field(server):
    server.push(
        Answer("Warm static.", reasoning="The user wants concrete words.", completion_tokens=40)
    )
    p = OllamaProvider("qwen3:8b", host=server.url)
    reply = chat(p)
    sent = server.requests[-1].body
    assert sent["think"] is True and sent["stream"] is False
    assert sent["options"] == {"temperature": 0.8, "seed": 11, "num_predict": 128}
    assert sent["messages"] == HELLO
    assert (reply.content, reply.reasoning) == ("Warm static.", "The user wants concrete words.")
    assert reply.reasoning_source == "field"
    assert (reply.tokens_in, reply.tokens_out, reply.finish_reason) == (17, 40, "stop")
    assert reply.model_version == server.models[0].digest
    assert reply.raw["total_duration"] == 123_000_000 and reply.latency_ms > 0
    assert p.info.training == "reasoning" and p.info.context_length == 40960


def test_non_thinking_model_gets_inline_think_tags_parsed(server):
    server.push(Answer("Light moves.", reasoning="short thought"))
    reply = chat(OllamaProvider("llama3.2:1b", host=server.url))
    assert "think" not in server.requests[-1].body
    assert (reply.content, reply.reasoning, reply.reasoning_source) == (
        "Light moves.",
        "short thought",
        "tags",
    )


def test_think_false_is_passed_through(server):
    server.push(Answer("Plain.", reasoning="still thought"))
    reply = chat(OllamaProvider("qwen3:8b", host=server.url), GenParams(think=False, timeout_s=5))
    assert server.requests[-1].body["think"] is False
    assert reply.reasoning_source == "tags"


def test_given_info_decides_thinking_without_asking_the_server(server):
    info = list_models(server.url)[0]
    server.requests.clear()
    chat(OllamaProvider("qwen3:8b", host=server.url, info=info))
    assert [r.path for r in server.requests] == ["/api/chat"]
    assert server.requests[0].body["think"] is True


@pytest.mark.parametrize("model, source", [("qwen3:8b", "field"), ("llama3.2:1b", "tags")])
def test_thinking_that_used_the_whole_budget_is_a_reply(server, model, source):
    server.push(Answer("", reasoning="Let me think about the constraint", finish_reason="length"))
    reply = chat(OllamaProvider(model, host=server.url))
    assert reply.content == ""
    assert reply.reasoning == "Let me think about the constraint"
    assert (reply.finish_reason, reply.reasoning_source) == ("length", source)


def test_500_then_200(server):
    server.push(Fail(500, "llama runner process has terminated"), Answer("back"))
    p = OllamaProvider("llama3.2:1b", host=server.url)
    err = fail(p)
    assert (err.kind, err.transient) == ("server", True)
    assert "llama runner process has terminated" in str(err)
    assert chat(p).content == "back"


@pytest.mark.parametrize(
    "action, kind, transient",
    [
        (Fail(429), "rate_limit", True),
        (Fail(503), "server", True),
        (Malformed(), "bad_response", True),
        (Drop(), "connection", True),
        (Fail(400, "bad options"), "bad_request", False),
    ],
)
def test_failures_are_classified(server, action, kind, transient):
    server.push(action)
    err = fail(OllamaProvider("llama3.2:1b", host=server.url))
    assert (err.kind, err.transient) == (kind, transient)


def test_timeout_is_transient(server):
    server.push(Answer(delay=2.0))
    err = fail(OllamaProvider("llama3.2:1b", host=server.url), GenParams(timeout_s=0.3))
    assert (err.kind, err.transient) == ("timeout", True)


def test_unknown_model_is_a_permanent_error(server):
    err = fail(OllamaProvider("no-such-model", host=server.url))
    assert (err.kind, err.transient) == ("bad_request", False)
    assert "no-such-model" in str(err)


def test_call_with_retries_over_ollama(server):
    server.push(Fail(500), Drop(), Answer("steady"))
    p = OllamaProvider("llama3.2:1b", host=server.url)
    reply, attempts = asyncio.run(call_with_retries(p, HELLO, PARAMS, base_delay=0.01))
    assert (reply.content, attempts) == ("steady", 3)
    server.default = Fail(503)
    with pytest.raises(ProviderError) as caught:
        asyncio.run(call_with_retries(p, HELLO, PARAMS, attempts=2, base_delay=0.01))
    assert (caught.value.kind, caught.value.attempts) == ("server", 2)


def test_fake_server_streams_ndjson_like_ollama(server):
    """The official client's streaming path works against the fake server too."""
    server.push(Answer("Streamed answer.", reasoning="streamed thought"))
    client = ollama.Client(host=server.url)
    parts = list(client.chat("qwen3:8b", messages=HELLO, think=True, stream=True))
    assert "".join(p.message.thinking or "" for p in parts) == "streamed thought"
    assert "".join(p.message.content for p in parts) == "Streamed answer."
    assert parts[-1].done and parts[-1].done_reason == "stop" and parts[-1].eval_count == 8


def test_fake_server_knows_its_models():
    custom = OllamaModel("gemma3:270m", "gemma3", "268.10M", "Q4_K_M", 32768)
    with OllamaServer(models=[custom]) as url:
        (info,) = list_models(url)
    assert (info.parameters, info.context_length, info.training) == (268_100_000, 32768, None)


def test_a_batch_records_what_the_server_tells_about_the_model(server, tmp_path, monkeypatch):
    """The archive gets family, size, quantization, digest and context before the first call."""
    from dialogues.run import batch
    from dialogues.store import connect, records

    monkeypatch.setenv("OLLAMA_HOST", server.url)
    m = server.models[0]
    catalogue = tmp_path / "models.toml"
    catalogue.write_text(f'[models.mine]\nbackend = "ollama/{m.name}"\nnotes = "lab box"\n')
    archive = tmp_path / "a.duckdb"
    opts = batch.BatchOptions(prompt_ref="smoke", model_refs=("mine",), models_file=catalogue,
                              max_tokens=8)  # fmt: skip
    summary = asyncio.run(batch.run(archive, opts))
    assert summary.errors == 0
    with connect(archive) as db:
        (row,) = records.list_models(db)
        speakers = {r[0] for r in db.execute(
            "SELECT speaker FROM messages WHERE role = 'assistant'").fetchall()}  # fmt: skip
    assert row["id"] == "mine" and speakers == {"mine"}  # the catalogue name stays the id
    assert (row["family"], row["parameter_size"], row["quantization"]) == (
        m.family, m.parameter_size, m.quantization_level)  # fmt: skip
    assert row["digest"] == m.digest and row["context_length"] == m.context_length
    assert row["notes"] == "lab box"
