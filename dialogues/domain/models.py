"""What the workbench knows about a model, and how sizes like "7B" are read."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

_SIZE = re.compile(r"^\s*([\d.]+)\s*([KMBT])\s*$", re.IGNORECASE)
_SCALE = {"K": 10**3, "M": 10**6, "B": 10**9, "T": 10**12}


def parse_parameter_size(size: str | None) -> int | None:
    """'7.6B' → 7_600_000_000, '270M' → 270_000_000; None for anything else ('8x7B', '')."""
    match = _SIZE.match(size or "")
    if not match:
        return None
    return round(float(match.group(1)) * _SCALE[match.group(2).upper()])


def parse_parameters(text: Any) -> int | None:
    """A parameter count from '7B', '135M', '1.5b', '7,000,000,000' or a number; None if blank."""
    if text is None or (isinstance(text, str) and not text.strip()):
        return None
    if isinstance(text, int | float) and not isinstance(text, bool):
        value = int(text)
    else:
        cleaned = str(text).strip().replace(",", "").replace("_", "")
        parsed = parse_parameter_size(cleaned)
        if parsed is None and not cleaned.isdigit():
            raise ValueError(f"parameters must be a count or a size like 7B or 135M, not {text!r}")
        value = parsed if parsed is not None else int(cleaned)
    if value <= 0:
        raise ValueError(f"parameters must be positive, not {text!r}")
    return value


def format_parameters(count: Any) -> str:
    """270_000_000 → '270M', 7_615_616_512 → '7.62B', 1.8e12 → '1.8T'; '' for none."""
    if count is None or count != count:  # None or NaN
        return ""
    value = float(count)
    for unit in "TBMK":
        if value >= _SCALE[unit]:
            return f"{value / _SCALE[unit]:.3g}{unit}"
    return f"{value:.0f}"


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
