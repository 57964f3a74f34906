"""Transcripts page: filter the archive's responses, page through them, read one conversation."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import pandas as pd
import streamlit as st

from dialogues.annotate import annotations as ann
from dialogues.store import connect, queries
from dialogues.ui import common

PAGE_SIZES = [25, 50, 100, 200]
# The columns a reader scans first come first, so a narrow window still shows them.
TABLE_COLUMNS = ["model", "prompt_key", "preview", "condition", "repeat", "state", "set_id",
                 "phase", "attempt", "tokens_out", "finish_reason", "created_at", "run_id"]  # fmt: skip
KEEP: Literal["session"] = "session"  # filters survive a visit to another page


def choose_filters(options: dict[str, list[Any]]) -> queries.TranscriptFilter:
    """The filter widgets, in the sidebar."""
    side = st.sidebar
    side.header("Filter")
    runs = {r["id"]: queries.run_label(r) for r in options["runs"]}
    run_ids = side.multiselect(
        "Runs", list(runs), format_func=lambda r: runs[r], key="tx_runs", persist_state=KEEP
    )
    models = side.multiselect("Models", options["models"], key="tx_models", persist_state=KEEP)
    set_ids = side.multiselect("Prompt sets", options["set_ids"], key="tx_sets", persist_state=KEEP)
    keys = side.multiselect("Prompts", options["prompt_keys"], key="tx_prompts", persist_state=KEEP)
    conditions = side.multiselect(
        "Conditions", options["conditions"], key="tx_conditions", persist_state=KEEP
    )
    phases = side.multiselect("Phases", options["phases"], key="tx_phases", persist_state=KEEP)
    text = side.text_input("Search content and reasoning", key="tx_text", persist_state=KEEP)
    errors = side.checkbox("Errors only", key="tx_errors", persist_state=KEEP)
    return queries.TranscriptFilter(tuple(run_ids), tuple(models), tuple(set_ids), tuple(keys),
                                    tuple(conditions), tuple(phases), text, errors)  # fmt: skip


def current_page(filters: queries.TranscriptFilter, page_size: int) -> int:
    """The page to show; back to page 1 whenever the filters or the page size change."""
    signature = (filters, page_size)
    if st.session_state.get("tx_signature") != signature:
        st.session_state["tx_signature"] = signature
        st.session_state["tx_page"] = 1
    return int(st.session_state.get("tx_page", 1))


def fetch_page(
    path: Path, filters: queries.TranscriptFilter, page: int, size: int
) -> tuple[list[dict[str, Any]], int, int]:
    """Rows of a page and the total; a page past the end (the archive shrank) shows the last."""
    with connect(path) as db:
        rows, total = queries.transcript_page(db, filters, page, size)
        last = max(1, -(-total // size))
        if page > last:
            page = last
            rows, total = queries.transcript_page(db, filters, page, size)
    return rows, total, page


def joined(*parts: Any, sep: str = " · ") -> str:
    """Parts that exist, joined: a missing field is left out, never printed as 'None'."""
    return sep.join(str(p) for p in parts if p is not None and str(p) != "")


def named(name: str, value: Any) -> str | None:
    """'repeat 2', or None when the value is missing."""
    return None if value is None else f"{name} {value}"


def heading(row: dict[str, Any]) -> str:
    """Who spoke and to what, e.g. 'model-a · reply to p1 · attempt 2' or 'prompt · p1 (probe)'."""
    if row["role"] == "assistant":
        to = f"reply to {row['prompt_key']}" if row.get("prompt_key") else None
        again = f"attempt {row['attempt']}" if (row.get("attempt") or 1) > 1 else None
        return joined(row.get("speaker") or "model", to, again)
    phase = f"({row['phase']})" if row.get("phase") else None
    return joined(row.get("speaker") or row["role"], joined(row.get("prompt_key"), phase, sep=" "))


def show_table(rows: list[dict[str, Any]]) -> int:
    """The page of responses; returns the row clicked (the first when none is)."""
    frame = (
        pd.DataFrame(rows, columns=TABLE_COLUMNS) if rows else pd.DataFrame(columns=TABLE_COLUMNS)
    )
    chosen = st.dataframe(
        frame, hide_index=True, width="stretch", on_select="rerun",
        selection_mode="single-row", key="tx_table",
        column_config={"preview": st.column_config.TextColumn("preview", width="large")},
    )  # fmt: skip
    picked = chosen.selection.rows if chosen else []
    return picked[0] if picked and picked[0] < len(rows) else 0


def show_labels(labels: dict[str, str]) -> None:
    """A response's labels and tags, by source, beside it."""
    if labels:
        st.caption(
            "Labels: " + common.escape(" · ".join(f"{s} {lab}" for s, lab in labels.items()))
        )
    else:
        st.caption("Not labelled yet (Annotate, or tag from the Compare page).")


