"""BERT-LSH attention: the paper's algorithm and a masked variant, plugged into transformers.

Two *semantics* (``LSHConfig.mode``), both built on :mod:`lshlib.lsh.hashing`:

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
sparse kernel :func:`lshlib.lsh.bucketed.bucketed_attention` (masked mode only); ``"flex"`` (masked
mode only) runs FlexAttention with a block-sparse mask built from the sorted buckets
(:mod:`lshlib.lsh.flex`, the GPU path; ``bucketed`` runs as ``flex`` on CUDA, see
:func:`lshlib.lsh.flex.resolve_strategy`).

Two *controls* isolate what the hashing contributes: ``pairs="random"`` keeps each
call's collision density but forgets which pairs collided (every query-key pair is allowed
independently with probability equal to the density of that call's LSH collision matrix, per
batch element and head: no locality; with ``density="real_keys"`` counted over the pairs of real
tokens only, so padding content cannot change real tokens' outputs), and ``mirror=False``
(paper mode) computes every colliding ``q_i . k_j`` as itself instead of copying the upper
triangle onto the lower one.

Hash functions are redrawn at every call for every batch element and head (``rehash="call"``,
as the paper) or drawn once per layer and head from ``LSHConfig.seed`` (``rehash="fixed"``), so
evaluation is deterministic and a saved model reloads the same hashes (:mod:`lshlib.lsh.draws`).
The settings and their valid values are in :mod:`lshlib.lsh.config`; this module re-exports them.

:func:`lshlib.modeling.register` makes the function available to any transformers model as
``attn_implementation="bert_lsh"``; the model config carries the settings as ``config.lsh``
(a plain dict, so it survives ``save_pretrained`` / ``from_pretrained``). Experiments on this
attention (density, error, recall, mode comparison) live in :mod:`lshlib.experiments.analysis`.
"""

from __future__ import annotations

import functools

import torch
from torch import Tensor
from torch.nn import functional as F

from lshlib.lsh import config as lsh_config
from lshlib.lsh import draws as lsh_draws
from lshlib.lsh.bucketed import bucketed_attention, check_dropout
from lshlib.lsh.config import (  # noqa: F401 (re-exported: this module's public names)
    ATTN_NAME,
    CONFIG_ATTR,
    DENSITIES,
    MAX_LAYERS,
    MAX_SEED,
    MODES,
    PAIRS,
    REHASH,
    STRATEGIES,
    LSHConfig,
)
from lshlib.lsh.draws import (  # noqa: F401 (re-exported)
    current_hash_generator,
    fixed_hash_params,
    hash_generator,
    hash_queries_keys,
)
from lshlib.lsh.flex import flex_lsh_attention, resolve_strategy
from lshlib.lsh.masks import normalize_mask

__all__ = [  # this module's own names, then those it offers from lsh.config and lsh.draws
    "random_pairs",
    "lsh_attention",
    "collision_from_buckets",
    "paper_score_matrix",
    "full_attention",
    "additive_mask",
    *lsh_config.__all__,
    *lsh_draws.__all__,
]


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


def _paper_scores_(scores: Tensor, not_colliding: Tensor, mirror: bool = True) -> Tensor:
    """Step 4 on a full score matrix: zero the non-colliding pairs (in place), then keep the upper
    triangle (i <= j, the pairs the authors visit) and mirror it onto the lower one (unless
    ``mirror`` is false: the control that computes every colliding pair as itself)."""
    scores.masked_fill_(not_colliding, 0.0)
    if not mirror:
        return scores
    n = scores.shape[-1]
    return torch.where(_upper_triangle(n, scores.device), scores, scores.transpose(-1, -2))


def random_pairs(
    not_colliding: Tensor, generator: torch.Generator | None = None, real: Tensor | None = None
) -> Tensor:
    """The random-pairs control: the complement of a random allowed-pair matrix with the same
    density as the collision matrix ``~not_colliding`` in each (batch, head) slice, every pair
    allowed independently (no locality). Returns the new ``not_colliding``.

    ``real`` (bool, broadcastable to ``not_colliding``): the pairs the density is counted over
    (:func:`real_pairs`: both tokens real, ``LSHConfig.density="real_keys"``), so that padding
    content, which decides how padding tokens hash, cannot change real tokens' outputs; ``None``
    counts every pair, padding included (``density="all"``, the semantics of older models)."""
    if real is None:
        density = (~not_colliding).float().mean(dim=(-2, -1), keepdim=True)
    else:
        real = real.expand(not_colliding.shape)
        hits = (~not_colliding & real).sum(dim=(-2, -1), keepdim=True)
        density = hits / real.sum(dim=(-2, -1), keepdim=True).clamp_min(1)
    draw = torch.rand(
        not_colliding.shape, generator=generator, device=not_colliding.device, dtype=torch.float32
    )
    return draw >= density


