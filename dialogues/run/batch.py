"""From a researcher's request to a finished run: resolve models and prompt sets, then execute.

The CLI and the app both come through here; runner.py does the calls.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from dialogues.domain import conditions, prompts
from dialogues.domain.errors import ConditionFileError, UserError
from dialogues.providers import registry
from dialogues.providers.base import Provider
from dialogues.run import runner
from dialogues.store import connect, records


@dataclass
class BatchOptions:
    """Everything `dialogues run` accepts."""

    prompt_ref: str | None = None
    model_refs: tuple[str, ...] = ()
    conditions: tuple[str, ...] = ("cold",)
    """Condition names (prompts/conditions/) or files; 'both' is cold and warm."""
    warmup: str | None = None
    """A warm-up set replacing the prefix of every condition that has one."""
    order: str = "random"
    order_seed: int | None = None
    blind_required: bool = False
    repeats: int = 1
    concurrency: int = 4
    temperature: float = 0.7
    seed: int | None = None
    max_tokens: int = 256
    timeout: float = 120.0
    api_base: str | None = None
    system_prompt: str | None = None
    name: str | None = None
    resume_id: str | None = None
    retry_errors: bool = False
    models_file: Path | None = None
    as_json: bool = False
    quiet: bool = False
    run_id_file: Path | None = None  # the run id is written here once the run exists
    explicit: tuple[str, ...] = ()  # parameters given on the command line: they beat models.toml


def providers_for(
    refs: list[str], models_file: Path | None, api_base: str | None = None
) -> dict[str, Provider]:
    """Resolve every model reference once; unknown ones are user errors naming the model."""
    catalogue = registry.load_catalogue(models_file) if models_file else {}
    providers = {ref: registry.resolve(ref, catalogue, api_base) for ref in refs}
    if any(p.info.provider == "ollama" for p in providers.values()):
        from dialogues.providers import ollama

        # Say it once, before the run, rather than as one connection error per cell.
        if not ollama.ollama_available():
            raise ollama.unavailable(ollama.normalize_host())
    return providers


def resolve_conditions(
    refs: tuple[str, ...], warmup: str | None = None
) -> tuple[conditions.Condition, ...]:
    """Condition names or files → checked conditions ('both' stays cold + warm)."""
    names = [
        n for ref in refs or ("cold",) for n in (("cold", "warm") if ref == "both" else (ref,))
    ]
    chosen = [conditions.load(n) for n in dict.fromkeys(names)]
    if warmup is not None:
        ps = prompts.load(warmup)
        chosen = [replace(c, prefix=ps) if c.prefix is not None else c for c in chosen]
    seen: dict[str, str] = {}
    for c in chosen:
        if c.name in seen:
            raise ConditionFileError(f"{c.path}: id: {c.name!r} is also the id of {seen[c.name]}")
        seen[c.name] = c.path or c.name
    return tuple(chosen)


def check_params(chosen: tuple[conditions.Condition, ...], providers: dict[str, Provider]) -> None:
    """Refuse, before anything is stored, a condition parameter a chosen back end cannot take."""
    for c in chosen:
        if "reasoning_effort" not in dict(c.params):
            continue
        for p in providers.values():
            if p.info.provider == "gguf":  # llama.cpp in-process has no reasoning effort
                raise ConditionFileError(
                    f"{c.path or c.name}: params.reasoning_effort: model {p.info.id} "
                    "(embedded GGUF) does not take a reasoning effort"
                )


def prepare(archive: Path, opts: BatchOptions) -> tuple[str, dict[str, Provider]]:
    """Create the run (or find the one to resume) and the providers it needs."""
    run, providers = _start(archive, opts)
    if isinstance(run, runner.NewRun):
        run.close()
        return run.id, providers
    return run, providers


def _start(archive: Path, opts: BatchOptions) -> tuple[str | runner.NewRun, dict[str, Provider]]:
    """prepare, but a new run comes with its plan and open connection, ready to execute."""
    if opts.resume_id:
        with connect(archive) as db:
            run = records.get_run(db, opts.resume_id)
        if run is None:
            raise UserError(f"no run {opts.resume_id!r} in {archive}")
        if run.kind != "batch":
            raise UserError(
                f"run {run.id} is a {run.kind} run; only batches resume "
                "(use `dialogues rerun CONVERSATION` for a dialogue)"
            )
        refs = list((run.params or {}).get("models", []))
        base = (run.params or {}).get("api_base") or opts.api_base
        return run.id, providers_for(refs, opts.models_file, base)
    if not opts.prompt_ref:
        raise UserError("--prompts is required (a prompt-set id or a file)")
    if not opts.model_refs:
        raise UserError("give at least one --model")
    prompt_set = prompts.load(opts.prompt_ref)
    chosen = resolve_conditions(opts.conditions, opts.warmup)
    refs = list(dict.fromkeys(opts.model_refs))
    providers = providers_for(refs, opts.models_file, opts.api_base)
    check_params(chosen, providers)
    request = runner.RunRequest(
        prompt_set=prompt_set,
        models=[p.info for p in providers.values()],
        conditions=chosen,
        order=opts.order,
        order_seed=opts.order_seed,
        blind_required=opts.blind_required,
        repeats=opts.repeats,
        temperature=opts.temperature,
        seed=opts.seed,
        max_tokens=opts.max_tokens,
        concurrency=opts.concurrency,
        timeout_s=opts.timeout,
        name=opts.name,
        system_prompt=opts.system_prompt,
        api_base=opts.api_base,
        model_params=registry.model_params(refs, opts.models_file),
        explicit=opts.explicit,
    )
    return runner.record_run(archive, request), providers


async def run(
    archive: Path,
    opts: BatchOptions,
    progress: bool = False,
    stop: threading.Event | None = None,
) -> runner.Summary:
    """Prepare and execute a batch, with a progress bar on the terminal if asked."""
    run, providers = _start(archive, opts)
    run_id = run if isinstance(run, str) else run.id
    bar = None
    try:
        if opts.run_id_file:
            opts.run_id_file.write_text(run_id + "\n", encoding="utf-8")
        bar = _ProgressBar(run_id) if progress else None
        return await runner.execute(archive, run, providers, opts.retry_errors,
                                    bar.update if bar else None, stop)  # fmt: skip
    finally:
        if isinstance(run, runner.NewRun):
            run.close()  # only if execute never took the connection
        if bar:
            bar.close()


class _ProgressBar:
    """tqdm over all cells, errors in the postfix; redrawn at most 10 times a second."""

    INTERVAL_S = 0.1  # a redraw per call would cost each of hundreds of calls a second a write

    def __init__(self, run_id: str):
        from tqdm import tqdm

        self.bar: Any = tqdm(desc=f"run {run_id}", unit="call", dynamic_ncols=True)
        self._drawn = 0.0
        self._latest: dict[str, runner.Progress] | None = None

    def update(self, run_id: str, per_model: dict[str, runner.Progress]) -> None:
        self._latest = per_model
        now = time.monotonic()
        if now - self._drawn >= self.INTERVAL_S or _finished(per_model) == _total(per_model):
            self._drawn = now
            self._show(per_model)
            self.bar.refresh()

    def _show(self, per_model: dict[str, runner.Progress]) -> None:
        self.bar.total = _total(per_model)
        self.bar.n = _finished(per_model)
        errors = sum(p.errors for p in per_model.values())
        self.bar.set_postfix_str(f"errors={errors}", refresh=False)

    def close(self) -> None:
        if self._latest is not None:
            self._show(self._latest)  # the last state, whenever it came; close() draws it
        self.bar.close()


def _total(per_model: dict[str, runner.Progress]) -> int:
    return sum(p.total for p in per_model.values())


def _finished(per_model: dict[str, runner.Progress]) -> int:
    return sum(p.done + p.errors for p in per_model.values())
