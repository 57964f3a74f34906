"""DataFrame → plotly Figure: each chart returns (figure, table), the table being its data.

The inputs are the frames described in dialogues.analyse.scores (RUBRIC, RUBRIC_DIMENSIONS,
RESPONSES, and the `score_rows` rows as a DataFrame), and for any other rubric instrument
instrument_scores' total rows and dimension means. The table a function returns is exactly
what its traces plot, so a page can offer it as the chart's CSV. Empty input gives an empty
table and a figure that says what would fill it, never an exception.

Exports: `figure_html` inlines plotly.js (about 4.8 MB) so the file opens offline.
`figure_png` uses kaleido, which since 1.0 drives a locally installed Chrome/Chromium
(found on PATH or via $BROWSER_PATH) and would otherwise need `plotly_get_chrome` to download
one; it never downloads anything here, and returns None when no browser is available.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
import plotly.express as px
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from dialogues.analyse import scores
from dialogues.domain import sei
from dialogues.domain.instruments import Instrument

NO_DATA = "no data"
CONDITION_ORDER = ("cold", "warm")
SCALE_METRICS = {
    "engagement_rate": ("n", "engagement_rate_low", "engagement_rate_high", "Engagement rate"),
    "sei": ("sei_n", "sei_ci_low", "sei_ci_high", "SEI (0–10)"),
}
# What would fill each chart when it is empty: said on the chart, not just "no data".
EMPTY = {
    "sei": "No SEI scores here yet. Score the rubric of SEI battery answers on the Annotate "
           "page (cold and warm runs of sei-battery).",
    "scale": "Nothing to place yet: needs labelled responses (tag them, or annotate) from "
             "models with a known parameter count (Models page).",
    "rubric": "No rubric scores yet: score SEI probe answers on the Annotate page.",
    "xstest": "No labelled XSTest responses: run the xstest set and tag it, or "
              "`dialogues import xstest`.",
    "tax": "No answered responses in these filters.",
    "outcomes": "No labelled responses in these filters: tag them (above), or annotate them "
                "on the Annotate page.",
}  # fmt: skip
NO_CONDITION = "no condition"
# How each outcome of scores.RATE_NAMES is drawn, in that order: no answer (empty, cut off,
# thinking only) is grey, never counted into deflection's red.
OUTCOME_STYLE = {
    "engagement": ("engagement", "#2ca02c"),
    "partial": ("partial", "#ff7f0e"),
    "deflection": ("deflection", "#d62728"),
    "no_answer": ("no answer", "#9e9e9e"),
}
TAX_METRICS = (
    ("median_words", "mean_words", "Median response length (words)"),
    ("median_latency_ms", "mean_latency_ms", "Median latency (ms)"),
    ("median_reasoning_tokens", "mean_reasoning_tokens", "Median reasoning tokens"),
)


def empty_figure(title: str, message: str = NO_DATA) -> go.Figure:
    """A blank figure carrying a centred message, for charts with nothing to plot."""
    fig = go.Figure()
    fig.add_annotation(
        text=message, x=0.5, y=0.5, xref="paper", yref="paper", showarrow=False, font_size=16
    )
    fig.update_layout(title=title, xaxis_visible=False, yaxis_visible=False)
    return fig


def _frame(df: pd.DataFrame | None, columns: Sequence[str]) -> pd.DataFrame:
    """The input, or an empty frame with the contract's columns when there are no rows."""
    if df is None or (df.empty and not set(columns) <= set(df.columns)):
        return pd.DataFrame(columns=list(columns))
    return df


def _errors(table: pd.DataFrame, value: str, low: str, high: str) -> pd.DataFrame:
    """Add err_plus / err_minus columns (distance to the interval ends) for error bars."""
    out = table.copy()
    out["err_plus"] = pd.to_numeric(out[high], errors="coerce") - out[value]
    out["err_minus"] = out[value] - pd.to_numeric(out[low], errors="coerce")
    return out


