"""The ``flex`` strategy: masked-mode LSH attention through FlexAttention with a block-sparse mask.

Why: on CUDA the ``bucketed`` kernel has no fused attention kernel to call (its slabs run as
batched GEMMs in a Python loop), while FlexAttention (``torch.nn.attention.flex_attention``)
compiles to a Triton kernel whose forward *and* backward skip the blocks a ``BlockMask`` leaves
out. On CPU nothing is gained (compiled flex is slower than the bucketed kernel and has no
backward), so the ``bucketed`` strategy stays the CPU path.

How (for every batch element, head and table):

1. Queries and keys are sorted by bucket id and padded to a multiple of the block size
   (:data:`DEFAULT_BLOCK` = 128, ``LSHConfig.block_size``), so the compiled kernel sees one
   shape per padded length instead of one per length. Padding queries and keys, and keys no
   query may attend to (the padding mask), get bucket ids no real query or key has. A mask that
   is the same for every query (transformers passes padding as ``(b, 1, n, n)``) is read as the
   key mask it is.
2. The ``BlockMask`` comes straight from the sorted layout with ``BlockMask.from_kv_blocks``,
   with no ``n x n`` tensor: a (query block, key block) pair is kept when the bucket-id ranges of
   its sorted queries and keys overlap; a kept pair whose two blocks hold one and the same single
   bucket is a *full* block (every pair in it collides: the kernel skips ``mask_mod`` there),
   except in tables after the first and under a mask that varies over queries.
3. ``mask_mod`` is the exact same-bucket test. With several tables a pair that already collided
   in an earlier table is blocked in the later ones (first table wins, as in
   :mod:`lshlib.lsh.bucketed`), so every colliding pair is counted exactly once; a mask that varies
   over queries is tested there too, and finite additive mask values go in through
   ``score_mod``.
4. Tables run as one FlexAttention call (tables stacked on the head axis); their outputs,
   moved back to the original order, are merged with the log-sum-exp rule
   ``out = sum_t exp(lse_t - LSE) out_t`` (differentiable: FlexAttention has gradients for its
   LSE). A query with no allowed key gets a zero output, never NaN.

FlexAttention has no attention dropout: with dropout > 0 while training this strategy raises
(set the model's ``attention_probs_dropout_prob`` to 0). FlexAttention has no backward on CPU:
asking for gradients there raises an error naming the strategy and the device (its eager
backward does work once torch's device check is bypassed; the tests use that to check the
gradients, the library does not). Compiled by default on CUDA only (:data:`COMPILE_DEVICES`),
one compiled function per dtype and device; uncompiled ("eager") FlexAttention computes every
score (it is the tests' reference path, not a fast one).

:data:`FLEX_ON_CUDA` (or :func:`flex_on_cuda`) makes the ``bucketed`` strategy run as ``flex``
on CUDA when no attention dropout applies (:func:`resolve_strategy`): the ``lsh_bucketed``
variant then uses FlexAttention on a GPU without any committed configuration changing.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import numbers
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

from lshlib.lsh.bucketed import _check, check_dropout
from lshlib.lsh.masks import NormalizedMask, normalize_mask

__all__ = [
    "DEFAULT_BLOCK",
    "COMPILE_DEVICES",
    "FLEX_ON_CUDA",
    "FlexLayout",
    "check_block_size",
    "flex_layout",
    "flex_lsh_attention",
    "flex_on_cuda",
    "resolve_strategy",
]

log = logging.getLogger(__name__)

DEFAULT_BLOCK = 128
"""Rows and columns of one FlexAttention block (``LSHConfig.block_size``)."""

COMPILE_DEVICES: frozenset[str] = frozenset({"cuda"})
"""Device types on which :func:`flex_lsh_attention` compiles FlexAttention by default."""

FLEX_ON_CUDA = True
"""When true, strategy ``"bucketed"`` runs as ``"flex"`` on CUDA (see :func:`resolve_strategy`)."""

RECOMPILE_LIMIT = 64
"""Dynamo's recompile limit while the compiled function runs: every padded length, batch and
head count compiles anew (``dynamic=False``), more than dynamo's default of 8."""


