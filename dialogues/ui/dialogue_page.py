"""Dialogue page: two models talk; after each round the researcher continues, injects or stops.

The only state kept here is the id of the conversation on screen: every action reloads the
dialogue from the archive and calls dialogues.run.dialogue, which holds the logic.
"""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path
from typing import Any

import streamlit as st

from dialogues.domain import config
from dialogues.domain.errors import UserError
from dialogues.providers import registry
from dialogues.run import replay
from dialogues.run.dialogue import (
    RESEARCHER,
    DialogueSession,
    DialogueSetup,
    Turn,
    transcript,
    undelivered,
)
from dialogues.ui import common

CURRENT = "dialogue_conversation"  # id of the dialogue on screen
RERUN = "dialogue_rerun"  # id of the conversation a re-run produced
MESSAGE = "dialogue_message"  # one line to show after an action
PENDING = "dialogue_pending"  # a round asked for: run on the page, so it can say who is replying
SETTINGS = ("dlg_a", "dlg_b", "dlg_rounds", "dlg_opening", "dlg_frame", "dlg_system_a",
            "dlg_system_b", "dlg_temperature", "dlg_seed", "dlg_max_tokens", "dlg_api_base")  # fmt: skip
GEMMA = "gguf/gemma3-270m"


@st.cache_data(ttl=60, show_spinner="Looking for models …")
def model_ids(catalogue: str, host: str) -> tuple[list[str], list[str]]:
    """Ids of the models on offer, and notes on back ends that did not answer."""
    # the catalogue file and host are the cache key: another models.toml is another list
    found, notes = registry.available(registry.load_catalogue(Path(catalogue)), host)
    return [m.id for m in found], notes


def _catalogue() -> dict[str, registry.Declared]:
    return registry.load_catalogue(config.models_toml_path())


def _say(text: str, kind: str = "error") -> None:
    st.session_state[MESSAGE] = (kind, text)


# -- actions (button callbacks: they run before the page is drawn) -----------------------------


def _start(path: Path) -> None:
    s = st.session_state
    seed = s.get("dlg_seed")
    setup = DialogueSetup(
        a=s.get("dlg_a") or "", b=s.get("dlg_b") or "", rounds=int(s.get("dlg_rounds") or 1),
        opening=s.get("dlg_opening") or "", frame=s.get("dlg_frame") or None,
        system_a=s.get("dlg_system_a") or None, system_b=s.get("dlg_system_b") or None,
        temperature=float(s.get("dlg_temperature", 0.7)),
        seed=None if seed is None else int(seed), max_tokens=int(s.get("dlg_max_tokens") or 64),
        api_base=s.get("dlg_api_base") or None,
    )  # fmt: skip
    try:
        session = DialogueSession.start(path, setup, catalogue=_catalogue())
        s[CURRENT] = session.conversation_id
        s.pop(RERUN, None)
        s[PENDING] = True
    except UserError as exc:
        _say(str(exc))


def _continue() -> None:
    st.session_state[PENDING] = True


def _finish(path: Path, conversation_id: str) -> None:
    try:
        DialogueSession.load(path, conversation_id).finish()
    except UserError as exc:
        _say(str(exc))


def _inject(path: Path, conversation_id: str) -> None:
    s = st.session_state
    try:
        session = DialogueSession.load(path, conversation_id, catalogue=_catalogue())
        session.inject(s.get("dlg_inject_side", "a"), s.get("dlg_inject_text") or "")
        s["dlg_inject_text"] = ""
        _say(f"Delivered to {s.get('dlg_inject_side', 'a').upper()} with its next message.", "ok")
    except UserError as exc:
        _say(str(exc))


def _stop(path: Path, conversation_id: str) -> None:
    try:
        DialogueSession.load(path, conversation_id).stop()
    except UserError as exc:
        _say(str(exc))


def _rerun(path: Path, conversation_id: str) -> None:
    try:
        result = replay.rerun(path, conversation_id, catalogue=_catalogue())
    except UserError as exc:
        _say(str(exc))
        return
    if result.kind == "dialogue":
        st.session_state[CURRENT] = result.conversation_id
        st.session_state.pop(RERUN, None)
    else:
        st.session_state[RERUN] = result.conversation_id
    _say(f"Re-ran {conversation_id} into run {result.run_id}, "
         f"conversation {result.conversation_id}.", "ok")  # fmt: skip


