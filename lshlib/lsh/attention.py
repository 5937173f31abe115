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
evaluation is deterministic and a saved model reloads the same hashes.

:func:`lshlib.modeling.register` makes the function available to any transformers model as
``attn_implementation="bert_lsh"``; the model config carries the settings as ``config.lsh``
(a plain dict, so it survives ``save_pretrained`` / ``from_pretrained``). Experiments on this
attention (density, error, recall, mode comparison) live in :mod:`lshlib.experiments.analysis`.
"""

from __future__ import annotations

import contextlib
import contextvars
import functools
from collections.abc import Iterator
from dataclasses import asdict, dataclass, fields
from typing import Any

import torch
from torch import Tensor
from torch.nn import functional as F

from lshlib.lsh.bucketed import bucketed_attention, check_dropout
from lshlib.lsh.flex import DEFAULT_BLOCK, check_block_size, flex_lsh_attention, resolve_strategy
from lshlib.lsh.hashing import (
    HashParams,
    HashSetting,
    _is_int,
    buckets,
    draw_hash_params,
    validate_hash_settings,
)
from lshlib.lsh.masks import normalize_mask

__all__ = [
    "ATTN_NAME",
    "CONFIG_ATTR",
    "MODES",
    "STRATEGIES",
    "REHASH",
    "PAIRS",
    "random_pairs",
    "LSHConfig",
    "lsh_attention",
    "hash_queries_keys",
    "fixed_hash_params",
    "collision_from_buckets",
    "paper_score_matrix",
    "full_attention",
    "additive_mask",
    "hash_generator",
    "current_hash_generator",
]

ATTN_NAME = "bert_lsh"
CONFIG_ATTR = "lsh"  # name of the attribute holding the LSH settings on a transformers config
MODES = ("paper", "masked")
STRATEGIES = ("dense", "bucketed", "flex")
REHASH = ("call", "fixed")
PAIRS = ("lsh", "random")
# pairs="random": the density is that of the real (unmasked) pairs, or, as models saved before
# this setting existed (their config.lsh has no "density"), of every pair, padding included.
DENSITIES = ("all", "real_keys")
MAX_SEED = 2**32  # seeds and layer indices are combined into one 64-bit generator seed
MAX_LAYERS = 2**20


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
    pairs: str = "lsh"
    mirror: bool = True
    density: str = "all"  # pairs="random" only: see DENSITIES and random_pairs
    block_size: int = DEFAULT_BLOCK  # strategy "flex" only: FlexAttention's block (lshlib.lsh.flex)

    def __post_init__(self) -> None:
        validate_hash_settings(self.bits, self.tables, self.table_size)
        for name in ("bits", "tables", "table_size"):  # numpy integers -> int (JSON-able)
            if getattr(self, name) is not None:
                object.__setattr__(self, name, int(getattr(self, name)))
        if self.mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, got {self.mode!r}")
        if self.strategy not in STRATEGIES:
            raise ValueError(f"strategy must be one of {STRATEGIES}, got {self.strategy!r}")
        if self.strategy in ("bucketed", "flex") and self.mode != "masked":
            raise ValueError(
                f"strategy {self.strategy!r} supports mode 'masked' only, got mode {self.mode!r} "
                "(paper mode runs with strategy 'dense')"
            )
        object.__setattr__(self, "block_size", check_block_size(self.block_size))
        if self.rehash not in REHASH:
            raise ValueError(f"rehash must be one of {REHASH}, got {self.rehash!r}")
        if self.pairs not in PAIRS:
            raise ValueError(f"pairs must be one of {PAIRS}, got {self.pairs!r}")
        if self.pairs == "random" and self.strategy != "dense":
            raise ValueError(
                f"pairs 'random' runs with strategy 'dense' only, got strategy {self.strategy!r}"
            )
        if self.density not in DENSITIES:
            raise ValueError(f"density must be one of {DENSITIES}, got {self.density!r}")
        if not isinstance(self.mirror, bool):
            raise ValueError(f"mirror must be True or False, got {self.mirror!r}")
        if not self.mirror and self.mode != "paper":
            raise ValueError(
                f"mirror=False applies to mode 'paper' only (masked mode never mirrors), got "
                f"mode {self.mode!r}"
            )
        if not _is_int(self.seed) or not 0 <= self.seed < MAX_SEED:
            raise ValueError(f"seed must be an integer in [0, 2**32), got {self.seed!r}")
        object.__setattr__(self, "seed", int(self.seed))

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

_HASH_GENERATOR: contextvars.ContextVar[torch.Generator | None] = contextvars.ContextVar(
    "lshlib_hash_generator", default=None
)


@contextlib.contextmanager
def hash_generator(generator: torch.Generator | None) -> Iterator[None]:
    """While active, attention called through transformers (``attn_implementation="bert_lsh"``)
    draws its per-call hashes and random pairs from ``generator`` instead of torch's global RNG.

    Evaluation uses it (:mod:`lshlib.training.trainers`): with a generator seeded once per
    evaluation, every evaluation of a per-call-hash model scores the same draws and never moves the
    training RNG (dropout, the next training step's hashes)."""
    token = _HASH_GENERATOR.set(generator)
    try:
        yield
    finally:
        _HASH_GENERATOR.reset(token)


def current_hash_generator() -> torch.Generator | None:
    """The generator set by :func:`hash_generator`, or ``None`` (torch's global RNG)."""
    return _HASH_GENERATOR.get()


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
    every batch element). Deterministic, so a reloaded model hashes exactly as before. The
    tensors are fresh copies of a cached draw: editing them cannot change later calls."""
    layer = int(layer_idx or 0)
    if not 0 <= layer < MAX_LAYERS:
        raise ValueError(f"layer_idx must be in [0, 2**20), got {layer_idx!r}")
    params = _fixed_params_cached(
        config.seed,
        layer,
        heads,
        head_dim,
        config.bits,
        config.tables,
        config.table_size,
        str(torch.device(device)),
    )
    coefficients = None if params.coefficients is None else params.coefficients.clone()
    return HashParams(params.hyperplanes.clone(), coefficients, params.table_size)


def _check_hash_batch(name: str, tensor: Tensor, batch: int, heads: int, tail: int) -> None:
    """``tensor``'s leading dims (before its last ``tail``) must broadcast to (batch, heads)."""
    lead = tuple(tensor.shape[:-tail])
    if len(lead) > 2 or any(
        s not in (1, t) for s, t in zip(reversed(lead), (heads, batch), strict=False)
    ):
        raise ValueError(
            f"{name} of shape {tuple(tensor.shape)} has leading dims {lead} that do not "
            f"broadcast to (batch, heads) = ({batch}, {heads})"
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
    _check_hash_batch("hyperplanes", hyperplanes, batch, heads, 3)
    if config.table_size is not None and coefficients is None:
        raise ValueError(
            f"table_size={config.table_size} needs coefficients along with the hyperplanes"
        )
    if config.table_size is None and coefficients is not None:
        raise ValueError("coefficients were given but table_size is None (plain signatures)")
    if coefficients is not None:
        _check_hash_batch("coefficients", coefficients, batch, heads, 2)
        coefficients = coefficients.to(query.device)
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
