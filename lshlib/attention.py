"""BERT-LSH attention: the paper's algorithm and a masked variant, plugged into transformers.

Two *semantics* (``LSHConfig.mode``), both built on :mod:`lshlib.hashing`:

* ``"paper"``: exactly what the authors' code computes (``docs/paper.md``, "The method as the
  authors' code runs it"): scores start at zero, only pairs ``i <= j`` are visited, a
  colliding pair writes ``q_i . k_j`` at ``(i, j)`` *and* at ``(j, i)``; then ordinary BERT
  attention (scale, add mask, softmax). So non-colliding pairs are not excluded, they get score
  0 and weight ``exp(0)``.
* ``"masked"``: what the paper's prose describes: query ``i`` attends only to keys ``j`` it
  collides with (and that the padding mask allows), with the true score ``q_i . k_j``. A query
  with no allowed key gets an all-zero probability row and a zero output ("attends to nothing"),
  never NaN.

Two *execution strategies* (``LSHConfig.strategy``): ``"dense"`` computes every score and then
masks (the oracle; returns the probabilities) and ``"bucketed"`` hands the bucket ids to the
sparse kernel :func:`lshlib.bucketed.bucketed_attention` (masked mode only).

Hash functions are redrawn at every call for every batch element and head (``rehash="call"``,
as the paper) or drawn once per layer and head from ``LSHConfig.seed`` (``rehash="fixed"``), so
evaluation is deterministic and a saved model reloads the same hashes.

:func:`lshlib.modeling.register` makes the function available to any transformers model as
``attn_implementation="bert_lsh"``; the model config carries the settings as ``config.lsh``
(a plain dict, so it survives ``save_pretrained`` / ``from_pretrained``). Experiments on this
attention (density, error, recall, mode comparison) live in :mod:`lshlib.analysis`.
"""

from __future__ import annotations

import functools
from dataclasses import asdict, dataclass, fields
from typing import Any

import torch
from torch import Tensor
from torch.nn import functional as F

from lshlib.hashing import (
    HashParams,
    HashSetting,
    buckets,
    draw_hash_params,
    validate_hash_settings,
)

__all__ = [
    "ATTN_NAME",
    "CONFIG_ATTR",
    "MODES",
    "STRATEGIES",
    "REHASH",
    "LSHConfig",
    "lsh_attention",
    "hash_queries_keys",
    "fixed_hash_params",
    "collision_from_buckets",
    "paper_score_matrix",
    "full_attention",
    "additive_mask",
]

ATTN_NAME = "bert_lsh"
CONFIG_ATTR = "lsh"  # name of the attribute holding the LSH settings on a transformers config
MODES = ("paper", "masked")
STRATEGIES = ("dense", "bucketed")
REHASH = ("call", "fixed")