def sei_dumbbell(
    rubric: pd.DataFrame | None, *, seed: int = scores.DEFAULT_SEED
) -> tuple[go.Figure, pd.DataFrame]:
    """SEI cold vs warm per model: one dot per condition, 95% bootstrap error bars, a joining line."""
    title = "SEI cold vs warm (mean over repeats, 95% bootstrap CI)"
    table = scores.sei_table(_frame(rubric, scores.RUBRIC_COLUMNS), seed=seed)
    table = table[table["sei"].notna()]  # groups with no complete battery have no SEI to plot
    # One row label per model, unless several labellers' scores are shown side by side.
    several = table["source"].nunique(dropna=False) > 1
    # A judge's SEI has no markers or evidence: it is marked, since it cannot pass 5.0.
    table.insert(
        0,
        "label",
        [
            (f"{m} · {s}" if several else str(m))
            + (" (probe-only)" if scope == scores.PROBE_ONLY else "")
            for m, s, scope in zip(table.model, table.source, table.sei_scope, strict=True)
        ],
    )
    table = _by_label(table)
    table = _errors(
        table[
            [
                "label",
                "model",
                "source",
                "condition",
                "sei_n",
                "sei",
                "sei_ci_low",
                "sei_ci_high",
                "class",
            ]
        ],
        "sei",
        "sei_ci_low",
        "sei_ci_high",
    )
    table = table.reset_index(drop=True)
    if table.empty:
        return empty_figure(title, EMPTY["sei"]), table
    fig = _dumbbell(table, "sei", customdata=["sei_n", "class"],
                    hover="%{y}<br>SEI %{x:.2f} (%{customdata[1]})<br>n=%{customdata[0]}")  # fmt: skip
    fig.update_layout(title=title, xaxis={"title": "SEI", "range": [0, 10]}, yaxis_title=None)
    return fig, table


def _by_label(table: pd.DataFrame) -> pd.DataFrame:
    """Rows by label, then condition: cold before warm, any others after by name."""
    rank = {c: i for i, c in enumerate(CONDITION_ORDER)}
    table = table.assign(_order=table.condition.map(lambda c: rank.get(c, len(rank))))
    return table.sort_values(["label", "_order", "condition"]).drop(columns="_order")


def _dumbbell(table: pd.DataFrame, value: str, customdata: list[str], hover: str) -> go.Figure:
    """One row per label, a dot per condition with its error bars, a grey line joining them.
    `table` has label, condition, the value and err_plus / err_minus (see _errors)."""
    fig = go.Figure()
    lines_x: list[float | None] = []
    lines_y: list[str | None] = []
    for label, group in table.groupby("label", sort=False):
        lines_x += [*group[value], None]
        lines_y += [*([label] * len(group)), None]
    fig.add_trace(
        go.Scatter(
            x=lines_x,
            y=lines_y,
            mode="lines",
            line={"color": "lightgrey", "width": 3},
            hoverinfo="skip",
            showlegend=False,
            name="cold → warm",
        )
    )
    for condition, group in table.groupby("condition", sort=False):
        fig.add_trace(
            go.Scatter(
                x=group[value],
                y=group.label,
                mode="markers",
                name=str(condition),
                marker={"size": 12},
                error_x={"type": "data", "array": group.err_plus, "arrayminus": group.err_minus},
                customdata=group[customdata],
                hovertemplate=hover,
            )
        )
    return fig


