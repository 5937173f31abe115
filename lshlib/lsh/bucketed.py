"""The ``bucketed`` strategy: masked-mode LSH attention that computes only colliding pairs.

Why: the dense strategy computes all ``n**2`` scores and then masks, so LSH can never save time
there. :func:`lshlib.lsh.layout.plan_layout` sorts queries and keys by bucket and cuts them
into bucket-aligned chunks (queries) and windows (exactly that bucket's keys), grouped in slabs
of a few MB padded to a common height and width. Each slab runs as one batch of small attention
problems (batch = chunks), so the work is batched across buckets, heads, tables and batch
elements with no Python loop over buckets, and every intermediate stays cache-sized.

A slab runs through a fused attention kernel where one exists and the windows are at least
:data:`FUSED_MIN_WIDTH` keys wide (CPU: ``aten._scaled_dot_product_flash_attention_for_cpu``,
which also returns the per-row log-sum-exp, LSE), otherwise through batched GEMMs (any device,
narrow windows, dropout). The slab's mask is additive, ``finfo.min`` where blocked: window
padding, keys the attention mask blocks, and (tables after the first) pairs that already
collided in an earlier table, so a pair colliding in several tables is counted once. A row with
only blocked keys is recognised by its LSE near ``finfo.min`` and gets a zero output, never NaN.
Keys that no query may attend to (padding) never enter a window at all.

Tables are merged with the LSE rule: ``out = sum_t exp(lse_t - LSE) out_t`` with
``LSE = logsumexp_t lse_t``.

Memory, as FlashAttention: :class:`_BucketedAttention` is a custom autograd function whose
forward keeps only the inputs, the output, the bucket layout and the per-row LSE. Its backward
recomputes each slab's scores: with the *global* LSE and output, the slab's probabilities are
``P = exp(S - LSE)`` and ``dS = P * (dP - rowsum(dO * O))``, exactly what a fused attention
backward computes when handed (out, LSE), so the CPU path reuses the fused backward kernel.
Dropout (training only) is redrawn identically in backward from a per-call seed. Backward thus
costs one more score GEMM than plain autograd (5 products per pair instead of 4).

Where the time goes (CPU, 4 bits / 1 table, n = 8192, d = 64, ``torch.profiler``): about
two thirds in the fused kernel, the rest in gathers, index bookkeeping, sorting and hashing.

Semantics are those of ``lshlib.lsh.attention`` masked mode: pair (i, j) is allowed iff query i and
key j share a bucket in at least one table and the attention mask allows it (see
:mod:`lshlib.lsh.masks`); probabilities are the softmax of ``q_i.k_j * scaling + bias_ij`` over the
allowed keys. The attention mask gets no gradient.
"""

from __future__ import annotations

import numbers
from dataclasses import dataclass

import torch
from torch import Tensor

from lshlib.lsh.layout import DEFAULT_CHUNK, SLAB_ELEMENTS, BucketLayout, plan_layout
from lshlib.lsh.masks import normalize_mask

__all__ = [
    "BucketLayout",
    "plan_layout",
    "bucketed_attention",
    "check_dropout",
    "DEFAULT_CHUNK",
    "FUSED_MIN_WIDTH",
    "SLAB_ELEMENTS",
]


def _check(query: Tensor, key: Tensor, value: Tensor, qb: Tensor, kb: Tensor) -> None:
    if query.dim() != 4 or key.dim() != 4 or value.dim() != 4:
        raise ValueError(
            "query, key and value must have shape (batch, heads, n, head_dim), got "
            f"{tuple(query.shape)}, {tuple(key.shape)}, {tuple(value.shape)}"
        )
    if key.shape[:-1] != value.shape[:-1] or query.shape[:2] != key.shape[:2]:
        raise ValueError(
            f"incompatible shapes: query {tuple(query.shape)}, key {tuple(key.shape)}, "
            f"value {tuple(value.shape)}"
        )
    if query.shape[-1] != key.shape[-1]:
        raise ValueError(f"query and key widths differ: {query.shape[-1]} vs {key.shape[-1]}")
    B, H, nq, _ = query.shape
    nk = key.shape[-2]
    if qb.dim() != 4 or qb.shape[:2] != (B, H) or qb.shape[-1] != nq or qb.shape[2] < 1:
        raise ValueError(
            f"query_buckets must have shape (batch, heads, tables, n_q) = ({B}, {H}, T>=1, {nq}),"
            f" got {tuple(qb.shape)}"
        )
    if tuple(kb.shape) != (B, H, qb.shape[2], nk):
        raise ValueError(
            f"key_buckets must have shape ({B}, {H}, {qb.shape[2]}, {nk}), got {tuple(kb.shape)}"
        )
    if not query.dtype == key.dtype == value.dtype or not query.dtype.is_floating_point:
        raise ValueError(
            "query, key and value must share one floating dtype, got "
            f"{query.dtype}, {key.dtype} and {value.dtype}"
        )
    if qb.dtype.is_floating_point or kb.dtype.is_floating_point or qb.dtype == torch.bool:
        raise ValueError(f"bucket ids must be integers, got {qb.dtype} and {kb.dtype}")