def check_block_size(block_size: Any) -> int:
    """``block_size`` as an int, a power of two from 16 to 1024, else ``ValueError``."""
    if (
        isinstance(block_size, bool)
        or not isinstance(block_size, numbers.Integral)
        or not 16 <= block_size <= 1024
        or block_size & (block_size - 1)
    ):
        raise ValueError(f"block_size must be a power of two from 16 to 1024, got {block_size!r}")
    return int(block_size)


@contextlib.contextmanager
def flex_on_cuda(enabled: bool) -> Iterator[None]:
    """While active, :data:`FLEX_ON_CUDA` is ``enabled`` (the benchmark times the bucketed
    kernel itself on CUDA with ``flex_on_cuda(False)``). Not thread-safe: a module switch."""
    global FLEX_ON_CUDA
    saved, FLEX_ON_CUDA = FLEX_ON_CUDA, bool(enabled)
    try:
        yield
    finally:
        FLEX_ON_CUDA = saved


def resolve_strategy(strategy: str, query: Tensor, dropout: float) -> str:
    """The strategy a call runs: ``"bucketed"`` becomes ``"flex"`` on CUDA while
    :data:`FLEX_ON_CUDA` is true and no attention dropout applies (``dropout`` is the rate in
    effect: 0 when not training); every other case keeps ``strategy``. With dropout on CUDA the
    bucketed kernel stays, and a warning says so once."""
    if strategy != "bucketed" or not FLEX_ON_CUDA or not query.is_cuda:
        return strategy
    if dropout == 0.0:
        return "flex"
    _warn_dropout_once(dropout)
    return strategy


@functools.cache
def _warn_dropout_once(dropout: float) -> None:
    log.warning(
        "strategy 'bucketed' keeps the bucketed kernel on CUDA while attention dropout %s "
        "applies: FlexAttention has no dropout; set attention_probs_dropout_prob=0 to run flex",
        dropout,
    )


# --------------------------------------------------------------------------------------------
# the block mask from the sorted bucket layout


@dataclass
class FlexLayout:
    """The sorted layout and its ``BlockMask``; the stacked head axis is ``head * T + table``.

    Attributes:
        block_mask: the ``torch.nn.attention.flex_attention.BlockMask`` (batch ``B``, heads
            ``H * T``) over the sorted, padded sequences.
        block_size: rows (and columns) per block.
        shape: ``(B, H, T, n_q, n_k)``.
        n_q_pad, n_k_pad: the padded lengths (multiples of ``block_size``).
        query_order, key_order: ``(B, H*T, n_pad)`` original (padded) position of every sorted
            slot.
        partial, full: ``(B, H*T, n_q_pad / block, n_k_pad / block)`` bool, the kept blocks
            that run ``mask_mod`` and the full ones that skip it (disjoint).
        score_mod: the additive-mask ``score_mod``, or ``None``.
    """

    block_mask: Any
    block_size: int
    shape: tuple[int, int, int, int, int]
    n_q_pad: int
    n_k_pad: int
    query_order: Tensor
    key_order: Tensor
    partial: Tensor
    full: Tensor
    score_mod: Callable | None

    @property
    def kept_fraction(self) -> float:
        """Kept blocks (partial + full) over all blocks of the padded grid."""
        return float((self.partial | self.full).float().mean())

    @property
    def full_fraction(self) -> float:
        """Full blocks over all kept blocks (0 when none is kept)."""
        kept = int((self.partial | self.full).sum())
        return int(self.full.sum()) / kept if kept else 0.0


def _pad_ids(ids: Tensor, n_pad: int, value: Tensor) -> Tensor:
    """``ids`` ``(..., n)`` extended to ``n_pad`` with the 0-d tensor ``value``."""
    extra = n_pad - ids.shape[-1]
    if extra == 0:
        return ids
    return torch.cat([ids, value.expand(*ids.shape[:-1], extra)], dim=-1)


