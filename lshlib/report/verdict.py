"""Notebook 06 (the verdict): the claims table, and the paper's figures redrawn from several
seeds with bands. Inputs are the rows of :func:`lshlib.verdict.compare` and run records; the
sentences beside them are in :mod:`lshlib.report.sentences` (offered here too)."""

from __future__ import annotations

import math
from collections.abc import Sequence

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from lshlib.paper import RESULTS as PAPER_RESULTS
from lshlib.report import style, variant_color
from lshlib.report.sentences import (  # noqa: F401 - the verdict's sentences, offered here as before
    difference_sentences,
    isolation_conclusion,
    isolation_sentence,
    long_sequence_conclusion,
    long_sequence_lines,
    plateau_conclusion,
    plateau_lines,
    settings_lines,
)
from lshlib.scales import TOKENIZER, TRAINING, get_scale
from lshlib.verdict.table import (  # noqa: F401 - the claims table's rows, offered here as before
    claim_row,
    claims,
    compute_claim,
    exit_words,
    paper_mode_over_sdpa,
    plateau_claim,
    verdict_word,
)

__all__ = [
    "verdict_word",
    "claim_row",
    "compute_claim",
    "claims",
    "claims_frame",
    "plot_seed_bands",
    "paper_loss_lines",
    "plot_radar",
    "paper_mode_over_sdpa",
    "difference_sentences",
    "settings_lines",
    "isolation_sentence",
    "isolation_conclusion",
    "plateau_lines",
    "long_sequence_lines",
    "plot_plateau",
    "plot_loss_vs_time",
]


def claims_frame(rows: Sequence[dict[str, str]]) -> pd.DataFrame:
    """The claims table as a frame, one row per claim (display it with
    ``pd.option_context("display.max_colwidth", None)`` to read whole sentences)."""
    return pd.DataFrame(list(rows)).set_index("claim")


def _curves(records: Sequence[dict], curve: str, key: str) -> dict[str, dict[int, list]]:
    """``{variant: {step: [value per seed]}}`` of one curve of the records."""
    out: dict[str, dict[int, list]] = {}
    for r in records:
        points = out.setdefault(r["config"]["variant"], {})
        for p in r["curves"][curve]:
            if key in p:
                points.setdefault(p["step"], []).append(p[key])
    return out


# The paper's reported losses for each redrawn loss figure (docs/paper.md), by task: what our
# curves are drawn beside (its final MLM training loss; its best validation loss when fine-tuning).
PAPER_LOSSES = {
    "mlm": ("train", "loss", "mlm_final_train_loss", "final training loss"),
    "sst2": ("eval", "eval_loss", "sst2_best_validation_loss", "best validation loss"),
    "squad": ("eval", "eval_loss", "squad_best_validation_loss", "best validation loss"),
}


def paper_loss_lines(task: str) -> tuple[str, str, dict[str, float]]:
    """``(curve, key, {label: value})``: which of our curves to draw for ``task`` and the
    paper's reported loss of each of its two models, to draw beside it (in nats, as reported:
    :func:`plot_seed_bands` puts them on a shared scale)."""
    if task not in PAPER_LOSSES:
        raise ValueError(f"task must be one of {sorted(PAPER_LOSSES)}, got {task!r}")
    curve, key, paper_key, what = PAPER_LOSSES[task]
    p = PAPER_RESULTS
    lines = {
        f"paper baseline, {what}": p["baseline"][paper_key],
        f"paper BERT-LSH, {what}": p["lsh"][paper_key],
    }
    return curve, key, lines


def _uniform_loss(task: str, config: dict | None = None) -> tuple[float, int, str]:
    """``(log K, K, what K counts)``: the cross-entropy (nats) of a uniform guess over the K
    outcomes of ``task``, for a run of ``config`` or, with ``None``, for the paper's runs
    (docs/paper.md). K is the vocabulary (MLM: ``TOKENIZER`` of the run's scale), the 2 classes
    (SST-2), or the token positions of a window (SQuAD: its start and end losses, averaged, are
    each over the window's positions; ours pad a batch to its longest window, so ``max_length``
    is an upper bound and log K a slight over-estimate for us)."""
    scale = "paper" if config is None else config.get("scale") or get_scale()
    if task == "mlm":
        k = TOKENIZER[scale]["vocab_size"]
        return math.log(k), k, "vocabulary size"
    if task == "sst2":
        return math.log(2), 2, "classes"
    if task == "squad":
        k = (config or {}).get("max_length") or TRAINING[scale]["squad"]["max_length"]
        return math.log(k), k, "window length"
    raise ValueError(f"task must be one of {sorted(PAPER_LOSSES)}, got {task!r}")


