"""Paths and settings, from options first, then the environment, then defaults."""

from __future__ import annotations

import getpass
import os
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[2]
PROMPTS_DIR = PROJECT_ROOT / "prompts"
DEFAULT_ARCHIVE = PROJECT_ROOT / "archive" / "workbench.duckdb"
DEFAULT_MODELS_TOML = PROJECT_ROOT / "models.toml"
DEFAULT_MODEL = "gguf/smollm2-135m-instruct"

# litellm fetches a price map from the network at import unless told otherwise;
# set it before anything can import litellm.
os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")


def archive_path(option: str | os.PathLike[str] | None = None) -> Path:
    """The archive file: --archive, then $DIALOGUES_ARCHIVE, then archive/workbench.duckdb."""
    chosen = option or os.environ.get("DIALOGUES_ARCHIVE") or DEFAULT_ARCHIVE
    return Path(chosen).expanduser()


def models_toml_path(option: str | os.PathLike[str] | None = None) -> Path:
    """The model catalogue: --models-file, then $DIALOGUES_MODELS, then ./models.toml."""
    chosen = option or os.environ.get("DIALOGUES_MODELS") or DEFAULT_MODELS_TOML
    return Path(chosen).expanduser()


def ollama_host() -> str:
    """Where the Ollama server listens: $OLLAMA_HOST or the client's default."""
    return os.environ.get("OLLAMA_HOST") or "http://127.0.0.1:11434"


def current_user() -> str | None:
    """Who is running this (a run's created_by), or None when the system cannot say."""
    try:
        return getpass.getuser()
    except Exception:  # noqa: BLE001 - no user name is not an error worth stopping for
        return None
