"""Model-to-model dialogue: A and B take turns, each keeping its own history.

A gets the opening; each visible reply becomes the other side's next user message (optionally
wrapped in a frame line). Thinking is stored with the turn and never crosses. A dialogue is one
conversation (kind 'dialogue') in a run of its own; the archive is the only state, so a session
can be reloaded by id between researcher checkpoints (the app keeps nothing else).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from dialogues.domain.config import current_user
from dialogues.domain.errors import UserError
from dialogues.providers import context, gguf, registry
from dialogues.providers import params as settings
from dialogues.providers.base import (
    GenParams,
    Message,
    Provider,
    ProviderError,
    call_with_retries,
)
from dialogues.run.rows import reply_fields, request_json
from dialogues.store import connect, records, transaction
from dialogues.store.records import insert_rows

SIDES = ("a", "b")
CONV_KEY = "dialogue"
RESEARCHER = "researcher"
OPENING_SUFFIXES = (".txt", ".md", ".markdown", ".text")


@dataclass
class DialogueSetup:
    """Everything needed to run, and to replay, one model-to-model dialogue."""

    a: str
    b: str
    rounds: int
    opening: str
    frame: str | None = None  # "The other model said: {reply}" or a prefix line
    system_a: str | None = None
    system_b: str | None = None
    temperature: float = 0.7
    seed: int | None = None
    max_tokens: int = 256
    timeout_s: float = 120.0
    attempts: int = 4
    api_base: str | None = None
    opening_source: str | None = None  # the file the opening was read from, if any
    name: str | None = None
    model_params: dict[str, dict[str, Any]] = field(default_factory=dict)  # models.toml, per model
    windows: dict[str, int] = field(default_factory=dict)  # num_ctx / n_ctx per side

    def model(self, side: str) -> str:
        return self.a if side == "a" else self.b

    def system(self, side: str) -> str | None:
        return self.system_a if side == "a" else self.system_b

    def gen(self) -> GenParams:
        return GenParams(self.temperature, self.seed, self.max_tokens, self.timeout_s)

    def side_gen(self, side: str) -> GenParams:
        """One side's parameters: the dialogue's, its model's settings over them, its window."""
        gen = settings.apply(self.gen(), self.model_params.get(self.model(side)) or {})
        size = self.windows.get(side)
        return replace(gen, num_ctx=size) if size else gen

    @classmethod
    def from_params(cls, params: dict[str, Any]) -> DialogueSetup:
        """A setup from a stored params_json (extra keys ignored)."""
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in params.items() if k in names})


@dataclass
class Turn:
    """One row of a dialogue transcript, as stored."""

    seq: int
    side: str
    speaker: str
    role: str
    phase: str
    content: str | None
    reasoning: str | None = None
    finish_reason: str | None = None
    error: str | None = None
    request: list[Message] | None = None
    tokens: tuple[int | None, int | None, int | None] = (None, None, None)  # in, out, reasoning


def read_opening(value: str) -> tuple[str, str | None]:
    """The opening text and the file it came from: an existing file is read, else it is text."""
    text = value.strip()
    if not text:
        raise UserError("the opening is empty")
    if "\n" not in text and len(text) < 4096:
        path = Path(text).expanduser()
        if path.is_file():
            try:
                content = path.read_text(encoding="utf-8").strip()
            except (OSError, UnicodeDecodeError) as exc:
                raise UserError(f"cannot read opening file {path}: {exc}") from exc
            if not content:
                raise UserError(f"opening file {path} is empty")
            return content, str(path)
        if path.suffix.lower() in OPENING_SUFFIXES and " " not in text:
            raise UserError(f"opening file {path} does not exist")
    return text, None


def frame_reply(frame: str | None, reply: str) -> str:
    """Wrap a reply for the other side: {reply} is replaced, else the frame is a prefix line."""
    if not frame:
        return reply
    if "{reply}" in frame:
        return frame.replace("{reply}", reply)
    return f"{frame}\n\n{reply}"


def check_setup(setup: DialogueSetup) -> None:
    """Refuse a setup that cannot run, naming the field."""
    if setup.rounds < 1:
        raise UserError("rounds must be at least 1")
    if setup.max_tokens < 1:
        raise UserError("max tokens must be at least 1")
    if not setup.opening.strip():
        raise UserError("the opening is empty")
    for side in SIDES:
        if not setup.model(side).strip():
            raise UserError(f"choose model {side.upper()}")


