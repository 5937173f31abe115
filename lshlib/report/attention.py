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

from lshlib.experiments.analysis import ModeComparison, no_collision_queries

__all__ = [
    "heatmap",
    "plot_collisions_vs_attention",
    "plot_density_vs_theory",
    "plot_mode_comparison",
    "plot_approximation",
    "no_collision_sentence",
    "density_estimates_report",
    "masked_error_report",
]


def heatmap(
    ax: Axes,
    matrix: Tensor | np.ndarray,
    title: str,
    *,
    cmap: str = "viridis",
    colorbar: bool = True,
    fontsize: int = 9,
    **kw,
):
    """One square heat map (queries down, keys across), with a small colour bar unless
    ``colorbar=False`` (a 0/1 map whose title says what black means needs none)."""
    values = matrix.detach().float().cpu().numpy() if isinstance(matrix, Tensor) else matrix
    im = ax.imshow(values, cmap=cmap, interpolation="nearest", **kw)
    ax.set_title(title, fontsize=fontsize)
    ax.set_xlabel("key j", fontsize=fontsize - 1)
    ax.set_ylabel("query i", fontsize=fontsize - 1)
    ax.tick_params(labelsize=fontsize - 2)
    ax.grid(False)
    if colorbar:
        cbar = ax.figure.colorbar(im, ax=ax, fraction=0.046, pad=0.04)
        cbar.ax.tick_params(labelsize=fontsize - 2)
    return im


