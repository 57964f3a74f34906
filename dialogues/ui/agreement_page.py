"""Agreement page: annotator pairs, taggers against a reference, false positives, divergence."""

from __future__ import annotations

from typing import Any

import pandas as pd
import streamlit as st

from dialogues.analyse import agreement, agreement_report
from dialogues.annotate import annotations as ann
from dialogues.annotate import overlap
from dialogues.domain import labels as label_sets
from dialogues.store import connect, queries, transaction
from dialogues.ui import common

N_BOOT = 500


@st.cache_data(ttl=30, show_spinner="Computing agreement …")
def report(
    path: str,
    reference: str,
    target: str,
    n_boot: int,
    where: tuple[tuple[str, ...], ...],
    stamp: int,
) -> dict[str, Any]:
    """The agreement report for the chosen sets and runs (cached briefly; `stamp` refreshes)."""
    with connect(path) as db:  # type: ignore[arg-type]
        return agreement_report.agreement_report(
            db, reference, target=target, labels=label_sets.resolve(), n_boot=n_boot,
            with_divergence=True, set_ids=where[0], run_ids=where[1])  # fmt: skip


def num(value: Any) -> str:
    """A figure for people: two decimals, a dash when there is none."""
    return "—" if value is None else f"{value:.2f}"


def ci(row: dict[str, Any], name: str) -> str:
    low, high = row.get(f"{name}_ci") or [None, None]
    return "" if low is None or high is None else f"{low:.2f}–{high:.2f}"


def small(n: int) -> str:
    """A warning beside a figure counted on too few items to lean on."""
    return f"only {n} items: interval not meaningful" if n < agreement.SMALL_N else ""


def pairs_table(rows: list[dict[str, Any]]) -> pd.DataFrame:
    return pd.DataFrame([{**({"family": r["family"]} if "family" in r else {}), "a": r["a"],
                          "b": r["b"], "n": r["n"], "kappa": num(r["kappa"]),
                          "reading": agreement.kappa_reading(r["kappa"]),
                          "kappa 95%": ci(r, "kappa"), "agreement": num(r["percent"]),
                          "agree 95%": ci(r, "percent"), "note": small(r["n"])} for r in rows])  # fmt: skip


def tagger_table(rows: list[dict[str, Any]]) -> pd.DataFrame:
    return pd.DataFrame([{**({"family": r["family"]} if "family" in r else {}),
                          "tagger": r["tagger"], "n": r["n"], "kappa": num(r["kappa"]),
                          "reading": agreement.kappa_reading(r["kappa"]),
                          "kappa 95%": ci(r, "kappa"), "precision": num(r["precision"]),
                          "precision 95%": ci(r, "precision"), "recall": num(r["recall"]),
                          "recall 95%": ci(r, "recall"), "F1": num(r["f1"]), "F1 95%": ci(r, "f1"),
                          "note": small(r["n"])} for r in rows])  # fmt: skip


def small_warning(rows: list[dict[str, Any]]) -> None:
    """Say plainly when a figure stands on too few items."""
    few = [r for r in rows if r["n"] < agreement.SMALL_N]
    if few:
        st.warning(f"{len(few)} of these rows rest on fewer than {agreement.SMALL_N} items: "
                   "κ and its interval can look perfect by luck. Code more shared items "
                   "(with 'Set the shared set' above) before quoting them.")  # fmt: skip


