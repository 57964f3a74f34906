"""Models page: every model in the archive with its metadata; fill in what a provider did not say."""

from __future__ import annotations

from typing import Any

import streamlit as st

from dialogues.analyse import compare
from dialogues.domain.models import format_parameters
from dialogues.ui import common


def text(value: Any) -> str:
    """A stored value as form text: empty for NULL/NaN."""
    plain = compare.scalar(value)
    return "" if plain is None else str(plain)


def edit_form(model: str, row: dict[str, Any]) -> dict[str, Any] | None:
    """The form for one model; returns the typed values when Save is pressed."""
    training_now = text(row.get("training"))
    trainings = ["", *compare.TRAININGS]
    if training_now and training_now not in trainings:
        trainings.append(training_now)
    with st.form(f"models_edit_{model}"):
        left, right = st.columns(2)
        given = {
            "family": left.text_input("Family", text(row.get("family")), key=f"mf_{model}"),
            "parameters": right.text_input(
                "Parameters (a count, or 7B / 270M / 1.8T)", shown_size(row),
                key=f"mp_{model}"),
            "parameter_size": left.text_input(
                "Parameter size as printed", text(row.get("parameter_size")), key=f"ms_{model}"),
            "quantization": right.text_input(
                "Quantization", text(row.get("quantization")), key=f"mq_{model}"),
            "training": left.selectbox(
                "Training", trainings, index=trainings.index(training_now),
                key=f"mt_{model}", format_func=lambda t: t or "(unknown)"),
            "notes": st.text_area("Notes", text(row.get("notes")), key=f"mn_{model}"),
        }  # fmt: skip
        if not st.form_submit_button("Save", type="primary"):
            return None
    if given["parameters"] == shown_size(row):  # untouched: keep the exact count, not "7.62B"
        given["parameters"] = compare.scalar(row.get("parameters"))
    return given


def shown_size(row: dict[str, Any]) -> str:
    """The model's parameter count as people write it ('270M')."""
    return format_parameters(compare.scalar(row.get("parameters")))


def render() -> None:
    path = common.show_archive()
    st.title("Models")
    st.caption("Filled in automatically where the back end tells (GGUF header, Ollama details). "
               "Your edits are kept: a later refresh from the provider updates only the fields you have not set.")  # fmt: skip
    saved = st.session_state.pop("models_saved", None)
    if saved:
        st.success(common.escape(saved))
    with common.user_errors():
        table = compare.model_table(path)
    shown = table.assign(parameters=table["parameters"].map(format_parameters))
    st.dataframe(shown, hide_index=True, key="models_table")
    if table.empty:
        st.info("No models yet: a model is added to the archive on its first run.")
        return
    model = st.selectbox("Edit model", list(table["id"]), key="models_pick")
    row = table[table["id"] == model].iloc[0].to_dict()
    given = edit_form(model, row)
    if given is None:
        return
    try:
        fields = compare.changed_fields(row, compare.model_fields(**given))
    except ValueError as exc:
        st.error(common.escape(str(exc)))
        return
    if not fields:
        st.info("Nothing changed.")
        return
    with common.user_errors():
        compare.edit_model(path, model, fields)
    st.session_state["models_saved"] = f"Saved {model}: " + ", ".join(sorted(fields))
    st.rerun()  # so the table above shows the new values


render()
