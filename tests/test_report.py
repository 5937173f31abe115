"""Text tables and summaries a notebook prints: each says what its numbers say."""

from __future__ import annotations

import math

import pandas as pd
import pytest

from lshlib.report import training as report_training
from lshlib.report import verdict as rv
from lshlib.verdict.claims import Claim, verdict_words


def _records(**accuracies: float) -> dict[str, dict]:
    return {
        v: {
            "final": {"test_accuracy": a, "test_loss": 0.5, "validation_loss_best": 0.4},
            "train_seconds": 10.0,
            "tokens_per_second": 100.0,
            "steps": 5,
            "train_samples_per_second": 8.0,
            "device": {"type": "cpu"},
        }
        for v, a in accuracies.items()
    }


def test_gap_line_says_within_noise_when_the_interval_covers_zero():
    line = report_training.gap_line(
        _records(baseline=0.7339, lsh_paper=0.7179), "test_accuracy", "baseline", "lsh_paper", 872
    )
    assert line.startswith("test_accuracy, baseline - lsh_paper: +0.0160 (95% interval +-0.04")
    assert line.endswith("within noise")
    wide = report_training.gap_line(
        _records(baseline=0.80, lsh_masked=0.55), "test_accuracy", "baseline", "lsh_masked", 872
    )
    assert wide.endswith("beyond the test-set noise of one seed")


def test_comparison_table_sets_ours_beside_the_papers():
    table = report_training.comparison_table(_records(baseline=0.7, lsh_paper=0.6), "sst2")
    assert isinstance(table, pd.DataFrame)
    assert table.loc["baseline", "test accuracy"] == 0.7
    assert table.loc["lsh_paper", "test accuracy (paper)"] == 0.7603
    assert "lsh_paper: test accuracy 0.6 (paper 0.7603)" in report_training.summarize(
        _records(baseline=0.7, lsh_paper=0.6), "sst2"
    )


def _mlm_records(**accuracies: float) -> dict[str, dict]:
    return {
        v: {
            "final": {"validation_accuracy": a},
            "steps": 100,
            "tokens_seen": 204_800,
            "train_seconds": 60.0,
            "tokens_per_second": 3413.0 if v == "baseline" else 1706.5,
            "curves": {
                "eval": [{"step": 50, "eval_accuracy": a / 2}, {"step": 100, "eval_accuracy": a}]
            },
        }
        for v, a in accuracies.items()
    }


FLOOR = {"token": ",", "hits": 186, "positions": 4741, "accuracy": 186 / 4741}


def test_pretraining_findings_state_floor_paper_goal_and_gaps():
    text = report_training.findings_pretraining(
        _mlm_records(baseline=0.129, lsh_paper=0.131, lsh_masked=0.09), FLOOR
    )
    assert "After 100 optimizer steps (0.2M tokens, 1.0 min)" in text
    assert "3.3x the unigram floor of 0.0392 (always ',': 186 of 4,741" in text
    assert "0.0215 below where the paper's baseline ended (0.1505)" in text
    assert "misses the goal of 0.15 by 0.021" in text
    assert "lsh_paper - baseline: +0.002 (95% interval ±0.0135; within noise)" in text
    assert "lsh_masked - baseline: -0.039 (95% interval ±0.0125; beyond test-set noise)" in text
    assert "lsh_paper 1,706 tokens/s (0.50x baseline)" in text
    met = report_training.findings_pretraining(_mlm_records(baseline=0.16), FLOOR)
    assert "meets the goal of 0.15" in met


def test_finetuning_findings_compare_with_scratch_baseline_and_the_papers_own_gap():
    records = _records(baseline=0.80, lsh_paper=0.79, scratch=0.81)
    text = report_training.findings_finetuning(records, "sst2", 872, (0.5092, "the majority"))
    assert "test accuracy is 0.8; it misses the goal of 0.82 by 0.02, against 0.5092" in text
    assert "minus scratch: baseline - scratch: -0.01" in text
    assert "minus baseline: lsh_paper - baseline: -0.01" in text
    assert "scratch - baseline" not in text  # said once, as baseline - scratch
    assert "baseline - BERT-LSH = +0.0069, has a 95% interval of ±0.0399" in text
    assert "within the noise of one run each" in text
    squad = {
        v: {"final": {"test_f1": f, "test_exact_match": f / 3}}
        for v, f in (("baseline", 21.0), ("scratch", 10.0))
    }
    text = report_training.findings_finetuning(squad, "squad", 800, (6.2, "the lexical baseline"))
    assert "test F1 is 21%; it meets the goal of 20" in text
    assert "exact match (points) minus scratch: baseline - scratch: +3.67" in text


