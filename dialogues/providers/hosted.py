"""Hosted models through litellm: OpenAI, Anthropic, Gemini, OpenRouter, any OpenAI-compatible server."""

from __future__ import annotations

import email.utils
import functools
import gc
import json
import logging
import os
import re
import time
from typing import Any

from dialogues.domain import config  # noqa: F401  (sets LITELLM_LOCAL_MODEL_COST_MAP before litellm loads)
from dialogues.providers.base import (
    GenParams,
    Message,
    ModelInfo,
    ProviderError,
    Reply,
    attach_reasoning,
)

# An api_base server often needs no key, but the OpenAI SDK refuses to send a request without one.
NO_KEY = "not-needed"
LM_STUDIO_BASE = "http://127.0.0.1:1234/v1"  # where LM Studio's server listens unless told


def default_base(backend: str) -> str | None:
    """The server a back end uses when none is given: LM Studio's local one for lm_studio/…."""
    if backend.startswith("lm_studio/"):
        return os.environ.get("LM_STUDIO_API_BASE") or LM_STUDIO_BASE
    return None


_litellm: Any = None


def _load_litellm() -> Any:
    """Import litellm once, quietly (the import takes seconds, so it waits for the first call)."""
    global _litellm
    if _litellm is None:
        # Without this litellm loads a .env file from the working directory into os.environ.
        os.environ.setdefault("LITELLM_MODE", "PRODUCTION")
        os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
        import litellm

        litellm.suppress_debug_info = True  # no "Give Feedback / Get Help" banners on errors
        litellm.drop_params = False  # never send a different request than the one recorded
        for name in ("LiteLLM", "LiteLLM Router", "LiteLLM Proxy"):
            logging.getLogger(name).setLevel(logging.ERROR)
        # The import leaves ~370k objects that live as long as the process. Every full garbage
        # collection would walk them again (0.2 s, about once per few hundred calls); frozen,
        # the collector skips them.
        gc.freeze()
        _litellm = litellm
    return _litellm


# ---------------------------------------------------------------------------------------------
# Keeping secrets out of replies, errors and logs

_SECRET_PATTERNS = [
    re.compile(r"(?i)(bearer\s+)[A-Za-z0-9._~+/=-]{6,}"),
    re.compile(
        r"(?i)((?:authorization|x-api-key|api[_-]?key|x-goog-api-key)['\"]?\s*[:=]\s*['\"]?)[^'\"\s,}]+"
    ),
    re.compile(r"\bsk-[A-Za-z0-9_-]{6,}"),  # OpenAI, Anthropic (sk-ant-…), OpenRouter (sk-or-…)
    re.compile(r"\bAIza[0-9A-Za-z_-]{20,}"),  # Google
    re.compile(r"\b(?:gsk|xai|hf|pplx|r8)_[A-Za-z0-9]{16,}"),
]


def _any_of(patterns: list[re.Pattern[str]]) -> re.Pattern[str]:
    """One regex that matches wherever any of the patterns would: most strings of a response
    match none, and one search costs a fifth of five substitutions."""
    parts = []
    for p in patterns:
        source, flags = p.pattern, "(?i)"
        if source.startswith(flags):  # a global flag becomes a scoped one, inside the group
            source = f"(?i:{source[len(flags) :]})"
        parts.append(f"(?:{source})")
    return re.compile("|".join(parts))


_ANY_SECRET = _any_of(_SECRET_PATTERNS)
_SECRET_SUFFIXES = ("_KEY", "_TOKEN")  # _API_KEY included; endswith beats a regex per variable


def _secret_values() -> list[str]:
    """Values of environment variables that look like credentials, longest first."""
    env = os.environ  # names first, values only of the matching ones: 8 µs instead of 21
    values = {env.get(k, "") for k in list(env) if k.upper().endswith(_SECRET_SUFFIXES)}
    values = {v for v in values if len(v) >= 6}
    values.discard(NO_KEY)
    return sorted(values, key=len, reverse=True)


def scrub_secrets(text: str, secrets: list[str] | None = None) -> str:
    """Replace credential-looking strings and the values of *_KEY/*_TOKEN env vars with ***."""
    for value in _secret_values() if secrets is None else secrets:
        if value in text:
            text = text.replace(value, "***")
    if not _ANY_SECRET.search(text):
        return text
    for pattern in _SECRET_PATTERNS:
        text = pattern.sub(lambda m: (m.group(1) if m.groups() else "") + "***", text)
    return text


_AUTH_KEYS = {"api_key", "authorization", "x_api_key"}


@functools.lru_cache(maxsize=1024)  # a response's keys are the same few, call after call
def _is_auth_key(key: Any) -> bool:
    return str(key).lower().replace("-", "_") in _AUTH_KEYS


def scrub_payload(value: Any, secrets: list[str] | None = None) -> Any:
    """scrub_secrets applied to every string in a JSON-like structure; auth keys dropped."""
    return _scrub(value, _secret_values() if secrets is None else secrets)


# What _scrub looks into; numbers, None and bools pass as they are, without a call.
_NESTED = (str, dict, list, tuple)


