"""Everything a notebook shows: figures, text tables and summaries, one submodule per topic
(``lshlib.report.hashing``, ``.attention``, ``.cost``, ``.training``). Every figure goes through
:func:`show`, which saves it under ``figures/`` and displays the saved PNG once."""

from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt
import seaborn as sns
from IPython.display import Image, display
from matplotlib.figure import Figure

from lshlib.paths import figures_dir

# One colour-blind-safe palette (Okabe & Ito), one fixed colour per variant in every figure.
OKABE_ITO = ("#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#F0E442", "#000000")
VARIANT_COLORS: dict[str, str] = {
    "baseline": OKABE_ITO[0],
    "lsh_paper": OKABE_ITO[1],
    "lsh_masked": OKABE_ITO[2],
    "lsh_paper_fixed": OKABE_ITO[3],
    "random_paper": OKABE_ITO[4],
    "random_masked": OKABE_ITO[5],
    "lsh_paper_unmirrored": OKABE_ITO[6],
    "scratch": "#7F7F7F",
    "lsh_bucketed": OKABE_ITO[7],
}


def variant_color(variant: str) -> str:
    """The fixed colour of ``variant`` (grey for one not in :data:`VARIANT_COLORS`)."""
    return VARIANT_COLORS.get(variant, "#999999")


def save_figure(fig: Figure, name: str, scale: str | None = None) -> Path:
    """Save ``fig`` as ``<figures_dir(scale)>/<name>.png`` (150 dpi) and return the path."""
    path = figures_dir(scale) / f"{name}.png"
    fig.savefig(path, dpi=150, bbox_inches="tight")
    return path


def show(fig: Figure, name: str, scale: str | None = None) -> Path:
    """Save ``fig`` (:func:`save_figure`), display the saved PNG once whatever the matplotlib
    backend, close the figure and return the path: the one way a notebook shows a figure."""
    path = save_figure(fig, name, scale)
    plt.close(fig)
    display(Image(filename=str(path)))
    return path


def style() -> None:
    """The study's plot style (seaborn whitegrid, readable sizes), with the colour-blind-safe
    :data:`OKABE_ITO` colours as the default cycle of figures that draw no variant."""
    sns.set_theme(style="whitegrid", context="notebook", palette=list(OKABE_ITO))
    plt.rcParams["figure.dpi"] = 100
