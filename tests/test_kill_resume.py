"""Integration (slow): SIGKILL a real smoke-scale training process in the middle of writing a
checkpoint, rerun it, and get the uninterrupted run's record.

The kill point is deterministic: the child process wraps the Trainer's optimizer save so that,
at ``checkpoint-<KILL_AT>``, once the weights are on disk, ``optimizer.pt`` is left half written
and the process sends itself SIGKILL (no handler, no cleanup runs). ``make test`` runs this;
plain ``pytest`` deselects it (``-m "not slow"`` in pyproject.toml).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from lshlib import training
from lshlib.paths import data_dir
from lshlib.training import checkpoints

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not (data_dir() / "corpus").is_dir(), reason="shared data not available"),
]

ROOT = Path(__file__).resolve().parent.parent
SEED = 5
CHILD = textwrap.dedent(
    """
    import json, os, signal, sys
    from transformers import Trainer
    from lshlib import training

    kill_at = int(os.environ.get("KILL_AT", "0"))
    original = Trainer._save_optimizer_and_scheduler

    def save_then_die(self, output_dir):
        original(self, output_dir)
        if kill_at and os.path.basename(output_dir) == f"checkpoint-{kill_at}":
            path = os.path.join(output_dir, "optimizer.pt")
            with open(path, "r+b") as f:  # as if killed while the file was being written
                f.truncate(os.path.getsize(path) // 2)
            os.kill(os.getpid(), signal.SIGKILL)

    Trainer._save_optimizer_and_scheduler = save_then_die
    config = training.run_config("mlm", "baseline", "smoke", int(sys.argv[1]))
    record = training.run(config, progress=False)
    print("RECORD", json.dumps(record, default=float))
    """
)


def child(env: dict, kill_at: int = 0) -> subprocess.CompletedProcess:
    env = {**env, "KILL_AT": str(kill_at)}
    return subprocess.run(
        [sys.executable, "-c", CHILD, str(SEED)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )


def record_of(done: subprocess.CompletedProcess) -> dict:
    assert done.returncode == 0, done.stderr[-3000:]
    line = next(x for x in done.stdout.splitlines() if x.startswith("RECORD "))
    return json.loads(line[len("RECORD ") :])


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    """Environment of the child processes, and the record of an uninterrupted run."""
    base = tmp_path_factory.mktemp("kill")
    env = {
        **os.environ,
        "LSHLIB_RUNS_DIR": str(base / "runs"),
        "LSHLIB_RESULTS_DIR": str(base / "results"),
        "LSHLIB_SCALE": "smoke",
        "HF_HUB_OFFLINE": "1",
        "PYTHONPATH": str(ROOT),
    }
    full = record_of(child(env))
    assert full["status"] == "finished" and full["steps"] == 8
    return env, full


@pytest.mark.parametrize("kill_at", [8, 4])
def test_sigkill_during_checkpoint_write_then_rerun(setup, monkeypatch, kill_at):
    env, full = setup
    for var in ("LSHLIB_RUNS_DIR", "LSHLIB_RESULTS_DIR", "LSHLIB_SCALE"):
        monkeypatch.setenv(var, env[var])
    config = training.run_config("mlm", "baseline", "smoke", SEED)
    out = training.run_dir(config)
    record_path = training.results_path(config.scale, config.name)
    shutil.rmtree(out, ignore_errors=True)
    record_path.unlink(missing_ok=True)

    killed = child(env, kill_at)
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-3000:]
    partial = out / f"checkpoint-{kill_at}"
    assert partial.is_dir() and not record_path.exists()
    assert checkpoints.checkpoint_problem(partial) is not None  # optimizer.pt cut, rest missing

    rerun = child(env)
    again = record_of(rerun)
    assert f"{partial} is corrupt" in rerun.stderr  # reported with its path
    assert f"corrupt-checkpoint-{kill_at}." in rerun.stderr  # moved aside, and removed once a
    assert not any(p.name.startswith("corrupt-") for p in out.iterdir())  # later one is valid
    assert again["status"] == "finished"
    assert checkpoints.without_wall_clock(again) == checkpoints.without_wall_clock(full)
    assert json.loads(record_path.read_text()) == again
