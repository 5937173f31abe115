"""Runs: configuration keys, reuse, same-seed determinism, and resume after an interruption.
Tiny models (hidden 16, one layer) on a few dozen MLM blocks keep this fast."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import TINY_MODEL, tiny_mlm_config
from transformers import TrainerCallback

from lshlib import training
from lshlib.training import checkpoints


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """One runs folder per module (the smoke tokenizer is trained once there)."""
    path = tmp_path_factory.getbasetemp() / "lshlib-runs"  # shared with test_data
    path.mkdir(exist_ok=True)
    return path


@pytest.fixture
def env(monkeypatch, runs, tmp_path):
    monkeypatch.setenv("LSHLIB_RUNS_DIR", str(runs))
    monkeypatch.setenv("LSHLIB_RESULTS_DIR", str(tmp_path / "results"))
    return tmp_path


def tiny_config(variant: str = "baseline", seed: int = 42, **overrides) -> training.RunConfig:
    return tiny_mlm_config(variant, seed, **overrides)


class StopAfter(TrainerCallback):
    """Simulates an interruption: stop training after ``steps`` optimizer steps."""

    def __init__(self, steps: int):
        self.steps = steps

    def on_step_end(self, args, state, control, **kwargs):
        if state.global_step >= self.steps:
            control.should_training_stop = True


def _fresh(config: training.RunConfig) -> None:
    shutil.rmtree(training.run_dir(config), ignore_errors=True)
    training.results_path(config.scale, config.name).unlink(missing_ok=True)


def test_config_names():
    a, b = tiny_config(seed=1), tiny_config(seed=2)
    assert a.name != b.name and a.name == tiny_config(seed=1).name
    assert a.name.startswith("mlm-baseline-s1-")
    ft = training.run_config("sst2", "lsh_paper", "smoke", 1, model_overrides=TINY_MODEL)
    assert (
        ft.pretrained
        == training.run_config("mlm", "lsh_paper", "smoke", 1, model_overrides=TINY_MODEL).name
    )
    with pytest.raises(ValueError, match="unknown task"):
        training.run_config("glue", "baseline", "smoke")
    with pytest.raises(ValueError, match="variant"):
        tiny_config(variant="reformer")


@pytest.mark.needs_data
def test_same_seed_same_losses_and_reuse(env):
    config = tiny_config()
    first = training.run(config, progress=False)
    assert first["status"] == "finished" and first["steps"] == 8
    path = training.results_path("smoke", config.name)
    saved = json.loads(path.read_text())
    assert saved["config"] == config.to_dict()
    assert {"curves", "final", "train_seconds", "tokens_per_second", "device", "versions"} <= set(
        saved
    )
    assert 0.0 <= saved["final"]["validation_accuracy"] <= 1.0
    assert training.run(config, progress=False) == saved  # reused, not retrained
    _fresh(config)
    second = training.run(config, progress=False)
    assert [p["loss"] for p in second["curves"]["train"]] == [
        p["loss"] for p in first["curves"]["train"]
    ]
    assert second["final"]["validation_loss"] == first["final"]["validation_loss"]


@pytest.mark.needs_data
def test_interrupted_run_resumes_without_losing_steps(env):
    config = tiny_config(seed=7)
    full = training.run(config, progress=False)
    _fresh(config)
    stopped = training.run(config, callbacks=[StopAfter(4)], progress=False)
    assert stopped["status"] == "interrupted" and stopped["step"] == 4
    assert not training.results_path("smoke", config.name).exists()
    assert (training.run_dir(config) / "checkpoint-4").is_dir()
    resumed = training.run(config, progress=False)
    assert resumed["status"] == "finished"
    assert resumed["steps"] == full["steps"] == 8
    assert [p["step"] for p in resumed["curves"]["train"]] == list(range(1, 9))
    assert [p["loss"] for p in resumed["curves"]["train"]] == pytest.approx(
        [p["loss"] for p in full["curves"]["train"]], rel=1e-5
    )
    assert resumed["final"]["validation_loss"] == pytest.approx(
        full["final"]["validation_loss"], rel=1e-5
    )
    # a resumed run: the whole record agrees, wall-clock fields aside (train_loss_mean too)
    assert resumed["final"]["train_loss_mean"] == full["final"]["train_loss_mean"]
    assert checkpoints.without_wall_clock(resumed) == checkpoints.without_wall_clock(full)


@pytest.mark.needs_data
def test_finetune_from_pretrained(env):
    config = training.run_config(
        "sst2",
        "lsh_masked",
        "smoke",
        3,
        model_overrides=TINY_MODEL,
        max_train=32,
        max_eval=16,
        max_test=16,
        batch_size=16,
        eval_steps=2,
        save_steps=2,
        logging_steps=1,
    )
    mlm = training.run_config("mlm", "lsh_masked", "smoke", 3, model_overrides=TINY_MODEL)
    # a fine-tuning call never starts a pretraining run silently: it names the run to make
    with pytest.raises(training.MissingRunError, match=f"{mlm.name}.*--task mlm"):
        training.run(config, progress=False)
    assert training.load_record(mlm) is None
    record = training.run(config, progress=False, chain=True)
    assert record["status"] == "finished" and record["steps"] == 2
    assert 0.0 <= record["final"]["test_accuracy"] <= 1.0
    assert training.load_record(mlm) is not None  # chain=True made the pretraining run first


@pytest.mark.needs_data
def test_chain_makes_another_variants_pretraining_even_when_only_its_record_is_left(env):
    """A control fine-tuned from the baseline's checkpoint of another seed (the verdict's
    plan) chains that run; a record whose model was deleted is retrained, not trusted."""
    mlm = training.run_config("mlm", "baseline", "smoke", 4, model_overrides=TINY_MODEL)
    config = training.run_config(
        "sst2",
        "random_masked",
        "smoke",
        9,
        model_overrides=TINY_MODEL,
        pretrained=mlm,
        max_train=32,
        max_eval=16,
        max_test=16,
        batch_size=16,
        eval_steps=2,
        save_steps=2,
    )
    assert training.run(config, progress=False, chain=True)["status"] == "finished"
    final = training.run_dir(mlm) / "final"
    assert (final / "config.json").is_file()
    shutil.rmtree(final)
    assert training.load_record(mlm) is not None  # the record survives, the model does not
    assert training.pretrained_model_dir(config, chain=True) == final
    assert (final / "config.json").is_file()


@pytest.mark.needs_data
def test_scratch_control_finetunes_from_random_weights(env):
    config = training.run_config(
        "sst2",
        "scratch",
        "smoke",
        5,
        model_overrides=TINY_MODEL,
        max_train=32,
        max_eval=16,
        max_test=16,
        batch_size=16,
        eval_steps=2,
        save_steps=2,
        logging_steps=1,
    )
    assert config.pretrained is None
    record = training.run(config, progress=False)  # needs no pretraining run
    assert record["status"] == "finished" and record["steps"] == 2
    assert 0.0 <= record["final"]["test_accuracy"] <= 1.0
    assert record["stages"]["evaluations"] == 1 and record["stages"]["saves"] == 1
    with pytest.raises(ValueError, match="scratch"):
        training.run_config("mlm", "scratch", "smoke")
    with pytest.raises(ValueError, match="random weights"):
        training.run_config("squad", "scratch", "smoke", pretrained="mlm-baseline-s1-x")


@pytest.mark.needs_data
def test_reuse_runs_mode_recomputes_records_without_a_local_model(env, monkeypatch):
    config = tiny_config(seed=11, max_train=16)
    first = training.run(config, progress=False)
    monkeypatch.setenv("LSHLIB_REUSE", "runs")
    assert training.load_record(config) == first  # the final model is in runs/: reused
    shutil.rmtree(training.run_dir(config))  # a fresh clone: committed record, no run cache
    assert training.load_record(config) is None
    monkeypatch.setenv("LSHLIB_REUSE", "everything")
    with pytest.raises(ValueError, match="LSHLIB_REUSE"):
        training.load_record(config)


@pytest.mark.slow
def test_two_process_data_parallel_run(env, tmp_path):
    """torchrun with 2 CPU processes (gloo): half the steps at the same per-process batch, one
    record, and the result of a 1-process run with the same global batch."""
    worker = Path(__file__).with_name("ddp_worker.py")
    launch = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node"]
    environ = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(worker.parent.parent)}
    done = subprocess.run(
        [*launch, "2", str(worker), "8"], env=environ, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr[-3000:]
    records = list((tmp_path / "results" / "smoke").glob("mlm-baseline-*.json"))
    assert len(records) == 1  # written once, by the main process
    parallel = json.loads(records[0].read_text())
    assert parallel["config"]["processes"] == 2 and parallel["config"]["batch_size"] == 8
    single8 = subprocess.run(
        [sys.executable, str(worker), "8"], env=environ, capture_output=True, text=True
    )
    single16 = subprocess.run(
        [sys.executable, str(worker), "16"], env=environ, capture_output=True, text=True
    )
    steps8 = json.loads(single8.stdout.strip().splitlines()[-1])["steps"]
    ref = json.loads(single16.stdout.strip().splitlines()[-1])
    assert parallel["steps"] == steps8 // 2 == ref["steps"] == 4
    reference = json.loads((tmp_path / "results" / "smoke" / f"{ref['name']}.json").read_text())
    # Same blocks per optimizer step; masks differ (drawn per 8- vs 16-block batch): tolerance.
    assert parallel["final"]["validation_loss"] == pytest.approx(
        reference["final"]["validation_loss"], abs=0.05
    )


@pytest.mark.needs_data
def test_a_reused_run_says_so_in_one_line(env, capfd):
    config = tiny_config(seed=21, max_train=16)
    minutes = training.run(config, progress=False)["train_seconds"] / 60  # load decides it
    capfd.readouterr()
    training.run(config, progress=True)
    err = capfd.readouterr().err.strip().splitlines()
    assert err == [
        f"{config.name}: finished earlier, record read (2 steps, {minutes:.1f} min of training "
        "on cpu)"
    ]
