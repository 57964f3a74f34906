"""Run the cells of a batch: bounded concurrency per model, retries, every call committed at once.

Plain Python with no Streamlit: the CLI and the app both call `create_run` then `execute`.
"""

from __future__ import annotations

import asyncio
import functools
import os
import threading
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import duckdb

from dialogues.domain import conditions as conds
from dialogues.domain.config import current_user
from dialogues.domain.errors import UserError
from dialogues.domain.prompts import PromptSet
from dialogues.providers import context, gguf
from dialogues.providers import params as settings
from dialogues.providers.base import (
    GenParams,
    Message,
    ModelInfo,
    Provider,
    ProviderError,
    Reply,
    call_with_retries,
)
from dialogues.run import plan as planning
from dialogues.run.rows import reply_fields, request_json
from dialogues.store import connect, records
from dialogues.store.db import open_connection
from dialogues.store.writer import ArchiveWriter, Batch

SKIPPED = "skipped: an earlier turn of this conversation failed"


@dataclass
class RunRequest:
    """What a researcher asks for: a prompt set × models × conditions × repeats, and parameters.

    `conditions` wins over the older `condition` ('cold' | 'warm' | 'both', warm with `warmup`).
    """

    prompt_set: PromptSet
    models: list[ModelInfo]
    condition: str = "cold"
    repeats: int = 1
    temperature: float = 0.7
    seed: int | None = None
    max_tokens: int = 256
    concurrency: int = 4
    timeout_s: float = 120.0
    name: str | None = None
    warmup: PromptSet | None = None
    system_prompt: str | None = None
    attempts: int = 4
    api_base: str | None = None
    model_params: dict[str, dict[str, Any]] = field(default_factory=dict)
    """Each model's [models.NAME.params] from models.toml, recorded with the run."""
    explicit: tuple[str, ...] = ()
    """GenParams fields set explicitly on the command line: they win over model params."""
    conditions: tuple[conds.Condition, ...] = ()
    order: str = "random"
    order_seed: int | None = None
    """Seed of the random order; None draws one, which is stored with the run."""
    blind_required: bool = False
    """Annotators see this run's responses only blind."""


@dataclass
class Progress:
    """Cells of one model: planned, answered, failed."""

    total: int = 0
    done: int = 0
    errors: int = 0


@dataclass
class Summary:
    """How a run ended, per model and in all."""

    run_id: str
    total: int
    done: int
    errors: int
    per_model: dict[str, Progress] = field(default_factory=dict)


ProgressFn = Callable[[str, dict[str, Progress]], None]


@dataclass
class NewRun:
    """A run just recorded, with its plan and the open archive connection that wrote it.

    `execute` takes both over, so a fresh batch opens the archive once and does not read back
    the plan it has just written (~40 ms of a short batch). It runs once; `close` lets go of
    the connection if it never ran.
    """

    run: records.RunRecord
    plans: list[planning.ConversationPlan]
    db: duckdb.DuckDBPyConnection | None

    @property
    def id(self) -> str:
        return self.run.id

    def take(self) -> duckdb.DuckDBPyConnection:
        """The connection, once; a second execute must resume by id instead."""
        if self.db is None:
            raise ValueError(f"run {self.id} was already executed; resume it by its id")
        db, self.db = self.db, None
        return db

    def close(self) -> None:
        if self.db is not None:
            self.db.close()
            self.db = None


def create_run(archive: Path, req: RunRequest) -> str:
    """Record the models, prompt sets and the run itself; returns the run id."""
    new = record_run(archive, req)
    new.close()
    return new.id


