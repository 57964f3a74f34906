"""Compare page: scores with their intervals and inputs, and the comparison charts.

Every number comes from dialogues.analyse.compare, the same path `dialogues scores` prints, and
every chart offers its figure and the exact table behind it for download. A rubric instrument
other than the SEI puts its own totals and heatmap where the SEI's are (`scores --instrument`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import pandas as pd
import streamlit as st

from dialogues.analyse import charts, compare, frames
from dialogues.analyse.frames import Filters
from dialogues.annotate import autotag, learned, tagging
from dialogues.domain import instruments
from dialogues.domain import labels as label_sets
from dialogues.domain.errors import UserError
from dialogues.store import connect
from dialogues.store.queries import run_label
from dialogues.ui import common

AUTO = "(most XSTest labels)"
KEEP: Literal["session"] = "session"  # filters survive a visit to another page
SCALE_METRICS = {"engagement_rate": "Engagement rate", "sei": "SEI"}
TAGGERS = {"heuristic": "Heuristic (rules)",
           "learned": "Learned (trained on people's labels)"}  # fmt: skip


@st.cache_data(ttl=30, show_spinner=False)
def options(path: str, stamp: tuple[int, ...]) -> dict[str, list[Any]]:
    """Choices for the filters (cached until the archive file changes)."""
    with connect(Path(path)) as db:
        return frames.filter_options(db)


@st.cache_data(ttl=300, max_entries=16, show_spinner="Scoring …")
def scored(
    path: str, stamp: tuple[int, ...], filters: Filters, refusal: str | None
) -> tuple[compare.Frames, list[dict[str, Any]]]:
    """Frames and score rows for a choice of filters (cached until the archive changes)."""
    data = compare.load(Path(path), filters, refusal)
    return data, compare.score_rows(data)


@st.cache_data(ttl=300, max_entries=16, show_spinner="Scoring …")
def instrument_scored(
    path: str, stamp: tuple[int, ...], filters: Filters, ref: str
) -> compare.InstrumentScores:
    """One instrument's totals and dimension means (cached until the archive changes)."""
    return compare.load_instrument(Path(path), ref, filters)


def stamp(path: Path) -> tuple[int, ...]:
    """The archive's and its write-ahead log's modification times: a cache key that changes
    whenever anything is written."""
    files = (path, path.with_name(path.name + ".wal"))
    return tuple(f.stat().st_mtime_ns if f.exists() else 0 for f in files)


def choose_filters(opts: dict[str, list[Any]]) -> tuple[Filters, str | None, str, bool, str]:
    """The sidebar: runs, prompt sets, conditions, label sources, and chart options."""
    side = st.sidebar
    side.header("Filter")
    runs = {r["id"]: run_label(r) for r in opts["runs"]}
    run_ids = side.multiselect(
        "Runs", list(runs), format_func=lambda r: runs[r], key="cmp_runs", persist_state=KEEP
    )
    set_ids = side.multiselect("Prompt sets", opts["set_ids"], key="cmp_sets", persist_state=KEEP)
    conditions = side.multiselect(
        "Conditions", opts["conditions"], key="cmp_conditions", persist_state=KEEP
    )
    sources = side.multiselect(
        "Annotators and taggers", opts["sources"], key="cmp_sources", persist_state=KEEP,
        help="human:NAME is a person, adjudicated the agreed label, tagger:ID an automatic "
        "tagger. Empty means all, each shown apart.",
    )  # fmt: skip
    target = side.radio(
        "Labels of", ["answer", "reasoning"], horizontal=True, key="cmp_target", persist_state=KEEP
    )
    side.header("Charts")
    instrument = common.pick_instrument(
        "cmp_instrument", "The SEI, or another instrument's totals and heatmap in place of "
        "the SEI's.", keep=True,
    )  # fmt: skip
    refusal = side.selectbox(
        "Refusal labels from", [AUTO, *opts["sources"]], key="cmp_refusal", persist_state=KEEP,
        help="XSTest and alignment-tax refusal rates count one source's labels.",
    )  # fmt: skip
    metric = side.radio("Scale chart shows", list(SCALE_METRICS), key="cmp_metric",
                        persist_state=KEEP,
                        format_func=SCALE_METRICS.__getitem__)  # fmt: skip
    png = side.checkbox(
        "Offer PNG downloads (renders with a local Chrome)", key="cmp_png", persist_state=KEEP
    )
    filters = Filters(tuple(run_ids), tuple(set_ids), tuple(conditions), tuple(sources),
                      target=target)  # fmt: skip
    return filters, None if refusal == AUTO else refusal, metric, png, instrument