def plan_context(
    setup: DialogueSetup,
    providers: dict[str, Provider],
    catalogue: dict[str, registry.Declared] | None = None,
) -> DialogueSetup:
    """The setup with each model's settings, default system prompts and one window per side.

    A replayed setup keeps the settings and windows it recorded. A dialogue whose opening and
    replies cannot fit a side's model even under-counted is refused before it starts.
    """
    if not setup.model_params:
        declared = catalogue or {}
        found = {m: dict(declared[m].params) for m in (setup.a, setup.b) if m in declared}
        setup = replace(setup, model_params={m: p for m, p in found.items() if p})
    for side in SIDES:
        default = (setup.model_params.get(setup.model(side)) or {}).get("system")
        if default and not setup.system(side):
            setup = replace(setup, **{f"system_{side}": default})
    if setup.windows:
        return setup
    widest = max(setup.side_gen(s).max_tokens for s in SIDES)
    windows: dict[str, int] = {}
    for side in SIDES:
        info = providers[side].info
        own: dict[str, Any] = setup.model_params.get(setup.model(side)) or {}
        frames = [setup.frame] * setup.rounds if setup.frame else []
        texts = [t for t in (setup.system(side), setup.opening, *frames) if t]
        need = context.need(CONV_KEY, texts, 2 * setup.rounds, widest, context.counter(info))
        limit = own.get("num_ctx") or info.context_length
        if limit and need.low > limit:
            raise UserError(
                f"model {info.id} (side {side.upper()}): the opening and one reply of up to "
                f"{widest} tokens need at least about {need.low} tokens but the model holds "
                f"{limit}; nothing was run"
            )
        if "num_ctx" in own:
            windows[side] = int(own["num_ctx"])
        elif info.provider in ("ollama", "gguf"):
            floor = gguf.N_CTX if info.provider == "gguf" else 0
            windows[side] = context.window(need.high, info.context_length, floor)
    return replace(setup, windows=windows)


def resolve_providers(
    setup: DialogueSetup, catalogue: dict[str, registry.Declared] | None = None
) -> dict[str, Provider]:
    """One provider per side (the same model may speak on both)."""
    return {s: registry.resolve(setup.model(s), catalogue, setup.api_base) for s in SIDES}


# ---------------------------------------------------------------------------------------------
# Histories: a pure function of the stored turns


@dataclass
class SideState:
    """What one side has seen: its messages so far and the parts of its next user message."""

    messages: list[Message] = field(default_factory=list)
    pending: list[str] = field(default_factory=list)

    def request(self) -> list[Message]:
        return [*self.messages, {"role": "user", "content": "\n\n".join(self.pending)}]


def histories(turns: list[Turn], setup: DialogueSetup) -> dict[str, SideState]:
    """Each side's own view of the dialogue: its replies as assistant, the other's as user."""
    state = {s: SideState() for s in SIDES}
    for s in SIDES:
        system = setup.system(s)
        if system:
            state[s].messages.append({"role": "system", "content": system})
    for t in turns:
        if t.error is not None:
            continue
        if t.speaker == RESEARCHER:
            state[t.side].pending.append(t.content or "")
            continue
        mine, other = state[t.side], state[_other(t.side)]
        mine.messages = [*mine.request(), {"role": "assistant", "content": t.content or ""}]
        mine.pending = []
        # Only the visible reply crosses; the reasoning stays with its turn.
        other.pending.append(frame_reply(setup.frame, t.content or ""))
    return state


def rounds_done(turns: list[Turn]) -> int:
    """Complete rounds: a round ends when B has answered."""
    return sum(1 for t in turns if t.side == "b" and t.speaker != RESEARCHER and t.error is None)


def _other(side: str) -> str:
    return "b" if side == "a" else "a"


# ---------------------------------------------------------------------------------------------
# The session


TurnFn = Callable[[Turn], None]


