"""Local models served by Ollama, through the official `ollama` client and its native /api/chat."""

from __future__ import annotations

import asyncio
import json
import time
import weakref
from collections.abc import Sequence
from typing import Any

import httpx
import ollama

from dialogues.domain import config
from dialogues.domain.errors import ProviderUnavailable
from dialogues.domain.models import parse_parameter_size
from dialogues.providers.base import (
    GenParams,
    Message,
    ModelInfo,
    ProviderError,
    Reply,
    attach_reasoning,
)

LIST_TIMEOUT = httpx.Timeout(30.0, connect=2.0)  # a dead host fails fast; /api/show can be slow


def normalize_host(host: str | None = None) -> str:
    """The server URL: the given host, else $OLLAMA_HOST, with a scheme and no trailing slash."""
    url = (host or config.ollama_host()).rstrip("/")
    return url if "://" in url else f"http://{url}"


def unavailable(host: str) -> ProviderUnavailable:
    return ProviderUnavailable(
        f"no Ollama server answers at {host}; start `ollama serve` or set OLLAMA_HOST"
    )


def ollama_available(host: str | None = None, timeout: float = 1.0) -> bool:
    """True when an Ollama server answers at host within `timeout` seconds."""
    try:
        r = httpx.get(f"{normalize_host(host)}/api/version", timeout=timeout)
        return r.status_code == 200
    except httpx.HTTPError:
        return False


def _context_length(model_info: Any) -> int | None:
    """'<arch>.context_length' from /api/show's model_info."""
    info = dict(model_info or {})
    arch = info.get("general.architecture")
    value = info.get(f"{arch}.context_length") if arch else None
    if value is None:  # the architecture key is missing or named differently
        value = next((v for k, v in info.items() if k.endswith(".context_length")), None)
    return int(value) if isinstance(value, int | float) else None


def _model_info(host: str, tag: Any, show: Any | None) -> ModelInfo:
    """A ModelInfo from one /api/tags entry and its /api/show answer."""
    name = tag.model or ""
    details = (show.details if show is not None and show.details else None) or tag.details
    capabilities = list(show.capabilities or []) if show is not None else []
    arch = dict(show.modelinfo or {}).get("general.architecture") if show is not None else None
    info = ModelInfo(
        id=f"ollama/{name}",
        backend=name,
        provider="ollama",
        family=details.family if details else None,
        parameter_size=details.parameter_size if details else None,
        quantization=details.quantization_level if details else None,
        training="reasoning" if "thinking" in capabilities else None,
        digest=tag.digest,
        context_length=_context_length(show.modelinfo) if show is not None else None,
        api_base=host,
    )
    info.parameters = parse_parameter_size(info.parameter_size)
    info.metadata = {
        "capabilities": capabilities,
        "families": list(details.families or []) if details else [],
        "format": details.format if details else None,
        "architecture": arch,
        "size_bytes": int(tag.size) if tag.size is not None else None,
        "modified_at": tag.modified_at.isoformat() if tag.modified_at else None,
    }
    return info


def list_models(host: str | None = None) -> list[ModelInfo]:
    """Every model the Ollama server has pulled, with the metadata /api/tags and /api/show give."""
    url = normalize_host(host)
    client = ollama.Client(host=url, timeout=LIST_TIMEOUT)
    try:
        tags = client.list().models
        infos = []
        for tag in tags:
            try:
                show = client.show(tag.model or "")
            except ollama.ResponseError:
                show = None  # listed but not describable: keep what /api/tags said
            infos.append(_model_info(url, tag, show))
        return infos
    except (ConnectionError, httpx.TransportError):
        raise unavailable(url) from None
    except ollama.ResponseError as exc:
        raise ProviderUnavailable(
            f"Ollama at {url} answered HTTP {exc.status_code}: {exc.error}"
        ) from None
    finally:
        client.close()


def classify(exc: BaseException, host: str) -> ProviderError:
    """Turn an ollama/httpx exception into a ProviderError."""
    if isinstance(exc, ollama.ResponseError):
        status = exc.status_code
        text = f"Ollama at {host}: {exc.error} (HTTP {status})"
        if status == 429:
            return ProviderError(text, "rate_limit", True)
        if status >= 500:
            return ProviderError(text, "server", True)
        if status in (401, 403):
            return ProviderError(text, "auth")
        if 400 <= status < 500:
            return ProviderError(text, "bad_request")
        return ProviderError(text, "bad_response", True)  # an error line inside a stream
    if isinstance(exc, httpx.TimeoutException | asyncio.TimeoutError):
        return ProviderError(f"Ollama at {host} timed out", "timeout", True)
    if isinstance(exc, ConnectionError | httpx.TransportError):
        # the client turns a refused connection into ConnectionError; a dropped one stays httpx's
        return ProviderError(f"no answer from Ollama at {host}: {exc}", "connection", True)
    if isinstance(exc, json.JSONDecodeError | ValueError):  # pydantic's ValidationError too
        return ProviderError(
            f"malformed response from Ollama at {host}: {exc}", "bad_response", True
        )
    return ProviderError(f"Ollama at {host}: {type(exc).__name__}: {exc}", "error")