def downloads(key: str, table: pd.DataFrame, fig: Any = None, png: bool = False) -> None:
    """Download buttons: the table as CSV and, for a chart, the figure as HTML (and PNG)."""
    cols = st.columns(3)
    cols[0].download_button("Data (CSV)", compare.csv_bytes(table), f"{key}.csv", "text/csv",
                            key=f"cmp_csv_{key}", on_click="ignore")  # fmt: skip
    if fig is None:
        return
    # Built only when clicked: the HTML carries plotly.js (about 4.8 MB) so it opens offline.
    cols[1].download_button("Figure (HTML)", lambda: charts.figure_html(fig), f"{key}.html",
                            "text/html", key=f"cmp_html_{key}", on_click="ignore")  # fmt: skip
    if not png:
        return
    if png_available():
        # Rendered on click: kaleido takes a couple of seconds per figure.
        cols[2].download_button("Figure (PNG)", lambda: charts.figure_png(fig) or b"",
                                f"{key}.png", "image/png", key=f"cmp_png_{key}",
                                on_click="ignore")  # fmt: skip
    else:
        cols[2].caption("PNG needs kaleido and a local Chrome/Chromium; use the HTML.")


@st.cache_resource(show_spinner="Checking PNG export …")
def png_available() -> bool:
    """Whether kaleido can render here (asked once per server, with a tiny figure)."""
    return charts.figure_png(charts.empty_figure("check"), scale=0.1) is not None


def show_scores(rows: list[dict[str, Any]], data: compare.Frames, sei: bool = True) -> None:
    """The scores table, SEI C/W, and where people disagree, each person's value and the mean."""
    st.subheader("Scores per model × condition × source")
    st.caption("Rates are shares of labelled responses with 95% intervals over prompts (a "
               "cluster bootstrap; `ci_method` and `n_clusters` say how, `prompt_sets` what a "
               "rate pools over). SEI is the mean of complete batteries over repeats with a "
               "t-interval, its coverage and inputs beside it (mean probe total /32, net "
               "markers /10, evidence /15); a judge's SEI is probe-only and has no class; a "
               "class whose interval crosses a threshold reads 'uncertain'.")  # fmt: skip
    pooled = {tuple(r.get("prompt_sets") or []) for r in rows if r.get("n")}
    if len(pooled) > 1:
        st.warning("These rows rate different prompt sets: their rates are not comparable "
                   "as they stand. Filter to one prompt set, or compare on the Analysis page, "
                   "which pairs answers to the same prompts.")  # fmt: skip
    st.dataframe(compare.scores_table(rows), hide_index=True, key="cmp_scores")
    st.caption("n counts the responses a source labelled; n_unlabelled those it has not.")
    downloads("scores", pd.DataFrame(rows))
    cw = compare.cold_warm(data.rubric) if sei else pd.DataFrame()
    if not cw.empty:
        st.subheader("SEI C/W")
        st.caption("Delta = warm − cold; < 1.0 architecturally enabled, 1.0–2.5 moderate "
                   "relationship response, > 2.5 relationship-dependent.")  # fmt: skip
        st.dataframe(cw, hide_index=True, key="cmp_cw")
        downloads("sei_cold_warm", cw)
    spread = compare.annotator_spread(rows)
    if not spread.empty:
        st.subheader("Where annotators overlap")
        st.caption("Each person's value for the same model and condition, their mean and range.")
        st.dataframe(spread, hide_index=True, key="cmp_spread")
        downloads("annotators", spread)


def show_instrument(found: compare.InstrumentScores) -> None:
    """An instrument's mean totals with their intervals, or how to get some."""
    inst = found.instrument
    st.subheader(f"{inst.title}: totals")
    if not found.rows:
        st.info(charts.empty_instrument(inst))
        return
    st.caption("Mean reply total per model × condition × source. A reply counts when every "
               "dimension the instrument gives its prompt is scored; each conversation counts "
               "once (the mean of its replies), with a 95% t-interval over conversations cut "
               "to 0–max. Sources: people, adjudication, and judges that scored this "
               "instrument.")  # fmt: skip
    table = compare.instrument_table(found.rows)
    st.dataframe(table, hide_index=True, key="cmp_instrument_totals")
    downloads(f"{inst.id}_scores", pd.DataFrame(found.rows))


