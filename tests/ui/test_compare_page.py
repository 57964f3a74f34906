"""The Compare and Models pages, run by Streamlit's AppTest against real archive files."""

from __future__ import annotations

import base64
import json
import shutil
from pathlib import Path

import labelled_seed
import numpy as np
import pytest
from archive_seed import ALPHA, BETA, TAGGER, seed
from click.testing import CliRunner
from streamlit.testing.v1 import AppTest

from dialogues.analyse import frames
from dialogues.annotate import importers
from dialogues.cli import cli
from dialogues.providers.base import ModelInfo
from dialogues.store import connect, records

PAGES = Path(__file__).resolve().parents[2] / "dialogues" / "ui"
COMPARE, MODELS = str(PAGES / "compare_page.py"), str(PAGES / "models_page.py")
CHART_TITLES = ["SEI cold vs warm", "Architecture vs scale", "Outcomes", "Rubric heatmap",
                "XSTest over-refusal", "Alignment tax"]  # fmt: skip


@pytest.fixture(scope="module")
def seeded(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return seed(tmp_path_factory.mktemp("seeded") / "archive.duckdb")


@pytest.fixture
def archive_env(seeded: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A copy of the seeded archive, named to the app by $DIALOGUES_ARCHIVE."""
    path = tmp_path / "page.duckdb"
    shutil.copy(seeded, path)
    monkeypatch.setenv("DIALOGUES_ARCHIVE", str(path))
    return path


def run(page: str) -> AppTest:
    at = AppTest.from_file(page, default_timeout=60).run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def values(array: object) -> list:
    """A trace array from a page's figure spec; plotly sends numbers as typed base64 blocks."""
    if isinstance(array, dict) and "bdata" in array:
        return np.frombuffer(base64.b64decode(array["bdata"]), dtype=array["dtype"]).tolist()
    return list(array or [])  # type: ignore[call-overload]


def figures(at: AppTest) -> list[list[dict]]:
    """Each plotly chart on the page as the list of its traces, as the browser receives them."""
    return [json.loads(chart.proto.spec)["data"] for chart in at.get("plotly_chart")]


def scores_json(path: Path, *args: str) -> list[dict]:
    result = CliRunner().invoke(cli, ["--archive", str(path), "scores", "--json", *args])
    assert result.exit_code == 0, result.output
    return json.loads(result.output)


def test_compare_page_renders_every_chart(archive_env: Path) -> None:
    at = run(COMPARE)
    assert len(at.get("plotly_chart")) == len(CHART_TITLES)
    titles = [s.value for s in at.subheader]
    assert titles[-len(CHART_TITLES) :] == CHART_TITLES and "SEI C/W" in titles
    assert "Where annotators overlap" in titles
    assert not at.error
    buttons = {b.key for b in at.get("download_button")}
    for key in ("sei", "scale", "outcomes", "rubric", "xstest", "tax"):
        assert {f"cmp_csv_{key}", f"cmp_html_{key}"} <= buttons
    assert "cmp_csv_scores" in buttons
    # Every figure has something plotted, not the "no data" placeholder.
    assert all(len(traces) > 0 for traces in figures(at))


def test_page_figures_show_the_numbers_scores_json_prints(archive_env: Path) -> None:
    rows = scores_json(archive_env)
    sei_fig, scale_fig, outcome_fig = figures(run(COMPARE))[:3]
    plotted_sei = sorted(x for t in sei_fig if t["mode"] == "markers" for x in values(t["x"]))
    assert plotted_sei == sorted(r["sei"] for r in rows if r["sei"] is not None)
    points = sorted(
        (x, y) for t in scale_fig for x, y in zip(values(t["x"]), values(t["y"]), strict=True)
    )
    assert points == sorted((r["parameters"], r["engagement_rate"]) for r in rows)
    (no_answer,) = [t for t in outcome_fig if t["name"] == "no answer"]
    assert values(no_answer["x"]) == [r["no_answer_rate"] for r in rows if r["n"]]


def test_filters_narrow_the_page(archive_env: Path) -> None:
    at = run(COMPARE)
    at.sidebar.multiselect(key="cmp_sources").set_value([f"tagger:{TAGGER}"]).run()
    assert not at.exception
    rows = scores_json(archive_env, "--source", f"tagger:{TAGGER}")
    scale = figures(at)[1]
    plotted = sorted(y for t in scale for y in values(t["y"]))
    assert plotted == sorted(r["engagement_rate"] for r in rows)
    assert "SEI C/W" not in [s.value for s in at.subheader]  # a tagger gave no rubric
    at.sidebar.multiselect(key="cmp_conditions").set_value(["warm"]).run()
    at.sidebar.radio(key="cmp_metric").set_value("sei").run()
    assert not at.exception and len(at.get("plotly_chart")) == len(CHART_TITLES)


def test_compare_page_on_an_empty_archive(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DIALOGUES_ARCHIVE", str(tmp_path / "empty.duckdb"))
    at = run(COMPARE)
    assert "Nothing to compare yet" in at.info[0].value


def test_models_page_edit_round_trip(archive_env: Path) -> None:
    at = run(MODELS)
    assert at.dataframe[0].value["id"].tolist() == [ALPHA, BETA]
    at.selectbox(key="models_pick").set_value(BETA).run()
    at.text_input(key=f"mf_{BETA}").set_value("beta-arch")
    at.text_input(key=f"mp_{BETA}").set_value("13B")
    at.selectbox(key=f"mt_{BETA}").set_value("abliterated")
    at.text_area(key=f"mn_{BETA}").set_value("from the model card")
    at.button[0].click().run()
    assert not at.exception and not at.error
    assert "Saved test/beta-7b" in at.success[0].value
    # A later automatic refresh from the provider keeps every edit.
    with connect(archive_env) as db:
        records.save_model(db, ModelInfo(BETA, "openai/beta", "hosted", family="beta",
                                         parameters=7_000_000_000, training="base",
                                         quantization="q8"))  # fmt: skip
        model = records.fetch_dicts(db, "SELECT * FROM models WHERE id = ?", [BETA])[0]
    assert (model["family"], model["parameters"], model["training"], model["notes"]) == (
        "beta-arch", 13_000_000_000, "abliterated", "from the model card")  # fmt: skip
    assert model["quantization"] == "q8"
    table = run(MODELS).dataframe[0].value.set_index("id")
    assert table.loc[BETA, "training"] == "abliterated"


def test_models_page_rejects_a_bad_parameter_count(archive_env: Path) -> None:
    at = run(MODELS)
    at.text_input(key=f"mp_{ALPHA}").set_value("a lot")
    at.button[0].click().run()
    assert "parameters must be" in at.error[0].value
    with connect(archive_env) as db:
        assert records.fetch_dicts(db, "SELECT parameters FROM models WHERE id = ?", [ALPHA]) == [
            {"parameters": 1_000_000_000}]  # fmt: skip


def test_png_downloads_when_asked(archive_env: Path) -> None:
    at = run(COMPARE)
    assert not any(b.key.startswith("cmp_png_") for b in at.get("download_button"))
    at.sidebar.checkbox(key="cmp_png").check().run()
    assert not at.exception
    png = {b.key for b in at.get("download_button") if b.key.startswith("cmp_png_")}
    # With kaleido and a local Chromium a PNG button per chart, else a note saying why not.
    assert len(png) == len(CHART_TITLES) or any("PNG needs" in c.value for c in at.caption)


def test_compare_says_when_responses_are_unlabelled_and_tags_them(archive_env: Path) -> None:
    at = run(COMPARE)
    (warning,) = [w.value for w in at.warning if "unlabelled by the automatic tagger" in w.value]
    waiting = int(warning.split()[0])
    assert waiting > 0 and "dialogues tag --auto" in warning
    at.button(key="cmp_tag").click().run()
    assert not at.exception, at.exception
    assert any(f"Tagged {waiting} responses" in s.value for s in at.success)
    assert not any("unlabelled by the automatic tagger" in w.value for w in at.warning)
    with connect(archive_env) as db:
        tagged = db.execute("SELECT count(*) FROM tags WHERE tagger_id <> ?", [TAGGER]).fetchone()
    assert tagged == (waiting,)


def labelled_archive(archive: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                     *files: tuple[int, int, int]) -> list[str]:  # fmt: skip
    """Synthetic XSTest files (rows, seed, partial refusals), people's labels with them, named
    to the app; returns their run ids."""
    monkeypatch.setenv("DIALOGUES_ARCHIVE", str(archive))
    return [importers.import_xstest(archive, labelled_seed.write(tmp_path / f"{i}.csv", n, seed,
                                                                 partial), f"m{i}").run_id
            for i, (n, seed, partial) in enumerate(files)]  # fmt: skip


def learned_tags(archive: Path) -> list[tuple[str, str, str]]:
    """(message, tagger, how predicted) of every learned tag."""
    with connect(archive) as db:
        return db.execute(
            "SELECT message_id, tagger_id, features_json->>'prediction' FROM tags "
            "WHERE tagger_id LIKE 'learned@%' ORDER BY 1"
        ).fetchall()


def trained_runs(archive: Path) -> list[list[str]]:
    with connect(archive) as db:
        rows = db.execute("SELECT config_json FROM taggers WHERE kind = 'learned'").fetchall()
    return [json.loads(config)["runs"] for (config,) in rows]


def test_the_learned_tagger_from_the_page(
    archive: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    labelled_archive(archive, tmp_path, monkeypatch, (40, 0, 0))
    at = run(COMPARE)
    at.radio(key="cmp_tagger").set_value("learned").run()
    assert at.multiselect(key="cmp_train_on").value == []  # every run, unless narrowed
    at.button(key="cmp_tag").click().run()
    assert not at.exception and not at.error, [e.value for e in at.error]
    (done,) = [s.value for s in at.success]
    assert "trained on 40 labels; cross-validated by prompt F1" in done
    assert "Tagged 40 responses with learned@" in done
    tags = learned_tags(archive)
    # its own training replies get out-of-fold labels, as from the CLI
    assert len(tags) == 40 and {how for _, _, how in tags} == {"out-of-fold"}
    (tid,) = {t for _, t, _ in tags}
    assert trained_runs(archive) == [[]]
    with connect(archive) as db:
        assert f"tagger:{tid}" in frames.sources(db)


def test_the_learned_tagger_trains_on_the_runs_chosen(
    archive: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    first, _ = labelled_archive(archive, tmp_path, monkeypatch, (40, 0, 0), (30, 1, 0))
    at = run(COMPARE)
    at.radio(key="cmp_tagger").set_value("learned").run()
    at.multiselect(key="cmp_train_on").set_value([first]).run()
    at.button(key="cmp_tag").click().run()
    assert not at.exception and not at.error, [e.value for e in at.error]
    assert any("trained on 40 labels" in s.value for s in at.success)
    assert trained_runs(archive) == [[first]]
    hows = [how for _, _, how in learned_tags(archive)]
    assert (hows.count("out-of-fold"), hows.count("full-model")) == (40, 30)


def test_too_few_labels_for_the_learned_tagger_say_how_many_more(
    archive: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    labelled_archive(archive, tmp_path, monkeypatch, (40, 0, 2))
    at = run(COMPARE)
    at.radio(key="cmp_tagger").set_value("learned").run()
    at.button(key="cmp_tag").click().run()
    assert not at.exception
    (error,) = [e.value for e in at.error]
    assert "too few labels to train the learned tagger (partial: 6 more" in error
    assert not at.success and learned_tags(archive) == [] and trained_runs(archive) == []
    with connect(archive) as db:
        assert db.execute("SELECT count(*) FROM tags").fetchone() == (0,)


def test_another_instrument_shows_its_totals_and_heatmap(archive_env: Path) -> None:
    from archive_seed import BETA, PROBE_SCORE, score_probe_score

    score_probe_score(archive_env)
    at = run(COMPARE)
    at.sidebar.selectbox(key="cmp_instrument").set_value(PROBE_SCORE).run()
    assert not at.exception and not at.error
    titles = [s.value for s in at.subheader]
    assert "Probe score — 4 dimensions, 0–2 each, out of 8: totals" in titles
    assert "SEI C/W" not in titles and "SEI cold vs warm" not in titles
    assert f"{PROBE_SCORE} totals by condition" in titles and f"{PROBE_SCORE} heatmap" in titles
    (table,) = [d.value for d in at.dataframe if "mean total" in d.value.columns]
    # the numbers worked out in archive_seed.score_probe_score
    assert table[["model", "condition", "source", "mean total"]].values.tolist() == [
        [BETA, "cold", "human:carol", "4.00 [0.00, 8.00]"],
        [BETA, "cold", "human:dan", "0.00"],
        [BETA, "warm", "human:carol", "7.50 [1.15, 8.00]"]]  # fmt: skip
    totals, _scale, _outcomes, heat = figures(at)[:4]
    plotted = sorted(x for t in totals if t["mode"] == "markers" for x in values(t["x"]))
    assert plotted == [0.0, 4.0, 7.5]
    (cells,) = heat
    assert cells["y"] == [f"{BETA} · cold · human:carol", f"{BETA} · cold · human:dan",
                          f"{BETA} · warm · human:carol"]  # fmt: skip
    assert cells["text"][0] == ["0.75", "0.75", "1.25", "1.25"]
    assert {f"cmp_csv_{PROBE_SCORE}_totals", f"cmp_csv_{PROBE_SCORE}_rubric",
            f"cmp_csv_{PROBE_SCORE}_scores"} <= {b.key for b in at.get("download_button")}  # fmt: skip
    # an instrument nobody has scored says so, and how to score it
    at.sidebar.selectbox(key="cmp_instrument").set_value("capacity").run()
    assert not at.exception
    assert any("pick “capacity” as the rubric instrument" in i.value for i in at.info)
    at.sidebar.selectbox(key="cmp_instrument").set_value("sei").run()  # back to today's page
    assert [s.value for s in at.subheader][-len(CHART_TITLES) :] == CHART_TITLES
