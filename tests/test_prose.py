"""No sentence claims a finding from one seed: the sentence generators of
:mod:`lshlib.report.verdict` and :mod:`lshlib.report.training`, fed one seed per variant, either
hedge ("one seed", "a hint", "exploratory") or make no finding; and no markdown cell that speaks
of one seed (or seed 42) draws a finding from it without a hedge. The checkers are tested on
deliberately bad sentences first."""

from __future__ import annotations

import json
import math
import re
from pathlib import Path

import pytest

from lshlib import verdict
from lshlib.report import training as report_training
from lshlib.report import verdict as rv

NOTEBOOKS = sorted((Path(__file__).resolve().parents[1] / "notebooks").glob("*.ipynb"))

# Words that state a finding (what the data show), whatever its direction.
FINDING_WORDS = (
    "does not hold",
    "supported",
    "shows that",
    "show that",
    "the explanation holds",
    "beyond the spread",
    "beyond test-set noise",
    "beyond the test-set noise",
    "not reproduced",
    "adds nothing",
    "costs accuracy",
    "do not support",
    "does not support",
    "rules out",
    "no variant leads",
)
# What makes a generated sentence honest about resting on one seed.
HEDGES = ("one seed", "a hint", "exploratory")
# Prose that names one seed is hedged only by saying what that is worth (naming it is not enough:
# "one seed is a hint ... the explanation does not hold" is a sentence that contradicts itself).
ONE_SEED = ("seed 42", "one seed", "single seed", "one run each", "one run per")
MARKDOWN_HEDGES = ("a hint", "exploratory", "not a finding", "suggest", "not settled")


def sentences(text: str) -> list[str]:
    """``text`` cut into sentences (and lines, bullets), whitespace collapsed, lower case."""
    flat = text.replace("\r", "")
    parts = re.split(r"(?<=[.!?:])\s+(?=[A-Z`*(\"])|\n\s*[*-]\s+|\n\s*\n|\n(?=[-*] )", flat)
    cut = (re.sub(r"^[*\-\s]+", "", p) for p in parts)  # no bullet or bold marks in front
    return [" ".join(p.lower().split()) for p in cut if p.strip()]


def findings(sentence: str) -> list[str]:
    return [w for w in FINDING_WORDS if w in sentence]


def unhedged(text: str, hedges: tuple[str, ...] = HEDGES) -> list[str]:
    """The sentences of ``text`` that state a finding without any of ``hedges``."""
    return [s for s in sentences(text) if findings(s) and not any(h in s for h in hedges)]


def one_seed_claims(markdown: str) -> list[str]:
    """In prose that speaks of one seed, the sentences that state a finding unhedged."""
    if not any(t in " ".join(markdown.lower().split()) for t in ONE_SEED):
        return []
    return unhedged(markdown, MARKDOWN_HEDGES)


# --------------------------------------------------------------------------- the checkers


def test_the_checker_catches_a_finding_from_one_seed():
    assert unhedged("lsh_paper - baseline: +0.0200 over 1 runs: above 0 beyond the spread.")
    assert unhedged("Fixed hashes leave it too: the explanation does not hold.")
    assert unhedged("First line.\nThe redrawn-hash explanation is supported. Next.")
    assert not unhedged("Fixed hashes leave it too: the explanation does not hold (one seed).")
    assert not unhedged("Beyond the spread, as a hint, not a finding.")
    assert not unhedged("lsh_paper - baseline: +0.0200 (no interval): has no interval.")
    # prose: naming the one seed is not a hedge; saying what it is worth is
    bad = "Seed 42 gives a hint. Fixed hashes leave it too, so the explanation does not hold."
    assert one_seed_claims(bad) == ["fixed hashes leave it too, so the explanation does not hold."]
    lead_in = "Reading them (one seed per variant):\n\n* **Gap.** The lead is not reproduced here."
    assert one_seed_claims(lead_in)
    assert not one_seed_claims("In seed 42 lsh_paper left first: a hint, not a finding.")
    assert not one_seed_claims("Over five seeds the claim is supported.")  # no one-seed context


def test_sentences_do_not_cut_inside_numbers_or_names():
    parts = sentences("Accuracy 0.1287 (lsh_paper). The gap: -0.0004; within noise.\n* next")
    assert parts == ["accuracy 0.1287 (lsh_paper).", "the gap: -0.0004; within noise.", "next"]


# --------------------------------------------------------------------------- generated sentences


def _one_seed_mlm(**accuracies: float) -> list[dict]:
    return [
        {"config": {"variant": v, "seed": 42, "task": "mlm"}, "final": {"validation_accuracy": a}}
        for v, a in accuracies.items()
    ]


def _exits(base, lsh, *fixed):
    variants = ("baseline", "lsh_paper", "lsh_paper_fixed")
    steps = (base, lsh, *fixed)
    return [
        {"variant": v, "exit_step": s, "steps": 25_700, "validation_accuracy": a}
        for v, s, a in zip(variants, steps, (0.13, 0.22, 0.19), strict=False)
    ]


