"""Power of the paired condition test under a clustered design, by simulation.

The design simulated: `n_prompts` prompts, each answered `repeats` times in condition a and
in condition b (pairs matched by prompt × repeat). A prompt shifts both of its rates by a
random effect on the logit scale, normal with sd `prompt_sd`; condition a answers positive
with chance `baseline` at the median prompt, condition b with `baseline + effect`. The test is
the one `dialogues analyse` runs, exact McNemar on the discordant pairs (statsmodels'
mcnemar(exact=True) is this binomial test; scipy.stats.binom gives it vectorised here).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
from scipy import stats
from scipy.special import expit, logit

from dialogues.analyse import scores
from dialogues.domain.errors import UserError

TARGET = 0.8
ALPHA = 0.05
N_SIMS = 1000
PROMPT_SD = 1.0


def _check(baseline: float, effect: float) -> None:
    """A UserError naming the value when the two rates are not both strictly between 0 and 1."""
    if not 0 < baseline < 1:
        raise UserError(f"--baseline must be strictly between 0 and 1, got {baseline}")
    if not 0 < baseline + effect < 1:
        raise UserError(f"--baseline + --effect must be strictly between 0 and 1, got "
                        f"{baseline + effect:g}")  # fmt: skip


def mcnemar_p(only_a: np.ndarray, only_b: np.ndarray) -> np.ndarray:
    """Exact two-sided McNemar p per simulation (1 where there are no discordant pairs)."""
    n = only_a + only_b
    p = 2 * stats.binom.cdf(np.minimum(only_a, only_b), np.maximum(n, 1), 0.5)
    return np.where(n == 0, 1.0, np.minimum(p, 1.0))


def simulate(
    baseline: float, effect: float, n_prompts: int, repeats: int, *, prompt_sd: float = PROMPT_SD,
    alpha: float = ALPHA, n_sims: int = N_SIMS, seed: int = scores.DEFAULT_SEED,
) -> float:  # fmt: skip
    """The share of simulated studies in which the paired test finds p < alpha."""
    _check(baseline, effect)
    rng = np.random.default_rng(seed)
    u = rng.normal(0, prompt_sd, size=(n_sims, n_prompts, 1))
    pa = expit(logit(baseline) + u)
    pb = expit(logit(baseline + effect) + u)
    a = rng.random((n_sims, n_prompts, repeats)) < pa
    b = rng.random((n_sims, n_prompts, repeats)) < pb
    only_a = (a & ~b).sum(axis=(1, 2))
    only_b = (~a & b).sum(axis=(1, 2))
    return float((mcnemar_p(only_a, only_b) < alpha).mean())


@dataclass(frozen=True)
class Plan:
    """Power for each number of repeats (or prompts), and the smallest reaching the target."""

    baseline: float
    effect: float
    solve_for: str  # 'repeats' or 'prompts'
    fixed: int  # the other one: prompts when solving for repeats, and vice versa
    prompt_sd: float
    alpha: float
    target: float
    n_sims: int
    rows: list[dict[str, Any]] = field(default_factory=list)
    needed: int | None = None
    reason: str | None = None

    def as_json(self) -> dict[str, Any]:
        """JSON-ready."""
        return asdict(self)


def plan(
    baseline: float, effect: float, *, prompts: int | None = None, repeats: int | None = None,
    prompt_sd: float = PROMPT_SD, alpha: float = ALPHA, target: float = TARGET,
    n_sims: int = N_SIMS, up_to: int = 20, seed: int = scores.DEFAULT_SEED,
) -> Plan:  # fmt: skip
    """Repeats needed for `prompts` prompts, or prompts needed for `repeats` repeats."""
    _check(baseline, effect)
    if effect == 0:
        raise UserError("--effect must not be 0: there is no effect to find")
    if (prompts is None) == (repeats is None):
        raise UserError("give exactly one of --prompts (to plan repeats) or --repeats")
    solve_for, fixed = ("repeats", prompts) if prompts is not None else ("prompts", repeats)
    assert fixed is not None
    if solve_for == "repeats":
        steps = list(range(1, up_to + 1))
    else:
        steps = sorted({int(round(x)) for x in np.geomspace(5, 50 * up_to, 24)})
    rows, needed = [], None
    for step in steps:
        n_p, n_r = (fixed, step) if solve_for == "repeats" else (step, fixed)
        power = simulate(baseline, effect, n_p, n_r, prompt_sd=prompt_sd, alpha=alpha,
                         n_sims=n_sims, seed=seed)  # fmt: skip
        rows.append({"prompts": n_p, "repeats": n_r, "power": power})
        if power >= target:
            needed = step
            break
    reason = None if needed else f"{target:.0%} power not reached by {steps[-1]} {solve_for}"
    return Plan(baseline, effect, solve_for, fixed, prompt_sd, alpha, target, n_sims, rows,
                needed, reason)  # fmt: skip


def plan_lines(p: Plan) -> list[str]:
    """The plan as text: one line per step tried, then the answer."""
    lines = [f"baseline {p.baseline:g}, effect {p.effect:+g}, prompt sd {p.prompt_sd:g} (logit), "
             f"alpha {p.alpha:g}, {p.n_sims} simulations per row, exact McNemar"]  # fmt: skip
    lines += [f"  prompts {r['prompts']:>5}  repeats {r['repeats']:>3}  power {r['power']:.3f}"
              for r in p.rows]  # fmt: skip
    lines.append(p.reason or f"{p.solve_for} needed for {p.target:.0%} power: {p.needed}")
    return lines