def _open(path: Path, conversation_id: str) -> None:
    try:
        DialogueSession.load(path, conversation_id)  # only a dialogue can be continued here
    except UserError as exc:
        _say(str(exc))
        return
    st.session_state[CURRENT] = conversation_id
    st.session_state.pop(RERUN, None)


def _new(path: Path) -> None:
    """Back to the form, filled in with the settings of the dialogue on screen."""
    s = st.session_state
    current = s.pop(CURRENT, None)
    s.pop(RERUN, None)
    if not current:
        return
    try:
        setup = DialogueSession.load(path, current).setup
    except UserError:
        return
    values = asdict(setup)
    for key in SETTINGS:
        value = values[key.removeprefix("dlg_")]
        s[key] = "" if value is None and key != "dlg_seed" else value


# -- drawing ------------------------------------------------------------------------------------


def setup_form(path: Path, ids: list[str]) -> None:
    """Choose A and B, rounds, the opening and the frame; Start runs the first round."""
    # A model typed in earlier (kept by "New dialogue") stays on offer.
    kept = [st.session_state.get(k) for k in ("dlg_a", "dlg_b")]
    ids = [*ids, *dict.fromkeys(m for m in kept if m and m not in ids)]
    a_default = ids.index(config.DEFAULT_MODEL) if config.DEFAULT_MODEL in ids else 0
    b_default = ids.index(GEMMA) if GEMMA in ids else a_default
    left, right = st.columns(2)
    left.selectbox("Model A (gets the opening)", ids, index=a_default, key="dlg_a",
                   accept_new_options=True)  # fmt: skip
    right.selectbox("Model B", ids, index=b_default, key="dlg_b", accept_new_options=True)
    st.number_input("Rounds (A speaks, then B)", 1, 50, 3, key="dlg_rounds")
    st.text_area("Opening (sent to A)", key="dlg_opening",
                 placeholder="What do you notice when you take up a question like this one?")  # fmt: skip
    st.text_input("Frame for each reply (optional)", key="dlg_frame",
                  placeholder="The other model said: {reply}",
                  help="{reply} is replaced by the reply; without it the frame is a line before it.")  # fmt: skip
    with st.expander("Parameters and system prompts"):
        c1, c2, c3 = st.columns(3)
        c1.number_input("Temperature", 0.0, 2.0, 0.7, 0.05, key="dlg_temperature")
        c2.number_input("Seed", value=None, step=1, key="dlg_seed")
        c3.number_input("Max tokens", 1, 32768, 256, key="dlg_max_tokens")
        st.text_area("System prompt for A", key="dlg_system_a")
        st.text_area("System prompt for B", key="dlg_system_b")
        st.text_input("API base for hosted models (optional)", key="dlg_api_base")
    st.button("Start", key="dlg_start", type="primary", on_click=_start, args=(path,))


def show_turn(turn: Turn, names: dict[str, str], waiting: str | None = None) -> None:
    """One message: who spoke (or whom the researcher addressed), the text, the thinking.

    waiting says why an injected message has not reached its side yet (or never will).
    """
    if turn.role == "user":
        with st.chat_message("user"):
            if turn.speaker == RESEARCHER:
                what = "opening" if turn.phase == "opening" else "injected"
                st.caption(f"Researcher → {names.get(turn.side, turn.side)} ({what})")
                if waiting:
                    st.warning(common.escape(waiting))
            else:
                st.caption(f"{turn.speaker} ({turn.phase})")
            common.plain(turn.content or "")
        return
    label = turn.side.upper() or "M"
    with st.chat_message(label if turn.side else "assistant"):
        st.caption(f"{names.get(turn.side, turn.speaker)} · finish: {turn.finish_reason or '-'}")
        if turn.error is not None:
            st.error(common.escape(f"Error: {turn.error}"))
        elif not (turn.content or "").strip():
            st.warning("Empty reply.")
        else:
            common.plain(turn.content or "")
        if turn.reasoning:
            with st.expander("Thinking (stored, never passed to the other model)"):
                common.plain(turn.reasoning)
        if turn.request:
            with st.expander("Messages sent to this model"):
                common.plain("\n\n".join(f"[{m['role']}] {m['content']}" for m in turn.request))


