"""Notebook 06 (the verdict): the claims table, and the paper's figures redrawn from several
seeds with bands. Inputs are the rows of :func:`lshlib.verdict.compare` and run records."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from lshlib.report import style
from lshlib.report.training import COLORS

__all__ = ["verdict_word", "claim_row", "claims_frame", "plot_seed_bands", "plot_radar"]


def verdict_word(low: float, high: float, sign: int) -> str:
    """What an interval says of a claim that the difference has sign ``sign`` (+1 or -1)."""
    if sign not in (1, -1):
        raise ValueError(f"sign must be +1 or -1, got {sign!r}")
    if math.isnan(low) or math.isnan(high):
        return "inconclusive (one seed: no interval)"
    if sign * low > 0 and sign * high > 0:
        return "supported"
    if sign * low < 0 and sign * high < 0:
        return "not supported: the opposite holds beyond the spread"
    return "inconclusive at this scale: within noise"


def claim_row(
    claim: str, evidence: str, what: str, row: dict[str, Any], sign: int, digits: int = 4
) -> dict[str, str]:
    """One claims-table row from a :func:`lshlib.verdict.compare` row (mean of the per-seed
    differences, its t interval, and the spread of the variant over seeds)."""
    low, high = row.get("diff_low", math.nan), row.get("diff_high", math.nan)
    measured = (
        f"{what}: {row['diff_mean']:+.{digits}f} over {row['n']} seeds "
        f"(95% interval {low:+.{digits}f} to {high:+.{digits}f}; seed sd of {row['variant']} "
        f"{row['sd']:.{digits}f})"
    )
    if "boot_low" in row:
        measured += f"; bootstrap over test examples {row['boot_low']:+.{digits}f} to "
        measured += f"{row['boot_high']:+.{digits}f}"
    return {"claim": claim, "paper's evidence": evidence, "our measurement": measured,
            "verdict": verdict_word(low, high, sign)}  # fmt: skip


def claims_frame(rows: Sequence[dict[str, str]]) -> pd.DataFrame:
    """The claims table, one row per claim, text left-aligned for reading."""
    frame = pd.DataFrame(list(rows))
    return frame.style.set_properties(**{"text-align": "left", "white-space": "normal"})


def _curves(records: Sequence[dict], curve: str, key: str) -> dict[str, dict[int, list]]:
    """``{variant: {step: [value per seed]}}`` of one curve of the records."""
    out: dict[str, dict[int, list]] = {}
    for r in records:
        points = out.setdefault(r["config"]["variant"], {})
        for p in r["curves"][curve]:
            if key in p:
                points.setdefault(p["step"], []).append(p[key])
    return out


def plot_seed_bands(
    records: Sequence[dict], title: str, curve: str = "train", key: str = "loss"
) -> Figure:
    """One line per variant, the mean over seeds, with a band from the lowest to the highest
    seed at each logged step (steps every seed logged)."""
    style()
    fig, ax = plt.subplots(figsize=(8, 4.5))
    seeds = {}
    for r in records:
        seeds.setdefault(r["config"]["variant"], set()).add(r["config"]["seed"])
    for variant, points in _curves(records, curve, key).items():
        n = len(seeds[variant])
        steps = sorted(s for s, v in points.items() if len(v) == n)
        values = np.array([points[s] for s in steps])
        color = COLORS.get(variant)
        ax.plot(steps, values.mean(1), color=color, lw=1.8, label=f"{variant} ({n} seeds)")
        ax.fill_between(steps, values.min(1), values.max(1), color=color, alpha=0.2, lw=0)
    ax.set_xlabel("optimizer step")
    ax.set_ylabel(key.replace("_", " "))
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
PAPER_RADAR = {
    "baseline": (0.1505, 1 / 5.495, 1 / 243.6, 1 / 5.516, 549.3, None),
    "lsh_paper": (0.1819, 1 / 5.331, 1 / 206.6, 1 / 5.406, 168.9, None),
}


def plot_radar(records: Sequence[dict]) -> Figure:
    """The paper's radar chart of six pretraining metrics, ours beside the paper's: on each axis
    values are divided by the largest mean among the variants (the better sits at 1). Thin
    lines are single seeds, thick lines the mean. The paper reports no steps/s: that axis of its
    panel is left out."""
    style()
    labels = [a for a, _ in RADAR_AXES]
    angles = np.linspace(0, 2 * np.pi, len(labels), endpoint=False)
    fig, axes = plt.subplots(1, 2, figsize=(11, 5), subplot_kw={"projection": "polar"})
    by_variant: dict[str, np.ndarray] = {}
    for r in records:
        row = np.array([f(r) for _, f in RADAR_AXES])[None]
        v = r["config"]["variant"]
        by_variant[v] = row if v not in by_variant else np.vstack([by_variant[v], row])
    top = np.max([v.mean(0) for v in by_variant.values()], axis=0)
    ours, theirs = axes
    for variant, values in by_variant.items():
        color = COLORS.get(variant)
        for seed_values in values / top:
            ours.plot(np.append(angles, angles[0]), np.append(seed_values, seed_values[0]),
                      color=color, lw=0.6, alpha=0.5)  # fmt: skip
        mean = values.mean(0) / top
        ours.plot(np.append(angles, angles[0]), np.append(mean, mean[0]), color=color, lw=2,
                  label=f"{variant} ({len(values)} seeds)")  # fmt: skip
    paper = {v: np.array(x[:5], dtype=float) for v, x in PAPER_RADAR.items()}
    paper_top = np.max(list(paper.values()), axis=0)
    for variant, values in paper.items():
        ratio = values / paper_top
        theirs.plot(np.append(angles[:5], angles[0]), np.append(ratio, ratio[0]),
                    color=COLORS[variant], lw=2, label=variant)  # fmt: skip
    for ax, title in ((ours, "ours"), (theirs, "paper (one seed; no steps/s reported)")):
        ax.set_xticks(angles, labels, fontsize=8)
        ax.set_ylim(0, 1.05)
        ax.set_title(title)
        ax.legend(fontsize=7, loc="lower left", bbox_to_anchor=(-0.15, -0.15))
    fig.tight_layout()
    return fig
