"""Closed-form SimHash collision probabilities, their Monte Carlo check, and expected density.

The paper hashes every query and key row with ``bits`` random hyperplanes per table, folds the
sign bits into ``table_size`` buckets, and lets query i attend to key j when the two share a
bucket in at least one of ``tables`` tables. Everything a reader wants to know about how sparse
that makes attention follows from one function of the angle between the two rows,
:func:`collision_probability`, derived exactly (not fitted) below and checked against
:mod:`lshlib.lsh.hashing` by :func:`simulate_collision_probability`.

Vocabulary as in :mod:`lshlib.lsh.hashing`: ``bits`` = the paper's ``bands``, ``tables`` = its
``num_hashes``, ``table_size=None`` = plain ``2**bits`` signature buckets.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TypeVar

import numpy as np
import torch
from torch import Tensor

from lshlib.lsh.hashing import (
    HashSetting,
    buckets,
    collisions,
    draw_hash_params,
    validate_hash_settings,
)
from lshlib.scales import sizes

__all__ = [
    "HashSetting",
    "PAPER_SETTING",
    "paper_sweep",
    "collision_probability",
    "collision_floor",
    "threshold_angle",
    "threshold_similarity",
    "approximate_threshold_similarity",
    "approximate_threshold_angle",
    "angle_to_similarity",
    "similarity_to_angle",
    "vectors_at_angle",
    "simulate_collision_probability",
    "CollisionCurve",
    "simulate_collision_curve",
    "simulate_settings",
    "pairwise_angles",
    "collision_probability_matrix",
    "expected_density",
    "empirical_density",
    "clustered_vectors",
    "monte_carlo_trials",
    "setting_summary",
    "agreement_summary",
    "density_check",
    "sweep_probability_range",
    "bucket_cluster_counts",
]

AngleLike = TypeVar("AngleLike", float, np.ndarray, Tensor)

# Angles a little above pi (float32 pi is 3.14159274 > math.pi) are accepted and clipped to pi.
_ANGLE_TOLERANCE = 1e-6


PAPER_SETTING = HashSetting(bits=2, tables=1, table_size=256)
"""The paper's configuration: bands 2, num_hashes 1, table_size 256."""


def paper_sweep(
    bits: Sequence[int] = (2, 4, 6, 8),
    tables: Sequence[int] = (1, 2, 3, 4),
    table_sizes: Sequence[int | None] = (64, 128, 192, 256),
) -> list[HashSetting]:
    """The grid of the paper's parameter sweep: bands 2, 4, 6, 8; num_hashes 1-4; table_size 64,
    128, 192, 256 (``lsh-params.txt`` in the authors' repository; 64 settings)."""
    return [HashSetting(b, t, s) for b in bits for t in tables for s in table_sizes]


def _check_angles(theta: AngleLike) -> AngleLike:
    """Validate angles in [0, pi] (NaN rejected); return them clipped to exactly [0, pi]."""
    if isinstance(theta, Tensor):
        if torch.is_complex(theta):
            raise ValueError(f"theta must be real, got dtype {theta.dtype}")
        values = theta if torch.is_floating_point(theta) else theta.to(torch.get_default_dtype())
        bad = torch.isnan(values) | (values < 0) | (values > math.pi + _ANGLE_TOLERANCE)
        if bool(bad.any()):
            raise ValueError(
                f"theta must lie in [0, pi] radians, got {values[bad].flatten()[0].item()!r}"
            )
        return values.clamp(0.0, math.pi)
    if isinstance(theta, np.ndarray):
        values = np.asarray(theta, dtype=np.float64)
        bad = np.isnan(values) | (values < 0) | (values > math.pi + _ANGLE_TOLERANCE)
        if bad.any():
            raise ValueError(f"theta must lie in [0, pi] radians, got {values[bad].flat[0]!r}")
        return np.clip(values, 0.0, math.pi)
    if isinstance(theta, bool) or not isinstance(theta, int | float | np.number):
        raise ValueError(f"theta must be a float, numpy array or tensor, got {type(theta)!r}")
    value = float(theta)
    if math.isnan(value) or value < 0 or value > math.pi + _ANGLE_TOLERANCE:
        raise ValueError(f"theta must lie in [0, pi] radians, got {value!r}")
    return min(value, math.pi)


