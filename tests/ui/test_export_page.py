"""The Export page through AppTest: write to a folder, prepare downloads, an empty archive."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest
from test_export import seed

PAGE = Path(__file__).resolve().parents[2] / "dialogues" / "ui" / "export_page.py"


@pytest.fixture
def page(archive: Path, monkeypatch: pytest.MonkeyPatch) -> AppTest:
    seed(archive)
    monkeypatch.setenv("DIALOGUES_ARCHIVE", str(archive))
    return AppTest.from_file(str(PAGE), default_timeout=30)


def test_markdown_to_a_folder_lists_the_files(page: AppTest, tmp_path: Path) -> None:
    at = page.run()
    assert not at.exception
    at.text_input(key="export_target_markdown").input(str(tmp_path / "md")).run()
    at.button(key="export_write").click().run()
    assert not at.exception
    assert "2 conversations" in at.success[0].value
    files = list(at.dataframe[0].value["file"])
    assert files[0] == "README.md" and len(files) == 3
    assert all((tmp_path / "md" / f).exists() for f in files)


def test_jsonl_to_a_chosen_run(page: AppTest, tmp_path: Path) -> None:
    at = page.run()
    at.radio(key="export_kind").set_value("jsonl").run()
    at.multiselect(key="export_runs").set_value(["run-1"]).run()
    at.text_input(key="export_target_jsonl").input(str(tmp_path / "x.jsonl")).run()
    at.button(key="export_write").click().run()
    assert not at.exception
    assert len((tmp_path / "x.jsonl").read_text().splitlines()) == 2


def test_markdown_download_is_a_zip_of_the_folder(page: AppTest) -> None:
    at = page.run()
    at.radio(key="export_mode").set_value("Download").run()
    at.button(key="export_prepare").click().run()
    assert not at.exception
    ready = at.session_state["export_download"]
    names = zipfile.ZipFile(io.BytesIO(ready.data)).namelist()
    assert ready.filename == "dialogues-markdown.zip"
    assert "dialogues-markdown/README.md" in names and len(names) == 3


def test_a_folder_that_cannot_be_written_is_one_line(page: AppTest, tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    at = page.run()
    at.text_input(key="export_target_markdown").input(str(blocker / "md")).run()
    at.button(key="export_write").click().run()
    assert not at.exception and "cannot write" in at.error[0].value


def test_empty_archive_says_so(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DIALOGUES_ARCHIVE", str(tmp_path / "empty.duckdb"))
    at = AppTest.from_file(str(PAGE), default_timeout=30).run()
    assert not at.exception and "no runs yet" in at.info[0].value


def test_a_prepared_download_is_never_offered_for_another_format(page: AppTest) -> None:
    at = page.run()
    at.radio(key="export_mode").set_value("Download").run()
    at.button(key="export_prepare").click().run()
    assert at.session_state["export_download"].filename == "dialogues-markdown.zip"
    at.radio(key="export_kind").set_value("csv").run()
    assert not at.exception
    assert "export_download" not in at.session_state  # the zip is gone, not offered as CSV
    assert not at.get("download_button")
    at.button(key="export_prepare").click().run()
    assert at.session_state["export_download"].filename.endswith(".csv")