def test_accuracy_curves_mark_the_floor_and_the_papers_endpoints():
    fig = report_training.plot_accuracy_curves(
        _mlm_records(baseline=0.12, lsh_paper=0.11), "t", FLOOR
    )
    ax = fig.axes[0]
    levels = sorted(
        round(line.get_ydata()[0], 4)
        for line in ax.lines
        if len(line.get_xdata()) == 2 and line.get_ydata()[0] == line.get_ydata()[1]
    )
    assert levels == [0.0392, 0.1505, 0.1819]
    texts = " ".join(t.get_text() for t in ax.texts)
    assert "unigram floor" in texts and "88k steps" in texts
    xs = [line.get_xdata() for line in ax.lines if line.get_label() == "baseline"][0]
    assert list(xs) == [0.1024, 0.2048]  # millions of tokens seen at each evaluation


def test_metric_comparison_shares_the_percent_axis_and_draws_floors():
    table = pd.DataFrame(
        {"test EM (%)": [1.0, 0.5], "test F1 (%)": [10.0, 8.0]}, index=["baseline", "scratch"]
    )
    fig = report_training.plot_metric_comparison(table, "t", {"test F1 (%)": (6.2, "lexical")})
    em, f1 = fig.axes[:2]
    assert em.get_ylim() == f1.get_ylim() == (0.0, 12.0)
    assert any(t.get_text() == "lexical" for t in f1.texts)


def test_verdict_words_follow_the_interval_and_the_claims_direction():
    assert rv.verdict_word(0.01, 0.03, +1) == "supported"
    assert rv.verdict_word(-0.03, -0.01, -1) == "supported"
    assert rv.verdict_word(-0.03, -0.01, +1).startswith("not supported")
    assert rv.verdict_word(-0.01, 0.02, +1).startswith("inconclusive at this scale")
    assert "one seed" in rv.verdict_word(float("nan"), float("nan"), 1)
    with pytest.raises(ValueError, match="sign must be"):
        rv.verdict_word(0, 1, 0)
    row = {
        "variant": "lsh_paper",
        "n": 3,
        "sd": 0.002,
        "diff_mean": -0.01,
        "diff_low": -0.02,
        "diff_high": -0.001,
        "boot_low": -0.03,
        "boot_high": 0.0,
        "unit": "pretraining run",
        "n_desc": "3 pretraining runs",
        "test": "paired t",
        "p": 0.04,
    }
    out = rv.claim_row(
        "k", "LSH wins", "0.18 vs 0.15", "MLM accuracy, lsh_paper - baseline", row, +1
    ).to_dict()
    assert out["our measurement"].startswith(
        "MLM accuracy, lsh_paper - baseline: -0.0100 over 3 pretraining runs (95% interval -0.0200 "
        "to -0.0010"
    )
    assert "bootstrap over test examples -0.0300 to +0.0000" in out["our measurement"]
    assert out["verdict"].startswith("not supported") and out["p"] == 0.04


def test_an_interval_of_another_quantity_is_not_read_as_a_second_test():
    """The plateau claim tests exit steps; its interval is of accuracy at the stop (descriptive)."""
    common = {"p": 0.17, "p_holm": 1.0, "estimate": 1.2, "interval": (0.046, 0.087)}
    plain = Claim("k", "c", "e", "m", **common)
    assert verdict_words(plain).startswith("inconclusive after the family's adjustment: the ")
    other = Claim("k", "c", "e", "m", interval_of="accuracy at the stop", **common)
    assert verdict_words(other) == (
        "inconclusive: Holm-adjusted p = 1 does not pass 0.05 (the descriptive 95% interval of "
        "accuracy at the stop excludes 0, but it is not the test)"
    )
    within = Claim("k", "c", "e", "m", interval_of="x", **{**common, "interval": (-0.01, 0.02)})
    assert verdict_words(within) == "inconclusive: within noise (Holm-adjusted p = 1)"


