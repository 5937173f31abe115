"""Reading the plateau records: each run's exit by the pre-registered rule, the arms' survival, the
primary test and the claim it supports, from records alone (no model is ever reloaded).

The rule and the statistics are :mod:`lshlib.experiments.survival`'s (pre-registered); the runs are
:mod:`lshlib.experiments.plateau`'s. Runs of one seed share initial weights, data order and MLM
masks, so arms pair by seed. The primary test, one member of the claims table's multiplicity family,
is the one-sided log-rank test of ``lsh_paper`` against the baseline with its p-value from the exact
permutation within seed pairs; Fisher's exact test on "exited by the horizon" and the paired t
interval of held-out accuracy at the stop are descriptive. The exploratory seed-42 runs (the
ones that motivated the rule) are read apart, never pooled with these.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from lshlib import training
from lshlib.experiments import plateau, stats, survival
from lshlib.paper import RESULTS as PAPER_RESULTS
from lshlib.scales import get_scale, sizes

__all__ = [
    "MAIN_ARMS",
    "TEST_ARM",
    "REFERENCE_ARM",
    "best_case_test",
    "planned_pairs",
    "unfinished_pairs",
    "plateau_records",
    "scaled_rule",
    "run_exit",
    "exit_rows",
    "km_curves",
    "primary_test",
    "descriptive",
    "claim",
]

MAIN_ARMS = ("baseline", "lsh_paper", "lsh_paper_fixed")
TEST_ARM, REFERENCE_ARM = "lsh_paper", "baseline"


def plateau_records(scale: str | None = None) -> dict[str, dict[int, dict]]:
    """``{arm: {seed: record}}`` of the finished plateau runs of the main arms."""
    out: dict[str, dict[int, dict]] = {}
    for job in plateau.seed_jobs(scale):
        record = training.load_record(job.pretraining)
        if record is not None:
            out.setdefault(job.pretraining.variant, {})[job.pretraining.seed] = record
    return out


def scaled_rule(record: dict) -> float:
    """How much the rule's steps (written for the laptop scale's stop at
    :data:`lshlib.experiments.survival.HORIZON`) shrink for a run stopped earlier (smoke: plumbing
    only)."""
    stop = record["config"].get("stop_at") or record["steps"]
    return min(1.0, stop / survival.HORIZON)


def _curve(record: dict) -> list[dict]:
    """The held-out accuracy curve on the rule's step axis (steps scaled as
    :func:`scaled_rule`)."""
    factor = scaled_rule(record)
    return [
        {**p, "step": round(p["step"] / factor)} for p in record["curves"]["eval"] if "step" in p
    ]


def run_exit(record: dict, margin: float = survival.MARGIN) -> survival.Exit:
    """A run's exit by the pre-registered rule (its step back on the run's own axis)."""
    found = survival.exit_step(_curve(record), margin)
    step = round(found.step * scaled_rule(record))
    return survival.Exit(
        found.exited, step, found.level, found.margin, found.threshold, found.accuracy_at_exit
    )


def _reference_step(scale: str) -> int:
    """Where the one-epoch seed runs ended (the old training-loss detector's reference)."""
    mlm = sizes("training/mlm", scale)
    return -(-int(mlm["max_train"]) // int(mlm["batch_size"]))


def exit_rows(records: dict[str, dict[int, dict]]) -> list[dict[str, Any]]:
    """One row per run: arm, seed, the rule's exit (step, exited), its sensitivity to the
    margin, the secondary training-loss detector and held-out accuracy at the stop."""
    rows = []
    for arm, by_seed in records.items():
        for seed, record in sorted(by_seed.items()):
            main = run_exit(record)
            row = {
                "arm": arm,
                "seed": seed,
                "exited": main.exited,
                "step": main.step,
                "level": main.level,
                "threshold": main.threshold,
                "accuracy": record["final"]["validation_accuracy"],
                "stop": record["steps"],
            }
            for margin in survival.SENSITIVITY_MARGINS:
                other = run_exit(record, margin)
                row[f"step_at_{margin}"] = other.step if other.exited else None
            scale = record["config"]["scale"]
            try:
                loss = survival.train_loss_exit(record["curves"]["train"], _reference_step(scale))
                row["train_loss_step"] = loss.step if loss.exited else None
            except ValueError:
                row["train_loss_step"] = None
            rows.append(row)
    return rows


def km_curves(rows: Sequence[dict]) -> dict[str, list[tuple[int, float]]]:
    """Kaplan–Meier curve of each arm (time = exit or censoring step)."""
    arms: dict[str, list[dict]] = {}
    for row in rows:
        arms.setdefault(row["arm"], []).append(row)
    return {
        arm: survival.kaplan_meier([r["step"] for r in rs], [r["exited"] for r in rs])
        for arm, rs in arms.items()
    }


def _paired(rows: Sequence[dict], test: str, reference: str) -> list[tuple[dict, dict]]:
    by = {(r["arm"], r["seed"]): r for r in rows}
    seeds = sorted({s for a, s in by if a == test} & {s for a, s in by if a == reference})
    return [(by[(test, s)], by[(reference, s)]) for s in seeds]


def primary_test(
    rows: Sequence[dict], test: str = TEST_ARM, reference: str = REFERENCE_ARM
) -> dict[str, Any] | None:
    """The one-sided log-rank test of ``test`` against ``reference`` (``test`` exits sooner),
    p by exact permutation of the arm labels over the runs of the seeds both arms have
    (:func:`lshlib.experiments.survival.logrank_permutation`), with the within-pair permutation p
    beside it (``p_within_pairs``); ``None`` with fewer than 2 pairs."""
    pairs = _paired(rows, test, reference)
    if len(pairs) < 2:
        return None
    result = survival.logrank_permutation(
        [a["step"] for a, _ in pairs],
        [a["exited"] for a, _ in pairs],
        [b["step"] for _, b in pairs],
        [b["exited"] for _, b in pairs],
    )
    within = survival.paired_logrank_permutation(
        [((a["step"], a["exited"]), (b["step"], b["exited"])) for a, b in pairs]
    )
    return {
        **result,
        "p_within_pairs": within["p_exact_one_sided"],
        "n_pairs": len(pairs),
        "seeds": [a["seed"] for a, _ in pairs],
    }


def unfinished_pairs(rows: Sequence[dict], seeds: Sequence[int]) -> list[int]:
    """The seeds of ``seeds`` whose pair of the test and reference arms misses a run."""
    done = {(r["arm"], r["seed"]) for r in rows}
    return [s for s in seeds if (TEST_ARM, s) not in done or (REFERENCE_ARM, s) not in done]


def planned_pairs(scale: str | None = None) -> tuple[int, ...]:
    """The seeds the plateau plan of ``scale`` gives both the test arm and the reference arm: its
    pre-registered seed pairs."""
    seeds = sizes("plateau", scale)["seeds"]
    return tuple(sorted(set(seeds.get(TEST_ARM, ())) & set(seeds.get(REFERENCE_ARM, ()))))


def best_case_test(
    rows: Sequence[dict],
    seeds: Sequence[int],
    test: str = TEST_ARM,
    reference: str = REFERENCE_ARM,
) -> dict[str, Any] | None:
    """A projection, never a record: :func:`primary_test` as it would read if every run of
    ``seeds`` not finished yet went fully the claim's way (a ``test`` run exits before any
    evaluation could, a ``reference`` run is censored at the stop), the finished run of a
    half-finished pair as recorded. Its p is the smallest the planned runs can still give; ``None``
    when fewer than 2 pairs would exist."""
    done = {(r["arm"], r["seed"]) for r in rows}
    stop = max((r["stop"] for r in rows), default=0)
    best = [
        {"arm": arm, "seed": seed, "exited": arm == test, "step": step}
        for seed in seeds
        for arm, step in ((test, survival.SCAN_AFTER + 1), (reference, stop))
        if (arm, seed) not in done
    ]
    return primary_test([*rows, *best], test, reference)


def descriptive(
    rows: Sequence[dict], test: str = TEST_ARM, reference: str = REFERENCE_ARM
) -> dict[str, Any] | None:
    """Fisher's exact test on "exited by the stop" and the paired t interval of held-out
    accuracy at the stop (``test - reference``), over the seeds both arms have."""
    pairs = _paired(rows, test, reference)
    if not pairs:
        return None
    n = len(pairs)
    fisher = survival.fisher_exited(
        sum(a["exited"] for a, _ in pairs), n, sum(b["exited"] for _, b in pairs), n
    )
    diff = stats.paired_seed_difference(
        {a["seed"]: a["accuracy"] for a, _ in pairs}, {b["seed"]: b["accuracy"] for _, b in pairs}
    )
    return {"fisher": fisher, "accuracy_difference": diff, "pairs": n}


def claim(rows: Sequence[dict], scale: str | None = None) -> dict[str, Any] | None:
    """The claims-table row of the long-run pretraining claim: its unit (the pretraining run),
    n, the primary test and its p (before the family's adjustment, which the claims table adds),
    the descriptive numbers; ``None`` before two seed pairs are finished."""
    test = primary_test(rows)
    if test is None:
        return None
    extra = descriptive(rows)
    assert extra is not None
    by_arm: dict[str, list[dict]] = {}
    for row in rows:
        by_arm.setdefault(row["arm"], []).append(row)
    stop = max(r["stop"] for r in rows)

    def arm_words(arm: str) -> str:
        rs = by_arm.get(arm, [])
        k = sum(r["exited"] for r in rs)
        return f"{arm} exits in {k} of {len(rs)} runs"

    diff = extra["accuracy_difference"]
    paper = PAPER_RESULTS
    interval = (
        "no interval (one pair)"
        if math.isnan(diff["low"])
        else f"95% interval {diff['low']:+.4f} to {diff['high']:+.4f}"
    )
    return {
        "claim": '"outperforming the baseline model in pretraining", on the plateau schedule',
        "paper's evidence": f"MLM accuracy {paper['lsh']['mlm_eval_accuracy']} vs "
        f"{paper['baseline']['mlm_eval_accuracy']}, one seed",
        "our measurement": f"held-out MLM accuracy leaves its plateau (pre-registered rule, "
        f"stopped at step {stop:,}): "
        + "; ".join(arm_words(a) for a in MAIN_ARMS if a in by_arm)
        + f"; accuracy at the stop, lsh_paper - baseline {diff['mean']:+.4f} ({interval})",
        "unit": "pretraining run",
        "n": f"{test['n_pairs']} seed pairs",
        "test": "one-sided log-rank, lsh_paper exits sooner than the baseline; p exact by "
        f"permutation of arm labels ({test['permutations']} labellings; within seed pairs: "
        f"p = {test['p_within_pairs']:.3f})",
        "p": test["p_exact_one_sided"],
        "interval": [diff["low"], diff["high"]],
        "interval_of": "lsh_paper's accuracy at the stop minus the baseline's",  # test: exit steps
        "estimate": test["z"],  # > 0: lsh_paper exits sooner (the claim's direction)
        "scale": get_scale(scale),
    }
