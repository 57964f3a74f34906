"""Real blinding in a real Chromium: a warm conversation shows only its probe, names masked."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from blind_seed import LEAKS, PROBE, SELF_NAMES, seed
from conftest import streamlit_server

pytestmark = pytest.mark.browser
ROOT = Path(__file__).resolve().parents[2]
PAGE = ROOT / "dialogues" / "ui" / "annotate_page.py"


@pytest.fixture
def served(archive: Path, tmp_path: Path) -> Iterator[str]:
    """The Annotate page served by a real Streamlit server over one warm conversation."""
    seed(archive, tmp_path)
    env = dict(os.environ, DIALOGUES_ARCHIVE=str(archive))
    with streamlit_server(PAGE, env, tmp_path / "streamlit.log") as url:
        yield url


def test_blind_page_shows_the_probe_only_and_masks_self_names(served: str, page) -> None:
    from playwright.sync_api import expect

    page.goto(served)
    name = page.get_by_label("Your name")
    name.fill("alice")
    name.press("Enter")
    expect(page.get_by_text("0 of 1 done")).to_be_visible(timeout=30_000)  # no warm-up reply
    expect(page.get_by_role("button", name="Save and next")).to_be_visible()
    page.get_by_text("Conversation so far").first.click()  # open the context, if folded
    expect(page.get_by_text(PROBE).first).to_be_visible()
    html, shown = page.content(), page.locator("body").inner_text()
    for leak in (*LEAKS.values(), *SELF_NAMES):
        assert leak not in html and leak not in shown, leak
    assert "[model]" in shown  # "As ChatGPT, I'm Gemma" arrives masked
    # blind mode off: the same page names them, so the checks above can see a leak
    page.get_by_text("Blind mode").click()
    expect(page.get_by_text("0 of 2 done")).to_be_visible(timeout=30_000)
    expect(page.get_by_text(LEAKS["warmup"]).first).to_be_visible()
    expect(page.get_by_text(LEAKS["system"]).first).to_be_visible()
    expect(page.get_by_text(LEAKS["model"], exact=False).first).to_be_visible()