class OllamaProvider:
    """One model on an Ollama server. Thinking models are asked to think (think=True)."""

    def __init__(self, name: str, host: str | None = None, info: ModelInfo | None = None):
        self.name = name
        self.host = normalize_host(host)
        self.info = info or ModelInfo(
            id=f"ollama/{name}", backend=name, provider="ollama", api_base=self.host
        )
        self._described = info is not None
        # httpx clients belong to one event loop; keep one per loop (and timeout) for keep-alive.
        self._clients: weakref.WeakKeyDictionary[Any, dict[float, ollama.AsyncClient]] = (
            weakref.WeakKeyDictionary()
        )

    def _client(self, timeout: float) -> ollama.AsyncClient:
        per_loop = self._clients.setdefault(asyncio.get_running_loop(), {})
        if timeout not in per_loop:
            per_loop[timeout] = ollama.AsyncClient(host=self.host, timeout=timeout)
        return per_loop[timeout]

    async def describe(self, timeout: float = 30.0) -> ModelInfo:
        """Fill info from /api/tags and /api/show once, when it was not given."""
        if self._described:
            return self.info
        client = self._client(timeout)
        try:
            show = await client.show(self.name)
            tags = (await client.list()).models
        except ollama.ResponseError:
            self._described = True  # unknown model: let chat report the server's own error
            return self.info
        return self._fill(tags, show)

    def describe_now(self) -> ModelInfo:
        """describe() without an event loop: used before a run records its models."""
        if self._described:
            return self.info
        client = ollama.Client(host=self.host, timeout=LIST_TIMEOUT)
        try:
            show = client.show(self.name)
            tags = client.list().models
        except ollama.ResponseError:
            self._described = True
            return self.info
        finally:
            client.close()
        return self._fill(tags, show)

    def _fill(self, tags: Sequence[Any], show: Any) -> ModelInfo:
        """Take what the server tells into info, keeping the id and anything already declared."""
        tag = next((t for t in tags if t.model in (self.name, f"{self.name}:latest")), None)
        if tag is not None:
            told = _model_info(self.host, tag, show)
            for name in ("family", "parameters", "parameter_size", "quantization", "training",
                         "digest", "context_length"):  # fmt: skip
                if getattr(self.info, name) is None:
                    setattr(self.info, name, getattr(told, name))
            self.info.metadata = {**told.metadata, **self.info.metadata}
        elif self.info.training is None:
            self.info.training = "reasoning" if "thinking" in (show.capabilities or []) else None
        self._described = True
        return self.info

    async def aclose(self) -> None:
        """Close the HTTP clients this event loop opened."""
        for client in self._clients.pop(asyncio.get_running_loop(), {}).values():
            await client.close()

    def _think(self, params: GenParams) -> bool | str | None:
        """think=True for reasoning models (or on request); None leaves the server's default.

        A reasoning_effort becomes Ollama's think level ('low' … 'high'); 'none' turns it off.
        """
        if params.reasoning_effort is not None:
            return False if params.reasoning_effort == "none" else params.reasoning_effort
        if params.think is not None:
            return params.think
        capabilities = self.info.metadata.get("capabilities") or []
        return True if self.info.training == "reasoning" or "thinking" in capabilities else None

    async def chat(self, messages: list[Message], params: GenParams) -> Reply:
        """Send the conversation to /api/chat; return the reply with thinking kept apart."""
        options: dict[str, Any] = {
            "temperature": params.temperature,
            "num_predict": params.max_tokens,
        }
        if params.seed is not None:
            options["seed"] = params.seed
        if params.top_p is not None:
            options["top_p"] = params.top_p
        if params.num_ctx is not None:
            options["num_ctx"] = params.num_ctx
        for key, value in params.options:  # checked against this back end in models.toml
            options[key] = list(value) if isinstance(value, tuple) else value
        try:
            await self.describe(params.timeout_s)
        except Exception as exc:
            raise classify(exc, self.host) from None
        client = self._client(params.timeout_s)
        start = time.perf_counter()
        try:
            response = await client.chat(
                model=self.name,
                messages=[dict(m) for m in messages],
                think=self._think(params),
                options=options,
                stream=False,
                **({"format": json.loads(params.json_schema)} if params.json_schema else {}),
            )
        except Exception as exc:  # every failure becomes a ProviderError
            raise classify(exc, self.host) from None
        latency_ms = (time.perf_counter() - start) * 1000
        return self._reply(response, latency_ms)

    def _reply(self, response: Any, latency_ms: float) -> Reply:
        message = response.message
        reply = Reply(
            content=message.content or "",
            tokens_in=response.prompt_eval_count,
            tokens_out=response.eval_count,
            finish_reason=response.done_reason,
            latency_ms=latency_ms,
            model_version=self.info.digest or response.model,
            raw=response.model_dump(mode="json", exclude_none=True),
        )
        # A thinking model that ran out of budget comes back with content "", thinking set and
        # done_reason "length": that is a result to record, not an error.
        return attach_reasoning(reply, message.thinking)
