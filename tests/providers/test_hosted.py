"""HostedProvider (litellm) against a real OpenAI-compatible server on loopback."""

from __future__ import annotations

import asyncio
import json
import logging
import time

import pytest
from servers import Answer, Drop, Fail, Malformed, OpenAIServer

from dialogues.providers.base import GenParams, ProviderError, Reply, call_with_retries
from dialogues.providers.hosted import NO_KEY, HostedProvider, scrub_secrets

SECRET = "sk-test-SECRET123"
HELLO = [{"role": "user", "content": "When you process a question like this one…"}]
FAST = GenParams(temperature=0.7, seed=7, max_tokens=64, timeout_s=5)


@pytest.fixture
def server():
    srv = OpenAIServer()
    with srv:
        yield srv


def provider(server: OpenAIServer, **kwargs) -> HostedProvider:
    return HostedProvider("openai/loopback-model", api_base=server.url, **kwargs)


def chat(p: HostedProvider, params: GenParams = FAST) -> Reply:
    return asyncio.run(p.chat(HELLO, params))


def fail(p: HostedProvider, params: GenParams = FAST) -> ProviderError:
    with pytest.raises(ProviderError) as caught:
        chat(p, params)
    return caught.value


def test_reply_carries_content_usage_and_the_request_as_sent(server):
    server.push(Answer("I notice something.", prompt_tokens=21, completion_tokens=9))
    reply = chat(provider(server))
    assert reply.content == "I notice something."
    assert (reply.reasoning, reply.reasoning_source) == (None, None)
    assert (reply.tokens_in, reply.tokens_out, reply.finish_reason) == (21, 9, "stop")
    assert reply.model_version == "loopback-model-2025-01 (fp_loopback)"
    assert reply.latency_ms is not None and reply.latency_ms > 0
    assert reply.raw["choices"][0]["message"]["content"] == "I notice something."
    sent = server.requests[-1].body
    assert sent["messages"] == HELLO
    assert (sent["model"], sent["temperature"], sent["seed"], sent["max_tokens"]) == (
        "loopback-model",
        0.7,
        7,
        64,
    )


def test_reasoning_from_a_separate_field(server):
    server.push(
        Answer("Something like attention.", reasoning="Let me look inward.", reasoning_tokens=5)
    )
    reply = chat(provider(server))
    assert reply.content == "Something like attention."
    assert reply.reasoning == "Let me look inward."
    assert reply.reasoning_source == "field"
    assert reply.reasoning_tokens == 5


def test_reasoning_inline_in_think_tags_is_recorded_as_tags(server):
    # litellm itself moves a leading <think> block into reasoning_content; the provider
    # still has to say the model sent it inline.
    server.push(Answer("<think>Is there an inside?</think>\nPerhaps."))
    reply = chat(provider(server))
    assert reply.content == "Perhaps."
    assert reply.reasoning == "Is there an inside?"
    assert reply.reasoning_source == "tags"
    assert "<think>" in reply.raw["choices"][0]["message"]["content"]


def test_thinking_that_used_the_whole_budget_is_a_reply_not_an_error(server):
    server.push(
        Answer("", reasoning="Hmm, the user asks", finish_reason="length"),
        Answer("<think>Hmm, the user asks about", finish_reason="length"),
    )
    p = provider(server)
    for source in ("field", "tags"):
        reply = chat(p)
        assert reply.content == ""
        assert reply.reasoning and reply.reasoning.startswith("Hmm, the user asks")
        assert (reply.finish_reason, reply.reasoning_source) == ("length", source)


def test_500_is_transient_and_litellm_does_not_retry_it(server):
    server.push(Fail(500), Answer("after the storm"))
    p = provider(server)
    err = fail(p)
    assert (err.kind, err.transient) == ("server", True)
    assert server.calls == 1  # no hidden retries: the runner owns retrying
    assert chat(p).content == "after the storm"


@pytest.mark.parametrize(
    "action, kind, transient",
    [
        (Fail(429, retry_after=1.5), "rate_limit", True),
        (Fail(503), "server", True),
        (Malformed(), "bad_response", True),
        (Drop(), "connection", True),
        (Fail(401, "bad key"), "auth", False),
        (Fail(400, "context too long"), "bad_request", False),
        (Fail(404, "no such model"), "bad_request", False),
    ],
)
def test_failures_are_classified(server, action, kind, transient):
    server.push(action)
    err = fail(provider(server))
    assert (err.kind, err.transient) == (kind, transient)
    assert server.calls == 1
    if kind == "rate_limit":
        assert err.retry_after == 1.5


def test_timeout_is_transient(server):
    server.push(Answer(delay=2.0))
    started = time.perf_counter()
    err = fail(provider(server), GenParams(timeout_s=0.3))
    assert (err.kind, err.transient) == ("timeout", True)
    assert time.perf_counter() - started < 1.5


def test_no_server_is_a_transient_connection_error():
    p = HostedProvider("openai/x", api_base="http://127.0.0.1:9/v1")
    err = fail(p)
    assert (err.kind, err.transient) == ("connection", True)


def test_call_with_retries_recovers_and_counts_attempts(server):
    server.push(Fail(500), Fail(429, retry_after=0.05), Answer("third time"))
    seen = []
    reply, attempts = asyncio.run(
        call_with_retries(
            provider(server),
            HELLO,
            FAST,
            base_delay=0.01,
            on_retry=lambda n, err, delay: seen.append((n, err.kind, delay)),
        )
    )
    assert (reply.content, attempts) == ("third time", 3)
    assert [(n, kind) for n, kind, _ in seen] == [(1, "server"), (2, "rate_limit")]
    assert seen[1][2] >= 0.05  # the Retry-After hint is honoured


