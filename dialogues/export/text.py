"""Any text made safe in markdown: short strings escaped inline, long ones in unbreakable fences."""

from __future__ import annotations

import functools
import re
from typing import Any

# Inline text never starts a line (a heading mark, '| ' or '- [' comes first), so only the
# characters that act mid-line need escaping: emphasis, code, links, HTML, entities, tables.
_INLINE_SPECIAL = re.compile(r"([\\`*_\[\]<>|&~$#])")


@functools.lru_cache(maxsize=65536)
def _inline(text: str) -> str:
    return _INLINE_SPECIAL.sub(r"\\\1", " ".join(text.split()))


def inline(text: Any) -> str:
    """A short string safe in a heading or table cell: one line, markdown and HTML escaped."""
    return _inline(str("" if text is None else text))


_BACKTICKS = re.compile(r"`+")


def fenced(text: str, info: str = "text") -> str:
    """Text in a code fence longer than any backtick run inside it: nothing can close it."""
    # most replies hold no backtick: a substring test spares them the search
    longest = max((len(m) for m in _BACKTICKS.findall(text)), default=0) if "`" in text else 0
    fence = "`" * max(3, longest + 1)
    body = text.replace("\r\n", "\n").replace("\r", "\n")
    return f"{fence}{info}\n{body}\n{fence}\n"
