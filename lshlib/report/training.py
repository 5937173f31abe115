"""Figures and tables of notebooks 04 (pretraining) and 05 (fine-tuning): loss curves of the
variants, final metrics beside the paper's, training throughput, and the text summaries. Each
function takes the run records of :mod:`lshlib.training` (``{variant: record}``)."""

from __future__ import annotations

import math

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from lshlib.paper import RESULTS as PAPER_RESULTS
from lshlib.report import VARIANT_COLORS, style, variant_color
from lshlib.scales import SCALES, TRAINING
from lshlib.training import metrics

# The one palette of the study (lshlib.report.VARIANT_COLORS); the old name kept as an alias.
COLORS = VARIANT_COLORS
# Where the paper's models ended, as a caption for lines drawn at its numbers.
PAPER_END = "paper, after 88k steps (32k vocabulary, 512-token blocks)"


def plot_loss_curves(records: dict[str, dict], title: str, log_y: bool = False) -> Figure:
    """Train loss (thin solid line, every logging step) and evaluation loss (thick dashed line
    with markers) against the optimizer step, one colour per variant."""
    style()
    fig, ax = plt.subplots(figsize=(8, 4.5))
    for variant, record in records.items():
        color = variant_color(variant)
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


def plot_accuracy_curves(records: dict[str, dict], title: str, floor: dict) -> Figure:
    """Validation MLM accuracy against tokens seen, one colour per variant, with the unigram
    ``floor`` (:func:`lshlib.training.features.unigram_floor`) and, as dotted lines, the accuracies
    at which the paper's baseline and BERT-LSH ended: where on the plateau each variant sits."""
    style()
    fig, ax = plt.subplots(figsize=(8, 4.5))
    for variant, record in records.items():
        per_step = record["tokens_seen"] / max(record["steps"], 1)
        evals = record["curves"]["eval"]
        ax.plot(
            [p["step"] * per_step / 1e6 for p in evals],
            [p["eval_accuracy"] for p in evals],
            color=variant_color(variant),
            marker="o",
            ms=4,
            label=variant,
        )
    ax.axhline(floor["accuracy"], color="black", lw=1, ls="--")
    ax.annotate(
        f"unigram floor (always {floor['token']!r})",
        (0, floor["accuracy"]),
        xytext=(4, 4),
        textcoords="offset points",
        fontsize=8,
    )
    for variant, key in (("baseline", "baseline"), ("lsh_paper", "lsh")):
        value = PAPER_RESULTS[key]["mlm_eval_accuracy"]
        ax.axhline(value, color=variant_color(variant), lw=1, ls=":")
        ax.annotate(
            f"{PAPER_END}: {'baseline' if key == 'baseline' else 'BERT-LSH'}",
            (0, value),
            xytext=(4, 3),
            textcoords="offset points",
            fontsize=8,
            color=variant_color(variant),
        )
    ax.set_xlim(left=0)
    ax.set_ylim(0, 1.15 * PAPER_RESULTS["lsh"]["mlm_eval_accuracy"])
    ax.set_xlabel("training tokens seen (millions)")
    ax.set_ylabel("validation MLM accuracy")
    ax.set_title(title)
    ax.legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    return fig


