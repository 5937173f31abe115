"""The plateau runs: isolated evaluation, early stop on a longer schedule, diagnostics, final scores
over fixed draws with per-example predictions, chained transfer, and the runner's plan."""

from __future__ import annotations

import dataclasses
import json
import math
import subprocess
import threading

import pytest
import torch
from conftest import TINY_MODEL, tiny_mlm_config
from transformers import TrainingArguments, get_scheduler

from lshlib import training
from lshlib.experiments import plateau
from lshlib.scales import LONG, PLATEAU
from lshlib.training import scoring
from lshlib.training.trainers import draw_seed, evaluation_rng
from lshlib.verdict import runner

needs_data = pytest.mark.needs_data


@pytest.fixture
def env(monkeypatch, tmp_path_factory, tmp_path):
    runs = tmp_path_factory.getbasetemp() / "lshlib-runs"  # shared with test_training
    runs.mkdir(exist_ok=True)
    monkeypatch.setenv("LSHLIB_RUNS_DIR", str(runs))
    monkeypatch.setenv("LSHLIB_RESULTS_DIR", str(tmp_path / "results"))
    return tmp_path


def tiny(variant: str = "lsh_paper", **overrides) -> training.RunConfig:
    return tiny_mlm_config(variant, 3, **{"max_eval": 16, "epochs": 2.0, **overrides})


# --------------------------------------------------------------------------- pure


def test_new_settings_leave_committed_run_names_alone():
    base = training.RunConfig(task="mlm", variant="baseline", scale="smoke")
    assert not {"stop_at", "isolated_eval", "diagnostics", "processes"} & set(base.to_dict())
    changed = training.RunConfig(task="mlm", variant="baseline", scale="smoke", stop_at=5)
    assert changed.to_dict()["stop_at"] == 5 and changed.name != base.name


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"stop_at": 0}, "stop_at must be None or a step >= 1, got 0"),
        ({"diagnostics": True}, "isolated_eval=True only"),
    ],
)
def test_bad_plateau_settings_are_refused(overrides, message):
    with pytest.raises(ValueError, match=message):
        training.RunConfig(task="mlm", variant="baseline", scale="smoke", **overrides)


def test_learning_rate_at_the_stop_is_the_long_schedules():
    """Laptop plateau: 25,700 steps (5 epochs of 5,140), 5% warm-up, linear decay from 2e-3;
    stopped at 16,000 the learning rate is 2e-3 * 9,700 / 24,415 (about 7.9e-4)."""
    settings = {**LONG["laptop"]["plateau"], **PLATEAU["laptop"]["settings"]}
    assert settings["stop_at"] == 16_000 and settings["epochs"] == 5.0
    total = 5 * 5140
    warmup = TrainingArguments(output_dir="/tmp/x", warmup_steps=0.05).get_warmup_steps(total)
    assert warmup == 1285
    opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=2e-3)
    schedule = get_scheduler("linear", opt, num_warmup_steps=warmup, num_training_steps=total)
    for _ in range(16_000):
        opt.step()
        schedule.step()
    lr = schedule.get_last_lr()[0]
    assert lr == pytest.approx(2e-3 * (total - 16_000) / (total - warmup))
    assert lr == pytest.approx(7.946e-4, abs=1e-7)


def test_evaluation_rng_leaves_the_training_rng_alone():
    before = torch.get_rng_state()
    with evaluation_rng(7) as gen:
        a = torch.rand(3, generator=gen)
        torch.rand(5)  # the global RNG moves inside ...
    assert torch.equal(torch.get_rng_state(), before)  # ... and is restored
    with evaluation_rng(7) as gen:
        assert torch.equal(torch.rand(3, generator=gen), a)
    assert draw_seed(7, 0) == 7 and len({draw_seed(7, i) for i in range(8)}) == 8


