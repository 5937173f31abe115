"""Experiments on attention: how LSH attention compares with full attention on real inputs.

Collision density against the closed form, output error and top-k recall per setting and
mode, sampled collision maps, what paper mode does that masked mode does not, and the
extraction of a BERT layer's queries, keys and values from real SST-2 sentences. Notebooks 02
and 03 call these; :mod:`lshlib.lsh.attention` holds the attention itself.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor
from transformers import PreTrainedModel

from lshlib.data import get_tokenizer, load_sst2
from lshlib.lsh import theory
from lshlib.lsh.attention import (
    MODES,
    LSHConfig,
    additive_mask,
    collision_from_buckets,
    full_attention,
    hash_queries_keys,
    lsh_attention,
    paper_score_matrix,
)
from lshlib.lsh.hashing import HashSetting, buckets, collision_matrix, draw_hash_params
from lshlib.modeling import build_model
from lshlib.scales import sizes

__all__ = [
    "output_error",
    "topk_recall",
    "topk_chance",
    "no_collision_queries",
    "density_vs_theory",
    "approximation_sweep",
    "collision_maps",
    "ModeComparison",
    "compare_modes",
    "analysis_sizes",
    "QKV",
    "extract_qkv",
    "LayerInputs",
    "sst2_layer_inputs",
]


def analysis_sizes(scale: str | None = None) -> dict[str, int]:
    """Sentences and hash draws the attention notebook uses at ``scale`` (``LSHLIB_SCALE``)."""
    return sizes("analysis", scale)


def output_error(approx: Tensor, exact: Tensor, row_mask: Tensor | None = None) -> float:
    """Mean relative L2 error of output rows, ``||approx_i - exact_i|| / ||exact_i||``, over the
    rows selected by the boolean ``row_mask`` (broadcastable to ``approx.shape[:-1]``)."""
    err = (approx - exact).norm(dim=-1) / exact.norm(dim=-1).clamp_min(1e-12)
    if row_mask is not None:
        return float(err[row_mask.expand_as(err)].mean())
    return float(err.mean())


def topk_recall(
    approx_probs: Tensor, exact_probs: Tensor, k: int = 5, row_mask: Tensor | None = None
) -> float:
    """Recall of the largest attention weights: the fraction of each query's ``k`` largest exact
    weights that are also among the approximation's ``k`` largest *non-zero* weights (a key the
    approximation gives weight 0 is a miss), averaged over the rows in ``row_mask``."""
    k = min(k, exact_probs.shape[-1])
    top_exact = exact_probs.topk(k, dim=-1).indices
    values, top_approx = approx_probs.topk(k, dim=-1)
    top_approx = top_approx.masked_fill(values <= 0, -1)
    hit = (top_exact.unsqueeze(-1) == top_approx.unsqueeze(-2)).any(-1).float().mean(-1)
    if row_mask is not None:
        return float(hit[row_mask.expand_as(hit)].mean())
    return float(hit.mean())


def topk_chance(token_mask: Tensor, k: int = 3) -> float:
    """Top-k recall of a ranking that ignores the scores: ``min(k, n) / n`` for a query with
    ``n`` real keys, averaged over the real queries of ``token_mask`` ``(batch, n)``. This is
    paper mode's chance level: its non-colliding keys keep weight ``exp(0)``, so its top k are
    picked among all ``n`` keys, not among the colliding ones (a random mask of density ``d``
    recalls ``d``, the chance level of masked mode)."""
    if isinstance(k, bool) or not isinstance(k, int) or k < 1:
        raise ValueError(f"k must be an integer >= 1, got {k!r}")
    n_real = token_mask.bool().sum(-1).to(torch.float64)  # real keys per sentence
    if bool((n_real == 0).any()):
        raise ValueError("token_mask has a sentence without real tokens")
    per_query = n_real.clamp(max=k) / n_real  # the same for every real query of a sentence
    return float((per_query * n_real).sum() / n_real.sum())


def no_collision_queries(colliding: Tensor, token_mask: Tensor) -> Tensor:
    """Per (sentence, head), the number of real queries that collide with no real key,
    ``(batch, heads)``: masked mode gives each of them a zero output (relative error 1)."""
    return _no_collision(colliding, token_mask).sum(-1)


def _no_collision(colliding: Tensor, token_mask: Tensor) -> Tensor:
    """Boolean ``(batch, heads, n)``: a real query without any colliding real key."""
    valid = _valid_pairs(token_mask)
    real_rows = token_mask.bool()[:, None, :]
    return real_rows & ~(colliding & valid).any(-1)


def _valid_pairs(token_mask: Tensor) -> Tensor:
    real = token_mask.bool()
    return (real[:, :, None] & real[:, None, :])[:, None]  # (batch, 1, n, n)


def _setting_row(setting: Any) -> dict[str, Any]:
    s = HashSetting(*setting)
    return {"bits": s.bits, "tables": s.tables, "table_size": s.table_size, "label": s.label}


def density_vs_theory(
    query: Tensor,
    key: Tensor,
    token_mask: Tensor,
    settings: Sequence[tuple[int, int, int | None]],
    *,
    draws: int = 20,
    seed: int = 0,
) -> list[dict[str, Any]]:
    """Measured collision density (fraction of real query-key pairs that collide, averaged over
    ``draws`` hash draws per batch element and head) beside the closed form
    :func:`lshlib.lsh.theory.expected_density` over the same pairs' angles, per
    ``(bits, tables, table_size)`` setting. ``stderr`` is the standard error of the measured
    value over the independent hash draws (every draw, batch element and head), estimated from
    each block's deviation from its own closed-form expectation; ``z`` is
    ``(measured - expected) / stderr``."""
    valid = _valid_pairs(token_mask).expand(*query.shape[:2], -1, -1)
    weights = valid.sum((-1, -2)).to(torch.float64)  # real pairs per (batch element, head)
    angles = theory.pairwise_angles(query, key)
    rows = []
    for i, (bits, tables, table_size) in enumerate(settings):
        params = draw_hash_params(
            query.shape[-1],
            bits,
            tables,
            table_size,
            batch_shape=(draws, *query.shape[:2]),
            seed=seed + i,
        )
        hit = collision_matrix(buckets(query, params), buckets(key, params)) & valid
        block = hit.sum((-1, -2)) / weights  # (draws, batch, heads)
        prob = theory.collision_probability(angles, bits, tables, table_size)
        block_expected = (prob * valid).sum((-1, -2)) / weights
        deviation = (block - block_expected).pow(2).mean(0)  # variance per block (known mean)
        total = weights.sum()
        measured = float((block * weights).sum() / (draws * total))
        stderr = float((weights.pow(2) * deviation).sum().sqrt() / (draws**0.5 * total))
        expected = theory.expected_density(angles[valid], bits, tables, table_size)
        rows.append(
            {
                **_setting_row((bits, tables, table_size)),
                "measured": measured,
                "stderr": stderr,
                "expected": expected,
                # gap in standard errors (0 when the measurement has no spread)
                "z": (measured - expected) / stderr if stderr > 0 else 0.0,
            }
        )
    return rows


def approximation_sweep(
    query: Tensor,
    key: Tensor,
    value: Tensor,
    token_mask: Tensor,
    settings: Sequence[tuple[int, int, int | None]],
    *,
    modes: Sequence[str] = MODES,
    draws: int = 10,
    seed: int = 0,
    k: int = 3,
) -> list[dict[str, Any]]:
    """How well each mode approximates full attention, per setting and mode, averaged over
    ``draws`` hash draws (the same draws for every mode), over real (non-padding) queries:
    ``density`` (colliding fraction of real pairs), ``topk_collide`` (fraction of each query's
    ``k`` largest full-attention keys that collide with it: compare with ``density``, what a
    random mask of the same density would get), ``no_collision`` (fraction of real queries that
    collide with no real key: masked mode outputs zero for them), ``output_error``
    (:func:`output_error`), ``output_error_colliding`` (the same over the queries that collide
    with at least one real key; NaN if none does) and ``topk_recall`` (:func:`topk_recall`)."""
    mask = additive_mask(token_mask, query.dtype)
    full_out, full_probs = full_attention(query, key, value, mask)
    real_rows = token_mask.bool()[:, None, :]
    valid = _valid_pairs(token_mask)
    top = full_probs.topk(k, dim=-1).indices
    rows = []
    for i, setting in enumerate(settings):
        bits, tables, table_size = setting
        sums: dict[str, float] = {}
        for draw in range(draws):
            gen = torch.Generator().manual_seed(seed + 1000 * i + draw)
            params = draw_hash_params(
                query.shape[-1],
                bits,
                tables,
                table_size,
                batch_shape=query.shape[:2],
                generator=gen,
            )
            qb, kb = buckets(query, params), buckets(key, params)
            colliding = collision_from_buckets(qb, kb)
            empty = _no_collision(colliding, token_mask)
            hit_rows = real_rows & ~empty
            stats = {
                "density": float((colliding & valid).sum() / valid.expand_as(colliding).sum()),
                "topk_collide": float(
                    colliding.gather(-1, top)
                    .float()
                    .mean(-1)[real_rows.expand(*top.shape[:3])]
                    .mean()
                ),
                "no_collision": float(empty.sum() / real_rows.expand_as(empty).sum()),
            }
            for mode in modes:
                cfg = LSHConfig(bits=bits, tables=tables, table_size=table_size, mode=mode)
                out, probs = lsh_attention(
                    query,
                    key,
                    value,
                    mask,
                    config=cfg,
                    hyperplanes=params.hyperplanes,
                    coefficients=params.coefficients,
                )
                stats[f"{mode}:output_error"] = output_error(out, full_out, real_rows)
                stats[f"{mode}:output_error_colliding"] = output_error(out, full_out, hit_rows)
                stats[f"{mode}:topk_recall"] = topk_recall(probs, full_probs, k, real_rows)
            for name, val in stats.items():
                sums[name] = sums.get(name, 0.0) + val / draws
        for mode in modes:
            rows.append(
                {
                    **_setting_row(setting),
                    "mode": mode,
                    "density": sums["density"],
                    "topk_collide": sums["topk_collide"],
                    "no_collision": sums["no_collision"],
                    "output_error": sums[f"{mode}:output_error"],
                    "output_error_colliding": sums[f"{mode}:output_error_colliding"],
                    "topk_recall": sums[f"{mode}:topk_recall"],
                }
            )
    return rows


def collision_maps(
    query: Tensor,
    key: Tensor,
    settings: Sequence[tuple[int, int, int | None]],
    *,
    seed: int = 0,
) -> dict[str, Tensor]:
    """One sampled collision matrix ``(batch, heads, n, n)`` per setting, keyed by its label
    (hash functions drawn per batch element and head from ``seed``)."""
    maps = {}
    for setting in settings:
        bits, tables, table_size = setting
        cfg = LSHConfig(bits=bits, tables=tables, table_size=table_size)
        gen = torch.Generator().manual_seed(seed)
        qb, kb, _ = hash_queries_keys(query, key, cfg, generator=gen)
        maps[_setting_row(setting)["label"]] = collision_from_buckets(qb, kb)
    return maps


@dataclass(frozen=True)
class ModeComparison:
    """Both modes on one input with the same hashes (see :func:`compare_modes`)."""

    colliding: Tensor  # (batch, heads, n, n) bool
    true_scores: Tensor  # scaled q_i . k_j
    paper_scores: Tensor  # the paper's matrix before mask and softmax
    full_probs: Tensor
    paper_probs: Tensor
    masked_probs: Tensor
    summary: dict[str, float]


def compare_modes(
    query: Tensor,
    key: Tensor,
    value: Tensor,
    token_mask: Tensor,
    setting: tuple[int, int, int | None] = (2, 1, 256),
    *,
    seed: int = 0,
) -> ModeComparison:
    """What paper mode does that masked mode does not, on the same input and hashes. Summary
    (over real queries and keys): collision ``density``; ``paper_weight_noncolliding``, the mean
    attention weight paper mode puts on keys that do not collide (they get ``exp(0)``, masked
    mode gives them 0); ``mirrored_pairs``, the fraction of colliding real pairs below the
    diagonal whose score paper mode copies from ``(j, i)``; ``mirrored_score_error``, the mean
    absolute difference between the copied score and the true ``q_i . k_j`` there;
    ``no_collision_queries``, the fraction of real queries that collide with no real key (masked
    mode gives them a zero output; :func:`no_collision_queries` counts them per sentence and
    head); and each mode's ``output_error`` against full attention."""
    bits, tables, table_size = setting
    cfg = LSHConfig(bits=bits, tables=tables, table_size=table_size, mode="paper")
    qb, kb, params = hash_queries_keys(
        query, key, cfg, generator=torch.Generator().manual_seed(seed)
    )
    mask = additive_mask(token_mask, query.dtype)
    hashes = {"hyperplanes": params.hyperplanes, "coefficients": params.coefficients}
    paper_out, paper_probs = lsh_attention(query, key, value, mask, config=cfg, **hashes)
    masked_cfg = LSHConfig(bits=bits, tables=tables, table_size=table_size, mode="masked")
    masked_out, masked_probs = lsh_attention(query, key, value, mask, config=masked_cfg, **hashes)
    full_out, full_probs = full_attention(query, key, value, mask)
    colliding = collision_from_buckets(qb, kb)
    scaling = query.shape[-1] ** -0.5
    true_scores = torch.matmul(query, key.transpose(-1, -2)) * scaling
    paper_scores = paper_score_matrix(query, key, qb, kb, scaling)
    valid = _valid_pairs(token_mask).expand_as(colliding)
    real_rows = token_mask.bool()[:, None, :]
    n = query.shape[2]
    lower = torch.ones(n, n, dtype=torch.bool).tril(-1)
    mirrored = lower & colliding.transpose(-1, -2) & valid
    noncolliding_weight = (paper_probs * (~colliding & valid)).sum(-1)
    summary = {
        "density": float((colliding & valid).sum() / valid.sum()),
        "paper_weight_noncolliding": float(
            noncolliding_weight[real_rows.expand_as(noncolliding_weight)].mean()
        ),
        "mirrored_pairs": float(mirrored.sum() / (colliding & valid).sum()),
        "mirrored_score_error": float((paper_scores - true_scores)[mirrored].abs().mean()),
        "mean_abs_score": float(true_scores[valid].abs().mean()),
        "no_collision_queries": float(
            _no_collision(colliding, token_mask).sum()
            / real_rows.expand_as(colliding[..., 0]).sum()
        ),
        "paper_output_error": output_error(paper_out, full_out, real_rows),
        "masked_output_error": output_error(masked_out, full_out, real_rows),
    }
    return ModeComparison(
        colliding, true_scores, paper_scores, full_probs, paper_probs, masked_probs, summary
    )


