"""Agreement page: annotator pairs, taggers against a reference, false positives, divergence."""

from __future__ import annotations

from typing import Any

import pandas as pd
import streamlit as st

from dialogues.analyse import agreement_report
from dialogues.annotate import annotations as ann
from dialogues.domain import labels as label_sets
from dialogues.store import connect
from dialogues.ui import common

N_BOOT = 500


@st.cache_data(ttl=30, show_spinner="Computing agreement …")
def report(path: str, reference: str, target: str, n_boot: int, stamp: int) -> dict[str, Any]:
    """The agreement report (cached briefly; `stamp` forces a fresh one)."""
    with connect(path) as db:  # type: ignore[arg-type]
        return agreement_report.agreement_report(db, reference, target=target, labels=label_sets.resolve(),
                                    n_boot=n_boot, with_divergence=True)  # fmt: skip


def ci(row: dict[str, Any], name: str) -> str:
    low, high = row.get(f"{name}_ci") or [None, None]
    return "" if low is None or high is None else f"{low:.3f}–{high:.3f}"


def pairs_table(rows: list[dict[str, Any]]) -> pd.DataFrame:
    return pd.DataFrame([{**({"family": r["family"]} if "family" in r else {}), "a": r["a"],
                          "b": r["b"], "n": r["n"], "percent": r["percent"],
                          "percent 95%": ci(r, "percent"), "kappa": r["kappa"],
                          "kappa 95%": ci(r, "kappa")} for r in rows])  # fmt: skip


def tagger_table(rows: list[dict[str, Any]]) -> pd.DataFrame:
    return pd.DataFrame([{**({"family": r["family"]} if "family" in r else {}),
                          "tagger": r["tagger"], "n": r["n"], "precision": r["precision"],
                          "precision 95%": ci(r, "precision"), "recall": r["recall"],
                          "recall 95%": ci(r, "recall"), "F1": r["f1"], "F1 95%": ci(r, "f1"),
                          "kappa": r["kappa"], "kappa 95%": ci(r, "kappa")} for r in rows])  # fmt: skip


def confusion(row: dict[str, Any]) -> pd.DataFrame:
    labels = row["confusion"]["labels"]
    return pd.DataFrame(row["confusion"]["matrix"], index=[f"ref: {x}" for x in labels],
                        columns=[f"tagger: {x}" for x in labels])  # fmt: skip


def false_positive_list(reference: str, target: str, tagger: str) -> None:
    """Engagement the tagger called deflection or partial; pick one to read it whole."""
    path = common.archive()
    with common.user_errors(), connect(path) as db:
        rows = agreement_report.false_positives(db, tagger, reference, target=target,
                                   labels=label_sets.resolve())  # fmt: skip
    st.caption(f"{len(rows)} responses the reference says engage, tagged as refusing.")
    if not rows:
        return
    chosen = st.dataframe(pd.DataFrame(rows), hide_index=True, on_select="rerun",
                          selection_mode="single-row", key=f"fp-{tagger}")  # fmt: skip
    picked = chosen.selection.rows if chosen else []
    if picked:
        with connect(path) as db:
            item = ann.item(db, rows[picked[0]]["message_id"], blind=False)
        for turn in item.context:
            st.caption(turn.who)
            common.plain(turn.content)
        st.caption("response")
        common.plain(item.content if target == "answer" else item.reasoning or "")


def render() -> None:
    path = common.show_archive()
    st.title("Agreement")
    with common.user_errors(), connect(path) as db:
        found = agreement_report.sources(db)
    refs = [s for s in found if not s.startswith(ann.TAGGER_PREFIX)]
    if not refs:
        st.info("No human labels yet: annotate, or `dialogues import xstest FILE --model NAME`.")
        return
    left, mid, right = st.columns(3)
    reference = left.selectbox("Reference", refs, key="agr_reference",
                               index=refs.index(ann.ADJUDICATED) if ann.ADJUDICATED in refs else 0)  # fmt: skip
    target = mid.radio("Labels of", list(ann.TARGETS), horizontal=True, key="agr_target")
    n_boot = right.number_input("Bootstrap resamples", 0, 5000, N_BOOT, 100, key="agr_boot")
    with common.user_errors():
        rep = report(str(path), reference, target, int(n_boot), 0)
    pairs, taggers, fps, div = st.tabs(
        ["Annotators", "Taggers", "False positives", "Thinking vs answer"]
    )
    with pairs:
        st.dataframe(pairs_table(rep["pairs"]), hide_index=True)
        st.caption(f"Fleiss' kappa {rep['fleiss_kappa']}, Krippendorff's alpha "
                   f"{rep['krippendorff_alpha']} (human annotators; 'adjudicated' is a reference, "
                   "not a rater).")  # fmt: skip
        st.subheader("By model family")
        st.dataframe(pairs_table(rep["by_family"]["pairs"]), hide_index=True)
    with taggers:
        st.caption(f"Against {reference}; positive = {' or '.join(rep['positive'])}.")
        st.dataframe(tagger_table(rep["taggers"]), hide_index=True)
        for row in rep["taggers"]:
            with st.expander(f"Confusion matrix: {row['tagger']}"):
                st.dataframe(confusion(row))
        st.subheader("By model family")
        st.dataframe(tagger_table(rep["by_family"]["taggers"]), hide_index=True)
    with fps:
        names = [r["tagger"] for r in rep["taggers"]] + [s for s in refs if s != reference]
        if names:
            who = st.selectbox("Tagger or annotator", names, key="agr_fp_source")
            false_positive_list(reference, target, who)
    with div:
        st.caption("Per model and source: thinking and answer labelled by the same source.")
        st.dataframe(pd.DataFrame(rep.get("divergence", [])), hide_index=True)


render()
