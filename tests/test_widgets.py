"""The explorers without a browser: first frame drawn on construction, a caption naming the
setting, and a static picture of the first frame in the display bundle (what GitHub shows)."""

from __future__ import annotations

import base64

import torch

from lshlib.experiments.analysis import LayerInputs
from lshlib.widgets.attention import attention_explorer
from lshlib.widgets.hashing import hashing_explorer

PNG = b"\x89PNG\r\n\x1a\n"


def _inputs(n: int = 8) -> LayerInputs:
    g = torch.Generator().manual_seed(0)
    q, k, v = (torch.randn(2, 2, n, 16, generator=g) for _ in range(3))
    token_mask = torch.ones(2, n, dtype=torch.long)
    token_mask[1, n - 3 :] = 0
    tokens = [[f"t{i}" for i in range(int(m.sum()))] for m in token_mask]
    return LayerInputs(["s"] * 2, tokens, torch.zeros(2, n, dtype=torch.long), token_mask, q, k, v)


def test_hashing_explorer_bundle_carries_its_first_frame():
    explorer = hashing_explorer(n=12, dim=8, clusters=2)
    bundle = explorer._repr_mimebundle_()
    assert "application/vnd.jupyter.widget-view+json" in bundle
    first = base64.b64decode(bundle["image/png"])
    assert first.startswith(PNG)
    assert explorer.caption_label.value.count("bits=2, tables=1, T=256") == 1
    explorer.controls["bits"].value = 5
    assert "bits=5, tables=1, T=256" in explorer.caption_label.value
    assert explorer.frames_drawn == 2
    # the static picture stays the first frame, not the last one drawn
    assert base64.b64decode(explorer._repr_mimebundle_()["image/png"]) == first


def test_attention_explorer_caption_follows_the_controls():
    explorer = attention_explorer(_inputs())
    assert base64.b64decode(explorer._repr_mimebundle_()["image/png"]).startswith(PNG)
    assert "mode paper" in explorer.caption_label.value
    explorer.controls["mode"].value = "masked"
    explorer.controls["sentence"].value = 1
    assert "mode masked, sentence 1" in explorer.caption_label.value
    assert explorer.frames_drawn == 3
