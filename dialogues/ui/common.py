"""Widgets every page shares: where the archive is, people-sized errors, text shown as text."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import streamlit as st

from dialogues.domain import config, instruments
from dialogues.domain.errors import UserError

# Characters that would turn text into emphasis, code, links, tables, LaTeX or tags. Dots,
# dashes and parentheses stay as they are so URLs in messages still read (and link) normally.
_MARKDOWN_SPECIAL = re.compile(r"([\\`*_\[\]#|<>~$])")


def archive() -> Path:
    """The archive this app works on (`dialogues app --archive`, or $DIALOGUES_ARCHIVE)."""
    return config.archive_path()


def show_archive() -> Path:
    """Name the archive in the sidebar, so nobody wonders which file a page shows."""
    path = archive()
    st.sidebar.caption(f"Archive: `{path}`")
    return path


def pick_instrument(key: str, help: str, *, keep: bool = False) -> str:
    """A sidebar choice of the shipped rubric instruments (prompts/instruments/), the SEI first
    chosen; `keep` holds the choice across pages for the browser tab."""
    shipped = [p.stem for p in instruments.available()]
    default = shipped.index(instruments.DEFAULT) if instruments.DEFAULT in shipped else 0
    return str(st.sidebar.selectbox("Rubric instrument", shipped, index=default, key=key, help=help,
                                    persist_state="session" if keep else None))  # fmt: skip


@contextmanager
def user_errors() -> Iterator[None]:
    """Show a UserError (locked or unreadable archive, bad prompt file …) as one line, then stop."""
    try:
        yield
    except UserError as exc:
        st.error(escape(str(exc)))
        st.stop()


def escape(text: str) -> str:
    """Text safe inside markdown: characters that format or make tags are backslash-escaped."""
    return _MARKDOWN_SPECIAL.sub(r"\\\1", text)


def plain(text: str) -> None:
    """Show text exactly as written: never markdown, never HTML (a reply may hold <script>)."""
    st.code(text, language=None, wrap_lines=True)


def prose(text: str) -> None:
    """Show a reply as readable prose: markdown and HTML stay inert, line breaks are kept."""
    st.markdown(escape(text).replace("\n", "  \n") if text.strip() else "*(empty)*")


# On a laptop screen split in two (about 900 px) the sidebar and the page's side padding
# would leave tables three columns wide: narrow both there, leave wide screens alone.
NARROW_CSS = """<style>
@media (max-width: 1100px) {
  section[data-testid="stSidebar"] { width: 220px !important; min-width: 220px !important; }
  section[data-testid="stSidebar"] > div { width: 220px !important; }
  [data-testid="stMainBlockContainer"] { padding-left: 1.25rem; padding-right: 1.25rem;
                                        padding-top: 3rem; }
}
</style>"""


def narrow_layout() -> None:
    """Keep the app usable at 900 px wide: a narrower sidebar and less side padding."""
    st.html(NARROW_CSS)