def record_run(archive: Path, req: RunRequest) -> NewRun:
    """create_run, keeping the plan and the connection for `execute`."""
    chosen = req.conditions or planning.conditions_for(req.condition, req.warmup)
    order_seed = req.order_seed
    if order_seed is None and req.order == "random":
        order_seed = int.from_bytes(os.urandom(4), "big")
    plans = planning.build(req.prompt_set, [m.id for m in req.models], chosen, req.repeats,
                           order=req.order, order_seed=order_seed)  # fmt: skip
    prefixes = list({c.prefix.version_hash: c.prefix for c in chosen if c.prefix}.values())
    windows = plan_windows(req, plans)  # refuses a conversation that cannot fit, before any write
    run = records.RunRecord(
        id=records.new_id(),
        name=req.name,
        kind="batch",
        set_id=req.prompt_set.id,
        set_hash=req.prompt_set.version_hash,
        condition=",".join(c.name for c in chosen),
        repeats=req.repeats,
        temperature=req.temperature,
        seed=req.seed,
        max_tokens=req.max_tokens,
        concurrency=req.concurrency,
        total_cells=planning.total_calls(plans),
        warmup_set_id=prefixes[0].id if prefixes else None,
        warmup_set_hash=prefixes[0].version_hash if prefixes else None,
        created_by=current_user(),
        params={
            "models": [m.id for m in req.models],
            "system_prompt": req.system_prompt,
            "timeout_s": req.timeout_s,
            "attempts": req.attempts,
            "api_base": req.api_base,
            "model_params": req.model_params,
            "explicit": list(req.explicit),
            "windows": windows,
            # each condition as it was defined, so the run replays from the archive alone
            "conditions": [{**c.definition(), "hash": c.version_hash} for c in chosen],
            "order": req.order,
            "order_seed": order_seed,
            "blind_required": req.blind_required,
        },
    )
    db = open_connection(archive)
    try:
        db.execute("BEGIN TRANSACTION")
        for m in req.models:
            records.save_model(db, m)
        records.save_prompt_set(db, req.prompt_set)
        for prefix in prefixes:
            records.save_prompt_set(db, prefix)
        records.create_run(db, run)
        db.execute("COMMIT")
    except BaseException:
        db.close()  # an open transaction is rolled back with it: no half-recorded run
        raise
    return NewRun(run, plans, db)


def model_gen(base: GenParams, model_id: str, run_params: dict[str, Any]) -> GenParams:
    """The run's parameters with the model's own settings laid over, explicit flags kept."""
    own = (run_params.get("model_params") or {}).get(model_id) or {}
    gen = settings.apply(base, own, keep=run_params.get("explicit") or ())
    size = ((run_params.get("windows") or {}).get(model_id) or {}).get("num_ctx")
    return replace(gen, num_ctx=size) if size else gen


def plan_windows(req: RunRequest, plans: list[planning.ConversationPlan]) -> dict[str, Any]:
    """Per model, one context window that fits its longest conversation, capped by the model.

    Ollama reloads a model whenever num_ctx changes, so a model keeps one window for the run.
    A conversation that cannot fit even under-counted is refused here, with the numbers. An
    embedded model's texts are counted by its own tokenizer, others' estimated from bytes; the
    record says which (`counted_by`).
    """
    base = GenParams(temperature=req.temperature, max_tokens=req.max_tokens)
    run_params = {"model_params": req.model_params, "explicit": list(req.explicit)}
    out: dict[str, Any] = {}
    for info in req.models:
        gen = model_gen(base, info.id, run_params)
        own = req.model_params.get(info.id) or {}
        mine = [p for p in plans if p.model_id == info.id]
        if not mine:
            continue
        count = context.counter(info)  # the model's own tokenizer, where one is at hand
        needs = [
            context.need(p.conv_key, _sent_texts(p.system_prompt or req.system_prompt
                                                 or own.get("system"), p),
                         len(p.turns), dict(p.overrides).get("max_tokens", gen.max_tokens), count)
            for p in mine
        ]  # fmt: skip
        widest = max(needs, key=lambda n: n.high)
        limit, source = _limit(info, own)
        tightest = max(needs, key=lambda n: n.low)
        if limit and tightest.low > limit:
            raise UserError(
                f"model {info.id}: conversation {tightest.conv_key} needs at least about "
                f"{tightest.low} tokens (its prompts and one reply of up to {gen.max_tokens}) "
                f"but the model holds {limit} ({source}); nothing was run"
            )
        size: int | None = None
        if "num_ctx" in own:
            size = int(own["num_ctx"])
        elif info.provider in ("ollama", "gguf"):
            floor = gguf.N_CTX if info.provider == "gguf" else 0
            size = context.window(widest.high, info.context_length, floor)
        set_by = "num_ctx in models.toml" if "num_ctx" in own else ("estimate" if size else None)
        capped = size is not None and info.context_length == size < widest.high
        out[info.id] = {"num_ctx": size, "needed": widest.high, "context_length":
                        info.context_length, "set_by": set_by, "capped": capped,
                        "counted_by": "tokenizer" if count else "bytes"}  # fmt: skip
    return out


