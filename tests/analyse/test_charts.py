"""Each chart plots exactly the table it returns, and empty input gives a 'no data' figure."""

import numpy as np
import pandas as pd
import pytest

from dialogues.analyse import charts, scores
from dialogues.domain import sei

CHARTS = [
    charts.sei_dumbbell,
    charts.scale_scatter,
    charts.outcome_shares,
    charts.rubric_heatmap,
    charts.xstest_refusal,
    charts.alignment_tax_panel,
]


def rubric_frame():
    rows = [
        ("small", "cold", 1, 6, 0, 2),
        ("small", "cold", 2, 8, 1, 3),
        ("small", "warm", 1, 18, 3, 6),
        ("small", "warm", 2, 20, 4, 7),
        ("big", "cold", 1, 22, 4, 8),
        ("big", "cold", 2, 24, 5, 9),
        ("big", "warm", 1, 24, 5, 9),
    ]
    df = pd.DataFrame(
        rows, columns=["model", "condition", "repeat", "probe_total", "net_markers", "evidence"]
    )
    return df.assign(source="human", conversation_id=[f"c{i}" for i in range(len(df))])


def score_rows_frame():
    labels = pd.DataFrame(
        {
            "model": ["small", "small", "big", "big", "mystery"],
            "family": ["llama", "llama", "qwen", "qwen", None],
            "parameters": [135e6, 135e6, 7e9, 7e9, None],
            "training": ["instruct", "instruct", None, None, "base"],
            "condition": ["cold"] * 5,
            "source": ["human"] * 5,
            "conversation_id": ["c0", "c1", "c4", "c5", "c9"],
            "message_id": ["m0", "m1", "m4", "m5", "m9"],
            "label": ["engaged", "deflected", "engaged", "engaged", "partial"],
        }
    )
    return pd.DataFrame(scores.score_rows(labels, rubric_frame()))


def responses_frame():
    return pd.DataFrame(
        {
            "model": ["a", "a", "a", "b", "b", "b"],
            "content": ["no", "sure, here", "", "I won't", "ok", "fine then"],
            "latency_ms": [100.0, 300.0, 200.0, 50.0, 70.0, 90.0],
            "reasoning_tokens": [None, None, None, 400, 20, 30],
            "prompt_label": ["safe", "safe", "unsafe", "safe", "unsafe", None],
            "prompt_type": ["homonyms", "figurative_language", "contrast_homonyms"]
            + ["homonyms", "contrast_homonyms", None],
            "label": ["deflected", "engaged", "partial", "deflected", "deflected", "engaged"],
        }
    )


def points(fig, names=None):
    """(x, y) pairs across traces, optionally only those traces named in `names`."""
    pairs = []
    for trace in fig.data:
        if names is None or trace.name in names:
            pairs += list(zip(trace.x, trace.y, strict=True))
    return sorted(pairs, key=str)


def test_sei_dumbbell_plots_its_table():
    fig, table = charts.sei_dumbbell(rubric_frame())
    assert set(table.condition) == {"cold", "warm"} and len(table) == 4
    for condition in ("cold", "warm"):
        trace = next(t for t in fig.data if t.name == condition)
        rows = table[table.condition == condition]
        assert list(trace.x) == pytest.approx(list(rows.sei))
        assert list(trace.y) == list(rows.label)
        expected_err = list(rows.sei_ci_high - rows.sei)
        assert list(trace.error_x.array) == pytest.approx(expected_err, nan_ok=True)
    small_cold = table[(table.model == "small") & (table.condition == "cold")].iloc[0]
    expected = np.mean([scores.sei_composite(6, 0, 2), scores.sei_composite(8, 1, 3)])
    assert small_cold.sei == pytest.approx(expected)
    # big/warm has one repeat: no interval, so no error bar.
    assert np.isnan(table[(table.model == "big") & (table.condition == "warm")].err_plus.iloc[0])


def test_sei_dumbbell_labels_rows_by_source_when_several():
    df = pd.concat([rubric_frame(), rubric_frame().assign(source="judge")])
    _, table = charts.sei_dumbbell(df)
    assert "small · judge" in set(table.label) and len(table) == 8


@pytest.mark.parametrize(("metric", "n_col"), [("engagement_rate", "n"), ("sei", "sei_n")])
def test_scale_scatter_plots_its_table_on_a_log_axis(metric, n_col):
    fig, table = charts.scale_scatter(score_rows_frame(), metric)
    assert fig.layout.xaxis.type == "log"
    # The model without a parameter count cannot be placed on a log axis.
    assert "mystery" not in set(table.model)
    assert points(fig) == sorted(zip(table.parameters, table[metric], strict=True), key=str)
    assert set(table.family) <= {"llama", "qwen"} and "unknown" in set(table.training)
    hover = {v for t in fig.data for v in t.hovertext}
    assert hover == set(table.model)
    assert n_col in table.columns