def collision_probability(
    theta: AngleLike, bits: int, tables: int = 1, table_size: int | None = None
) -> AngleLike:
    r"""Probability that two vectors at angle ``theta`` share a bucket in at least one table.

    Exact for the hashing of :mod:`lshlib.lsh.hashing` (and the paper's code), derived as follows.

    1. *One hyperplane.* A Gaussian normal ``h`` is isotropic, so its projection onto the plane
       spanned by ``x`` and ``y`` has a uniformly distributed direction; the line it defines
       separates ``x`` from ``y`` (``sign(h.x) != sign(h.y)``) exactly when it falls inside the
       two opposite wedges of angle ``theta``: probability ``p = theta / pi``.
    2. *One table, plain signature.* The ``bits`` hyperplanes are independent, so each bit differs
       independently with probability ``p``; the signatures (the bits read as an integer) are
       equal iff no bit differs: ``(1 - p)**bits``.
    3. *One table, folded into T buckets.* The bucket is ``sum_j b_j c_j mod T`` with sign bits
       ``b_j`` and coefficients ``c_j`` iid uniform on ``Z_T``, drawn independently of the
       hyperplanes. The two buckets differ by ``sum_j (b_j - b'_j) c_j mod T``, where
       ``d_j = b_j - b'_j`` is 0 where the bits agree and -1 or +1 where they differ. If no bit
       differs the buckets are equal. If ``m >= 1`` bits differ, condition on the bits: each
       ``d_j c_j`` with ``d_j = +-1`` is uniform on ``Z_T`` (negation is a bijection of ``Z_T``),
       and adding independent terms to a uniform variable on ``Z_T`` keeps it uniform, so the
       difference is uniform and is 0 with probability exactly ``1 / T`` (for every ``T >= 2``,
       prime or not). Hence, per table,
       ``P1 = (1 - p)**bits + (1 - (1 - p)**bits) / T``.
    4. *OR over tables.* Tables use independent hyperplanes and coefficients, so
       ``P = 1 - (1 - P1)**tables``.

    Consequence: folding puts a floor of ``1 / T`` per table under the curve (even opposite
    vectors collide), and ``P(pi) = 1 - (1 - 1/T)**tables`` (see :func:`collision_floor`).

    ``theta`` (radians, in ``[0, pi]``) may be a float, numpy array or tensor; the result is of
    the same kind and shape (tensors keep their floating dtype and device).
    """
    validate_hash_settings(bits, tables, table_size)
    theta = _check_angles(theta)
    floor = 0.0 if table_size is None else 1.0 / table_size
    if isinstance(theta, Tensor):
        # clip in float64: float32 pi (3.14159274) must read as pi, not slightly beyond
        p = (theta.to(torch.float64) / math.pi).clamp(0.0, 1.0)
        same = (1.0 - p) ** bits
        per_table = same + (1.0 - same) * floor
        return (1.0 - (1.0 - per_table) ** tables).to(theta.dtype)
    same = (1.0 - np.asarray(theta, dtype=np.float64) / math.pi) ** bits
    per_table = same + (1.0 - same) * floor
    result = 1.0 - (1.0 - per_table) ** tables
    return float(result) if isinstance(theta, float) else result


def collision_floor(bits: int, tables: int = 1, table_size: int | None = None) -> float:
    """The lowest collision probability, reached at ``theta = pi``: ``1 - (1 - 1/T)**tables``
    with folding, ``0`` for plain signatures. Any pair, however dissimilar, collides this often."""
    return collision_probability(math.pi, bits, tables, table_size)


def threshold_angle(
    bits: int, tables: int = 1, table_size: int | None = None, level: float = 0.5
) -> float | None:
    """The angle (radians) where the collision probability falls to ``level`` (default 1/2).

    Exact inversion of :func:`collision_probability`, which decreases strictly from 1 at
    ``theta = 0`` to :func:`collision_floor` at ``pi``: ``P1 = 1 - (1 - level)**(1/tables)``
    per table, ``(1 - p)**bits = (P1 - 1/T) / (1 - 1/T)``, ``theta = pi * p``.

    Returns ``None`` when the folding floor already exceeds ``level``: then every pair collides
    with probability above ``level`` whatever its angle, so no threshold angle exists. (A floor
    exactly equal to ``level`` gives ``pi``.)
    """
    validate_hash_settings(bits, tables, table_size)
    if not 0.0 < level < 1.0:
        raise ValueError(f"level must lie in (0, 1), got {level!r}")
    per_table = 1.0 - (1.0 - level) ** (1.0 / tables)
    floor = 0.0 if table_size is None else 1.0 / table_size
    same = (per_table - floor) / (1.0 - floor)
    if same < 0.0:
        return None
    return math.pi * (1.0 - same ** (1.0 / bits))


