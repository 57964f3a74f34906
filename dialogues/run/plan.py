"""Prompt set × models × conditions × repeats → the conversations and calls of a run, in order."""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from dialogues.domain import conditions as conds
from dialogues.domain.prompts import Prompt, PromptSet

CONDITIONS = ("cold", "warm")
ORDERS = ("random", "fixed")


@dataclass(frozen=True)
class Turn:
    """One planned call: a prompt sent inside a conversation, as its condition frames it."""

    cell_key: str
    phase: str  # 'warmup' | 'probe'
    prompt: Prompt
    content: str = ""
    """The exact text sent (the prompt with its condition's framing); the prompt's text if empty."""

    @property
    def text(self) -> str:
        return self.content or self.prompt.content


@dataclass(frozen=True)
class ConversationPlan:
    """One planned conversation: its model, condition, repeat and the calls it makes, in order."""

    conv_key: str
    model_id: str
    condition: str
    repeat: int
    turns: tuple[Turn, ...]
    system_prompt: str | None = None
    """The condition's system prompt (None: the run's own, if any)."""
    overrides: tuple[tuple[str, Any], ...] = field(default=())
    """The condition's generation-parameter overrides."""


def conditions_for(choice: str, warmup: PromptSet | None = None) -> tuple[conds.Condition, ...]:
    """'cold' | 'warm' | 'both' (or 'cold,warm') → the shipped conditions, warm with `warmup`."""
    names = ("cold", "warm") if choice == "both" else tuple(choice.split(","))
    out = []
    for name in names:
        if name not in CONDITIONS:
            raise ValueError(f"condition must be cold, warm or both, not {choice!r}")
        if name == "warm" and warmup is None:
            raise ValueError("the warm condition needs a warm-up prompt set")
        out.append(conds.COLD if name == "cold" else conds.warm(warmup))  # type: ignore[arg-type]
    return tuple(out)


def seed_for(seed: int | None, repeat: int) -> int | None:
    """Repeat n uses seed + n - 1, so repeats differ but a rerun with the same seed matches."""
    return None if seed is None else seed + repeat - 1


def build(
    prompt_set: PromptSet,
    models: list[str],
    condition: str | Sequence[conds.Condition] = "cold",
    repeats: int = 1,
    warmup: PromptSet | None = None,
    order: str = "fixed",
    order_seed: int | None = None,
) -> list[ConversationPlan]:
    """Every conversation of a run: fixed order (repeat → prompt → condition → model) or shuffled.

    A random order is seeded, so the same seed gives the same order (resume, rerun).
    """
    if repeats < 1:
        raise ValueError("repeats must be at least 1")
    if not models:
        raise ValueError("at least one model is needed")
    chosen = conditions_for(condition, warmup) if isinstance(condition, str) else tuple(condition)
    if not chosen:
        raise ValueError("at least one condition is needed")
    names = [c.name for c in chosen]
    if len(set(names)) != len(names):
        raise ValueError(f"a condition is named twice: {', '.join(names)}")
    if order not in ORDERS:
        raise ValueError(f"order must be random or fixed, not {order!r}")
    groups = (
        [prompt_set.prompts]
        if prompt_set.mode == "conversation"
        else [(p,) for p in prompt_set.prompts]
    )
    plans = []
    for repeat in range(1, repeats + 1):
        for group in groups:
            for cond in chosen:
                for model in models:
                    plans.append(_conversation(model, cond, repeat, group, prompt_set))
    if order == "random":
        # Drift in a hosted model during a run must not land on one condition.
        random.Random(order_seed).shuffle(plans)
    return plans


def _conversation(
    model: str,
    cond: conds.Condition,
    repeat: int,
    group: tuple[Prompt, ...],
    prompt_set: PromptSet,
) -> ConversationPlan:
    conv_key = f"{model}|{cond.name}|{repeat}"
    if prompt_set.mode != "conversation":
        conv_key += f"|{group[0].key}"
    turns: list[Turn] = []
    if cond.prefix is not None:
        turns += [Turn(f"{conv_key}#warmup:{p.key}", "warmup", p) for p in cond.prefix.prompts]
    turns += [Turn(f"{conv_key}#probe:{p.key}", "probe", p, cond.frame(p.content)) for p in group]
    return ConversationPlan(conv_key, model, cond.name, repeat, tuple(turns),
                            cond.system_prompt, cond.params)  # fmt: skip


def total_calls(plans: list[ConversationPlan]) -> int:
    """How many calls a run plans."""
    return sum(len(p.turns) for p in plans)