def _seed_records():
    records = []
    for variant, base in (("baseline", 6.0), ("lsh_paper", 5.0)):
        for seed, shift in ((1, 0.0), (2, 0.4)):
            records.append(
                {
                    "config": {"variant": variant, "seed": seed},
                    "curves": {
                        "train": [{"step": s, "loss": base + shift - s / 100} for s in (10, 20)]
                    },
                    "final": {
                        "validation_accuracy": 0.1 + shift / 10,
                        "validation_loss": base,
                        "validation_perplexity": 400.0,
                        "train_loss_last": base,
                    },
                    "train_samples_per_second": 100.0,
                    "steps": 20,
                    "train_seconds": 10.0,
                }
            )
    return records


def test_seed_bands_span_the_lowest_to_the_highest_seed():
    fig = rv.plot_seed_bands(_seed_records(), "t")
    ax = fig.axes[0]
    mean = [line for line in ax.lines if line.get_label().startswith("baseline")][0]
    assert list(mean.get_ydata()) == pytest.approx([6.1, 6.0])
    band = ax.collections[0].get_paths()[0].vertices[:, 1]
    assert band.min() == pytest.approx(5.8) and band.max() == pytest.approx(6.3)
    radar = rv.plot_radar(_seed_records())
    assert len(radar.axes) == 2


def test_redrawn_loss_figures_carry_the_papers_reported_losses():
    curve, key, paper = rv.paper_loss_lines("mlm")
    assert (curve, key) == ("train", "loss")
    assert paper == {
        "paper baseline, final training loss": 5.516,
        "paper BERT-LSH, final training loss": 5.406,
    }
    assert rv.paper_loss_lines("sst2")[:2] == ("eval", "eval_loss")
    fig = rv.plot_seed_bands(_seed_records(), "t", curve, key, paper)
    flat = [line for line in fig.axes[0].lines if line.get_label().startswith("paper")]
    # drawn on a shared scale: the paper's losses over log of its 32,000-token vocabulary
    assert sorted(line.get_ydata()[0] for line in flat) == pytest.approx(
        [5.406 / math.log(32000), 5.516 / math.log(32000)]
    )
    with pytest.raises(ValueError, match="task must be one of .*'mlm'.*got 'glue'"):
        rv.paper_loss_lines("glue")


def _long(variant, losses, seconds_per_point=30.0):
    train = [
        {"step": 100 * (i + 1), "loss": v, "train_seconds": seconds_per_point * (i + 1)}
        for i, v in enumerate(losses)
    ]
    evals = [{"step": 100 * (i + 1), "eval_accuracy": 0.1 + 0.01 * i} for i in range(0, 9, 4)]
    return {
        "name": f"mlm-{variant}",
        "config": {"variant": variant, "max_length": 2048},
        "curves": {"train": train, "eval": evals},
        "steps": 100 * len(losses),
        "train_seconds": seconds_per_point * len(losses),
        "tokens_per_second": 1234.0,
        "final": {"validation_accuracy": 0.3, "validation_loss": 4.0},
    }


def test_plateau_and_long_sequence_reports_say_when_each_run_got_there():
    from lshlib import verdict

    fast = _long("lsh_paper", [7.0, 6.0, 6.0, 6.0, 5.5, 5.0, 4.5, 4.4, 4.3], 20.0)
    slow = _long("baseline", [7.0, 6.0, 6.0, 6.0, 6.0, 6.0, 6.0, 6.0, 6.0], 40.0)
    exits = [verdict.plateau_exit(r, reference_step=300, window=1) for r in (slow, fast)]
    text = rv.plateau_lines(exits)
    assert "baseline: plateau loss 6.000; never leaves it (smoothed loss 0.3 nats below" in text
    assert "lsh_paper: plateau loss 6.000; leaves it at step 500 (smoothed" in text
    fig = rv.plot_plateau([slow, fast], exits, reference_step=300)
    loss_ax = fig.axes[0]
    assert [line.get_label() for line in loss_ax.get_lines()][:1] == ["baseline"]
    assert any(line.get_xdata()[0] == 500 for line in loss_ax.get_lines()[1:])  # exit marked
    lines = rv.long_sequence_lines([slow, fast]).splitlines()
    # the common level is the higher final smoothed loss (the baseline's 6.0)
    assert lines[0].startswith("baseline: 900 steps in 6.0 min (1,234 tokens/s)")
    assert lines[0].endswith("reached training loss 6.000 after 2.0 min")  # step 300
    assert lines[1].endswith("reached training loss 6.000 after 1.0 min")
    fig = rv.plot_loss_vs_time([slow, fast], "t")
    assert fig.axes[0].get_lines()[1].get_xdata()[-1] == pytest.approx(3.0)  # minutes


