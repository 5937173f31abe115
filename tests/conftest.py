"""What many test files share: the tiny BERT that trains in seconds, the paper's hash setting,
and the ``needs_data`` mark for the tests that read the shared datasets (``LSHLIB_DATA_DIR``);
every other test runs without them."""

from __future__ import annotations

import pytest

from lshlib import training
from lshlib.paths import data_dir

# BertConfig fields of a BERT small enough to train a few steps in a test (RunConfig's
# model_overrides, or keyword arguments of lshlib.modeling.build_model).
TINY_MODEL = {
    "hidden_size": 16,
    "num_hidden_layers": 1,
    "num_attention_heads": 2,
    "intermediate_size": 32,
}
PAPER_SETTING = (2, 1, 256)  # (bits, tables, table_size) of the paper

# A smoke-scale MLM run of TINY_MODEL that trains, evaluates and checkpoints every few steps.
TINY_RUN = {
    "max_length": 32,
    "max_train": 64,
    "max_eval": 8,
    "corpus_chars": 200_000,
    "batch_size": 8,
    "eval_batch_size": 8,
    "logging_steps": 1,
    "eval_steps": 4,
    "save_steps": 4,
    "model_overrides": TINY_MODEL,
}


def tiny_mlm_config(variant: str, seed: int, **overrides) -> training.RunConfig:
    """The smoke-scale MLM :data:`TINY_RUN` of ``variant`` and ``seed``, with ``overrides``."""
    return training.run_config("mlm", variant, "smoke", seed, **{**TINY_RUN, **overrides})


def have_data() -> bool:
    """Whether the shared datasets are where ``LSHLIB_DATA_DIR`` points."""
    root = data_dir()
    return all((root / name).is_dir() for name in ("corpus", "sst2", "squad"))


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "needs_data: reads the shared datasets (LSHLIB_DATA_DIR)")


def pytest_runtest_setup(item: pytest.Item) -> None:
    if item.get_closest_marker("needs_data") and not have_data():
        pytest.skip("needs the shared datasets (set LSHLIB_DATA_DIR)")


@pytest.fixture
def tiny_model() -> dict[str, int]:
    """A fresh copy of :data:`TINY_MODEL`."""
    return dict(TINY_MODEL)