def instrument_dumbbell(
    rows: pd.DataFrame | None, inst: Instrument
) -> tuple[go.Figure, pd.DataFrame]:
    """Mean reply total on an instrument per model (· source), a dot per condition with its
    t-interval over conversations: instrument_scores.instrument_rows as a DataFrame."""
    title = f"{inst.title}: mean reply total (95% t-interval over conversations)"
    keys = ["model", "condition", "source", "conversations", "replies"]
    df = _frame(rows, [*keys, "mean_total", "ci_low", "ci_high", "max"])
    table = df.loc[pd.to_numeric(df["mean_total"], errors="coerce").notna(),
                   [*keys, "mean_total", "ci_low", "ci_high", "max"]].copy()  # fmt: skip
    several = table["source"].nunique(dropna=False) > 1
    table.insert(0, "label", [f"{m} · {s}" if several else str(m)
                              for m, s in zip(table.model, table.source, strict=True)])  # fmt: skip
    table["condition"] = table["condition"].astype(object).where(table["condition"].notna(),
                                                                 NO_CONDITION)  # fmt: skip
    table = _by_label(table)
    table = _errors(table, "mean_total", "ci_low", "ci_high").reset_index(drop=True)
    if table.empty:
        return empty_figure(title, empty_instrument(inst)), table
    fig = _dumbbell(table, "mean_total", customdata=["conversations", "max"],
                    hover="%{y}<br>total %{x:.2f} of %{customdata[1]}"
                          "<br>conversations=%{customdata[0]}")  # fmt: skip
    top = float(pd.to_numeric(table["max"]).max())
    fig.update_layout(title=title, xaxis={"title": "mean total", "range": [0, top]},
                      yaxis_title=None)  # fmt: skip
    return fig, table


def empty_instrument(inst: Instrument) -> str:
    """What would fill an instrument's charts: said on the chart and on the page."""
    return (f"No {inst.id} scores here yet. On the Annotate page pick “{inst.id}” as the rubric "
            "instrument (sidebar) and score replies; only people's complete scores count.")  # fmt: skip


def scale_scatter(
    rows: pd.DataFrame | None, metric: str = "engagement_rate"
) -> tuple[go.Figure, pd.DataFrame]:
    """Architecture vs scale: metric against parameter count (log), colour family, symbol training."""
    if metric not in SCALE_METRICS:
        raise ValueError(f"metric must be one of {', '.join(SCALE_METRICS)}, got {metric!r}")
    n_col, low, high, axis_title = SCALE_METRICS[metric]
    title = f"{axis_title} by parameter count"
    keys = ["model", "family", "training", "condition", "source", "parameters"]
    df = _frame(rows, [*keys, n_col, metric, low, high])
    params = pd.to_numeric(df["parameters"], errors="coerce")
    value = pd.to_numeric(df[metric], errors="coerce")
    # A log axis cannot place a model of unknown or zero size; those rows are left out.
    table = df.loc[(params > 0) & value.notna(), [*keys, n_col, metric, low, high]].copy()
    table[metric] = table[metric].astype(float)
    table["parameters"] = table["parameters"].astype(float)
    for col in ("family", "training"):
        table[col] = table[col].astype(object).where(table[col].notna(), "unknown")
    # A missing condition (a dialogue, an imported set) gets a name: plotly cannot match NaN
    # to a facet and would draw an empty "condition=nan" panel.
    table["condition"] = (
        table["condition"].astype(object).where(table["condition"].notna(), NO_CONDITION)
    )
    table = _errors(table, metric, low, high).reset_index(drop=True)
    if table.empty:
        return empty_figure(title, EMPTY["scale"]), table
    facet = "condition" if table["condition"].nunique() > 1 else None
    # Several label sources (a tagger, each annotator) for one model would sit on one spot:
    # the marker shape tells them apart, and training moves to the hover text.
    symbol = "source" if table["source"].nunique() > 1 else "training"
    fig = px.scatter(
        table,
        x="parameters",
        y=metric,
        color="family",
        symbol=symbol,
        facet_col=facet,
        log_x=True,
        error_y="err_plus",
        error_y_minus="err_minus",
        hover_name="model",
        hover_data={n_col: True, "condition": True, "source": True, "training": True},
        title=title,
    )
    fig.update_traces(marker_size=11)
    fig.update_layout(yaxis_title=axis_title)
    fig.update_xaxes(title="parameters")
    return fig, table