def show_chart(chart: compare.Chart, png: bool, beside: pd.DataFrame | None = None) -> None:
    """One chart with its data and downloads; `beside` is a table shown next to it."""
    st.subheader(chart.title)
    if beside is not None and not beside.empty:
        left, right = st.columns([3, 2])
        left.plotly_chart(chart.figure, key=f"cmp_fig_{chart.key}")
        right.caption("SEI inputs (means over repeats)")
        right.dataframe(beside, hide_index=True, key=f"cmp_inputs_{chart.key}")
    else:
        st.plotly_chart(chart.figure, key=f"cmp_fig_{chart.key}")
    with st.expander("Data behind this chart"):
        st.dataframe(chart.table, hide_index=True, key=f"cmp_table_{chart.key}")
    downloads(chart.key, chart.table, chart.figure, png)


def offer_tagging(path: Path, runs: dict[str, str]) -> None:
    """Say when responses have no automatic tag, and tag them here: with the heuristic, or
    with the learned tagger trained on people's labels (as `dialogues tag --auto`)."""
    tagger = tagging.HEURISTIC
    with common.user_errors(), connect(path) as db:
        waiting = autotag.count_untagged(db, tagger)
    done = st.session_state.pop("cmp_tagged", None)
    if done:
        st.success(done)
    if waiting:
        tid = tagging.tagger_id(tagger)
        st.warning(f"{waiting} responses are unlabelled by the automatic tagger (`{tid}`): its "
                   "rates leave them out, so a new run can show n = 1. Tag them here (or run "
                   "`dialogues tag --auto`); people label responses on the Annotate page.")  # fmt: skip
    elif not runs:
        return  # nothing to tag and nothing to train on
    with st.expander("Tag automatically", expanded=bool(waiting)):
        choice = st.radio("Tagger", list(TAGGERS), format_func=TAGGERS.__getitem__,
                          horizontal=True, key="cmp_tagger")  # fmt: skip
        train_on: list[str] = []
        if choice == "learned":
            train_on = st.multiselect(
                "Train on the human labels of", list(runs), format_func=runs.__getitem__,
                key="cmp_train_on", placeholder="every run",
                help="Empty: every run. Replies it trains on get out-of-fold labels, so it is "
                "never scored on its own training data.",
            )  # fmt: skip
            label = "Train and tag"
        else:
            label = f"Tag {waiting} responses now"
        if st.button(label, key="cmp_tag", type="primary",
                     disabled=choice == "heuristic" and not waiting):  # fmt: skip
            tag_now(path, choice, tuple(train_on))


def tag_now(path: Path, choice: str, train_on: tuple[str, ...]) -> None:
    """Train the learned tagger if chosen, then tag with a progress bar; report after a rerun."""
    tagger: tagging.Tagger = tagging.HEURISTIC
    trained = ""
    if choice == "learned":
        try:
            with st.spinner("Training the learned tagger …"):
                found = learned.train_from(path, train_on, labels=label_sets.resolve())
        except UserError as exc:  # too few labels: say how many more, store nothing
            st.error(common.escape(str(exc)))
            return
        tagger, trained = found, found.describe() + ". "
    bar = st.progress(0.0, text="Tagging …")

    def show(target: str, n: int, total: int) -> None:
        bar.progress(n / total, text=f"Tagged {n} of {total} ({target})")

    with common.user_errors():
        (summary,) = autotag.tag_archive(path, tagger, progress=show)
    st.session_state["cmp_tagged"] = trained + (
        f"Tagged {summary.tagged} responses with {summary.tagger} in {summary.seconds:.1f} s"
        + (f"; {summary.failed} failed." if summary.failed else ".")
    )
    st.rerun()


def render() -> None:
    path = common.show_archive()
    st.title("Compare")
    with common.user_errors():
        opts = options(str(path), stamp(path))
    filters, refusal, metric, png, ref = choose_filters(opts)
    offer_tagging(path, {r["id"]: run_label(r) for r in opts["runs"]})
    with common.user_errors():
        data, rows = scored(str(path), stamp(path), filters, refusal)
    if not rows and data.responses is not None and data.responses.empty:
        st.info("Nothing to compare yet: run a prompt set and label some responses.")
        return
    sei = ref == instruments.DEFAULT
    show_scores(rows, data, sei)
    found = None
    if not sei:
        with common.user_errors():
            found = instrument_scored(str(path), stamp(path), filters, ref)
        show_instrument(found)
    if data.refusal_source:
        st.caption(f"Refusal rates use labels from {common.escape(data.refusal_source)}.")
    inputs = compare.sei_inputs(rows)
    for chart in compare.all_charts(data, rows, scale_metric=metric, instrument=found):
        show_chart(chart, png, inputs if chart.key == "sei" else None)


render()