def _limit(info: ModelInfo, own: dict[str, Any]) -> tuple[int | None, str]:
    """The most tokens a model can hold for this run, and where that figure comes from."""
    if "num_ctx" in own:
        return int(own["num_ctx"]), "num_ctx in models.toml"
    told = {"ollama": "/api/show", "gguf": "the GGUF header"}.get(info.provider, "models.toml")
    return info.context_length, f"context length from {told}"


def _sent_texts(system: str | None, p: planning.ConversationPlan) -> list[str]:
    """Every text the conversation sends, system prompt first."""
    return ([system] if system else []) + [t.text for t in p.turns]


def run_plans(
    archive: Path, run_id: str
) -> tuple[records.RunRecord, list[planning.ConversationPlan]]:
    """Rebuild a stored run's plan from the archive, so a resume does exactly the same cells."""
    with connect(archive) as db:
        return _run_plans(db, run_id)


def _run_plans(
    db: duckdb.DuckDBPyConnection, run_id: str
) -> tuple[records.RunRecord, list[planning.ConversationPlan]]:
    run = records.get_run(db, run_id)
    if run is None:
        raise KeyError(run_id)
    params = run.params or {}
    prompt_set = records.load_prompt_set(db, run.set_id or "", run.set_hash or "")
    warmup = (
        records.load_prompt_set(db, run.warmup_set_id, run.warmup_set_hash or "")
        if run.warmup_set_id
        else None
    )
    stored = params.get("conditions")
    chosen = (
        _stored_conditions(db, stored)
        if stored
        else planning.conditions_for(run.condition or "cold", warmup)
    )
    checks = [(run.set_hash, prompt_set)]
    checks += [(c.prefix.version_hash, c.prefix) for c in chosen if c.prefix is not None]
    for wanted, ps in checks:
        if ps is not None and ps.version_hash != wanted:
            # Only some of the set's prompts are stored: planning would quietly drop cells.
            raise UserError(
                f"run {run.id}: the archive holds only {len(ps.prompts)} of the prompts of set "
                f"{ps.id}@{wanted}, so the run cannot be planned again "
                "(an archive rebuilt from a JSONL export older than this version?); nothing was run"
            )
    models = list(params.get("models", []))
    # Runs from before conditions were data ran in the fixed order.
    plans = planning.build(prompt_set, models, chosen, run.repeats or 1,
                           order=params.get("order") or "fixed",
                           order_seed=params.get("order_seed"))  # fmt: skip
    only = params.get("conv_keys")
    if only:  # a rerun replays chosen conversations of the original plan, keys and seeds intact
        plans = [p for p in plans if p.conv_key in only]
    return run, plans


def _stored_conditions(
    db: duckdb.DuckDBPyConnection, stored: list[dict[str, Any]]
) -> tuple[conds.Condition, ...]:
    """A run's conditions as it recorded them, prefix sets read from the archive."""
    out = []
    for data in stored:
        prefix = data.get("prefix")
        ps = records.load_prompt_set(db, prefix["id"], prefix["version_hash"]) if prefix else None
        out.append(conds.from_definition(data, ps))
    return tuple(out)


