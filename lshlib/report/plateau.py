"""Figures and sentences of the plateau runs (notebook 06, README): held-out accuracy of every
seed with arm means, the learning rate, epoch starts and exits; the Kaplan–Meier curves; the
attention diagnostics aligned on each run's exit. They read records through
:mod:`lshlib.experiments.exits`; nothing here trains or writes anything but figures."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.figure import Figure

from lshlib.experiments import survival
from lshlib.report import variant_color

__all__ = [
    "plan_sentence",
    "learning_rate_at",
    "epoch_starts",
    "plot_accuracy",
    "plot_survival",
    "plot_diagnostics",
    "rule_sentence",
    "result_sentences",
    "best_case_sentence",
]


def plan_sentence(scale: str | None = None) -> str:
    """What the plateau plan holds and how much of it is finished (``make plateau`` trains the
    rest; a notebook never starts an hour-long run)."""
    from lshlib import training
    from lshlib.experiments import plateau  # noqa: PLC0415 (report modules import light)

    jobs = plateau.seed_jobs(scale)
    first = jobs[0].pretraining
    arms: dict[str, list[int]] = {}
    done: dict[str, int] = {}
    minutes: list[float] = []
    for job in jobs:
        arms.setdefault(job.pretraining.variant, []).append(job.pretraining.seed)
        made = [training.load_record(c) for c in job.configs]
        done[job.pretraining.variant] = done.get(job.pretraining.variant, 0) + (made[0] is not None)
        if all(made):
            minutes.append(sum(r["train_seconds"] for r in made if r) / 60)
    said = "; ".join(
        f"{arm}: seeds {', '.join(map(str, seeds))} ({done[arm]} finished)"
        for arm, seeds in arms.items()
    )
    took = (
        f" A finished job (pretraining and its chained runs) took {min(minutes):.0f} to "
        f"{max(minutes):.0f} min of training on one thread."
        if minutes
        else ""
    )
    return (
        f"Plan (make plateau): MLM runs stopped at step {first.stop_at:,}, evaluated every "
        f"{first.eval_steps:,} steps, each with its chained SST-2 runs; {said}." + took
    )


def learning_rate_at(record: dict, steps: np.ndarray) -> np.ndarray:
    """The run's learning rate at ``steps``: linear warm-up over the warm-up fraction of the
    schedule, then linear decay to 0 at the schedule's end (or constant), as the Trainer's."""
    config = record["config"]
    total = record.get("stopped_early", {}).get("schedule_steps", record["steps"])
    warm = config["warmup"]
    warmup = math.ceil(warm * total) if warm < 1 else int(warm)
    peak = config["learning_rate"]
    up = peak * steps / max(1, warmup)
    if config.get("lr_schedule", "linear") == "constant":
        down = np.full_like(steps, peak, dtype=float)
    else:
        down = peak * np.clip((total - steps) / max(1, total - warmup), 0.0, None)
    return np.where(steps < warmup, up, down)


def epoch_starts(record: dict) -> list[int]:
    """Steps at which an epoch after the first starts (blocks / batch steps per epoch)."""
    per_epoch = math.ceil(record["data"]["train_blocks"] / record["config"]["batch_size"])
    return list(range(per_epoch, record["steps"] + 1, per_epoch))


def _curve(record: dict) -> tuple[np.ndarray, np.ndarray]:
    points = [p for p in record["curves"]["eval"] if "eval_accuracy" in p]
    return np.array([p["step"] for p in points]), np.array([p["eval_accuracy"] for p in points])


def plot_accuracy(records: dict[str, dict[int, dict]], rows: Sequence[dict]) -> Figure:
    """Held-out MLM accuracy against the step: every seed as a thin line, each arm's mean with
    a band of ± one standard error over seeds, exits as dots; the learning rate on a twin axis
    and epoch starts as grey lines (both from the first record: every run shares them)."""
    fig, ax = plt.subplots(figsize=(10, 5))
    exits = {(r["arm"], r["seed"]): r for r in rows}
    first = None
    for arm, by_seed in records.items():
        color = variant_color(arm)
        curves = [_curve(r) for _, r in sorted(by_seed.items())]
        for (seed, record), (steps, acc) in zip(sorted(by_seed.items()), curves, strict=True):
            first = first or record
            ax.plot(steps, acc, color=color, lw=0.7, alpha=0.45)
            row = exits.get((arm, seed))
            if row and row["exited"]:
                ax.plot(row["step"], acc[list(steps).index(row["step"])], "o", color=color, ms=5)
        length = min(len(s) for s, _ in curves)
        stack = np.stack([a[:length] for _, a in curves])
        mean = stack.mean(axis=0)
        se = stack.std(axis=0, ddof=1) / math.sqrt(len(curves)) if len(curves) > 1 else 0 * mean
        steps = curves[0][0][:length]
        ax.plot(steps, mean, color=color, lw=2.2, label=f"{arm} (mean of {len(curves)} seeds)")
        ax.fill_between(steps, mean - se, mean + se, color=color, alpha=0.18, lw=0)
    if first is not None:
        for i, start in enumerate(epoch_starts(first)):
            ax.axvline(start, color="0.6", lw=0.8, ls=":", label="epoch start" if i == 0 else None)
        grid = np.arange(0, first["steps"] + 1, max(1, first["steps"] // 400))
        lr = ax.twinx()
        lr.plot(grid, learning_rate_at(first, grid), color="0.35", lw=1, ls="--")
        lr.set_ylabel("learning rate (dashed)")
        lr.grid(False)
    ax.set_xlabel("training step")
    ax.set_ylabel("held-out MLM accuracy")
    ax.set_title(
        "Plateau runs: thin lines are seeds, bands ± 1 SE over seeds, dots are exits "
        "(pre-registered rule)",
        fontsize=10,
    )
    ax.legend(loc="upper left", fontsize=8)
    return fig


def plot_survival(curves: dict[str, list[tuple[int, float]]], horizon: int) -> Figure:
    """Kaplan–Meier curves: the share of each arm's runs still on the plateau at each step."""
    fig, ax = plt.subplots(figsize=(7, 4))
    for arm, points in curves.items():
        steps = [p[0] for p in points] + [horizon]
        values = [p[1] for p in points] + [points[-1][1]]
        ax.step(steps, values, where="post", color=variant_color(arm), lw=2, label=arm)
    ax.set_ylim(-0.03, 1.05)
    ax.set_xlim(0, horizon)
    ax.set_xlabel("training step")
    ax.set_ylabel("share of runs still on the plateau")
    ax.set_title("Kaplan–Meier: leaving the MLM plateau (censored at the stop)", fontsize=10)
    ax.legend(fontsize=8)
    return fig