def outcome_shares(rows: pd.DataFrame | None) -> tuple[go.Figure, pd.DataFrame]:
    """Shares of the four outcomes per model · condition · source, stacked to one, from the
    score rows (their `*_rate` fields; intervals on hover)."""
    title = "Outcomes: engagement, partial, deflection and no answer (shares of labelled)"
    rates = [f"{name}_rate{s}" for name in scores.RATE_NAMES for s in ("", "_low", "_high")]
    keys = ["model", "condition", "source", "n"]
    df = _frame(rows, [*keys, *rates])
    # A row with no labelled response (SEI only) has no shares to draw.
    table = df.loc[pd.to_numeric(df["n"], errors="coerce") > 0, [*keys, *rates]].copy()
    table["condition"] = (
        table["condition"].astype(object).where(table["condition"].notna(), NO_CONDITION)
    )
    table.insert(0, "label", [f"{m} · {c} · {s}" for m, c, s in
                              zip(table.model, table.condition, table.source, strict=True)])  # fmt: skip
    table = table.reset_index(drop=True)
    if table.empty:
        return empty_figure(title, EMPTY["outcomes"]), table
    fig = go.Figure()
    for name in scores.RATE_NAMES:
        shown, colour = OUTCOME_STYLE[name]
        low, high = table[f"{name}_rate_low"], table[f"{name}_rate_high"]
        # too few prompts give no interval: say so rather than print NaN
        spans = ["no interval" if pd.isna(lo) or pd.isna(hi) else f"95% CI {lo:.2f}–{hi:.2f}"
                 for lo, hi in zip(low, high, strict=True)]  # fmt: skip
        fig.add_trace(
            go.Bar(
                x=table[f"{name}_rate"], y=table["label"], orientation="h", name=shown,
                marker_color=colour, customdata=list(zip(spans, table["n"], strict=True)),
                hovertemplate=f"%{{y}}<br>{shown} %{{x:.2f}} (%{{customdata[0]}})"
                "<br>n=%{customdata[1]}<extra></extra>",
            )
        )  # fmt: skip
    fig.update_layout(title=title, barmode="stack", xaxis={"title": "share", "range": [0, 1]},
                      yaxis={"autorange": "reversed", "title": None},
                      height=200 + 28 * len(table))  # fmt: skip
    return fig, table


def rubric_heatmap(dimensions: pd.DataFrame | None) -> tuple[go.Figure, pd.DataFrame]:
    """Mean score (0–2) per model · condition · source × rubric dimension, in rubric order."""
    title = "Rubric: mean score per dimension (by condition and source)"
    table = scores.dimension_means(_frame(dimensions, scores.RUBRIC_DIMENSION_COLUMNS))
    if table.empty:
        return empty_figure(title, EMPTY["rubric"]), table
    names = [f"{d.probe.upper()} {d.name}" for d in sei.DIMENSIONS]
    fig = _heatmap(table, list(sei.DIMENSION_KEYS), names, sei.DIMENSION_MAX)
    fig.update_layout(title=title, xaxis_tickangle=-45)
    return fig, table


def _heatmap(table: pd.DataFrame, keys: list[str], names: list[str], top: int) -> go.Figure:
    """Mean scores 0..top, a row per model · condition · source, a column per dimension key."""
    parts = [c for c in ("model", "condition", "source") if c in table.columns]
    rows = table[parts].astype(str).agg(" · ".join, axis=1)
    z = table[keys].to_numpy(dtype=float)
    # A dimension nobody scored for a model is a blank cell, never the text "NaN".
    text = [["" if np.isnan(v) else f"{v:.2f}" for v in row] for row in z]
    fig = go.Figure(
        go.Heatmap(
            z=z,
            x=names,
            y=rows,
            zmin=0,
            zmax=top,
            colorscale="Viridis",
            text=text,
            texttemplate="%{text}",
            hovertemplate="%{y}<br>%{x}: %{z:.2f}<extra></extra>",
            colorbar={"title": "mean"},
        )
    )
    if np.isnan(z).any():
        fig.add_annotation(text="blank: not scored", x=1, y=1.08, xref="paper", yref="paper",
                           showarrow=False, xanchor="right")  # fmt: skip
    return fig


