"""Context windows: how many tokens a conversation needs, the window to ask for, and cut prompts.

Servers do not all say when a conversation did not fit: Ollama keeps the newest messages that
fit its window and answers, and LM Studio can be set to do the same. What they do report is
the prompt's token count, and that is enough to notice a cut.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass

from dialogues.providers.base import Reply

# No tokenizer is at hand for a server's model, so tokens are estimated from UTF-8 bytes.
# English runs ~4 bytes a token; 3 over-counts almost any text (the window is generous),
# 4 under-counts (a refusal before a run is sure). A message costs a few template tokens.
BYTES_PER_TOKEN_HIGH = 3.0
BYTES_PER_TOKEN_LOW = 4.0
BYTES_PER_TOKEN_SURE = 6.0
PER_MESSAGE = 8
STEP = 1024  # windows are rounded up to this, so a model keeps one window for a whole run


def estimate(texts: Iterable[str], bytes_per_token: float = BYTES_PER_TOKEN_HIGH) -> int:
    """Estimated tokens of these messages in a chat template."""
    return sum(math.ceil(len(t.encode()) / bytes_per_token) + PER_MESSAGE for t in texts)


@dataclass(frozen=True)
class Need:
    """What the longest conversation of a model needs, estimated before any call."""

    high: int  # every prompt and every reply at its budget, over-counted: the window to ask for
    low: int  # the prompts under-counted plus one reply: less than this cannot fit at all
    conv_key: str


def need(conv_key: str, texts: list[str], replies: int, max_tokens: int) -> Need:
    """The tokens a conversation of these sent texts and `replies` replies can take."""
    high = estimate(texts) + replies * (max_tokens + PER_MESSAGE)
    low = estimate(texts, BYTES_PER_TOKEN_LOW) + max_tokens
    return Need(high, low, conv_key)


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
    return tokens_in + max(0, visible - 2)  # an end-of-turn token may not be sent back