def angle_to_similarity(theta: AngleLike) -> AngleLike:
    """SimHash similarity ``1 - theta/pi``: the probability one hyperplane does not separate."""
    theta = _check_angles(theta)
    return 1.0 - theta / math.pi


def similarity_to_angle(similarity: float) -> float:
    """Inverse of :func:`angle_to_similarity` for a float in ``[0, 1]``."""
    if not 0.0 <= similarity <= 1.0:
        raise ValueError(f"similarity must lie in [0, 1], got {similarity!r}")
    return math.pi * (1.0 - similarity)


def threshold_similarity(
    bits: int, tables: int = 1, table_size: int | None = None, level: float = 0.5
) -> float | None:
    """:func:`threshold_angle` in similarity terms (``1 - theta/pi``); ``None`` likewise."""
    angle = threshold_angle(bits, tables, table_size, level)
    return None if angle is None else 1.0 - angle / math.pi


def approximate_threshold_similarity(bits: int, tables: int = 1) -> float:
    """The textbook AND/OR threshold ``(1/tables)**(1/bits)`` (Leskovec et al., *Mining of
    Massive Datasets*, ch. 3), in similarity terms, for comparison with the exact value. It
    ignores folding and is rough for few tables (``tables=1`` gives similarity 1, angle 0)."""
    validate_hash_settings(bits, tables, None)
    return (1.0 / tables) ** (1.0 / bits)


def approximate_threshold_angle(bits: int, tables: int = 1) -> float:
    """:func:`approximate_threshold_similarity` as an angle in radians."""
    return similarity_to_angle(approximate_threshold_similarity(bits, tables))


def _generator(generator: torch.Generator | None, seed: int | None) -> torch.Generator | None:
    if generator is not None and seed is not None:
        raise ValueError("give either generator or seed, not both")
    return torch.Generator().manual_seed(seed) if seed is not None else generator


def vectors_at_angle(
    theta: float,
    dim: int,
    n: int = 1,
    *,
    generator: torch.Generator | None = None,
    seed: int | None = None,
    dtype: torch.dtype = torch.float64,
) -> tuple[Tensor, Tensor]:
    """``n`` random pairs of unit vectors ``(x, y)``, each pair at exactly angle ``theta``.

    ``x`` is uniform on the sphere and ``y = cos(theta) x + sin(theta) u`` with ``u`` a random
    unit vector orthogonal to ``x`` (Gram-Schmidt). Returns two ``(n, dim)`` tensors.
    """
    theta = _check_angles(theta)
    if isinstance(theta, Tensor | np.ndarray):
        raise ValueError("theta must be a single angle here")
    if isinstance(dim, bool) or not isinstance(dim, int) or dim < 2:
        raise ValueError(f"dim must be an integer >= 2, got {dim!r}")
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ValueError(f"n must be an integer >= 1, got {n!r}")
    if not dtype.is_floating_point:
        raise ValueError(f"dtype must be a floating dtype, got {dtype}")
    gen = _generator(generator, seed)
    x = torch.randn(n, dim, generator=gen, dtype=torch.float64)
    x = x / x.norm(dim=-1, keepdim=True)
    u = torch.randn(n, dim, generator=gen, dtype=torch.float64)
    u = u - (u * x).sum(-1, keepdim=True) * x
    u = u / u.norm(dim=-1, keepdim=True)
    y = math.cos(theta) * x + math.sin(theta) * u  # theta = 0 gives y == x exactly
    return x.to(dtype), y.to(dtype)


def _check_trials(trials: int) -> None:
    if isinstance(trials, bool) or not isinstance(trials, int) or trials < 2:
        raise ValueError(f"trials must be an integer >= 2, got {trials!r}")


def _simulate(
    theta: float,
    bits: int,
    tables: int,
    table_size: int | None,
    dim: int,
    trials: int,
    gen: torch.Generator,
    chunk: int,
) -> tuple[float, float]:
    hits = 0
    for start in range(0, trials, chunk):
        m = min(chunk, trials - start)
        x, y = vectors_at_angle(theta, dim, m, generator=gen)
        # One independent hash family per trial (batch_shape=(m,)), one pair per family, so
        # the trials are independent Bernoulli draws with the probability we want to check.
        params = draw_hash_params(
            dim, bits, tables, table_size, batch_shape=(m,), generator=gen, dtype=torch.float64
        )
        hits += int(collisions(x.unsqueeze(-2), y.unsqueeze(-2), params).sum())
    mean = hits / trials
    # Standard error of the mean of Bernoulli draws: sample std (ddof=1) / sqrt(trials).
    stderr = math.sqrt(mean * (1.0 - mean) / (trials - 1))
    return mean, stderr