def _task_of(records: Sequence[dict], curve: str, key: str) -> str | None:
    """The task of ``records`` (their ``config["task"]``), else the one task whose paper line
    is drawn on ``curve``/``key`` (:data:`PAPER_LOSSES`), else ``None``."""
    tasks = {r["config"].get("task") for r in records} - {None}
    if len(tasks) > 1:
        raise ValueError(f"records of several tasks in one figure: {sorted(tasks)}")
    if tasks:
        return tasks.pop()
    matches = [t for t, spec in PAPER_LOSSES.items() if spec[:2] == (curve, key)]
    return matches[0] if len(matches) == 1 else None


def plot_seed_bands(
    records: Sequence[dict],
    title: str,
    curve: str = "train",
    key: str = "loss",
    paper: dict[str, float] | None = None,
    task: str | None = None,
) -> Figure:
    """One line per variant, the mean over seeds, with a band from the lowest to the highest
    seed at each logged step (steps every seed logged); ``paper`` adds a dotted horizontal line
    per reported number (label: value, in nats).

    A loss is drawn beside the paper's only on a shared scale: where a uniform guess scores
    differently in the two studies (:func:`_uniform_loss`: MLM over our smaller vocabulary,
    SQuAD over our shorter windows), both are divided by the log of their own K, so 1.0 is a
    uniform guess in both, and the right-hand axis reads ours back in nats. Where it scores the
    same (SST-2: 2 classes), both stay in nats. ``task`` defaults to the records' own."""
    style()
    fig, ax = plt.subplots(figsize=(8, 4.5))
    seeds = {}
    for r in records:
        seeds.setdefault(r["config"]["variant"], set()).add(r["config"]["seed"])
    words = {"loss": "training loss", "eval_loss": "validation loss"}.get(
        key, key.replace("_", " ")
    )
    ours_log, paper_log, ylabel, ours_said, paper_said = 1.0, 1.0, f"{words} (nats)", "", ""
    if paper:
        task = task or _task_of(records, curve, key)
        if task is None:
            raise ValueError(
                "the task of these records is unknown; pass task= to put the "
                "paper's losses on the same scale as ours"
            )
        ours = {_uniform_loss(task, r["config"]) for r in records}
        if len(ours) != 1:
            raise ValueError(f"records with different chance levels in one figure: {ours}")
        (ours_log, k, what), (paper_log, paper_k, _) = ours.pop(), _uniform_loss(task)
        if math.isclose(ours_log, paper_log):
            ours_log = paper_log = 1.0
            ylabel = f"{words} (nats)\n(a uniform guess over {k} {what}: {math.log(k):.3f})"
        else:
            ylabel = f"{words} / log({what})\n(1.0 = a uniform guess)"
            ours_said, paper_said = f"; {what} {k:,}", f" / log {paper_k:,}"
            right = ax.secondary_yaxis(
                "right", functions=(lambda y: y * ours_log, lambda y: y / ours_log)
            )
            right.set_ylabel(f"ours: {words} (nats, {what} {k:,})")
    for variant, points in _curves(records, curve, key).items():
        n = len(seeds[variant])
        steps = sorted(s for s, v in points.items() if len(v) == n)
        values = np.array([points[s] for s in steps]) / ours_log
        color = variant_color(variant)
        ax.plot(
            steps,
            values.mean(1),
            color=color,
            lw=1.8,
            label=f"{variant} ({'one seed' if n == 1 else f'{n} seeds'}{ours_said})",
        )
        ax.fill_between(steps, values.min(1), values.max(1), color=color, alpha=0.2, lw=0)
    for (label, value), variant in zip(
        (paper or {}).items(), ("baseline", "lsh_paper"), strict=False
    ):
        shown = value / paper_log
        said = f"{value:g}" if paper_log == 1.0 else f"{value:g} nats{paper_said} = {shown:.3f}"
        ax.axhline(shown, color=variant_color(variant), ls=":", lw=1.2, label=f"{label}: {said}")
    ax.set_xlabel("optimizer step")
    ax.set_ylabel(ylabel)
    ax.set_title(title + " (line: mean over seeds; band: lowest to highest seed)")
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


RADAR_AXES = (
    ("eval accuracy", lambda r: r["final"]["validation_accuracy"]),
    ("1 / eval loss", lambda r: 1 / r["final"]["validation_loss"]),
    ("1 / perplexity", lambda r: 1 / r["final"]["validation_perplexity"]),
    ("1 / train loss", lambda r: 1 / r["final"]["train_loss_last"]),
    ("train samples/s", lambda r: r["train_samples_per_second"]),
    ("train steps/s", lambda r: r["steps"] / r["train_seconds"]),
)


