"""Figures of notebooks 04 (pretraining) and 05 (fine-tuning): loss curves of the three variants,
final metrics beside the paper's, and training throughput. Each function takes the run records
of :mod:`lshlib.training` (``{variant: record}``) and returns a matplotlib figure."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.figure import Figure

from lshlib.plots import save_figure, style

COLORS = {"baseline": "tab:blue", "lsh_paper": "tab:orange", "lsh_masked": "tab:green"}


def plot_loss_curves(records: dict[str, dict], title: str, log_y: bool = False) -> Figure:
    """Train loss (thin solid line, every logging step) and evaluation loss (thick dashed line
    with markers) against the optimizer step, one colour per variant."""
    style()
    fig, ax = plt.subplots(figsize=(8, 4.5))
    for variant, record in records.items():
        color = COLORS.get(variant)
        train = record["curves"]["train"]
        evals = record["curves"]["eval"]
        ax.plot(
            [p["step"] for p in train],
            [p["loss"] for p in train],
            color=color,
            lw=1,
            alpha=0.7,
            label=f"{variant} train",
        )
        ax.plot(
            [p["step"] for p in evals],
            [p["eval_loss"] for p in evals],
            color=color,
            lw=2,
            ls="--",
            marker="o",
            ms=4,
            label=f"{variant} validation",
        )
    ax.set_xlabel("optimizer step")
    ax.set_ylabel("loss")
    if log_y:
        ax.set_yscale("log")
    ax.set_title(title)
    ax.legend(ncol=3, fontsize=8)
    fig.tight_layout()
    return fig


def plot_metric_comparison(table, title: str) -> Figure:
    """Grouped bars per metric: ours for every variant and, hatched, the paper's where it reports
    one. ``table`` is :func:`lshlib.training.comparison_table`'s output (columns ``<metric>``
    and ``<metric> (paper)``)."""
    style()
    metrics = [c for c in table.columns if not c.endswith("(paper)")]
    fig, axes = plt.subplots(1, len(metrics), figsize=(3.2 * len(metrics), 3.6), squeeze=False)
    for ax, metric in zip(axes[0], metrics, strict=True):
        x = np.arange(len(table.index))
        ours = table[metric].to_numpy(dtype=float)
        paper_col = f"{metric} (paper)"
        paper = table[paper_col].to_numpy(dtype=float) if paper_col in table else None
        width = 0.38 if paper is not None else 0.6
        colors = [COLORS.get(v, "gray") for v in table.index]
        ax.bar(x - (width / 2 if paper is not None else 0), ours, width, color=colors, label="ours")
        if paper is not None:
            ax.bar(x + width / 2, paper, width, color=colors, alpha=0.4, hatch="//", label="paper")
        ax.set_xticks(x, table.index, rotation=20, fontsize=8)
        ax.set_title(metric, fontsize=10)
    axes[0][0].legend(fontsize=8)
    fig.suptitle(title)
    fig.tight_layout()
    return fig


def plot_throughput(records: dict[str, dict], title: str) -> Figure:
    """Training throughput (tokens per second, padding excluded) of each variant."""
    style()
    fig, ax = plt.subplots(figsize=(5, 3.2))
    variants = list(records)
    values = [records[v]["tokens_per_second"] for v in variants]
    ax.bar(variants, values, color=[COLORS.get(v, "gray") for v in variants])
    for i, value in enumerate(values):
        ax.text(i, value, f"{value:,.0f}", ha="center", va="bottom", fontsize=8)
    ax.set_ylabel("training tokens / s")
    ax.set_title(title)
    fig.tight_layout()
    return fig


def save_and_show(fig: Figure, name: str) -> None:
    """Save ``fig`` with :func:`lshlib.plots.save_figure`, display the saved PNG once (whatever
    the matplotlib backend) and close the figure."""
    from IPython.display import Image, display

    path = save_figure(fig, name)
    plt.close(fig)
    display(Image(filename=str(path)))
