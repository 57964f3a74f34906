"""Transcripts page: filter the archive's responses, page through them, read one conversation."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd
import streamlit as st

from dialogues.store import connect, queries
from dialogues.ui import common

PAGE_SIZES = [25, 50, 100, 200]
TABLE_COLUMNS = ["state", "model", "set_id", "prompt_key", "condition", "repeat", "phase",
                 "attempt", "preview", "tokens_out", "finish_reason", "created_at", "run_id"]  # fmt: skip


def choose_filters(options: dict[str, list[Any]]) -> queries.TranscriptFilter:
    """The filter widgets, in the sidebar."""
    side = st.sidebar
    side.header("Filter")
    runs = {r["id"]: queries.run_label(r) for r in options["runs"]}
    run_ids = side.multiselect("Runs", list(runs), format_func=lambda r: runs[r], key="tx_runs")
    models = side.multiselect("Models", options["models"], key="tx_models")
    set_ids = side.multiselect("Prompt sets", options["set_ids"], key="tx_sets")
    keys = side.multiselect("Prompts", options["prompt_keys"], key="tx_prompts")
    conditions = side.multiselect("Conditions", options["conditions"], key="tx_conditions")
    phases = side.multiselect("Phases", options["phases"], key="tx_phases")
    text = side.text_input("Search content and reasoning", key="tx_text")
    errors = side.checkbox("Errors only", key="tx_errors")
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


def row_label(row: dict[str, Any]) -> str:
    preview = (row["preview"] or "").replace("\n", " ")[:60]
    return f"{row['model']} · {row['prompt_key']} · {row['condition']} #{row['repeat']} · " + (
        preview or row["state"]
    )


def show_table(rows: list[dict[str, Any]]) -> None:
    frame = (
        pd.DataFrame(rows, columns=TABLE_COLUMNS) if rows else pd.DataFrame(columns=TABLE_COLUMNS)
    )
    st.dataframe(frame, hide_index=True, width="stretch")


def show_message(row: dict[str, Any], selected: bool) -> None:
    """One turn: who spoke, the text as plain text, reasoning folded away, failures marked."""
    assistant = row["role"] == "assistant"
    with st.chat_message("assistant" if assistant else "user"):
        if assistant:
            head = f"{row['speaker']} · reply to {row['prompt_key']}"
            if row["attempt"] > 1:
                head += f" · attempt {row['attempt']}"
        else:
            head = f"{row['speaker'] or row['role']} · {row['prompt_key'] or ''} ({row['phase']})"
        st.markdown(f"**{common.escape(head)}**" + (" ← selected" if selected else ""))
        state = row.get("state")
        if row["error"] is not None:
            st.error(common.escape(f"Failed ({row['error_kind'] or 'error'}): {row['error']}"))
        elif state and state.startswith("no answer"):
            st.warning(common.escape(state))
        elif state and state != "ok":
            st.caption(common.escape(state))
        if row["content"]:
            common.plain(row["content"])
        if row["reasoning"]:
            tokens = f", {row['reasoning_tokens']} tokens" if row["reasoning_tokens"] else ""
            with st.expander(f"Reasoning ({len(row['reasoning'])} characters{tokens})"):
                common.plain(row["reasoning"])
        if assistant and row["error"] is None:
            st.caption(common.escape(_usage(row)))


def _usage(row: dict[str, Any]) -> str:
    parts = [f"finish: {row['finish_reason'] or '?'}"]
    if row["tokens_out"] is not None:
        parts.append(f"{row['tokens_in']} → {row['tokens_out']} tokens")
    if row["latency_ms"] is not None:
        parts.append(f"{row['latency_ms'] / 1000:.1f} s")
    return " · ".join(parts)


def show_conversation(path: Path, conversation_id: str, message_id: str) -> None:
    with connect(path) as db:
        conv = queries.conversation(db, conversation_id)
    if conv is None:
        st.warning("That conversation is no longer in the archive.")
        return
    st.subheader("Conversation")
    st.caption(common.escape(
        f"run {conv['run_id']} · {conv['model_id']} · {conv['condition']} · repeat "
        f"{conv['repeat']} · {conv['set_id']} · temperature {conv['temperature']} · "
        f"max tokens {conv['max_tokens']} · conversation {conv['id']}"))  # fmt: skip
    if conv["system_prompt"]:
        with st.expander("System prompt"):
            common.plain(conv["system_prompt"])
    for row in conv["messages"]:
        show_message(row, row["id"] == message_id)


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
    show_table(rows)
    st.pagination(pages, key="tx_page")
    if not rows:
        st.info("No responses match these filters.")
        return
    by_id = {r["id"]: r for r in rows}
    chosen = st.selectbox("Read a conversation", list(by_id), key="tx_open",
                          format_func=lambda m: row_label(by_id[m]))  # fmt: skip
    with common.user_errors():
        show_conversation(path, by_id[chosen]["conversation_id"], chosen)


render()