async def execute(
    archive: Path,
    run_id: str | NewRun,
    providers: dict[str, Provider],
    retry_errors: bool = False,
    on_progress: ProgressFn | None = None,
    stop: threading.Event | None = None,
) -> Summary:
    """Do every cell of a run that is not finished yet (and failed ones with retry_errors).

    run_id is a stored run's id, or a NewRun from `record_run` (nothing of it done yet).
    """
    if isinstance(run_id, NewRun):
        db = run_id.take()
        run, plans = run_id.run, run_id.plans
        state = _State({}, {}, {}, {})  # recorded a moment ago on this very connection
    else:
        # One connection reads the plan and what is already done, then becomes the writer's:
        # opening the file costs ~15 ms, which a short batch would otherwise pay three times.
        db = open_connection(archive)
        try:
            run, plans = _run_plans(db, run_id)
            state = _load_state(db, run_id)
        except BaseException:
            db.close()
            raise
    progress = _initial_progress(plans, state.outcomes)
    writer = ArchiveWriter(archive, db)
    ctx = _Context(archive, run, writer, state, progress, retry_errors, on_progress, stop)
    try:
        queues: dict[str, list[planning.ConversationPlan]] = {}
        for p in plans:
            if _needs_work(p, state.outcomes, retry_errors):
                queues.setdefault(p.model_id, []).append(p)
        workers = []
        for model_id, todo in queues.items():
            provider = providers[model_id]
            width = 1 if provider.info.provider == "gguf" else max(1, run.concurrency or 1)
            pending = asyncio.Queue[planning.ConversationPlan]()
            for p in todo:
                pending.put_nowait(p)
            workers += [asyncio.create_task(_worker(ctx, provider, pending)) for _ in range(width)]
        if on_progress:
            on_progress(run.id, progress)
        await asyncio.gather(*workers)
    finally:
        writer.close()
    return Summary(
        run.id,
        total=sum(p.total for p in progress.values()),
        done=sum(p.done for p in progress.values()),
        errors=sum(p.errors for p in progress.values()),
        per_model=progress,
    )


@dataclass
class _State:
    outcomes: dict[str, str]
    attempts: dict[str, int]
    conversations: dict[str, str]
    histories: dict[str, list[dict[str, Any]]]


@dataclass
class _Context:
    archive: Path
    run: records.RunRecord
    writer: ArchiveWriter
    state: _State
    progress: dict[str, Progress]
    retry_errors: bool
    on_progress: ProgressFn | None
    stop: threading.Event | None


def _load_state(db: duckdb.DuckDBPyConnection, run_id: str) -> _State:
    outcomes = records.cell_outcomes(db, run_id)
    attempts = dict(
        db.execute(
            "SELECT m.cell_key, max(m.attempt) FROM messages m "
            "JOIN conversations c ON c.id = m.conversation_id "
            "WHERE c.run_id = ? AND m.cell_key IS NOT NULL GROUP BY m.cell_key",
            [run_id],
        ).fetchall()
    )
    conversations = records.conversation_ids(db, run_id)
    histories: dict[str, list[dict[str, Any]]] = {}
    for conv_id in conversations.values():
        histories[conv_id] = records.history(db, conv_id)
    return _State(outcomes, attempts, conversations, histories)


def _initial_progress(
    plans: list[planning.ConversationPlan], outcomes: dict[str, str]
) -> dict[str, Progress]:
    progress: dict[str, Progress] = {}
    for p in plans:
        prog = progress.setdefault(p.model_id, Progress())
        for t in p.turns:
            prog.total += 1
            outcome = outcomes.get(t.cell_key)
            prog.done += outcome == "done"
            prog.errors += outcome == "error"
    return progress


def _needs_work(p: planning.ConversationPlan, outcomes: dict[str, str], retry: bool) -> bool:
    wanted = {None, "error"} if retry else {None}
    return any(outcomes.get(t.cell_key) in wanted for t in p.turns)


async def _worker(
    ctx: _Context, provider: Provider, pending: asyncio.Queue[planning.ConversationPlan]
) -> None:
    while not pending.empty():
        if ctx.stop is not None and ctx.stop.is_set():
            return
        await _converse(ctx, provider, pending.get_nowait())


