"""Prompt set × models × condition × repeats → the conversations and calls of a run."""

from __future__ import annotations

from dataclasses import dataclass

from dialogues.domain.prompts import Prompt, PromptSet

CONDITIONS = ("cold", "warm")


@dataclass(frozen=True)
class Turn:
    """One planned call: a prompt sent inside a conversation."""

    cell_key: str
    phase: str  # 'warmup' | 'probe'
    prompt: Prompt


@dataclass(frozen=True)
class ConversationPlan:
    """One planned conversation: its model, condition, repeat and the calls it makes, in order."""

    conv_key: str
    model_id: str
    condition: str
    repeat: int
    turns: tuple[Turn, ...]


def conditions_for(choice: str) -> tuple[str, ...]:
    """'cold' | 'warm' | 'both' → the conditions to schedule."""
    if choice == "both":
        return CONDITIONS
    if choice not in CONDITIONS:
        raise ValueError(f"condition must be cold, warm or both, not {choice!r}")
    return (choice,)


def seed_for(seed: int | None, repeat: int) -> int | None:
    """Repeat n uses seed + n - 1, so repeats differ but a rerun with the same seed matches."""
    return None if seed is None else seed + repeat - 1


def build(
    prompt_set: PromptSet,
    models: list[str],
    condition: str = "cold",
    repeats: int = 1,
    warmup: PromptSet | None = None,
) -> list[ConversationPlan]:
    """Every conversation of a run, interleaved so a stopped run is balanced across models."""
    if repeats < 1:
        raise ValueError("repeats must be at least 1")
    if not models:
        raise ValueError("at least one model is needed")
    conds = conditions_for(condition)
    if "warm" in conds and warmup is None:
        raise ValueError("the warm condition needs a warm-up prompt set")
    groups = (
        [prompt_set.prompts]
        if prompt_set.mode == "conversation"
        else [(p,) for p in prompt_set.prompts]
    )
    plans = []
    for repeat in range(1, repeats + 1):
        for group in groups:
            for cond in conds:
                for model in models:
                    plans.append(_conversation(model, cond, repeat, group, prompt_set, warmup))
    return plans


def _conversation(
    model: str,
    cond: str,
    repeat: int,
    group: tuple[Prompt, ...],
    prompt_set: PromptSet,
    warmup: PromptSet | None,
) -> ConversationPlan:
    conv_key = f"{model}|{cond}|{repeat}"
    if prompt_set.mode != "conversation":
        conv_key += f"|{group[0].key}"
    turns: list[Turn] = []
    if cond == "warm" and warmup is not None:
        turns += [Turn(f"{conv_key}#warmup:{p.key}", "warmup", p) for p in warmup.prompts]
    turns += [Turn(f"{conv_key}#probe:{p.key}", "probe", p) for p in group]
    return ConversationPlan(conv_key, model, cond, repeat, tuple(turns))


def total_calls(plans: list[ConversationPlan]) -> int:
    """How many calls a run plans."""
    return sum(len(p.turns) for p in plans)
