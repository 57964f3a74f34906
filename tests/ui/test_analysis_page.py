"""The Analysis page, run by Streamlit's AppTest on a real archive: the numbers `analyse` prints."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from archive_seed import seed
from click.testing import CliRunner
from streamlit.testing.v1 import AppTest

from dialogues.cli import cli

PAGE = str(Path(__file__).resolve().parents[2] / "dialogues" / "ui" / "analysis_page.py")
APP = Path(__file__).resolve().parents[2] / "app.py"


@pytest.fixture(scope="module")
def seeded(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return seed(tmp_path_factory.mktemp("seeded") / "archive.duckdb")


def test_the_page_shows_what_analyse_prints_and_plans_power(seeded, monkeypatch):
    monkeypatch.setenv("DIALOGUES_ARCHIVE", str(seeded))
    at = AppTest.from_file(PAGE, default_timeout=120).run()
    assert not at.exception, [e.value for e in at.exception]
    printed = CliRunner().invoke(cli, ["--archive", str(seeded), "analyse", "--json"])
    expected = json.loads(printed.output)
    contrasts = at.dataframe[0].value  # the first table on the page
    assert len(contrasts) == len(expected["contrasts"]) > 0
    assert list(contrasts["p_adjusted"].fillna(-1)) == [
        -1 if c["p_adjusted"] is None else c["p_adjusted"] for c in expected["contrasts"]
    ]
    assert len(at.get("plotly_chart")) == 2
    # two models, each of one family and size: the page says why it cannot answer
    assert any("Not answered" in i.value for i in at.info)
    at.button(key="an_simulate").click().run()
    plan = at.dataframe[-1].value
    assert list(plan.columns) == ["prompts", "repeats", "power"] and len(plan) >= 1


def test_the_app_lists_the_analysis_page():
    assert 'analysis_page.py", title="Analysis"' in APP.read_text(encoding="utf-8")