async def _converse(ctx: _Context, provider: Provider, p: planning.ConversationPlan) -> None:
    """Run one conversation's remaining turns in order, continuing from what is stored."""
    run = ctx.run
    conv_id = ctx.state.conversations.get(p.conv_key)
    new_conv = conv_id is None
    if conv_id is None:
        conv_id = ctx.state.conversations[p.conv_key] = records.new_id()
    stored = {row["seq"]: row for row in ctx.state.histories.get(conv_id, [])}
    own = ((run.params or {}).get("model_params") or {}).get(p.model_id) or {}
    system = p.system_prompt or (run.params or {}).get("system_prompt") or own.get("system")
    sent: list[Message] = [{"role": "system", "content": system}] if system else []
    gen = GenParams(
        temperature=run.temperature if run.temperature is not None else 0.7,
        seed=planning.seed_for(run.seed, p.repeat),
        max_tokens=run.max_tokens or 256,
        timeout_s=float((run.params or {}).get("timeout_s") or 120.0),
    )
    gen = model_gen(gen, p.model_id, run.params or {})
    if p.overrides:  # the condition's own parameters; explicit command-line flags still win
        keep = set((run.params or {}).get("explicit") or ())
        gen = replace(gen, **{k: v for k, v in p.overrides if k not in keep})
    size = gen.num_ctx or provider.info.context_length
    floor: int | None = None  # the least the next prompt holds, from the last reply's counts
    failed = False
    for i, turn in enumerate(p.turns):
        user_seq, reply_seq = 2 * i + 1, 2 * i + 2
        outcome = ctx.state.outcomes.get(turn.cell_key)
        if outcome == "done":
            sent += [
                {"role": "user", "content": turn.text},
                {"role": "assistant", "content": stored[reply_seq]["content"] or ""},
            ]
            floor = _floor(stored[reply_seq])
            continue
        if outcome == "error" and not ctx.retry_errors:
            failed = True
            continue
        if ctx.stop is not None and ctx.stop.is_set():
            return
        attempt = ctx.state.attempts.get(turn.cell_key, 0) + 1
        rows: dict[str, list[dict[str, Any]]] = {}
        if new_conv:
            rows["conversations"] = [_conversation_row(conv_id, run, p, system, gen)]
            new_conv = False
        if user_seq not in stored:
            rows["messages"] = [_user_row(conv_id, user_seq, turn)]
            stored[user_seq] = rows["messages"][0]
        request = [*sent, {"role": "user", "content": turn.text}]
        if failed:
            reply_row = _error_row(conv_id, reply_seq, attempt, turn, provider, SKIPPED, "skipped")
        else:
            reply_row = await _call(provider, request, gen, ctx, conv_id, reply_seq, attempt, turn,
                                    (size, _plus(floor, turn.text)))  # fmt: skip
        rows.setdefault("messages", []).append(reply_row)
        ctx.writer.submit(Batch(rows))
        ok = reply_row["error"] is None
        _count(ctx, p.model_id, turn.cell_key, ok)
        if not ok:
            failed = True
            continue
        sent = [*request, {"role": "assistant", "content": reply_row["content"]}]
        floor = _floor(reply_row)


def _plus(floor: int | None, message: str) -> int | None:
    """The floor with the new message added: the least the prompt about to be sent holds."""
    return None if floor is None else floor + context.at_least(message)


def _floor(row: dict[str, Any]) -> int | None:
    """The least the conversation's next prompt holds, from a stored reply's token counts."""
    return context.next_floor(row["tokens_in"], row["tokens_out"], row["reasoning_tokens"],
                              row["content"], bool(row["reasoning"]))  # fmt: skip


async def _call(
    provider: Provider,
    request: list[Message],
    gen: GenParams,
    ctx: _Context,
    conv_id: str,
    seq: int,
    attempt: int,
    turn: planning.Turn,
    limits: tuple[int | None, int | None] = (None, None),
) -> dict[str, Any]:
    """One call with retries, as a message row; a prompt the server cut is a `context` error."""
    attempts_allowed = int((ctx.run.params or {}).get("attempts") or 4)
    # Yield to the event loop before starting the next call: its select() is where litellm's
    # executor threads and finished responses get the GIL. Going straight from one call's
    # bookkeeping into the next call's setup made every call wait longer (~5% at 32 at once).
    await asyncio.sleep(0)
    try:
        reply, used = await call_with_retries(provider, request, gen, attempts=attempts_allowed)
    except ProviderError as exc:
        return _error_row(conv_id, seq, attempt, turn, provider, str(exc), exc.kind, request, gen)
    except Exception as exc:  # noqa: BLE001 - one broken call must not sink the batch
        text = f"{type(exc).__name__}: {exc}"
        return _error_row(conv_id, seq, attempt, turn, provider, text, "internal", request, gen)
    why = context.cut(reply, *limits)
    if why is not None:  # never a silent answer to a conversation the model did not see whole
        return _error_row(conv_id, seq, attempt, turn, provider, why, "context", request, gen,
                          reply)  # fmt: skip
    return _reply_row(conv_id, seq, attempt, turn, provider, reply, used, request, gen)


