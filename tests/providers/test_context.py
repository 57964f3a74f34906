"""Context arithmetic: estimates, the window asked for, and when a prompt counts as cut."""

from __future__ import annotations

import pytest
from servers import prompt_tokens

from dialogues.domain import prompts
from dialogues.providers import context
from dialogues.providers.base import Reply


def test_the_estimate_over_counts_what_a_four_bytes_a_token_server_reads():
    warm = prompts.load("warmup-default").prompts + prompts.load("sei-battery").prompts
    texts = [p.content for p in warm]
    served = prompt_tokens([{"content": t} for t in texts])
    assert context.estimate(texts, context.BYTES_PER_TOKEN_LOW) < context.estimate(texts)
    assert served <= context.estimate(texts)
    need = context.need("k", texts, replies=len(texts), max_tokens=64)
    assert need.high == context.estimate(texts) + len(texts) * (64 + context.PER_MESSAGE)
    assert need.low == context.estimate(texts, context.BYTES_PER_TOKEN_LOW) + 64


def test_window_rounds_up_to_a_step_and_never_passes_the_cap():
    assert context.window(1, None) == 1024
    assert context.window(1025, None) == 2048
    assert context.window(3000, 2048) == 2048
    assert context.window(100, 8192, floor=4096) == 4096


def test_a_full_window_or_a_shrunken_prompt_is_a_cut():
    assert context.cut(Reply("a", tokens_in=900, tokens_out=124), 1024, None) is not None
    assert context.cut(Reply("a", tokens_in=900, tokens_out=123), 1024, None) is None
    assert "at least 1000" in (context.cut(Reply("a", tokens_in=999), 4096, 1000) or "")
    assert context.cut(Reply("a", tokens_in=1000), 4096, 1000) is None
    assert context.cut(Reply("a"), 16, 1000) is None  # no counts, nothing to tell


def test_hidden_reasoning_is_not_counted_as_sent_back():
    # an o-series reply: 500 tokens out, 450 of them reasoning the next prompt does not carry
    assert context.next_floor(100, 500, 450, "fifty tokens of answer", False) == 145
    # a tenth of a visible reply is slack: re-tokenizing sent-back text can merge tokens
    assert context.next_floor(100, 300, None, "three hundred tokens", False) == 370
    # reasoning text came back with the reply: the content alone is measured (~6 bytes a token)
    assert context.next_floor(100, 500, None, "x" * 60, True) == 110
    assert context.next_floor(None, 5, None, "x", False) is None


@pytest.mark.model
def test_an_embedded_model_counts_with_its_own_tokenizer():
    from conftest import SMOL

    from dialogues.providers import gguf
    from dialogues.providers.base import GenParams, ModelInfo

    info = gguf.describe(SMOL)
    count = context.counter(info)
    assert count is not None
    hello, bye = "Say hello in three words.", "Now say goodbye."
    assert (count(hello), count(bye), count("many words here " * 15)) == (6, 4, 46)
    # what the model reads: two one-message prompts differ by exactly the difference of counts
    provider = gguf.GGUFProvider(info)
    read = [provider.chat_sync([{"role": "user", "content": t}], GenParams(max_tokens=1)).tokens_in
            for t in (hello, bye)]  # fmt: skip
    assert read[0] - read[1] == count(hello) - count(bye)
    need = context.need("k", [hello, bye], replies=2, max_tokens=16, count=count)
    assert need.high == (6 + 8) + (4 + 8) + 2 * (16 + 8) and need.low == 6 + 4 + 16
    # no tokenizer here for a server's model: the bytes estimate, which over-counts
    assert context.counter(ModelInfo("openai/m", "openai/m", "hosted")) is None
    assert context.estimate([hello]) == 9 + 8 > count(hello) + 8
