"""The Models page: sizes shown as people write them ('7.62B'), read back from '1.8T'."""

from __future__ import annotations

from pathlib import Path

import pytest
from archive_seed import ALPHA, BETA, seed
from streamlit.testing.v1 import AppTest

from dialogues.store import connect, records

MODELS = str(Path(__file__).resolve().parents[2] / "dialogues" / "ui" / "models_page.py")


@pytest.fixture
def models_page(archive: Path, monkeypatch: pytest.MonkeyPatch) -> AppTest:
    seed(archive)
    with connect(archive) as db:
        records.update_model(db, BETA, {"parameters": 7_615_616_512})
    monkeypatch.setenv("DIALOGUES_ARCHIVE", str(archive))
    return AppTest.from_file(MODELS, default_timeout=30)


def parameters(archive: Path, model: str) -> int:
    with connect(archive) as db:
        sql = "SELECT parameters FROM models WHERE id = ?"
        return records.fetch_dicts(db, sql, [model])[0]["parameters"]


def test_sizes_read_like_people_write_them(models_page: AppTest, archive: Path) -> None:
    at = models_page.run()
    assert not at.exception
    table = at.dataframe[0].value.set_index("id")
    assert (table.loc[ALPHA, "parameters"], table.loc[BETA, "parameters"]) == ("1B", "7.62B")
    at.selectbox(key="models_pick").set_value(BETA).run()
    assert at.text_input(key=f"mp_{BETA}").value == "7.62B"
    # Saving another field leaves the exact count alone (the rounded '7.62B' is not saved).
    at.text_area(key=f"mn_{BETA}").set_value("card says 7.6B")
    at.button[0].click().run()
    assert "Saved test/beta-7b: notes" in at.success[0].value
    assert parameters(archive, BETA) == 7_615_616_512


def test_a_size_in_trillions_is_accepted(models_page: AppTest, archive: Path) -> None:
    at = models_page.run()
    at.text_input(key=f"mp_{ALPHA}").set_value("1.8T")
    at.button[0].click().run()
    assert not at.exception and not at.error
    assert parameters(archive, ALPHA) == 1_800_000_000_000
    assert at.dataframe[0].value.set_index("id").loc[ALPHA, "parameters"] == "1.8T"
