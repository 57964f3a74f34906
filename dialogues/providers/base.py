"""The provider contract every back end implements, and the records it exchanges."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Protocol

Message = dict[str, str]  # {"role": "system"|"user"|"assistant", "content": "..."}


@dataclass(frozen=True)
class GenParams:
    """Sampling parameters for one call."""

    temperature: float = 0.7
    seed: int | None = None
    max_tokens: int = 256
    timeout_s: float = 120.0
    think: bool | None = None  # ask reasoning models to think (Ollama's think=True)


@dataclass
class ModelInfo:
    """What we know about a model: the metadata architecture-vs-scale comparisons need."""

    id: str
    backend: str
    provider: str  # 'gguf' | 'ollama' | 'hosted'
    family: str | None = None
    parameters: int | None = None
    parameter_size: str | None = None
    quantization: str | None = None
    training: str | None = None  # base | instruct | reasoning | abliterated ...
    digest: str | None = None
    context_length: int | None = None
    api_base: str | None = None
    notes: str | None = None
    metadata: dict[str, Any] = field(default_factory=dict)


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

    def __init__(self, message: str, kind: str = "error", transient: bool = False):
        super().__init__(message)
        self.kind = kind
        self.transient = transient


class Provider(Protocol):
    """A model back end. `chat` is async so hosted calls overlap; local ones serialize inside."""

    info: ModelInfo

    async def chat(self, messages: list[Message], params: GenParams) -> Reply: ...


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