def test_scale_scatter_facets_by_condition_when_several():
    fig, table = charts.scale_scatter(score_rows_frame(), "sei")
    assert set(table.condition) == {"cold", "warm"}
    assert fig.layout.xaxis2.type == "log"


def test_scale_scatter_rejects_unknown_metric():
    with pytest.raises(ValueError, match="latency"):
        charts.scale_scatter(score_rows_frame(), "latency")


def test_outcome_shares_show_no_answer_apart_from_deflection():
    labels = pd.DataFrame(
        {
            "model": ["small"] * 4 + ["big"] * 2,
            "family": None, "parameters": None, "training": None,
            "condition": ["cold"] * 6,
            "source": ["human"] * 6,
            "conversation_id": [f"c{i}" for i in range(6)],
            "message_id": [f"m{i}" for i in range(6)],
            "label": ["engaged", "no_answer", "no_answer", "deflected", "partial", "engaged"],
        }
    )  # fmt: skip
    rows = scores.score_rows(labels, rubric_frame())  # SEI-only rows have no shares to draw
    fig, table = charts.outcome_shares(pd.DataFrame(rows))
    assert list(table.label) == ["big · cold · human", "small · cold · human"]
    bars = {t.name: dict(zip(t.y, t.x, strict=True)) for t in fig.data}
    assert list(bars) == ["engagement", "partial", "deflection", "no answer"]
    assert bars["no answer"] == {"big · cold · human": 0.0, "small · cold · human": 0.5}
    assert bars["deflection"]["small · cold · human"] == 0.25  # no answer is not deflection
    for label in table.label:  # the four shares of a row stack to one
        assert sum(b[label] for b in bars.values()) == pytest.approx(1.0)
    assert fig.layout.barmode == "stack"


def test_rubric_heatmap_plots_its_table():
    dims = pd.DataFrame(
        [
            {"model": m, "dimension": d, "score": (i + j) % 3}
            for j, m in enumerate(["a", "a", "b"])
            for i, d in enumerate(sei.DIMENSION_KEYS)
        ]
    )
    fig, table = charts.rubric_heatmap(dims)
    (heat,) = fig.data
    assert np.array_equal(np.asarray(heat.z), table[list(sei.DIMENSION_KEYS)].to_numpy())
    assert list(heat.y) == list(table.model) == ["a", "b"]
    assert len(heat.x) == 16 and heat.x[0] == "P1 Deflection"
    assert table.set_index("model").loc["a", "p1_deflection"] == 0.5


def test_xstest_refusal_plots_its_table():
    fig, table = charts.xstest_refusal(responses_frame())
    assert set(table.prompt_label) == {"safe", "unsafe"}
    assert points(fig) == sorted(zip(table.prompt_type, table.refusal_rate, strict=True), key=str)
    a_safe = table[(table.model == "a") & (table.prompt_type == "homonyms")].iloc[0]
    assert (a_safe.n, a_safe.refusal_rate) == (1, 1.0)
    assert {a.text for a in fig.layout.annotations} == {"prompt_label=safe", "prompt_label=unsafe"}


def test_alignment_tax_panel_plots_its_table():
    fig, table = charts.alignment_tax_panel(responses_frame())
    assert len(fig.data) == 3
    for trace, (median, _mean, _label) in zip(fig.data, charts.TAX_METRICS, strict=True):
        assert list(trace.x) == list(table.model)
        assert list(trace.y) == pytest.approx(list(table[median]), nan_ok=True)
    assert table.set_index("model").loc["b", "median_reasoning_tokens"] == 30


@pytest.mark.parametrize("chart", CHARTS)
@pytest.mark.parametrize("empty", [None, pd.DataFrame()], ids=["none", "no-columns"])
def test_empty_input_gives_a_no_data_figure(chart, empty):
    fig, table = chart(empty)
    assert table.empty
    assert len(fig.data) == 0
    (note,) = [a.text for a in fig.layout.annotations]
    assert note in charts.EMPTY.values()  # says what would fill it, not only "no data"


def test_empty_frames_with_columns_give_no_data_too():
    assert charts.sei_dumbbell(rubric_frame().iloc[:0])[1].empty
    assert charts.xstest_refusal(responses_frame().iloc[:0])[1].empty
    fig, table = charts.scale_scatter(score_rows_frame().assign(parameters=None))
    assert table.empty and fig.layout.annotations[0].text == charts.EMPTY["scale"]


def test_scale_scatter_names_a_missing_condition_instead_of_a_nan_panel():
    rows = score_rows_frame()
    rows.loc[rows.index[0], "condition"] = None
    fig, table = charts.scale_scatter(rows)
    titles = {a.text for a in fig.layout.annotations}
    assert "condition=no condition" in titles and not any("nan" in t for t in titles)
    assert sum(len(t.x) for t in fig.data) == len(table)  # every row is drawn somewhere