def test_plateau_conclusion_names_the_run_that_left_first_and_reads_the_control():
    def exits(base, lsh, *fixed):
        variants = ("baseline", "lsh_paper", "lsh_paper_fixed")
        steps = (base, lsh, *fixed)
        pairs = zip(variants[: len(steps)], steps, strict=True)
        return [
            {"variant": v, "exit_step": s, "steps": 25_700, "validation_accuracy": a}
            for (v, s), a in zip(pairs, (0.13, 0.22, 0.19), strict=False)
        ]

    text = rv.plateau_conclusion(exits(None, None))
    assert text.startswith("Neither the baseline nor lsh_paper leaves the plateau in 25,700 steps")
    text = rv.plateau_conclusion(exits(9000, 7000))
    assert text.startswith("lsh_paper leaves the plateau first (step 7,000; the baseline at ")
    assert "needs lsh_paper_fixed (hashes drawn once), not run yet" in text
    text = rv.plateau_conclusion(exits(None, 7000, None))
    assert "the baseline never does" in text
    assert "lsh_paper_fixed, the same attention with hashes drawn once, never leaves it" in text
    text = rv.plateau_conclusion(exits(None, 7000, 8000))
    assert "leaves it too (step 8,000): in this one seed the redrawn hashes were not needed" in text
    assert "not a finding" in text
    assert "accuracy is 0.1900 with fixed hashes, 0.2200 with redrawn ones and 0.1300 for" in text
    text = rv.plateau_conclusion(exits(7000, None))
    assert text.startswith("The baseline leaves the plateau first or together (step 7,000; ")
    assert "lsh_paper never does" in text
    text = rv.plateau_conclusion(exits(7000, 7000))
    assert "no support" in text


def test_long_sequence_conclusion_gives_the_ratios():
    # same steps; lsh_bucketed logs every 20 s, the baseline every 40 s
    base = _long("baseline", [7.0, 6.5, 6.2, 6.1, 6.0, 6.0, 6.0, 6.0, 6.0], 40.0)
    lsh = _long("lsh_bucketed", [7.0, 6.4, 6.3, 6.2, 6.1, 6.0, 6.0, 6.0, 6.0], 20.0)
    lsh["tokens_per_second"] = 2 * base["tokens_per_second"]
    text = rv.long_sequence_conclusion([base, lsh])
    # both reach 6.000 (smoothed, window 5): the baseline at its 7th point (280 s), LSH at its
    # 8th (160 s)
    assert text.startswith("lsh_bucketed trains 2.00x as many tokens per second as the baseline")
    assert "reaches training loss 6.000 1.75x sooner on the wall-clock" in text
    assert "after the same 900 steps its smoothed training loss is 6.000 against" in text


def test_compute_claim_weighs_the_operation_count_against_the_wall_clock():
    row = {
        "honest_lsh_kops": 100.0,
        "honest_full_kops": 150.0,
        "paper_kflops": 10.24,
        "paper_full_kflops": 25.6,
    }
    assert rv.compute_claim(row, 0.5)["verdict"] == "supported"
    assert rv.compute_claim(row, 3.75)["verdict"].startswith("partly: fewer operations")
    assert "3.75x" in rv.compute_claim(row, 3.75)["our measurement"]
    assert rv.compute_claim(row, None)["verdict"].endswith("no wall-clock measured at this scale")
    more = dict(row, honest_lsh_kops=200.0)
    assert rv.compute_claim(more, 0.5)["verdict"].startswith("not supported")


