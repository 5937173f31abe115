"""One writer per run: a run's lock file makes a second process wait for (or, with a
timeout, stop naming) the holder's PID, and a killed holder's lock is taken over at once."""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from lshlib import training
from lshlib.paths import REPO_ROOT
from lshlib.training import RunConfig, runlock, runs
from lshlib.training.runlock import RunLockedError

BASELINE = REPO_ROOT / "results" / "laptop" / "mlm-baseline-s42-eb511f9d.json"

HOLDER = """
import sys, time
from pathlib import Path
from lshlib.training import runlock
with runlock.hold(sys.argv[1], "run x"):
    print("held", flush=True)
    seconds = float(sys.argv[2])
    time.sleep(seconds)
    if len(sys.argv) > 3:  # what a finished run leaves: its record
        Path(sys.argv[3]).write_text(Path(sys.argv[4]).read_text())
"""


def holder(lock: Path, seconds: float, *record: Path) -> subprocess.Popen:
    """A separate process holding ``lock`` for ``seconds`` (light: imports no torch)."""
    proc = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(lock), str(seconds), *map(str, record)],
        env={**os.environ, "PYTHONPATH": str(REPO_ROOT)},
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout.readline().strip() == "held"
    return proc


@pytest.fixture
def config(tmp_path, monkeypatch) -> RunConfig:
    monkeypatch.setenv("LSHLIB_RUNS_DIR", str(tmp_path / "runs"))
    monkeypatch.setenv("LSHLIB_RESULTS_DIR", str(tmp_path / "results"))
    monkeypatch.delenv("RANK", raising=False)
    return RunConfig(**json.loads(BASELINE.read_text())["config"])


def test_second_process_is_told_the_holders_pid(config):
    proc = holder(training.lock_path(config), 60)
    try:
        with pytest.raises(RunLockedError, match=f"being trained by PID {proc.pid} on "):
            with training.run_lock(config, timeout=0):
                pass
        with pytest.raises(RunLockedError, match=f"PID {proc.pid}.*still held after 0.5 s"):
            with training.run_lock(config, timeout=0.5):
                pass
    finally:
        proc.kill()
        proc.wait()


def test_lock_of_a_killed_process_is_taken_over(config):
    lock = training.lock_path(config)
    proc = holder(lock, 60)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert lock.exists()  # left behind, stale
    start = time.perf_counter()
    with training.run_lock(config, timeout=0):
        assert runlock.holder(lock).startswith(f"PID {os.getpid()} ")
    assert time.perf_counter() - start < 1.0


def test_holder_pid_is_written_and_threads_exclude_each_other(config):
    errors = []
    with training.run_lock(config):
        assert runlock.holder(training.lock_path(config)).startswith(f"PID {os.getpid()} ")

        def contend():
            try:
                with training.run_lock(config, timeout=0):
                    pass
            except RunLockedError as err:
                errors.append(str(err))

        thread = threading.Thread(target=contend)
        thread.start()
        thread.join()
    assert len(errors) == 1 and f"PID {os.getpid()}" in errors[0]


def test_run_waits_for_the_holder_and_reuses_its_record(config, monkeypatch, caplog):
    """A second `run` of a run being trained elsewhere waits, then reads the record the holder
    wrote, instead of training the run a second time."""

    def train(*args, **kwargs):
        raise AssertionError("trained a run another process was training")

    monkeypatch.setattr(runs, "_train", train)
    target = training.results_path(config.scale, config.name)
    proc = holder(training.lock_path(config), 2, target, BASELINE)
    try:
        with caplog.at_level(logging.WARNING, logger="lshlib.training.runlock"):
            record = training.run(config, progress=False)
    finally:
        proc.kill()
        proc.wait()
    assert f"being trained by PID {proc.pid}" in caplog.text and "waiting" in caplog.text
    assert record == json.loads(BASELINE.read_text())
