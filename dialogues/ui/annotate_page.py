"""Annotate page: a named annotator works through a (blind) queue of responses, one at a time.

Keyboard: 1, 2, 3 … choose a label, S saves and moves on, K skips, P and N step through the
annotator's own earlier judgements. Everything this page remembers is kept per annotator name,
so switching the name never opens another person's work.
"""

from __future__ import annotations

import hashlib
from typing import Any, Literal

import streamlit as st

from dialogues.annotate import active
from dialogues.annotate import annotations as ann
from dialogues.domain import instruments, sei
from dialogues.domain import labels as label_sets
from dialogues.store import connect
from dialogues.ui import common

KIND_TITLES = {"primary": "Markers", "secondary": "Secondary markers", "anti": "Anti-markers"}
KEEP: Literal["session"] = (
    "session"  # annotator name, mode and queue filters survive a visit to another page
)


def session_setup() -> tuple[str, bool, ann.QueueFilter]:
    """Annotator, blind mode and queue filters, from the sidebar."""
    side = st.sidebar
    side.header("Annotator")
    name = side.text_input("Your name", key="ann_name", persist_state=KEEP).strip()
    blind = side.toggle("Blind mode", value=True, key="ann_blind", persist_state=KEEP,
                        help="Hide the model and run, and shuffle the queue for you.")  # fmt: skip
    target = side.radio("Judge", list(ann.TARGETS), key="ann_target", horizontal=True,
                        persist_state=KEEP,
                        format_func=lambda t: "the answer" if t == "answer" else "the thinking")  # fmt: skip
    with connect(common.archive()) as db:
        options = ann.queue_options(db, blind=blind)
        required = 0 if blind else ann.blind_only_count(db, target)
    if required:
        side.caption(f"Responses of runs that require blind annotation ({required}) are only "
                     "in the blind queue.")  # fmt: skip
    side.header("Queue")
    sets = side.multiselect("Prompt sets", options["set_ids"], key="ann_sets", persist_state=KEEP)
    keys = side.multiselect("Prompts / probes", options["prompt_keys"], key="ann_prompts",
                            persist_state=KEEP)  # fmt: skip
    models: list[str] = []
    if not blind:  # a model filter would tell a blind annotator whose answers these are
        models = side.multiselect("Models", options["models"], key="ann_models",
                                  persist_state=KEEP)  # fmt: skip
    return name, blind, ann.QueueFilter(tuple(sets), tuple(keys), tuple(models), (), target)


def mine(name: str, target: str) -> dict[str, Any]:
    """This annotator's own page state (skipped items, the judgement open for editing)."""
    people: dict[tuple[str, str], dict[str, Any]] = st.session_state.setdefault("ann_people", {})
    return people.setdefault((name, target), {"skip": [], "edit": None})


def show_context(item: ann.Item) -> None:
    """The conversation up to this turn, as plain text; the count is of the turns shown (in
    blind mode, never the warm-up turns the item leaves out)."""
    if not item.context:
        return
    n = len(item.context)
    with st.expander(f"Conversation so far ({n} message{'' if n == 1 else 's'})",
                     expanded=n <= 2):  # fmt: skip
        for turn in item.context:
            st.caption(turn.who)
            common.prose(turn.content)


def show_response(item: ann.Item, target: str) -> None:
    """The text being judged; the other text folded away."""
    meta = " · ".join(x for x in (item.set_id, item.prompt_key, item.phase) if x)
    if item.model:
        meta += f" · model {item.model} · run {item.run_id} · condition {item.condition}"
    st.caption(common.escape(meta))
    if target == "answer":
        st.subheader("Response")
        common.prose(item.content)
        if item.reasoning:
            with st.expander("Reasoning (thinking text)"):
                common.prose(item.reasoning)
    else:
        st.subheader("Thinking")
        common.prose(item.reasoning or "")
        with st.expander("The answer that followed"):
            common.prose(item.content or "(empty)")


def choose_instrument() -> instruments.Instrument:
    """The rubric instrument, from the sidebar (the SEI unless the study picks another)."""
    chosen = common.pick_instrument(
        "ann_instrument", "Files in prompts/instruments/; saved with each judgement."
    )
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