def simulate_collision_probability(
    theta: float,
    bits: int,
    tables: int = 1,
    table_size: int | None = None,
    *,
    dim: int = 64,
    trials: int = 4000,
    seed: int = 0,
    chunk: int = 1024,
) -> tuple[float, float]:
    """Monte Carlo estimate of :func:`collision_probability` with :mod:`lshlib.lsh.hashing`.

    Each of ``trials`` trials draws a fresh pair of ``dim``-dimensional vectors at exactly angle
    ``theta`` (:func:`vectors_at_angle`) and fresh hash parameters, and records whether the pair
    collides. Returns ``(mean, stderr)``; ``stderr`` is 0 when every trial agrees.
    """
    validate_hash_settings(bits, tables, table_size)
    _check_trials(trials)
    theta = _check_angles(theta)
    gen = torch.Generator().manual_seed(seed)
    return _simulate(theta, bits, tables, table_size, dim, trials, gen, chunk)


@dataclass(frozen=True)
class CollisionCurve:
    """Monte Carlo collision probabilities over a grid of angles, with the closed form."""

    setting: HashSetting
    thetas: np.ndarray
    mean: np.ndarray
    stderr: np.ndarray
    trials: int

    @property
    def exact(self) -> np.ndarray:
        return collision_probability(self.thetas, *self.setting)

    @property
    def z_scores(self) -> np.ndarray:
        """(simulation - closed form) / binomial standard error of the closed form (0 where the
        closed form is 0 or 1 and the simulation matches it exactly, inf if it does not)."""
        exact = self.exact
        se = np.sqrt(exact * (1.0 - exact) / self.trials)
        diff = self.mean - exact
        with np.errstate(divide="ignore", invalid="ignore"):
            z = np.where(se > 0, diff / np.where(se > 0, se, 1.0), np.where(diff == 0, 0.0, np.inf))
        return z


def simulate_collision_curve(
    setting: HashSetting | tuple[int, int, int | None],
    thetas: Sequence[float] | np.ndarray,
    *,
    dim: int = 64,
    trials: int = 2000,
    seed: int = 0,
) -> CollisionCurve:
    """:func:`simulate_collision_probability` at every angle of ``thetas`` (one generator,
    seeded once, so the whole curve is reproducible)."""
    setting = HashSetting(*setting)
    validate_hash_settings(*setting)
    _check_trials(trials)
    grid = _check_angles(np.asarray(thetas, dtype=np.float64))
    gen = torch.Generator().manual_seed(seed)
    results = [_simulate(float(t), *setting, dim, trials, gen, 1024) for t in grid]
    mean, stderr = (np.array(v) for v in zip(*results, strict=True))
    return CollisionCurve(setting, grid, mean, stderr, trials)


def simulate_settings(
    settings: Iterable[HashSetting | tuple[int, int, int | None]],
    thetas: Sequence[float] | np.ndarray,
    *,
    dim: int = 64,
    trials: int = 2000,
    seed: int = 0,
) -> list[CollisionCurve]:
    """:func:`simulate_collision_curve` for several settings (seeds ``seed, seed + 1, ...``)."""
    return [
        simulate_collision_curve(s, thetas, dim=dim, trials=trials, seed=seed + i)
        for i, s in enumerate(settings)
    ]


def _check_rows(x: Tensor, name: str) -> None:
    if not isinstance(x, Tensor) or not torch.is_floating_point(x):
        raise ValueError(f"{name} must be a floating tensor, got {getattr(x, 'dtype', type(x))}")
    if x.dim() < 2:
        raise ValueError(f"{name} must have shape (..., n, dim), got {tuple(x.shape)}")


