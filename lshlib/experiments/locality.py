"""Locality in trained models: does the paper's hashing group the keys a query attends to?

LSH attention helps only if the keys a query would weight most under full attention tend to
share its bucket. On a trained model's queries and keys (real SST-2 sentences, every layer and
head) this measures, per query and averaged over real queries:

* ``weight_on_colliding``: the share of its full-attention weight that falls on colliding keys,
  against ``density``, the share of keys it collides with (their ratio ``lift`` is 1 when the
  hashing knows nothing of attention);
* ``topk_colliding``: the share of its ``k`` most-weighted keys that collide with it;
* ``no_collision``: whether it collides with no real key at all (masked mode then gives it a
  zero output);
* ``no_collision_random``: the chance of the same under the random-pairs control of the same
  density (``pairs="random"``: every pair allowed independently with the (batch, head) slice's
  collision density ``D``, so a query with ``m`` real keys is left alone with ``(1 - D)**m``).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor
from transformers import PreTrainedModel

from lshlib.experiments.analysis import sst2_layer_inputs
from lshlib.lsh.attention import (
    LSHConfig,
    additive_mask,
    collision_from_buckets,
    full_attention,
    hash_queries_keys,
)
from lshlib.lsh.hashing import HashSetting
from lshlib.lsh.theory import PAPER_SETTING

__all__ = ["locality_stats", "trained_locality"]


def locality_stats(probs: Tensor, colliding: Tensor, token_mask: Tensor, k: int = 3) -> dict:
    """Per head ``(heads,)`` tensors of the five measures above, averaged over the real queries
    of ``token_mask`` ``(batch, n)``; ``probs`` are full-attention weights and ``colliding`` the
    collision matrix, both ``(batch, heads, n, n)``."""
    if probs.shape != colliding.shape or probs.dim() != 4:
        raise ValueError(
            f"probs and colliding must share one (batch, heads, n, n) shape, got "
            f"{tuple(probs.shape)} and {tuple(colliding.shape)}"
        )
    if isinstance(k, bool) or not isinstance(k, int) or not 1 <= k <= probs.shape[-1]:
        raise ValueError(f"k must be an integer in [1, {probs.shape[-1]}], got {k!r}")
    real = token_mask.bool()
    keys = real[:, None, None, :].expand_as(colliding)
    hits = colliding & keys
    rows = real[:, None, :].expand(probs.shape[:3]).to(probs.dtype)
    slice_density = colliding.to(probs.dtype).mean(dim=(-2, -1), keepdim=True)[..., 0]
    top = probs.masked_fill(~keys, -1.0).topk(k, dim=-1).indices
    per_query = {
        "weight_on_colliding": (probs * hits).sum(-1),
        "density": hits.sum(-1) / keys.sum(-1).clamp_min(1),
        "topk_colliding": hits.gather(-1, top).to(probs.dtype).mean(-1),
        "no_collision": (~hits.any(-1)).to(probs.dtype),
        "no_collision_random": (1 - slice_density) ** keys.sum(-1).to(probs.dtype),
    }
    count = rows.sum(dim=(0, 2))
    return {
        name: (v.to(probs.dtype) * rows).sum(dim=(0, 2)) / count for name, v in per_query.items()
    }


def trained_locality(
    model: PreTrainedModel,
    num_sentences: int = 64,
    draws: int = 8,
    setting: HashSetting = PAPER_SETTING,
    k: int = 3,
    seed: int = 0,
    scale: str | None = None,
) -> list[dict[str, Any]]:
    """One row per (layer, head) of ``model``: the measures above on the first
    ``num_sentences`` SST-2 test sentences, averaged over ``draws`` hash draws of ``setting``."""
    if draws < 1:
        raise ValueError(f"draws must be >= 1, got {draws}")
    config = LSHConfig(*HashSetting(*setting))
    gen = torch.Generator().manual_seed(seed)
    rows = []
    for layer in range(model.config.num_hidden_layers):
        inputs = sst2_layer_inputs(num_sentences, layer=layer, model=model, scale=scale)
        q, key, v = inputs.query, inputs.key, inputs.value
        _, probs = full_attention(q, key, v, additive_mask(inputs.token_mask, q.dtype))
        totals: dict[str, Tensor] = {}
        for _ in range(draws):
            qb, kb, _ = hash_queries_keys(q, key, config, generator=gen)
            stats = locality_stats(probs, collision_from_buckets(qb, kb), inputs.token_mask, k)
            for name, value in stats.items():
                totals[name] = totals.get(name, 0) + value / draws
        for head in range(q.shape[1]):
            row = {name: float(value[head]) for name, value in totals.items()}
            row["lift"] = row["weight_on_colliding"] / max(row["density"], 1e-12)
            rows.append({"layer": layer, "head": head, **row})
    return rows