def plot_collisions_vs_attention(
    full_probs: Tensor,
    collisions: dict[str, Tensor],
    *,
    n_real: int | None = None,
    expected: tuple[str, Tensor] | None = None,
    ncols: int = 3,
) -> Figure:
    """Full attention of one (sentence, head) beside its query-key collision matrices under
    several settings (``{label: bool (n, n)}``, black = collides) and, if given, ``expected``
    ``(label, P(collide) matrix)`` from the closed form; a grid of ``ncols`` columns whose
    unused cells are removed. ``n_real`` crops away padding."""
    n = n_real or full_probs.shape[-1]
    panels = 1 + len(collisions) + (expected is not None)
    nrows = -(-panels // ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(5.2 * ncols, 4.9 * nrows), squeeze=False)
    flat = list(axes.flat)
    heatmap(flat[0], full_probs[:n, :n], "full attention weights", fontsize=12)
    for ax, (label, coll) in zip(flat[1:], collisions.items(), strict=False):
        c = coll[:n, :n]
        title = f"{label}\nblack = collides, density {float(c.float().mean()):.3f}"
        heatmap(ax, c, title, cmap="Greys", vmin=0, vmax=1, colorbar=False, fontsize=12)
    if expected is not None:
        label, prob = expected
        ax = flat[1 + len(collisions)]
        p = prob[:n, :n]
        title = f"{label}: exact P(collide)\nmean {float(p.float().mean()):.3f}"
        heatmap(ax, p, title, cmap="Greys", vmin=0, vmax=1, fontsize=12)
    for ax in flat[panels:]:
        fig.delaxes(ax)
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
    ax.set_xlabel("expected density (lshlib.lsh.theory)")
    ax.set_ylabel("measured density (± 2 s.e.)")
    ax.set_title("Collision density of real queries and keys")
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def plot_mode_comparison(cmp: ModeComparison, index: tuple[int, int], n_real: int) -> Figure:
    """Paper mode against masked mode for one (sentence, head). Top: true scores, collisions,
    the paper's score matrix (zeros and mirrored lower triangle) and its difference from the true
    scores. Bottom: full, paper and masked weights, each on its own colour scale (full and paper
    weights differ by little, so a shared scale would make them look identical), and paper minus
    full weights on a symmetric scale."""
    b, h = index
    n = n_real
    fig, axes = plt.subplots(2, 4, figsize=(16, 7.6))
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
    _diverging(axes[0, 3], cmp.paper_scores[b, h, :n, :n] - scores, "paper scores - true scores")
    probs = [cmp.full_probs, cmp.paper_probs, cmp.masked_probs]
    for ax, p, title in zip(
        axes[1, :3], probs, ["full attention", "paper mode", "masked mode"], strict=True
    ):
        heatmap(ax, p[b, h, :n, :n], f"{title} weights (own scale)")
    diff = cmp.paper_probs[b, h, :n, :n] - cmp.full_probs[b, h, :n, :n]
    _diverging(axes[1, 3], diff, "paper weights - full weights")
    fig.tight_layout()
    return fig


def _diverging(ax: Axes, matrix: Tensor, title: str) -> None:
    """A difference heat map on a symmetric red-blue scale around 0."""
    lim = max(float(matrix.abs().max()), 1e-12)
    heatmap(ax, matrix, title, cmap="RdBu_r", vmin=-lim, vmax=lim)


def plot_approximation(rows: Sequence[dict[str, Any]], chance: float | None = None) -> Figure:
    """Three panels against bits, one colour and marker per number of tables: masked-mode output
    error, paper-mode output error (on its own, much finer scale: its lines lie close together)
    and top-k recall of both modes. In the recall panel the dotted lines are the collision
    density (what a random mask of that density recalls: masked mode's chance level) and the
    grey line ``chance`` (paper mode's chance level k/n,
    :func:`lshlib.experiments.analysis.topk_chance`)."""
    fig, (ax_masked, ax_paper, ax_rec) = plt.subplots(1, 3, figsize=(17, 4.8))
    tables = sorted({r["tables"] for r in rows})
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    markers = "osD^v<>p"

    def series(mode: str, t: int, field: str) -> tuple[list[int], list[float]]:
        sel = sorted(
            (r for r in rows if r["mode"] == mode and r["tables"] == t), key=lambda r: r["bits"]
        )
        return [r["bits"] for r in sel], [r[field] for r in sel]

    for ti, t in enumerate(tables):
        kw = {"color": colors[ti % len(colors)], "marker": markers[ti % len(markers)], "ms": 5}
        ax_masked.plot(*series("masked", t, "output_error"), "--", label=f"tables={t}", **kw)
        ax_paper.plot(*series("paper", t, "output_error"), "-", label=f"tables={t}", **kw)
        for mode, style in (("paper", "-"), ("masked", "--")):
            ax_rec.plot(*series(mode, t, "topk_recall"), style, label=f"{mode}, tables={t}", **kw)
        ax_rec.plot(
            *series("masked", t, "density"),
            ":",
            color=kw["color"],
            label=f"density (masked chance), tables={t}",
        )
    if chance is not None:
        ax_rec.axhline(chance, color="0.4", lw=1.5, label=f"paper chance k/n = {chance:.3f}")
    ax_masked.axhline(1.0, color="0.4", lw=1, ls=":", label="error of a zero output (1)")
    for ax, title, ylabel in (
        (ax_masked, "Masked mode: output error", "relative output error vs full attention"),
        (ax_paper, "Paper mode: output error (fine scale)", "relative output error vs full"),
        (ax_rec, "Top-k recall", "recall of the top-k full-attention keys"),
    ):
        ax.set_xlabel("bits (bands)")
        ax.set_ylabel(ylabel)
        ax.set_title(title)
        ax.set_xticks(sorted({r["bits"] for r in rows}))
    ax_masked.legend(fontsize=8)
    ax_paper.legend(fontsize=8)
    # below the panel: inside it the legend would cover the lines at 1 bit
    ax_rec.legend(fontsize=8, ncol=2, loc="upper center", bbox_to_anchor=(0.5, -0.16))
    fig.tight_layout()
    return fig


# --------------------------------------------------------------------------------------------
# text summaries


def no_collision_sentence(
    cmp: ModeComparison, token_mask: Tensor, index: tuple[int, int], n_real: int
) -> str:
    """How many real queries of one (sentence, head) collide with no real key, in words."""
    b, h = index
    count = int(no_collision_queries(cmp.colliding, token_mask)[b, h])
    return (
        f"sentence {b}, head {h}: {count} of {n_real} real queries collide with no key; "
        f"masked mode gives them a zero output (rows of zeros in its weight panel). "
        f"Over all sentences and heads: {cmp.summary['no_collision_queries']:.4f} of real queries."
    )


def density_estimates_report(
    estimates: Sequence[tuple[str, int, float]], expected: float, stderr_one_draw: float
) -> str:
    """A text table of several estimates ``(source, hash draws, density)`` of one setting's
    collision density, each with its approximate standard error ``stderr_one_draw / sqrt(draws)``
    and its gap to the closed-form ``expected`` in those standard errors."""
    lines = [f"{'estimate':<46}{'draws':>6}{'density':>9}{'s.e.':>8}{'z':>7}"]
    for source, draws, density in estimates:
        if draws < 1:
            raise ValueError(f"draws must be >= 1, got {draws!r} for {source!r}")
        se = stderr_one_draw / draws**0.5
        lines.append(
            f"{source:<46}{draws:>6}{density:>9.4f}{se:>8.4f}{(density - expected) / se:>7.2f}"
        )
    lines.append(f"{'closed form (same pairs)':<46}{'':>6}{expected:>9.4f}")
    return "\n".join(lines)


def masked_error_report(rows: Sequence[dict[str, Any]]) -> str:
    """Where masked mode's output error exceeds 1 (worse than a zero output) in the rows of
    :func:`lshlib.experiments.analysis.approximation_sweep`, and why: the share of real queries that
    collide with no key there (zero output, error exactly 1) and the error of the other queries."""
    masked = [r for r in rows if r["mode"] == "masked"]
    over = [r for r in masked if r["output_error"] > 1.0]
    if not over:
        return f"masked-mode output error stays at or below 1 in all {len(masked)} settings"
    where = ", ".join(f"{r['bits']} bits/{r['tables']} tables" for r in over)
    errors = [r["output_error"] for r in over]
    empty = [r["no_collision"] for r in over]
    colliding = [r["output_error_colliding"] for r in over]
    return (
        f"masked-mode output error exceeds 1 in {len(over)} of {len(masked)} settings ({where}): "
        f"{min(errors):.4f} to {max(errors):.4f}.\n"
        f"There, {min(empty):.4f} to {max(empty):.4f} of real queries collide with no key "
        f"(zero output, error exactly 1), and the queries that do collide have error "
        f"{min(colliding):.4f} to {max(colliding):.4f}."
    )