def real_pairs(attention_mask: Tensor | None, query: Tensor, key: Tensor) -> Tensor | None:
    """The pairs between real tokens under ``attention_mask`` (``None``: every pair), bool and
    broadcastable to ``(batch, heads, n_q, n_k)``: what the mask allows, and, in self-attention
    (as many queries as keys), only rows of real tokens, a token being real when some query may
    attend to it (padding keys are blocked for every query; padding rows are not blocked)."""
    target = (*query.shape[:3], key.shape[2])
    mask = normalize_mask(attention_mask, target, torch.float32)
    if mask is None:
        return None
    allowed = mask.allowed
    if query.shape[2] == key.shape[2]:
        tokens = allowed.any(dim=-2)  # (b, h, n): keys some query may attend to
        allowed = allowed & tokens.unsqueeze(-1)
    return allowed


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
        if not isinstance(t, Tensor):
            raise ValueError(f"{name} must be a torch.Tensor, got {type(t)}")
        if t.dim() != 4:
            raise ValueError(f"{name} must be (batch, heads, n, head_dim), got {tuple(t.shape)}")
        if not torch.is_floating_point(t):
            raise ValueError(f"{name} must be a floating tensor, got dtype {t.dtype}")
    if not query.dtype == key.dtype == value.dtype:
        raise ValueError(
            "query, key and value must share one dtype, got "
            f"{query.dtype}, {key.dtype} and {value.dtype}"
        )
    if (
        key.shape[:3] != value.shape[:3]
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

    ``attention_mask`` may be boolean (True = attend), integer 0/1 (1 = attend) or additive
    float of any float dtype, broadcastable to ``(batch, heads, n_q, n_k)``; see
    :mod:`lshlib.lsh.masks`. In both modes a query row whose keys are all blocked by the mask gets
    an all-zero probability row and a zero output (never NaN, also under ``-inf`` masks).
    ``hyperplanes`` ``(batch, heads, tables, bits, head_dim)`` and ``coefficients`` ``(batch,
    heads, tables, bits)`` (each broadcastable) fix the hash functions; otherwise they are drawn
    from ``generator`` (``rehash="call"``) or from ``config.seed`` and ``layer_idx``
    (``rehash="fixed"``). Note: with ``rehash="call"`` and no ``generator``, every call draws
    fresh hashes from torch's global RNG, so two evaluations of the same model differ; pass a
    generator, seed torch, or use ``rehash="fixed"`` for reproducible evaluation.

    float16 and bfloat16 inputs are scored in float32 (as SDPA accumulates), so finite inputs
    whose scaled scores exceed float16's 65504 stay finite; results come back in the inputs'
    dtype. Non-finite inputs are not guarded (a check would cost a device sync per call, and
    mixed-precision training relies on NaN reaching the loss): as in full attention a NaN key or
    value reaches every row that attends to it, and in paper mode a NaN query also reaches the
    rows ``j > i`` that collide with it, through the mirrored score ``(i, j) -> (j, i)``.

    Returns the output ``(batch, heads, n_q, head_dim)`` and, for the dense strategy, the
    probabilities ``(batch, heads, n_q, n_k)`` (``None`` when bucketed or flex, which never form
    them). Strategy ``"flex"`` raises with attention dropout while training and has no backward
    on CPU; ``"bucketed"`` runs as ``"flex"`` on CUDA when no dropout applies
    (:func:`lshlib.lsh.flex.resolve_strategy`).
    Through transformers, ``output_attentions=True`` yields ``()`` for every strategy:
    transformers records attention weights only for its "eager" implementation; call this
    function with the dense strategy to get them.
    """
    if not isinstance(config, LSHConfig):
        raise ValueError(
            f"config must be an LSHConfig, got {type(config).__name__} (build one from a dict "
            "with LSHConfig.from_dict)"
        )
    _check_inputs(query, key, value, config.mode)
    dropout = check_dropout(dropout)
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
    strategy = resolve_strategy(config.strategy, query, dropout if training else 0.0)
    if strategy == "flex":
        out = flex_lsh_attention(
            query,
            key,
            value,
            qb,
            kb,
            attention_mask,
            scaling=scaling,
            dropout=dropout,
            training=training,
            block_size=config.block_size,
        )
        return out, None
    if strategy == "bucketed":
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
    not_colliding = collision_from_buckets(qb, kb, negate=True)
    if config.pairs == "random":
        real = real_pairs(attention_mask, query, key) if config.density == "real_keys" else None
        not_colliding = random_pairs(not_colliding, generator, real)
    return _dense_attention(
        query,
        key,
        value,
        not_colliding,
        attention_mask,
        config,
        scaling,
        dropout if training else 0.0,
    )


def _dense_attention(
    query: Tensor,
    key: Tensor,
    value: Tensor,
    not_colliding: Tensor,
    attention_mask: Tensor | None,
    config: LSHConfig,
    scaling: float,
    dropout: float,
) -> tuple[Tensor, Tensor]:
    """The dense strategy: every score, then the mode's masking of the pairs that do not
    collide; returns (output, probs)."""
    target = (*query.shape[:3], key.shape[2])
    # float16 / bfloat16 inputs: scores, softmax and the weighted sum in float32, as SDPA
    # accumulates (finite inputs whose scores pass 65504 stay finite); results in the inputs'
    # dtype. float32 and float64 compute in their own dtype.
    dtype = query.dtype
    acc = dtype if dtype in (torch.float32, torch.float64) else torch.float32
    mask = normalize_mask(attention_mask, target, acc)
    # One matmul for all scores, the scaling folded into the (small) query. The in-place ops
    # below are safe for autograd: the matmul's backward needs only its inputs.
    scores = torch.matmul(query.to(acc) * scaling, key.to(acc).transpose(-1, -2))
    min_value = torch.finfo(scores.dtype).min
    if config.mode == "paper":
        # Step 4: zero for non-colliding pairs, then the upper triangle (i <= j, the pairs the
        # authors visit) mirrored onto the lower one. Step 5: add the mask, softmax.
        scores = _paper_scores_(scores, not_colliding, config.mirror)
        blocked = None if mask is None else ~mask.allowed
    else:
        blocked = not_colliding if mask is None else not_colliding | ~mask.allowed
    if mask is not None and mask.bias is not None:
        scores.add_(mask.bias)  # finite: the bias is clamped to finfo(acc).max / 4
    if blocked is not None:
        scores.masked_fill_(blocked, min_value)
    probs = torch.softmax(scores, dim=-1)
    if blocked is not None:  # rows that attend to nothing: zero, not NaN or uniform
        probs = probs.masked_fill(blocked.all(dim=-1, keepdim=True), 0.0)
    if dropout > 0.0:
        probs = F.dropout(probs, p=dropout, training=True)
    if acc == dtype:
        return torch.matmul(probs, value), probs
    return torch.matmul(probs, value.to(acc)).to(dtype), probs.to(dtype)


# --------------------------------------------------------------------------------------------
# full attention and masks


def full_attention(
    query: Tensor,
    key: Tensor,
    value: Tensor,
    attention_mask: Tensor | None = None,
    scaling: float | None = None,
) -> tuple[Tensor, Tensor]:
    """Ordinary softmax attention (output, probabilities): the target LSH approximates. Masks as
    in :func:`lsh_attention`; a row whose keys are all blocked gets zero output."""
    if scaling is None:
        scaling = query.shape[-1] ** -0.5
    scores = torch.matmul(query, key.transpose(-1, -2)) * scaling
    mask = normalize_mask(attention_mask, (*query.shape[:3], key.shape[2]), query.dtype)
    if mask is None:
        probs = torch.softmax(scores, dim=-1)
        return torch.matmul(probs, value), probs
    if mask.bias is not None:
        scores = scores + mask.bias
    blocked = ~mask.allowed
    probs = torch.softmax(scores.masked_fill(blocked, torch.finfo(scores.dtype).min), dim=-1)
    probs = probs.masked_fill(blocked.all(dim=-1, keepdim=True), 0.0)  # fully masked rows: 0
    return torch.matmul(probs, value), probs


def additive_mask(token_mask: Tensor, dtype: torch.dtype = torch.float32) -> Tensor:
    """transformers' additive padding mask ``(batch, 1, 1, n)`` from a tokenizer's 0/1 mask."""
    blocked = token_mask[:, None, None, :] == 0
    return torch.zeros(blocked.shape, dtype=dtype).masked_fill_(blocked, torch.finfo(dtype).min)