def check_dropout(dropout: float) -> float:
    """``dropout`` as a float in ``[0, 1)``, else ``ValueError`` (one rule for every strategy)."""
    if isinstance(dropout, bool) or not isinstance(dropout, numbers.Real):
        raise ValueError(f"dropout must be a number in [0, 1), got {dropout!r}")
    if not 0.0 <= float(dropout) < 1.0:
        raise ValueError(f"dropout must be in [0, 1), got {dropout!r}")
    return float(dropout)


def _acc(dtype: torch.dtype) -> torch.dtype:
    """The dtype scores accumulate in: float64 for float64 inputs, else float32."""
    return torch.float64 if dtype == torch.float64 else torch.float32


def _fused_cpu_available() -> bool:
    return hasattr(torch.ops.aten, "_scaled_dot_product_flash_attention_for_cpu")


@dataclass
class _Plan:
    """Everything the slab computations need besides q, k, v (built once per call)."""

    layout: BucketLayout
    scaling: float
    key_bias: Tensor | None  # (B*H*n_k,) finite additive bias per key, or None
    pair_ok: Tensor | None  # (B*H*n_q*n_k,) bool, a mask that varies over queries
    pair_bias: Tensor | None  # same shape, additive
    qb: Tensor | None  # (B*H*n_q, T) bucket ids, for the earlier-table test (T > 1)
    kb: Tensor | None  # (B*H*n_k, T)
    dropout: float
    seed: int
    fused: bool


def _slab_rows(lay: BucketLayout, slab: int) -> tuple[Tensor, Tensor, Tensor]:
    """Query rows (gather), their destinations (scatter, padding -> dump row) and the
    ``(S, w)`` key rows of slab ``slab``; padded columns repeat a valid row (masked)."""
    s, e, h, w, base = lay.slabs[slab]
    q_rows = lay.query_rows[base : base + (e - s) * h]
    dest = lay.query_dest[base : base + (e - s) * h]
    offs = torch.arange(w, device=q_rows.device)
    last = lay.key_order.shape[0] - 1
    k_rows = lay.key_order[(lay.key_start[s:e, None] + offs).clamp(max=last)]
    return q_rows, dest, k_rows


@dataclass
class _SlabMask:
    """A slab's mask in parts, so the GEMM path can apply it in place on the scores.

    ``key_add`` ``(S, 1, w)``: additive per key (bias, :data:`NEG` on window padding);
    ``pair_add`` ``(S, h, w)``: additive per pair (a mask varying over queries); ``earlier``:
    ``(S, h, 1)`` / ``(S, 1, w)`` bucket ids of each earlier table, a pair that matches in one
    of them is blocked (it is counted in that table)."""

    key_add: Tensor | None
    pair_add: Tensor | None
    earlier: list[tuple[Tensor, Tensor]]

    def apply_(self, scores: Tensor) -> Tensor:
        """Add the mask to ``(S, h, w)`` scores in place."""
        if self.key_add is not None:
            scores.add_(self.key_add)
        if self.pair_add is not None:
            scores.add_(self.pair_add)
        neg = torch.finfo(scores.dtype).min
        for qc, kc in self.earlier:
            scores.masked_fill_(qc == kc, neg)
        return scores

    def dense(self, h: int, dtype: torch.dtype) -> Tensor | None:
        """The whole mask as one additive ``(S, 1, 1 or h, w)`` tensor (fused kernel input)."""
        if self.pair_add is None and not self.earlier:
            return None if self.key_add is None else self.key_add.to(dtype).unsqueeze(1)
        base = self.key_add if self.key_add is not None else self.pair_add
        assert base is not None or self.earlier
        S, w = (base.shape[0], base.shape[-1]) if base is not None else (0, 0)
        if base is None:
            qc, kc = self.earlier[0]
            S, w = kc.shape[0], kc.shape[-1]
        mask = torch.zeros(S, h, w, dtype=dtype, device=(base if base is not None else kc).device)
        return self.apply_(mask).unsqueeze(1)


