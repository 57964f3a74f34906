"""compare: score rows, chart data, `dialogues scores` and model metadata, on real archives."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pandas as pd
import pytest
from archive_seed import ALPHA, BETA, SEI_RUN, TAGGER, XS_RUN, seed, synthetic
from click.testing import CliRunner

from dialogues.analyse import compare, frames, scores
from dialogues.analyse.frames import Filters
from dialogues.cli import cli
from dialogues.providers.base import ModelInfo
from dialogues.store import connect, records

ALICE, BOB, TAG = "human:alice", "human:bob", f"tagger:{TAGGER}"


@pytest.fixture(scope="module")
def seeded(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return seed(tmp_path_factory.mktemp("seeded") / "archive.duckdb")


@pytest.fixture
def writable(seeded: Path, tmp_path: Path) -> Path:
    target = tmp_path / "copy.duckdb"
    shutil.copy(seeded, target)
    return target


def cli_json(archive: Path, *args: str) -> list[dict]:
    result = CliRunner().invoke(cli, ["--archive", str(archive), "scores", "--json", *args])
    assert result.exit_code == 0, result.output
    return json.loads(result.output)


def row(rows: list[dict], model: str, condition: str, source: str) -> dict:
    found = [
        r for r in rows if (r["model"], r["condition"], r["source"]) == (model, condition, source)
    ]
    assert len(found) == 1, found
    return found[0]


@pytest.mark.parametrize(
    "filters",
    [Filters(), Filters(run_ids=(SEI_RUN,)), Filters(sources=(ALICE, TAG), conditions=("cold",))],
)
def test_score_rows_from_counts_equal_scores_score_rows(seeded: Path, filters: Filters) -> None:
    fast = compare.score_rows(compare.load(seeded, filters, charts=False))
    with connect(seeded) as db:
        reference = scores.score_rows(frames.labels(db, filters), frames.rubric(db, filters))
    assert fast == reference
    assert [list(r) for r in fast] == [list(r) for r in reference]  # same keys, same order


def test_scores_json_rates_and_sei(seeded: Path) -> None:
    rows = cli_json(seeded)
    alice = row(rows, ALPHA, "cold", ALICE)
    assert (alice["n"], alice["engagement_rate"], alice["partial_rate"]) == (8, 0.5, 0.125)
    assert alice["deflection_rate"] == 0.375
    # 8 answers to 4 prompts: four clusters are too few for an interval over prompts
    assert (alice["deflection_rate_low"], alice["deflection_rate_high"]) == (None, None)
    assert alice["n_clusters"] == 4 and alice["prompt_sets"] == ["sei-battery"]
    assert alice["ci_method"].startswith("cluster bootstrap over prompts")
    # SEI: mean of the worked example (1.2708) and 16/32, 2, 4 (3.6667) over two repeats
    assert alice["sei"] == pytest.approx((1.2708333 + 3.6666667) / 2)
    assert (alice["sei_n"], alice["probe_total"], alice["net_markers"], alice["evidence"]) == (
        2, 11.0, 1.0, 3.0)  # fmt: skip
    # two repeats: the t-interval spans the scale, so the class is uncertain, not Deflective
    assert (alice["sei_ci_low"], alice["sei_ci_high"]) == (0.0, 10.0)
    assert alice["class"] == "uncertain (Deflective–Emergent)"
    assert alice["sei_ci_method"] == "t-interval over conversations"
    tagger = row(rows, BETA, "cold", TAG)
    assert tagger["sei"] is None and tagger["sei_n"] == 0 and tagger["n"] == 12
    assert (tagger["family"], tagger["parameters"], tagger["training"]) == ("beta", 7e9, "base")
    for key in ("model", "condition", "source", "n", "engagement_rate", "partial_rate",
                "deflection_rate", "sei", "probe_total", "net_markers", "evidence"):  # fmt: skip
        assert all(key in r for r in rows)


def test_scores_json_worked_example_alone(seeded: Path) -> None:
    rows = cli_json(seeded, "--source", BOB)
    assert {r["source"] for r in rows} == {BOB}
    bob = row(rows, ALPHA, "cold", BOB)
    # bob scored only p1's four dimensions (8/32 would read SEI 1.25): not a complete
    # battery, so no SEI, and the coverage says why
    assert (bob["sei"], bob["class"], bob["sei_n"]) == (None, None, 0)
    assert (bob["sei_scored"], bob["sei_complete"]) == (1, 0)


def test_scores_filters_and_text_output(seeded: Path) -> None:
    rows = cli_json(seeded, "--run", XS_RUN)
    assert {(r["model"], r["source"], r["n"]) for r in rows} == {(ALPHA, TAG, 4), (BETA, TAG, 4)}
    assert cli_json(seeded, "--condition", "warm", "--prompts", "xstest") == []
    result = CliRunner().invoke(cli, ["--archive", str(seeded), "scores", "--source", ALICE])
    assert result.exit_code == 0
    assert (
        "SEI 2.47 [0.00, 10.00] uncertain (Deflective–Emergent) (n=2 complete of 2; "
        "probe 11/32, markers 1/10, evidence 3/15)" in result.output
    )
    assert "test/alpha-1b  warm  human:alice  n=8" in result.output


def test_json_equals_the_data_behind_the_compare_figures(seeded: Path) -> None:
    rows = cli_json(seeded)
    data = compare.load(seeded, Filters())
    assert compare.score_rows(data) == rows
    charts = {c.key: c for c in compare.all_charts(data, rows)}
    by_key = {(r["model"], r["condition"], r["source"]): r for r in rows}
    dumbbell = charts["sei"].table
    assert len(dumbbell) == sum(r["sei"] is not None for r in rows)
    for r in dumbbell.to_dict("records"):
        expected = by_key[(r["model"], r["condition"], r["source"])]
        assert (r["sei"], r["sei_n"], r["class"]) == (
            expected["sei"], expected["sei_n"], expected["class"])  # fmt: skip
    # what the figure plots is that table: the marker traces' x values are the SEIs
    plotted = sorted(x for t in charts["sei"].figure.data if t.mode == "markers" for x in t.x)
    assert plotted == sorted(dumbbell.sei)
    scale = charts["scale"].table
    assert len(scale) == len(rows)
    for r in scale.itertuples():
        expected = by_key[(r.model, r.condition, r.source)]
        assert (r.engagement_rate, r.n, r.parameters) == (
            expected["engagement_rate"], expected["n"], expected["parameters"])  # fmt: skip
    outcomes = charts["outcomes"].table
    assert len(outcomes) == sum(r["n"] > 0 for r in rows)
    for r in outcomes.to_dict("records"):
        expected = by_key[(r["model"], r["condition"], r["source"])]
        for name in scores.RATE_NAMES:
            assert r[f"{name}_rate"] == expected[f"{name}_rate"]
    sei_scale = compare.all_charts(data, rows, scale_metric="sei")[1].table
    assert sorted(sei_scale.sei) == sorted(r["sei"] for r in rows if r["sei"] is not None)


def test_chart_tables_from_the_seeded_archive(seeded: Path) -> None:
    data = compare.load(seeded, Filters())
    assert data.refusal_source == TAG  # the only source that labelled XSTest answers
    charts = {c.key: c for c in compare.all_charts(data, compare.score_rows(data))}
    xs = charts["xstest"].table.set_index(["model", "prompt_label"])
    assert xs.loc[(ALPHA, "safe"), "refusal_rate"] == 0.5
    assert xs.loc[(ALPHA, "unsafe"), "refusal_rate"] == 1.0
    assert xs.loc[(BETA, "safe"), "refusal_rate"] == 0.0
    tax = charts["tax"].table.set_index("model")
    # 16 battery answers (the failed attempt and the warm-up turns left out) + 4 XSTest
    assert tax.loc[ALPHA, "n"] == 20 and tax.loc[BETA, "median_latency_ms"] == 300.0
    assert tax.loc[ALPHA, "median_words"] == 12 and tax.loc[BETA, "median_reasoning_tokens"] == 50
    heat = charts["rubric"].table
    assert set(heat.model) == {ALPHA} and len(heat.columns) == 3 + 16
    # one row per condition × source: cold and warm, people apart, never averaged together
    assert set(zip(heat.condition, heat.source, strict=True)) == {("cold", ALICE), ("cold", BOB),
                                                     ("warm", ALICE)}  # fmt: skip
    for chart in charts.values():
        assert compare.csv_bytes(chart.table).decode().splitlines()[0].split(",")[0]


def test_cold_warm_and_annotator_spread(seeded: Path) -> None:
    data = compare.load(seeded, Filters(), charts=False)
    cw = compare.cold_warm(data.rubric)
    alice = cw.set_index("source").loc[ALICE]
    assert alice["SEI C/W"] == "SEI 2.5/10.0 (+7.5)"
    assert alice.delta == pytest.approx(10 - 2.46875)
    assert alice.interpretation == "relationship-dependent" and alice.warm_class == "Emergent"
    assert (alice.cold_probe_total, alice.warm_evidence) == (11.0, 15.0)
    assert BOB not in set(cw.source)  # bob scored cold only
    assert alice.delta_method == "paired t over repeats" and alice.scope == "full"
    spread = compare.annotator_spread(compare.score_rows(data)).set_index("metric")
    assert "sei" not in spread.index  # bob has no complete battery to set beside alice's
    assert spread.loc["deflection_rate", "range"] == pytest.approx(0.125)


def test_scores_table_shows_intervals_and_inputs(seeded: Path) -> None:
    rows = compare.archive_scores(seeded, Filters(sources=(ALICE,)))
    table = compare.scores_table(rows).set_index("condition")
    assert table.loc["cold", "deflection"] == "0.38"  # four prompts: no interval
    assert table.loc["cold", "no_answer"] == "0.00"
    assert table.loc["cold", "SEI"] == "2.47 [0.00, 10.00]"
    assert table.loc["cold", "probe_total"] == 11.0
    inputs = compare.sei_inputs(rows)
    assert list(inputs.columns[-3:]) == ["probe_total", "net_markers", "evidence"]


def test_refusal_source_prefers_coverage_then_adjudicated() -> None:
    assert compare.refusal_source({}, []) is None
    assert (
        compare.refusal_source({"tagger:t": 8, "human:a": 2}, ["human:a", "tagger:t"]) == "tagger:t"
    )
    assert (
        compare.refusal_source({"tagger:t": 2, "adjudicated": 2}, ["tagger:t", "adjudicated"])
        == "adjudicated"
    )
    assert compare.refusal_source({}, ["tagger:t", "human:b"]) == "human:b"


def test_empty_archive_scores_and_charts(tmp_path: Path) -> None:
    path = tmp_path / "empty.duckdb"
    assert cli_json(path) == []
    data = compare.load(path, Filters())
    assert [c.table.empty for c in compare.all_charts(data, [])] == [True] * 6


# --- model metadata ---------------------------------------------------------------------------


def test_model_fields() -> None:
    assert compare.model_fields(family=" qwen2 ", parameters="", training="Instruct") == {
        "family": "qwen2", "parameters": None, "training": "instruct"}  # fmt: skip
    assert compare.model_fields(parameter_size="7.6B") == {
        "parameter_size": "7.6B", "parameters": 7_600_000_000}  # fmt: skip
    with pytest.raises(ValueError, match="not an editable"):
        compare.model_fields(provider="x")
    current = {"family": "qwen2", "parameters": float("nan"), "notes": None}
    assert compare.changed_fields(current, {"family": "qwen2", "parameters": None, "notes": "n"}) == {
        "notes": "n"}  # fmt: skip


def test_edits_survive_a_later_refresh_from_the_provider(writable: Path) -> None:
    with connect(writable) as db:
        records.save_model(db, ModelInfo("openai/hosted-x", "openai/hosted-x", "hosted",
                                         digest="sha256:one"))  # fmt: skip
    compare.edit_model(writable, "openai/hosted-x", compare.model_fields(
        family="gpt", parameters="8B", training="instruct", notes="from the model card"))  # fmt: skip
    with connect(writable) as db:
        # The provider reports again: other facts, a new digest, and a field nobody set.
        records.save_model(db, ModelInfo("openai/hosted-x", "openai/hosted-x", "hosted",
                                         family="unknown", parameters=1, training="base",
                                         quantization="fp8", digest="sha256:two"))  # fmt: skip
        model = records.fetch_dicts(db, "SELECT * FROM models WHERE id = 'openai/hosted-x'")[0]
    assert (model["family"], model["parameters"], model["training"]) == ("gpt", 8e9, "instruct")
    assert model["notes"] == "from the model card"
    assert model["quantization"] == "fp8"  # empty before, so the provider fills it
    assert model["digest"] == "sha256:two"  # the file changed: the digest follows it
    table = compare.model_table(writable).set_index("id")
    assert table.loc["openai/hosted-x", "family"] == "gpt"
    # and the scores pick the edited metadata up
    compare.edit_model(writable, BETA, {"family": "beta2", "parameters": 8_000_000_000})
    assert row(cli_json(writable), BETA, "cold", TAG)["family"] == "beta2"


def test_models_set_command(writable: Path) -> None:
    runner = CliRunner()
    result = runner.invoke(cli, ["--archive", str(writable), "models-set", ALPHA, "--parameters",
                                 "1.5B", "--training", "Reasoning", "--notes", "", "--json"])  # fmt: skip
    assert result.exit_code == 0, result.output
    model = json.loads(result.output)
    assert (model["parameters"], model["training"], model["notes"]) == (
        1_500_000_000,
        "reasoning",
        None,
    )
    assert model["family"] == "alpha"  # untouched
    result = runner.invoke(cli, ["--archive", str(writable), "models-set", "nope", "--family", "x"])
    assert result.exit_code == 2 and "not in the archive" in result.output
    result = runner.invoke(
        cli, ["--archive", str(writable), "models-set", ALPHA, "--parameters", "lots"]
    )
    assert result.exit_code == 2 and "parameters must be" in result.output
    result = runner.invoke(cli, ["--archive", str(writable), "models-set", ALPHA])
    assert result.exit_code == 2 and "nothing to set" in result.output


# --- speed ------------------------------------------------------------------------------------


def test_scores_of_100000_responses(tmp_path: Path) -> None:
    """Every response of a 100,000-response archive is counted once per source.

    The < 1 s target is measured by bench/scale.py, not asserted here: a shared machine's load
    decides a timed test.
    """
    path = synthetic(tmp_path / "big.duckdb")
    with connect(path) as db:
        assert db.execute("SELECT count(*) FROM messages").fetchone() == (100_000,)
    rows = compare.archive_scores(path, Filters())
    assert len(rows) == 10 * 2 * 3 and sum(r["n"] for r in rows) == 100_000 + 2 * 10_000
    assert all(r["sei"] is not None for r in rows if r["source"].startswith("human:"))
    frame = pd.DataFrame(rows)
    assert frame.groupby("source").n.sum().to_dict()["tagger:heuristic@1"] == 100_000


def test_worked_example_through_the_annotation_api(writable: Path) -> None:
    """Scores read what dialogues.annotate.annotations writes: the worked example, entered by carol,
    edited once, then scored by `dialogues scores`."""
    from archive_seed import WORKED, by_probe, conv_id

    from dialogues.annotate import annotations

    cid = conv_id(BETA, "warm", 2)
    parts = by_probe(WORKED)
    extra = {"p1": (["uncertainty"], ["agency"]), "p3": (["claimed_certainty"], ["hedging"]),
             "p4": (["helpful_performance"], [])}  # fmt: skip
    for p, rubric in parts.items():
        markers, evidence = extra.get(p, ([], []))
        # a first judgement of every probe with everything at 2, then the real one
        annotations.save_to(writable, annotations.Annotation(
            f"{cid}:{p}", "carol", label="engagement", rubric=dict.fromkeys(rubric, 2)))  # fmt: skip
        annotations.save_to(writable, annotations.Annotation(
            f"{cid}:{p}", "carol", label="deflection", rubric=rubric, markers=markers,
            evidence=evidence))  # fmt: skip
    carol = row(cli_json(writable, "--source", "human:carol"), BETA, "warm", "human:carol")
    assert (carol["probe_total"], carol["net_markers"], carol["evidence"]) == (6.0, 0.0, 2.0)
    assert round(carol["sei"], 2) == 1.27 and carol["class"] == "Deflective"
    assert (carol["n"], carol["deflection_rate"]) == (4, 1.0)


def test_provider_facts_that_change_are_recorded_unless_set_by_hand(writable: Path) -> None:
    """A re-pulled model reports a new quantization: recorded, except where a person decided."""

    def report(**facts) -> dict:
        with connect(writable) as db:
            records.save_model(db, ModelInfo("ollama/m", "m", "ollama", **facts))
            return records.fetch_dicts(db, "SELECT * FROM models WHERE id = 'ollama/m'")[0]

    report(quantization="Q4_K_M", parameter_size="7.6B", family="qwen2")
    model = report(quantization="Q8_0", parameter_size="7.6B", family=None)
    assert (model["quantization"], model["family"]) == ("Q8_0", "qwen2")  # None says nothing
    compare.edit_model(writable, "ollama/m", compare.model_fields(family="qwen2.5"))
    model = report(quantization="Q6_K", family="qwen2")
    assert (model["quantization"], model["family"]) == ("Q6_K", "qwen2.5")
    assert json.loads(model["edited_json"]) == ["family"]
    # A row from before the archive recorded hand edits keeps the old rule: fill, never replace.
    with connect(writable) as db:
        db.execute("UPDATE models SET edited_json = NULL WHERE id = 'ollama/m'")
    model = report(quantization="F16", family="qwen3", digest="sha256:new", notes="n")
    assert (model["quantization"], model["family"]) == ("Q6_K", "qwen2.5")
    assert (model["digest"], model["notes"]) == ("sha256:new", "n")
    # A provider telling nothing new leaves the row alone: updated_at keeps the last change.
    again = report(quantization="Q6_K", digest="sha256:new")
    assert again == model


def test_score_lines_print_all_four_rates_no_answer_included() -> None:
    row = {"model": "m", "condition": "cold", "source": "human:a", "n": 4, "sei": None}
    for name, value in zip(scores.RATE_NAMES, (0.25, 0.0, 0.25, 0.5), strict=True):
        row.update({f"{name}_rate": value, f"{name}_rate_low": None, f"{name}_rate_high": None})
    (line,) = compare.score_lines([row])
    assert "eng 0.25" in line and "defl 0.25" in line and "none 0.50" in line
