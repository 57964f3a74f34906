"""Export page: write the archive to a folder, or download it (markdown zip, JSONL, Parquet, CSV)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd
import streamlit as st

from dialogues import export
from dialogues.store import connect, records
from dialogues.ui import common

LABELS = {
    "markdown": "Markdown: one file per conversation, by run, with a README index",
    "jsonl": "JSONL: one conversation per line, everything nested (re-importable)",
    "parquet": "Parquet: one file per archive table, plus responses.parquet",
    "csv": "CSV: the flat responses table, one row per model reply",
}
SHOWN_FILES = 200


def runs(path: Path) -> list[dict[str, Any]]:
    """The archive's runs, newest first."""
    with connect(path) as db:
        return records.list_runs(db)


def default_target(path: Path, kind: str) -> str:
    """Next to the archive: exports/markdown, exports/dialogues.jsonl …"""
    name = {"jsonl": "dialogues.jsonl", "csv": "responses.csv"}.get(kind, kind)
    return str(path.parent / "exports" / name)


def show_written(files: list[str], summary: str, where: str) -> None:
    st.success(common.escape(f"Wrote {summary} to {where}"))
    frame = pd.DataFrame({"file": files[:SHOWN_FILES]})
    st.dataframe(frame, hide_index=True, use_container_width=True)
    if len(files) > SHOWN_FILES:
        st.caption(f"… and {len(files) - SHOWN_FILES} more files.")


def render() -> None:
    path = common.show_archive()
    st.title("Export")
    st.caption(
        "Markdown is for reading and publishing; JSONL, Parquet and CSV are for pandas and R. "
        "No API key or environment value is ever written."
    )
    with common.user_errors():
        known = runs(path)
    if not known:
        st.info("The archive has no runs yet: nothing to export.")
        return
    kind = st.radio("Format", export.KINDS, format_func=lambda k: LABELS[k], key="export_kind")
    labels = {r["id"]: f"{r['id']} · {r.get('name') or r.get('set_id') or ''} · "
              f"{str(r.get('created_at') or '')[:16]}" for r in known}  # fmt: skip
    chosen = st.multiselect("Runs (none chosen: all)", list(labels), format_func=lambda r: labels[r],
                            key="export_runs")  # fmt: skip
    run_ids = chosen or None
    mode = st.radio("Destination", ["Folder on this machine", "Download"], horizontal=True,
                    key="export_mode")  # fmt: skip
    if mode == "Download":
        # A prepared file is offered only for the format and runs it was made from.
        wanted = (kind, tuple(chosen))
        if st.session_state.get("export_download_for") != wanted:
            st.session_state.pop("export_download", None)
        if st.button(f"Prepare {kind} download", key="export_prepare"):
            with common.user_errors(), st.spinner("Exporting …"), connect(path) as db:
                st.session_state["export_download"] = export.download(db, kind, run_ids)
                st.session_state["export_download_for"] = wanted
        ready = st.session_state.get("export_download")
        if ready is not None:
            st.caption(common.escape(ready.summary))
            st.download_button(f"Download {ready.filename}", ready.data, ready.filename,
                               ready.mime, key="export_download_button")  # fmt: skip
        return
    target = st.text_input("Write to", default_target(path, kind), key=f"export_target_{kind}")
    if st.button("Export", key="export_write", type="primary"):
        with common.user_errors(), st.spinner("Exporting …"), connect(path) as db:
            files, summary = export.write(db, kind, Path(target).expanduser(), run_ids)
        show_written(files, summary, target)


render()
