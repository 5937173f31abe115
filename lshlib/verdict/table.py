"""The claims table, built from records alone: one row per claim of the paper (the compute
claim, each claim measured over independent units, the locality control, the plateau claim),
then one Holm adjustment over the family (:mod:`lshlib.verdict.claims`).

:func:`build` computes every input the way notebook 06 shows it (:mod:`lshlib.verdict.comparisons`,
:mod:`lshlib.experiments.exits`, :mod:`lshlib.verdict.transfer`) and :func:`write` saves the
table to ``claims.json``; ``python -m lshlib.verdict`` calls it, and notebook 06 and the README
only read the file.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from lshlib import safeio
from lshlib.bench.attention import bench_path
from lshlib.bench.targets import target_report
from lshlib.experiments import exits
from lshlib.experiments.baselines import load_squad_test_scores
from lshlib.lsh.cost import figure_kflops_table
from lshlib.paper import RESULTS as PAPER_RESULTS
from lshlib.scales import get_scale
from lshlib.verdict import comparisons, long, transfer
from lshlib.verdict.claims import Claim, adjust, save_claims
from lshlib.verdict.planning import plan_records

__all__ = [
    "verdict_word",
    "claim_row",
    "compute_claim",
    "claims",
    "plateau_claim",
    "paper_mode_over_sdpa",
    "exit_words",
    "build",
    "write",
]


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
    key: str,
    claim: str,
    evidence: str,
    what: str,
    row: dict[str, Any],
    sign: int,
    digits: int = 4,
    paper_effect: float | None = None,
    scope: str = "",
) -> Claim:
    """One claims-table row from a :func:`lshlib.verdict.compare` row: the difference over its
    independent units with its interval and test (the verdict is set by
    :func:`lshlib.verdict.claims.adjust` from the family's adjusted p)."""
    low, high = row.get("diff_low", math.nan), row.get("diff_high", math.nan)
    units = row.get("n_compared", row["n_desc"])
    measured = (
        f"{what}: {row['diff_mean']:+.{digits}f} over {units} (95% interval "
        f"{low:+.{digits}f} to {high:+.{digits}f}; sd of {row['variant']} over its units "
        f"{row['sd']:.{digits}f})"
    )
    if "boot_low" in row:
        measured += f"; bootstrap over test examples {row['boot_low']:+.{digits}f} to "
        measured += f"{row['boot_high']:+.{digits}f}"
    return Claim(
        key,
        claim,
        evidence,
        measured,
        verdict_word(low, high, sign),
        unit=row["unit"],
        n=units,
        test=row["test"],
        p=row.get("p"),
        interval=(low, high),
        estimate=row["diff_mean"],
        sign=sign,
        paper_effect=paper_effect,
        scope=scope,
    )


def compute_claim(kflops_row: dict, paper_mode_over_sdpa: float | None) -> dict[str, str]:
    """The compute claim, from the honest operation count of the paper's setting at the paper's
    n = 10 (:func:`lshlib.lsh.cost.figure_kflops_table` row ``2-1``) and the measured wall-clock
    ratio of paper-mode attention to SDPA (the attention benchmark)."""
    ratio = kflops_row["honest_lsh_kops"] / kflops_row["honest_full_kops"]
    measured = (
        f"every operation, forward + backward, at n = 10: {kflops_row['honest_lsh_kops']:.2f} K "
        f"for LSH vs {kflops_row['honest_full_kops']:.2f} K for full attention ({ratio:.2f}x)"
    )
    slower = paper_mode_over_sdpa is not None and paper_mode_over_sdpa > 1
    if paper_mode_over_sdpa is not None:
        measured += f"; wall-clock of paper-mode attention / SDPA: {paper_mode_over_sdpa:.2f}x"
    if ratio >= 1:
        verdict = "not supported: more operations than full attention"
    elif slower:
        verdict = "partly: fewer operations counted, but slower than SDPA on the wall-clock"
    elif paper_mode_over_sdpa is None:
        verdict = "fewer operations counted; no wall-clock measured at this scale"
    else:
        verdict = "supported"
    return {
        "claim": '"significantly reduces computational demand for the self-attention layer"',
        "paper's evidence": f"hashing products only: {kflops_row['paper_kflops']:.2f} KFLOPs vs "
        f"{kflops_row['paper_full_kflops']:.1f} for QK^T (n = 10, hidden 128)",
        "our measurement": measured,
        "verdict": verdict,
    }


def claims(
    *,
    pretraining: Sequence[dict],
    generalisation: Sequence[dict],
    sst2: Sequence[dict],
    squad: Sequence[dict],
    controls: Sequence[dict],
    compute: dict[str, str],
    paper_settings: Sequence[dict] = (),
    plateau: dict | None = None,
    exploratory_plateau: Sequence[dict] = (),
    mlm_steps: int | None = None,
    transfer: dict[str, list[dict]] | None = None,
    squad_floor: dict[str, str] | None = None,
) -> list[dict[str, Any]]:
    """The claims table: the compute claim (:func:`compute_claim`), one row per claim measured
    over independent units (:func:`lshlib.verdict.compare` rows, reference ``baseline``, and
    :func:`lshlib.verdict.control_rows`), the plateau claim (:func:`lshlib.experiments.exits.claim`)
    or, before its seed pairs exist, the exploratory seed-42 long runs; then one Holm adjustment
    over the family (:mod:`lshlib.verdict.claims`). A claim whose runs are missing is left out."""
    p = PAPER_RESULTS
    mlm_gap = p["lsh"]["mlm_eval_accuracy"] - p["baseline"]["mlm_eval_accuracy"]
    sst2_gap = p["lsh"]["sst2_test_accuracy"] - p["baseline"]["sst2_test_accuracy"]
    at = f"at {mlm_steps:,} steps of pretraining" if mlm_steps else ""
    rows: list[Claim] = [
        Claim(
            "compute",
            compute["claim"],
            compute["paper's evidence"],
            compute["our measurement"],
            compute["verdict"],
        )
    ]
    specs = [
        (
            "pretraining",
            pretraining,
            "lsh_paper",
            +1,
            '"outperforming the baseline model in pretraining"',
            f"MLM accuracy {p['lsh']['mlm_eval_accuracy']} vs {p['baseline']['mlm_eval_accuracy']}"
            ", one seed",
            "MLM accuracy, lsh_paper - baseline",
            mlm_gap,
            at,
        ),
        (
            "sst2",
            sst2,
            "lsh_paper",
            +1,
            '"outperforming the baseline model in ... fine-tuning" (SST-2)',
            f"test accuracy {p['lsh']['sst2_test_accuracy']} vs "
            f"{p['baseline']['sst2_test_accuracy']} (the baseline ahead), one seed",
            "SST-2 test accuracy, lsh_paper - baseline",
            sst2_gap,
            "",
        ),
        (
            "squad",
            squad,
            "lsh_paper",
            +1,
            '"outperforming the baseline model in ... fine-tuning" (SQuAD)',
            f"best validation loss {p['lsh']['squad_best_validation_loss']} vs "
            f"{p['baseline']['squad_best_validation_loss']} (the baseline ahead), no F1",
            "SQuAD test F1 (points), lsh_paper - baseline",
            None,
            "",
        ),
        (
            "pretraining_helps",
            sst2,
            "scratch",
            -1,
            "pretraining helps fine-tuning (implied by comparing fine-tuned pretrained models)",
            "not tested in the paper",
            "SST-2 test accuracy, scratch (no pretraining) - baseline",
            None,
            "",
        ),
        (
            "pretraining_helps_paper_settings",
            paper_settings,
            "scratch",
            -1,
            "pretraining helps fine-tuning, with the paper's fine-tuning settings",
            "not tested in the paper (learning rate 2e-5, 3 epochs, batch 32)",
            "SST-2 test accuracy with the paper's settings, scratch - baseline",
            None,
            "",
        ),
    ]
    checkpoint = f" (models pretrained for {mlm_steps:,} steps)" if mlm_steps else ""
    post_exit = (transfer or {}).get("main", [])
    specs += [
        (
            "sst2_long",
            post_exit,
            "lsh_paper",
            +1,
            '"outperforming the baseline model in ... fine-tuning" (SST-2), from the plateau runs',
            f"test accuracy {p['lsh']['sst2_test_accuracy']} vs "
            f"{p['baseline']['sst2_test_accuracy']} (the baseline ahead), one seed",
            "SST-2 test accuracy from the stopped plateau runs, lsh_paper - baseline",
            sst2_gap,
            "",
        ),
        (
            "pretraining_helps_long",
            post_exit,
            "scratch",
            -1,
            "pretraining helps fine-tuning, from the plateau runs",
            "not tested in the paper",
            "SST-2 test accuracy, scratch - the baseline's stopped plateau runs",
            None,
            "",
        ),
    ]
    for key, source, variant, sign, claim, evidence, what, effect, scope in specs:
        row = next((r for r in source if r.get("variant") == variant), {})  # none: no runs
        if key == "squad" and squad_floor is not None:
            rows.append(
                Claim(key, claim, evidence, squad_floor["measurement"], squad_floor["verdict"])
            )
        elif "diff_mean" in row:
            digits = 2 if what.startswith("SQuAD") else 4  # F1 in points
            if key in ("sst2", "pretraining_helps", "pretraining_helps_paper_settings"):
                what += checkpoint
            rows.append(claim_row(key, claim, evidence, what, row, sign, digits, effect, scope))
    if generalisation:
        rows.append(
            Claim(
                "generalisation",
                '"may enhance the model\'s ability to generalize"',
                "none beyond the pretraining numbers",
                "not testable at one epoch: on a single pass every training batch is unseen when "
                "it is scored, so validation - training loss is no generalisation gap",
                "not testable at one epoch",
            )
        )
    locality = next((r for r in controls if r["control"] == "random_paper"), None)
    if locality is not None:
        rows.append(
            claim_row(
                "locality",
                "the gain comes from hashing similar queries and keys together (locality)",
                "not tested in the paper",
                "SST-2 test accuracy, random_paper - lsh_paper",
                locality,
                -1,
            )
        )
    if plateau is not None:
        row = Claim(
            "plateau",
            plateau["claim"],
            plateau["paper's evidence"],
            plateau["our measurement"],
            unit=plateau["unit"],
            n=plateau["n"],
            test=plateau["test"],
            p=plateau["p"],
            interval=tuple(plateau["interval"]),
            interval_of=plateau["interval_of"],
            estimate=plateau["estimate"],
            sign=+1,
        )
        rows.append(row)
    elif exploratory_plateau:
        old = plateau_claim(exploratory_plateau)
        rows.append(
            Claim(
                "plateau_exploratory",
                old["claim"],
                old["paper's evidence"],
                old["our measurement"],
                old["verdict"],
            )
        )
    return [c.to_dict() for c in adjust(rows)]


def plateau_claim(exits: Sequence[dict]) -> dict[str, str]:
    """The exploratory seed-42 long runs (the ones that motivated the pre-registered rule; one
    seed each, so never more than exploratory): accuracy at the end and where each run left the
    plateau by the old training-loss detector."""
    by = {e["variant"]: e for e in exits}
    base, lsh = by["baseline"], by["lsh_paper"]
    p = PAPER_RESULTS

    def said(e: dict) -> str:
        return f"{e['variant']} {e['validation_accuracy']:.4f} ({exit_words(e, 'the plateau')})"

    gap = lsh["validation_accuracy"] - base["validation_accuracy"]
    return {
        "claim": '"outperforming the baseline model in pretraining", in a long run (exploratory)',
        "paper's evidence": f"MLM accuracy {p['lsh']['mlm_eval_accuracy']} vs "
        f"{p['baseline']['mlm_eval_accuracy']}, one seed",
        "our measurement": f"MLM validation accuracy after {lsh['steps']:,} steps, one seed each: "
        + "; ".join(said(e) for e in exits),
        "verdict": f"exploratory: one seed each (lsh_paper {gap:+.4f} against the baseline); the "
        "pre-registered runs decide",
    }


def paper_mode_over_sdpa(bench: dict | None) -> float | None:
    """The attention benchmark's median ratio of paper-mode attention to SDPA (``None`` without
    a benchmark record, as at the smoke scale)."""
    if not bench:
        return None
    rows = [t for t in target_report(bench) if t["target"].startswith("paper mode (dense) / SDPA")]
    return rows[0]["measured"] if rows else None


def exit_words(e: dict, plateau: str = "it") -> str:
    """Where a :func:`lshlib.verdict.plateau_exit` result left the plateau, in words."""
    step = e["exit_step"]
    return f"never leaves {plateau}" if step is None else f"leaves {plateau} at step {step:,}"


def build(scale: str | None = None) -> tuple[list[dict[str, Any]], dict[str, list[dict]]]:
    """The claims table of ``scale`` (:func:`claims`), with every input computed from the
    records as notebook 06 shows it, and the plan's records it rests on."""
    scale = get_scale(scale)
    records = plan_records(scale)
    kflops = next(r for r in figure_kflops_table() if r["label"] == "2-1")
    bench = safeio.load_json_dict(bench_path(scale))  # none at the smoke scale
    exploratory = long.plateau_summary(scale)
    rows = claims(
        pretraining=comparisons.compare(
            records["pretraining"], "validation_accuracy", example_key="correct"
        ),
        generalisation=comparisons.compare(records["pretraining"], comparisons.generalisation_gap),
        sst2=comparisons.compare(records["sst2"], "test_accuracy", example_key="correct"),
        squad=comparisons.compare(records["squad"], "test_f1", example_key="f1"),
        controls=comparisons.control_rows(records["controls"]),
        compute=compute_claim(kflops, paper_mode_over_sdpa(bench)),
        paper_settings=comparisons.compare(records["paper_settings"], "test_accuracy"),
        plateau=exits.claim(exits.exit_rows(exits.plateau_records(scale)), scale),
        exploratory_plateau=exploratory[1] if exploratory else (),
        mlm_steps=records["pretraining"][0]["steps"] if records["pretraining"] else None,
        transfer=transfer.transfer_rows(scale),
        squad_floor=transfer.squad_claim(records["squad"], load_squad_test_scores(scale)["f1"]),
    )
    return rows, records


def write(scale: str | None = None) -> list[dict[str, Any]]:
    """Build the claims table of ``scale`` and save it to ``claims.json``
    (:func:`lshlib.verdict.claims.save_claims`); returns its rows."""
    rows, records = build(scale)
    save_claims(rows, scale, records)
    return rows
