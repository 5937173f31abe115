"""Figures and tables of notebooks 04 (pretraining) and 05 (fine-tuning): loss curves of the
variants, final metrics beside the paper's, training throughput, and the text summaries. Each
function takes the run records of :mod:`lshlib.training` (``{variant: record}``)."""

from __future__ import annotations

import math

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from lshlib import metrics
from lshlib.report import style
from lshlib.scales import SCALES, TRAINING

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


# --------------------------------------------------------------------------- tables

# Our metric (key of a record's ``final``), the paper's (key of metrics.PAPER_RESULTS), label.
COMPARISONS: dict[str, list[tuple[str, str | None, str]]] = {
    "mlm": [
        ("validation_accuracy", "mlm_eval_accuracy", "MLM accuracy"),
        ("validation_loss", "mlm_eval_loss", "MLM eval loss"),
        ("validation_perplexity", "mlm_perplexity", "perplexity"),
        ("train_loss_last", "mlm_final_train_loss", "final train loss"),
    ],
    "sst2": [
        ("test_accuracy", "sst2_test_accuracy", "test accuracy"),
        ("test_loss", "sst2_test_loss", "test loss"),
        ("validation_loss_best", "sst2_best_validation_loss", "best validation loss"),
    ],
    "squad": [
        ("validation_loss_best", "squad_best_validation_loss", "best validation loss"),
        ("test_exact_match", None, "test EM (%)"),
        ("test_f1", None, "test F1 (%)"),
    ],
}
PAPER_VARIANT = {"baseline": "baseline", "lsh_paper": "lsh"}  # lsh_masked is not in the paper


def comparison_table(records: dict[str, dict], task: str):
    """One row per variant: our final metrics of ``task`` and, beside each, the paper's number
    (``NaN`` where the paper reports none: SQuAD EM/F1 and the masked variant)."""
    rows = {}
    for variant, record in records.items():
        paper = metrics.PAPER_RESULTS.get(PAPER_VARIANT.get(variant, ""), {})
        row: dict[str, float] = {}
        for ours, theirs, label in COMPARISONS[task]:
            row[label] = record["final"].get(ours, math.nan)
            if theirs is not None:
                row[f"{label} (paper)"] = paper.get(theirs, math.nan)
        rows[variant] = row
    return pd.DataFrame.from_dict(rows, orient="index")


def throughput_table(records: dict[str, dict]):
    """Steps, training wall-clock, tokens and samples per second, and device of each run."""
    return pd.DataFrame.from_dict(
        {
            v: {
                "steps": r["steps"],
                "train seconds": r["train_seconds"],
                "tokens / s": r["tokens_per_second"],
                "samples / s": r["train_samples_per_second"],
                "device": r["device"]["type"],
            }
            for v, r in records.items()
        },
        orient="index",
    )


def settings_frame(task: str):
    """The settings of ``task`` at every scale, one column per scale (for the notebooks)."""
    if task not in TRAINING["smoke"]:
        raise ValueError(f"unknown task {task!r}; valid tasks are: {', '.join(TRAINING['smoke'])}")
    keys = list(dict.fromkeys(k for scale in SCALES for k in TRAINING[scale][task]))
    columns = {scale: [str(TRAINING[scale][task].get(k, "-")) for k in keys] for scale in SCALES}
    return pd.DataFrame(columns, index=keys)


def summarize(records: dict[str, dict], task: str) -> str:
    """One line per variant with its headline metrics and the paper's, for a notebook's close."""
    lines = []
    for variant, row in comparison_table(records, task).iterrows():
        parts = []
        for _, theirs, label in COMPARISONS[task]:
            text = f"{label} {row[label]:.4g}"
            if theirs is not None and not math.isnan(row[f"{label} (paper)"]):
                text += f" (paper {row[f'{label} (paper)']:.4g})"
            parts.append(text)
        r = records[variant]
        parts.append(f"{r['train_seconds']:.0f} s training, {r['tokens_per_second']:,.0f} tokens/s")
        lines.append(f"{variant}: " + "; ".join(parts))
    return "\n".join(lines)


def gap_line(records: dict[str, dict], metric: str, a: str, b: str, n: int) -> str:
    """``a`` minus ``b`` on the accuracy ``metric`` of one seed each, with its 95% interval
    (:func:`lshlib.metrics.accuracy_difference` over ``n`` test examples), in words."""
    x, y = records[a]["final"][metric], records[b]["final"][metric]
    gap = metrics.accuracy_difference(x, y, n)
    inside = abs(gap["difference"]) <= gap["half_width"]
    verdict = "within noise" if inside else "beyond the test-set noise of one seed"
    return (
        f"{metric}, {a} - {b}: {gap['difference']:+.4f} (95% interval +-{gap['half_width']:.4f}, "
        f"standard error {gap['stderr']:.4f} over {n} examples): {verdict}"
    )