# --------------------------------------------------------------------------------------------
# real inputs: a BERT layer's queries, keys and values


@dataclass(frozen=True)
class QKV:
    """Queries, keys and values of one attention layer, each ``(batch, heads, n, head_dim)``."""

    query: Tensor
    key: Tensor
    value: Tensor


def extract_qkv(
    model: PreTrainedModel,
    input_ids: Tensor,
    attention_mask: Tensor | None = None,
    layers: list[int] | None = None,
) -> dict[int, QKV]:
    """Run ``model`` once (no grad) and capture every requested layer's queries, keys and values
    with forward hooks on the self-attention projections; ``layers=None`` means all."""
    encoder_layers = model.base_model.encoder.layer
    layers = list(range(len(encoder_layers))) if layers is None else layers
    heads = model.config.num_attention_heads
    captured: dict[tuple[int, str], Tensor] = {}
    handles = []
    for idx in layers:
        attn = encoder_layers[idx].attention.self
        for name in ("query", "key", "value"):

            def hook(_module, _inputs, output, idx=idx, name=name):
                b, n, _ = output.shape
                captured[(idx, name)] = output.view(b, n, heads, -1).transpose(1, 2).detach()

            handles.append(getattr(attn, name).register_forward_hook(hook))
    try:
        with torch.no_grad():
            model(input_ids=input_ids, attention_mask=attention_mask)
    finally:
        for handle in handles:
            handle.remove()
    return {
        i: QKV(captured[(i, "query")], captured[(i, "key")], captured[(i, "value")]) for i in layers
    }