DIAGNOSTIC_KEYS = (
    "entropy",
    "self_mass",
    "neighbour_mass",
    "special_mass",
    "logit_std",
    "hidden_cosine",
)


def _mean(value: Any) -> float:
    flat = np.array(
        [v for row in value for v in (row if isinstance(row, list) else [row]) if v is not None],
        dtype=float,
    )
    return float(flat.mean()) if flat.size else math.nan


def plot_diagnostics(
    records: dict[str, dict[int, dict]], rows: Sequence[dict], keys: Sequence[str] = DIAGNOSTIC_KEYS
) -> Figure:
    """Each diagnostic (averaged over layers and heads) against the step relative to the run's
    exit; a run that never exits is aligned on the exit step of the other arm's run of the same
    seed when there is one (thin grey dashes), else not drawn."""
    exit_at = {(r["arm"], r["seed"]): r["step"] for r in rows if r["exited"]}
    by_seed = {seed: step for (_, seed), step in exit_at.items()}
    cols = 3
    fig, axes = plt.subplots(math.ceil(len(keys) / cols), cols, figsize=(12, 6.5), squeeze=False)
    for arm, runs in records.items():
        for seed, record in sorted(runs.items()):
            anchor = exit_at.get((arm, seed), by_seed.get(seed))
            points = record["curves"].get("diagnostics", [])
            if anchor is None or not points:
                continue
            own = (arm, seed) in exit_at
            x = np.array([p["step"] - anchor for p in points])
            for ax, key in zip(axes.flat, keys, strict=False):
                y = [_mean(p[key]) if p.get(key) is not None else math.nan for p in points]
                ax.plot(
                    x,
                    y,
                    color=variant_color(arm),
                    lw=1.2 if own else 0.8,
                    ls="-" if own else "--",
                    alpha=0.8,
                )
    for ax, key in zip(axes.flat, keys, strict=False):
        ax.axvline(0, color="0.3", lw=0.8)
        ax.set_title(key.replace("_", " "), fontsize=10)
        ax.set_xlabel("steps from the exit")
    for ax in list(axes.flat)[len(keys) :]:
        ax.axis("off")
    handles = [plt.Line2D([], [], color=variant_color(a), label=a) for a in records]
    fig.legend(handles=handles, loc="lower center", ncol=len(handles), fontsize=8)
    fig.suptitle(
        "Attention diagnostics around the exit (solid: the run's own exit; dashed: a "
        "run that never exits, at its seed partner's exit)",
        fontsize=10,
    )
    fig.tight_layout(rect=(0, 0.05, 1, 0.96))
    return fig