def test_isolation_conclusion_reads_the_interval_and_the_isolated_shares():
    summary = {"variant": "lsh_masked", "no_collision": 0.12, "no_collision_random": 0.001}
    better = {"diff_mean": 0.05, "diff_low": 0.02, "diff_high": 0.08}
    text = rv.isolation_conclusion(better, summary)
    assert "leaves 0.10% of queries alone where LSH leaves 12.0%" in text
    assert "consistent with the explanation" in text
    closes = rv.isolation_conclusion(better, summary, {"diff_mean": -0.2})
    assert "It closes 25% of lsh_masked's 0.2000 gap to lsh_paper" in closes
    assert "explain part of the loss, not all of it" in closes
    noise = {"diff_mean": 0.01, "diff_low": -0.02, "diff_high": 0.04}
    assert "within noise: these runs do not support" in rv.isolation_conclusion(noise, summary)
    worse = {"diff_mean": -0.05, "diff_low": -0.08, "diff_high": -0.02}
    assert "goes against the explanation" in rv.isolation_conclusion(worse, summary)


def test_claims_table_has_a_row_per_measured_claim_and_skips_missing_runs():
    def cmp(variant, low, high, p, test="paired t over pretraining runs"):
        return [
            {"variant": "baseline", "n": 3, "sd": 0.01},
            {
                "variant": variant,
                "n": 3,
                "sd": 0.01,
                "diff_mean": (low + high) / 2,
                "diff_low": low,
                "diff_high": high,
                "p": p,
                "unit": "pretraining run",
                "n_desc": "3 pretraining runs",
                "test": test,
            },
        ]

    compute = {"claim": "compute", "paper's evidence": "e", "our measurement": "m", "verdict": "v"}
    control = {"control": "random_paper", **cmp("random_paper", -0.01, 0.01, 0.9)[1]}
    table = rv.claims(
        pretraining=cmp("lsh_paper", -0.01, 0.01, 0.8),
        generalisation=cmp("lsh_paper", -0.02, -0.01, 0.01),
        sst2=cmp("lsh_paper", -0.03, -0.01, 0.004) + cmp("scratch", 0.01, 0.02, 0.02, "Welch")[1:],
        squad=[],
        controls=[control],
        compute=compute,
        paper_settings=cmp("scratch", 0.05, 0.1, 0.001, "Welch"),
        mlm_steps=3125,
    )
    by = {row["key"]: row for row in table}
    assert by["compute"]["verdict"] == "v" and "squad" not in by  # no SQuAD runs: no row
    # the family of 9: pretraining 0.8, sst2 0.004, pretraining_helps 0.02, its paper-settings
    # twin 0.001, locality 0.9, and 4 members without runs (p = 1) -> Holm: 0.001*9, 0.004*8,
    # 0.02*7, then 1
    assert by["pretraining_helps_paper_settings"]["p_holm"] == pytest.approx(0.009)
    assert by["sst2"]["p_holm"] == pytest.approx(0.032)
    assert by["pretraining_helps"]["p_holm"] == pytest.approx(0.14)
    assert by["pretraining"]["p_holm"] == pytest.approx(1.0)
    assert by["sst2"]["verdict"].startswith("not supported: the opposite holds")
    assert by["pretraining_helps"]["verdict"].startswith(
        "inconclusive after the family's adjustment: the unadjusted 95% interval excludes 0, but "
        "Holm-adjusted p = 0.14 does not pass 0.05"
    )
    assert by["pretraining_helps_paper_settings"]["verdict"].startswith("not supported")
    # the pretraining interval -0.01..+0.01 excludes the paper's +0.0314: said, with its scope
    assert (
        "rules out a difference as large as the paper's (+0.0314) at 3,125 steps"
        in (by["pretraining"]["verdict"])
    )
    assert by["generalisation"]["verdict"] == "not testable at one epoch"
    assert not by["generalisation"]["family"] and by["sst2"]["family"]
    assert by["sst2"]["unit"] == "pretraining run" and by["sst2"]["n"] == "3 pretraining runs"
    settings = by["pretraining_helps_paper_settings"]["our measurement"]
    assert "+0.0750 over 3 pretraining runs (95% interval +0.0500 to +0.1000" in settings
    exits = [
        {"variant": "baseline", "exit_step": None, "steps": 900, "validation_accuracy": 0.13},
        {"variant": "lsh_paper", "exit_step": 500, "steps": 900, "validation_accuracy": 0.2},
    ]
    long = rv.claims(
        pretraining=[],
        generalisation=[],
        sst2=[],
        squad=[],
        controls=[],
        compute=compute,
        exploratory_plateau=exits,
    )[-1]
    assert long["our measurement"].endswith(
        "after 900 steps, one seed each: baseline 0.1300 (never leaves the plateau); "
        "lsh_paper 0.2000 (leaves the plateau at step 500)"
    )
    assert long["verdict"].startswith("exploratory: one seed each (lsh_paper +0.0700")
    assert not long["family"]