def show_message(row: dict[str, Any], selected: bool, labels: dict[str, str] | None) -> None:
    """One turn: who spoke, the text as prose, reasoning folded away, failures marked."""
    assistant = row["role"] == "assistant"
    with st.chat_message("assistant" if assistant else "user"):
        st.markdown(f"**{common.escape(heading(row))}**" + (" ← selected" if selected else ""))
        state = row.get("state")
        if row["error"] is not None:
            st.error(common.escape(f"Failed ({row['error_kind'] or 'error'}): {row['error']}"))
        elif state and state.startswith("no answer"):
            st.warning(common.escape(state))
        elif state and state != "ok":
            st.caption(common.escape(state))
        if row["content"]:
            common.prose(row["content"])
        if row["reasoning"]:
            tokens = f", {row['reasoning_tokens']} tokens" if row["reasoning_tokens"] else ""
            with st.expander(f"Reasoning ({len(row['reasoning'])} characters{tokens})"):
                common.prose(row["reasoning"])
        if assistant and row["error"] is None:
            st.caption(common.escape(_usage(row)))
            show_labels(labels or {})


def _usage(row: dict[str, Any]) -> str:
    parts = [f"finish: {row['finish_reason'] or 'not recorded'}"]
    if row["tokens_out"] is not None:
        tokens_in = f"{row['tokens_in']} → " if row["tokens_in"] is not None else ""
        parts.append(f"{tokens_in}{row['tokens_out']} tokens")
    if row["latency_ms"] is not None:
        parts.append(f"{row['latency_ms'] / 1000:.1f} s")
    return " · ".join(parts)


def show_conversation(path: Path, conversation_id: str, message_id: str) -> None:
    with connect(path) as db:
        conv = queries.conversation(db, conversation_id)
        labels = ann.labels_of(db, [m["id"] for m in conv["messages"]]) if conv else {}
    if conv is None:
        st.warning("That conversation is no longer in the archive.")
        return
    st.subheader("Conversation")
    st.caption(common.escape(joined(
        named("run", conv.get("run_name") or conv["run_id"]), conv["model_id"], conv["condition"],
        named("repeat", conv["repeat"]), conv["set_id"], named("temperature", conv["temperature"]),
        named("max tokens", conv["max_tokens"]), named("conversation", conv["id"]))))  # fmt: skip
    if conv["system_prompt"]:
        with st.expander("System prompt"):
            common.prose(conv["system_prompt"])
    for row in conv["messages"]:
        show_message(row, row["id"] == message_id, labels.get(row["id"]))


def render() -> None:
    path = common.show_archive()
    st.title("Transcripts")
    with common.user_errors():
        with connect(path) as db:
            options = queries.filter_options(db)
        filters = choose_filters(options)
        size = st.sidebar.selectbox("Rows per page", PAGE_SIZES, index=1, key="tx_page_size")
        rows, total, page = fetch_page(path, filters, current_page(filters, size), size)
    pages = max(1, -(-total // size))
    st.session_state["tx_page"] = page
    first = (page - 1) * size + 1 if total else 0
    st.caption(f"{total} responses match · showing {first}–{first + len(rows) - 1 if rows else 0}")
    picked = show_table(rows)
    st.pagination(pages, key="tx_page")
    if not rows:
        st.info("No responses match these filters.")
        return
    st.caption("Click a row to read its conversation.")
    with common.user_errors():
        show_conversation(path, rows[picked]["conversation_id"], rows[picked]["id"])


render()
