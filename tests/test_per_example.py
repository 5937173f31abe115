"""Per-example test scores reproduce the aggregate metrics of the run's record."""

from __future__ import annotations

import numpy as np
import pytest

from lshlib import training
from lshlib.experiments.per_example import example_scores, examples_path

TINY = {
    "hidden_size": 16,
    "num_hidden_layers": 1,
    "num_attention_heads": 2,
    "intermediate_size": 32,
}
SMALL = dict(
    model_overrides=TINY, max_eval=16, batch_size=16, eval_steps=2, save_steps=2, logging_steps=1
)


@pytest.fixture
def env(monkeypatch, tmp_path_factory, tmp_path):
    runs = tmp_path_factory.getbasetemp() / "lshlib-runs"  # shared with test_training
    runs.mkdir(exist_ok=True)
    monkeypatch.setenv("LSHLIB_RUNS_DIR", str(runs))
    monkeypatch.setenv("LSHLIB_RESULTS_DIR", str(tmp_path / "results"))


@pytest.mark.parametrize(
    ("task", "variant", "key", "metric", "scale"),
    [
        ("mlm", "baseline", "correct", "validation_accuracy", 1.0),
        ("sst2", "scratch", "correct", "test_accuracy", 1.0),
        ("squad", "scratch", "f1", "test_f1", 1.0),
        ("squad", "scratch", "exact_match", "test_exact_match", 1.0),
    ],
)
@pytest.mark.needs_data
def test_mean_of_example_scores_is_the_records_metric(env, task, variant, key, metric, scale):
    extra = {"max_train": 32, "max_test": 24} if task != "mlm" else {"max_train": 32}
    if task == "mlm":
        extra.update(corpus_chars=200_000, max_length=32)
    config = training.run_config(task, variant, "smoke", 7, **SMALL, **extra)
    record = training.run(config, progress=False)
    scores = example_scores(config)
    assert scores["run"] == config.name and examples_path(config).is_file()
    assert np.mean(scores[key]) * scale == pytest.approx(record["final"][metric], abs=1e-6)
    assert example_scores(config) == scores  # read back from the cache


def test_missing_model_names_the_run(env):
    config = training.run_config("sst2", "scratch", "smoke", 99, **SMALL)
    with pytest.raises(FileNotFoundError, match=f"{config.name}.*--task sst2"):
        example_scores(config)