def _paper_radar(model: str) -> tuple[float | None, ...]:
    """The paper's values on :data:`RADAR_AXES` (``PAPER_RESULTS``; no steps/s)."""
    p = PAPER_RESULTS[model]
    return (
        p["mlm_eval_accuracy"],
        1 / p["mlm_eval_loss"],
        1 / p["mlm_perplexity"],
        1 / p["mlm_final_train_loss"],
        p["mlm_train_samples_per_s"],
        None,
    )


PAPER_RADAR = {"baseline": _paper_radar("baseline"), "lsh_paper": _paper_radar("lsh")}
# The ratio chart's two panels: which axes of RADAR_AXES each holds.
RATIO_PANELS = (
    ("quality (> 1: better than the baseline)", (0, 1, 2, 3)),
    ("training speed, each study on its own hardware (> 1: faster)", (4, 5)),
)


def _radar_ratios(records: Sequence[dict]) -> dict[str, np.ndarray]:
    """``{variant: array (seeds, axes)}``: each seed's value on every :data:`RADAR_AXES` axis
    divided by the baseline's mean over its seeds (so the baseline's seeds average exactly 1)."""
    by_variant: dict[str, list] = {}
    for r in records:
        by_variant.setdefault(r["config"]["variant"], []).append([f(r) for _, f in RADAR_AXES])
    if "baseline" not in by_variant:
        raise ValueError(f"no baseline runs to divide by; variants: {sorted(by_variant)}")
    values = {v: np.array(rows, dtype=float) for v, rows in by_variant.items()}
    base = values["baseline"].mean(0)
    return {v: x / base for v, x in values.items()}


def plot_radar(records: Sequence[dict]) -> Figure:
    """The paper's radar chart of six pretraining metrics, redrawn as ratios to the baseline
    (saved as ``verdict_radar`` still). Each metric is a row; on it each variant's mean over
    seeds of (its value / the baseline's mean) is a dot with a band from its lowest to its
    highest seed and its value printed, the baseline at 1 by construction with its own seed
    spread; the paper's BERT-LSH / baseline (one run each, no steps/s reported) is a hollow
    diamond. Losses and perplexity enter inverted, so > 1 is better on every quality row.

    Why not a radar: with each axis divided by its largest value, our variants (within a few
    per cent of each other) collapse into one hexagon, and a radar's area misreads small
    ratios; a dot per ratio, on a linear axis fitted to the ratios, shows the differences, the
    seed spread and the paper's ratios at once. Ratios also compare across the two studies
    where raw values do not (their vocabularies, blocks and hardware differ)."""
    style()
    ratios = _radar_ratios(records)
    variants = ["baseline", *(v for v in ratios if v != "baseline")]
    paper = np.array(PAPER_RADAR["lsh_paper"][:5], dtype=float) / np.array(
        PAPER_RADAR["baseline"][:5], dtype=float
    )
    series = len(variants) + 1  # ours and the paper's
    offsets = np.linspace(-0.28, 0.28, series) if series > 1 else np.zeros(1)
    fig, axes = plt.subplots(
        1,
        len(RATIO_PANELS),
        figsize=(13, 4.6),
        gridspec_kw={"width_ratios": [len(a) + 1 for _, a in RATIO_PANELS]},
    )
    for ax, (title, idx) in zip(axes, RATIO_PANELS, strict=True):
        idx = list(idx)
        xs: list[float] = [1.0]
        for j, variant in enumerate(variants):
            r = ratios[variant][:, idx]
            y = np.arange(len(idx)) + offsets[j]
            color = variant_color(variant)
            n = r.shape[0]
            ax.hlines(y, r.min(0), r.max(0), color=color, lw=4, alpha=0.35)
            ax.plot(
                r.mean(0),
                y,
                "o",
                color=color,
                ms=6,
                label=f"{variant} ({'one seed' if n == 1 else f'{n} seeds'})",
            )
            if variant != "baseline":
                for m, hi, yy in zip(r.mean(0), r.max(0), y, strict=True):
                    ax.annotate(
                        f"{m:.3f}",
                        (hi, yy),
                        xytext=(5, 0),
                        textcoords="offset points",
                        va="center",
                        fontsize=7,
                        color=color,
                    )
            xs += [*r.min(0), *r.max(0)]
        shown = [(k, i) for k, i in enumerate(idx) if i < len(paper)]
        y = np.array([k for k, _ in shown]) + offsets[-1]
        values = np.array([paper[i] for _, i in shown])
        ax.plot(
            values,
            y,
            "D",
            mfc="none",
            mew=1.5,
            ms=6,
            color=variant_color("lsh_paper"),
            label="paper: BERT-LSH / baseline (one run each)",
        )
        for value, yy in zip(values, y, strict=True):
            ax.annotate(
                f"{value:.3f}",
                (value, yy),
                xytext=(6, 0),
                textcoords="offset points",
                va="center",
                fontsize=7,
                color=variant_color("lsh_paper"),
            )
        for k, i in enumerate(idx):
            if i >= len(paper):
                ax.annotate(
                    "paper: not reported",
                    (0.99, k + offsets[-1]),
                    xycoords=("axes fraction", "data"),
                    ha="right",
                    va="center",
                    fontsize=7,
                    color="0.4",
                )
        xs += list(values)
        low, high = min(xs), max(xs)
        pad = 0.08 * (high - low or 0.1)
        ax.set_xlim(low - pad, high + 3 * pad)  # room for the printed values
        ax.axvline(1.0, color="0.2", lw=1.2, ls="--", zorder=1)
        ax.set_yticks(range(len(idx)), [RADAR_AXES[i][0] for i in idx], fontsize=9)
        ax.set_ylim(len(idx) - 0.5, -0.5)  # first metric on top
        ax.grid(axis="y", visible=False)
        for k in range(len(idx) - 1):
            ax.axhline(k + 0.5, color="0.85", lw=0.8)
        ax.set_xlabel("ratio to the baseline's mean (dashed: baseline = 1)")
        ax.set_title(title, fontsize=10)
    handles, labels = axes[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=len(labels), fontsize=8, frameon=False)
    fig.suptitle(
        "Pretraining metrics as ratios to the baseline (dot: mean over seeds; band: "
        "lowest to highest seed)"
    )
    fig.tight_layout(rect=(0, 0.07, 1, 1))
    return fig