def plot_metric_comparison(table, title: str, floors: dict[str, tuple[float, str]] | None = None):
    """Grouped bars per metric: ours for every variant and, hatched, the paper's where it reports
    one. ``table`` is :func:`comparison_table`'s output (columns ``<metric>`` and
    ``<metric> (paper)``); ``floors`` maps a metric to a reference line (value, name) such as
    the majority class or the lexical baseline. Panels in percent share one 0-based axis, so a
    handful of exact matches out of hundreds is not magnified; every bar carries its value."""
    style()
    floors = floors or {}
    names = [c for c in table.columns if not c.endswith("(paper)")]
    fig, axes = plt.subplots(1, len(names), figsize=(3.3 * len(names), 3.9), squeeze=False)
    percent = [n for n in names if "(%)" in n]
    top = max([float(np.nanmax(table[n].to_numpy(dtype=float))) for n in percent], default=0.0)
    top = max([top, *(floors[n][0] for n in percent if n in floors)], default=0.0)
    for ax, metric in zip(axes[0], names, strict=True):
        x = np.arange(len(table.index))
        ours = table[metric].to_numpy(dtype=float)
        paper_col = f"{metric} (paper)"
        paper = table[paper_col].to_numpy(dtype=float) if paper_col in table else None
        width = 0.38 if paper is not None else 0.6
        colors = [variant_color(v) for v in table.index]
        bars = ax.bar(x - (width / 2 if paper is not None else 0), ours, width, color=colors)
        ax.bar_label(bars, fmt="%.3g", fontsize=7)
        if paper is not None and not np.all(np.isnan(paper)):
            ax.bar(x + width / 2, paper, width, color=colors, alpha=0.4, hatch="//")
        if metric in floors:
            value, name = floors[metric]
            ax.axhline(value, color="black", lw=1, ls="--")
            ax.annotate(name, (-0.45, value), xytext=(0, 3), textcoords="offset points", fontsize=7)
        if metric in percent:
            ax.set_ylim(0, 1.2 * top)
        else:
            ax.set_ylim(0, 1.2 * float(np.nanmax([*ours, *(paper if paper is not None else [])])))
        ax.set_xticks(x, table.index, rotation=20, fontsize=8)
        ax.set_title(metric, fontsize=10)
    handles = [
        plt.Rectangle((0, 0), 1, 1, color="0.5"),
        plt.Rectangle((0, 0), 1, 1, color="0.5", alpha=0.4, hatch="//"),
    ]
    fig.legend(handles, ["ours", "paper"], loc="lower center", ncol=2, fontsize=8, frameon=False)
    fig.suptitle(title)
    fig.tight_layout(rect=(0, 0.06, 1, 1))
    return fig


def plot_throughput(records: dict[str, dict], title: str) -> Figure:
    """Training throughput (tokens per second, padding excluded) of each variant."""
    style()
    fig, ax = plt.subplots(figsize=(5, 3.2))
    variants = list(records)
    values = [records[v]["tokens_per_second"] for v in variants]
    ax.bar(variants, values, color=[variant_color(v) for v in variants])
    for i, value in enumerate(values):
        ax.text(i, value, f"{value:,.0f}", ha="center", va="bottom", fontsize=8)
    ax.set_ylabel("training tokens / s")
    ax.set_title(title)
    fig.tight_layout()
    return fig


# --------------------------------------------------------------------------- tables

