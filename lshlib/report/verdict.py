"""Notebook 06 (the verdict): the claims table, and the paper's figures redrawn from several
seeds with bands. Inputs are the rows of :func:`lshlib.verdict.compare` and run records."""

from __future__ import annotations

import math
from collections.abc import Sequence

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from lshlib import verdict
from lshlib.paper import RESULTS as PAPER_RESULTS
from lshlib.report import style, variant_color
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


def difference_sentences(
    rows: Sequence[dict], what: str, reference: str = "baseline", digits: int = 4
) -> str:
    """One sentence per compared variant of :func:`lshlib.verdict.compare` rows: the mean of
    the per-seed differences from ``reference``, its interval, and what the interval says."""
    out = []
    for row in rows:
        if "diff_mean" not in row:
            continue
        name = row.get("control", row["variant"])
        against = row.get("against", reference)
        units = row.get("n_desc", f"{row['n']} seeds")
        low, high = row["diff_low"], row["diff_high"]
        interval = (
            "no interval"
            if math.isnan(low) or math.isnan(high)
            else f"95% interval {low:+.{digits}f} to {high:+.{digits}f}"
        )
        line = (
            f"{name} - {against}, {what}: {row['diff_mean']:+.{digits}f} over {units} ({interval})"
        )
        if "boot_low" in row:
            line += (
                f", bootstrap over test examples {row['boot_low']:+.{digits}f} to "
                f"{row['boot_high']:+.{digits}f}"
            )
        out.append(f"{line}: {row['seeds_say'].replace('the difference is ', '')}.")
    return "\n".join(out)


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


def _spread(row: dict) -> str:
    """A :func:`lshlib.verdict.compare` row's spread over its units, in words."""
    if row["n"] < 2 or math.isnan(row["sd"]):
        return "one seed: no spread"
    return f"sd {row['sd']:.4f} over {row.get('n_desc') or str(row['n']) + ' seeds'}"


def settings_lines(paper_rows: Sequence[dict], our_rows: Sequence[dict]) -> str:
    """Each variant's SST-2 accuracy with the paper's fine-tuning settings beside ours, each
    with its spread over units (or "one seed: no spread")."""
    ours = {r["variant"]: r for r in our_rows}
    return "\n".join(
        f"{r['variant']}: {r['mean']:.4f} ({_spread(r)}) with the paper's settings, "
        f"{ours[r['variant']]['mean']:.4f} ({_spread(ours[r['variant']])}) with ours"
        for r in paper_rows
        if r["variant"] in ours
    )


def isolation_sentence(summary: dict) -> str:
    """The share of queries a model's hashing leaves alone, and what a random mask of the same
    density would leave (a :func:`lshlib.verdict.locality_summary` row)."""
    return (
        f"{summary['variant']}: {100 * summary['no_collision']:.1f}% of queries collide with no "
        f"key (mean over layers and heads); a random mask of the same density would leave "
        f"{100 * summary['no_collision_random']:.2f}% alone."
    )


def plateau_lines(exits: Sequence[dict]) -> str:
    """One line per :func:`lshlib.verdict.plateau_exit` result."""
    lines = []
    for e in exits:
        lines.append(
            f"{e['variant']}: plateau loss {e['plateau_loss']:.3f}; {exit_words(e)} (smoothed "
            f"loss {e['drop']:g} nats below that level) in {e['steps']:,} steps "
            f"({e['train_minutes']:.0f} min); validation accuracy "
            f"{e['validation_accuracy']:.4f} at the end"
        )
    return "\n".join(lines)


def long_sequence_lines(records: Sequence[dict]) -> str:
    """Throughput of each long-sequence run and the wall-clock each needed to reach the loss
    that every run reached (the highest of their final smoothed losses)."""
    level = max(verdict.final_smoothed_loss(r) for r in records)
    lines = []
    for r in records:
        t = verdict.time_to_loss(r, level)
        lines.append(
            f"{r['config']['variant']}: {r['steps']:,} steps in {r['train_seconds'] / 60:.1f} "
            f"min ({r['tokens_per_second']:,.0f} tokens/s); reached training loss {level:.3f} "
            + ("never" if t is None else f"after {t / 60:.1f} min")
        )
    return "\n".join(lines)