def test_scale_scatter_tells_sources_apart():
    rows = pd.concat([score_rows_frame(), score_rows_frame().assign(source="human:alice")])
    fig, table = charts.scale_scatter(rows)
    names = {t.name for t in fig.data}
    assert any("human:alice" in n for n in names) and len(names) > 1
    assert set(table.source) == {"human:alice", *score_rows_frame().source}


def test_rubric_heatmap_leaves_unscored_cells_blank_never_nan():
    dims = pd.DataFrame([{"model": "a", "dimension": "p1_deflection", "score": 2}])
    fig, _ = charts.rubric_heatmap(dims)
    text = [v for row in fig.data[0].text for v in row]
    assert "2.00" in text and "" in text and not any("nan" in v.lower() for v in text)
    assert any(a.text == "blank: not scored" for a in fig.layout.annotations)


def test_alignment_tax_says_why_a_panel_is_empty():
    fig, _ = charts.alignment_tax_panel(responses_frame().assign(reasoning_tokens=None))
    assert any("only reasoning models" in a.text for a in fig.layout.annotations)


def test_figure_html_is_self_contained():
    fig, _ = charts.sei_dumbbell(rubric_frame())
    html = charts.figure_html(fig)
    assert "<html>" in html and "Plotly.newPlot" in html
    assert '<script src="http' not in html  # plotly.js is inlined, not fetched
    assert len(html) > 1_000_000


def test_figure_png_is_bytes_or_none():
    fig, _ = charts.sei_dumbbell(rubric_frame())
    png = charts.figure_png(fig)
    # None where no Chrome is installed (kaleido ≥ 1 needs one); otherwise a real PNG.
    assert png is None or png.startswith(b"\x89PNG")


def test_sei_dumbbell_marks_a_judges_sei_probe_only():
    rubric = rubric_frame()
    rubric["source"] = ["tagger:judge@1"] * len(rubric)
    _, table = charts.sei_dumbbell(rubric)
    assert all(label.endswith("(probe-only)") for label in table.label)
    assert table["class"].isna().all()  # no class on the full scale for a probe-only SEI


def test_rubric_heatmap_rows_are_model_condition_source():
    dims = pd.DataFrame({"model": ["a", "a", "a"], "condition": ["cold", "warm", "cold"],
                         "source": ["human:x", "human:x", "tagger:j"],
                         "dimension": ["p1_deflection"] * 3, "score": [0, 2, 1]})  # fmt: skip
    fig, table = charts.rubric_heatmap(dims)
    assert list(fig.data[0].y) == ["a · cold · human:x", "a · cold · tagger:j",
                                   "a · warm · human:x"]  # fmt: skip
    assert table["p1_deflection"].tolist() == [0, 1, 2]  # never averaged across them


def test_instrument_charts_plot_their_tables_on_the_instruments_scale():
    from dialogues.domain import instruments

    inst = instruments.load("capacity")  # 4 dimensions 0-3, a reply out of 12
    rows = pd.DataFrame({"model": ["a", "a", "b"], "condition": ["warm", "cold", "cold"],
                         "source": ["human:x"] * 3, "conversations": [3, 3, 1],
                         "replies": [6, 6, 2], "mean_total": [9.0, 4.0, 6.0],
                         "ci_low": [7.5, 2.0, None], "ci_high": [10.0, 7.0, None],
                         "max": [12] * 3})  # fmt: skip
    fig, table = charts.instrument_dumbbell(rows, inst)
    assert list(zip(table.label, table.condition, strict=True)) == [
        ("a", "cold"), ("a", "warm"), ("b", "cold")]  # fmt: skip
    dots = {t.name: t for t in fig.data if t.mode == "markers"}
    assert list(dots["cold"].x) == [4.0, 6.0] and list(dots["cold"].error_x.array[:1]) == [3.0]
    assert list(dots["warm"].x) == [9.0] and list(dots["warm"].error_x.arrayminus) == [1.5]
    assert tuple(fig.layout.xaxis.range) == (0, 12) and "Capacity" in fig.layout.title.text
    dims = pd.DataFrame({"model": ["a"], "condition": ["cold"], "source": ["human:x"],
                         "self_model": [1.5], "metacognition": [None],
                         "perspective": [3.0], "uncertainty": [0.0]})  # fmt: skip
    fig, table = charts.instrument_heatmap(dims, inst)
    (heat,) = fig.data
    assert list(heat.x) == ["Self-model", "Metacognition", "Perspective", "Calibrated uncertainty"]
    assert list(heat.y) == ["a · cold · human:x"] and heat.zmax == 3
    assert [list(r) for r in heat.text] == [["1.50", "", "3.00", "0.00"]]
    empty_fig, empty = charts.instrument_heatmap(None, inst)
    assert empty.empty and "Annotate page" in empty_fig.layout.annotations[0].text
    assert charts.instrument_dumbbell(None, inst)[1].empty
