"""Analysis page: paired tests, rates over prompts, architecture vs scale, and power planning.

Every number comes from dialogues.analyse.report (the path `dialogues analyse` prints) and
dialogues.analyse.power (`dialogues plan-power`); the page only chooses and shows.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd
import streamlit as st

from dialogues.analyse import frames, power, report
from dialogues.analyse.frames import Filters
from dialogues.domain import labels
from dialogues.store import connect
from dialogues.store.queries import run_label
from dialogues.ui import common

METRICS = {"deflection": "Deflection (positive labels)", "engagement": "Engagement",
           "sei": "SEI (complete batteries)"}  # fmt: skip
CORRECTIONS = {"holm": "Holm", "bh": "Benjamini–Hochberg"}


@st.cache_data(ttl=30, show_spinner=False)
def options(path: str) -> dict[str, list[Any]]:
    """Choices for the filters."""
    with connect(Path(path)) as db:
        return frames.filter_options(db)


@st.cache_data(ttl=300, max_entries=16, show_spinner="Analysing …")
def analysed(path: str, filters: Filters, options: report.Options) -> dict[str, Any]:
    """The analysis for a choice of filters and options."""
    return report.archive_analysis(Path(path), filters, options, labels.resolve())


def choose(opts: dict[str, list[Any]]) -> tuple[Filters, report.Options]:
    """The sidebar: what to analyse and how."""
    side = st.sidebar
    side.header("Analyse")
    runs = {r["id"]: run_label(r) for r in opts["runs"]}
    run_ids = side.multiselect("Runs", list(runs), format_func=lambda r: runs[r], key="an_runs")
    set_ids = side.multiselect("Prompt sets", opts["set_ids"], key="an_sets")
    sources = side.multiselect("Annotators and taggers", opts["sources"], key="an_sources")
    metric = side.radio("Outcome", list(METRICS), format_func=METRICS.__getitem__, key="an_metric")
    conditions = ["(cold, if present)", *opts["conditions"]]
    reference = side.selectbox("Reference condition", conditions, key="an_reference")
    correction = side.radio("Correction", list(CORRECTIONS), format_func=CORRECTIONS.__getitem__,
                            horizontal=True, key="an_correction")  # fmt: skip
    filters = Filters(tuple(run_ids), tuple(set_ids), (), tuple(sources))
    chosen = report.Options(metric, None if reference == conditions[0] else reference, correction)
    return filters, chosen


def show_results(result: dict[str, Any], filters: Filters) -> None:
    """Contrasts, rates and the architecture model, each with its table."""
    tables = report.tables(result)
    figs = report.figures(result)
    st.subheader("Differences b − a on matched answers")
    st.caption("Conditions within a model are matched by prompt × repeat, models by prompt × "
               "repeat × condition. Binary outcome: exact McNemar; SEI: paired t. Intervals "
               "are over prompts (or pairs); p is adjusted per family of comparisons. Where a "
               "test cannot be run, `reason` says why.")  # fmt: skip
    st.plotly_chart(figs["contrasts"], key="an_fig_contrasts")
    st.dataframe(tables["contrasts"], hide_index=True, key="an_contrasts")
    st.subheader("Rates per prompt set" if result["metric"] != "sei" else "SEI per group")
    st.plotly_chart(figs["rates"], key="an_fig_rates")
    st.dataframe(tables["rates"], hide_index=True, key="an_rates")
    st.subheader("Architecture vs scale")
    arch = result["architecture"]
    st.caption(arch["method"])
    if arch["identifiable"]:
        st.dataframe(tables["architecture_tests"], hide_index=True, key="an_arch_tests")
        st.dataframe(tables["architecture_terms"], hide_index=True, key="an_arch_terms")
    else:
        st.info(f"Not answered: {arch['reason']}")
    for note in arch.get("notes", []):
        st.caption(common.escape(note))
    st.download_button("Report (markdown)", report.markdown(result, filters), "report.md",
                       "text/markdown", key="an_md", on_click="ignore")  # fmt: skip


def planner() -> None:
    """Power planning for the paired condition test."""
    st.subheader("Plan: repeats for 80% power")
    cols = st.columns(4)
    baseline = cols[0].number_input("Baseline rate", 0.01, 0.99, 0.2, 0.05, key="an_base")
    effect = cols[1].number_input("Effect (b − a)", -0.9, 0.9, 0.15, 0.05, key="an_effect")
    prompts = cols[2].number_input("Prompts", 2, 5000, 30, key="an_prompts")
    sd = cols[3].number_input("Prompt sd (logit)", 0.0, 5.0, 1.0, 0.25, key="an_sd")
    if st.button("Simulate", key="an_simulate"):
        with common.user_errors():
            plan = power.plan(baseline, effect, prompts=int(prompts), prompt_sd=sd, n_sims=500)
        st.dataframe(pd.DataFrame(plan.rows), hide_index=True, key="an_plan")
        st.write(plan.reason or f"Repeats needed: **{plan.needed}** (500 simulations each).")


def render() -> None:
    path = common.show_archive()
    st.title("Analysis")
    with common.user_errors():
        opts = options(str(path))
    filters, chosen = choose(opts)
    with common.user_errors():
        result = analysed(str(path), filters, chosen)
    if not result["contrasts"] and not result["rates"]:
        st.info("Nothing to analyse yet: run a prompt set and label or tag its answers.")
    else:
        show_results(result, filters)
    planner()


render()