# Our metric (key of a record's ``final``), the paper's (key of PAPER_RESULTS), label.
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
        paper = PAPER_RESULTS.get(PAPER_VARIANT.get(variant, ""), {})
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
    (:func:`lshlib.training.metrics.accuracy_difference` over ``n`` test examples), in words."""
    x, y = records[a]["final"][metric], records[b]["final"][metric]
    gap = metrics.accuracy_difference(x, y, n)
    inside = abs(gap["difference"]) <= gap["half_width"]
    verdict = "within noise" if inside else "beyond the test-set noise of one seed"
    return (
        f"{metric}, {a} - {b}: {gap['difference']:+.4f} (95% interval +-{gap['half_width']:.4f}, "
        f"standard error {gap['stderr']:.4f} over {n} examples): {verdict}"
    )


# --------------------------------------------------------------------------- findings, in words

# The goals the laptop scale is held to: baseline MLM accuracy, SST-2 test accuracy,
# SQuAD test F1 (%).
GOALS = {"mlm": 0.15, "sst2": 0.82, "squad": 20.0}
HEADLINE = {"mlm": "validation_accuracy", "sst2": "test_accuracy", "squad": "test_f1"}


def _goal(value: float, task: str) -> str:
    goal = GOALS[task]
    if value >= goal:
        return f"meets the goal of {goal:g}"
    return f"misses the goal of {goal:g} by {goal - value:.3g}"


def _gaps(records: dict[str, dict], metric: str, n: int, ref: str, scale: float = 1.0) -> list:
    """Each other variant minus ``ref`` on ``metric`` (an accuracy, or a percentage when
    ``scale`` is 100) with its 95% interval over ``n`` scored examples, in words."""
    out = []
    for variant in records:
        if variant == ref:
            continue
        a = records[variant]["final"][metric] / scale
        b = records[ref]["final"][metric] / scale
        gap = metrics.accuracy_difference(a, b, n)
        noise = abs(gap["difference"]) <= gap["half_width"]
        out.append(
            f"{variant} - {ref}: {scale * gap['difference']:+.3g} "
            f"(95% interval ±{scale * gap['half_width']:.3g}; "
            f"{'within noise' if noise else 'beyond test-set noise'})"
        )
    return out


def findings_pretraining(records: dict[str, dict], floor: dict) -> str:
    """The pretraining result in sentences, every number from ``records`` and the unigram
    ``floor``: how far the baseline got and how it compares with the floor, the paper and the
    goal, the variants' gaps with their test-set intervals, and throughput."""
    base = records["baseline"]
    acc = base["final"]["validation_accuracy"]
    paper = PAPER_RESULTS["baseline"]["mlm_eval_accuracy"]
    lines = [
        f"- After {base['steps']:,} optimizer steps ({base['tokens_seen'] / 1e6:.1f}M tokens, "
        f"{base['train_seconds'] / 60:.1f} min), the baseline's MLM accuracy is {acc:.4f}: "
        f"{acc / floor['accuracy']:.1f}x the unigram floor of {floor['accuracy']:.4f} "
        f"(always {floor['token']!r}: {floor['hits']} of {floor['positions']:,} masked "
        f"positions), {abs(paper - acc):.4f} {'below' if acc < paper else 'above'} where the "
        f"paper's baseline ended ({paper}); "
        f"it {_goal(acc, 'mlm')}.",
        f"- Gaps in MLM accuracy over the {floor['positions']:,} masked evaluation positions "
        "(one seed each, so the seed-to-seed spread is not in these intervals): "
        + "; ".join(_gaps(records, "validation_accuracy", floor["positions"], "baseline"))
        + ". The paper reports BERT-LSH ahead by "
        f"{PAPER_RESULTS['lsh']['mlm_eval_accuracy'] - paper:+.4f}.",
        "- Training throughput: "
        + ", ".join(
            f"{v} {r['tokens_per_second']:,.0f} tokens/s "
            f"({r['tokens_per_second'] / base['tokens_per_second']:.2f}x baseline)"
            for v, r in records.items()
        )
        + ".",
    ]
    return "\n".join(lines)


def findings_finetuning(
    records: dict[str, dict], task: str, n_test: int, floor: tuple[float, str]
) -> str:
    """The fine-tuning result of ``task`` (``sst2`` or ``squad``) in sentences: the baseline
    against its goal and the ``floor`` (value, name: the majority class, the lexical
    baseline), and every variant minus ``scratch`` (what pretraining adds) and minus
    ``baseline`` with 95% intervals over the ``n_test`` test examples (SQuAD: on exact match,
    an accuracy; F1 has no per-question record to put an interval on)."""
    metric = HEADLINE[task]
    base = records["baseline"]["final"][metric]
    unit = "" if task == "sst2" else "%"
    lines = [
        f"- The baseline's test {'accuracy' if task == 'sst2' else 'F1'} is {base:.4g}{unit}; "
        f"it {_goal(base, task)}, against {floor[0]:.4g}{unit} for {floor[1]}."
    ]
    gap_metric, scale = (metric, 1.0) if task == "sst2" else ("test_exact_match", 100.0)
    name = "accuracy" if task == "sst2" else "exact match (points)"
    for ref in ("scratch", "baseline"):
        if ref in records:
            others = {v: r for v, r in records.items() if v not in (ref, "scratch")}
            gaps = _gaps({ref: records[ref], **others}, gap_metric, n_test, ref, scale)
            lines.append(
                f"- Test {name} minus {ref}: " + "; ".join(gaps) + " (one seed each, so the "
                "seed-to-seed spread is not in these intervals; notebook 06 weighs them over "
                "seeds)."
            )
    if task == "sst2":
        a = PAPER_RESULTS["baseline"]["sst2_test_accuracy"]
        b = PAPER_RESULTS["lsh"]["sst2_test_accuracy"]
        gap = metrics.accuracy_difference(a, b, n_test)
        noise = "within" if abs(gap["difference"]) <= gap["half_width"] else "beyond"
        lines.append(
            f"- The paper's own gap, baseline - BERT-LSH = {gap['difference']:+.4f}, has a 95% "
            f"interval of ±{gap['half_width']:.4f} on the same {n_test} sentences: {noise} "
            "the noise of one run each."
        )
    return "\n".join(lines)
