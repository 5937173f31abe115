"""The hashing explorer: sliders for bits, tables and table_size (and the hash seed) that redraw
the collision curve, the exact pairwise collision probabilities of clustered demo vectors and one
sampled collision matrix (:func:`lshlib.report.hashing.plot_explorer_frame`)."""

from __future__ import annotations

import ipywidgets as widgets
from matplotlib.figure import Figure

from lshlib.lsh import theory as T
from lshlib.report.hashing import plot_explorer_frame
from lshlib.widgets import Explorer

__all__ = ["HashingExplorer", "hashing_explorer"]

TABLE_SIZE_OPTIONS = [
    ("signature (2**bits)", None),
    ("4", 4),
    ("16", 16),
    ("64", 64),
    ("128", 128),
    ("256", 256),
]


class HashingExplorer(Explorer):
    """Sliders for the hash setting and seed above the frame (see :class:`Explorer`)."""

    def __init__(
        self, n: int = 48, dim: int = 64, clusters: int = 4, spread: float = 0.6, data_seed: int = 0
    ) -> None:
        self.rows, _ = T.clustered_vectors(n, dim, clusters, spread, seed=data_seed)
        style = {"description_width": "initial"}
        self.controls = {
            "bits": widgets.IntSlider(
                value=T.PAPER_SETTING.bits, min=1, max=8, description="bits (bands)", style=style
            ),
            "tables": widgets.IntSlider(
                value=T.PAPER_SETTING.tables,
                min=1,
                max=4,
                description="tables (num_hashes)",
                style=style,
            ),
            "table_size": widgets.Dropdown(
                options=TABLE_SIZE_OPTIONS,
                value=T.PAPER_SETTING.table_size,
                description="table_size",
                style=style,
            ),
            "hash_seed": widgets.IntSlider(
                value=0, min=0, max=20, description="hash seed", style=style
            ),
        }
        self._build([list(self.controls.values())])

    @property
    def setting(self) -> T.HashSetting:
        c = self.controls
        return T.HashSetting(c["bits"].value, c["tables"].value, c["table_size"].value)

    def frame(self) -> Figure:
        return plot_explorer_frame(
            self.setting, self.rows, hash_seed=self.controls["hash_seed"].value
        )

    def caption(self) -> str:
        return f"{self.setting.label}, hash seed {self.controls['hash_seed'].value}"


def hashing_explorer(
    n: int = 48, dim: int = 64, clusters: int = 4, spread: float = 0.6, data_seed: int = 0
) -> HashingExplorer:
    """Build the explorer on ``n`` clustered ``dim``-dimensional rows (queries = keys); it has
    already drawn its first frame."""
    return HashingExplorer(n, dim, clusters, spread, data_seed)