@pytest.mark.parametrize(
    "steps",
    [
        (None, None),
        (7000, None),
        (7000, 7000),
        (9000, 7000),
        (None, 7000, None),
        (None, 7000, 8000),
        (9000, 7000, 8000),
    ],
)
def test_every_plateau_conclusion_hedges_its_one_seed(steps):
    text = rv.plateau_conclusion(_exits(*steps))
    assert not unhedged(text), text
    assert "one seed" in text  # the conclusion always says it rests on one seed each


def test_difference_and_settings_sentences_of_one_seed_make_no_finding():
    big_gap = _one_seed_mlm(baseline=0.10, lsh_paper=0.30, lsh_masked=0.02)
    rows = verdict.compare(big_gap, "validation_accuracy")
    text = rv.difference_sentences(rows, "MLM validation accuracy")
    assert len(text.splitlines()) == 2 and not unhedged(text), text
    assert "one seed" in text
    ours = verdict.compare(
        [
            {
                "config": {"variant": v, "seed": 42, "task": "sst2", "pretrained": None},
                "final": {"test_accuracy": a},
            }
            for v, a in (("baseline", 0.8), ("scratch", 0.5))
        ],
        "test_accuracy",
    )
    text = rv.settings_lines(ours, ours)
    assert not unhedged(text) and "one seed: no spread" in text and "nan" not in text
    assert rv.verdict_word(math.nan, math.nan, +1) == "inconclusive (one seed: no interval)"


def test_isolation_and_long_sequence_conclusions_of_one_seed_hedge():
    summary = {"variant": "lsh_masked", "no_collision": 0.12, "no_collision_random": 0.001}
    records = [
        {
            "config": {"variant": v, "seed": 42, "task": "sst2", "pretrained": None},
            "final": {"test_accuracy": a},
        }
        for v, a in (("lsh_masked", 0.70), ("random_masked", 0.85))
    ]
    row = verdict.row(verdict.compare(records, "test_accuracy", "lsh_masked"), "random_masked")
    text = rv.isolation_conclusion(row, summary, {"diff_mean": -0.2})
    assert not unhedged(text) and "nan" not in text, text
    assert "one seed" in text

    def long(variant, losses, seconds):
        train = [
            {"step": 100 * (i + 1), "loss": v, "train_seconds": seconds * (i + 1)}
            for i, v in enumerate(losses)
        ]
        return {
            "config": {"variant": variant},
            "curves": {"train": train},
            "steps": 100 * len(losses),
            "train_seconds": seconds * len(losses),
            "tokens_per_second": 1000.0 if variant == "baseline" else 3000.0,
        }

    runs = [
        long("baseline", [7.0] + [6.0] * 8, 40.0),
        long("lsh_bucketed", [7.0] + [5.0] * 8, 20.0),
    ]
    text = rv.long_sequence_conclusion(runs)
    assert not unhedged(text) and "one seed" in text, text


def test_notebook_findings_of_one_seed_hedge():
    mlm = {
        v: {
            "final": {"validation_accuracy": a},
            "steps": 100,
            "tokens_seen": 204_800,
            "train_seconds": 60.0,
            "tokens_per_second": 100.0,
        }
        for v, a in (("baseline", 0.13), ("lsh_paper", 0.20), ("lsh_masked", 0.05))
    }
    floor = {"token": ",", "hits": 186, "positions": 4741, "accuracy": 186 / 4741}
    text = report_training.findings_pretraining(mlm, floor)
    assert "beyond test-set noise" in text and not unhedged(text), text
    sst2 = {
        v: {"final": {"test_accuracy": a}}
        for v, a in (("baseline", 0.80), ("lsh_paper", 0.60), ("scratch", 0.50))
    }
    text = report_training.findings_finetuning(sst2, "sst2", 872, (0.51, "the majority class"))
    assert "beyond test-set noise" in text and not unhedged(text), text
    squad = {
        v: {"final": {"test_f1": f, "test_exact_match": f / 2}}
        for v, f in (("baseline", 30.0), ("lsh_paper", 5.0), ("scratch", 10.0))
    }
    text = report_training.findings_finetuning(squad, "squad", 800, (6.2, "the lexical baseline"))
    assert not unhedged(text), text
    line = report_training.gap_line(sst2, "test_accuracy", "baseline", "scratch", 872)
    assert not unhedged(line), line


# --------------------------------------------------------------------------- notebook prose


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=lambda p: p.name)
def test_no_markdown_cell_draws_a_finding_from_one_seed(notebook):
    cells = json.loads(notebook.read_text())["cells"]
    bad = {
        cell.get("id"): claims
        for cell in cells
        if cell["cell_type"] == "markdown" and (claims := one_seed_claims("".join(cell["source"])))
    }
    assert not bad, f"{notebook.name}: findings from one seed without a hedge: {bad}"
