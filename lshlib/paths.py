"""Where things live: data (``$LSHLIB_DATA_DIR``), results, figures and the run cache.

The one results layout: every record of a scale, benchmarks included, goes under
``results/<scale>/`` (``results/laptop/attention_bench.json``,
``results/laptop/mlm-baseline-s42-<key>.json``); a run on another device kind goes under
``results/<scale>-<device>/`` (``results/laptop-cuda/``). Figures of the laptop scale sit
directly under ``figures/`` (the README shows them); other scales write to
``figures/<scale>/`` so a smoke test never overwrites them. Checkpoints and caches live under
``runs/`` and are never committed.

Every folder variable (``LSHLIB_DATA_DIR``, ``LSHLIB_RESULTS_DIR``, ``LSHLIB_FIGURES_DIR``,
``LSHLIB_RUNS_DIR``) is read by :func:`env_dir` alone, so all of them follow one rule: empty or
blank means unset (the default folder), ``~`` is expanded, relative paths are taken from the
current folder once and made absolute, and a path naming an existing file is an error.
"""

from __future__ import annotations

import os
from pathlib import Path

from lshlib.scales import get_scale

REPO_ROOT = Path(__file__).resolve().parent.parent
DATA_ENV_VAR = "LSHLIB_DATA_DIR"
RESULTS_ENV_VAR = "LSHLIB_RESULTS_DIR"
FIGURES_ENV_VAR = "LSHLIB_FIGURES_DIR"
RUNS_ENV_VAR = "LSHLIB_RUNS_DIR"
DIR_ENV_VARS: tuple[str, ...] = (DATA_ENV_VAR, RESULTS_ENV_VAR, FIGURES_ENV_VAR, RUNS_ENV_VAR)


def env_dir(var: str, default: Path) -> Path:
    """The folder named by environment variable ``var``, else ``default`` (absolute path).

    Empty or blank counts as unset (``LSHLIB_RUNS_DIR=""`` must not mean "the current folder"),
    ``~`` is expanded (a literal ``./~`` folder is never created). Raises ``NotADirectoryError``
    naming the variable when the path exists and is not a folder.
    """
    value = os.environ.get(var, "").strip()
    path = Path(value).expanduser() if value else Path(default)
    path = path.resolve()
    if path.exists() and not path.is_dir():
        source = f"{var}={value!r}" if value else f"the default of {var}"
        raise NotADirectoryError(
            f"{source} points at {path}, which is a file, not a folder; set {var} to a folder "
            "(created if missing) or unset it to use the default"
        )
    return path


def data_dir() -> Path:
    """The local dataset folder (``$LSHLIB_DATA_DIR``, else ``data/local`` in the repo)."""
    return env_dir(DATA_ENV_VAR, REPO_ROOT / "data" / "local")


def results_base() -> Path:
    """The results root (``$LSHLIB_RESULTS_DIR``, else ``results/``), not created."""
    return env_dir(RESULTS_ENV_VAR, REPO_ROOT / "results")


def figures_base() -> Path:
    """The figures root (``$LSHLIB_FIGURES_DIR``, else ``figures/``), not created."""
    return env_dir(FIGURES_ENV_VAR, REPO_ROOT / "figures")


def device_kind() -> str:
    """``cuda`` when a GPU is visible, else ``cpu``: the device runs and benchmarks use."""
    import torch  # here, not at the top: the command line checks folders before torch loads

    return "cuda" if torch.cuda.is_available() else "cpu"


def figures_dir(scale: str | None = None) -> Path:
    """``figures/`` at the laptop scale, ``figures/<scale>/`` otherwise (created if missing)."""
    s = get_scale(scale)
    path = figures_base() if s == "laptop" else figures_base() / s
    path.mkdir(parents=True, exist_ok=True)
    return path


def results_dir(scale: str | None = None, device: str | None = None, create: bool = True) -> Path:
    """``results/<scale>/`` for CPU records, ``results/<scale>-<device>/`` for another device
    kind (``device`` defaults to :func:`device_kind`); created if missing, unless ``create`` is
    false (readers: they never write)."""
    s = get_scale(scale)
    kind = device or device_kind()
    path = results_base() / (s if kind == "cpu" else f"{s}-{kind}")
    if create:
        path.mkdir(parents=True, exist_ok=True)
    return path


def runs_dir() -> Path:
    """Checkpoints and run caches (``$LSHLIB_RUNS_DIR``, else ``runs/``; never committed)."""
    path = env_dir(RUNS_ENV_VAR, REPO_ROOT / "runs")
    path.mkdir(parents=True, exist_ok=True)
    return path
