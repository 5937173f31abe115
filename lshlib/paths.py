"""Where things live: data (``$LSHLIB_DATA_DIR``), results, figures and the run cache.

Committed results and figures come from the default ``laptop`` scale and sit directly under
``results/`` and ``figures/``; other scales write to ``results/<scale>/`` and
``figures/<scale>/`` so a smoke test never overwrites what the README shows. Training runs keep
their own ``results/<scale>/`` files (issue: one JSON per run) and checkpoints under ``runs/``.
"""

from __future__ import annotations

import os
from pathlib import Path

from lshlib.scales import get_scale

REPO_ROOT = Path(__file__).resolve().parent.parent
DATA_ENV_VAR = "LSHLIB_DATA_DIR"


def data_dir() -> Path:
    """The local dataset folder (``$LSHLIB_DATA_DIR``, else ``data/local`` in the repo)."""
    value = os.environ.get(DATA_ENV_VAR, "").strip()
    return Path(value).expanduser().resolve() if value else REPO_ROOT / "data" / "local"


def _scaled(base: Path, scale: str | None) -> Path:
    s = get_scale(scale)
    path = base if s == "laptop" else base / s
    path.mkdir(parents=True, exist_ok=True)
    return path


def figures_dir(scale: str | None = None) -> Path:
    """``figures/`` at the laptop scale, ``figures/<scale>/`` otherwise (created if missing)."""
    return _scaled(Path(os.environ.get("LSHLIB_FIGURES_DIR", REPO_ROOT / "figures")), scale)


def results_dir(scale: str | None = None) -> Path:
    """``results/`` at the laptop scale, ``results/<scale>/`` otherwise (created if missing)."""
    return _scaled(Path(os.environ.get("LSHLIB_RESULTS_DIR", REPO_ROOT / "results")), scale)


def runs_dir() -> Path:
    """Checkpoints and run caches (``$LSHLIB_RUNS_DIR``, else ``runs/``; never committed)."""
    path = Path(os.environ.get("LSHLIB_RUNS_DIR", REPO_ROOT / "runs"))
    path.mkdir(parents=True, exist_ok=True)
    return path