def _scrub(value: Any, secrets: list[str]) -> Any:
    if isinstance(value, str):
        return scrub_secrets(value, secrets)
    if isinstance(value, dict):
        return {
            k: _scrub(v, secrets) if isinstance(v, _NESTED) else v
            for k, v in value.items()
            if not _is_auth_key(k)
        }
    if isinstance(value, list | tuple):
        return [_scrub(v, secrets) if isinstance(v, _NESTED) else v for v in value]
    return value


# ---------------------------------------------------------------------------------------------
# Errors


def _retry_after(exc: BaseException) -> float | None:
    """Seconds from a Retry-After (or retry-after-ms) header on the error's HTTP response."""
    headers = getattr(getattr(exc, "response", None), "headers", None)
    if not headers:
        return None
    try:
        if headers.get("retry-after-ms"):
            return float(headers["retry-after-ms"]) / 1000
        value = headers.get("retry-after")
        if not value:
            return None
        try:
            return float(value)
        except ValueError:
            when = email.utils.parsedate_to_datetime(value)
            return max(0.0, when.timestamp() - time.time())
    except (TypeError, ValueError):
        return None


# How servers say a prompt does not fit: OpenAI, llama.cpp's server, vLLM, LM Studio.
_CONTEXT = re.compile(
    r"(?i)context[ _](?:length|window)[ _]exceeded|maximum context length|"
    r"exceeds? (?:the )?(?:model'?s? )?context (?:window|length)|"
    r"requested tokens \(\d+\) exceed context window"
)


def classify(exc: BaseException) -> ProviderError:
    """Turn a litellm/OpenAI SDK/network exception into a ProviderError, secrets scrubbed."""
    names = {cls.__name__ for cls in type(exc).__mro__}
    status = getattr(exc, "status_code", None)
    text = scrub_secrets(str(exc)) or type(exc).__name__
    lowered = text.lower()
    kind, transient = "error", False
    if "ContextWindowExceededError" in names or _CONTEXT.search(text):
        kind = "context"  # the conversation does not fit the model's window: retrying won't help
    elif (
        names & {"Timeout", "APITimeoutError", "TimeoutError", "TimeoutException"} or status == 408
    ):
        kind, transient = "timeout", True
    elif "RateLimitError" in names or status == 429:
        kind, transient = "rate_limit", True
    elif names & {"AuthenticationError", "PermissionDeniedError"} or status in (401, 403):
        kind = "auth"
    elif (
        "expecting value" in lowered
        or "jsondecodeerror" in lowered
        or "APIResponseValidationError" in names
    ):
        kind, transient = "bad_response", True  # malformed JSON from the server
    elif "connection error" in lowered or names & {
        "APIConnectionError",
        "ConnectError",
        "RemoteProtocolError",
    }:
        kind, transient = "connection", True
    elif isinstance(status, int) and status >= 500:
        kind, transient = "server", True
    elif names & {"BadRequestError", "NotFoundError", "UnprocessableEntityError"} or (
        isinstance(status, int) and 400 <= status < 500
    ):
        kind = "bad_request"
    err = ProviderError(
        text.splitlines()[0][:500] if text else kind, kind=kind, transient=transient
    )
    err.retry_after = _retry_after(exc)
    return err


# ---------------------------------------------------------------------------------------------
# The provider


def _env_key(backend: str, api_key_env: str | None, api_base: str | None) -> str | None:
    """The key to pass explicitly: the named env var, a dummy for an api_base server, else None.

    None lets litellm read the provider's own variable (OPENAI_API_KEY …). An OpenAI-compatible
    server at api_base gets a dummy rather than $OPENAI_API_KEY, so a real OpenAI key is never
    sent to some other host unless api_key_env names it.
    """
    if api_key_env:
        if not os.environ.get(api_key_env):
            raise ProviderError(f"${api_key_env} is not set (needed for {backend})", "auth")
        return os.environ[api_key_env]
    if api_base and backend.startswith("openai/"):
        return NO_KEY
    if backend.startswith("lm_studio/"):
        return os.environ.get("LM_STUDIO_API_KEY") or NO_KEY
    return None


def _original(details: dict[str, Any]) -> dict[str, Any] | None:
    """The provider's own response body, as litellm saw it before normalising."""
    raw = details.get("original_response")
    if isinstance(raw, str):
        try:
            raw = json.loads(raw)
        except ValueError:
            return None
    return raw if isinstance(raw, dict) else None


class HostedProvider:
    """A model behind a hosted API, addressed by a litellm string such as 'openai/gpt-4o-mini'."""

    def __init__(
        self,
        backend: str,
        info: ModelInfo | None = None,
        api_base: str | None = None,
        api_key_env: str | None = None,
    ):
        self.backend = backend
        self.api_base = api_base
        self.api_key_env = api_key_env
        self.info = info or ModelInfo(
            id=backend, backend=backend, provider="hosted", api_base=api_base
        )
        self._env_secrets: list[str] | None = None  # read at the first call, not at every one

    def _secrets(self, request: dict[str, Any]) -> list[str]:
        """Values to scrub from a reply: the environment's credentials and the key just sent.

        Reading the environment costs ~8 us a call (a fifth of a reply's handling), so it is
        read once per provider; the key a request carried is added whatever the env says now.
        """
        if self._env_secrets is None:
            self._env_secrets = _secret_values()
        sent = request.get("api_key")
        if not sent or len(sent) < 6 or sent == NO_KEY or sent in self._env_secrets:
            return self._env_secrets
        return sorted([*self._env_secrets, sent], key=len, reverse=True)

    def _request(self, messages: list[Message], params: GenParams) -> dict[str, Any]:
        kwargs: dict[str, Any] = {
            "model": self.backend,
            "messages": [dict(m) for m in messages],
            "temperature": params.temperature,
            "max_tokens": params.max_tokens,
            "timeout": params.timeout_s,
            # The runner retries with backoff and records attempts; litellm must not retry too.
            "num_retries": 0,
            "max_retries": 0,
        }
        if params.seed is not None:
            kwargs["seed"] = params.seed
        if params.reasoning_effort is not None:
            kwargs["reasoning_effort"] = params.reasoning_effort
            if self.backend.startswith("lm_studio/"):
                # litellm's map says LM Studio takes no reasoning_effort; its server does
                # (for reasoning models), so let the one parameter through as given.
                kwargs["allowed_openai_params"] = ["reasoning_effort"]
        if params.top_p is not None:
            kwargs["top_p"] = params.top_p
        for name, value in params.options:  # checked against this back end in models.toml
            kwargs[name] = list(value) if isinstance(value, tuple) else value
        if params.json_schema:
            kwargs["response_format"] = {
                "type": "json_schema",
                "json_schema": {"name": "answer", "schema": json.loads(params.json_schema)},
            }
        if self.api_base:
            kwargs["api_base"] = self.api_base
        key = _env_key(self.backend, self.api_key_env, self.api_base)
        if key:
            kwargs["api_key"] = key
        return kwargs

    async def chat(self, messages: list[Message], params: GenParams) -> Reply:
        """Send the conversation; return the reply with reasoning split out."""
        request = self._request(messages, params)
        litellm = _load_litellm()
        seen: dict[str, Any] = {}

        def keep_original(details: dict[str, Any]) -> None:
            # litellm calls this synchronously after the HTTP call with the provider's raw body.
            if details.get("log_event_type") == "post_api_call":
                seen["original_response"] = details.get("original_response")

        start = time.perf_counter()
        try:
            response = await litellm.acompletion(**request, logger_fn=keep_original)
        except Exception as exc:  # every failure becomes a ProviderError
            raise classify(exc) from None
        latency_ms = (time.perf_counter() - start) * 1000
        try:
            return self._reply(response, _original(seen), latency_ms, self._secrets(request))
        except (AttributeError, IndexError, KeyError, TypeError) as exc:
            raise ProviderError(
                f"unexpected response shape from {self.backend}: {exc}", "bad_response", True
            ) from None

    def _reply(
        self,
        response: Any,
        original: dict[str, Any] | None,
        latency_ms: float,
        secrets: list[str],
    ) -> Reply:
        choice = response.choices[0]
        message = choice.message
        usage = getattr(response, "usage", None)
        details = getattr(usage, "completion_tokens_details", None)
        fingerprint = getattr(response, "system_fingerprint", None)
        version = response.model
        if fingerprint:
            version = f"{response.model} ({fingerprint})" if response.model else fingerprint
        reply = Reply(
            content=message.content or "",
            tokens_in=getattr(usage, "prompt_tokens", None),
            tokens_out=getattr(usage, "completion_tokens", None),
            reasoning_tokens=getattr(details, "reasoning_tokens", None),
            finish_reason=choice.finish_reason,
            latency_ms=latency_ms,
            model_version=version,
        )
        # The provider's own body is the record; litellm's normalised copy only when it is
        # missing (dumping the pydantic response costs more than the rest of the call).
        raw = original if original is not None else response.model_dump()
        reply.raw = scrub_payload(raw, secrets)
        inline = _inline_content(original)
        if inline is not None:
            # litellm moves a leading <think> block into reasoning_content; the provider sent
            # it inline, and which of the two happened is part of the record.
            reply.content = inline
            return attach_reasoning(reply, None)
        return attach_reasoning(reply, getattr(message, "reasoning_content", None))


_REASONING_FIELDS = ("reasoning_content", "reasoning", "thinking")


def _inline_content(original: dict[str, Any] | None) -> str | None:
    """The raw content when an OpenAI-shaped response carried <think> inline and no field."""
    try:
        msg = original["choices"][0]["message"]  # type: ignore[index]
    except (TypeError, KeyError, IndexError):
        return None
    content = msg.get("content") if isinstance(msg, dict) else None
    if not isinstance(content, str) or "think>" not in content:
        return None
    if any(msg.get(f) for f in _REASONING_FIELDS):
        return None
    return content
