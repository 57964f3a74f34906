"""Masking self-identifications, so a blind annotator cannot tell which model wrote a text.

The list below names the model families and makers a reply is likely to name itself by
("As ChatGPT…", "I'm Gemma", "trained by Anthropic"). The archive adds its own models' families
and names (`mask(text, extra)`), so a model not on this list is masked too once it is run.
Each match, with a version glued to it ("Qwen2.5", "GPT-4o", "Llama 3.1"), becomes MASK.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from functools import lru_cache

MASK = "[model]"

SELF_NAMES = (
    "ChatGPT", "GPT", "OpenAI", "o1", "o3", "Claude", "Anthropic", "Gemini", "Gemma", "Bard",
    "Google", "DeepMind", "Llama", "Meta AI", "Qwen", "Tongyi", "Alibaba", "Mistral", "Mixtral",
    "DeepSeek", "Phi", "Microsoft", "Copilot", "SmolLM", "Hugging Face", "HuggingFace", "Grok",
    "xAI", "Cohere", "Command R", "Falcon", "OLMo", "Granite", "Nemotron", "Kimi", "GLM",
)  # fmt: skip

# A version glued on: "-4o", "2.5", " 3.1", "-3.5-turbo", ":7b" (a bare space only before a digit).
_VERSION = r"(?:(?:[-:]?[0-9][\w.]*|[-:][a-z][\w.]*)(?:-[\w.]+)*|\s[0-9][\w.]*)?"


def names_from_models(rows: Iterable[tuple[str | None, str | None]]) -> tuple[str, ...]:
    """Names worth masking from (model id, family) pairs: families and the ids' last parts."""
    out: set[str] = set()
    for model_id, family in rows:
        if family and len(family) >= 3:
            out.add(family)
        if model_id and len(model_id) >= 3:  # a one- or two-letter id is an ordinary word
            out.add(model_id)
        if model_id:
            tail = model_id.rsplit("/", 1)[-1].split(":", 1)[0]
            if len(tail) >= 3:
                out.add(tail)
    return tuple(sorted(out))


@lru_cache(maxsize=64)
def _pattern(extra: tuple[str, ...]) -> re.Pattern[str]:
    names = sorted({*SELF_NAMES, *extra}, key=len, reverse=True)  # longest first
    alternatives = "|".join(re.escape(n).replace(r"\ ", r"[\s-]?") for n in names)
    return re.compile(rf"(?<![\w/])(?:{alternatives}){_VERSION}(?![\w/])", re.IGNORECASE)


def mask(text: str, extra: tuple[str, ...] = ()) -> str:
    """The text with every self-identification replaced by MASK."""
    if not text:
        return text
    return _pattern(tuple(sorted(extra))).sub(MASK, text)