def plot_plateau(records: Sequence[dict], exits: Sequence[dict], reference_step: int) -> Figure:
    """The long pretraining runs: training loss (left) and validation accuracy (right) against
    the step, with the step where the seed runs ended (the plateau level's reference) and each
    run's plateau exit (:func:`lshlib.verdict.plateau_exit`) marked."""
    style()
    fig, (loss_ax, acc_ax) = plt.subplots(1, 2, figsize=(12, 4.5))
    for record, exit_ in zip(records, exits, strict=True):
        variant = record["config"]["variant"]
        color = variant_color(variant)
        train = record["curves"]["train"]
        loss_ax.plot(
            [p["step"] for p in train], [p["loss"] for p in train], color=color, lw=1, label=variant
        )
        ev = record["curves"]["eval"]
        acc_ax.plot(
            [p["step"] for p in ev],
            [p["eval_accuracy"] for p in ev],
            color=color,
            marker="o",
            ms=3,
            label=variant,
        )
        loss_ax.axhline(exit_["plateau_loss"], color=color, ls=":", lw=0.8)
        if exit_["exit_step"] is not None:
            for ax in (loss_ax, acc_ax):
                ax.axvline(exit_["exit_step"], color=color, ls="--", lw=0.8)
    for ax in (loss_ax, acc_ax):
        ax.axvline(reference_step, color="grey", lw=0.8)
        ax.set_xlabel("optimizer step")
        ax.legend(fontsize=8)
    loss_ax.set_ylabel("training loss")
    acc_ax.set_ylabel("validation accuracy")
    loss_ax.set_title("grey: where the seed runs ended; dotted: plateau level; dashed: exit")
    acc_ax.set_title("MLM validation accuracy")
    fig.tight_layout()
    return fig


def plot_loss_vs_time(records: Sequence[dict], title: str) -> Figure:
    """Training loss against wall-clock minutes (the ``train_seconds`` stamps of the curve),
    one line per run: which reaches a given loss sooner."""
    style()
    fig, ax = plt.subplots(figsize=(8, 4.5))
    for record in records:
        variant = record["config"]["variant"]
        train = [p for p in record["curves"]["train"] if "train_seconds" in p]
        ax.plot(
            [p["train_seconds"] / 60 for p in train],
            [p["loss"] for p in train],
            color=variant_color(variant),
            lw=1.2,
            label=variant,
        )
    ax.set_xlabel("training wall-clock (min)")
    ax.set_ylabel("training loss")
    ax.set_title(title)
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig
