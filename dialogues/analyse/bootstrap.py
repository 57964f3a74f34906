"""The one bootstrap: percentile intervals over items resampled with replacement.

One convention for every figure (scores and agreement alike): SEED, N_BOOT resamples, a
central LEVEL percentile interval. A fixed seed gives a fixed result.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

SEED = 20260108  # the SEI v3.0 date; any fixed value gives reproducible intervals
N_BOOT = 2000
LEVEL = 0.95


def resamples(n: int, n_boot: int, rng: np.random.Generator) -> np.ndarray:
    """n_boot rows of n item indices drawn with replacement."""
    return rng.integers(0, n, size=(n_boot, n))


def interval(values: Iterable[float], level: float = LEVEL) -> tuple[float, float]:
    """The central `level` percentile interval of resampled statistics."""
    tail = (1 - level) / 2 * 100
    low, high = np.percentile(np.asarray(list(values), dtype=float), [tail, 100 - tail])
    return float(low), float(high)


def means(arr: np.ndarray, rng: np.random.Generator, n_boot: int = N_BOOT) -> np.ndarray:
    """Means of n_boot resamples of arr (vectorized: the fast path for a mean)."""
    return arr[resamples(len(arr), n_boot, rng)].mean(axis=1)
