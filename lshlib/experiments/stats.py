"""Statistics for claims over seeds and test examples: the mean and spread of a metric over
seeds, a paired interval for a difference between two variants over the same seeds, a paired
bootstrap over test examples, McNemar's exact test, and the words a difference deserves.

The seed interval is Student's t on the per-seed differences (variant and reference trained with
the same seed: same initial weights, same data order); the bootstrap resamples test examples
with both models' per-example scores kept together.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np
from scipy import stats as scipy_stats

__all__ = [
    "seed_summary",
    "paired_seed_difference",
    "welch_difference",
    "holm",
    "paired_bootstrap",
    "mcnemar",
    "in_words",
]


def _finite(values: Sequence[float], name: str) -> np.ndarray:
    array = np.asarray(values, dtype=float)
    if array.ndim != 1 or array.size == 0:
        raise ValueError(f"{name} must be a non-empty list of numbers, got {values!r}")
    if not np.isfinite(array).all():
        raise ValueError(f"{name} holds a NaN or infinite value: {values!r}")
    return array


def seed_summary(values: Sequence[float]) -> dict[str, float]:
    """Mean, sample standard deviation (``nan`` for one seed), count, min and max."""
    x = _finite(values, "values")
    sd = float(x.std(ddof=1)) if x.size > 1 else math.nan
    return {
        "mean": float(x.mean()),
        "sd": sd,
        "n": int(x.size),
        "min": float(x.min()),
        "max": float(x.max()),
    }


def paired_seed_difference(
    variant: Mapping[int, float], reference: Mapping[int, float], level: float = 0.95
) -> dict[str, float]:
    """``variant - reference`` over the seeds both have: mean, standard deviation of the per-seed
    differences and the ``level`` t interval (``nan`` bounds with fewer than 2 shared seeds)."""
    if not 0.0 < level < 1.0:
        raise ValueError(f"level must lie in (0, 1), got {level}")
    seeds = sorted(set(variant) & set(reference))
    if not seeds:
        raise ValueError(
            f"no shared seeds: variant has {sorted(variant)}, reference has {sorted(reference)}"
        )
    d = _finite([variant[s] - reference[s] for s in seeds], "differences")
    mean = float(d.mean())
    if d.size < 2:
        return {"mean": mean, "sd": math.nan, "n": 1, "low": math.nan, "high": math.nan}
    sd = float(d.std(ddof=1))
    half = float(scipy_stats.t.ppf(0.5 + level / 2, d.size - 1)) * sd / math.sqrt(d.size)
    se = sd / math.sqrt(d.size)
    p = (
        1.0
        if se == 0 and mean == 0
        else (0.0 if se == 0 else float(2 * scipy_stats.t.sf(abs(mean) / se, d.size - 1)))
    )
    return {
        "mean": mean,
        "sd": sd,
        "n": int(d.size),
        "low": mean - half,
        "high": mean + half,
        "p": p,
        "df": int(d.size - 1),
    }


def welch_difference(
    a: Sequence[float], b: Sequence[float], level: float = 0.95
) -> dict[str, float]:
    """``mean(a) - mean(b)`` for two groups that share nothing (no pairing): Welch's t interval
    (Welch-Satterthwaite degrees of freedom) and its two-sided p-value; each group needs at least
    2 values."""
    if not 0.0 < level < 1.0:
        raise ValueError(f"level must lie in (0, 1), got {level}")
    x, y = _finite(a, "a"), _finite(b, "b")
    if x.size < 2 or y.size < 2:
        raise ValueError(f"Welch needs at least 2 values per group, got {x.size} and {y.size}")
    va, vb = x.var(ddof=1) / x.size, y.var(ddof=1) / y.size
    mean = float(x.mean() - y.mean())
    se = math.sqrt(va + vb)
    if se == 0:
        return {
            "mean": mean,
            "low": mean,
            "high": mean,
            "p": float(mean == 0),
            "df": math.inf,
            "n_a": int(x.size),
            "n_b": int(y.size),
        }
    df = (va + vb) ** 2 / (va**2 / (x.size - 1) + vb**2 / (y.size - 1))
    half = float(scipy_stats.t.ppf(0.5 + level / 2, df)) * se
    p = float(2 * scipy_stats.t.sf(abs(mean) / se, df))
    return {
        "mean": mean,
        "low": mean - half,
        "high": mean + half,
        "p": p,
        "df": float(df),
        "n_a": int(x.size),
        "n_b": int(y.size),
    }


def holm(p_values: Sequence[float]) -> list[float]:
    """Holm's step-down adjustment of a family of p-values (same order as given): the k-th
    smallest is multiplied by ``m - k + 1``, made monotone, and capped at 1."""
    p = _finite(p_values, "p_values")
    if ((p < 0) | (p > 1)).any():
        raise ValueError(f"p-values must lie in [0, 1], got {list(p_values)!r}")
    m = p.size
    order = np.argsort(p, kind="stable")
    adjusted = np.empty(m)
    running = 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (m - rank) * p[i]))
        adjusted[i] = running
    return [float(v) for v in adjusted]


def paired_bootstrap(
    scores_a: Sequence[float],
    scores_b: Sequence[float],
    resamples: int = 10_000,
    level: float = 0.95,
    seed: int = 0,
) -> dict[str, float]:
    """Mean of ``a - b`` over test examples (per-example scores: 0/1 correctness, F1) with the
    percentile interval of ``resamples`` paired bootstrap resamples of the examples."""
    a, b = _finite(scores_a, "scores_a"), _finite(scores_b, "scores_b")
    if a.shape != b.shape:
        raise ValueError(f"scores_a and scores_b differ in length: {a.size} vs {b.size}")
    if resamples < 100:
        raise ValueError(f"resamples must be at least 100, got {resamples}")
    d = a - b
    rng = np.random.default_rng(seed)
    means = d[rng.integers(0, d.size, (resamples, d.size))].mean(axis=1)
    tail = (1 - level) / 2
    low, high = np.quantile(means, [tail, 1 - tail])
    return {"mean": float(d.mean()), "low": float(low), "high": float(high), "n": int(d.size)}


def mcnemar(correct_a: Sequence[bool], correct_b: Sequence[bool]) -> dict[str, float]:
    """McNemar's exact test on paired correctness: the examples only ``a`` gets right, those
    only ``b`` gets right, and the two-sided binomial p-value of that split."""
    a = np.asarray(correct_a, dtype=bool)
    b = np.asarray(correct_b, dtype=bool)
    if a.shape != b.shape or a.ndim != 1:
        raise ValueError(
            f"correct_a and correct_b must be equal-length 1-d, got {a.shape}, {b.shape}"
        )
    only_a, only_b = int((a & ~b).sum()), int((~a & b).sum())
    p = 1.0 if only_a + only_b == 0 else scipy_stats.binomtest(only_a, only_a + only_b).pvalue
    return {"only_a": only_a, "only_b": only_b, "p_value": float(p)}


def in_words(low: float, high: float, what: str = "the difference") -> str:
    """``within noise`` when the interval covers zero, else which side it lies on."""
    if math.isnan(low) or math.isnan(high):
        return f"{what} has no interval (one seed or run on a side)"
    if low <= 0.0 <= high:
        return f"{what} is within noise (its interval covers 0)"
    return f"{what} is {'above' if low > 0 else 'below'} 0 beyond the spread"