def rule_sentence() -> str:
    """The pre-registered exit rule, in words, from its constants."""
    low, high = survival.LEVEL_STEPS
    return (
        f"A run's plateau level is its mean held-out MLM accuracy over the evaluations at steps "
        f"{low:,} to {high:,}; it leaves the plateau at the first evaluation after step "
        f"{survival.SCAN_AFTER:,} that is at least {survival.MARGIN} above that level and whose "
        f"next evaluation is too; otherwise it is censored at its last step (margins "
        f"{' and '.join(str(m) for m in survival.SENSITIVITY_MARGINS)} reported beside it). The "
        "rule, the primary test and the runs' seeds were committed before the first of these runs "
        "finished."
    )


def result_sentences(rows: Sequence[dict], test: dict | None, extra: dict | None) -> list[str]:
    """What the plateau runs show, claiming no more than the pre-registered test allows."""
    by_arm: dict[str, list[dict]] = {}
    for row in rows:
        by_arm.setdefault(row["arm"], []).append(row)
    out = []
    for arm, rs in by_arm.items():
        steps = sorted(r["step"] for r in rs if r["exited"])
        at = "at step" if len(steps) == 1 else "at steps"
        where = f" ({at} {', '.join(f'{s:,}' for s in steps)})" if steps else ""
        out.append(f"{arm} leaves the plateau in {len(steps)} of {len(rs)} runs{where}.")
    if test is None:
        out.append(
            "Fewer than two seed pairs of lsh_paper and the baseline are finished: no test "
            "yet, and nothing here is a finding."
        )
        return out
    out.append(
        f"Primary test (one-sided log-rank, exact permutation over {test['permutations']} "
        f"labellings of {test['n_pairs']} seed pairs): p = {test['p_exact_one_sided']:.4f} "
        f"before the claims table's multiplicity adjustment (within seed pairs: "
        f"p = {test['p_within_pairs']:.4f}). With {test['runs']} runs this test cannot give a p "
        f"below 1/{test['permutations']} = {1 / test['permutations']:.4f}, however far apart "
        "the arms are."
    )
    if extra is not None:
        d = extra["accuracy_difference"]
        interval = (
            "" if math.isnan(d["low"]) else f", 95% interval {d['low']:+.4f} to {d['high']:+.4f}"
        )
        out.append(
            f"Held-out accuracy at the stop, lsh_paper - baseline: {d['mean']:+.4f} over "
            f"{d['n']} seed pairs{interval} (descriptive)."
        )
    return out


def best_case_sentence(rows: Sequence[dict], seeds: Sequence[int], claims: Sequence[dict]) -> str:
    """What the unfinished pairs of the pre-registered ``seeds`` can still do for the primary
    test at best (:func:`lshlib.experiments.exits.best_case_test`, a projection and said to be
    one), with its Holm-adjusted p among the saved ``claims`` rows; empty when every planned pair
    is finished or there is no test."""
    from lshlib.experiments import exits  # noqa: PLC0415 (report modules import light)
    from lshlib.verdict import claims as claims_table  # noqa: PLC0415

    unfinished = exits.unfinished_pairs(rows, seeds)
    best = exits.best_case_test(rows, seeds)
    if not unfinished or best is None:
        return ""
    p = best["p_exact_one_sided"]
    p_holm = claims_table.holm_with(claims, "plateau", p)
    which = "pair" if len(unfinished) == 1 else "pairs"
    can = (
        "so no outcome of the planned runs can make this claim supported"
        if p_holm >= claims_table.ALPHA
        else "so the planned runs can still make this claim supported"
    )
    return (
        f"A projection, not a record: if the runs still missing from seed {which} "
        f"{', '.join(map(str, unfinished))} went fully {exits.TEST_ARM}'s way (an "
        f"{exits.TEST_ARM} run leaving at the first evaluation it could, a {exits.REFERENCE_ARM} "
        "run never), the primary "
        f"test over {best['n_pairs']} pairs would give p = {p:.4f} ({best['permutations']} "
        f"labellings), Holm-adjusted p = {p_holm:.3g} with the other claims as they stand "
        f"(α = {claims_table.ALPHA}); {can}."
    )
