"""Figures of notebook 03 (compute savings): the paper's KFLOPs chart and its honest version,
operations vs sequence length, collision density vs theory, and the measured wall-clock and
memory of the attention benchmark."""

from __future__ import annotations

from collections.abc import Sequence

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.figure import Figure

__all__ = ["kflops_charts", "ops_vs_length", "density_vs_theory", "bench_time_memory"]


def kflops_charts(rows: Sequence[dict]) -> Figure:
    """Left: the paper's chart (hashing products only vs 25.6 KFLOPs for QK^T). Right: the same
    settings with every operation of the authors' algorithm, forward and backward, vs full
    attention counted the same way (log scale)."""
    labels = [r["label"] for r in rows]
    x = np.arange(len(rows))
    fig, (a, b) = plt.subplots(1, 2, figsize=(13, 4.2))
    a.bar(x, [r["paper_kflops"] for r in rows], color="tab:blue", label="LSH (hashing only)")
    a.axhline(rows[0]["paper_full_kflops"], color="tab:red", ls="--", label="full attention QK^T")
    a.set_title("As the paper counts (10 tokens, hidden 128)")
    a.set_ylabel("KFLOPs")
    b.bar(x - 0.2, [r["honest_lsh_forward_kops"] for r in rows], 0.4, label="LSH forward")
    b.bar(x + 0.2, [r["honest_lsh_kops"] for r in rows], 0.4, label="LSH forward + backward")
    b.axhline(rows[0]["honest_full_forward_kops"], color="tab:red", ls=":", label="full, forward")
    b.axhline(rows[0]["honest_full_kops"], color="tab:red", ls="--", label="full, fwd + bwd")
    b.set_yscale("log")
    b.set_title("Every operation, forward and backward (authors' algorithm)")
    b.set_ylabel("K operations")
    for ax in (a, b):
        ax.set_xticks(x, labels, rotation=60)
        ax.set_xlabel("bands-num_hashes")
        ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def ops_vs_length(rows: Sequence[dict]) -> Figure:
    """Log-log: expected operations (left) and dot products (right) per attention call."""
    fig, axes = plt.subplots(1, 2, figsize=(13, 4.5))
    methods = list(dict.fromkeys(r["method"] for r in rows))
    for m in methods:
        sel = [r for r in rows if r["method"] == m]
        style = "-" if m == "dense" else ("--" if m.startswith("authors") else "-.")
        width = 2.5 if m == "dense" else 1.5
        for ax, key in zip(axes, ("ops", "dot_products"), strict=True):
            ax.plot([r["n"] for r in sel], [r[key] for r in sel], style, lw=width, marker="o",
                    ms=3, label=m)  # fmt: skip
    for ax, title in zip(axes, ("operations (fwd + bwd)", "query-key dot products"), strict=True):
        ax.set_xscale("log", base=2)
        ax.set_yscale("log")
        ax.set_xlabel("sequence length n")
        ax.set_title(title)
    axes[0].legend(fontsize=7, ncol=2)
    fig.tight_layout()
    return fig


def density_vs_theory(rows: Sequence[dict], title: str = "") -> Figure:
    """Measured collision density (with 4 standard errors) beside the closed form."""
    fig, ax = plt.subplots(figsize=(8, 4))
    x = np.arange(len(rows))
    ax.bar(x - 0.2, [r["expected"] for r in rows], 0.4, label="theory (closed form)")
    ax.bar(x + 0.2, [r["measured"] for r in rows], 0.4, yerr=[4 * r["stderr"] for r in rows],
           capsize=3, label="measured (error bar: 4 SE)")  # fmt: skip
    ax.set_xticks(x, [r["label"] for r in rows], rotation=20, fontsize=8)
    ax.set_yscale("log")
    ax.set_ylabel("fraction of pairs colliding")
    ax.set_title(title or "Collision density: measured vs theory")
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def bench_time_memory(rows: Sequence[dict], crossovers: dict | None = None) -> Figure:
    """Wall-clock (forward; forward + backward) and peak memory vs n from the benchmark rows of
    :func:`lshlib.cost.bench_rows`; a dotted line marks where each bucketed setting first beats
    SDPA in that phase (``crossovers``: phase -> {label: n}, from
    :func:`lshlib.cost.crossover_labels`)."""
    fig, axes = plt.subplots(1, 3, figsize=(16, 4.8))
    labels = list(dict.fromkeys(r["label"] for r in rows))
    colors = dict(zip(labels, plt.cm.tab10(np.linspace(0, 1, max(len(labels), 2))), strict=False))
    for ax, phase in zip(axes[:2], ("forward", "forward_backward"), strict=True):
        for lab in labels:
            sel = sorted((r for r in rows if r["label"] == lab and r["phase"] == phase),
                         key=lambda r: r["n"])  # fmt: skip
            if not sel:
                continue
            n = [r["n"] for r in sel]
            ax.plot(n, [r["median"] for r in sel], marker="o", ms=3, color=colors[lab], label=lab)
            ax.fill_between(n, [r["q1"] for r in sel], [r["q3"] for r in sel],
                            color=colors[lab], alpha=0.2)  # fmt: skip
        ax.set_title(f"{phase.replace('_', ' + ')} time (median, IQR band)")
        ax.set_ylabel("seconds")
    for lab in labels:
        sel = sorted((r for r in rows if r["label"] == lab and r["phase"] == "forward"
                      and r["peak_bytes"]), key=lambda r: r["n"])  # fmt: skip
        if sel:
            axes[2].plot([r["n"] for r in sel], [r["peak_bytes"] / 2**20 for r in sel],
                         marker="o", ms=3, color=colors[lab], label=lab)  # fmt: skip
    axes[2].set_title("peak memory, forward")
    axes[2].set_ylabel("MiB")
    for ax, phase in zip(axes[:2], ("forward", "forward_backward"), strict=True):
        for lab, n in (crossovers or {}).get(phase, {}).items():
            if n is not None and lab in colors:
                ax.axvline(n, color=colors[lab], ls=":", lw=1.2)
    for ax in axes:
        ax.set_xscale("log", base=2)
        ax.set_yscale("log")
        ax.set_xlabel("sequence length n")
    axes[0].legend(fontsize=7)
    fig.tight_layout()
    return fig