def overlap_section(path: Any, target: str) -> None:
    """How much overlap exists, and the researcher's control over the shared set."""
    with common.user_errors(), connect(path) as db:
        cov = overlap.coverage(db, target)
        sets = queries.filter_options(db)["set_ids"]
    if cov.design_size is None:
        st.markdown("**Overlap:** no shared set is designed; each annotator's queue is "
                    f"shuffled apart. {cov.multiply_coded} responses have labels from two or "
                    "more annotators.")  # fmt: skip
    else:
        st.markdown(f"**Overlap:** a shared set of {cov.shared} responses (chosen "
                    f"{cov.design_size}) comes first in every annotator's queue; "
                    f"{cov.multiply_coded} responses have labels from two or more annotators.")  # fmt: skip
    if cov.done and cov.shared:
        st.caption("Shared items done: " + common.escape(
            ", ".join(f"{who} {n}/{cov.shared}" for who, n in cov.done.items())))  # fmt: skip
    if cov.pairs:
        st.caption("Items in common: " + common.escape(
            ", ".join(f"{a} & {b} {n}" for (a, b), n in cov.pairs.items())))  # fmt: skip
    with st.popover("Set the shared set"):
        size = st.number_input("Items every annotator codes", 0, 100_000,
                               cov.design_size or 0, key="agr_overlap_size")  # fmt: skip
        from_sets = st.multiselect("Drawn from prompt sets (empty: all)", sets,
                                   key="agr_overlap_sets")  # fmt: skip
        if st.button("Save overlap design", key="agr_overlap_save"):
            with common.user_errors(), transaction(path) as db:
                overlap.set_design(db, int(size), tuple(from_sets))
            st.rerun()


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
        options = queries.filter_options(db)
    refs = [s for s in found if not s.startswith(ann.TAGGER_PREFIX)]
    if not refs:
        st.info("No human labels yet: annotate, or `dialogues import xstest FILE --model NAME`.")
        return
    left, mid, right = st.columns(3)
    reference = left.selectbox("Reference", refs, key="agr_reference", persist_state="session",
                               index=refs.index(ann.ADJUDICATED) if ann.ADJUDICATED in refs else 0)  # fmt: skip
    target = mid.radio("Labels of", list(ann.TARGETS), horizontal=True, key="agr_target")
    n_boot = right.number_input("Bootstrap resamples", 0, 5000, N_BOOT, 100, key="agr_boot")
    runs = {r["id"]: queries.run_label(r) for r in options["runs"]}
    left, right = st.columns(2)
    set_ids = left.multiselect("Prompt sets", options["set_ids"], key="agr_sets",
                               persist_state="session", help="Empty means all, pooled.")  # fmt: skip
    run_ids = right.multiselect("Runs", list(runs), format_func=runs.__getitem__,
                                key="agr_runs", persist_state="session")  # fmt: skip
    with common.user_errors():
        rep = report(str(path), reference, target, int(n_boot),
                     (tuple(set_ids), tuple(run_ids)), 0)  # fmt: skip
    pairs, taggers, fps, div = st.tabs(
        ["Annotators", "Taggers", "False positives", "Thinking vs answer"]
    )
    with pairs:
        overlap_section(path, target)
        small_warning(rep["pairs"])
        for r in rep["pairs"]:  # in words first, for people who do not read kappa tables
            st.markdown(common.escape(
                f"{r['a']} and {r['b']}: κ {num(r['kappa'])}, "
                f"{agreement.kappa_reading(r['kappa'])} agreement, on {r['n']} items"))  # fmt: skip
        st.dataframe(pairs_table(rep["pairs"]), hide_index=True)
        fleiss = rep["fleiss_kappa"]
        pooled = (
            ""
            if len(set_ids) == 1
            else " Pooled over the prompt sets shown; pick one to keep unrelated sets apart."
        )
        st.caption(f"Fleiss' kappa {num(fleiss)} ({agreement.kappa_reading(fleiss)}), "
                   f"Krippendorff's alpha {num(rep['krippendorff_alpha'])} (human annotators; "
                   f"'adjudicated' is a reference, not a rater).{pooled} Readings after "
                   "Landis & Koch (1977): below 0 poor, to 0.20 slight, 0.40 fair, 0.60 "
                   "moderate, 0.80 substantial, above almost perfect.")  # fmt: skip
        st.subheader("By model family")
        st.dataframe(pairs_table(rep["by_family"]["pairs"]), hide_index=True)
    with taggers:
        st.caption(f"Against {reference}; positive = {' or '.join(rep['positive'])}.")
        small_warning(rep["taggers"])
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
