"""Figures for notebook 01 (SimHash theory): one hyperplane in 2-D, collision probability
against angle (closed form and Monte Carlo), AND/OR S-curves, folding, the paper's sweep, and
the explorer frame the widget redraws. Every function returns a new :class:`Figure`."""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence

import matplotlib.pyplot as plt
import numpy as np
import seaborn as sns
import torch
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.patches import Wedge
from torch import Tensor

from lshlib.lsh import theory as T
from lshlib.lsh.hashing import HashSetting, collisions, draw_hash_params

__all__ = [
    "plot_one_hyperplane",
    "plot_collision_curves",
    "plot_and_or",
    "plot_folding",
    "plot_sweep",
    "plot_explorer_frame",
    "plot_z_scores",
    "draw_collision_curve",
    "format_summary",
    "threshold_report",
    "settings_report",
    "sweep_range_report",
    "blocks_report",
]

_DEG = np.linspace(0.0, 180.0, 361)


def _angle_axis(ax: Axes, ylabel: str = "collision probability") -> None:
    ax.set_xlim(0, 180)
    ax.set_xticks(range(0, 181, 30))
    ax.set_xlabel("angle between the two vectors (degrees)")
    ax.set_ylabel(ylabel)


def draw_collision_curve(
    ax: Axes, setting: T.HashSetting | tuple, label: str | None = None, **line_kw
) -> None:
    """Draw the closed-form collision probability of ``setting`` against angle on ``ax``."""
    setting = T.HashSetting(*setting)
    p = T.collision_probability(np.radians(_DEG), *setting)
    ax.plot(_DEG, p, label=setting.label if label is None else label, **line_kw)


def plot_one_hyperplane(
    theta: float, curve: T.CollisionCurve | None = None, *, n_lines: int = 16, seed: int = 0
) -> Figure:
    """Left: unit vectors at angle ``theta`` and ``n_lines`` random lines through the origin,
    red where a line separates them (its direction falls in the shaded wedges, total angle
    ``2 theta`` out of ``2 pi``). Right: the fraction of random hyperplanes that separate two
    vectors, theta/pi, against ``curve`` (a Monte Carlo run with bits=1, tables=1, signature)."""
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.8))
    ax = axes[0]
    deg = math.degrees(theta)
    for start in (0.0, 180.0):
        ax.add_patch(Wedge((0, 0), 1.35, start, start + deg, color="tab:red", alpha=0.12, lw=0))
    rng = np.random.default_rng(seed)
    normals = rng.standard_normal((n_lines, 2))
    x = np.array([1.0, 0.0])
    y = np.array([math.cos(theta), math.sin(theta)])
    separated = np.sign(normals @ x) != np.sign(normals @ y)
    for normal, sep in zip(normals, separated, strict=True):
        direction = np.array([-normal[1], normal[0]]) / np.linalg.norm(normal)
        ends = np.outer([-1.4, 1.4], direction)
        ax.plot(*ends.T, color="tab:red" if sep else "0.6", lw=1.4 if sep else 0.8)
    for vec, name in ((x, "x"), (y, "y")):
        arrow = dict(arrowstyle="-|>", lw=3.5, color="tab:blue", mutation_scale=25)
        ax.annotate("", xy=vec, xytext=(0, 0), arrowprops=arrow, zorder=5)
        ax.text(
            *(1.18 * vec),
            name,
            fontsize=16,
            fontweight="bold",
            color="tab:blue",
            ha="center",
            va="center",
            zorder=5,
        )
    ax.set_xlim(-1.4, 1.4)
    ax.set_ylim(-1.4, 1.4)
    ax.set_aspect("equal")
    ax.set_xticks([])
    ax.set_yticks([])
    ax.set_title(
        f"{int(separated.sum())} of {n_lines} random lines separate x and y\n"
        f"(theta = {deg:.0f} deg, theta/pi = {theta / math.pi:.3f})"
    )
    ax = axes[1]
    ax.plot(_DEG, _DEG / 180.0, color="k", label="theta / pi (exact)")
    if curve is not None:
        ax.errorbar(
            np.degrees(curve.thetas),
            1.0 - curve.mean,
            yerr=2 * curve.stderr,
            fmt="o",
            color="tab:red",
            ms=4,
            capsize=2,
            label=f"simulated, {curve.trials} hyperplanes per point (+-2 s.e.)",
        )
    _angle_axis(ax, "probability that a random hyperplane separates them")
    ax.legend(loc="lower right")  # the points run from lower left to upper right
    ax.set_title("one hyperplane: P(separate) = theta / pi")
    fig.tight_layout()
    return fig