def show_dialogue(path: Path, session: DialogueSession) -> None:
    """The transcript of both sides, a round in progress, then the checkpoint (or how it ended)."""
    setup = session.setup
    names = {"a": f"A · {setup.a}", "b": f"B · {setup.b}"}
    st.caption(f"Conversation `{session.conversation_id}` · run `{session.run_id}` · "
               f"round {session.rounds_done} of {setup.rounds}")  # fmt: skip
    unsent = undelivered(session.turns)
    for turn in session.turns:
        show_turn(turn, names, waiting_note(turn, unsent, session, names))
    conv = session.conversation_id
    if session.running and st.session_state.pop(PENDING, False):
        play_round(path, conv, names)
        return
    if not session.running:
        st.info(common.escape(f"Ended ({session.status}): {session.stop_reason}"))
        st.button("Re-run this conversation", key="dlg_rerun", on_click=_rerun, args=(path, conv))
        return
    st.subheader("Checkpoint")
    left, mid, right = st.columns(3)
    if session.planned_rounds_done:
        st.caption(f"All {setup.rounds} planned rounds are done: finish, or go on for one more.")
        left.button("Finish", key="dlg_finish", type="primary", on_click=_finish,
                    args=(path, conv))  # fmt: skip
        mid.button("One more round", key="dlg_continue", on_click=_continue)
    else:
        left.button("Continue", key="dlg_continue", type="primary", on_click=_continue)
    right.button("Stop", key="dlg_stop", on_click=_stop, args=(path, conv))
    st.radio("Inject a message to", ["a", "b"], key="dlg_inject_side", horizontal=True,
             format_func=lambda s: names[s])  # fmt: skip
    st.text_area("Your message (delivered with that side's next user message)",
                 key="dlg_inject_text")  # fmt: skip
    st.button("Inject", key="dlg_inject", on_click=_inject, args=(path, conv))


def waiting_note(
    turn: Turn, unsent: set[int], session: DialogueSession, names: dict[str, str]
) -> str | None:
    """Why an injected message has not reached its side: waiting, or never delivered."""
    if turn.seq not in unsent:
        return None
    who = names.get(turn.side, turn.side)
    if session.running:
        return f"Not delivered yet: {who} gets it with its next message."
    return f"Never delivered: the dialogue ended before {who} spoke again."


def play_round(path: Path, conversation_id: str, names: dict[str, str]) -> None:
    """Run one round here, saying who is replying and showing each reply as it lands."""
    status = st.empty()
    status.info(f"{names['a']} is replying …", icon=":material/hourglass_top:")

    def landed(turn: Turn) -> None:
        show_turn(turn, names)
        if turn.side == "a" and turn.error is None and (turn.content or "").strip():
            status.info(f"{names['b']} is replying …", icon=":material/hourglass_top:")

    try:
        session = DialogueSession.load(path, conversation_id, catalogue=_catalogue())
        session.step(on_turn=landed, hold=True)  # the last round still gets a checkpoint
    except UserError as exc:
        _say(str(exc))
    st.rerun()


def show_message() -> None:
    kind, text = st.session_state.pop(MESSAGE, ("", ""))
    if text:
        (st.success if kind == "ok" else st.error)(common.escape(text))


def other_conversation(path: Path) -> None:
    """Open a stored dialogue, or re-run any conversation (batch or dialogue) by its id."""
    with st.expander("Open or re-run a conversation by id"):
        conv = st.text_input("Conversation id", key="dlg_conv_id").strip()
        left, right = st.columns(2)
        left.button("Open dialogue", key="dlg_open", on_click=_open, args=(path, conv),
                    disabled=not conv)  # fmt: skip
        right.button("Re-run this conversation", key="dlg_rerun_id", on_click=_rerun,
                     args=(path, conv), disabled=not conv)  # fmt: skip


def show_rerun(path: Path, conversation_id: str) -> None:
    """The conversation a batch re-run produced."""
    st.subheader(f"Re-run: conversation {conversation_id}")
    for turn in transcript(path, conversation_id):
        show_turn(turn, {})


def render() -> None:
    path = common.show_archive()
    st.title("Dialogue")
    st.caption("Two models talk: each visible reply becomes the other's next message.")
    show_message()
    with common.user_errors():
        current: Any = st.session_state.get(CURRENT)
        rerun_id = st.session_state.get(RERUN)
        if current:
            st.button("New dialogue", key="dlg_new", on_click=_new, args=(path,),
                      help="Back to the form, with this dialogue's settings.")  # fmt: skip
            show_dialogue(path, DialogueSession.load(path, current))
        elif rerun_id:
            st.button("New dialogue", key="dlg_new", on_click=_new, args=(path,))
            show_rerun(path, rerun_id)
        else:
            ids, notes = model_ids(str(config.models_toml_path()), config.ollama_host())
            for note in notes:
                st.caption(common.escape(note))
            setup_form(path, ids)
    other_conversation(path)


render()