def plateau_conclusion(
    exits: Sequence[dict], test: str = "lsh_paper", control: str = "lsh_paper_fixed"
) -> str:
    """What the plateau runs say of the idea that hashes redrawn at every call move ``test``
    along the plateau faster than the baseline; ``control`` (the same attention with hashes
    drawn once) decides it where it has run. One seed each: a hint at most."""
    by = {e["variant"]: e for e in exits}
    base, lsh = by["baseline"]["exit_step"], by[test]["exit_step"]
    steps = max(e["steps"] for e in exits)
    if base is None and lsh is None:
        return (
            f"Neither the baseline nor {test} leaves the plateau in {steps:,} steps: at this "
            f"budget nothing shows that {test}'s redrawn hashes move it along the plateau faster "
            "(one seed each: a hint, not a finding)."
        )
    if not (base is None or (lsh is not None and lsh < base)):
        other = f"{test} never does" if lsh is None else f"{test} at step {lsh:,}"
        return (
            f"The baseline leaves the plateau first or together (step {base:,}; {other}): "
            "no support for the redrawn-hash explanation (one seed each)."
        )
    other = "the baseline never does" if base is None else f"the baseline at step {base:,}"
    head = f"{test} leaves the plateau first (step {lsh:,}; {other}). "
    if control not in by:
        return head + (
            f"Whether its redrawn hashes are why needs {control} (hashes drawn once), "
            "not run yet; one seed each."
        )
    fixed = by[control]["exit_step"]
    if fixed is None:
        return head + (
            f"{control}, the same attention with hashes drawn once, never leaves it: the exit "
            "goes with the redrawn hashes, as the explanation says (one seed each: a hint, not "
            "a finding)."
        )
    acc = {v: by[v]["validation_accuracy"] for v in ("baseline", test, control)}
    return head + (
        f"{control}, the same attention with hashes drawn once, leaves it too (step "
        f"{fixed:,}): in this one seed the redrawn hashes were not needed for the exit, a hint "
        f"against the explanation, not a finding (the pre-registered runs test it over seeds). "
        f"After {steps:,} steps the validation "
        f"accuracy is {acc[control]:.4f} with fixed hashes, {acc[test]:.4f} with redrawn ones "
        f"and {acc['baseline']:.4f} for the baseline (one seed each: whether redrawing helps "
        "after the exit is not settled)."
    )


def long_sequence_conclusion(records: Sequence[dict], fast: str = "lsh_bucketed") -> str:
    """The long-sequence answer in one sentence: the throughput ratio of ``fast`` to the
    baseline, the wall-clock ratio to the loss both reached, and each final smoothed loss at
    the same token budget."""
    by = {r["config"]["variant"]: r for r in records}
    base, lsh = by["baseline"], by[fast]
    level = max(verdict.final_smoothed_loss(r) for r in (base, lsh))
    t_base, t_lsh = verdict.time_to_loss(base, level), verdict.time_to_loss(lsh, level)
    speed = lsh["tokens_per_second"] / base["tokens_per_second"]
    sooner = (
        f"reaches training loss {level:.3f} {t_base / t_lsh:.2f}x sooner on the wall-clock"
        if t_base and t_lsh
        else f"does not reach the common training loss {level:.3f} in both runs"
    )
    return (
        f"{fast} trains {speed:.2f}x as many tokens per second as the baseline and {sooner}; "
        f"after the same {base['steps']:,} steps its smoothed training loss is "
        f"{verdict.final_smoothed_loss(lsh):.3f} against the baseline's "
        f"{verdict.final_smoothed_loss(base):.3f} (one seed each)."
    )


def isolation_conclusion(
    random_vs_lsh: dict, masked_summary: dict, masked_vs_paper: dict | None = None
) -> str:
    """What the random-mask control says of the isolated-queries explanation of ``lsh_masked``'s
    loss: ``random_vs_lsh`` is the :func:`lshlib.verdict.compare` row of ``random_masked``
    against ``lsh_masked``; ``masked_summary`` the locality summary row of ``lsh_masked``;
    ``masked_vs_paper`` (optional) the row of ``lsh_masked`` against ``lsh_paper`` from the same
    checkpoint, to say how much of that gap the random mask closes."""
    alone, alone_random = masked_summary["no_collision"], masked_summary["no_collision_random"]
    low, high = random_vs_lsh["diff_low"], random_vs_lsh["diff_high"]
    fewer = alone_random < alone
    one_seed = math.isnan(low) or math.isnan(high)
    interval = "one seed: no interval" if one_seed else f"95% interval {low:+.4f} to {high:+.4f}"
    head = (
        f"The random mask leaves {100 * alone_random:.2f}% of queries alone where LSH leaves "
        f"{100 * alone:.1f}%, and scores {random_vs_lsh['diff_mean']:+.4f} against lsh_masked "
        f"({interval}): "
    )
    if one_seed:
        return head + "no conclusion from one seed (a hint at most)."
    if low <= 0 <= high:
        return head + "within noise: these runs do not support the explanation."
    if not (fewer and low > 0):
        return head + "the difference goes against the explanation."
    text = head + (
        "fewer isolated queries go with higher accuracy, beyond the spread: consistent "
        "with the explanation (the random mask also differs in locality)."
    )
    if masked_vs_paper is not None and masked_vs_paper["diff_mean"] < 0:
        gap = -masked_vs_paper["diff_mean"]
        share = random_vs_lsh["diff_mean"] / gap
        text += f" It closes {100 * share:.0f}% of lsh_masked's {gap:.4f} gap to lsh_paper: " + (
            "isolated queries explain part of the loss, not all of it; the rest goes with "
            "excluding the non-colliding keys at all (paper mode still weights them at "
            "score 0)."
            if share < 0.75
            else "isolated queries account for most of it."
        )
    return text
