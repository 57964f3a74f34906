"""End to end in a real Chromium: a one-round dialogue between the two embedded models."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import GEMMA, SMOL
from test_browser import app_url  # noqa: F401 - the fixture that starts `dialogues app`

from dialogues.store import connect, records

pytestmark = [pytest.mark.browser, pytest.mark.model]

OPENING = "What do you notice when you think?"


def test_one_round_dialogue_from_the_dialogue_page(app_url: str, archive: Path, page) -> None:  # noqa: F811
    from playwright.sync_api import expect

    page.goto(app_url)
    page.get_by_role("link", name="Dialogue").click()
    page.get_by_role("heading", name="Dialogue").wait_for()
    # Listing models hashes the model files once per process: wait for the form.
    page.get_by_role("button", name="Start").wait_for(timeout=90_000)
    # A and B default to the two embedded models.
    expect(page.get_by_role("combobox", name="Model A (gets the opening)")).to_have_value(SMOL)
    expect(page.get_by_role("combobox", name="Model B")).to_have_value(GEMMA)
    page.get_by_label("Rounds (A speaks, then B)").fill("1")
    page.get_by_label("Rounds (A speaks, then B)").press("Enter")
    page.get_by_label("Opening (sent to A)").fill(OPENING)
    page.get_by_text("Parameters and system prompts").click()
    page.get_by_label("Seed").fill("7")
    page.get_by_label("Seed").press("Enter")
    page.get_by_label("Max tokens").fill("12")
    page.get_by_label("Max tokens").press("Enter")
    page.get_by_role("button", name="Start").click()
    # The round runs on the page, which says who is replying while it waits.
    page.get_by_text(f"A · {SMOL} is replying").wait_for(timeout=60_000)
    # A one-round dialogue still ends at a checkpoint; Finish closes it.
    page.get_by_role("button", name="Finish").click(timeout=120_000)
    page.get_by_text("completed 1 round").wait_for(timeout=30_000)

    with connect(archive) as db:
        conv = records.fetch_dicts(db, "SELECT * FROM conversations")
        rows = records.messages(db, conv[0]["id"])
    assert len(conv) == 1 and conv[0]["status"] == "finished"
    assert [r["speaker"] for r in rows] == ["researcher", SMOL, GEMMA]
    for reply in (rows[1]["content"], rows[2]["content"]):
        shown = page.locator("code").filter(has_text=reply.strip()[:30])
        expect(shown.first).to_be_visible()
    expect(page.get_by_role("button", name="Re-run this conversation").first).to_be_visible()