@dataclass(frozen=True)
class LayerInputs:
    """Real sentences run through a BERT layer: the tokens, the tokenizer's 0/1 ``token_mask``
    ``(batch, n)``, and that layer's queries, keys and values ``(batch, heads, n, head_dim)``."""

    sentences: list[str]
    tokens: list[list[str]]
    input_ids: Tensor
    token_mask: Tensor
    query: Tensor
    key: Tensor
    value: Tensor


def sst2_layer_inputs(
    num_sentences: int,
    *,
    layer: int = 0,
    seed: int = 42,
    split: str = "test",
    min_tokens: int = 12,
    max_length: int = 64,
    model: PreTrainedModel | None = None,
    scale: str | None = None,
) -> LayerInputs:
    """Queries, keys and values of ``layer`` for the first ``num_sentences`` SST-2 sentences of
    ``split`` with at least ``min_tokens`` tokens (truncated to ``max_length``, padded to the
    longest). ``model=None`` uses a seeded, randomly initialised baseline BERT-tiny (the same
    weights every time: deterministic, but not trained)."""
    tokenizer = get_tokenizer(scale)
    if model is None:
        model = build_model("mlm", "baseline", vocab_size=len(tokenizer), seed=seed)
    model.eval()
    chosen: list[str] = []
    for sentence in load_sst2(split)["sentence"]:
        if (
            len(tokenizer(sentence, truncation=True, max_length=max_length)["input_ids"])
            >= min_tokens
        ):
            chosen.append(sentence)
            if len(chosen) == num_sentences:
                break
    enc = tokenizer(
        chosen, truncation=True, max_length=max_length, padding="longest", return_tensors="pt"
    )
    ids, mask = enc["input_ids"], enc["attention_mask"]
    qkv = extract_qkv(model, ids, mask, layers=[layer])[layer]
    tokens = [
        tokenizer.convert_ids_to_tokens(row[: int(m.sum())].tolist())
        for row, m in zip(ids, mask, strict=True)
    ]
    return LayerInputs(chosen, tokens, ids, mask, qkv.query, qkv.key, qkv.value)
