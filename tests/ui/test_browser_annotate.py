"""Blind annotation in a real Chromium: the served page never names the model."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from annotate_seed import OTHER, SECRET, seed
from conftest import streamlit_server

pytestmark = pytest.mark.browser
ROOT = Path(__file__).resolve().parents[2]
PAGE = ROOT / "dialogues" / "ui" / "annotate_page.py"


@pytest.fixture
def served(archive: Path, tmp_path: Path) -> Iterator[str]:
    """The Annotate page served by a real Streamlit server over a seeded archive."""
    seed(archive)
    env = dict(os.environ, DIALOGUES_ARCHIVE=str(archive))
    with streamlit_server(PAGE, env, tmp_path / "streamlit.log") as url:
        yield url


def test_blind_annotation_page_never_shows_the_model(served: str, page) -> None:
    from playwright.sync_api import expect

    page.goto(served)
    name = page.get_by_label("Your name")
    name.fill("alice")
    name.press("Enter")
    expect(page.get_by_text("0 of 16 done")).to_be_visible(timeout=30_000)
    expect(page.get_by_role("button", name="Save and next")).to_be_visible()
    html = page.content()
    shown = page.locator("body").inner_text()
    for secret in (SECRET, OTHER):
        assert secret not in html and secret not in shown
    # turning blind mode off names the model: the check above would see a leak
    page.get_by_text("Blind mode").click()
    expect(page.get_by_text(SECRET, exact=False).first).to_be_visible(timeout=30_000)
