"""Annotate page: a named annotator works through a (blind) queue of responses, one at a time."""

from __future__ import annotations

from typing import Any

import streamlit as st

from dialogues.annotate import annotations as ann
from dialogues.domain import instruments, sei
from dialogues.domain import labels as label_sets
from dialogues.store import connect
from dialogues.ui import common

KIND_TITLES = {"primary": "Markers", "secondary": "Secondary markers", "anti": "Anti-markers"}


def session_setup() -> tuple[str, bool, ann.QueueFilter]:
    """Annotator, blind mode and queue filters, from the sidebar."""
    side = st.sidebar
    side.header("Annotator")
    name = side.text_input("Your name", key="ann_name").strip()
    blind = side.toggle("Blind mode", value=True, key="ann_blind",
                        help="Hide the model and run, and shuffle the queue for you.")  # fmt: skip
    target = side.radio("Judge", list(ann.TARGETS), key="ann_target", horizontal=True,
                        format_func=lambda t: "the answer" if t == "answer" else "the thinking")  # fmt: skip
    with connect(common.archive()) as db:
        options = ann.queue_options(db, blind=blind)
    side.header("Queue")
    sets = side.multiselect("Prompt sets", options["set_ids"], key="ann_sets")
    keys = side.multiselect("Prompts / probes", options["prompt_keys"], key="ann_prompts")
    models: list[str] = []
    if not blind:  # a model filter would tell a blind annotator whose answers these are
        models = side.multiselect("Models", options["models"], key="ann_models")
    return name, blind, ann.QueueFilter(tuple(sets), tuple(keys), tuple(models), (), target)


def show_context(item: ann.Item) -> None:
    """The conversation up to this turn, as plain text."""
    if not item.context:
        return
    with st.expander(f"Conversation so far ({len(item.context)} messages)",
                     expanded=len(item.context) <= 2):  # fmt: skip
        for turn in item.context:
            st.caption(turn.who)
            common.plain(turn.content)


def show_response(item: ann.Item, target: str) -> None:
    """The text being judged; the other text folded away."""
    meta = " · ".join(x for x in (item.set_id, item.prompt_key, item.phase) if x)
    if item.model:
        meta += f" · model {item.model} · run {item.run_id} · condition {item.condition}"
    st.caption(common.escape(meta))
    if target == "answer":
        st.subheader("Response")
        common.plain(item.content)
        if item.reasoning:
            with st.expander("Reasoning (thinking text)"):
                common.plain(item.reasoning)
    else:
        st.subheader("Thinking")
        common.plain(item.reasoning or "")
        with st.expander("The answer that followed"):
            common.plain(item.content or "(empty)")


def choose_instrument() -> instruments.Instrument:
    """The rubric instrument, from the sidebar (the SEI unless the study picks another)."""
    shipped = [p.stem for p in instruments.available()]
    default = shipped.index(instruments.DEFAULT) if instruments.DEFAULT in shipped else 0
    chosen = st.sidebar.selectbox("Rubric instrument", shipped, index=default, key="ann_instrument",
                                  help="Files in prompts/instruments/; saved with each judgement.")  # fmt: skip
    return instruments.load(chosen)


def rubric_controls(item: ann.Item, prior: dict[str, Any], key: str) -> dict[str, int]:
    """One control per rubric dimension of the instrument, each score's anchor text beside it."""
    scores: dict[str, int] = {}
    if not item.dimensions:
        return scores
    st.markdown(f"**Rubric — {item.instrument_id}, prompt {item.prompt_key}** "
                "(score low when unsure)")  # fmt: skip
    same = prior.get("instrument_id") in (None, item.instrument_id)  # None: before m006, SEI
    old = (prior.get("rubric") or {}) if same else {}
    for dim in item.dimensions:
        choice = st.radio(
            dim.name, list(item.scores), key=f"{key}-{item.instrument_id}-{dim.key}",
            index=old[dim.key] if dim.key in old else None,
            format_func=lambda s, d=dim: f"{s} — {d.anchors[s]}",  # type: ignore[misc]
        )  # fmt: skip
        if choice is not None:
            scores[dim.key] = int(choice)
    return scores


