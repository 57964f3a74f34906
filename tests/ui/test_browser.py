"""End to end in a real Chromium: start a batch from the Run page, read it on Transcripts."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from archive_seed import seed
from conftest import SMOL, free_port, wait_healthy

from dialogues.run import jobs
from dialogues.store import connect, queries

pytestmark = [pytest.mark.browser, pytest.mark.model]


@pytest.fixture
def app_url(archive: Path, tmp_path: Path) -> Iterator[str]:
    """`dialogues app` on a free loopback port, stopped (with its streamlit child) afterwards."""
    port = free_port()
    env = dict(os.environ, HOME=str(tmp_path))  # no ~/.streamlit credentials prompt or config
    log = open(tmp_path / "app.log", "wb")  # noqa: SIM115 - closed below
    server = subprocess.Popen(
        [sys.executable, "-m", "dialogues", "--archive", str(archive), "app", "--port", str(port)],
        stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        wait_healthy(f"{url}/_stcore/health", server, tmp_path / "app.log")
        yield url
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        try:
            server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
        log.close()


def choose(page, label: str, option: str) -> None:
    """Pick an option of a Streamlit selectbox by its label."""
    page.get_by_role("combobox", name=label).click()
    page.get_by_role("option", name=option).first.click()


def test_batch_from_the_run_page_links_on_to_its_transcripts(
    app_url: str, archive: Path, page
) -> None:
    from playwright.sync_api import expect

    seed(archive)  # other runs' responses, which the link must filter away
    page.goto(app_url)
    page.get_by_role("heading", name="Run a batch").wait_for()
    choose(page, "Prompt set", "smoke — Smoke test")
    expect(page.get_by_text(SMOL).first).to_be_visible()  # the default model is chosen
    page.get_by_label("Max tokens").fill("16")
    page.get_by_label("Seed (empty: random)").fill("1")
    page.get_by_label("Max tokens").press("Enter")
    page.get_by_label("Run name (optional)").fill("smoke check")
    page.get_by_label("Run name (optional)").press("Enter")
    page.get_by_role("button", name="Start").click()
    page.get_by_text("Started smoke check").wait_for()
    # Progress sits at the top under the run's name; it refreshes itself, no reload.
    expect(page.get_by_text("smoke check", exact=False).nth(1)).to_be_visible()
    page.get_by_role("button", name="Open its transcripts").wait_for(timeout=120_000)
    expect(page.get_by_text(f"{SMOL}: 2 of 2 answered, 0 failed")).to_be_visible()
    expect(page.get_by_text("took ")).to_be_visible()

    job = jobs.list_jobs(archive)[0]
    with connect(archive) as db:
        rows, total = queries.transcript_page(db, queries.TranscriptFilter((job.run_id,)))
        everything = queries.transcript_page(db, queries.TranscriptFilter())[1]
    assert total == 2 and everything > total

    page.get_by_role("button", name="Open its transcripts").click()
    page.get_by_text("2 responses match").wait_for()  # only this run's, not the seeded ones
    newest = rows[0]
    with connect(archive) as db:
        conv = queries.conversation(db, newest["conversation_id"])
    prompt = conv["messages"][0]["content"]
    expect(page.get_by_text(prompt).first).to_be_visible()

    # And on to annotation, with the queue narrowed to the run's prompt set.
    page.get_by_role("link", name="Run").click()
    page.get_by_role("button", name="Annotate its responses").click()
    page.get_by_role("heading", name="Annotate").wait_for()
    expect(page.get_by_text("smoke", exact=True).first).to_be_visible()