def test_call_with_retries_gives_up_on_persistent_failure(server):
    server.default = Fail(500)
    with pytest.raises(ProviderError) as caught:
        asyncio.run(call_with_retries(provider(server), HELLO, FAST, attempts=3, base_delay=0.01))
    assert (caught.value.kind, caught.value.transient, caught.value.attempts) == ("server", True, 3)
    assert server.calls == 3


def test_call_with_retries_stops_at_once_on_a_permanent_error(server):
    server.default = Fail(401)
    with pytest.raises(ProviderError) as caught:
        asyncio.run(call_with_retries(provider(server), HELLO, FAST, base_delay=0.01))
    assert (caught.value.kind, caught.value.attempts) == ("auth", 1)
    assert server.calls == 1


def test_api_key_never_reaches_replies_errors_or_logs(server, monkeypatch, caplog, capsys):
    monkeypatch.setenv("OPENAI_API_KEY", SECRET)
    monkeypatch.setenv("SOME_SERVICE_TOKEN", "tok-another-secret-value")
    caplog.set_level(logging.DEBUG)
    p = provider(server, api_key_env="OPENAI_API_KEY")
    server.push(
        Answer(f"echo {SECRET} and tok-another-secret-value", reasoning=f"the key is {SECRET}"),
        Fail(401, f"Incorrect API key provided: {SECRET}"),
        Fail(500, f"upstream said Authorization: Bearer {SECRET}"),
    )
    reply = chat(p)
    errors = [fail(p), fail(p)]
    assert server.requests[0].headers["authorization"] == f"Bearer {SECRET}"  # it was really sent
    out = capsys.readouterr()
    texts = [json.dumps(reply.raw), *(str(e) for e in errors), caplog.text, out.out, out.err]
    assert not [t for t in texts if "SECRET123" in t or "another-secret" in t]
    assert "***" in reply.raw["choices"][0]["message"]["content"]


def test_a_key_set_after_the_first_call_is_scrubbed_too(server, monkeypatch):
    """The environment's credentials are read at a provider's first call; the key a request
    carries is scrubbed from its reply whatever the environment held then."""
    monkeypatch.setenv("DIALOGUES_TEST_API_KEY", "first-key-0001")
    p = provider(server, api_key_env="DIALOGUES_TEST_API_KEY")
    chat(p)
    monkeypatch.setenv("DIALOGUES_TEST_API_KEY", "second-key-0002")
    server.push(Answer("echo second-key-0002 and first-key-0001"))
    raw = json.dumps(chat(p).raw)
    assert server.requests[-1].headers["authorization"] == "Bearer second-key-0002"
    assert "second-key" not in raw and "first-key" not in raw and "***" in raw


def test_api_base_server_gets_a_dummy_key_not_the_openai_one(server, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", SECRET)
    chat(provider(server))
    assert server.requests[-1].headers["authorization"] == f"Bearer {NO_KEY}"


def test_missing_named_key_fails_before_any_request(server, monkeypatch):
    monkeypatch.delenv("DIALOGUES_TEST_API_KEY", raising=False)
    err = fail(provider(server, api_key_env="DIALOGUES_TEST_API_KEY"))
    assert (err.kind, err.transient) == ("auth", False)
    assert "DIALOGUES_TEST_API_KEY" in str(err) and server.calls == 0


def test_scrub_secrets(monkeypatch):
    monkeypatch.setenv("ACME_API_KEY", "acme-0123456789")
    text = (
        "key acme-0123456789; Authorization: Bearer abc.def-123456; api_key='zzz999888';"
        " sk-ant-api03-abcdefgh AIzaSyA1234567890abcdefghijklmnop"
    )
    scrubbed = scrub_secrets(text)
    for secret in ("acme-0123456789", "abc.def-123456", "zzz999888", "sk-ant", "AIzaSy"):
        assert secret not in scrubbed
    assert scrub_secrets("plain words, 42 tokens") == "plain words, 42 tokens"


@pytest.mark.parametrize(
    "text",
    [
        "Bearer abcdef123", "BEARER   tok.en_12345", "authorization=xyz", "X-Goog-Api-Key: v",
        "'x-api-key': 'v'", "API-KEY=v", "apikey: v", "sk-abcdef", "use sk-proj-ABCDEFGH here",
        "AIza" + "b" * 20, "hf_" + "a1" * 8, "pplx_" + "Z" * 16, "xai_" + "9" * 16,
        "gsk_" + "a" * 15, "bearer abc", "skunk-works", "plain text",
    ],
)  # fmt: skip
def test_one_search_finds_whatever_a_pattern_would_scrub(text: str) -> None:
    """The combined pre-check may say yes too often, never no when a pattern would match."""
    from dialogues.providers import hosted

    changed = any(p.search(text) for p in hosted._SECRET_PATTERNS)
    assert not changed or hosted._ANY_SECRET.search(text)
    expected = text
    for pattern in hosted._SECRET_PATTERNS:
        expected = pattern.sub(lambda m: (m.group(1) if m.groups() else "") + "***", expected)
    assert scrub_secrets(text, []) == expected