def checklist(
    title: str, items: list[tuple[str, str, str]], chosen: set[str], key: str
) -> list[str]:
    """Checkboxes (key, name, description); returns the keys ticked."""
    st.markdown(f"**{title}**")
    return [k for k, name, desc in items
            if st.checkbox(name, value=k in chosen, help=desc, key=f"{key}-{k}")]  # fmt: skip


def form(item: ann.Item, target: str, prior: dict[str, Any], ls: label_sets.LabelSet) -> Any:
    """The judgement form; returns an Annotation when saved."""
    key = f"ann-{item.message_id}-{target}"
    with st.form(key):
        label = st.radio("Label", list(ls.labels), key=f"{key}-label", horizontal=False,
                         index=ls.labels.index(prior["label"]) if prior.get("label") in ls.labels
                         else None, format_func=lambda lab: f"{lab} — {ls.describe(lab)}")  # fmt: skip
        rubric = rubric_controls(item, prior, key) if target == "answer" else {}
        markers: list[str] = []
        for kind in ("primary", "secondary", "anti"):
            group = [(m.key, m.name, m.description) for m in sei.MARKERS if m.kind == kind]
            markers += checklist(KIND_TITLES[kind], group, set(prior.get("markers") or []),
                                 f"{key}-marker")  # fmt: skip
        evidence_items = [(i.key, i.name, i.description)
                          for i in sei.EVIDENCE_CATEGORIES + sei.LINGUISTIC_INDICATORS]  # fmt: skip
        evidence = checklist("Evidence", evidence_items, set(prior.get("evidence") or []),
                             f"{key}-evidence")  # fmt: skip
        note = st.text_area("Note", value=prior.get("note") or "", key=f"{key}-note")
        if not st.form_submit_button("Save and next", type="primary"):
            return None
    return ann.Annotation(item.message_id, "", target, label, rubric, markers, evidence, note,
                          instrument=item.instrument_id)  # fmt: skip


def render() -> None:
    path = common.show_archive()
    st.title("Annotate")
    with common.user_errors():
        ls = label_sets.resolve()
        name, blind, filt = session_setup()
        inst = choose_instrument()
    if not name:
        st.info("Enter your name in the sidebar to start; your labels are saved under it.")
        return
    skip = tuple(st.session_state.setdefault("ann_skip", []))
    with common.user_errors(), connect(path) as db:
        status = ann.queue_status(db, name, filt, blind=blind, skip=skip)
        editing = st.session_state.get("ann_edit")
        current_id = editing or status.next_id
        item = ann.item(db, current_id, blind=blind, instrument=inst) if current_id else None
        prior = {}
        if item is not None:
            mine = ann.current(db, message_ids=[item.message_id], annotator=name,
                               target=filt.target)  # fmt: skip
            prior = mine[0] if mine else {}
    st.progress(status.done / status.total if status.total else 1.0,
                text=f"{status.done} of {status.total} done")  # fmt: skip
    if item is None:
        st.success("Nothing left in this queue. Change the filters or the target for more.")
        return
    show_context(item)
    show_response(item, filt.target)
    saved = form(item, filt.target, prior, ls)
    if saved is not None:
        saved.annotator, saved.blind, saved.origin = name, item.blind and not filt.models, "app"
        with common.user_errors():
            ann.save_to(path, saved, ls)
        st.session_state["ann_last"] = item.message_id
        st.session_state.pop("ann_edit", None)
        st.rerun()
    left, right = st.columns(2)
    if left.button("Skip for now", key="ann_skip_btn"):
        st.session_state["ann_skip"] = [*skip, item.message_id]
        st.session_state.pop("ann_edit", None)
        st.rerun()
    last = st.session_state.get("ann_last")
    if last and not editing and right.button("Edit my last judgement", key="ann_back"):
        st.session_state["ann_edit"] = last
        st.rerun()
    if prior:
        st.caption(f"Editing: your earlier judgement ({prior['label'] or 'no label'}) stays in the "
                   "history; saving adds a new version.")  # fmt: skip


render()