# --------------------------------------------------------------------------- figures


def _task_records(task: str, scale: str = "laptop", max_length: int = 128) -> list[dict]:
    """Two seeds of the baseline and lsh_paper with one loss curve of ``task``."""
    curve, key = ("train", "loss") if task == "mlm" else ("eval", "eval_loss")
    return [
        {
            "config": {
                "variant": v,
                "seed": seed,
                "task": task,
                "scale": scale,
                "max_length": max_length,
            },
            "curves": {curve: [{"step": s, key: base + shift - s / 100} for s in (10, 20)]},
        }
        for v, base in (("baseline", 6.0), ("lsh_paper", 5.0))
        for seed, shift in ((1, 0.0), (2, 0.4))
    ]


def test_one_palette_gives_every_variant_its_own_fixed_colour():
    from lshlib.report import VARIANT_COLORS, variant_color

    assert report_training.COLORS is VARIANT_COLORS
    assert len(set(VARIANT_COLORS.values())) == len(VARIANT_COLORS)
    records = _mlm_records(baseline=0.12, lsh_paper=0.11, lsh_masked=0.1)
    for r in records.values():
        r["curves"]["train"] = [{"step": 50, "loss": 7.0}]
        r["curves"]["eval"] = [{"step": 50, "eval_loss": 7.0, "eval_accuracy": 0.1}]
    fig = report_training.plot_loss_curves(records, "t")
    for line in fig.axes[0].lines:
        assert line.get_color() == variant_color(line.get_label().split()[0])
    bands = rv.plot_seed_bands(_task_records("mlm"), "t")
    drawn = {line.get_label().split()[0]: line.get_color() for line in bands.axes[0].lines}
    assert drawn == {v: variant_color(v) for v in ("baseline", "lsh_paper")}


def test_mlm_losses_beside_the_papers_are_divided_by_log_vocabulary():
    curve, key, paper = rv.paper_loss_lines("mlm")
    fig = rv.plot_seed_bands(_task_records("mlm"), "t", curve, key, paper)
    ax = fig.axes[0]
    assert "log(vocabulary size)" in ax.get_ylabel() and "uniform guess" in ax.get_ylabel()
    mean = next(line for line in ax.lines if line.get_label().startswith("baseline"))
    assert list(mean.get_ydata()) == pytest.approx([6.1 / math.log(8000), 6.0 / math.log(8000)])
    assert "vocabulary size 8,000" in mean.get_label()
    flat = {
        line.get_label(): line.get_ydata()[0]
        for line in ax.lines
        if line.get_label().startswith("paper")
    }
    assert sorted(flat.values()) == pytest.approx(
        [5.406 / math.log(32000), 5.516 / math.log(32000)]
    )
    assert all("/ log 32,000" in label for label in flat)
    (right,) = ax.child_axes  # ours read back in nats
    assert "nats" in right.get_ylabel() and "8,000" in right.get_ylabel()


