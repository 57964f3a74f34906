"""In a real Chromium: the Export page's download always matches the chosen format."""

from __future__ import annotations

from pathlib import Path

import pytest
from archive_seed import seed
from test_browser import app_url  # noqa: F401 - the fixture that starts `dialogues app`

pytestmark = [pytest.mark.browser]


def test_the_download_matches_the_format(app_url: str, archive: Path, page) -> None:  # noqa: F811
    from playwright.sync_api import expect

    seed(archive)
    page.goto(f"{app_url}/export_page")
    page.get_by_role("heading", name="Export").wait_for()
    page.get_by_text("Download", exact=True).click()  # the destination radio
    page.get_by_role("button", name="Prepare markdown download").click()
    zip_button = page.get_by_role("button", name="Download dialogues-markdown.zip")
    zip_button.wait_for()

    page.get_by_text("CSV: the flat responses table").click()
    page.get_by_role("button", name="Prepare csv download").wait_for()
    expect(zip_button).to_have_count(0)  # the zip is not offered under CSV
    page.get_by_role("button", name="Prepare csv download").click()
    csv_button = page.get_by_role("button", name="Download").filter(has_text=".csv")
    with page.expect_download() as got:
        csv_button.click()
    download = got.value
    assert download.suggested_filename.endswith(".csv")
    header = Path(download.path()).read_text(encoding="utf-8").splitlines()[0]
    assert "conversation_id" in header and "model" in header
