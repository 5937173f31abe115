"""Crash-safe runs: partial checkpoints are skipped and moved aside,
corrupt records and caches are reported and rebuilt, and a resumed run writes the same record
as an uninterrupted one (wall-clock fields aside). Tiny models keep this a few seconds a case."""

from __future__ import annotations

import json
import logging
import shutil

import numpy as np
import pytest
from conftest import tiny_mlm_config

from lshlib import data, safeio, training
from lshlib.bench import attention as bench
from lshlib.training import checkpoints, features


def tiny_config(seed: int = 11, **overrides) -> training.RunConfig:
    return tiny_mlm_config("baseline", seed, **overrides)


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    """One uninterrupted run: its record and a copy of its run folder (checkpoints 4 and 8)."""
    runs = tmp_path_factory.getbasetemp() / "lshlib-runs"  # shared with test_data/test_training
    runs.mkdir(exist_ok=True)
    results = tmp_path_factory.mktemp("results")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("LSHLIB_RUNS_DIR", str(runs))
        mp.setenv("LSHLIB_RESULTS_DIR", str(results))
        config = tiny_config()
        shutil.rmtree(training.run_dir(config), ignore_errors=True)
        record = training.run(config, progress=False)
        snapshot = tmp_path_factory.mktemp("snapshot") / "run"
        shutil.copytree(training.run_dir(config), snapshot)
    assert record["status"] == "finished" and record["steps"] == 8
    return config, record, snapshot, runs, results


@pytest.fixture
def restored(finished, monkeypatch):
    """The finished run's folder restored, its record deleted: a rerun must resume."""
    config, record, snapshot, runs, results = finished
    monkeypatch.setenv("LSHLIB_RUNS_DIR", str(runs))
    monkeypatch.setenv("LSHLIB_RESULTS_DIR", str(results))
    out = training.run_dir(config)
    shutil.rmtree(out, ignore_errors=True)
    shutil.copytree(snapshot, out)
    training.results_path(config.scale, config.name).unlink(missing_ok=True)
    return config, record, out


def truncate(path, keep: float = 0.5) -> None:
    path.write_bytes(path.read_bytes()[: int(path.stat().st_size * keep)])


DAMAGE = {
    "emptied folder": lambda f: [p.unlink() for p in f.iterdir()],
    "truncated weights": lambda f: truncate(f / "model.safetensors"),
    "truncated optimizer": lambda f: truncate(f / "optimizer.pt"),
    "missing scheduler": lambda f: (f / "scheduler.pt").unlink(),
    "truncated rng state": lambda f: truncate(f / "rng_state.pth"),
    "truncated trainer state": lambda f: truncate(f / "trainer_state.json"),
    "truncated clock": lambda f: truncate(f / checkpoints.CLOCK_FILE),
    "no clock": lambda f: (f / checkpoints.CLOCK_FILE).unlink(),
}


@pytest.mark.needs_data
@pytest.mark.parametrize("damage", list(DAMAGE))
def test_damaged_checkpoint_is_invalid(finished, tmp_path, damage):
    folder = tmp_path / "checkpoint-8"
    shutil.copytree(finished[2] / "checkpoint-8", folder)
    DAMAGE[damage](folder)
    assert checkpoints.checkpoint_problem(folder) is not None
    assert checkpoints.newest_valid_checkpoint(tmp_path) is None
    assert [p.name.startswith("corrupt-checkpoint-8.") for p in tmp_path.iterdir()] == [True]


@pytest.mark.needs_data
def test_valid_checkpoints_pass(finished, tmp_path):
    snapshot = finished[2]
    for step in (4, 8):
        assert checkpoints.checkpoint_problem(snapshot / f"checkpoint-{step}") is None
    shutil.copytree(snapshot, tmp_path / "run")
    DAMAGE["missing scheduler"](tmp_path / "run" / "checkpoint-8")
    assert (
        checkpoints.newest_valid_checkpoint(tmp_path / "run") == tmp_path / "run" / "checkpoint-4"
    )


# A full rerun for the three cases (the other damages differ only in the check above).
@pytest.mark.needs_data
@pytest.mark.parametrize("damage", ["emptied folder", "truncated optimizer", "missing scheduler"])
def test_partial_checkpoint_is_skipped_and_moved_aside(restored, caplog, damage):
    config, full, out = restored
    DAMAGE[damage](out / "checkpoint-8")
    with caplog.at_level(logging.WARNING):
        again = training.run(config, progress=False)
    assert str(out / "checkpoint-8") in caplog.text  # reported with its path
    assert "corrupt-checkpoint-8." in caplog.text  # moved aside, then removed once the resumed
    assert not [p for p in out.iterdir() if p.name.startswith("corrupt-")]  # run saved step 8
    assert checkpoints.without_wall_clock(again) == checkpoints.without_wall_clock(
        full
    )  # resumed from checkpoint-4