NEG_FRACTION = 0.5
"""A row whose LSE is below ``NEG_FRACTION * finfo.min`` had only blocked keys (blocked scores
sit at ``finfo.min``, allowed ones far above: biases are clamped to ``finfo.min / 4``)."""


def _slab_mask(plan: _Plan, slab: int, q_rows: Tensor, k_rows: Tensor, dtype) -> _SlabMask:
    """The parts of slab ``slab``'s mask (blocked = ``finfo(dtype).min``, never ``-inf``, so a
    row with no allowed key stays finite and is found by its LSE)."""
    lay = plan.layout
    s, e, h, w, _ = lay.slabs[slab]
    S, n_k, table = e - s, lay.shape[4], int(lay.chunk_table[s])
    neg = torch.finfo(dtype).min
    key_add = None if plan.key_bias is None else plan.key_bias[k_rows].view(S, 1, w).to(dtype)
    if int(lay.key_len[s:e].min()) < w:  # some window is narrower than the slab
        pad = (torch.arange(w, device=k_rows.device) >= lay.key_len[s:e, None]).view(S, 1, w)
        if key_add is None:
            key_add = torch.zeros(pad.shape, dtype=dtype, device=pad.device)
        key_add = key_add.masked_fill(pad, neg)
    pair_add = None
    if plan.pair_ok is not None:
        idx = q_rows.view(S, h, 1) * n_k + torch.remainder(k_rows, n_k).view(S, 1, w)
        ok = plan.pair_ok[idx]
        base = plan.pair_bias[idx].to(dtype) if plan.pair_bias is not None else None
        if base is None:
            pair_add = torch.zeros(ok.shape, dtype=dtype, device=ok.device)
        else:
            pair_add = base
        pair_add = pair_add.masked_fill_(~ok, neg)
    earlier = []
    if table > 0:
        assert plan.qb is not None and plan.kb is not None
        qb, kb = plan.qb[q_rows, :table], plan.kb[k_rows.reshape(-1), :table]
        earlier = [(qb[:, t].view(S, h, 1), kb[:, t].view(S, 1, w)) for t in range(table)]
    return _SlabMask(key_add, pair_add, earlier)


def _keep_mask(plan: _Plan, slab: int, shape: tuple[int, ...], device: torch.device) -> Tensor:
    """Dropout's keep mask for a slab, redrawn identically in backward from the call's seed."""
    gen = torch.Generator(device=device).manual_seed(plan.seed + slab)
    return torch.rand(shape, generator=gen, device=device) >= plan.dropout


def _scores(plan: _Plan, qs: Tensor, ks: Tensor, mask: _SlabMask, acc: torch.dtype) -> Tensor:
    """Masked, scaled scores ``(S, h, w)`` in the accumulation dtype, by one batched GEMM."""
    if qs.dtype == acc:
        scores = torch.bmm(qs, ks.transpose(1, 2))
    else:
        scores = torch.bmm(qs, ks.transpose(1, 2)).to(acc)
    return mask.apply_(scores)


def _math_forward(
    plan: _Plan, slab: int, qs: Tensor, ks: Tensor, vs: Tensor, mask: _SlabMask
) -> tuple[Tensor, Tensor]:
    """One slab by batched GEMMs: output ``(S, h, dv)`` and LSE ``(S, h)``."""
    acc = torch.float64 if qs.dtype == torch.float64 else torch.float32
    scores = _scores(plan, qs, ks, mask, acc)
    top = scores.amax(dim=-1, keepdim=True)  # finite: blocked scores are finfo.min
    weights = scores.sub_(top).exp_()  # one exp per score (logsumexp would take two)
    total = weights.sum(dim=-1, keepdim=True)  # >= 1
    lse = (top + total.log()).squeeze(-1)
    if plan.dropout > 0.0:
        weights.mul_(_keep_mask(plan, slab, weights.shape, weights.device))
        total = total * (1.0 - plan.dropout)
    return torch.bmm(weights.to(vs.dtype), vs).div_(total.to(vs.dtype)), lse


