"""In a real Chromium: an app with access configured asks first, refuses a wrong secret, idles."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import free_port, wait_healthy

from dialogues.domain import access

pytestmark = [pytest.mark.browser]

SHARED_SECRET, ANA = "lab-secret-42", "anas-password"
IDLE_SECONDS, IDLE_BOUND = 5.0, 2.0  # generous: a watched project burned ~1 s of CPU per second


def cpu_seconds(pid: int) -> float:
    """User + system CPU time a process has used so far (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@pytest.fixture
def guarded(archive: Path, tmp_path: Path) -> Iterator[tuple[str, int]]:
    """`dialogues app` with a shared secret and one person's password; (url, server pid)."""
    path = tmp_path / "access.toml"
    access.add(path, None, SHARED_SECRET)
    access.add(path, "ana", ANA)
    port = free_port()
    log = open(tmp_path / "app.log", "wb")  # noqa: SIM115 - closed below
    server = subprocess.Popen(
        [sys.executable, "-m", "dialogues", "--archive", str(archive), "app", "--port", str(port),
         "--access", str(path)],
        stdout=log, stderr=subprocess.STDOUT, env=dict(os.environ, HOME=str(tmp_path)),
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        wait_healthy(f"{url}/_stcore/health", server, tmp_path / "app.log")
        yield url, server.pid
    finally:
        server.send_signal(signal.SIGTERM)  # the app is Streamlit itself: one signal stops it
        try:
            server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            server.kill()
        log.close()


def sign_in(page, name: str, secret: str) -> None:
    page.get_by_role("textbox", name="Name").fill(name)
    page.get_by_role("textbox", name="Secret").fill(secret)
    page.get_by_role("button", name="Sign in").click()


def test_the_app_asks_for_access_and_refuses_a_wrong_secret(guarded, page) -> None:
    from playwright.sync_api import expect

    url, pid = guarded
    page.goto(f"{url}/export_page")
    page.get_by_role("button", name="Sign in").wait_for()
    expect(page.get_by_role("link", name="Transcripts")).to_have_count(0)  # nothing else shows
    expect(page.get_by_text("Archive:")).to_have_count(0)
    sign_in(page, "ana", SHARED_SECRET)  # the lab's secret is not Ana's password
    page.get_by_text("Wrong name or secret.").wait_for()
    expect(page.get_by_role("heading", name="Export")).to_have_count(0)
    sign_in(page, "", SHARED_SECRET)
    page.get_by_role("heading", name="Export").wait_for()  # the page asked for, once in
    expect(page.get_by_role("link", name="Transcripts")).to_be_visible()
    expect(page.get_by_text("Wrong name or secret.")).to_have_count(0)

    # A new browser session asks again; a person's own password lets them in.
    page.goto(url)
    page.get_by_role("button", name="Sign in").wait_for()
    sign_in(page, "ana", ANA)
    page.get_by_role("heading", name="Run a batch").wait_for()
    page.get_by_role("button", name="Start").wait_for(timeout=90_000)

    # With the page open and nothing happening, the server is (nearly) idle.
    time.sleep(1.0)
    before = cpu_seconds(pid)
    time.sleep(IDLE_SECONDS)
    used = cpu_seconds(pid) - before
    assert used < IDLE_BOUND, f"idle app used {used:.2f} s of CPU in {IDLE_SECONDS:.0f} s"
    # Streamlit's Deploy button and developer menu are not offered.
    expect(page.get_by_role("button", name="Deploy")).to_have_count(0)