def _count(ctx: _Context, model_id: str, cell_key: str, ok: bool) -> None:
    prog = ctx.progress[model_id]
    previous = ctx.state.outcomes.get(cell_key)
    if previous == "error":
        prog.errors -= 1
    prog.done += ok
    prog.errors += not ok
    ctx.state.outcomes[cell_key] = "done" if ok else "error"
    if ctx.on_progress:
        ctx.on_progress(ctx.run.id, ctx.progress)


def _conversation_row(
    conv_id: str,
    run: records.RunRecord,
    p: planning.ConversationPlan,
    system: str | None,
    gen: GenParams,
) -> dict[str, Any]:
    return {
        "id": conv_id,
        "run_id": run.id,
        "kind": "probe",
        "model_id": p.model_id,
        "condition": p.condition,
        "repeat": p.repeat,
        "conv_key": p.conv_key,
        "set_id": run.set_id,
        "set_hash": run.set_hash,
        "system_prompt": system,
        "params_json": _params_json(gen),
    }


def _user_row(conv_id: str, seq: int, turn: planning.Turn) -> dict[str, Any]:
    return records.MessageRow.prompt(
        "prompt", id=records.new_id(), conversation_id=conv_id, seq=seq, phase=turn.phase,
        prompt_key=turn.prompt.key, prompt_hash=turn.prompt.content_hash, content=turn.text,
    ).row()  # fmt: skip


def _base_reply(
    conv_id: str, seq: int, attempt: int, turn: planning.Turn, provider: Provider, **fields: Any
) -> dict[str, Any]:
    return records.MessageRow.reply(
        provider.info.id, id=records.new_id(), conversation_id=conv_id, seq=seq,
        attempt=attempt, phase=turn.phase, cell_key=turn.cell_key, prompt_key=turn.prompt.key,
        prompt_hash=turn.prompt.content_hash, **fields,
    ).row()  # fmt: skip


@functools.lru_cache(maxsize=256)
def _params(gen: GenParams) -> dict[str, Any]:
    """GenParams as a dict, once per distinct value (asdict costs ~5 us; a batch has a few)."""
    return settings.as_record(gen)


@functools.lru_cache(maxsize=256)
def _params_json(gen: GenParams) -> str | None:
    return records.to_json(_params(gen))


def _request_json(request: list[Message] | None, gen: GenParams | None, provider: Provider) -> Any:
    if request is None or gen is None:
        return None
    return request_json(provider, request, _params(gen))


def _reply_row(
    conv_id: str,
    seq: int,
    attempt: int,
    turn: planning.Turn,
    provider: Provider,
    reply: Reply,
    used: int,
    request: list[Message],
    gen: GenParams,
) -> dict[str, Any]:
    return _base_reply(
        conv_id, seq, attempt, turn, provider, **reply_fields(reply, used),
        request_json=_request_json(request, gen, provider),
    )  # fmt: skip


def _error_row(
    conv_id: str,
    seq: int,
    attempt: int,
    turn: planning.Turn,
    provider: Provider,
    error: str,
    kind: str,
    request: list[Message] | None = None,
    gen: GenParams | None = None,
    reply: Reply | None = None,
) -> dict[str, Any]:
    # the counts and raw answer of a reply refused for its context, for the record
    return _base_reply(
        conv_id, seq, attempt, turn, provider, error=error or kind, error_kind=kind,
        tokens_in=reply.tokens_in if reply else None,
        tokens_out=reply.tokens_out if reply else None,
        request_json=_request_json(request, gen, provider),
        raw_json=records.to_json(reply.raw) if reply and reply.raw else None,
    )  # fmt: skip