def test_jobs_pair_by_seed_and_chain_their_transfer():
    jobs = plateau.seed_jobs("laptop")
    assert plateau.jobs("laptop")[: len(jobs)] == jobs  # the mechanism arms queue behind
    arms = {(j.pretraining.variant, j.pretraining.seed) for j in jobs}
    assert {("baseline", s) for s in range(1, 6)} <= arms
    assert {("lsh_paper", s) for s in range(1, 6)} <= arms
    assert {("lsh_paper_fixed", s) for s in range(1, 4)} <= arms and len(jobs) == 13
    first = jobs[0].pretraining
    assert (first.seed, first.stop_at, first.eval_steps, first.max_eval) == (1, 16_000, 500, None)
    assert first.isolated_eval and first.diagnostics and first.epochs == 5.0
    lsh = next(j for j in jobs if j.pretraining.variant == "lsh_paper")
    kinds = [(c.variant, c.seed, c.learning_rate) for c in lsh.transfer]
    assert kinds == [
        ("lsh_paper", 1, 5e-4),
        ("lsh_paper", 2, 5e-4),
        ("lsh_paper", 1, 2e-5),
        ("baseline", 1, 5e-4),
    ]
    assert all(c.pretrained == lsh.name for c in lsh.transfer)
    assert len(jobs[0].transfer) == 3  # the baseline has no full-attention twin
    with pytest.raises(ValueError, match="no plateau job 'nope'"):
        plateau.job_by_name("nope", "laptop")


def _record(task, epochs, steps, seconds, cpu="X", threads=1):
    length = 128 if task == "mlm" else 64  # the laptop scale's block and sentence lengths
    return {
        "config": {"task": task, "epochs": epochs, "max_length": length},
        "steps": steps,
        "train_seconds": seconds,
        "device": {"threads": threads, "model": cpu},
    }


def test_runner_estimates_a_job_from_this_machines_records():
    records = [
        _record("mlm", 5.0, 100, 20.0),
        _record("mlm", 5.0, 100, 40.0, cpu="Y"),
        _record("sst2", 1.0, 2000, 200.0),
        _record("sst2", 3.0, 6000, 600.0),
        _record("sst2", 1.0, 2000, 999.0, threads=2),
    ]
    job = plateau.jobs("laptop")[1]  # lsh_paper seed 1: 2 main, 1 paper-settings, 1 full
    minutes = runner.estimate_minutes(job, records, "X")
    assert minutes == pytest.approx((0.2 * 16_000 + 0.1 * (2000 * 3 + 6000)) / 60)
    # another CPU's records only when none ran here
    assert runner.estimate_minutes(job, records[1:], "X") > minutes
    with pytest.raises(LookupError, match="no finished 1-thread mlm record"):
        runner.estimate_minutes(job, records[2:], "X")
    # the median: one run slowed by other work (1.0 s a step) does not move the estimate
    slowed = [*records, _record("mlm", 5.0, 100, 100.0), _record("mlm", 5.0, 100, 20.0)]
    assert runner.estimate_minutes(job, slowed, "X") == pytest.approx(minutes)


def test_runner_refuses_uncommitted_code(monkeypatch):
    monkeypatch.setattr(runner, "_git", lambda *a, **k: " M lshlib/training/runs.py")
    with pytest.raises(SystemExit, match="uncommitted changes"):
        runner.pinned_commit()


def test_runner_git_waits_for_another_commits_index_lock(tmp_path):
    """A record's commit must not be lost because a commit in the main tree holds the lock."""

    def git(*args):
        subprocess.run(["git", *args], cwd=tmp_path, check=True, capture_output=True)

    git("init", "-q")
    git("config", "user.email", "t@t")
    git("config", "user.name", "t")
    (tmp_path / "a.json").write_text("{}")
    lock = tmp_path / ".git" / "index.lock"
    lock.write_text("")
    threading.Timer(1.0, lock.unlink).start()
    runner._git("add", "--", "a.json", cwd=tmp_path)  # waits about 1 s, then succeeds
    assert "a.json" in runner._git("status", "--porcelain", cwd=tmp_path)
    lock.write_text("")
    with pytest.raises(RuntimeError, match="index.lock"):
        runner._git("add", "--", "a.json", cwd=tmp_path, lock_wait=0.2)
    lock.unlink()
    with pytest.raises(RuntimeError, match="nope"):  # other failures are not retried
        runner._git("nope", cwd=tmp_path)


def test_runner_cli_checks_its_arguments(capsys):
    with pytest.raises(SystemExit):
        runner.main(["--workers", "0"])
    assert "--workers must be >= 1, got 0" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        runner.main(["--deadline", "-3"])
    assert "--deadline must be a positive number of minutes" in capsys.readouterr().err


def test_examples_decode_and_older_records_say_they_hold_none():
    record = {
        "name": "r",
        "examples": {"split": "test", "correct": "0110", "f1": [1.0, 0.5], "draw": 0, "draws": 8},
    }
    assert scoring.examples_of(record) == {"correct": [0, 1, 1, 0], "f1": [1.0, 0.5]}
    with pytest.raises(KeyError, match="'old' holds no per-example predictions"):
        scoring.examples_of({"name": "old"})


