"""Resolve a model reference to its metadata and a provider.

A reference is a models.toml name, or a back-end string: `gguf/<builtin>`, `gguf:/path.gguf`,
`ollama/NAME`, or any litellm string (`openai/…`, `anthropic/…`, `gemini/…`, `openrouter/…`).
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from dialogues.domain.errors import ProviderUnavailable, UserError
from dialogues.providers import params
from dialogues.providers.base import ModelInfo, Provider

METADATA_KEYS = {f.name for f in fields(ModelInfo)} - {"id", "backend", "provider", "metadata"}


@dataclass
class Declared:
    """A model declared in models.toml: its back end plus metadata the researcher knows."""

    name: str
    backend: str
    api_base: str | None = None
    metadata: dict[str, Any] = field(default_factory=dict)
    params: dict[str, Any] = field(default_factory=dict)  # [models.NAME.params], checked


def load_catalogue(path: Path) -> dict[str, Declared]:
    """Read models.toml (absent file → empty); errors name the file and the entry."""
    if not path.exists():
        return {}
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise UserError(f"{path}: not valid TOML ({exc})") from exc
    out: dict[str, Declared] = {}
    for name, entry in (data.get("models") or {}).items():
        if not isinstance(entry, dict) or not isinstance(entry.get("backend"), str):
            raise UserError(f"{path}: [models.{name}] needs a 'backend' string")
        unknown = set(entry) - METADATA_KEYS - {"backend", "api_base", "api_key_env", "params"}
        if unknown:
            raise UserError(f"{path}: [models.{name}] unknown key(s) {', '.join(sorted(unknown))}")
        meta = {k: v for k, v in entry.items() if k in METADATA_KEYS}
        kind = provider_kind(entry["backend"])
        settings = params.check(path, name, kind, entry.get("params", {}))
        out[name] = Declared(name, entry["backend"], entry.get("api_base"), meta, settings)
    return out


def model_params(refs: list[str], path: Path | None) -> dict[str, dict[str, Any]]:
    """Each declared model's [models.NAME.params] (models given as back-end strings have none)."""
    catalogue = load_catalogue(path) if path else {}
    return {
        ref: dict(catalogue[ref].params)
        for ref in refs
        if ref in catalogue and catalogue[ref].params
    }


def provider_kind(backend: str) -> str:
    """'gguf' | 'ollama' | 'hosted' for a back-end string."""
    if backend.startswith(("gguf/", "gguf:")):
        return "gguf"
    if backend.startswith("ollama/"):
        return "ollama"
    if "/" in backend:
        return "hosted"
    raise UserError(
        f"unknown model {backend!r}: use a models.toml name, gguf/…, gguf:/path.gguf, "
        "ollama/NAME or a litellm string such as openai/gpt-4o-mini"
    )


def resolve(
    ref: str, catalogue: dict[str, Declared] | None = None, api_base: str | None = None
) -> Provider:
    """A provider for a model reference, with its metadata filled in where the back end tells."""
    declared = (catalogue or {}).get(ref)
    backend = declared.backend if declared else ref
    base = (declared.api_base if declared else None) or api_base
    kind = provider_kind(backend)
    provider = _make(kind, ref, backend, base)
    if declared:
        for key, value in declared.metadata.items():
            setattr(provider.info, key, value)
    if kind == "ollama":
        from dialogues.providers import ollama

        # The run records its models before the first call: ask the server now, so the
        # archive has the family, size, quantization and digest the comparisons need.
        if ollama.ollama_available(provider.info.api_base):
            provider.describe_now()  # type: ignore[attr-defined]
    return provider


def _make(kind: str, ref: str, backend: str, api_base: str | None) -> Provider:
    if kind == "gguf":
        from dialogues.providers import gguf

        if backend.startswith("gguf/") and backend not in gguf.BUILTINS:
            known = ", ".join(gguf.BUILTINS)
            raise UserError(f"no built-in model {backend!r} (built in: {known}; or gguf:/path)")
        path = None if backend in gguf.BUILTINS else Path(backend.removeprefix("gguf:"))
        info = gguf.describe(backend, path)
        info.id = ref
        return gguf.GGUFProvider(info)
    if kind == "ollama":
        from dialogues.providers.ollama import OllamaProvider

        provider = OllamaProvider(backend.removeprefix("ollama/"))
        provider.info.id = ref
        return provider
    from dialogues.providers.hosted import HostedProvider, default_base

    api_base = api_base or default_base(backend)
    info = ModelInfo(id=ref, backend=backend, provider="hosted", api_base=api_base)
    return HostedProvider(backend, info=info, api_base=api_base)


def available(
    catalogue: dict[str, Declared], ollama_host: str | None = None
) -> tuple[list[ModelInfo], list[str]]:
    """Every model we can offer now, and plain notes about back ends that did not answer."""
    from dialogues.providers import gguf

    models: list[ModelInfo] = []
    notes: list[str] = []
    for model_id in gguf.BUILTINS:
        try:
            models.append(gguf.describe(model_id))
        except (ProviderUnavailable, OSError, ImportError) as exc:
            notes.append(f"{model_id}: {exc}")
    for name, decl in catalogue.items():
        info = ModelInfo(id=name, backend=decl.backend, provider=provider_kind(decl.backend),
                         api_base=decl.api_base)  # fmt: skip
        for key, value in decl.metadata.items():
            setattr(info, key, value)
        models.append(info)
    try:
        from dialogues.providers import ollama

        models += ollama.list_models(ollama_host)
    except ProviderUnavailable as exc:
        notes.append(str(exc))
    return models, notes