def pairwise_angles(query: Tensor, key: Tensor) -> Tensor:
    """Angles (radians, float64) between every query row and every key row.

    ``query`` is ``(..., n_q, dim)``, ``key`` ``(..., n_k, dim)``; returns ``(..., n_q, n_k)``.
    Zero rows have no angle and raise ``ValueError``.
    """
    _check_rows(query, "query")
    _check_rows(key, "key")
    if query.shape[-1] != key.shape[-1]:
        raise ValueError(
            f"query rows have width {query.shape[-1]} but key rows have width {key.shape[-1]}"
        )
    q, k = query.to(torch.float64), key.to(torch.float64)
    qn, kn = q.norm(dim=-1, keepdim=True), k.norm(dim=-1, keepdim=True)
    for name, norms in (("query", qn), ("key", kn)):
        if bool((norms == 0).any()):
            raise ValueError(f"{name} has a zero row, whose angle to other rows is undefined")
    cos = (q / qn) @ (k / kn).transpose(-1, -2)
    return torch.arccos(cos.clamp(-1.0, 1.0))


def collision_probability_matrix(
    query: Tensor, key: Tensor, bits: int, tables: int = 1, table_size: int | None = None
) -> Tensor:
    """Exact probability (over hash draws) that query i and key j collide, ``(..., n_q, n_k)``."""
    return collision_probability(pairwise_angles(query, key), bits, tables, table_size)


def expected_density(
    angles: Tensor | np.ndarray | Sequence[float],
    bits: int,
    tables: int = 1,
    table_size: int | None = None,
) -> float:
    """Expected fraction of colliding query-key pairs: the mean collision probability over
    ``angles`` (the pairwise angles of :func:`pairwise_angles`, or samples from an angle
    distribution). This is the expected density of the collision matrix over hash draws."""
    if not isinstance(angles, Tensor | np.ndarray):
        angles = np.asarray(angles, dtype=np.float64)
    if angles.size == 0 if isinstance(angles, np.ndarray) else angles.numel() == 0:
        raise ValueError("angles is empty; the density of no pairs is undefined")
    return float(collision_probability(angles, bits, tables, table_size).mean())


def empirical_density(
    query: Tensor,
    key: Tensor,
    bits: int,
    tables: int = 1,
    table_size: int | None = None,
    *,
    draws: int = 200,
    seed: int = 0,
) -> tuple[float, float]:
    """Mean and standard error, over ``draws`` independent hash draws, of the density of the
    sampled collision matrix of ``query`` ``(n_q, dim)`` and ``key`` ``(n_k, dim)``; compare with
    :func:`expected_density` of :func:`pairwise_angles`."""
    _check_rows(query, "query")
    _check_rows(key, "key")
    _check_trials(draws)
    params = draw_hash_params(
        query.shape[-1],
        bits,
        tables,
        table_size,
        batch_shape=(draws,),
        seed=seed,
        dtype=torch.float64,
    )
    matrices = collisions(query.to(torch.float64), key.to(torch.float64), params)
    densities = matrices.flatten(-2).to(torch.float64).mean(-1)
    return float(densities.mean()), float(densities.std() / math.sqrt(draws))


def clustered_vectors(
    n: int,
    dim: int,
    clusters: int = 4,
    spread: float = 0.5,
    *,
    seed: int = 0,
) -> tuple[Tensor, Tensor]:
    """Demo data with structure: ``n`` rows around ``clusters`` random centres (Gaussian noise of
    relative size ``spread``), sorted by cluster. Returns ``(rows, cluster_ids)``; use the rows
    as both queries and keys to see block structure in a collision matrix."""
    for name, value, low in (("n", n, 1), ("dim", dim, 1), ("clusters", clusters, 1)):
        if isinstance(value, bool) or not isinstance(value, int) or value < low:
            raise ValueError(f"{name} must be an integer >= {low}, got {value!r}")
    if not spread >= 0:
        raise ValueError(f"spread must be >= 0, got {spread!r}")
    gen = torch.Generator().manual_seed(seed)
    centres = torch.randn(clusters, dim, generator=gen, dtype=torch.float64)
    ids = torch.arange(n) * clusters // n
    noise = torch.randn(n, dim, generator=gen, dtype=torch.float64)
    return centres[ids] + spread * noise, ids


def monte_carlo_trials(scale: str | None = None) -> int:
    """Monte Carlo trials per point for the notebooks at ``scale`` (``LSHLIB_SCALE``)."""
    return sizes("theory", scale)["trials"]


