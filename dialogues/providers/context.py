"""Context windows: how many tokens a conversation needs, the window to ask for, and cut prompts.

Servers do not all say when a conversation did not fit: Ollama keeps the newest messages that
fit its window and answers, and LM Studio can be set to do the same. What they do report is
the prompt's token count, and that is enough to notice a cut.

An embedded GGUF model's texts are counted by its own tokenizer; every other back end's are
estimated from their bytes.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from dialogues.providers import gguf
from dialogues.providers.base import ModelInfo, Reply

# No tokenizer is at hand for a server's model, so tokens are estimated from UTF-8 bytes.
# English runs ~4 bytes a token; 3 over-counts almost any text (the window is generous),
# 4 under-counts (a refusal before a run is sure). A message costs a few template tokens.
BYTES_PER_TOKEN_HIGH = 3.0
BYTES_PER_TOKEN_LOW = 4.0
BYTES_PER_TOKEN_SURE = 6.0
PER_MESSAGE = 8
STEP = 1024  # windows are rounded up to this, so a model keeps one window for a whole run

Count = Callable[[str], int]
"""A model's own count of a text's tokens."""


def counter(info: ModelInfo) -> Count | None:
    """The model's own tokenizer where its back end has one here (embedded GGUF), else None."""
    return gguf.token_counter(info) if info.provider == "gguf" else None


def estimate(
    texts: Iterable[str], bytes_per_token: float = BYTES_PER_TOKEN_HIGH, count: Count | None = None
) -> int:
    """Tokens of these messages in a chat template: each text counted by `count`, the model's
    own tokenizer, when there is one; else estimated from its UTF-8 bytes, which at the
    default ~3 bytes a token over-counts almost any text (conservative: a window sized on it
    is generous). Each message adds PER_MESSAGE for the template."""
    if count is not None:
        return sum(count(t) + PER_MESSAGE for t in texts)
    return sum(math.ceil(len(t.encode()) / bytes_per_token) + PER_MESSAGE for t in texts)


@dataclass(frozen=True)
class Need:
    """What the longest conversation of a model needs, estimated before any call."""

    high: int  # every prompt and every reply at its budget, over-counted: the window to ask for
    low: int  # the prompts under-counted plus one reply: less than this cannot fit at all
    conv_key: str


def need(
    conv_key: str, texts: list[str], replies: int, max_tokens: int, count: Count | None = None
) -> Need:
    """The tokens a conversation of these sent texts and `replies` replies can take, counted
    by the model's tokenizer when `count` is given (then `low` is the texts' exact count, with
    nothing for the template), else estimated from bytes."""
    high = estimate(texts, count=count) + replies * (max_tokens + PER_MESSAGE)
    texts_low = sum(map(count, texts)) if count else estimate(texts, BYTES_PER_TOKEN_LOW)
    return Need(high, texts_low + max_tokens, conv_key)


def window(high: int, cap: int | None, floor: int = 0) -> int:
    """`high` rounded up to a whole STEP (at least `floor`), never above the model's `cap`."""
    size = max(floor, math.ceil(high / STEP) * STEP)
    return min(size, cap) if cap else size


def cut(reply: Reply, size: int | None, floor: int | None) -> str | None:
    """Why a reply's prompt looks cut, or None: it filled the window, or it shrank.

    `floor` is the least the prompt can hold: the previous prompt plus the reply sent back
    (a prompt always grows within a conversation; if it shrank, turns were dropped).
    """
    used_in, used_out = reply.tokens_in, reply.tokens_out or 0
    if used_in is None:
        return None
    if size and used_in + used_out >= size:
        return (
            f"context: the prompt ({used_in} tokens) and reply ({used_out}) fill the "
            f"{size}-token window, so the server may have dropped or shifted earlier text"
        )
    if floor is not None and used_in < floor:
        return (
            f"context: the server read {used_in} prompt tokens where the conversation so far "
            f"holds at least {floor}; it dropped earlier turns to fit its window"
        )
    return None


def at_least(text: str) -> int:
    """Tokens a text surely takes: ~6 bytes a token is more than any ordinary text packs."""
    return math.ceil(len(text.encode()) / BYTES_PER_TOKEN_SURE)


def next_floor(
    tokens_in: int | None,
    tokens_out: int | None,
    reasoning_tokens: int | None,
    content: str | None,
    reasoned: bool,
) -> int | None:
    """The least the conversation's next prompt holds after a reply, before its new message.

    The next prompt holds this prompt and the visible reply. Reasoning is not sent back: when
    its text came with the reply, tokens_out counts it too, so the content is measured instead.
    """
    if tokens_in is None:
        return None
    if reasoned or tokens_out is None:
        return tokens_in + at_least(content or "")
    visible = tokens_out - (reasoning_tokens or 0)
    # Text sent back is tokenized afresh, which can merge a few of the generated tokens, and an
    # end-of-turn token may not be sent back: a tenth of the reply (at least 4) is left as slack.
    return tokens_in + max(0, visible - max(4, visible // 10))