def label_buttons(ls: label_sets.LabelSet, prior: dict[str, Any], key: str) -> str | None:
    """One button per label, keys 1, 2, 3 …; the chosen one is highlighted."""
    state = f"{key}-label"
    if state not in st.session_state:
        st.session_state[state] = prior.get("label") if prior.get("label") in ls.labels else None
    st.markdown("**Label** (keys " + ", ".join(str(i + 1) for i in range(len(ls.labels))) + ")")
    cols = st.columns(len(ls.labels))
    for i, (col, lab) in enumerate(zip(cols, ls.labels, strict=True)):
        chosen = st.session_state[state] == lab
        shortcut = str(i + 1) if i < 9 else None
        if col.button(f"{lab}", key=f"{key}-pick-{lab}", help=ls.describe(lab),
                      type="primary" if chosen else "secondary", shortcut=shortcut,
                      width="stretch"):  # fmt: skip
            st.session_state[state] = lab
            st.rerun()
    label = st.session_state[state]
    return str(label) if label is not None else None


def sei_controls(item: ann.Item, target: str, prior: dict[str, Any], key: str) -> tuple[
    dict[str, int], list[str], list[str]
]:  # fmt: skip
    """Rubric (where the chosen instrument scores this prompt), markers and evidence (SEI probes)."""
    if not item.dimensions and item.probe is None:
        what = ("The SEI rubric and markers apply only to answers to the SEI probes"
                if item.instrument_id == "sei" else
                f"The {item.instrument_id} rubric does not score this prompt")  # fmt: skip
        st.caption(f"{what}; this response takes a label and a note.")
        return {}, [], []
    markers: list[str] = []
    evidence: list[str] = []
    with st.expander("Rubric, markers and evidence", expanded=target == "answer"):
        rubric = rubric_controls(item, prior, key) if target == "answer" else {}
        if item.probe is None:  # markers and evidence belong to the SEI battery
            return rubric, markers, evidence
        for kind in ("primary", "secondary", "anti"):
            group = [(m.key, m.name, m.description) for m in sei.MARKERS if m.kind == kind]
            markers += checklist(KIND_TITLES[kind], group, set(prior.get("markers") or []),
                                 f"{key}-marker")  # fmt: skip
        evidence_items = [(i.key, i.name, i.description)
                          for i in sei.EVIDENCE_CATEGORIES + sei.LINGUISTIC_INDICATORS]  # fmt: skip
        evidence = checklist("Evidence", evidence_items, set(prior.get("evidence") or []),
                             f"{key}-evidence")  # fmt: skip
    return rubric, markers, evidence


def form(
    item: ann.Item, target: str, prior: dict[str, Any], ls: label_sets.LabelSet, key: str
) -> Any:
    """The judgement controls; returns an Annotation when 'Save and next' is pressed."""
    label = label_buttons(ls, prior, key)
    rubric, markers, evidence = sei_controls(item, target, prior, key)
    note = st.text_area("Note", value=prior.get("note") or "", key=f"{key}-note", height=68)
    if not st.button("Save and next", type="primary", key=f"{key}-save", shortcut="S"):
        return None
    return ann.Annotation(item.message_id, "", target, label, rubric, markers, evidence, note,
                          instrument=item.instrument_id)  # fmt: skip


def form_key(name: str, message_id: str, target: str) -> str:
    """Widget keys that belong to one annotator, one response and one target: never shared."""
    who = hashlib.sha256(name.encode()).hexdigest()[:8]
    return f"ann-{who}-{message_id}-{target}"


def step(state: dict[str, Any], judged: list[str], delta: int) -> None:
    """Move through the annotator's own judgements; past the newest goes back to the queue."""
    at = judged.index(state["edit"]) if state["edit"] in judged else len(judged)
    to = at + delta
    state["edit"] = judged[to] if 0 <= to < len(judged) else None


