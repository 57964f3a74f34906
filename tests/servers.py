"""Loopback HTTP servers that speak the OpenAI and Ollama wire formats, scriptable per call.

Each server runs an asyncio loop in a daemon thread, so it serves many concurrent keep-alive
connections without being the bottleneck of a throughput test. Every reply goes out in one
write on a TCP_NODELAY socket: a reply split into headers and body would otherwise wait for
the client's delayed ACK (~40 ms per call under Nagle).

    server = OpenAIServer([Fail(500), Answer("hi")])
    with server as url:          # url = "http://127.0.0.1:PORT/v1"
        ...
    server.requests[0].body["messages"]
"""

from __future__ import annotations

import asyncio
import itertools
import json
import socket
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

# ---------------------------------------------------------------------------------------------
# What a scripted call does


@dataclass
class Answer:
    """A successful reply. `reasoning` goes in the provider's reasoning field when it has one."""

    content: str = "Hello from the loopback server."
    reasoning: str | None = None
    finish_reason: str = "stop"
    delay: float = 0.0
    prompt_tokens: int | None = None  # None: counted from the request, as a server would
    completion_tokens: int | None = None  # None: counted from the content and reasoning
    reasoning_tokens: int | None = None


@dataclass
class Fail:
    """An HTTP error status with a JSON error body (500, 429 with Retry-After, 401 ...)."""

    status: int = 500
    message: str = "loopback server error"
    retry_after: float | None = None
    delay: float = 0.0


@dataclass
class Malformed:
    """A 200 whose body is not JSON."""

    body: bytes = b'{"choices": [ this is not json'
    delay: float = 0.0


@dataclass
class Drop:
    """Send the headers and part of the body, then close the connection."""

    delay: float = 0.0


Action = Answer | Fail | Malformed | Drop


@dataclass
class Request:
    """One request as the server saw it."""

    method: str
    path: str
    headers: dict[str, str]  # lower-cased names
    body: Any  # parsed JSON, or None
    kept: list[dict[str, Any]] | None = None  # the messages a windowed server let the model see


Script = Callable[[Request], Action]


class _Partial(bytes):
    """Response bytes after which the server closes the connection."""


_REASONS = {
    200: "OK",
    400: "Bad Request",
    401: "Unauthorized",
    404: "Not Found",
    429: "Too Many Requests",
    500: "Internal Server Error",
    502: "Bad Gateway",
    503: "Service Unavailable",
}


def count_tokens(text: str) -> int:
    """The fakes' tokenizer: about four UTF-8 bytes a token, as English runs."""
    return -(-len(text.encode()) // 4)


def prompt_tokens(messages: list[dict[str, Any]]) -> int:
    """Tokens of a chat prompt: each message's text plus four for its template."""
    return sum(count_tokens(str(m.get("content") or "")) + 4 for m in messages)


def _completion_tokens(answer: Answer) -> int:
    if answer.completion_tokens is not None:
        return answer.completion_tokens
    return max(1, count_tokens(answer.content + (answer.reasoning or "")))


def _prompt_tokens(answer: Answer, request: dict[str, Any]) -> int:
    if answer.prompt_tokens is not None:
        return answer.prompt_tokens
    messages = request.get("messages")
    return prompt_tokens(messages) if isinstance(messages, list) else 0


def _response(
    status: int,
    body: bytes,
    content_type: str = "application/json",
    extra: dict[str, str] | None = None,
    length: int | None = None,
) -> bytes:
    """A full HTTP/1.1 response as one byte string."""
    head = [
        f"HTTP/1.1 {status} {_REASONS.get(status, 'Status')}",
        f"Content-Type: {content_type}",
        f"Content-Length: {len(body) if length is None else length}",
        "Connection: keep-alive",
    ]
    head += [f"{k}: {v}" for k, v in (extra or {}).items()]
    return ("\r\n".join(head) + "\r\n\r\n").encode() + body


def _chunked(status: int, chunks: Iterable[bytes], content_type: str) -> bytes:
    """A chunked-transfer response (how Ollama streams NDJSON), still built as one write."""
    head = (
        f"HTTP/1.1 {status} OK\r\nContent-Type: {content_type}\r\n"
        "Transfer-Encoding: chunked\r\nConnection: keep-alive\r\n\r\n"
    ).encode()
    body = b"".join(f"{len(c):x}\r\n".encode() + c + b"\r\n" for c in chunks if c)
    return head + body + b"0\r\n\r\n"


# ---------------------------------------------------------------------------------------------
# The server machinery


class _LoopbackServer:
    """An asyncio HTTP/1.1 server on 127.0.0.1:<free port>, run in a background thread."""

    url_suffix = ""

    def __init__(
        self,
        script: Iterable[Action] | Script | None = None,
        *,
        default: Action | Script | None = None,
        delay: float = 0.0,
        keep_requests: bool = True,
    ):
        self._queue: deque[Action] = deque()
        self._script: Script | None = None
        if callable(script):
            self._script = script
        elif script is not None:
            self._queue.extend(script)
        self.default: Action | Script = default if default is not None else Answer()
        self.delay = delay  # added to every chat call, e.g. to model generation time
        self.requests: list[Request] = []  # every request, for tests to inspect
        self.keep_requests = keep_requests  # a benchmark's long run keeps none
        self.calls = 0
        self.port = 0
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._server: asyncio.Server | None = None
        self._thread: threading.Thread | None = None
        self._writers: set[asyncio.StreamWriter] = set()

    # -- scripting ------------------------------------------------------------------------------

    def push(self, *actions: Action) -> None:
        """Queue actions for the next chat calls; after them the default applies."""
        with self._lock:
            self._queue.extend(actions)

    def next_action(self, request: Request) -> Action:
        """The action for this chat call: the script callable, the queue, then the default."""
        with self._lock:
            self.calls += 1
            if self._script is not None:
                return self._script(request)
            if self._queue:
                return self._queue.popleft()
        return self.default(request) if callable(self.default) else self.default

    # -- lifecycle ------------------------------------------------------------------------------

    @property
    def base(self) -> str:
        """http://127.0.0.1:PORT, without any API prefix."""
        return f"http://127.0.0.1:{self.port}"

    @property
    def url(self) -> str:
        """The base URL a client is given (OpenAI: .../v1; Ollama: the host)."""
        return self.base + self.url_suffix

    def start(self) -> str:
        """Start serving in a daemon thread; return the URL."""
        ready = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(ready,), daemon=True)
        self._thread.start()
        if not ready.wait(10):
            raise RuntimeError("loopback server did not start")
        return self.url

    def stop(self) -> None:
        """Close every connection and stop the loop."""
        if self._loop is None:
            return
        self._loop.call_soon_threadsafe(self._shutdown)
        if self._thread is not None:
            self._thread.join(10)
        self._loop = None

    def __enter__(self) -> str:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _run(self, ready: threading.Event) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        asyncio.set_event_loop(loop)
        self._server = loop.run_until_complete(
            asyncio.start_server(self._serve, "127.0.0.1", 0, backlog=1024, limit=2**22)
        )
        self.port = self._server.sockets[0].getsockname()[1]
        ready.set()
        loop.run_forever()
        pending = asyncio.all_tasks(loop)
        for task in pending:
            task.cancel()
        loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
        loop.run_until_complete(loop.shutdown_asyncgens())
        loop.close()

    def _shutdown(self) -> None:
        assert self._server is not None and self._loop is not None
        self._server.close()
        for writer in list(self._writers):
            writer.transport.abort()
        self._loop.stop()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        sock = writer.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._writers.add(writer)
        try:
            while True:
                request = await self._read_request(reader)
                if request is None:
                    break
                if self.keep_requests:
                    self.requests.append(request)
                out = await self.handle(request)
                writer.write(out)
                await writer.drain()
                if isinstance(out, _Partial):  # a connection dropped mid-response
                    break
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        except asyncio.CancelledError:
            pass  # shutting down; re-raising makes asyncio log a traceback per open connection
        finally:
            self._writers.discard(writer)
            writer.close()

    @staticmethod
    async def _read_request(reader: asyncio.StreamReader) -> Request | None:
        try:
            head = await reader.readuntil(b"\r\n\r\n")
        except (asyncio.IncompleteReadError, ConnectionError):
            return None
        lines = head.decode("latin-1").split("\r\n")
        method, target, _ = lines[0].split(" ", 2)
        headers = {}
        for line in lines[1:]:
            if ":" in line:
                name, _, value = line.partition(":")
                headers[name.strip().lower()] = value.strip()
        if headers.get("transfer-encoding", "").lower() == "chunked":
            raw = b""
            while True:
                size = int((await reader.readuntil(b"\r\n")).strip().split(b";")[0], 16)
                chunk = await reader.readexactly(size + 2)
                if size == 0:
                    break
                raw += chunk[:-2]
        else:
            raw = await reader.readexactly(int(headers.get("content-length", "0")))
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            body = raw.decode("utf-8", "replace")
        return Request(method, target.split("?")[0], headers, body)

    async def act(
        self, request: Request, action: Action, render: Callable[[Answer], bytes]
    ) -> bytes:
        """Carry out a scripted action: wait, then the response bytes to send."""
        wait = self.delay + action.delay
        if wait:
            await asyncio.sleep(wait)
        if isinstance(action, Answer):
            return render(action)
        if isinstance(action, Fail):
            extra = {} if action.retry_after is None else {"Retry-After": f"{action.retry_after:g}"}
            return _response(action.status, self.error_body(action), extra=extra)
        if isinstance(action, Malformed):
            return _response(200, action.body)
        # Drop: promise a long body, send a little of it; the caller then closes the socket.
        return _Partial(_response(200, b'{"id": "chatcmpl-dro', length=4096))

    def error_body(self, action: Fail) -> bytes:
        return json.dumps({"error": action.message}).encode()

    async def handle(self, request: Request) -> bytes:
        raise NotImplementedError


# ---------------------------------------------------------------------------------------------
# OpenAI-compatible


class OpenAIServer(_LoopbackServer):
    """POST /v1/chat/completions (and GET /v1/models), OpenAI's non-streaming format.

    An Answer with `reasoning` sets message.reasoning_content, as DeepSeek, vLLM and
    llama.cpp's server do; put `<think>…</think>` in `content` to test inline reasoning.
    """

    url_suffix = "/v1"

    def __init__(self, *args: Any, model: str = "loopback-model-2025-01", **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.model = model
        self._ids = itertools.count(1)

    def error_body(self, action: Fail) -> bytes:
        kind = "rate_limit_exceeded" if action.status == 429 else "server_error"
        return json.dumps(
            {"error": {"message": action.message, "type": kind, "code": kind}}
        ).encode()

    async def handle(self, request: Request) -> bytes:
        if request.path.endswith("/models") and request.method == "GET":
            return _response(
                200, json.dumps({"object": "list", "data": [{"id": self.model}]}).encode()
            )
        if not request.path.endswith("/chat/completions") or request.method != "POST":
            return _response(404, b'{"error": {"message": "not found"}}')
        action = self.next_action(request)
        return await self.act(request, action, lambda a: self._render(request, a))

    def _render(self, request: Request, answer: Answer) -> bytes:
        message: dict[str, Any] = {"role": "assistant", "content": answer.content}
        if answer.reasoning is not None:
            message["reasoning_content"] = answer.reasoning
        body_in = request.body if isinstance(request.body, dict) else {}
        used_in, used_out = _prompt_tokens(answer, body_in), _completion_tokens(answer)
        usage: dict[str, Any] = {
            "prompt_tokens": used_in,
            "completion_tokens": used_out,
            "total_tokens": used_in + used_out,
        }
        if answer.reasoning_tokens is not None:
            usage["completion_tokens_details"] = {"reasoning_tokens": answer.reasoning_tokens}
        body = {
            "id": f"chatcmpl-loop{next(self._ids)}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": self.model,
            "system_fingerprint": "fp_loopback",
            "choices": [{"index": 0, "message": message, "finish_reason": answer.finish_reason}],
            "usage": usage,
        }
        return _response(200, json.dumps(body).encode())


# ---------------------------------------------------------------------------------------------
# Ollama


@dataclass
class OllamaModel:
    """A model the fake Ollama has 'pulled'."""

    name: str
    family: str
    parameter_size: str
    quantization_level: str
    context_length: int
    capabilities: list[str] = field(default_factory=lambda: ["completion"])
    digest: str = ""
    size: int = 1_000_000_000

    def __post_init__(self) -> None:
        if not self.digest:
            self.digest = (self.name.encode().hex() * 8)[:64]

    def details(self) -> dict[str, Any]:
        return {
            "parent_model": "",
            "format": "gguf",
            "family": self.family,
            "families": [self.family],
            "parameter_size": self.parameter_size,
            "quantization_level": self.quantization_level,
        }


DEFAULT_OLLAMA_MODELS = [
    OllamaModel(
        "qwen3:8b",
        "qwen3",
        "8.2B",
        "Q4_K_M",
        40960,
        ["completion", "tools", "thinking"],
    ),
    OllamaModel("llama3.2:1b", "llama", "1.2B", "Q8_0", 131072, ["completion", "tools"]),
]


class OllamaServer(_LoopbackServer):
    """GET /api/tags, POST /api/show, POST /api/chat (JSON or streamed NDJSON), GET /api/version.

    An Answer's `reasoning` arrives in message.thinking when the request has think=true, and
    inline as <think>…</think> in the content otherwise (as older Ollama builds did).

    Like Ollama, it holds a conversation in a window: options.num_ctx, else `window` (Ollama's
    small default). What does not fit is cut silently: the oldest messages after the system
    prompt go first, then a lone message keeps its last tokens; prompt_eval_count counts what
    was kept, and each request's `kept` shows the messages the model saw.
    """

    def __init__(
        self,
        *args: Any,
        models: list[OllamaModel] | None = None,
        window: int = 2048,
        **kwargs: Any,
    ):
        super().__init__(*args, **kwargs)
        self.models = list(DEFAULT_OLLAMA_MODELS if models is None else models)
        self.window = window

    def _model(self, name: str | None) -> OllamaModel | None:
        for m in self.models:
            if name in (m.name, m.name.removesuffix(":latest")):
                return m
        return None

    def _missing(self, name: Any) -> bytes:
        return _response(404, json.dumps({"error": f"model '{name}' not found"}).encode())

    async def handle(self, request: Request) -> bytes:
        path, body = request.path, request.body if isinstance(request.body, dict) else {}
        if path == "/api/version":
            return _response(200, b'{"version": "0.12.0-loopback"}')
        if path == "/api/tags":
            return _response(
                200, json.dumps({"models": [self._tag(m) for m in self.models]}).encode()
            )
        if path == "/api/show":
            model = self._model(body.get("model") or body.get("name"))
            return self._show(model) if model else self._missing(body.get("model"))
        if path == "/api/chat":
            model = self._model(body.get("model"))
            if model is None:
                return self._missing(body.get("model"))
            if body.get("think") and "thinking" not in model.capabilities:
                return _response(
                    400, json.dumps({"error": f'"{model.name}" does not support thinking'}).encode()
                )
            request.kept, used = fit(body.get("messages") or [], self._window(body))
            action = self.next_action(request)
            return await self.act(request, action, lambda a: self._chat(body, model, a, used))
        return _response(404, b'{"error": "not found"}')

    def _tag(self, m: OllamaModel) -> dict[str, Any]:
        return {
            "name": m.name,
            "model": m.name,
            "modified_at": "2025-01-01T00:00:00.000000000Z",
            "size": m.size,
            "digest": m.digest,
            "details": m.details(),
        }

    def _show(self, m: OllamaModel) -> bytes:
        arch = m.family
        body = {
            "license": "loopback",
            "modelfile": f"FROM {m.name}\n",
            "parameters": "temperature 0.6\nnum_ctx 4096",
            "template": "{{ .Prompt }}",
            "details": m.details(),
            "model_info": {
                "general.architecture": arch,
                "general.parameter_count": _parse_size(m.parameter_size),
                f"{arch}.context_length": m.context_length,
                f"{arch}.embedding_length": 4096,
            },
            "capabilities": m.capabilities,
            "modified_at": "2025-01-01T00:00:00.000000000Z",
        }
        return _response(200, json.dumps(body).encode())

    def _window(self, body: dict[str, Any]) -> int:
        options = body.get("options") or {}
        return int(options.get("num_ctx") or self.window)

    def _chat(self, request: dict[str, Any], m: OllamaModel, answer: Answer, used: int) -> bytes:
        content, thinking = answer.content, answer.reasoning
        if thinking is not None and not request.get("think"):
            # inline, as older builds did; a budget that ran out mid-thought leaves the tag open
            closed = content or answer.finish_reason != "length"
            content, thinking = f"<think>{thinking}{'</think>' if closed else ''}{content}", None
        final = {
            "model": m.name,
            "created_at": "2025-01-01T00:00:00.000000000Z",
            "done": True,
            "done_reason": answer.finish_reason,
            "total_duration": 123_000_000,
            "load_duration": 1_000_000,
            "prompt_eval_count": used if answer.prompt_tokens is None else answer.prompt_tokens,
            "prompt_eval_duration": 10_000_000,
            "eval_count": _completion_tokens(answer),
            "eval_duration": 100_000_000,
        }
        message: dict[str, Any] = {"role": "assistant", "content": content}
        if thinking is not None:
            message["thinking"] = thinking
        if request.get("stream", True) is False:
            return _response(200, json.dumps({**final, "message": message}).encode())
        # Streamed: thinking pieces, content pieces, then a closing object carrying the counts.
        lines = []
        for key, text in (("thinking", thinking or ""), ("content", content)):
            for piece in _pieces(text):
                msg = {"role": "assistant", "content": "", key: piece}
                lines.append(
                    {
                        "model": m.name,
                        "created_at": final["created_at"],
                        "message": msg,
                        "done": False,
                    }
                )
        lines.append({**final, "message": {"role": "assistant", "content": ""}})
        return _chunked(
            200, (json.dumps(line).encode() + b"\n" for line in lines), "application/x-ndjson"
        )


def fit(messages: list[dict[str, Any]], window: int) -> tuple[list[dict[str, Any]], int]:
    """The messages a window keeps, and their tokens: Ollama drops the oldest ones after the
    system prompt until the rest fit, and cuts a lone message that is still too long."""
    kept = list(messages)
    while prompt_tokens(kept) > window:
        first = 1 if kept and kept[0].get("role") == "system" else 0
        if len(kept) - first <= 1:
            return kept, window  # the runner keeps the last `window` tokens of what is left
        del kept[first]
    return kept, prompt_tokens(kept)


def _pieces(text: str, size: int = 8) -> list[str]:
    return [text[i : i + size] for i in range(0, len(text), size)]


def _parse_size(size: str) -> int:
    scale = {"K": 10**3, "M": 10**6, "B": 10**9, "T": 10**12}
    return int(float(size[:-1]) * scale[size[-1].upper()])