def plot_collision_curves(
    curves: Sequence[T.CollisionCurve], *, title: str | None = None, log: bool = False
) -> Figure:
    """Closed-form curves (lines) with Monte Carlo points (+-2 standard errors), one colour per
    setting; the largest |z| of each setting is in the legend. The paper's setting, if present,
    is drawn as a wide black band with square markers, so a curve that nearly coincides with it
    (the plain 2-bit signature) shows as a thin line inside the band instead of hiding it."""
    fig, ax = plt.subplots(figsize=(8.5, 5))
    colors = iter(sns.color_palette("tab10", len(curves)))
    for curve in curves:
        zmax = float(np.max(np.abs(curve.z_scores)))
        label = f"{curve.setting.label} (max |z| {zmax:.1f})"
        if curve.setting == T.PAPER_SETTING:
            color, line, marker = "k", dict(lw=6, alpha=0.35, zorder=2), "s"
            label = "paper: " + label
        else:
            color, line, marker = next(colors), dict(lw=1.6, zorder=3), "o"
        draw_collision_curve(ax, curve.setting, label, color=color, **line)
        ax.errorbar(
            np.degrees(curve.thetas),
            curve.mean,
            yerr=2 * curve.stderr,
            fmt=marker,
            color=color,
            ms=3.5,
            capsize=2,
            zorder=4,
        )
    _angle_axis(ax)
    if log:
        ax.set_yscale("log")
    ax.legend(fontsize=8, title="closed form (lines), simulation (dots)", title_fontsize=8)
    ax.set_title(title or "collision probability against angle")
    fig.tight_layout()
    return fig


def _mark_thresholds(ax: Axes, setting: T.HashSetting, color) -> None:
    exact = T.threshold_angle(*setting)
    if exact is not None:
        ax.plot(math.degrees(exact), 0.5, "o", color=color, ms=6)
    if setting.table_size is None:
        approx = math.degrees(T.approximate_threshold_angle(setting.bits, setting.tables))
        ax.plot(approx, 0.5, "x", color=color, ms=8, mew=2)


def plot_and_or(
    bits_values: Sequence[int] = (1, 2, 4, 8),
    tables_values: Sequence[int] = (1, 2, 4, 8),
    and_or: Sequence[tuple[int, int]] = ((2, 1), (4, 4), (8, 16), (16, 64)),
) -> Figure:
    """Three panels of plain-signature curves: AND (more bits, one table: steeper and shifted to
    small angles), OR (more tables of 4 bits: shifted back up), and AND/OR combinations whose
    S-curve sharpens; dots mark the exact threshold (P = 1/2), crosses the textbook
    ``(1/tables)**(1/bits)`` approximation."""
    fig, axes = plt.subplots(1, 3, figsize=(16, 4.6), sharey=True)
    panels = [
        ("AND: more bits, 1 table", [T.HashSetting(b, 1) for b in bits_values]),
        ("OR: more tables of 4 bits", [T.HashSetting(4, t) for t in tables_values]),
        ("AND/OR: bits and tables together", [T.HashSetting(b, t) for b, t in and_or]),
    ]
    for ax, (title, settings) in zip(axes, panels, strict=True):
        colors = sns.color_palette("viridis", len(settings))
        for setting, color in zip(settings, colors, strict=True):
            draw_collision_curve(ax, setting, color=color)
            _mark_thresholds(ax, setting, color)
        ax.axhline(0.5, color="0.5", lw=0.8, ls=":")
        _angle_axis(ax)
        ax.set_title(title)
        ax.legend(fontsize=8, title="o exact threshold, x textbook", title_fontsize=8)
    fig.tight_layout()
    return fig