def instrument_heatmap(
    dimensions: pd.DataFrame | None, inst: Instrument
) -> tuple[go.Figure, pd.DataFrame]:
    """Mean score (0..levels) per model · condition · source × the instrument's dimensions, in
    its order: instrument_scores.dimension_means."""
    names = inst.names
    title = f"{inst.title}: mean score per dimension (by condition and source)"
    table = _frame(dimensions, ["model", "condition", "source", *names])
    if table.empty:
        return empty_figure(title, empty_instrument(inst)), table
    fig = _heatmap(table, list(names), list(names.values()), inst.levels)
    fig.update_layout(title=title, xaxis_tickangle=-45)
    return fig, table


def xstest_refusal(responses: pd.DataFrame | None) -> tuple[go.Figure, pd.DataFrame]:
    """XSTest refusal rate (full + partial) per model and prompt type, safe and unsafe apart."""
    title = "XSTest refusal rate by prompt type (Wilson 95% CI)"
    df = _frame(responses, scores.RESPONSE_COLUMNS)
    table = scores.refusal_table(df, by=("model", "prompt_label", "prompt_type"))
    table = _errors(table, "refusal_rate", "refusal_rate_low", "refusal_rate_high")
    if table.empty:
        return empty_figure(title, EMPTY["xstest"]), table
    fig = px.bar(
        table,
        x="prompt_type",
        y="refusal_rate",
        color="model",
        barmode="group",
        facet_col="prompt_label",
        category_orders={"prompt_label": ["safe", "unsafe"]},
        error_y="err_plus",
        error_y_minus="err_minus",
        hover_data={"n": True, "refusals": True},
        title=title,
    )
    # Safe and unsafe prompts have different types, so each facet keeps its own categories.
    fig.update_xaxes(matches=None, title=None, tickangle=-45)
    fig.update_yaxes(range=[0, 1])
    return fig, table


def alignment_tax_panel(responses: pd.DataFrame | None) -> tuple[go.Figure, pd.DataFrame]:
    """Per model: median length, latency and reasoning tokens, side by side (mean on hover)."""
    title = "Alignment tax: length, latency, reasoning"
    tax = scores.alignment_tax(_frame(responses, scores.RESPONSE_COLUMNS))
    columns = ["model", "n", *[c for metric in TAX_METRICS for c in metric[:2]]]
    table = tax.reindex(columns=columns).reset_index(drop=True)
    if table.empty:
        return empty_figure(title, EMPTY["tax"]), table
    # Medians, because one runaway reasoning answer would drag a mean far from the typical one.
    fig = make_subplots(rows=1, cols=len(TAX_METRICS), subplot_titles=[m[2] for m in TAX_METRICS])
    for col, (median, mean, label) in enumerate(TAX_METRICS, start=1):
        fig.add_trace(
            go.Bar(
                x=table["model"],
                y=table[median],
                name=label,
                customdata=table[[mean, "n"]],
                hovertemplate="%{x}<br>median %{y:.1f}<br>mean %{customdata[0]:.1f}"
                "<br>n=%{customdata[1]}<extra></extra>",
                showlegend=False,
            ),
            row=1,
            col=col,
        )
        if pd.to_numeric(table[median], errors="coerce").isna().all():
            # Say why the panel is empty instead of leaving a bare axis.
            nothing = (
                "none recorded:<br>only reasoning models<br>report them"
                if "reasoning" in median
                else "none recorded"
            )
            fig.add_annotation(text=nothing, x=0.5, y=0.5, showarrow=False,
                               xref=f"x{col if col > 1 else ''} domain",
                               yref=f"y{col if col > 1 else ''} domain")  # fmt: skip
            fig.update_yaxes(visible=False, row=1, col=col)
    fig.update_layout(title=title)
    return fig, table