def test_finetuning_losses_share_a_scale_with_the_papers():
    curve, key, paper = rv.paper_loss_lines("sst2")
    fig = rv.plot_seed_bands(_task_records("sst2", max_length=64), "t", curve, key, paper)
    ax = fig.axes[0]  # 2 classes in both studies: nats, as reported
    assert "nats" in ax.get_ylabel() and "2 classes" in ax.get_ylabel()
    flat = sorted(line.get_ydata()[0] for line in ax.lines if line.get_label().startswith("paper"))
    assert flat == pytest.approx([0.3748, 0.4306])
    assert not ax.child_axes
    curve, key, paper = rv.paper_loss_lines("squad")
    fig = rv.plot_seed_bands(_task_records("squad", max_length=256), "t", curve, key, paper)
    ax = fig.axes[0]  # positions of a window: ours 256, the paper's 384
    assert "log(window length)" in ax.get_ylabel()
    flat = sorted(line.get_ydata()[0] for line in ax.lines if line.get_label().startswith("paper"))
    assert flat == pytest.approx([0.5161 / math.log(384), 0.5311 / math.log(384)])
    with pytest.raises(ValueError, match="several tasks"):
        rv.plot_seed_bands(_task_records("sst2") + _task_records("squad"), "t", curve, key, paper)


def _ratio_records():
    records = []
    for variant, acc, speed in (("baseline", 0.10, 100.0), ("lsh_paper", 0.11, 50.0)):
        for seed, shift in ((1, -0.01), (2, 0.01)):
            records.append(
                {
                    "config": {"variant": variant, "seed": seed, "task": "mlm"},
                    "final": {
                        "validation_accuracy": acc + shift,
                        "validation_loss": 6.0 + shift,
                        "validation_perplexity": 400.0,
                        "train_loss_last": 6.0,
                    },
                    "train_samples_per_second": speed + 100 * shift,
                    "steps": 20,
                    "train_seconds": 10.0,
                }
            )
    return records


def test_radar_is_redrawn_as_ratios_to_the_baseline_with_seed_bands_and_values():
    fig = rv.plot_radar(_ratio_records())
    quality, speed = fig.axes
    for ax in (quality, speed):
        base = next(line for line in ax.lines if line.get_label().startswith("baseline"))
        assert list(base.get_xdata()) == pytest.approx([1.0] * len(base.get_xdata()))
        assert "(2 seeds)" in base.get_label()
    lsh = next(line for line in quality.lines if line.get_label().startswith("lsh_paper"))
    assert lsh.get_xdata()[0] == pytest.approx(1.1)  # accuracy 0.11 / 0.10
    bands = quality.collections[1].get_segments()  # lsh_paper: lowest to highest seed
    assert [tuple(s[:, 0]) for s in bands][0] == pytest.approx((1.0, 1.2))
    paper = next(line for line in quality.lines if line.get_label().startswith("paper"))
    assert paper.get_xdata()[0] == pytest.approx(0.1819 / 0.1505)
    fast = next(line for line in speed.lines if line.get_label().startswith("paper"))
    assert len(paper.get_xdata()) == 4 and len(fast.get_xdata()) == 1  # the paper has no steps/s
    assert fast.get_xdata()[0] == pytest.approx(168.9 / 549.3)
    texts = [t.get_text() for t in quality.texts]
    assert "1.100" in texts and f"{0.1819 / 0.1505:.3f}" in texts
    assert [t.get_text() for t in quality.get_yticklabels()][0] == "eval accuracy"
    # labels clear of ticks: no tick label overlaps another tick label or the axis title
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    for ax in (quality, speed):
        boxes = [
            t.get_window_extent(renderer)
            for t in (*ax.get_xticklabels(), *ax.get_yticklabels(), ax.title)
            if t.get_text()
        ]
        for i, a in enumerate(boxes):
            assert not any(a.overlaps(b) for b in boxes[i + 1 :])


def test_exploratory_plateau_figure_draws_each_variant_in_its_own_colour():
    from lshlib import verdict
    from lshlib.report import variant_color

    runs = [
        _long(v, [7.0, 6.0, 6.0, 6.0, 5.5, 5.0, 4.5, 4.4, 4.3])
        for v in ("baseline", "lsh_paper", "lsh_paper_fixed")
    ]
    exits = [verdict.plateau_exit(r, reference_step=300, window=1) for r in runs]
    fig = rv.plot_plateau(runs, exits, reference_step=300)
    drawn = {
        line.get_label(): line.get_color()
        for line in fig.axes[0].lines
        if not line.get_label().startswith("_")
    }
    assert drawn == {v: variant_color(v) for v in ("baseline", "lsh_paper", "lsh_paper_fixed")}
    assert len(set(drawn.values())) == 3