class DialogueSession:
    """A dialogue in the archive, advanced one round (or one researcher action) at a time."""

    def __init__(
        self,
        archive: Path,
        conversation_id: str,
        run_id: str,
        setup: DialogueSetup,
        turns: list[Turn],
        status: str,
        stop_reason: str | None,
        providers: dict[str, Provider] | None = None,
        catalogue: dict[str, registry.Declared] | None = None,
    ):
        self.archive = Path(archive)
        self.conversation_id = conversation_id
        self.run_id = run_id
        self.setup = setup
        self.turns = turns
        self.status = status
        self.stop_reason = stop_reason
        self._providers = providers
        self._catalogue = catalogue

    # -- lifecycle ------------------------------------------------------------------------------

    @classmethod
    def start(
        cls,
        archive: Path,
        setup: DialogueSetup,
        providers: dict[str, Provider] | None = None,
        catalogue: dict[str, registry.Declared] | None = None,
        rerun_of: str | None = None,
    ) -> DialogueSession:
        """Record the run, the conversation and the opening; no model is called yet."""
        check_setup(setup)
        providers = providers or resolve_providers(setup, catalogue)
        setup = plan_context(setup, providers, catalogue)
        run_id, conv_id = records.new_id(), records.new_id()
        params = {**asdict(setup), "models": [setup.a, setup.b]}
        if rerun_of:
            params["rerun_of"] = rerun_of
        run = records.RunRecord(
            id=run_id, name=setup.name, kind="dialogue", set_id=None, set_hash=None,
            condition=None, repeats=1, temperature=setup.temperature, seed=setup.seed,
            max_tokens=setup.max_tokens, concurrency=1, total_cells=2 * setup.rounds,
            created_by=current_user(), params=params,
        )  # fmt: skip
        opening = Turn(1, "a", RESEARCHER, "user", "opening", setup.opening)
        with transaction(archive) as db:
            for p in {p.info.id: p for p in providers.values()}.values():
                records.save_model(db, p.info)
            records.create_run(db, run)
            insert_rows(db, "conversations", [_conversation_row(conv_id, run_id, setup, params)])
            insert_rows(db, "messages", [_researcher_row(conv_id, opening)])
        return cls(archive, conv_id, run_id, setup, [opening], "running", None, providers)

    @classmethod
    def load(
        cls,
        archive: Path,
        conversation_id: str,
        providers: dict[str, Provider] | None = None,
        catalogue: dict[str, registry.Declared] | None = None,
    ) -> DialogueSession:
        """A stored dialogue, ready to continue where it stopped."""
        with connect(archive) as db:
            conv = records.fetch_dicts(
                db, "SELECT * FROM conversations WHERE id = ?", [conversation_id]
            )
            if not conv or conv[0]["kind"] != "dialogue":
                raise UserError(f"no dialogue {conversation_id!r} in {archive}")
            rows = records.messages(db, conversation_id)
        c = conv[0]
        setup = DialogueSetup.from_params(_json(c["params_json"]) or {})
        return cls(archive, conversation_id, c["run_id"], setup, [_turn(r) for r in rows],
                   c.get("status") or "running", c.get("stop_reason"), providers, catalogue)  # fmt: skip

    @property
    def providers(self) -> dict[str, Provider]:
        if self._providers is None:
            self._providers = resolve_providers(self.setup, self._catalogue)
        return self._providers

    @property
    def running(self) -> bool:
        return self.status == "running"

    @property
    def rounds_done(self) -> int:
        return rounds_done(self.turns)

    # -- researcher actions ---------------------------------------------------------------------

    async def astep(self, on_turn: TurnFn | None = None, hold: bool = False) -> list[Turn]:
        """One round: A speaks, then B; stops early on an empty reply or an error.

        With hold, the last planned round leaves the dialogue open at a checkpoint (the app's
        researcher then finishes it or asks for more); without, it finishes there.
        """
        self._check_running()
        if self.rounds_done >= self.setup.rounds:
            self._plan(self.rounds_done + 1)  # a round past the plan: the plan grows to say so
        new: list[Turn] = []
        round_no = self.rounds_done + 1
        for side in SIDES:
            turn = await self._speak(side, round_no)
            new.append(turn)
            if on_turn:
                on_turn(turn)
            reason = _early_stop(turn, round_no)
            if reason:
                self._finish("error" if turn.error else "stopped", reason)
                return new
        if self.rounds_done >= self.setup.rounds and not hold:
            self.finish()
        return new

    def step(self, on_turn: TurnFn | None = None, hold: bool = False) -> list[Turn]:
        """One round, from synchronous code (the CLI, the app)."""
        return asyncio.run(self.astep(on_turn, hold))

    def finish(self) -> None:
        """End a dialogue whose rounds are done, as completed."""
        self._check_running()
        n = self.rounds_done
        self._finish("finished", f"completed {n} round{'s' if n != 1 else ''}")

    @property
    def planned_rounds_done(self) -> bool:
        return self.rounds_done >= self.setup.rounds

    async def arun(self, on_turn: TurnFn | None = None) -> None:
        """Every remaining round, with no checkpoints."""
        while self.running:
            await self.astep(on_turn)

    def run(self, on_turn: TurnFn | None = None) -> None:
        """Every remaining round, from synchronous code."""
        asyncio.run(self.arun(on_turn))

    def inject(self, side: str, text: str) -> Turn:
        """A researcher message, delivered to `side` as part of its next user message."""
        self._check_running()
        side = side.lower()
        if side not in SIDES:
            raise UserError(f"inject to side 'a' or 'b', not {side!r}")
        if not text.strip():
            raise UserError("the injected message is empty")
        turn = Turn(self._next_seq(), side, RESEARCHER, "user", "inject", text.strip())
        with transaction(self.archive) as db:
            insert_rows(db, "messages", [_researcher_row(self.conversation_id, turn)])
        self.turns.append(turn)
        return turn

    def stop(self, reason: str = "stopped by the researcher") -> None:
        """End the dialogue now, recording why."""
        self._check_running()
        self._finish("stopped", f"researcher: {reason}" if reason else "researcher")

    # -- internals ------------------------------------------------------------------------------

    def _check_running(self) -> None:
        if not self.running:
            raise UserError(
                f"dialogue {self.conversation_id} has ended ({self.stop_reason or self.status})"
            )

    def _next_seq(self) -> int:
        return max((t.seq for t in self.turns), default=0) + 1

    async def _speak(self, side: str, round_no: int) -> Turn:
        provider = self.providers[side]
        request = histories(self.turns, self.setup)[side].request()
        gen = self.setup.side_gen(side)
        seq = self._next_seq()
        try:
            reply, used = await call_with_retries(
                provider, request, gen, attempts=max(1, self.setup.attempts)
            )
        except ProviderError as exc:
            row = _model_row(self.conversation_id, seq, side, round_no, provider, request, gen,
                             error=str(exc) or exc.kind, error_kind=exc.kind)  # fmt: skip
        else:
            row = _model_row(self.conversation_id, seq, side, round_no, provider, request, gen,
                             **reply_fields(reply, used))  # fmt: skip
            why = context.cut(reply, gen.num_ctx or provider.info.context_length,
                              self._floor(side, request))  # fmt: skip
            if why is not None:  # the model did not see the whole dialogue: not an answer
                row.update(content=None, reasoning=None, error=why, error_kind="context")
        with transaction(self.archive) as db:
            insert_rows(db, "messages", [row])
        turn = _turn(row)
        self.turns.append(turn)
        return turn

    def _floor(self, side: str, request: list[Message]) -> int | None:
        """The least this side's prompt holds: its last prompt and reply, and the new message."""
        last = next((t for t in reversed(self.turns) if t.side == side and t.role == "assistant"
                     and t.error is None), None)  # fmt: skip
        if last is None:
            return None
        floor = context.next_floor(*last.tokens, last.content, bool(last.reasoning))
        return None if floor is None else floor + context.at_least(request[-1]["content"])

    def _plan(self, rounds: int) -> None:
        """Record a longer plan (stored with the conversation and its run, so a re-run repeats it)."""
        self.setup = replace(self.setup, rounds=rounds)
        with transaction(self.archive) as db:
            for table in ("conversations", "runs"):
                key = self.conversation_id if table == "conversations" else self.run_id
                row = db.execute(f"SELECT params_json FROM {table} WHERE id = ?", [key]).fetchone()
                params = {**((_json(row[0]) if row else None) or {}), "rounds": rounds}
                db.execute(f"UPDATE {table} SET params_json = ? WHERE id = ?",
                           [records.to_json(params), key])  # fmt: skip
            db.execute("UPDATE runs SET total_cells = ? WHERE id = ?", [2 * rounds, self.run_id])

    def _finish(self, status: str, reason: str) -> None:
        with transaction(self.archive) as db:
            db.execute(
                "UPDATE conversations SET status = ?, stop_reason = ? WHERE id = ?",
                [status, reason, self.conversation_id],
            )
        self.status, self.stop_reason = status, reason