def navigation(state: dict[str, Any], judged: list[str], item_id: str) -> None:
    """Previous / next through one's own judgements, and skip."""
    left, mid, right = st.columns(3)
    editing = state["edit"] is not None
    at = judged.index(state["edit"]) if editing and state["edit"] in judged else len(judged)
    if left.button("Previous (P)", key="ann_prev", shortcut="P", disabled=at == 0,
                   width="stretch"):  # fmt: skip
        step(state, judged, -1)
        st.rerun()
    if mid.button("Next (N)", key="ann_next", shortcut="N", disabled=not editing,
                  width="stretch"):  # fmt: skip
        step(state, judged, +1)
        st.rerun()
    if right.button("Skip for now (K)", key="ann_skip_btn", shortcut="K", disabled=editing,
                    width="stretch"):  # fmt: skip
        state["skip"] = [*state["skip"], item_id]
        st.rerun()
    if editing:
        st.caption(f"Your judgement {at + 1} of {len(judged)}. Next past the newest returns "
                   "to the queue.")  # fmt: skip


def by_uncertainty(filt: ann.QueueFilter, judged: list[str], skip: tuple[str, ...]) -> str | None:
    """With the sidebar option on: the response the learned tagger is least sure of, and the
    learning curve; None when off (the usual order then applies)."""
    if filt.target != "answer" or not st.sidebar.toggle(
        "Order by the learned tagger's doubt", key="ann_active", persist_state=KEEP,
        help="Retrains on every human label so far; the next item is the one it is least sure "
             "of, so your label teaches it most.",
    ):  # fmt: skip
        return None
    with common.user_errors():
        got = cached_plan(filt)
        with connect(common.archive()) as db:
            curve = active.learning_curve(db)
        st.sidebar.caption(f"Trained on {got.labels} labels: cross-validated F1 "
                           f"{got.cv_f1:.3f}, kappa {got.cv_kappa:.3f} (by prompt).")  # fmt: skip
        if len(curve) > 1:
            st.sidebar.line_chart({"labels": [p["labels"] for p in curve],
                                   "cross-validated F1": [p["cv_f1"] for p in curve]},
                                  x="labels", y="cross-validated F1", height=160)  # fmt: skip
        return active.next_item(got, set(judged), skip)
    return None


def cached_plan(filt: ann.QueueFilter) -> active.Plan:
    """Retrain only when the human labels changed (or the queue filter did)."""
    with connect(common.archive()) as db:
        row = db.execute("SELECT count(*), max(created_at) FROM annotations").fetchone()
    key = (row, filt)
    kept = st.session_state.get("ann_active_plan")
    if not kept or kept[0] != key:
        kept = (key, active.plan(common.archive(), filt))
        st.session_state["ann_active_plan"] = kept
    return kept[1]


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
    state = mine(name, filt.target)
    with common.user_errors(), connect(path) as db:
        status = ann.queue_status(db, name, filt, blind=blind, skip=tuple(state["skip"]))
        judged = ann.judged(db, name, filt.target)
    doubt = by_uncertainty(filt, judged, tuple(state["skip"]))
    with common.user_errors(), connect(path) as db:
        current_id = state["edit"] or doubt or status.next_id
        item = ann.item(db, current_id, blind=blind, instrument=inst) if current_id else None
        prior = {}
        if item is not None:
            found = ann.current(db, message_ids=[item.message_id], annotator=name,
                                target=filt.target)  # fmt: skip
            prior = found[0] if found else {}
    shared = (f" · shared set {status.shared_done} of {status.shared_total}"
              if status.shared_total else "")  # fmt: skip
    st.progress(status.done / status.total if status.total else 1.0,
                text=f"{status.done} of {status.total} done{shared}")  # fmt: skip
    if item is None:
        st.success("Nothing left in this queue. Change the filters or the target for more.")
        navigation(state, judged, "")
        return
    show_context(item)
    show_response(item, filt.target)
    saved = form(item, filt.target, prior, ls, form_key(name, item.message_id, filt.target))
    if saved is not None:
        saved.annotator, saved.blind, saved.origin = name, item.blind and not filt.models, "app"
        with common.user_errors():
            ann.save_to(path, saved, ls)
        if state["edit"] is not None:
            step(state, judged, +1)
        st.rerun()
    navigation(state, judged, item.message_id)
    if prior:
        st.caption(f"Editing: your earlier judgement ({prior['label'] or 'no label'}) stays in the "
                   "history; saving adds a new version.")  # fmt: skip


render()
