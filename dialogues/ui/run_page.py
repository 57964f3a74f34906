"""Run page: start a batch in the background and watch each model's progress."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import streamlit as st

from dialogues.domain import conditions, config, prompts
from dialogues.domain.errors import UserError
from dialogues.providers import registry
from dialogues.run import jobs
from dialogues.run.batch import BatchOptions
from dialogues.ui import common

POLL = "2s"


@st.cache_data(ttl=60, show_spinner=False)
def prompt_sets() -> tuple[list[dict[str, Any]], list[str]]:
    """The shipped prompt sets (id, title, size, kind) and a note for each file that fails."""
    found, notes = [], []
    for path in prompts.available():
        try:
            ps = prompts.load(path)
        except UserError as exc:
            notes.append(str(exc))
            continue
        found.append({"ref": path.stem, "id": ps.id, "title": ps.title,
                      "prompts": len(ps.prompts), "kind": ps.kind, "mode": ps.mode})  # fmt: skip
    return found, notes


@st.cache_data(ttl=60, show_spinner="Looking for models …")
def models() -> tuple[list[Any], list[str]]:
    """Built-in GGUF models, models.toml entries and Ollama's models, with notes on what failed."""
    catalogue = registry.load_catalogue(config.models_toml_path())
    return registry.available(catalogue, config.ollama_host())


def model_label(info: Any) -> str:
    size = info.parameter_size or ""
    return " · ".join(x for x in (info.id, info.provider, size, info.training or "") if x)


def choose(sets: list[dict[str, Any]], found: list[Any]) -> BatchOptions | None:
    """The batch form; returns the options when Start is pressed."""
    by_ref = {s["ref"]: s for s in sets}
    batteries = [s["ref"] for s in sets if s["kind"] != "warmup"]
    warmups = [s["ref"] for s in sets if s["kind"] == "warmup"] or ["warmup-default"]
    labels = {s: f"{s} — {by_ref[s]['title']} ({by_ref[s]['prompts']} prompts)" for s in by_ref}
    prompt_ref = st.selectbox("Prompt set", batteries, key="run_prompts",
                              format_func=lambda s: labels.get(s, s))  # fmt: skip
    infos = {m.id: m for m in found}
    default = [config.DEFAULT_MODEL] if config.DEFAULT_MODEL in infos else []
    chosen = st.multiselect("Models", list(infos), default=default, key="run_models",
                            format_func=lambda m: model_label(infos[m]))  # fmt: skip
    left, right = st.columns(2)
    shipped = [p.stem for p in conditions.available()]
    chosen_conds = left.multiselect("Conditions", shipped, default=["cold"], key="run_conditions",
                                    help="Files in prompts/conditions/; each is crossed with "
                                         "models × prompts × repeats.")  # fmt: skip
    warmup = right.selectbox("Warm-up set (for conditions with one)", [None, *warmups],
                             key="run_warmup",
                             format_func=lambda w: "each condition's own" if w is None else w)  # fmt: skip
    order = left.radio("Order", ["random", "fixed"], horizontal=True, key="run_order")
    blind_required = right.checkbox("Require blind annotation", key="run_blind_required")
    a, b, c, d = st.columns(4)
    repeats = a.number_input("Repeats", min_value=1, max_value=1000, value=1, key="run_repeats")
    temperature = b.number_input("Temperature", min_value=0.0, max_value=2.0, value=0.7,
                                 step=0.1, key="run_temperature")  # fmt: skip
    seed = c.number_input("Seed (empty: random)", min_value=0, value=None, step=1,
                          key="run_seed")  # fmt: skip
    max_tokens = d.number_input("Max tokens", min_value=1, max_value=32768, value=256,
                                key="run_max_tokens")  # fmt: skip
    name = st.text_input("Run name (optional)", key="run_name")
    if not st.button("Start", type="primary", key="run_start"):
        return None
    if not chosen or not chosen_conds:
        st.error("Choose at least one model and one condition.")
        return None
    return BatchOptions(
        prompt_ref=prompt_ref, model_refs=tuple(chosen), conditions=tuple(chosen_conds),
        warmup=warmup, order=order, blind_required=blind_required,
        repeats=int(repeats), temperature=float(temperature),
        seed=None if seed is None else int(seed), max_tokens=int(max_tokens),
        name=name.strip() or None,
    )  # fmt: skip


def show_job(job: jobs.Job, progress: list[dict[str, Any]]) -> None:
    """One job: status, run id, a progress bar per model, and why it failed if it did."""
    started = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(job.started_at))
    with st.container(border=True):
        st.markdown(
            f"**{job.status}** · job `{job.id}` · run `{job.run_id or 'starting …'}` · "
            f"started {started}"
        )
        for row in progress:
            finished = row["done"] + row["errors"]
            share = min(1.0, finished / row["total"]) if row["total"] else 0.0
            st.progress(share, text=common.escape(
                f"{row['model']}: {row['done']} of {row['total']} answered, "
                f"{row['errors']} failed"))  # fmt: skip
        if job.status == jobs.FAILED:
            st.error(common.escape(job.message or f"exited with code {job.exit_code}"))
            with st.expander("Log"):
                common.plain(Path(job.log).read_text(encoding="utf-8", errors="replace")[-4000:])
        if job.status == jobs.RUNNING and st.button("Stop", key=f"stop-{job.id}"):
            jobs.stop(job)
            st.rerun()


def jobs_panel(path: Path, polling: bool) -> None:
    """Recent jobs of this archive; while one runs, this part of the page refreshes itself."""
    with common.user_errors():
        recent = jobs.list_jobs(path, limit=10)
        progress = jobs.progress(path, recent)
    if not recent:
        st.caption("No batches started from here yet.")
    for job in recent:
        show_job(job, progress.get(job.run_id or "", []))
    if polling and not any(j.status == jobs.RUNNING for j in recent):
        st.rerun()  # the last job ended: one full rerun, which stops the polling


def render() -> None:
    path = common.show_archive()
    st.title("Run a batch")
    st.caption("The batch runs in its own process: closing this tab does not stop it.")
    sets, set_notes = prompt_sets()
    with common.user_errors():
        found, notes = models()
    for note in [*set_notes, *notes]:
        st.info(common.escape(note))
    if st.button("Look for models again", key="run_refresh_models"):
        models.clear()
        st.rerun()
    opts = choose(sets, found)
    if opts is not None:
        job = jobs.start(path, opts, config.models_toml_path())
        st.success(f"Started job `{job.id}`; its progress is below.")
    st.subheader("Jobs")
    polling = any(j.status == jobs.RUNNING for j in jobs.list_jobs(path, limit=10))
    st.fragment(jobs_panel, run_every=POLL if polling else None)(path, polling)


render()