def _early_stop(turn: Turn, round_no: int) -> str | None:
    """Why the dialogue cannot go on after this turn, or None."""
    who = f"{turn.side.upper()} ({turn.speaker}) in round {round_no}"
    if turn.error is not None:
        return f"error from {who}: {turn.error}"
    if not (turn.content or "").strip():
        detail = f"finish reason {turn.finish_reason or 'unknown'}"
        if turn.reasoning:
            detail += f", {len(turn.reasoning)} characters of thinking and no answer"
        return f"empty reply from {who} ({detail})"
    return None


# ---------------------------------------------------------------------------------------------
# Whole dialogues and transcripts


def run_dialogue(
    archive: Path,
    setup: DialogueSetup,
    providers: dict[str, Provider] | None = None,
    catalogue: dict[str, registry.Declared] | None = None,
    on_turn: TurnFn | None = None,
) -> DialogueSession:
    """Start a dialogue and run all its rounds without checkpoints (the CLI)."""
    session = DialogueSession.start(archive, setup, providers, catalogue)
    session.run(on_turn)
    return session


def transcript(archive: Path, conversation_id: str) -> list[Turn]:
    """Every stored row of a conversation (any kind), failed attempts included, in order."""
    with connect(archive) as db:
        rows = records.messages(db, conversation_id)
    return [_turn(r) for r in rows]