@pytest.mark.needs_data
@pytest.mark.parametrize("content", ["", '{"name": "mlm', "[]", "null", '{"name": "x"}'])
def test_corrupt_record_is_moved_aside(restored, caplog, content):
    config = restored[0]
    path = training.results_path(config.scale, config.name)
    path.write_text(content)
    before = len(list(path.parent.glob(f"{path.name}.corrupt-*")))
    with caplog.at_level(logging.WARNING):
        assert training.load_record(config, quarantine=True) is None  # the training path
    assert str(path) in caplog.text and not path.exists()
    assert len(list(path.parent.glob(f"{path.name}.corrupt-*"))) == before + 1


@pytest.mark.needs_data
@pytest.mark.parametrize("content", ['{"name": "mlm', "null"])
def test_corrupt_record_run_is_resumed(restored, caplog, content):
    config, full, out = restored
    path = training.results_path(config.scale, config.name)
    path.write_text(content)
    with caplog.at_level(logging.WARNING):
        again = training.run(config, progress=False)
    assert str(path) in caplog.text
    assert checkpoints.without_wall_clock(again) == checkpoints.without_wall_clock(
        full
    )  # resumed from checkpoint-8
    assert json.loads(path.read_text()) == again


@pytest.mark.needs_data
def test_train_loss_mean_covers_every_step(finished):
    record = finished[1]
    losses = [p["loss"] for p in record["curves"]["train"]]  # logging_steps=1: one per step
    assert len(losses) == 8
    assert record["final"]["train_loss_mean"] == pytest.approx(np.mean(losses), rel=1e-12)


def test_train_loss_mean_of_a_log_history():
    logs = [{"step": 1, "loss": 4.0}, {"step": 3, "loss": 2.0}, {"eval_loss": 9.0, "step": 3}]
    # steps 1..3 logged (4 + 2 * 2 = 8); steps 4..5 only in the session mean (1.5 over 1..5)
    assert checkpoints.train_loss_mean(logs, 1.5, 0, 5) == pytest.approx((8 + 7.5 - 8) / 5)
    # resumed at step 3 from a checkpoint, session of steps 4..5 with mean 1.0
    assert checkpoints.train_loss_mean(logs, 1.0, 3, 5) == pytest.approx((8 + 2) / 5)
    # resumed from the final checkpoint: no step in this session (Trainer reports 0.0)
    assert checkpoints.train_loss_mean(logs, 0.0, 3, 3) == pytest.approx(8 / 3)


@pytest.mark.needs_data
def test_record_is_written_atomically(restored, monkeypatch):
    config, _, _ = restored

    def disk_full(fd):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(safeio.os, "fsync", disk_full)
    with pytest.raises(OSError, match="No space"):
        training.run(config, progress=False)
    path = training.results_path(config.scale, config.name)
    left = [p.name for p in path.parent.iterdir() if ".corrupt-" not in p.name]
    assert left == []  # neither a partial record nor a temporary file


@pytest.mark.needs_data
def test_corrupt_corpus_cache_is_rebuilt(finished, monkeypatch, caplog):
    runs = finished[3]
    monkeypatch.setenv("LSHLIB_RUNS_DIR", str(runs))
    tokenizer = data.get_tokenizer("smoke")
    ids = features.corpus_ids(tokenizer, "eval", None)
    cached = list((runs / "cache").glob("corpus-eval-*.npy"))
    assert len(cached) == 1
    truncate(cached[0])
    with caplog.at_level(logging.WARNING):
        again = features.corpus_ids(tokenizer, "eval", None)
    assert str(cached[0]) in caplog.text
    assert np.array_equal(again, ids)
    assert np.array_equal(np.load(cached[0]), ids)  # rewritten whole


def test_a_corrupt_or_missing_benchmark_record_fails_naming_make_bench_and_is_left_alone(
    monkeypatch, tmp_path
):
    monkeypatch.setenv("LSHLIB_RESULTS_DIR", str(tmp_path))
    path = bench.bench_path("laptop")
    monkeypatch.setattr(bench, "run", lambda quick: pytest.fail("no benchmark may start"))
    with pytest.raises(safeio.DerivedFileError, match="is missing; make bench"):
        bench.load_or_run("laptop")
    path.write_text('{"rows": [')
    with pytest.raises(safeio.DerivedFileError, match="not valid JSON.*make bench"):
        bench.load_or_run("laptop")
    assert path.read_text() == '{"rows": ['  # not moved, not rewritten
