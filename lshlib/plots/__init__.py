"""Every figure the study draws. One submodule per notebook topic
(``lshlib.plots.hashing``, ``.attention``, ``.cost``, ``.training``); shared helpers here."""

from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt
from matplotlib.figure import Figure

from lshlib.paths import figures_dir


def save_figure(fig: Figure, name: str, scale: str | None = None) -> Path:
    """Save ``fig`` as ``<figures_dir(scale)>/<name>.png`` (150 dpi) and return the path."""
    path = figures_dir(scale) / f"{name}.png"
    fig.savefig(path, dpi=150, bbox_inches="tight")
    return path


def style() -> None:
    """The study's plot style (seaborn whitegrid, readable sizes)."""
    import seaborn as sns

    sns.set_theme(style="whitegrid", context="notebook")
    plt.rcParams["figure.dpi"] = 100
