"""Inputs checked at the edge: every numeric RunConfig field within its range, and the
command line of ``python -m lshlib.training`` parsed before torch loads (errors in well under a
second, one line naming the flag or variable), offering every runnable variant."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from lshlib import training
from lshlib.training import RunConfig, cli

ROOT = Path(__file__).resolve().parent.parent

BAD = [
    ("epochs", -1),
    ("epochs", 0),
    ("epochs", float("nan")),
    ("batch_size", 0),
    ("eval_batch_size", -3),
    ("batch_size", 2.5),
    ("learning_rate", 0),
    ("learning_rate", float("inf")),
    ("warmup", -0.1),
    ("warmup", 1.5),
    ("warmup", -2),
    ("weight_decay", -0.01),
    ("mlm_probability", 0),
    ("mlm_probability", 1.0),
    ("logging_steps", 0),
    ("eval_steps", -1),
    ("save_steps", 0),
    ("max_length", 100_000),
    ("max_length", 4),
    ("seed", -5),
    ("seed", 2**32),
    ("max_train", 0),
    ("max_eval", -1),
    ("max_test", 0),
    ("corpus_chars", 0),
    ("doc_stride", 0),
    ("processes", 0),
    ("random_density", "padding"),
]


@pytest.mark.parametrize(("field", "value"), BAD, ids=[f"{f}={v}" for f, v in BAD])
def test_run_config_rejects_out_of_range_values(field, value):
    with pytest.raises(ValueError, match=field):
        RunConfig(task="mlm", variant="baseline", scale="smoke", **{field: value})


def test_run_config_accepts_the_edges():
    for values in (
        {"warmup": 0.0},
        {"warmup": 0.999},
        {"warmup": 500},  # an integer number of steps, as TrainingArguments takes it
        {"max_length": 8},
        {"max_length": 8192},
        {"seed": 0},
        {"seed": 2**32 - 1},
        {"max_train": 1, "max_eval": None},
        {"weight_decay": 0},
    ):
        RunConfig(task="mlm", variant="baseline", scale="smoke", **values)


def test_squad_doc_stride_must_be_below_max_length():
    with pytest.raises(ValueError, match="doc_stride must be below max_length=128"):
        RunConfig(task="squad", variant="scratch", scale="smoke", doc_stride=128)
    RunConfig(task="sst2", variant="scratch", scale="smoke", doc_stride=128)  # unused there


def test_random_density_names_only_the_random_controls():
    with pytest.raises(ValueError, match="random-pairs controls"):
        RunConfig(task="sst2", variant="lsh_paper", scale="smoke", random_density="real_keys")
    old = RunConfig(task="sst2", variant="random_paper", scale="smoke")
    new = RunConfig(task="sst2", variant="random_paper", scale="smoke", random_density="real_keys")
    assert "random_density" not in old.to_dict() and old.name != new.name


def test_cli_offers_every_runnable_variant():
    variants = cli.parser()._option_string_actions["--variant"].choices
    assert set(variants) == {*training.RUN_VARIANTS, "all"}
    assert {"random_paper", "lsh_paper_fixed", "lsh_bucketed"} <= set(variants)
    ns = cli.parse(["--task", "sst2", "--variant", "lsh_paper_unmirrored", "--scale", "smoke"])
    assert cli.runs_of(ns) == [("sst2", "lsh_paper_unmirrored")]
    ns = cli.parse(["--task", "all", "--variant", "scratch", "--scale", "smoke"])
    assert cli.runs_of(ns) == [("sst2", "scratch"), ("squad", "scratch")]


def _cli(args: list[str], **env: str) -> tuple[subprocess.CompletedProcess, float]:
    environ = {**os.environ, "PYTHONPATH": str(ROOT), **env}
    start = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "lshlib.training", *args],
        cwd=ROOT,
        env=environ,
        capture_output=True,
        text=True,
        timeout=120,
    )
    return done, time.perf_counter() - start


CLI_ERRORS = [
    (["--seed", "-5"], {}, "argument --seed: must be an integer in [0, 2**32), got -5"),
    (["--task", "mlm", "--variant", "scratch"], {}, "argument --variant: 'scratch'"),
    (["--variant", "nope"], {}, "argument --variant: invalid choice"),
    ([], {"LSHLIB_SCALE": "huge"}, "LSHLIB_SCALE: unknown scale 'huge'"),
    ([], {"LSHLIB_REUSE": "everything"}, "LSHLIB_REUSE='everything'"),
    ([], {"WORLD_SIZE": "two"}, "WORLD_SIZE='two'"),
    ([], {"LSHLIB_RUNS_DIR": __file__}, "LSHLIB_RUNS_DIR="),
]


@pytest.mark.parametrize(("args", "env", "message"), CLI_ERRORS, ids=[m for *_, m in CLI_ERRORS])
def test_cli_errors_are_one_line_and_fast(args, env, message):
    done, seconds = _cli(args, **env)
    assert done.returncode == 2, done.stderr[-2000:]
    assert message in done.stderr
    assert "Traceback" not in done.stderr
    assert seconds < 3.0  # parsed before torch loads: ~0.2 s; a loaded machine gets slack


def test_cli_front_imports_neither_torch_nor_transformers():
    code = (
        "import sys; sys.argv = ['x']\n"
        "import lshlib.training.cli, lshlib.training.runlock, lshlib.variants\n"
        "print(sorted(m for m in ('torch', 'transformers') if m in sys.modules))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.stdout.strip() == "[]", done.stderr[-2000:]
