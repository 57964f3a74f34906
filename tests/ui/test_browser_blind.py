"""Real blinding in a real Chromium: a warm conversation shows only its probe, names masked."""

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
from blind_seed import LEAKS, PROBE, SELF_NAMES, seed

pytestmark = pytest.mark.browser
ROOT = Path(__file__).resolve().parents[2]
PAGE = ROOT / "dialogues" / "ui" / "annotate_page.py"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def served(archive: Path, tmp_path: Path) -> Iterator[str]:
    """The Annotate page served by a real Streamlit server over one warm conversation."""
    seed(archive, tmp_path)
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
        while True:
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