def _math_backward(
    plan: _Plan,
    slab: int,
    go: Tensor,
    qs: Tensor,
    ks: Tensor,
    vs: Tensor,
    out: Tensor,
    lse: Tensor,
    mask: _SlabMask,
) -> tuple[Tensor, Tensor, Tensor]:
    """FlashAttention's backward for one slab, given the global output and LSE."""
    acc = lse.dtype
    probs = _scores(plan, qs, ks, mask, acc).sub_(lse.unsqueeze(-1)).exp_()  # +inf LSE -> 0
    go_a = go.to(acc)
    dprobs = torch.bmm(go_a, vs.to(acc).transpose(1, 2))
    dropped = probs
    if plan.dropout > 0.0:
        keep = _keep_mask(plan, slab, probs.shape, probs.device) / (1.0 - plan.dropout)
        dropped, dprobs = probs * keep, dprobs.mul_(keep)
    delta = (go_a * out.to(acc)).sum(-1, keepdim=True)
    dscores = dprobs.sub_(delta).mul_(probs)
    dq = torch.bmm(dscores, ks.to(acc))  # w.r.t. the scaled queries
    dk = torch.bmm(dscores.transpose(1, 2), qs.to(acc))
    dv = torch.bmm(dropped.transpose(1, 2), go_a)
    return dq, dk, dv


FUSED_MIN_WIDTH = 64
"""Slabs with narrower windows run as batched GEMMs even where the fused kernel exists: for
many tiny problems its per-problem overhead costs more than the GEMMs' materialised scores."""


def _use_fused(plan: _Plan, slab: int) -> bool:
    return plan.fused and plan.dropout == 0.0 and plan.layout.slabs[slab].width >= FUSED_MIN_WIDTH


def _gather(plan: _Plan, slab: int, q2: Tensor, k2: Tensor, v2: Tensor):
    """Rows, destinations, gathered ``(S, h, d)`` queries and ``(S, w, d)`` keys and values."""
    s, e, h, w, _ = plan.layout.slabs[slab]
    q_rows, dest, k_rows = _slab_rows(plan.layout, slab)
    flat = k_rows.reshape(-1)
    qs = q2.index_select(0, q_rows).view(e - s, h, -1)
    ks = k2.index_select(0, flat).view(e - s, w, -1)
    vs = v2.index_select(0, flat).view(e - s, w, -1)
    return q_rows, dest, k_rows, qs, ks, vs


def _slab_forward(plan: _Plan, slab: int, q2: Tensor, k2: Tensor, v2: Tensor):
    """One slab: ``(dest, out (S*h, dv), lse (S*h,))``; LSE ``-inf`` and output 0 on rows with
    no allowed key."""
    q_rows, dest, k_rows, qs, ks, vs = _gather(plan, slab, q2, k2, v2)
    mask = _slab_mask(plan, slab, q_rows, k_rows, q2.dtype)
    if _use_fused(plan, slab):
        op = torch.ops.aten._scaled_dot_product_flash_attention_for_cpu
        o, lse = op(
            qs.unsqueeze(1),
            ks.unsqueeze(1),
            vs.unsqueeze(1),
            attn_mask=mask.dense(qs.shape[1], q2.dtype),
            scale=1.0,
        )
    else:
        o, lse = _math_forward(plan, slab, qs, ks, vs, mask)
    o, lse = o.reshape(-1, o.shape[-1]), lse.reshape(-1)
    lse = lse if lse.dtype == torch.float64 else lse.float()
    if mask.pair_add is not None or mask.earlier:  # only then can a row lose every key
        empty = lse < NEG_FRACTION * torch.finfo(q2.dtype).min
        o, lse = o.masked_fill_(empty.unsqueeze(-1), 0.0), lse.masked_fill_(empty, float("-inf"))
    return dest, o, lse


def _merge_tables(results: list[tuple[Tensor, Tensor, Tensor]], rows: int, dv: int, acc):
    """LSE merge of the tables' partial results: ``(out (rows+1, dv), lse (rows+1,))``."""
    dev = results[0][1].device
    top = torch.full((rows + 1,), float("-inf"), dtype=acc, device=dev)
    for dest, _, lse in results:
        top.scatter_reduce_(0, dest, lse, "amax")
    top = torch.where(torch.isfinite(top), top, 0.0)
    numer = torch.zeros(rows + 1, dv, dtype=acc, device=dev)
    total = torch.zeros(rows + 1, dtype=acc, device=dev)
    for dest, o, lse in results:
        weight = torch.exp(lse - top[dest])  # 0 where the row had no allowed key
        numer.index_add_(0, dest, o.to(acc) * weight.unsqueeze(-1))
        total.index_add_(0, dest, weight)
    found = total > 0
    out = numer / torch.where(found, total, 1.0).unsqueeze(-1)
    return out, torch.where(found, top + torch.log(total), float("-inf"))


