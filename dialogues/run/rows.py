"""The archive fields of a provider's answer, shared by the runner and dialogues."""

from __future__ import annotations

from typing import Any

from dialogues.providers.base import Message, Provider, Reply
from dialogues.store import records


def reply_fields(reply: Reply, used: int) -> dict[str, Any]:
    """A reply's MessageRow fields; raw_json keeps what the provider said plus the calls used."""
    raw = dict(reply.raw or {})
    raw["_calls"] = used
    return {
        "content": reply.content,
        "reasoning": reply.reasoning,
        "reasoning_source": reply.reasoning_source,
        "tokens_in": reply.tokens_in,
        "tokens_out": reply.tokens_out,
        "reasoning_tokens": reply.reasoning_tokens,
        "latency_ms": reply.latency_ms,
        "finish_reason": reply.finish_reason,
        "model_version": reply.model_version,
        "raw_json": records.to_json(raw),
    }


def request_json(provider: Provider, request: list[Message], params: dict[str, Any]) -> str | None:
    """The exact request as stored: back end, messages and generation parameters."""
    return records.to_json(
        {"backend": provider.info.backend, "messages": request, "params": params}
    )