def _padded_len(n: int, block: int) -> int:
    return max(block, -(-n // block) * block)


def _at(t: Tensor, *idx: Any) -> Tensor:
    """``t[idx]``, with index 0 on dims of size 1 (a broadcast mask)."""
    return t[tuple(0 if size == 1 else i for size, i in zip(t.shape, idx, strict=True))]


def _order_by(order: Tensor, values: Tensor, T: int) -> Tensor:
    """``values`` ``(b, h, n_pad)`` (dims of size 1 broadcast) gathered in each table's sorted
    order ``order`` ``(B, H*T, n_pad)``: ``(B, H*T, n_pad)``."""
    B, HT, n = order.shape
    full = values.expand(B, HT // T, n).repeat_interleave(T, dim=1)
    return torch.gather(full, 2, order)


def _block_lists(blocks: Tensor) -> tuple[Tensor, Tensor]:
    """``(num, indices)`` int32 in ``from_kv_blocks``'s layout from a bool block grid: each
    query block's kept key blocks first, in increasing order."""
    num = blocks.sum(dim=-1, dtype=torch.int32)
    indices = torch.sort((~blocks).to(torch.int8), dim=-1, stable=True).indices
    return num, indices.to(torch.int32)


def flex_layout(
    query_buckets: Tensor,
    key_buckets: Tensor,
    mask: NormalizedMask | None = None,
    block_size: int = DEFAULT_BLOCK,
) -> FlexLayout:
    """Sort, pad and build the ``BlockMask`` (see the module docstring) for int bucket ids
    ``(B, H, T, n_q)`` / ``(B, H, T, n_k)`` and a mask normalised to ``(B, H, n_q, n_k)``
    (:func:`lshlib.lsh.masks.normalize_mask`). Nothing is quadratic in ``n``: the largest tensor is
    the block grid, ``(n / block_size)**2`` per (batch, head, table)."""
    from torch.nn.attention.flex_attention import BlockMask

    bs = check_block_size(block_size)
    B, H, T, n_q = query_buckets.shape
    n_k = key_buckets.shape[-1]
    nq_pad, nk_pad = _padded_len(n_q, bs), _padded_len(n_k, bs)
    with torch.no_grad():
        qb, kb = query_buckets.to(torch.int64), key_buckets.to(torch.int64)
        low = torch.minimum(qb.min(), kb.min()) if qb.numel() and kb.numel() else qb.new_tensor(0)
        # ids below every real one: padding queries (low - 2), banned and padding keys (low - 1)
        if mask is not None:
            banned = ~mask.allowed.any(dim=-2).expand(B, H, n_k)
            kb = torch.where(banned.unsqueeze(2), low - 1, kb)
        qb = _pad_ids(qb, nq_pad, low - 2)
        kb = _pad_ids(kb, nk_pad, low - 1)
        sq, q_order = torch.sort(qb.reshape(B, H * T, nq_pad), dim=-1, stable=True)
        sk, k_order = torch.sort(kb.reshape(B, H * T, nk_pad), dim=-1, stable=True)
        q_blocks, k_blocks = sq.view(B, H * T, -1, bs), sk.view(B, H * T, -1, bs)
        q_lo, q_hi = q_blocks[..., 0, None], q_blocks[..., -1, None]
        k_lo, k_hi = k_blocks[..., None, :, 0], k_blocks[..., None, :, -1]
        kept = (q_lo <= k_hi) & (k_lo <= q_hi)
        pair_mask = mask is not None and not mask.key_only
        full = kept & (q_lo == q_hi) & (k_lo == k_hi) & (q_lo == k_lo)
        first_table = (torch.arange(H * T, device=qb.device) % T == 0).view(1, -1, 1, 1)
        full = full & first_table
        if pair_mask:  # a mask varying over queries is tested in mask_mod: no full block
            full = torch.zeros_like(full)
        partial = kept & ~full
        earlier = None
        if T > 1:  # earlier tables' ids in each table's sorted order (sentinels where e >= t)
            table = (torch.arange(H * T, device=qb.device) % T).view(1, -1, 1)
            eq, ek = [], []
            for e in range(T - 1):
                later = table > e
                eq.append(torch.where(later, _order_by(q_order, qb[:, :, e], T), low - 3))
                ek.append(torch.where(later, _order_by(k_order, kb[:, :, e], T), low - 4))
            earlier = torch.stack(eq, dim=2), torch.stack(ek, dim=2)
    mask_mod = _mask_mod(sq, sk, earlier, mask, q_order, k_order, T)
    score_mod = _score_mod(mask, q_order, k_order, T)
    block_mask = BlockMask.from_kv_blocks(
        *_block_lists(partial),
        *_block_lists(full),
        BLOCK_SIZE=bs,
        mask_mod=mask_mod,
        seq_lengths=(nq_pad, nk_pad),
    )
    return FlexLayout(
        block_mask=block_mask,
        block_size=bs,
        shape=(B, H, T, n_q, n_k),
        n_q_pad=nq_pad,
        n_k_pad=nk_pad,
        query_order=q_order,
        key_order=k_order,
        partial=partial,
        full=full,
        score_mod=score_mod,
    )


def _pad_mask(t: Tensor, n_q: int, n_k: int, value: Any) -> Tensor:
    """A ``(b, h, n_q or 1, n_k or 1)`` mask tensor padded on its full-size length dims."""
    pad_q = n_q - t.shape[-2] if t.shape[-2] > 1 else 0
    pad_k = n_k - t.shape[-1] if t.shape[-1] > 1 else 0
    if pad_q == 0 and pad_k == 0:
        return t
    return torch.nn.functional.pad(t, (0, pad_k, 0, pad_q), value=value)


def _mask_mod(sq, sk, earlier, mask, q_order, k_order, T) -> Callable:
    """The exact test of a (sorted query, sorted key) pair; only tensors and the table count are
    captured, so a new call with the same shapes reuses the compiled kernel."""
    pair = None
    if mask is not None and not mask.key_only:
        pair = _pad_mask(mask.allowed, q_order.shape[-1], k_order.shape[-1], False)

    def mask_mod(b, h, q_idx, kv_idx):
        ok = sq[b, h, q_idx] == sk[b, h, kv_idx]
        if earlier is not None:
            eq, ek = earlier
            for e in range(T - 1):
                ok = ok & (eq[b, h, e, q_idx] != ek[b, h, e, kv_idx])
        if pair is not None:
            ok = ok & _at(pair, b, h // T, q_order[b, h, q_idx], k_order[b, h, kv_idx])
        return ok

    return mask_mod


def _score_mod(mask, q_order, k_order, T) -> Callable | None:
    """Finite additive mask values as a ``score_mod`` (``None`` for a pure padding mask)."""
    if mask is None or mask.bias is None:
        return None
    n_q_pad, n_k_pad = q_order.shape[-1], k_order.shape[-1]
    if mask.key_only:  # one value per key: gathered once into each table's sorted key order
        per_key = _pad_mask(mask.bias, 1, n_k_pad, 0.0)[:, :, 0, :]
        sorted_bias = _order_by(k_order, per_key, T)

        def key_bias(score, b, h, q_idx, kv_idx):
            return score + sorted_bias[b, h, kv_idx]

        return key_bias
    bias = _pad_mask(mask.bias, n_q_pad, n_k_pad, 0.0)

    def pair_bias(score, b, h, q_idx, kv_idx):
        return score + _at(bias, b, h // T, q_order[b, h, q_idx], k_order[b, h, kv_idx])

    return pair_bias


# --------------------------------------------------------------------------------------------
# the attention call


@functools.cache
def _compiled(dtype: torch.dtype, device: torch.device) -> Callable:
    """One compiled FlexAttention per dtype and device (static shapes: padded lengths)."""
    from torch.nn.attention.flex_attention import flex_attention

    return torch.compile(flex_attention, dynamic=False, fullgraph=True)


def _lse_kwargs(want: bool) -> dict[str, Any]:
    """Keyword asking FlexAttention for its LSE: ``return_aux`` where torch has it (2.9+),
    else the older ``return_lse``."""
    if not want:
        return {}
    try:
        from torch.nn.attention.flex_attention import AuxRequest
    except ImportError:  # pragma: no cover - older torch
        return {"return_lse": True}
    return {"return_aux": AuxRequest(lse=True)}


def _call_flex(q, k, v, layout: FlexLayout, scaling: float, want_lse: bool, compiled: bool):
    """FlexAttention on the sorted inputs: ``(out, lse or None)``."""
    kwargs = {"score_mod": layout.score_mod, "block_mask": layout.block_mask, "scale": scaling}
    kwargs.update(_lse_kwargs(want_lse))
    if compiled and q.is_cuda and layout.block_size < DEFAULT_BLOCK:
        # the default Triton tiles (128 on an H100) must divide the block size
        kwargs["kernel_options"] = {"BLOCK_M": layout.block_size, "BLOCK_N": layout.block_size}
    if compiled:
        fn = _compiled(q.dtype, q.device)
        config = torch._dynamo.config
        name = "recompile_limit" if hasattr(config, "recompile_limit") else "cache_size_limit"
        with config.patch(**{name: max(RECOMPILE_LIMIT, getattr(config, name))}):
            result = fn(q, k, v, **kwargs)
    else:
        from torch.nn.attention.flex_attention import flex_attention

        with warnings.catch_warnings():  # its advice to compile: the eager path is on purpose
            warnings.filterwarnings("ignore", message=".*flex_attention called without torch")
            result = flex_attention(q, k, v, **kwargs)
    if not want_lse:
        return result, None
    out, aux = result
    return out, getattr(aux, "lse", aux)


def _key_only(mask: NormalizedMask | None) -> NormalizedMask | None:
    """A mask that is the same for every query (transformers hands a padding mask over as
    ``(b, 1, n, n)``) as its one row: padding keys then leave the buckets, full blocks stay."""
    if mask is None or mask.key_only:
        return mask
    first = mask.allowed[..., :1, :]
    if not bool((mask.allowed == first).all()):
        return mask
    if mask.bias is not None and not bool((mask.bias == mask.bias[..., :1, :]).all()):
        return mask
    bias = None if mask.bias is None else mask.bias[..., :1, :]
    return NormalizedMask(first, bias)


def _check_backward_device(query: Tensor, key: Tensor, value: Tensor) -> None:
    """FlexAttention's backward exists on CUDA only: a clear error instead of torch's."""
    needs_grad = torch.is_grad_enabled() and any(t.requires_grad for t in (query, key, value))
    if needs_grad and query.device.type in ("cpu", "mps"):
        raise NotImplementedError(
            f"strategy 'flex' has no backward on device {query.device.type!r}: FlexAttention "
            f"(torch {torch.__version__}) computes gradients on CUDA only. Use strategy "
            "'bucketed' on this device, or call under torch.no_grad() for a forward pass."
        )


def _sorted_inputs(t: Tensor, order: Tensor, T: int, n_pad: int) -> Tensor:
    """``(B, H, n, d)`` padded to ``n_pad`` and gathered in each table's sorted order."""
    B, H, n, d = t.shape
    if n_pad > n:
        t = torch.nn.functional.pad(t, (0, 0, 0, n_pad - n))
    t = t.unsqueeze(2).expand(B, H, T, n_pad, d).reshape(B, H * T, n_pad, d)
    return torch.gather(t, 2, order.unsqueeze(-1).expand(-1, -1, -1, d))


def _merge_tables(out: Tensor, lse: Tensor) -> Tensor:
    """LSE merge over the table axis (dim 2) of ``out`` ``(B, H, T, n, dv)`` with ``lse``
    ``(B, H, T, n)`` (``-inf`` on rows without an allowed key): ``(B, H, n, dv)``, float32
    or float64."""
    acc = torch.float64 if out.dtype == torch.float64 else torch.float32
    lse = lse.to(acc)
    top = lse.detach().amax(dim=2, keepdim=True)
    top = torch.where(torch.isfinite(top), top, 0.0)
    weight = torch.exp(lse - top)  # 0 where the table had no allowed key for the row
    total = weight.sum(dim=2)
    numer = (out.to(acc) * weight.unsqueeze(-1)).sum(dim=2)
    return numer / torch.where(total > 0, total, 1.0).unsqueeze(-1)


def flex_lsh_attention(
    query: Tensor,
    key: Tensor,
    value: Tensor,
    query_buckets: Tensor,
    key_buckets: Tensor,
    attention_mask: Tensor | None = None,
    *,
    scaling: float,
    dropout: float = 0.0,
    training: bool = False,
    block_size: int = DEFAULT_BLOCK,
    compiled: bool | None = None,
) -> Tensor:
    """Masked-mode LSH attention through FlexAttention; see the module docstring.

    Args:
        query, key, value: ``(B, H, n_q, d)``, ``(B, H, n_k, d)``, ``(B, H, n_k, d_v)``, one
            floating dtype.
        query_buckets, key_buckets: int ``(B, H, T, n_q)`` / ``(B, H, T, n_k)`` bucket ids.
        attention_mask: as :func:`lshlib.lsh.bucketed.bucketed_attention` (bool, 0/1 integer or
            additive float, broadcastable to ``(B, H, n_q, n_k)``); it gets no gradient.
        scaling: score scale (usually ``d**-0.5``).
        dropout, training: FlexAttention has no attention dropout: ``dropout > 0`` while
            training raises ``ValueError``.
        block_size: FlexAttention block size (power of two, 16 to 1024).
        compiled: compile FlexAttention (one function per dtype and device, static shapes);
            ``None``: on the device types of :data:`COMPILE_DEVICES` (CUDA).

    Returns:
        ``(B, H, n_q, d_v)``: the dense masked-mode result up to float rounding; rows with no
        allowed key are zero.
    """
    _check(query, key, value, query_buckets, key_buckets)
    dropout = check_dropout(dropout)
    if training and dropout > 0.0:
        raise ValueError(
            f"strategy 'flex' has no attention dropout (FlexAttention), got dropout={dropout} "
            "while training: set the model's attention_probs_dropout_prob to 0, or use "
            "strategy 'bucketed'"
        )
    _check_backward_device(query, key, value)
    B, H, n_q, _ = query.shape
    T, n_k, dv = query_buckets.shape[2], key.shape[-2], value.shape[-1]
    if n_q == 0 or n_k == 0:
        return query.new_zeros((B, H, n_q, dv))
    if compiled is None:
        compiled = query.device.type in COMPILE_DEVICES
    if compiled and T > 1 and query.device.type == "cpu":
        raise ValueError(
            f"strategy 'flex' compiled on device 'cpu' supports one table, got {T}: merging "
            "tables needs FlexAttention's log-sum-exp, which torch.compile on CPU does not "
            "return; use compiled=False (or strategy 'bucketed') on CPU"
        )
    mask = _key_only(normalize_mask(attention_mask, (B, H, n_q, n_k), query.dtype))
    layout = flex_layout(query_buckets, key_buckets, mask, block_size)
    qs = _sorted_inputs(query, layout.query_order, T, layout.n_q_pad)
    ks = _sorted_inputs(key, layout.key_order, T, layout.n_k_pad)
    vs = _sorted_inputs(value, layout.key_order, T, layout.n_k_pad)
    out, lse = _call_flex(qs, ks, vs, layout, scaling, T > 1, compiled)
    # back to the original order: the inverse permutation by a scatter (no second sort)
    order = layout.query_order
    inverse = torch.empty_like(order).scatter_(
        -1, order, torch.arange(order.shape[-1], device=order.device).expand_as(order)
    )
    out = torch.gather(out, 2, inverse.unsqueeze(-1).expand(-1, -1, -1, dv))[:, :, :n_q]
    out = out.reshape(B, H, T, n_q, dv)
    if T == 1:
        return out[:, :, 0]
    lse = torch.gather(lse, 2, inverse)[:, :, :n_q].reshape(B, H, T, n_q)
    return _merge_tables(out, lse).to(query.dtype)