class _BucketedAttention(torch.autograd.Function):
    """Bucketed attention with a recomputing backward (see the module docstring)."""

    @staticmethod
    def forward(ctx, query: Tensor, key: Tensor, value: Tensor, plan: _Plan) -> Tensor:
        B, H, n_q, d = query.shape
        dv, rows = value.shape[-1], B * H * n_q
        acc = _acc(query.dtype)
        # Queries are scaled once (n*d work) instead of every score; float16 / bfloat16 work in
        # float32 (scores past 65504 stay finite, as SDPA), the output in the inputs' dtype.
        q2, k2, v2 = (
            (query.to(acc) * plan.scaling).reshape(rows, d),
            key.to(acc).reshape(-1, d),
            value.to(acc).reshape(-1, dv),
        )
        slabs = range(len(plan.layout.slabs))
        if plan.layout.shape[2] == 1 or not slabs:  # one table: each row is computed once
            out = q2.new_zeros((rows + 1, dv))
            lse = torch.full((rows + 1,), float("-inf"), dtype=acc, device=query.device)
            for slab in slabs:
                dest, o, lse_s = _slab_forward(plan, slab, q2, k2, v2)
                out.index_copy_(0, dest, o.to(out.dtype))
                lse.index_copy_(0, dest, lse_s.to(acc))
        else:
            parts = [_slab_forward(plan, slab, q2, k2, v2) for slab in slabs]
            out, lse = _merge_tables([(d_, o, x.to(acc)) for d_, o, x in parts], rows, dv, acc)
        result = out[:rows].to(query.dtype).view(B, H, n_q, dv)
        ctx.plan = plan
        ctx.save_for_backward(query, key, value, result, lse[:rows])
        return result

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad_out: Tensor):
        query, key, value, out, lse = ctx.saved_tensors
        plan: _Plan = ctx.plan
        B, H, n_q, d = query.shape
        dv, rows = value.shape[-1], B * H * n_q
        acc = lse.dtype
        q2, k2, v2 = (
            (query.to(acc) * plan.scaling).reshape(rows, d),
            key.to(acc).reshape(-1, d),
            value.to(acc).reshape(-1, dv),
        )
        pad = q2.new_zeros((1, dv))  # the dump row: no gradient flows from padding slots
        go2 = torch.cat([grad_out.reshape(rows, dv).to(acc), pad])
        o2 = torch.cat([out.reshape(rows, dv).to(acc), pad])
        inf = lse.new_full((1,), float("inf"))  # +inf LSE: zero probabilities in recompute
        lse2 = torch.cat([torch.where(torch.isfinite(lse), lse, float("inf")), inf])
        dq = torch.zeros(rows + 1, d, dtype=acc, device=query.device)
        dk = torch.zeros(k2.shape, dtype=acc, device=query.device)
        dvv = torch.zeros(v2.shape, dtype=acc, device=query.device)
        for slab in range(len(plan.layout.slabs)):
            q_rows, dest, k_rows, qs, ks, vs = _gather(plan, slab, q2, k2, v2)
            mask = _slab_mask(plan, slab, q_rows, k_rows, acc)
            S, h = qs.shape[:2]
            go, o, lse_s = go2[dest].view(S, h, dv), o2[dest].view(S, h, dv), lse2[dest]
            if _use_fused(plan, slab):
                op = torch.ops.aten._scaled_dot_product_flash_attention_for_cpu_backward
                grads = op(
                    *(t.unsqueeze(1) for t in (go, qs, ks, vs, o)),
                    lse_s.view(S, 1, h),
                    0.0,
                    False,
                    attn_mask=mask.dense(h, acc),
                    scale=1.0,
                )
            else:
                grads = _math_backward(plan, slab, go, qs, ks, vs, o, lse_s.view(S, h), mask)
            flat = k_rows.reshape(-1)
            dq.index_add_(0, dest, grads[0].reshape(-1, d).to(acc))
            dk.index_add_(0, flat, grads[1].reshape(-1, d).to(acc))
            dvv.index_add_(0, flat, grads[2].reshape(-1, dv).to(acc))
        dt = query.dtype
        return (
            dq[:rows].mul_(plan.scaling).to(dt).view_as(query),
            dk.to(dt).view_as(key),
            dvv.to(dt).view_as(value),
            None,
        )