@dataclass(frozen=True)
class LSHConfig:
    """LSH attention settings. ``bits`` is the paper's ``bands``, ``tables`` its ``num_hashes``;
    ``table_size=None`` uses the plain ``2**bits`` signature buckets."""

    bits: int = 2
    tables: int = 1
    table_size: int | None = 256
    mode: str = "paper"
    strategy: str = "dense"
    rehash: str = "call"
    seed: int = 0

    def __post_init__(self) -> None:
        validate_hash_settings(self.bits, self.tables, self.table_size)
        if self.mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, got {self.mode!r}")
        if self.strategy not in STRATEGIES:
            raise ValueError(f"strategy must be one of {STRATEGIES}, got {self.strategy!r}")
        if self.strategy == "bucketed" and self.mode != "masked":
            raise ValueError(
                f"strategy 'bucketed' supports mode 'masked' only, got mode {self.mode!r} "
                "(paper mode runs with strategy 'dense')"
            )
        if self.rehash not in REHASH:
            raise ValueError(f"rehash must be one of {REHASH}, got {self.rehash!r}")
        if isinstance(self.seed, bool) or not isinstance(self.seed, int) or self.seed < 0:
            raise ValueError(f"seed must be an integer >= 0, got {self.seed!r}")

    @property
    def setting(self) -> HashSetting:
        """The hash setting (bits, tables, table_size) of this configuration."""
        return HashSetting(self.bits, self.tables, self.table_size)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able dict (stored as ``config.lsh`` on a transformers config)."""
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> LSHConfig:
        """Inverse of :meth:`to_dict`; an unknown or invalid field raises ``ValueError``."""
        names = {f.name for f in fields(cls)}
        unknown = sorted(set(d) - names)
        if unknown:
            raise ValueError(f"unknown LSHConfig field(s) {unknown}; valid fields: {sorted(names)}")
        return cls(**d)


# --------------------------------------------------------------------------------------------
# hashing


@functools.lru_cache(maxsize=256)
def _fixed_params_cached(
    seed: int,
    layer_idx: int,
    heads: int,
    head_dim: int,
    bits: int,
    tables: int,
    table_size: int | None,
    device: str,
) -> HashParams:
    # One CPU generator per (seed, layer): identical draws on every device and after reloads.
    gen = torch.Generator().manual_seed(seed * 1_000_003 + layer_idx)
    params = draw_hash_params(
        head_dim, bits, tables, table_size, batch_shape=(1, heads), generator=gen
    )
    coefficients = None if params.coefficients is None else params.coefficients.to(device)
    return HashParams(params.hyperplanes.to(device), coefficients, table_size)


def fixed_hash_params(
    config: LSHConfig,
    heads: int,
    head_dim: int,
    layer_idx: int = 0,
    device: torch.device | str = "cpu",
) -> HashParams:
    """The hash functions of ``rehash="fixed"``: drawn once per layer from ``config.seed`` and
    ``layer_idx``, one family per head, shape ``(1, heads, tables, bits, head_dim)`` (shared by
    every batch element). Deterministic, so a reloaded model hashes exactly as before."""
    return _fixed_params_cached(
        config.seed,
        int(layer_idx or 0),
        heads,
        head_dim,
        config.bits,
        config.tables,
        config.table_size,
        str(torch.device(device)),
    )


def _resolve_params(
    query: Tensor,
    config: LSHConfig,
    hyperplanes: Tensor | None,
    coefficients: Tensor | None,
    generator: torch.Generator | None,
    layer_idx: int = 0,
) -> HashParams:
    batch, heads, _, head_dim = query.shape
    if hyperplanes is None:
        if coefficients is not None:
            raise ValueError("coefficients were given without hyperplanes; give both or neither")
        if config.rehash == "fixed":
            return fixed_hash_params(config, heads, head_dim, layer_idx, query.device)
        return draw_hash_params(
            head_dim,
            config.bits,
            config.tables,
            config.table_size,
            batch_shape=(batch, heads),
            generator=generator,
            device=query.device,
        )
    if hyperplanes.shape[-3:] != (config.tables, config.bits, head_dim):
        raise ValueError(
            "hyperplanes must have shape (..., tables, bits, head_dim) = (..., "
            f"{config.tables}, {config.bits}, {head_dim}), got {tuple(hyperplanes.shape)}"
        )
    if config.table_size is not None and coefficients is None:
        raise ValueError(
            f"table_size={config.table_size} needs coefficients along with the hyperplanes"
        )
    if config.table_size is None and coefficients is not None:
        raise ValueError("coefficients were given but table_size is None (plain signatures)")
    return HashParams(hyperplanes.to(query.device), coefficients, config.table_size)


def hash_queries_keys(
    query: Tensor,
    key: Tensor,
    config: LSHConfig,
    *,
    hyperplanes: Tensor | None = None,
    coefficients: Tensor | None = None,
    generator: torch.Generator | None = None,
    layer_idx: int = 0,
) -> tuple[Tensor, Tensor, HashParams]:
    """Bucket ids of queries and keys, each int64 ``(batch, heads, tables, n)``, and the hash
    parameters used (drawn as ``config.rehash`` says when not given)."""
    params = _resolve_params(query, config, hyperplanes, coefficients, generator, layer_idx)
    with torch.no_grad():
        qb = buckets(query.detach(), params)
        kb = buckets(key.detach(), params)
    batch, heads = query.shape[:2]
    qb = qb.expand(batch, heads, *qb.shape[-2:])
    kb = kb.expand(batch, heads, *kb.shape[-2:])
    return qb, kb, params


def collision_from_buckets(query_buckets: Tensor, key_buckets: Tensor, *, negate: bool = False):
    """Boolean ``(batch, heads, n_q, n_k)`` collision matrix (OR over tables) from bucket ids;
    ``negate=True`` returns its complement directly, saving a pass over n x n."""
    if query_buckets.shape[-2] == 1:
        qb, kb = query_buckets[..., 0, :, None], key_buckets[..., 0, None, :]
        return qb != kb if negate else qb == kb
    if negate:
        return (query_buckets.unsqueeze(-1) != key_buckets.unsqueeze(-2)).all(dim=-3)
    return (query_buckets.unsqueeze(-1) == key_buckets.unsqueeze(-2)).any(dim=-3)


# --------------------------------------------------------------------------------------------
# attention


@functools.lru_cache(maxsize=16)
def _upper_triangle(n: int, device: torch.device) -> Tensor:
    """Boolean ``(n, n)``, True where ``i <= j`` (cached: built once per length and device)."""
    return torch.ones(n, n, dtype=torch.bool, device=device).triu_()


def _paper_scores_(scores: Tensor, not_colliding: Tensor) -> Tensor:
    """Step 4 on a full score matrix: zero the non-colliding pairs (in place), then keep the upper
    triangle (i <= j, the pairs the authors visit) and mirror it onto the lower one."""
    scores.masked_fill_(not_colliding, 0.0)
    n = scores.shape[-1]
    return torch.where(_upper_triangle(n, scores.device), scores, scores.transpose(-1, -2))


def paper_score_matrix(
    query: Tensor,
    key: Tensor,
    query_buckets: Tensor,
    key_buckets: Tensor,
    scaling: float | None = None,
) -> Tensor:
    """The paper's scaled score matrix before mask and softmax, ``(batch, heads, n, n)``: zeros
    for non-colliding pairs, ``q_i . k_j`` for colliding ``i <= j``, mirrored below the diagonal."""
    if scaling is None:
        scaling = query.shape[-1] ** -0.5
    scores = torch.matmul(query * scaling, key.transpose(-1, -2))
    return _paper_scores_(scores, collision_from_buckets(query_buckets, key_buckets, negate=True))


def _check_inputs(query: Tensor, key: Tensor, value: Tensor, mode: str) -> None:
    for name, t in (("query", query), ("key", key), ("value", value)):
        if t.dim() != 4:
            raise ValueError(f"{name} must be (batch, heads, n, head_dim), got {tuple(t.shape)}")
        if not torch.is_floating_point(t):
            raise ValueError(f"{name} must be a floating tensor, got dtype {t.dtype}")
    if (
        key.shape != value.shape
        or query.shape[:2] != key.shape[:2]
        or query.shape[3] != key.shape[3]
    ):
        raise ValueError(
            f"incompatible shapes: query {tuple(query.shape)}, key {tuple(key.shape)}, "
            f"value {tuple(value.shape)}"
        )
    if mode == "paper" and query.shape[2] != key.shape[2]:
        raise ValueError(
            "mode 'paper' mirrors scores across the diagonal and needs as many queries as keys, "
            f"got {query.shape[2]} and {key.shape[2]}"
        )


def _prepare_mask(mask: Tensor | None, target: tuple[int, ...], dtype: torch.dtype):
    """The additive mask in ``dtype`` (masked entries at ``finfo(dtype).min``), or ``None``."""
    if mask is None:
        return None
    try:
        ok = mask.dim() <= 4 and torch.broadcast_shapes(mask.shape, target) == torch.Size(target)
    except RuntimeError:
        ok = False
    if not ok:
        raise ValueError(
            f"attention_mask of shape {tuple(mask.shape)} does not broadcast to {target}"
        )
    if mask.dtype == dtype:
        return mask
    blocked = _blocked(mask)
    base = torch.zeros(mask.shape, dtype=dtype, device=mask.device)
    if mask.dtype != torch.bool:
        base = mask.to(dtype).masked_fill(blocked, 0.0)
    return base.masked_fill_(blocked, torch.finfo(dtype).min)


def _blocked(mask: Tensor) -> Tensor:
    """Boolean: where the mask forbids attention (a masking value, or False in a bool mask)."""
    if mask.dtype == torch.bool:
        return ~mask
    return mask <= torch.finfo(mask.dtype).min / 2


def lsh_attention(
    query: Tensor,
    key: Tensor,
    value: Tensor,
    attention_mask: Tensor | None = None,
    *,
    config: LSHConfig,
    hyperplanes: Tensor | None = None,
    coefficients: Tensor | None = None,
    generator: torch.Generator | None = None,
    dropout: float = 0.0,
    training: bool = False,
    scaling: float | None = None,
    layer_idx: int = 0,
) -> tuple[Tensor, Tensor | None]:
    """BERT-LSH attention on ``(batch, heads, n, head_dim)`` inputs.

    ``attention_mask`` is transformers' additive float mask broadcastable to
    ``(batch, heads, n_q, n_k)`` (or a boolean mask, True = attend). ``hyperplanes``
    ``(batch, heads, tables, bits, head_dim)`` and ``coefficients`` ``(batch, heads, tables,
    bits)`` (each broadcastable) fix the hash functions; otherwise they are drawn from
    ``generator`` (``rehash="call"``) or from ``config.seed`` and ``layer_idx``
    (``rehash="fixed"``). Returns the output ``(batch, heads, n_q, head_dim)`` and, for the
    dense strategy, the probabilities ``(batch, heads, n_q, n_k)`` (``None`` when bucketed).
    """
    _check_inputs(query, key, value, config.mode)
    if scaling is None:
        scaling = query.shape[-1] ** -0.5
    qb, kb, _ = hash_queries_keys(
        query,
        key,
        config,
        hyperplanes=hyperplanes,
        coefficients=coefficients,
        generator=generator,
        layer_idx=layer_idx,
    )
    batch, heads, n_q, _ = query.shape
    target = (batch, heads, n_q, key.shape[2])

    if config.strategy == "bucketed":
        from lshlib.bucketed import bucketed_attention  # lazy: the kernel lives in its own module

        out = bucketed_attention(
            query,
            key,
            value,
            qb,
            kb,
            attention_mask,
            scaling=scaling,
            dropout=dropout,
            training=training,
        )
        return out, None

    mask = _prepare_mask(attention_mask, target, query.dtype)
    not_colliding = collision_from_buckets(qb, kb, negate=True)
    # One matmul for all scores, the scaling folded into the (small) query. The in-place ops
    # below are safe for autograd: the matmul's backward needs only its inputs.
    scores = torch.matmul(query * scaling, key.transpose(-1, -2))
    min_value = torch.finfo(scores.dtype).min

    if config.mode == "paper":
        # Step 4: zero for non-colliding pairs, then the upper triangle (i <= j, the pairs the
        # authors visit) mirrored onto the lower one. Step 5: add the mask, softmax.
        scores = _paper_scores_(scores, not_colliding)
        if mask is not None:
            scores.add_(mask)
            if scores.dtype not in (torch.float32, torch.float64):
                scores.clamp_min_(min_value)  # score + finfo.min may round to -inf in float16
        probs = torch.softmax(scores, dim=-1)
    else:
        blocked = not_colliding
        if mask is not None:
            blocked = blocked | _blocked(mask)
            scores.add_(mask)
        scores.masked_fill_(blocked, min_value)
        probs = torch.softmax(scores, dim=-1)
        empty = blocked.all(dim=-1, keepdim=True)  # rows that attend to nothing: zero, not NaN
        probs = probs.masked_fill(empty, 0.0)

    if training and dropout > 0.0:
        probs = F.dropout(probs, p=dropout, training=True)
    return torch.matmul(probs, value), probs


# --------------------------------------------------------------------------------------------
# full attention and masks


def full_attention(
    query: Tensor,
    key: Tensor,
    value: Tensor,
    attention_mask: Tensor | None = None,
    scaling: float | None = None,
) -> tuple[Tensor, Tensor]:
    """Ordinary softmax attention (output, probabilities): the target LSH approximates."""
    if scaling is None:
        scaling = query.shape[-1] ** -0.5
    scores = torch.matmul(query, key.transpose(-1, -2)) * scaling
    if attention_mask is not None:
        target = (*query.shape[:3], key.shape[2])
        scores = scores + _prepare_mask(attention_mask, target, query.dtype)
    probs = torch.softmax(scores, dim=-1)
    return torch.matmul(probs, value), probs


def additive_mask(token_mask: Tensor, dtype: torch.dtype = torch.float32) -> Tensor:
    """transformers' additive padding mask ``(batch, 1, 1, n)`` from a tokenizer's 0/1 mask."""
    blocked = token_mask[:, None, None, :] == 0
    return torch.zeros(blocked.shape, dtype=dtype).masked_fill_(blocked, torch.finfo(dtype).min)