def plot_folding(
    bits_values: Sequence[int] = (2, 8),
    table_sizes: Sequence[int | None] = (None, 256, 64, 16, 4),
    tables: int = 1,
) -> Figure:
    """Folding a signature into ``table_size`` buckets: each column a number of bits, top row
    linear, bottom row logarithmic (where the floor ``1 - (1 - 1/T)**tables`` shows, dashed)."""
    fig, axes = plt.subplots(2, len(bits_values), figsize=(6.5 * len(bits_values), 8.5))
    axes = np.atleast_2d(axes).reshape(2, len(bits_values))
    colors = sns.color_palette("rocket", len(table_sizes))
    for col, bits in enumerate(bits_values):
        for row in range(2):
            ax = axes[row, col]
            for size, color in zip(table_sizes, colors, strict=True):
                setting = T.HashSetting(bits, tables, size)
                draw_collision_curve(ax, setting, color=color)
                floor = T.collision_floor(*setting)
                if floor > 0:
                    ax.axhline(floor, color=color, ls="--", lw=0.9)
            _angle_axis(ax)
            if row == 1:
                ax.set_yscale("log")
                ax.set_ylim(1e-4, 1.5)
            ax.set_title(f"bits={bits}, tables={tables}" + (" (log scale)" if row else ""))
            ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def plot_sweep(
    bits_values: Sequence[int] = (2, 4, 6, 8),
    tables_values: Sequence[int] = (1, 2, 3, 4),
    table_sizes: Sequence[int | None] = (64, 128, 192, 256),
    angle_deg: float = 90.0,
) -> Figure:
    """Heatmaps over the paper's sweep: top, the collision probability at ``angle_deg`` (random
    high-dimensional vectors are nearly orthogonal, so this is about the density of the
    attention pattern they get); bottom, the exact threshold angle in degrees."""
    n = len(table_sizes)
    fig, axes = plt.subplots(2, n, figsize=(4.3 * n, 7.5), squeeze=False)
    theta = math.radians(angle_deg)
    for col, size in enumerate(table_sizes):
        prob = np.array(
            [
                [T.collision_probability(theta, b, t, size) for b in bits_values]
                for t in tables_values
            ]
        )
        thr = np.array(
            [
                [_degrees_or_nan(T.threshold_angle(b, t, size)) for b in bits_values]
                for t in tables_values
            ]
        )
        size_label = "signature" if size is None else f"table_size={size}"
        for row, (values, fmt, title, cmap) in enumerate(
            [
                (prob, ".3f", f"P(collide) at {angle_deg:g} deg, {size_label}", "mako_r"),
                (thr, ".0f", f"threshold angle (deg), {size_label}", "crest"),
            ]
        ):
            ax = axes[row, col]
            sns.heatmap(
                values,
                annot=True,
                fmt=fmt,
                cmap=cmap,
                cbar=False,
                ax=ax,
                xticklabels=bits_values,
                yticklabels=tables_values,
            )
            ax.set_xlabel("bits (paper: bands)")
            ax.set_ylabel("tables (paper: num_hashes)")
            ax.set_title(title, fontsize=10)
    fig.tight_layout()
    return fig


def _degrees_or_nan(angle: float | None) -> float:
    return float("nan") if angle is None else math.degrees(angle)


def plot_explorer_frame(
    setting: T.HashSetting | tuple, rows: Tensor, *, hash_seed: int = 0
) -> Figure:
    """One frame of the widget: the collision curve of ``setting`` (the paper's for reference),
    the exact collision probability of every pair of ``rows`` (used as queries and keys), and one
    sampled collision matrix drawn with ``hash_seed``, with its density against the expected."""
    setting = T.HashSetting(*setting)
    fig, axes = plt.subplots(1, 3, figsize=(16, 4.6))
    ax = axes[0]
    draw_collision_curve(
        ax, T.PAPER_SETTING, f"paper: {T.PAPER_SETTING.label}", color="0.6", ls="--"
    )
    draw_collision_curve(ax, setting, color="tab:blue", lw=2.2)
    floor = T.collision_floor(*setting)
    ax.axhline(floor, color="tab:blue", ls=":", lw=0.9, label=f"floor {floor:.4f}")
    threshold = T.threshold_angle(*setting)
    if threshold is not None:
        ax.plot(
            math.degrees(threshold),
            0.5,
            "o",
            color="tab:blue",
            label=f"P = 1/2 at {math.degrees(threshold):.1f} deg",
        )
    _angle_axis(ax)
    ax.set_ylim(-0.02, 1.02)
    ax.legend(fontsize=8)
    ax.set_title(setting.label)

    expected = T.collision_probability_matrix(rows, rows, *setting)
    sampled = _sampled_collisions(setting, rows, hash_seed)
    for ax, matrix, title in (
        (axes[1], expected.numpy(), f"exact P(collide), mean {float(expected.mean()):.3f}"),
        (
            axes[2],
            sampled.numpy().astype(float),
            f"one hash draw (seed {hash_seed}): density {float(sampled.float().mean()):.3f}",
        ),
    ):
        ax.imshow(matrix, vmin=0, vmax=1, cmap="viridis", interpolation="nearest")
        ax.set_xlabel("key")
        ax.set_ylabel("query")
        ax.set_title(title, fontsize=10)
        ax.grid(False)
    fig.tight_layout()
    return fig


def _sampled_collisions(setting: HashSetting, rows: Tensor, hash_seed: int) -> Tensor:
    """The explorer's sampled collision matrix of ``rows`` with themselves for ``hash_seed``."""
    params = draw_hash_params(rows.shape[-1], *setting, seed=hash_seed, dtype=torch.float64)
    return collisions(rows.to(torch.float64), rows.to(torch.float64), params)