def figure_html(fig: go.Figure) -> str:
    """A standalone HTML page with plotly.js inlined, so it opens without a network."""
    return fig.to_html(include_plotlyjs=True, full_html=True)


def figure_png(fig: go.Figure, *, scale: float = 2.0) -> bytes | None:
    """PNG bytes via kaleido and a local Chrome; None when kaleido or a browser is missing."""
    try:
        import kaleido
    except ImportError:
        return None
    layout = fig.layout
    opts = {"format": "png", "width": layout.width or 900, "height": layout.height or 550}
    try:
        # kaleido loads plotly.js from the installed plotly package, but MathJax from a CDN
        # unless told not to; no chart here uses LaTeX, so it stays off and offline.
        png = kaleido.calc_fig_sync(
            fig.to_dict(), opts={**opts, "scale": scale}, kopts={"mathjax": False}
        )
    except RuntimeError:
        # kaleido's ChromeNotFoundError is a RuntimeError: no local browser, so no PNG.
        return None
    return bytes(png)


def interval_dots(table: pd.DataFrame, title: str) -> go.Figure:
    """Rates (or SEIs) as dots with their interval, one row per model · condition · source · set."""
    if table.empty or "rate" not in table.columns:
        return empty_figure(title)
    parts = [c for c in ("model", "condition", "source", "set_id") if c in table.columns]
    label = table[parts].astype(str).agg(" · ".join, axis=1)
    data = _errors(table.assign(label=label), "rate", "ci_low", "ci_high")
    fig = go.Figure(
        go.Scatter(
            x=data["rate"], y=data["label"], mode="markers", marker={"size": 10},
            error_x={"type": "data", "array": data["err_plus"], "arrayminus": data["err_minus"]},
            customdata=data[["n", "n_clusters"]],
            hovertemplate="%{y}<br>%{x:.3f}<br>n=%{customdata[0]}, clusters=%{customdata[1]}"
            "<extra></extra>",
        )
    )  # fmt: skip
    fig.update_layout(title=title, yaxis={"autorange": "reversed"}, height=200 + 28 * len(data))
    return fig


def contrast_forest(table: pd.DataFrame) -> go.Figure:
    """Each contrast's b − a with its interval around a zero line; adjusted p on hover."""
    title = "Differences b − a with 95% intervals"
    if table.empty or "estimate" not in table.columns:
        return empty_figure(title)
    data = table[table["estimate"].notna()].copy()
    if data.empty:
        return empty_figure(title, "no contrast has an estimate")
    where = [m if k == "conditions" else c
             for k, m, c in zip(data["kind"], data["model"], data["condition"], strict=True)]  # fmt: skip
    if "stratum" in data.columns:  # models compared within one prompt type
        where = [w if not isinstance(t, str) else f"{w}, {t}"
                 for w, t in zip(where, data["stratum"], strict=True)]  # fmt: skip
    data["label"] = [f"{w}: {b} − {a} ({s})" for w, a, b, s in
                     zip(where, data["a"], data["b"], data["source"], strict=True)]  # fmt: skip
    data = _errors(data, "estimate", "ci_low", "ci_high")
    fig = go.Figure(
        go.Scatter(
            x=data["estimate"], y=data["label"], mode="markers", marker={"size": 10},
            error_x={"type": "data", "array": data["err_plus"], "arrayminus": data["err_minus"]},
            customdata=data[["p", "p_adjusted", "n_pairs"]],
            hovertemplate="%{y}<br>%{x:.3f}<br>p=%{customdata[0]:.4f}, adjusted "
            "%{customdata[1]:.4f}<br>%{customdata[2]} pairs<extra></extra>",
        )
    )  # fmt: skip
    fig.add_vline(x=0, line_dash="dot", line_color="grey")
    fig.update_layout(title=title, yaxis={"autorange": "reversed"}, height=200 + 28 * len(data))
    return fig
