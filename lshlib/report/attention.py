"""Figures of the attention notebook: collision matrices beside attention maps, measured density
against theory, paper mode against masked mode, and approximation quality as bits and tables
vary."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from torch import Tensor

from lshlib.analysis import ModeComparison

__all__ = [
    "heatmap",
    "plot_collisions_vs_attention",
    "plot_density_vs_theory",
    "plot_mode_comparison",
    "plot_approximation",
]


def heatmap(ax: Axes, matrix: Tensor | np.ndarray, title: str, *, cmap: str = "viridis", **kw):
    """One square heat map (queries down, keys across) with a small colour bar."""
    values = matrix.detach().float().cpu().numpy() if isinstance(matrix, Tensor) else matrix
    im = ax.imshow(values, cmap=cmap, interpolation="nearest", **kw)
    ax.set_title(title, fontsize=9)
    ax.set_xlabel("key j", fontsize=8)
    ax.set_ylabel("query i", fontsize=8)
    ax.tick_params(labelsize=7)
    ax.grid(False)
    ax.figure.colorbar(im, ax=ax, fraction=0.046, pad=0.04)
    return im


def plot_collisions_vs_attention(
    full_probs: Tensor, collisions: dict[str, Tensor], *, n_real: int | None = None
) -> Figure:
    """Full attention of one (sentence, head) beside its query-key collision matrices under
    several settings (``{label: bool (n, n)}``); ``n_real`` crops away padding."""
    n = n_real or full_probs.shape[-1]
    fig, axes = plt.subplots(1, 1 + len(collisions), figsize=(3.6 * (1 + len(collisions)), 3.4))
    heatmap(axes[0], full_probs[:n, :n], "full attention weights")
    for ax, (label, coll) in zip(axes[1:], collisions.items(), strict=True):
        c = coll[:n, :n]
        heatmap(
            ax, c, f"{label}\ndensity {float(c.float().mean()):.2f}", cmap="Greys", vmin=0, vmax=1
        )
    fig.tight_layout()
    return fig


def plot_density_vs_theory(rows: Sequence[dict[str, Any]]) -> Figure:
    """Measured collision density (with standard error) against the closed-form expectation."""
    fig, ax = plt.subplots(figsize=(5.2, 4.6))
    expected = np.array([r["expected"] for r in rows])
    measured = np.array([r["measured"] for r in rows])
    err = np.array([r["stderr"] for r in rows])
    tables = np.array([r["tables"] for r in rows])
    for t in sorted(set(tables.tolist())):
        sel = tables == t
        ax.errorbar(
            expected[sel],
            measured[sel],
            yerr=2 * err[sel],
            fmt="o",
            ms=4,
            capsize=2,
            label=f"tables={t}",
        )
    hi = max(expected.max(), measured.max()) * 1.05
    ax.plot([0, hi], [0, hi], "k--", lw=1, label="measured = expected")
    ax.set_xlabel("expected density (lshlib.theory)")
    ax.set_ylabel("measured density (± 2 s.e.)")
    ax.set_title("Collision density of real queries and keys")
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def plot_mode_comparison(cmp: ModeComparison, index: tuple[int, int], n_real: int) -> Figure:
    """Paper mode against masked mode for one (sentence, head): true scores, collisions, the
    paper's score matrix (zeros and mirrored lower triangle), its weights, masked weights and full
    weights."""
    b, h = index
    n = n_real
    fig, axes = plt.subplots(2, 3, figsize=(11.5, 7.2))
    scores = cmp.true_scores[b, h, :n, :n]
    lim = float(scores.abs().max())
    heatmap(axes[0, 0], scores, "true scores q_i.k_j / sqrt(d)", cmap="RdBu_r", vmin=-lim, vmax=lim)
    heatmap(
        axes[0, 1],
        cmp.colliding[b, h, :n, :n],
        "collides (any table)",
        cmap="Greys",
        vmin=0,
        vmax=1,
    )
    heatmap(
        axes[0, 2],
        cmp.paper_scores[b, h, :n, :n],
        "paper scores: 0 if no collision,\nupper triangle mirrored",
        cmap="RdBu_r",
        vmin=-lim,
        vmax=lim,
    )
    probs = [cmp.full_probs, cmp.paper_probs, cmp.masked_probs]
    vmax = max(float(p[b, h, :n, :n].max()) for p in probs)
    for ax, p, title in zip(
        axes[1], probs, ["full attention", "paper mode", "masked mode"], strict=True
    ):
        heatmap(ax, p[b, h, :n, :n], f"{title} weights", vmin=0, vmax=vmax)
    fig.tight_layout()
    return fig


def plot_approximation(rows: Sequence[dict[str, Any]]) -> Figure:
    """Output error and top-k recall against bits, one line per (mode, tables); the dotted line
    in the recall panel is the collision density (what a random mask of that density recalls)."""
    fig, (ax_err, ax_rec) = plt.subplots(1, 2, figsize=(11, 4.2))
    modes = sorted({r["mode"] for r in rows})
    tables = sorted({r["tables"] for r in rows})
    styles = {"paper": "-o", "masked": "--s"}
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for ti, t in enumerate(tables):
        for mode in modes:
            sel = sorted(
                (r for r in rows if r["mode"] == mode and r["tables"] == t), key=lambda r: r["bits"]
            )
            bits = [r["bits"] for r in sel]
            kw = {"color": colors[ti % len(colors)], "ms": 4}
            ax_err.plot(
                bits,
                [r["output_error"] for r in sel],
                styles.get(mode, "-"),
                label=f"{mode}, tables={t}",
                **kw,
            )
            ax_rec.plot(
                bits,
                [r["topk_recall"] for r in sel],
                styles.get(mode, "-"),
                label=f"{mode}, tables={t}",
                **kw,
            )
        sel = sorted(
            (r for r in rows if r["mode"] == modes[0] and r["tables"] == t), key=lambda r: r["bits"]
        )
        ax_rec.plot(
            [r["bits"] for r in sel],
            [r["density"] for r in sel],
            ":",
            color=colors[ti % len(colors)],
            label=f"density, tables={t}",
        )
    ax_err.set_xlabel("bits (bands)")
    ax_err.set_ylabel("relative output error vs full attention")
    ax_rec.set_xlabel("bits (bands)")
    ax_rec.set_ylabel("recall of the top-k full-attention keys")
    ax_err.set_title("Output error")
    ax_rec.set_title("Top-k recall")
    ax_rec.legend(fontsize=7, ncol=2)
    fig.tight_layout()
    return fig
