"""Text tables and summaries a notebook prints: each says what its numbers say."""

from __future__ import annotations

import pandas as pd

from lshlib.report import training as report_training


def _records(**accuracies: float) -> dict[str, dict]:
    return {
        v: {"final": {"test_accuracy": a, "test_loss": 0.5, "validation_loss_best": 0.4},
            "train_seconds": 10.0, "tokens_per_second": 100.0, "steps": 5,
            "train_samples_per_second": 8.0, "device": {"type": "cpu"}}
        for v, a in accuracies.items()
    }  # fmt: skip


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