def turns_json(turns: list[Turn]) -> list[dict[str, Any]]:
    """The models' turns as `--json` prints them: speaker, content, reasoning."""
    return [
        {"speaker": t.speaker, "content": t.content, "reasoning": t.reasoning}
        for t in turns
        if t.speaker != RESEARCHER and t.error is None
    ]


def undelivered(turns: list[Turn]) -> set[int]:
    """Seqs of injected messages their side never received (it has not spoken since)."""
    waiting: dict[str, list[int]] = {side: [] for side in SIDES}
    for t in turns:
        if t.speaker == RESEARCHER and t.phase == "inject":
            waiting[t.side].append(t.seq)
        elif t.role == "assistant" and t.error is None and t.side in waiting:
            waiting[t.side] = []
    return {seq for seqs in waiting.values() for seq in seqs}


def researcher_script(turns: list[Turn]) -> list[tuple[int, str, str]]:
    """The researcher's injections as (after round, side, text), to replay them."""
    script, done = [], 0
    for t in turns:
        if t.speaker == RESEARCHER and t.phase == "inject":
            script.append((done, t.side, t.content or ""))
        elif t.side == "b" and t.speaker != RESEARCHER and t.error is None:
            done += 1
    return script


# ---------------------------------------------------------------------------------------------
# Rows


def _conversation_row(
    conv_id: str, run_id: str, setup: DialogueSetup, params: dict[str, Any]
) -> dict[str, Any]:
    return {
        "id": conv_id,
        "run_id": run_id,
        "kind": "dialogue",
        "model_id": setup.a,
        "model_b_id": setup.b,
        "repeat": 1,
        "conv_key": CONV_KEY,
        "system_prompt": setup.system_a if setup.system_a == setup.system_b else None,
        "params_json": records.to_json(params),
        "status": "running",
    }


def _researcher_row(conv_id: str, turn: Turn) -> dict[str, Any]:
    return records.MessageRow.prompt(
        RESEARCHER, id=records.new_id(), conversation_id=conv_id, seq=turn.seq,
        phase=turn.phase, side=turn.side, prompt_key=turn.phase, content=turn.content,
    ).row()  # fmt: skip


def _model_row(
    conv_id: str,
    seq: int,
    side: str,
    round_no: int,
    provider: Provider,
    request: list[Message],
    gen: GenParams,
    **fields: Any,
) -> dict[str, Any]:
    return records.MessageRow.reply(
        provider.info.id, id=records.new_id(), conversation_id=conv_id, seq=seq,
        phase="dialogue", side=side,
        # A cell per planned turn, so `dialogues runs` counts a dialogue like a batch.
        cell_key=f"{CONV_KEY}#r{round_no}:{side}",
        request_json=request_json(provider, request, settings.as_record(gen)), **fields,
    ).row()  # fmt: skip


def _turn(row: dict[str, Any]) -> Turn:
    request = _json(row.get("request_json"))
    return Turn(
        seq=row["seq"],
        side=row.get("side") or "",
        speaker=row.get("speaker") or "",
        role=row["role"],
        phase=row.get("phase") or "",
        content=row.get("content"),
        reasoning=row.get("reasoning"),
        finish_reason=row.get("finish_reason"),
        error=row.get("error"),
        request=request.get("messages") if isinstance(request, dict) else None,
        tokens=(row.get("tokens_in"), row.get("tokens_out"), row.get("reasoning_tokens")),
    )


def _json(value: Any) -> Any:
    return json.loads(value) if isinstance(value, str) else value