# --------------------------------------------------------------------------- runs


@needs_data
def test_training_curve_is_the_same_whatever_the_evaluation_cadence(env):
    """Isolated evaluation never moves the training RNG (per-call hashes, dropout, data order):
    evaluating every 2 or every 6 steps gives the identical training-loss curve. Without
    isolation the same change moves it (so the test can tell)."""

    def losses(**overrides):
        record = training.run(tiny(**overrides), progress=False)
        return [p["loss"] for p in record["curves"]["train"]]

    isolated = losses(isolated_eval=True, eval_steps=2, save_steps=100)
    assert isolated == losses(isolated_eval=True, eval_steps=6, save_steps=100)
    assert losses(eval_steps=2, save_steps=100) != losses(eval_steps=6, save_steps=100)


@needs_data
def test_plateau_record_holds_the_stop_diagnostics_draws_and_predictions(env):
    config = tiny(stop_at=10, isolated_eval=True, diagnostics=True)
    record = training.run(config, progress=False)
    assert record["steps"] == 10 and record["stopped_early"]["at_step"] == 10
    stop = record["stopped_early"]
    assert stop["schedule_steps"] == 16 and 0 < stop["learning_rate"] < config.learning_rate
    assert record["commit"] is None or len(record["commit"].split("-")[0]) == 40
    diag = record["curves"]["diagnostics"]
    assert [d["step"] for d in diag] == [4, 8, 10]
    for d in diag:
        assert len(d["entropy"]) == 1 and len(d["entropy"][0]) == 2  # 1 layer, 2 heads
        assert all(math.isfinite(v) for row in d["entropy"] for v in row)
        assert all(0.0 <= v <= 1.0 for row in d["zeroed_share"] for v in row)
    assert diag[0]["grad_rms"] is not None and diag[1]["grad_rms"] is not None
    final, examples = record["final"], scoring.examples_of(record)
    assert len(final["validation_accuracy_draws"]) == scoring.K_DRAWS
    assert final["validation_accuracy_draws"][0] == pytest.approx(final["validation_accuracy"])
    correct = examples["correct"]
    assert sum(correct) / len(correct) == pytest.approx(final["validation_accuracy"])
    assert record["examples"]["draws"] == scoring.K_DRAWS
    json.dumps(record, allow_nan=False)  # valid JSON: no NaN anywhere


@needs_data
def test_a_deterministic_model_is_scored_once(env):
    record = training.run(tiny("baseline", isolated_eval=True, stop_at=4), progress=False)
    assert len(record["final"]["validation_accuracy_draws"]) == 1
    assert record["examples"]["draws"] == 1


@needs_data
def test_chained_transfer_names_its_pretrained_run(env):
    mlm = tiny(stop_at=6, isolated_eval=True)
    training.run(mlm, progress=False)
    sst2 = training.run_config(
        "sst2",
        "baseline",
        "smoke",
        1,
        pretrained=mlm.name,
        isolated_eval=True,
        max_train=64,
        max_eval=16,
        max_test=32,
        model_overrides=TINY_MODEL,
    )
    with pytest.raises(training.MissingRunError, match="mlm-x-s1-00000000"):
        training.run(dataclasses.replace(sst2, pretrained="mlm-x-s1-00000000"), progress=False)
    record = training.run(sst2, progress=False)
    assert record["pretrained_run"]["name"] == mlm.name
    assert record["pretrained_run"]["config"]["variant"] == "lsh_paper"
    predicted = scoring.examples_of(record)["predicted"]
    assert len(predicted) == record["data"]["test"] == 32
    assert len(record["final"]["test_accuracy_draws"]) == 1  # full attention: deterministic


def test_runner_is_importable_without_training_libraries():
    code = "import sys, lshlib.verdict.runner; print('transformers' in sys.modules)"
    out = subprocess.run(
        [__import__("sys").executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == "False"


@needs_data
def test_arm_settings_reach_the_trainer(env):
    """A constant schedule keeps the peak learning rate after warm-up; W_Q/W_K at a quarter of it
    train in groups of their own, also after a resume from a checkpoint."""
    config = tiny("baseline", lr_schedule="constant", qk_lr_scale=0.25, stop_at=6, save_steps=3)
    record = training.run(config, progress=False)
    assert record["stopped_early"]["learning_rate"] == pytest.approx(config.learning_rate)
    assert record["steps"] == 6 and math.isfinite(record["final"]["validation_loss"])
