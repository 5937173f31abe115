"""Reading plateau records: each run's exit by the pre-registered rule, survival per arm, the
primary test and the claim row, from synthetic records (no data, no model)."""

from __future__ import annotations

import numpy as np
import pytest

from lshlib.experiments import exits


def record(arm: str, seed: int, exit_at: int | None, stop: int = 16_000) -> dict:
    """A plateau record: accuracy 0.13 on the plateau, 0.20 from ``exit_at`` on."""
    evals = [
        {"step": s, "eval_accuracy": 0.20 if exit_at is not None and s >= exit_at else 0.13}
        for s in range(500, stop + 1, 500)
    ]
    train = [
        {"step": s, "loss": 6.0 if exit_at is None or s < exit_at else 5.0}
        for s in range(100, stop + 1, 100)
    ]
    last = evals[-1]["eval_accuracy"] if evals else 0.0
    return {
        "config": {"scale": "laptop", "stop_at": stop, "variant": arm, "seed": seed},
        "steps": stop,
        "curves": {"eval": evals, "train": train},
        "final": {"validation_accuracy": last},
    }


def test_rows_read_the_rule_its_sensitivity_and_the_secondary_detector():
    rows = exits.exit_rows(
        {
            "lsh_paper": {1: record("lsh_paper", 1, 10_500)},
            "baseline": {1: record("baseline", 1, None)},
        }
    )
    lsh, base = rows
    assert (lsh["exited"], lsh["step"], lsh["level"]) == (True, 10_500, pytest.approx(0.13))
    assert lsh["step_at_0.01"] == lsh["step_at_0.03"] == 10_500
    assert lsh["train_loss_step"] == 10_700  # median of 5 logged losses: 3 low ones needed
    assert (base["exited"], base["step"], base["step_at_0.01"]) == (False, 16_000, None)
    assert base["train_loss_step"] is None


def test_a_run_stopped_early_is_read_on_a_scaled_rule():
    """Smoke runs stop at a few steps: the rule's laptop steps shrink with the stop."""
    small = record("lsh_paper", 1, None, stop=16)
    small["curves"]["eval"] = [
        {"step": s, "eval_accuracy": 0.1 if s < 12 else 0.3} for s in range(2, 17, 2)
    ]
    found = exits.run_exit(small)
    assert found.exited and found.step == 12


def test_primary_test_and_claim_from_five_pairs():
    records = {
        "lsh_paper": {s: record("lsh_paper", s, 9000 + 500 * s) for s in range(1, 6)},
        "baseline": {s: record("baseline", s, None) for s in range(1, 6)},
    }
    rows = exits.exit_rows(records)
    test = exits.primary_test(rows)
    assert test["n_pairs"] == 5 and test["p_exact_one_sided"] == pytest.approx(1 / 252)
    assert test["p_within_pairs"] == pytest.approx(1 / 32)
    km = exits.km_curves(rows)
    assert km["lsh_paper"][-1] == (11_500, 0.0) and km["baseline"] == [(0, 1.0)]
    extra = exits.descriptive(rows)
    assert extra["fisher"]["p_one_sided"] == pytest.approx(1 / 252)
    assert extra["accuracy_difference"]["mean"] == pytest.approx(0.07)
    row = exits.claim(rows, "laptop")
    assert row["unit"] == "pretraining run" and row["n"] == "5 seed pairs"
    assert row["p"] == pytest.approx(1 / 252)
    assert "lsh_paper exits in 5 of 5 runs" in row["our measurement"]
    assert "baseline exits in 0 of 5 runs" in row["our measurement"]
    assert "accuracy at the stop" in row["interval_of"]  # not the test's quantity


def test_best_case_projects_the_unfinished_pairs_the_claims_way():
    records = {
        "lsh_paper": {1: record("lsh_paper", 1, 9000), 2: record("lsh_paper", 2, 9500)},
        "baseline": {1: record("baseline", 1, None), 2: record("baseline", 2, None)},
    }
    records["lsh_paper"][3] = record("lsh_paper", 3, 10_000)
    records["baseline"][3] = record("baseline", 3, 7000)  # one pair against the claim
    rows = exits.exit_rows(records)
    assert exits.primary_test(rows)["p_exact_one_sided"] == pytest.approx(4 / 20)
    best = exits.best_case_test(rows, seeds=range(1, 6))
    # 5 pairs, 4 fully the claim's way and one against: 4 of the 252 labellings are as extreme
    assert best["n_pairs"] == 5 and best["p_exact_one_sided"] == pytest.approx(4 / 252)
    assert len(rows) == 6  # the records' rows are left as they are
    separated = exits.exit_rows(
        {a: {s: r for s, r in by.items() if s < 3} for a, by in records.items()}
    )
    assert exits.best_case_test(separated, seeds=range(1, 6))["p_exact_one_sided"] == (
        pytest.approx(1 / 252)
    )
    assert exits.best_case_test(rows, seeds=(1, 2, 3)) == exits.primary_test(rows)
    # a half-finished pair keeps its finished run: a censored baseline s4 is the claim's way,
    # an exited one is against it
    for exit_at, p in ((None, 4 / 252), (7000, 14 / 252)):  # 14: by enumerating the 252
        half = exits.exit_rows(
            {**records, "baseline": {**records["baseline"], 4: record("baseline", 4, exit_at)}}
        )
        assert exits.unfinished_pairs(half, range(1, 6)) == [4, 5]
        assert exits.best_case_test(half, seeds=range(1, 6))["p_exact_one_sided"] == pytest.approx(
            p
        )