def plot_z_scores(curves: Sequence[T.CollisionCurve]) -> Figure:
    """Histogram of (simulation - closed form) / standard error over every point of ``curves``,
    against the standard normal density it should follow if the closed form is exact."""
    z = np.concatenate([c.z_scores for c in curves])
    fig, ax = plt.subplots(figsize=(7, 4.2))
    ax.hist(
        z,
        bins=np.arange(-4.5, 4.6, 0.5),
        density=True,
        color="tab:blue",
        alpha=0.6,
        label=f"{z.size} points, {len(curves)} settings",
    )
    grid = np.linspace(-4.5, 4.5, 200)
    ax.plot(
        grid, np.exp(-(grid**2) / 2) / math.sqrt(2 * math.pi), color="k", label="standard normal"
    )
    ax.set_xlabel("z = (simulated - closed form) / standard error")
    ax.set_ylabel("density")
    ax.set_title("closed form against simulation over the sweep")
    ax.legend()
    fig.tight_layout()
    return fig


# --------------------------------------------------------------------------------------------
# text tables and summaries


def format_summary(summary: dict[str, float | int | None], digits: int = 4) -> str:
    """One ``name  value`` line per entry, floats rounded to ``digits``, integers as they are,
    ``None`` as ``none (floor above 1/2)``; for printing in a notebook."""
    width = max(len(k) for k in summary)
    lines = []
    for name, value in summary.items():
        if value is None:
            text = "none (floor above 1/2)"
        elif isinstance(value, int):
            text = str(value)
        else:
            text = f"{value:.{digits}f}"
        lines.append(f"{name:<{width}}  {text}")
    return "\n".join(lines)


def threshold_report(settings: Iterable[HashSetting | tuple[int, int, int | None]]) -> str:
    """A text table: for each setting its floor, the exact threshold angle (P = 1/2) and the
    textbook ``(1/tables)**(1/bits)`` approximation, in degrees."""
    header = f"{'setting':<36}{'floor':>8}{'exact (deg)':>13}{'textbook (deg)':>16}"
    lines = [header]
    for setting in settings:
        setting = HashSetting(*setting)
        exact = T.threshold_angle(*setting)
        exact_text = "none" if exact is None else f"{math.degrees(exact):.2f}"
        textbook = math.degrees(T.approximate_threshold_angle(setting.bits, setting.tables))
        floor = T.collision_floor(*setting)
        lines.append(f"{setting.label:<36}{floor:>8.4f}{exact_text:>13}{textbook:>16.2f}")
    return "\n".join(lines)


def settings_report(
    settings: Iterable[HashSetting | tuple[int, int, int | None]],
    angles_deg: Sequence[float] = (30.0, 60.0, 90.0),
) -> str:
    """A text table: for each setting the collision probability at each of ``angles_deg`` and
    the floor (the probability at 180 degrees)."""
    header = f"{'setting':<36}" + "".join(f"{f'P({a:g} deg)':>12}" for a in angles_deg)
    lines = [header + f"{'floor':>9}"]
    for setting in settings:
        setting = HashSetting(*setting)
        probs = T.collision_probability(np.radians(np.asarray(angles_deg, dtype=float)), *setting)
        cells = "".join(f"{p:>12.4f}" for p in probs)
        lines.append(f"{setting.label:<36}{cells}{T.collision_floor(*setting):>9.4f}")
    return "\n".join(lines)


def sweep_range_report(ranges: dict[int, tuple[float, float]], angle_deg: float = 90.0) -> str:
    """One line per number of bits: the range of the collision probability at ``angle_deg``
    over a sweep's tables and table sizes (:func:`lshlib.lsh.theory.sweep_probability_range`)."""
    lines = [f"P(collide) at {angle_deg:g} deg over the sweep's tables and table sizes:"]
    for bits, (low, high) in ranges.items():
        lines.append(
            f"bits={bits}: {low:.4f} to {high:.4f} ({100 * low:.1f}% to {100 * high:.1f}%)"
        )
    return "\n".join(lines)


def blocks_report(
    rows: Tensor,
    cluster_ids: Tensor,
    setting: HashSetting | tuple[int, int, int | None],
    hash_seed: int = 0,
) -> str:
    """What one frame of the explorer shows: the sampled density of ``rows`` against the exact
    mean collision probability (3 digits, as in the frame), and for each bucket of each table
    how many rows of every true cluster it holds
    (:func:`lshlib.lsh.theory.bucket_cluster_counts`)."""
    setting = HashSetting(*setting)
    sampled = float(_sampled_collisions(setting, rows, hash_seed).to(torch.float64).mean())
    exact = float(T.collision_probability_matrix(rows, rows, *setting).mean())
    lines = [
        f"{setting.label}, hash seed {hash_seed}: sampled density {sampled:.3f}, "
        f"exact mean P(collide) {exact:.3f}"
    ]
    for t, table in enumerate(
        T.bucket_cluster_counts(rows, cluster_ids, setting, hash_seed=hash_seed)
    ):
        for bucket, counts in table.items():
            per_cluster = ", ".join(f"cluster {c}: {k}" for c, k in enumerate(counts) if k)
            lines.append(f"table {t}, bucket {bucket:>3}: {sum(counts):>3} rows ({per_cluster})")
    return "\n".join(lines)
