"""Where things live: data (``$LSHLIB_DATA_DIR``), results, figures and the run cache.

The one results layout: every record of a scale, benchmarks included, goes under
``results/<scale>/`` (``results/laptop/attention_bench.json``,
``results/laptop/mlm-baseline-s42-<key>.json``); a run on another device kind goes under
``results/<scale>-<device>/`` (``results/laptop-cuda/``). Figures of the laptop scale sit
directly under ``figures/`` (the README shows them); other scales write to
``figures/<scale>/`` so a smoke test never overwrites them. Checkpoints and caches live under
``runs/`` and are never committed.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch

from lshlib.scales import get_scale

REPO_ROOT = Path(__file__).resolve().parent.parent
DATA_ENV_VAR = "LSHLIB_DATA_DIR"


def data_dir() -> Path:
    """The local dataset folder (``$LSHLIB_DATA_DIR``, else ``data/local`` in the repo)."""
    value = os.environ.get(DATA_ENV_VAR, "").strip()
    return Path(value).expanduser().resolve() if value else REPO_ROOT / "data" / "local"


def device_kind() -> str:
    """``cuda`` when a GPU is visible, else ``cpu``: the device runs and benchmarks use."""
    return "cuda" if torch.cuda.is_available() else "cpu"


def figures_dir(scale: str | None = None) -> Path:
    """``figures/`` at the laptop scale, ``figures/<scale>/`` otherwise (created if missing)."""
    s = get_scale(scale)
    base = Path(os.environ.get("LSHLIB_FIGURES_DIR", REPO_ROOT / "figures"))
    path = base if s == "laptop" else base / s
    path.mkdir(parents=True, exist_ok=True)
    return path


def results_dir(scale: str | None = None, device: str | None = None) -> Path:
    """``results/<scale>/`` for CPU records, ``results/<scale>-<device>/`` for another device
    kind (``device`` defaults to :func:`device_kind`); created if missing."""
    s = get_scale(scale)
    kind = device or device_kind()
    base = Path(os.environ.get("LSHLIB_RESULTS_DIR", REPO_ROOT / "results"))
    path = base / (s if kind == "cpu" else f"{s}-{kind}")
    path.mkdir(parents=True, exist_ok=True)
    return path


def runs_dir() -> Path:
    """Checkpoints and run caches (``$LSHLIB_RUNS_DIR``, else ``runs/``; never committed)."""
    path = Path(os.environ.get("LSHLIB_RUNS_DIR", REPO_ROOT / "runs"))
    path.mkdir(parents=True, exist_ok=True)
    return path
