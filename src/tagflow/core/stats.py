"""Percentile bootstrap intervals, for every family's evaluation: of a mean over items
(`bootstrap_ci`) and of any statistic of resampled items (`bootstrap_stat`: correlation,
macro-F1, MAE). numpy `default_rng(seed)`, so a seed always gives the same interval."""
from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np


def _check(n: int, n_boot: int, level: float, what: str) -> None:
    if n == 0:
        raise ValueError(f"{what} needs at least one value")
    if n_boot < 1:
        raise ValueError(f"n_boot must be at least 1, not {n_boot}")
    if not 0 < level < 1:
        raise ValueError(f"level must be strictly between 0 and 1, not {level}")


def _interval(samples: np.ndarray, level: float) -> tuple[float, float]:
    alpha = (1 - level) / 2
    low, high = np.quantile(samples, [alpha, 1 - alpha])
    return float(low), float(high)


def bootstrap_ci(values: Sequence[float], n_boot: int = 1000, seed: int = 0,
                 level: float = 0.95) -> tuple[float, float]:
    """Percentile bootstrap interval of the mean: `n_boot` resamples of the values with
    replacement, then the (1 - level)/2 and (1 + level)/2 quantiles of the resampled means.
    Empty input: ValueError."""
    arr = np.asarray(values, dtype=float)
    _check(arr.size, n_boot, level, "bootstrap_ci")
    rng = np.random.default_rng(seed)
    means = arr[rng.integers(0, arr.size, size=(n_boot, arr.size))].mean(axis=1)
    return _interval(means, level)


def bootstrap_stats(statistic: Callable[[np.ndarray], Sequence[float]], n: int, n_boot: int = 1000,
                    seed: int = 0, level: float = 0.95) -> list[tuple[float, float]]:
    """Percentile bootstrap intervals of each value of `statistic(indices)` (a sequence of
    numbers: several metrics from one pass) over `n_boot` resamples of the item indices 0..n-1
    with replacement; the statistic reads its own arrays at those indices. Resamples where a
    value is NaN (e.g. a correlation of a constant resample) are left out of that value's interval."""
    _check(n, n_boot, level, "bootstrap_stats")
    rng = np.random.default_rng(seed)
    samples = np.array([statistic(rng.integers(0, n, size=n)) for _ in range(n_boot)], dtype=float)
    out = []
    for column in samples.reshape(n_boot, -1).T:
        column = column[~np.isnan(column)]
        out.append(_interval(column, level) if column.size else (float("nan"), float("nan")))
    return out


def bootstrap_stat(statistic: Callable[[np.ndarray], float], n: int, n_boot: int = 1000,
                   seed: int = 0, level: float = 0.95) -> tuple[float, float]:
    """`bootstrap_stats` of a statistic with one value."""
    return bootstrap_stats(lambda idx: [statistic(idx)], n, n_boot, seed, level)[0]
