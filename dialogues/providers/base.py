"""The provider contract every back end implements, and the records it exchanges."""

from __future__ import annotations

import asyncio
import inspect
import random
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from dialogues.domain.models import ModelInfo

Message = dict[str, str]  # {"role": "system"|"user"|"assistant", "content": "..."}


@dataclass(frozen=True)
class GenParams:
    """Sampling parameters for one call."""

    temperature: float = 0.7
    seed: int | None = None
    max_tokens: int = 256
    timeout_s: float = 120.0
    think: bool | None = None  # ask reasoning models to think (Ollama's think=True)
    reasoning_effort: str | None = None  # 'none' … 'high', for back ends that take it
    top_p: float | None = None
    num_ctx: int | None = None  # the context window to ask for (Ollama num_ctx, llama.cpp n_ctx)
    options: tuple[tuple[str, Any], ...] = ()  # other sampling options (top_k, stop …), sorted
    json_schema: str | None = None
    """A JSON schema (as JSON text) the reply must follow, where the back end can hold it to
    one: Ollama's `format`, OpenAI-style `response_format`, a llama.cpp grammar."""


@dataclass
class Reply:
    """One model answer, with its reasoning kept apart from the visible content."""

    content: str
    reasoning: str | None = None
    reasoning_source: str | None = None  # 'field' (provider gave it) | 'tags' (<think> parsed)
    tokens_in: int | None = None
    tokens_out: int | None = None
    reasoning_tokens: int | None = None
    finish_reason: str | None = None
    latency_ms: float | None = None
    model_version: str | None = None
    raw: dict[str, Any] | None = None


class ProviderError(Exception):
    """A failed call. `transient` errors (429, 5xx, timeouts, dropped connections) are retried."""

    retry_after: float | None = None  # seconds the server asked us to wait (Retry-After)
    attempts: int | None = None  # set by call_with_retries: how many calls were made

    def __init__(self, message: str, kind: str = "error", transient: bool = False):
        super().__init__(message)
        self.kind = kind
        self.transient = transient


class Provider(Protocol):
    """A model back end: the one contract the runner and dialogues call.

    `info` describes the model; `info.id` is what the archive records as the model that wrote
    every reply this provider returns. `chat` is async so hosted calls overlap; local ones
    serialize inside.
    """

    info: ModelInfo

    async def chat(self, messages: list[Message], params: GenParams) -> Reply:
        """Send the whole conversation (system/user/assistant messages, oldest first) once.

        Returns a Reply: the visible `content` ('' when the model said nothing, never None),
        any thinking split out into `reasoning` (with `reasoning_source` 'field' or 'tags'),
        token counts, `finish_reason` ('stop', 'length' ...), `latency_ms` and the provider's
        own payload in `raw` with keys and secrets left out. Raises ProviderError for every
        failure, with a `kind` ('timeout', 'connection', 'rate_limit', 'server', 'auth',
        'bad_request', 'bad_response', ...) and `transient` set where a retry may succeed
        (call_with_retries retries those); it does not retry by itself.
        """
        ...


_THINK = re.compile(r"<think>(.*?)(?:</think>|$)", re.DOTALL)


def split_think(content: str) -> tuple[str, str | None]:
    """Split inline <think>…</think> reasoning out of content; an unclosed tag is all reasoning."""
    if "<think>" not in content:
        # Some servers strip the opening tag but leave the closing one.
        if "</think>" in content:
            head, _, tail = content.partition("</think>")
            return tail.strip(), head.strip() or None
        return content, None
    parts = _THINK.findall(content)
    visible = _THINK.sub("", content).strip()
    reasoning = "\n\n".join(p.strip() for p in parts if p.strip())
    return visible, reasoning or None


def attach_reasoning(reply: Reply, field_text: str | None) -> Reply:
    """Prefer a provider's reasoning field; else parse <think> tags out of the content."""
    if field_text:
        reply.reasoning, reply.reasoning_source = field_text, "field"
        return reply
    visible, parsed = split_think(reply.content or "")
    if parsed is not None:
        reply.content, reply.reasoning, reply.reasoning_source = visible, parsed, "tags"
    return reply


RETRY_AFTER_CAP = 60.0  # a server's Retry-After is honoured, but never beyond a minute


def retry_delay(attempt: int, base_delay: float, max_delay: float, hint: float | None) -> float:
    """Jittered exponential backoff for the wait after failed attempt `attempt` (1-based)."""
    backoff = min(max_delay, base_delay * 2 ** (attempt - 1))
    delay = backoff * random.uniform(0.5, 1.0)  # jitter keeps parallel cells from retrying in step
    if hint is not None and hint > 0:
        delay = max(delay, min(hint, RETRY_AFTER_CAP))
    return delay


async def call_with_retries(
    provider: Provider,
    messages: list[Message],
    params: GenParams,
    *,
    attempts: int = 4,
    base_delay: float = 0.2,
    max_delay: float = 5.0,
    on_retry: Callable[[int, ProviderError, float], Any] | None = None,
) -> tuple[Reply, int]:
    """Call `provider.chat`, retrying transient ProviderErrors; return (reply, attempts used).

    Non-transient errors are raised at once; when transient ones persist the last is raised.
    Either way the raised error carries `attempts`. `on_retry(attempt, error, delay)` is called
    (and awaited if it returns an awaitable) before each wait.
    """
    for attempt in range(1, attempts + 1):
        try:
            return await provider.chat(messages, params), attempt
        except ProviderError as err:
            err.attempts = attempt
            if not err.transient or attempt >= attempts:
                raise
            delay = retry_delay(attempt, base_delay, max_delay, err.retry_after)
            if on_retry is not None:
                result = on_retry(attempt, err, delay)
                if inspect.isawaitable(result):
                    await result
            await asyncio.sleep(delay)
    raise ValueError("attempts must be at least 1")
