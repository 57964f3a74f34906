"""Blind annotation in a real Chromium: the served page never names the model."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.request import urlopen

import pytest
from annotate_seed import OTHER, SECRET, seed

pytestmark = pytest.mark.browser
ROOT = Path(__file__).resolve().parents[2]
PAGE = ROOT / "dialogues" / "ui" / "annotate_page.py"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def served(archive: Path, tmp_path: Path) -> Iterator[str]:
    """The Annotate page served by a real Streamlit server over a seeded archive."""
    seed(archive)
    port = free_port()
    env = dict(os.environ, DIALOGUES_ARCHIVE=str(archive))
    log = (tmp_path / "streamlit.log").open("w")
    proc = subprocess.Popen(
        [sys.executable, "-m", "streamlit", "run", str(PAGE), "--server.port", str(port),
         "--server.address", "127.0.0.1", "--server.headless", "true",
         "--browser.gatherUsageStats", "false"],
        cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:  # the health endpoint answers once the server can serve the page
            try:
                with urlopen(f"{url}/_stcore/health", timeout=2) as r:
                    if r.status == 200:
                        break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError((tmp_path / "streamlit.log").read_text()) from None
                time.sleep(0.2)
        yield url
    finally:
        proc.terminate()
        proc.wait(20)
        log.close()


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
