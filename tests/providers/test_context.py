"""Context arithmetic: estimates, the window asked for, and when a prompt counts as cut."""

from __future__ import annotations

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
    assert context.next_floor(100, 500, 450, "fifty tokens of answer", False) == 148
    # reasoning text came back with the reply: the content alone is measured (~6 bytes a token)
    assert context.next_floor(100, 500, None, "x" * 60, True) == 110
    assert context.next_floor(None, 5, None, "x", False) is None
