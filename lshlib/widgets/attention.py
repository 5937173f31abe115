"""The attention explorer: controls for bits, tables, table_size, mode, hash seed and which
sentence and head, redrawing the collision matrix and LSH attention beside full attention."""

from __future__ import annotations

import ipywidgets as widgets
import matplotlib.pyplot as plt
import torch
from matplotlib.figure import Figure

from lshlib.experiments.analysis import LayerInputs
from lshlib.lsh.attention import (
    LSHConfig,
    additive_mask,
    collision_from_buckets,
    full_attention,
    hash_queries_keys,
    lsh_attention,
)
from lshlib.report.attention import heatmap
from lshlib.widgets import Explorer

__all__ = ["AttentionExplorer", "attention_explorer", "explorer_frame"]

TABLE_SIZE_OPTIONS = [("signature (2**bits)", None), ("16", 16), ("64", 64), ("256", 256)]


def explorer_frame(
    inputs: LayerInputs, config: LSHConfig, sentence: int = 0, head: int = 0, hash_seed: int = 0
) -> Figure:
    """One frame: collision matrix, LSH weights and full weights of one (sentence, head)."""
    sl = slice(sentence, sentence + 1)
    q, k, v = (
        inputs.query[sl, head : head + 1],
        inputs.key[sl, head : head + 1],
        inputs.value[sl, head : head + 1],
    )
    mask = additive_mask(inputs.token_mask[sl], q.dtype)
    gen = torch.Generator().manual_seed(hash_seed)
    qb, kb, params = hash_queries_keys(q, k, config, generator=gen)
    _, probs = lsh_attention(
        q,
        k,
        v,
        mask,
        config=config,
        hyperplanes=params.hyperplanes,
        coefficients=params.coefficients,
    )
    _, full = full_attention(q, k, v, mask)
    n = int(inputs.token_mask[sentence].sum())
    coll = collision_from_buckets(qb, kb)[0, 0, :n, :n]
    fig, axes = plt.subplots(1, 3, figsize=(11, 3.6))
    heatmap(
        axes[0],
        coll,
        f"collisions, density {float(coll.float().mean()):.2f}",
        cmap="Greys",
        vmin=0,
        vmax=1,
    )
    heatmap(axes[1], probs[0, 0, :n, :n], f"{config.mode} mode weights", vmin=0)
    heatmap(axes[2], full[0, 0, :n, :n], "full attention weights", vmin=0)
    fig.suptitle(" ".join(inputs.tokens[sentence])[:110], fontsize=8)
    fig.tight_layout()
    return fig


class AttentionExplorer(Explorer):
    """Hash setting, mode, seed, sentence and head above the frame (see :class:`Explorer`)."""

    def __init__(self, inputs: LayerInputs) -> None:
        self.inputs = inputs
        style = {"description_width": "initial"}
        batch, heads = inputs.query.shape[:2]
        self.controls = {
            "bits": widgets.IntSlider(
                value=2, min=1, max=8, description="bits (bands)", style=style
            ),
            "tables": widgets.IntSlider(value=1, min=1, max=4, description="tables", style=style),
            "table_size": widgets.Dropdown(
                options=TABLE_SIZE_OPTIONS, value=256, description="table_size", style=style
            ),
            "mode": widgets.Dropdown(
                options=["paper", "masked"], value="paper", description="mode", style=style
            ),
            "hash_seed": widgets.IntSlider(
                value=0, min=0, max=20, description="hash seed", style=style
            ),
            "sentence": widgets.IntSlider(
                value=0, min=0, max=batch - 1, description="sentence", style=style
            ),
            "head": widgets.IntSlider(
                value=0, min=0, max=heads - 1, description="head", style=style
            ),
        }
        values = list(self.controls.values())
        self._build([values[:4], values[4:]])

    @property
    def config(self) -> LSHConfig:
        c = self.controls
        return LSHConfig(
            bits=c["bits"].value,
            tables=c["tables"].value,
            table_size=c["table_size"].value,
            mode=c["mode"].value,
        )

    def frame(self) -> Figure:
        c = self.controls
        return explorer_frame(
            self.inputs, self.config, c["sentence"].value, c["head"].value, c["hash_seed"].value
        )

    def caption(self) -> str:
        c = self.controls
        return (
            f"{self.config.setting.label}, mode {c['mode'].value}, sentence "
            f"{c['sentence'].value}, head {c['head'].value}, hash seed {c['hash_seed'].value}"
        )


def attention_explorer(inputs: LayerInputs) -> AttentionExplorer:
    """Build the explorer on the queries and keys of
    :func:`lshlib.experiments.analysis.sst2_layer_inputs`; it has already drawn its first frame."""
    return AttentionExplorer(inputs)