def test_best_case_sentence_says_it_is_a_projection_and_whether_the_plan_can_pass():
    from lshlib.report import plateau as rp

    records = {
        arm: {s: record(arm, s, step) for s, step in steps.items()}
        for arm, steps in {
            "lsh_paper": {1: 9000, 2: 9500, 3: 10_000},
            "baseline": {1: None, 2: None, 3: 7000},
        }.items()
    }
    rows = exits.exit_rows(records)
    others = [{"key": "sst2", "p": 0.001, "family": True}]  # plateau would rank second: x 8
    said = rp.best_case_sentence(rows, (1, 2, 3, 4, 5), others)
    assert said.startswith(
        "A projection, not a record: if the runs still missing from seed pairs 4, 5"
    )
    assert "p = 0.0159 (252 labellings)" in said and "Holm-adjusted p = 0.127" in said
    assert said.endswith("no outcome of the planned runs can make this claim supported.")
    separated = [r for r in rows if r["seed"] < 3]  # 2 pairs fully the claim's way
    can = rp.best_case_sentence(separated, (1, 2, 3, 4, 5), [])  # 1/252, first of 9: x 9
    assert "seed pairs 3, 4, 5 " in can and "Holm-adjusted p = 0.0357" in can
    assert can.endswith("so the planned runs can still make this claim supported.")
    assert rp.best_case_sentence(rows, (1, 2, 3), others) == ""  # every planned pair finished


def test_no_claim_before_two_pairs():
    rows = exits.exit_rows(
        {
            "lsh_paper": {1: record("lsh_paper", 1, 9000)},
            "baseline": {1: record("baseline", 1, None)},
        }
    )
    assert exits.primary_test(rows) is None and exits.claim(rows) is None


def _full(arm: str, seed: int, exit_at: int | None) -> dict:
    r = record(arm, seed, exit_at)
    r["config"].update(learning_rate=2e-3, warmup=0.05, batch_size=16)
    r["stopped_early"] = {"schedule_steps": 25_700}
    r["data"] = {"train_blocks": 82_240}
    heads = {
        "entropy": [[1.0, 2.0]],
        "self_mass": [[0.1, 0.2]],
        "neighbour_mass": [[0.1, 0.1]],
        "special_mass": [[0.3, 0.3]],
        "logit_std": [[1.0, 1.5]],
    }
    diag = {**heads, "hidden_cosine": [0.5]}
    r["curves"]["diagnostics"] = [{"step": s, **diag} for s in range(500, 16_001, 500)]
    return r


def test_learning_rate_and_epoch_starts_follow_the_schedule():
    from lshlib.report import plateau as rp

    r = _full("baseline", 1, None)
    lr = rp.learning_rate_at(r, np.array([0, 1285, 16_000, 25_700]))
    assert lr == pytest.approx([0.0, 2e-3, 2e-3 * 9700 / 24_415, 0.0])
    assert rp.epoch_starts(r) == [5140, 10_280, 15_420]


def test_figures_and_sentences_from_records(tmp_path):
    import matplotlib

    matplotlib.use("Agg")
    from lshlib.report import plateau as rp

    records = {
        "lsh_paper": {s: _full("lsh_paper", s, 10_000 + 500 * s) for s in (1, 2)},
        "baseline": {s: _full("baseline", s, None) for s in (1, 2)},
    }
    rows = exits.exit_rows(records)
    for fig in (
        rp.plot_accuracy(records, rows),
        rp.plot_survival(exits.km_curves(rows), 16_000),
        rp.plot_diagnostics(records, rows),
    ):
        fig.savefig(tmp_path / "f.png")
    said = rp.result_sentences(rows, exits.primary_test(rows), exits.descriptive(rows))
    assert said[0] == "lsh_paper leaves the plateau in 2 of 2 runs (at steps 10,500, 11,000)."
    assert said[1] == "baseline leaves the plateau in 0 of 2 runs."
    assert "p = 0.1667" in said[2]  # C(4, 2) = 6 labellings, the observed one the most extreme
    assert "cannot give a p below 1/6 = 0.1667" in said[2]  # the floor of 2 pairs
    one = exits.exit_rows({k: {1: v[1]} for k, v in records.items()})
    assert "nothing here is a finding" in rp.result_sentences(one, None, None)[-1]
    assert "2,000 to 6,000" in rp.rule_sentence() and "0.02" in rp.rule_sentence()