def _make_plan(
    query: Tensor,
    query_buckets: Tensor,
    key_buckets: Tensor,
    attention_mask: Tensor | None,
    scaling: float,
    dropout: float,
    chunk: int,
) -> _Plan:
    """Normalise the mask (padding keys leave the buckets) and lay out the slabs."""
    B, H, T, n_q = query_buckets.shape
    n_k = key_buckets.shape[-1]
    mask = normalize_mask(attention_mask, (B, H, n_q, n_k), _acc(query.dtype))
    key_bias = pair_ok = pair_bias = None
    if mask is not None:
        # A key no query may attend to (padding) gets a bucket no query has, so it never
        # enters a window: it costs nothing and cannot change the layout.
        banned = ~mask.allowed.any(dim=-2).expand(B, H, n_k)
        if bool(banned.any()):
            low = torch.minimum(query_buckets.min(), key_buckets.min()) - 1
            key_buckets = torch.where(banned.unsqueeze(2), low, key_buckets)
    if mask is not None and mask.key_only:
        if mask.bias is not None:  # finite values on allowed keys are added to the scores
            key_bias = mask.bias[..., 0, :].expand(B, H, n_k).reshape(-1)
    elif mask is not None:
        pair_ok = mask.allowed.expand(B, H, n_q, n_k).reshape(-1)
        if mask.bias is not None:
            pair_bias = mask.bias.expand(B, H, n_q, n_k).reshape(-1)
    qb = kb = None
    if T > 1:  # bucket ids for the earlier-table test, in the narrowest integer type that fits
        ids = torch.stack([query_buckets.min(), query_buckets.max()]).tolist()
        ids_t = torch.int32 if -(2**31) < ids[0] and ids[1] < 2**31 else torch.int64
        qb = query_buckets.to(ids_t).permute(0, 1, 3, 2).reshape(B * H * n_q, T)
        kb = key_buckets.to(ids_t).permute(0, 1, 3, 2).reshape(B * H * n_k, T)
    fused = query.device.type == "cpu" and _fused_cpu_available()
    seed = int(torch.randint(0, 2**62, (1,)).item()) if dropout > 0.0 else 0
    layout = plan_layout(query_buckets, key_buckets, chunk)
    return _Plan(layout, scaling, key_bias, pair_ok, pair_bias, qb, kb, dropout, seed, fused)


def bucketed_attention(
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
    chunk: int = DEFAULT_CHUNK,
) -> Tensor:
    """Masked-mode LSH attention over colliding pairs only; see the module docstring.

    Args:
        query, key, value: ``(B, H, n_q, d)``, ``(B, H, n_k, d)``, ``(B, H, n_k, d_v)``, one
            floating dtype.
        query_buckets, key_buckets: int ``(B, H, T, n_q)`` / ``(B, H, T, n_k)`` bucket ids.
        attention_mask: bool (True = attend), integer 0/1 or additive float mask broadcastable
            to ``(B, H, n_q, n_k)``, or None (see :func:`lshlib.lsh.masks.normalize_mask`). A mask
            constant over queries (padding) costs nothing per pair: blocked keys are dropped
            from the buckets. The mask gets no gradient.
        scaling: score scale (usually ``d**-0.5``).
        dropout, training: dropout on the probabilities when training (as BERT); the mask is
            drawn from torch's global RNG, so ``torch.manual_seed`` makes it reproducible.
        chunk: largest query rows per chunk (see :data:`DEFAULT_CHUNK`).

    Returns:
        ``(B, H, n_q, d_v)``: the dense masked-mode result up to float rounding; rows with no
        allowed key are zero. Probabilities are never formed (``lsh_attention`` returns None).
    """
    _check(query, key, value, query_buckets, key_buckets)
    dropout = check_dropout(dropout)
    if not training:
        dropout = 0.0
    B, H, n_q, _ = query.shape
    n_k, dv = key.shape[-2], value.shape[-1]
    if n_q == 0 or n_k == 0:
        return query.new_zeros((B, H, n_q, dv))
    plan = _make_plan(query, query_buckets, key_buckets, attention_mask, scaling, dropout, chunk)
    return _BucketedAttention.apply(query, key, value, plan)