def setting_summary(
    bits: int,
    tables: int = 1,
    table_size: int | None = None,
    angles_deg: Sequence[float] = (30.0, 60.0, 90.0),
) -> dict[str, float | None]:
    """Closed-form numbers that describe one setting: the collision probability at each angle in
    ``angles_deg``, the floor, the exact and textbook threshold angles (degrees; ``None`` when
    the floor exceeds 1/2)."""
    out: dict[str, float | None] = {
        f"P({a:g} deg)": collision_probability(math.radians(a), bits, tables, table_size)
        for a in angles_deg
    }
    out["floor P(180 deg)"] = collision_floor(bits, tables, table_size)
    exact = threshold_angle(bits, tables, table_size)
    out["threshold angle (deg)"] = None if exact is None else math.degrees(exact)
    out["textbook threshold angle (deg)"] = math.degrees(approximate_threshold_angle(bits, tables))
    return out


def agreement_summary(curves: Sequence[CollisionCurve]) -> dict[str, float | int]:
    """How well simulation matches the closed form over many curves: number of points, largest
    |z| and the fractions within 2 and 3 standard errors, beside what a standard normal gives
    (``normal: ...``, the expectation if the closed form is right; exact points, probability 0
    or 1, count as z = 0 when matched)."""
    if not curves:
        raise ValueError("curves is empty")
    z = np.abs(np.concatenate([c.z_scores for c in curves]))
    out: dict[str, float | int] = {
        "settings": len(curves),
        "points": int(z.size),
        "max |z|": float(z.max()),
    }
    for k in (2, 3):
        out[f"within {k} s.e."] = float(np.mean(z <= k))
        out[f"normal: within {k} s.e."] = math.erf(k / math.sqrt(2.0))
    return out


def density_check(
    query: Tensor,
    key: Tensor,
    setting: HashSetting | tuple[int, int, int | None],
    *,
    draws: int = 400,
    seed: int = 0,
) -> dict[str, float]:
    """Expected density of the collision matrix of ``query`` and ``key`` beside the mean density
    of ``draws`` sampled ones (:func:`empirical_density`), with the median pairwise angle."""
    setting = HashSetting(*setting)
    angles = pairwise_angles(query, key)
    sampled, stderr = empirical_density(query, key, *setting, draws=draws, seed=seed)
    return {
        "median angle (deg)": math.degrees(float(angles.median())),
        "expected density": expected_density(angles, *setting),
        "sampled density": sampled,
        "sampled standard error": stderr,
    }


def sweep_probability_range(
    angle_deg: float = 90.0, settings: Iterable[HashSetting | tuple] | None = None
) -> dict[int, tuple[float, float]]:
    """For each number of bits in ``settings`` (default :func:`paper_sweep`), the smallest and
    largest collision probability at ``angle_deg`` over its tables and table sizes: how many
    unrelated (90 degree) pairs a sweep setting with that many bits lets through."""
    grid = [HashSetting(*s) for s in (paper_sweep() if settings is None else settings)]
    if not grid:
        raise ValueError("settings is empty")
    theta = math.radians(angle_deg)
    out: dict[int, tuple[float, float]] = {}
    for bits in sorted({s.bits for s in grid}):
        probs = [collision_probability(theta, *s) for s in grid if s.bits == bits]
        out[bits] = (min(probs), max(probs))
    return out


def bucket_cluster_counts(
    rows: Tensor,
    cluster_ids: Tensor,
    setting: HashSetting | tuple[int, int, int | None],
    *,
    hash_seed: int = 0,
) -> list[dict[int, list[int]]]:
    """Which true clusters share a bucket under one hash draw: per table, ``{bucket id: rows of
    each cluster in it}`` (buckets ordered by size), with the hashes drawn exactly as the
    explorer frame draws them (``draw_hash_params(..., seed=hash_seed)``, float64)."""
    setting = HashSetting(*setting)
    _check_rows(rows, "rows")
    if cluster_ids.shape != rows.shape[:1]:
        raise ValueError(
            f"cluster_ids must have shape ({rows.shape[0]},), got {tuple(cluster_ids.shape)}"
        )
    clusters = int(cluster_ids.max()) + 1
    params = draw_hash_params(rows.shape[-1], *setting, seed=hash_seed, dtype=torch.float64)
    ids = buckets(rows.to(torch.float64), params)  # (tables, n)
    tables = []
    for table in ids:
        counts = {
            int(b): torch.bincount(cluster_ids[table == b], minlength=clusters).tolist()
            for b in table.unique()
        }
        tables.append(dict(sorted(counts.items(), key=lambda kv: -sum(kv[1]))))
    return tables
