"""The ``bucketed`` strategy: masked-mode LSH attention that computes only colliding pairs.

Why: the dense strategy computes all ``n**2`` scores and then masks, so LSH can never save time
there. Here, for every (batch, head, table) the queries and keys are sorted by bucket id
(``torch.sort``); the sorted queries are cut into chunks of ``chunk`` rows that never straddle a
bucket, and each chunk is scored against a window holding exactly the keys of its bucket (a
contiguous range of the sorted keys). No bucket is ever cut, so the result is exact whatever the
bucket sizes. All chunks of all (batch, head, table) go into one flat list, ordered by window
width, and are processed in slabs of a few MB (all chunks of a slab share the slab's largest
window): the work is batched across buckets, heads, tables and batch, windows are padded only
to their slab's width, and every intermediate stays cache-sized (large temporaries on CPU cost
more in page faults than in arithmetic; SDPA's flash kernel avoids them too).

Softmax across tables: a pair colliding in several tables is counted once, in the first table
where it collides (later tables mask pairs that already collided earlier). Each chunk yields a
softmax over its window, its output and its log-sum-exp; the tables' partial results are merged
with the log-sum-exp rule (scatter-added back to the query rows). A query with no allowed key
gets a zero output (the contract's "attends to nothing"), never NaN.

Semantics are those of ``lshlib.attention`` masked mode: pair (i, j) is allowed iff query i and
key j share a bucket in at least one table and ``attention_mask[i, j] > finfo.min / 2``;
probabilities are the softmax of ``q_i.k_j * scaling + mask_ij`` over the allowed keys. Gradients
come from plain differentiable torch ops (index_select, matmul, exp): no custom autograd.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

__all__ = ["BucketLayout", "plan_layout", "bucketed_attention", "DEFAULT_CHUNK", "SLAB_ELEMENTS"]

SLAB_ELEMENTS = 1 << 20
"""Score entries per slab (4 MB in float32): large enough to amortise per-op overhead (and the
cost of each parallel region on a busy machine), small enough to stay in malloc's reuse pool."""

WIDTH_SLACK = 1.25
"""Widest window in a slab, relative to its narrowest (see :func:`_slabs`)."""

DEFAULT_CHUNK = 256
"""Largest query-chunk height. A bucket's keys are copied once per chunk of its queries, so tall
chunks copy less; short chunks bound the slab's padding. Buckets are split into near-equal chunks,
so padding stays small whatever this value."""


@dataclass
class BucketLayout:
    """Where every query and key goes in the chunked computation.

    The ``N`` chunks of all (batch, head, table) groups form one flat list, sorted by table and
    window width; a chunk holds up to ``chunk`` query rows of one bucket (a bucket with more rows
    is split into near-equal chunks), and its window holds that bucket's keys. Row indices are
    global: ``bh * n + i`` into the ``(B*H*n, d)`` view of the inputs.

    Attributes:
        shape: ``(B, H, T, n_q, n_k)``.
        chunk: the largest chunk height.
        query_rows: ``(R,)`` global query row of every slot, slab after slab (slab ``k`` holds
            ``count * height`` slots); padding slots hold a dummy row whose result is discarded.
        query_dest: ``(R,)`` the same rows with padding slots pointing at a dump row
            ``B*H*n_q`` (where results are scattered back to).
        key_start: ``(N,)`` start of each chunk's window in the flat sorted-key order.
        key_len: ``(N,)`` keys in each window (the bucket's keys), non-decreasing.
        heights: ``(N,)`` query rows in each chunk.
        key_order: ``(B*H*T*n_k,)`` global key row of every flat sorted-key position.
        chunk_table: ``(N,)`` table of every chunk.
        slabs: ``(first_chunk, end_chunk, height, width, first_slot)`` for each slab: its chunks
            (all of one table) are computed together, padded to ``height`` rows and ``width``
            keys.
    """

    shape: tuple[int, int, int, int, int]
    chunk: int
    query_rows: Tensor
    query_dest: Tensor
    key_start: Tensor
    key_len: Tensor
    heights: Tensor
    key_order: Tensor
    chunk_table: Tensor
    slabs: list[tuple[int, int, int, int, int]]

    @property
    def num_chunks(self) -> int:
        return int(self.key_len.shape[0])

    @property
    def computed_scores(self) -> int:
        """Query-key dot products the kernel computes, padding included."""
        return sum((e - s) * h * w for s, e, h, w, _ in self.slabs)

    @property
    def bucket_pairs(self) -> int:
        """Same-bucket (query, key) pairs summed over tables: the useful part of the work
        (a pair colliding in k tables is computed k times, and counted once in the softmax)."""
        return int((self.heights * self.key_len).sum())


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
    if qb.dtype.is_floating_point or kb.dtype.is_floating_point or qb.dtype == torch.bool:
        raise ValueError(f"bucket ids must be integers, got {qb.dtype} and {kb.dtype}")


def _slabs(
    widths: list[int], heights: list[int], tables: list[int], budget: int
) -> list[tuple[int, int, int, int, int]]:
    """Greedy cut of the sorted chunks into slabs of one table, at most ``budget`` padded scores
    (a chunk wider than the budget gets a slab of its own) and windows at most
    :data:`WIDTH_SLACK` times wider than the slab's narrowest (plus 8), which bounds padding."""
    slabs = []
    s, base, n = 0, 0, len(widths)
    while s < n:
        h, w, e = max(heights[s], 1), max(widths[s], 1), s + 1
        while e < n and tables[e] == tables[s]:
            h2, w2 = max(h, heights[e]), max(w, widths[e])
            if (e - s + 1) * h2 * w2 > budget or w2 > WIDTH_SLACK * widths[s] + 8:
                break
            h, w, e = h2, w2, e + 1
        slabs.append((s, e, h, w, base))
        base += (e - s) * h
        s = e
    return slabs


@torch.no_grad()
def plan_layout(
    query_buckets: Tensor,
    key_buckets: Tensor,
    chunk: int = DEFAULT_CHUNK,
    slab_elements: int | None = None,
) -> BucketLayout:
    """Sort queries and keys by bucket and lay them out in bucket-aligned chunks and windows.

    ``query_buckets`` ``(B, H, T, n_q)`` and ``key_buckets`` ``(B, H, T, n_k)`` are integer bucket
    ids. Everything is batched tensor work except a loop over the chunk widths to cut slabs;
    nothing is quadratic in ``n``.
    """
    if isinstance(chunk, bool) or not isinstance(chunk, int) or chunk < 1:
        raise ValueError(f"chunk must be a positive integer, got {chunk!r}")
    if slab_elements is None:
        slab_elements = SLAB_ELEMENTS
    if slab_elements < 1:
        raise ValueError(f"slab_elements must be >= 1, got {slab_elements!r}")
    B, H, T, nq = query_buckets.shape
    nk = key_buckets.shape[-1]
    G = B * H * T
    dev = query_buckets.device
    qb = query_buckets.to(torch.int64).reshape(G, nq)
    kb = key_buckets.to(torch.int64).reshape(G, nk)
    sq, oq = torch.sort(qb, dim=-1, stable=True)
    sk, ok = torch.sort(kb, dim=-1, stable=True)
    # Each sorted query's bucket extent among the sorted queries and among the sorted keys.
    g_start = torch.searchsorted(sq, sq, side="left")
    n_rows = torch.searchsorted(sq, sq, side="right") - g_start
    k_start = torch.searchsorted(sk, sq, side="left")
    k_len = torch.searchsorted(sk, sq, side="right") - k_start
    rank = torch.arange(nq, device=dev) - g_start
    has_keys = k_len > 0
    # A bucket of r query rows becomes ceil(r / chunk) chunks of near-equal height.
    parts = (n_rows + chunk - 1) // chunk
    height = (n_rows + parts - 1) // parts
    local, row = rank // height, rank % height
    chunk_h = torch.minimum(height, n_rows - local * height)
    counts = torch.where((rank == 0) & has_keys, parts, 0).reshape(-1)
    offset = (torch.cumsum(counts, 0) - counts).view(G, nq)
    chunk_id = torch.gather(offset, -1, g_start) + local
    N = int(counts.sum().item())
    group = torch.arange(G, device=dev).unsqueeze(-1).expand(G, nq)
    cid = torch.where(has_keys, chunk_id, N).reshape(-1)

    def per_chunk(values: Tensor) -> Tensor:
        out = torch.zeros(N + 1, dtype=torch.int64, device=dev)
        return out.scatter_(0, cid, values.reshape(-1))[:N]

    key_start = per_chunk(k_start + group * nk)
    key_len = per_chunk(k_len)
    heights = per_chunk(chunk_h)
    table = per_chunk(group % T)
    # Order chunks by table, window width, then height, so a slab is one table and pads little.
    _, perm = torch.sort((table * (nk + 1) + key_len) * (nq + 1) + heights, stable=True)
    key_start, key_len, heights, table = key_start[perm], key_len[perm], heights[perm], table[perm]
    slabs = _slabs(key_len.tolist(), heights.tolist(), table.tolist(), slab_elements)
    # Slot of every chunk's first row, then of every query.
    first_slot = torch.zeros(N + 1, dtype=torch.int64, device=dev)
    if slabs:
        starts, ends, hs, _, bases = (torch.tensor(x, device=dev) for x in zip(*slabs, strict=True))
        sizes = ends - starts
        slab_of = torch.repeat_interleave(torch.arange(len(slabs), device=dev), sizes)
        first_slot[:N] = (
            bases[slab_of] + (torch.arange(N, device=dev) - starts[slab_of]) * hs[slab_of]
        )
    total = sum((e - s) * h for s, e, h, _, _ in slabs)
    inv = torch.empty(N + 1, dtype=torch.int64, device=dev)
    inv[perm] = torch.arange(N, device=dev)
    inv[N] = N
    slot = torch.where(has_keys, first_slot[inv[cid.view(G, nq)]] + row, total)
    dump = B * H * nq
    query_dest = torch.full((total + 1,), dump, dtype=torch.int64, device=dev)
    query_dest.scatter_(0, slot.reshape(-1), (oq + group // T * nq).reshape(-1))
    query_dest = query_dest[:total]
    query_rows = torch.where(query_dest == dump, 0, query_dest)
    key_order = (ok + (torch.arange(G, device=dev) // T * nk).unsqueeze(-1)).reshape(-1)
    return BucketLayout(
        shape=(B, H, T, nq, nk),
        chunk=chunk,
        query_rows=query_rows,
        query_dest=query_dest,
        key_start=key_start,
        key_len=key_len,
        heights=heights,
        key_order=key_order,
        chunk_table=table,
        slabs=slabs,
    )


def _mask_values(mask: Tensor, B: int, H: int, n_q: int, n_k: int) -> tuple[Tensor, bool]:
    """The additive mask as ``(B, H, n_k)`` key mask (True) or ``(B, H, n_q, n_k)`` (False)."""
    while mask.dim() < 4:
        mask = mask.unsqueeze(0)
    if mask.dim() != 4 or mask.shape[-1] != n_k or mask.shape[-2] not in (1, n_q):
        raise ValueError(
            f"attention_mask must broadcast to (batch, heads, {n_q}, {n_k}), got "
            f"{tuple(mask.shape)}"
        )
    if mask.shape[-2] == 1:
        return mask[..., 0, :].expand(B, H, n_k), True
    return mask.expand(B, H, n_q, n_k), False


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
        query, key, value: ``(B, H, n_q, d)``, ``(B, H, n_k, d)``, ``(B, H, n_k, d_v)``.
        query_buckets, key_buckets: int ``(B, H, T, n_q)`` / ``(B, H, T, n_k)`` bucket ids.
        attention_mask: additive float mask broadcastable to ``(B, H, n_q, n_k)`` (values at or
            below ``finfo.min / 2`` block a pair), a boolean one (True = may attend), or None.
            A mask constant over queries (padding) costs nothing per pair: blocked keys are
            dropped from the buckets.
        scaling: score scale (usually ``d**-0.5``).
        dropout, training: dropout on the probabilities when training (as BERT).
        chunk: largest query rows per chunk (see :data:`DEFAULT_CHUNK`).

    Returns:
        ``(B, H, n_q, d_v)``: the dense masked-mode result up to float rounding.
    """
    _check(query, key, value, query_buckets, key_buckets)
    if not 0.0 <= dropout < 1.0:
        raise ValueError(f"dropout must be in [0, 1), got {dropout!r}")
    B, H, n_q, d = query.shape
    n_k, dv = key.shape[-2], value.shape[-1]
    T = query_buckets.shape[2]
    if n_q == 0 or n_k == 0:
        return query.new_zeros((B, H, n_q, dv))
    neg = torch.finfo(query.dtype).min
    key_bias = pair_mask = None
    if attention_mask is not None:
        if attention_mask.dtype == torch.bool:  # True = may attend
            attention_mask = torch.where(attention_mask, 0.0, neg).to(query.dtype)
        mask, key_only = _mask_values(attention_mask.to(query.dtype), B, H, n_q, n_k)
        if key_only:
            # A masked key (padding) is allowed for no query: give it a bucket no query has, so
            # it never enters a window. Finite values on allowed keys are added to the scores.
            banned = mask <= neg / 2
            if bool(banned.any()):
                low = torch.minimum(query_buckets.min(), key_buckets.min()) - 1
                key_buckets = torch.where(banned.unsqueeze(2), low, key_buckets)
            if bool(((mask != 0) & ~banned).any()):
                key_bias = mask.reshape(B * H * n_k)
        else:
            pair_mask = mask.reshape(B * H * n_q * n_k)
    lay = plan_layout(query_buckets, key_buckets, chunk)
    if not lay.slabs:  # no query shares a bucket with any allowed key: every output row is zero
        return query.new_zeros((B, H, n_q, dv)) + 0.0 * (query.sum() + key.sum() + value.sum())
    # Scale the queries once (n*d work) rather than every score.
    q_flat = (query * scaling).reshape(B * H * n_q, d)
    k_flat = key.reshape(B * H * n_k, d)
    v_flat = value.reshape(B * H * n_k, dv)
    if T > 1:  # bucket ids for the earlier-table test, in the narrowest integer type that fits
        ids = torch.stack([query_buckets.min(), query_buckets.max()]).tolist()
        small = -(2**31) < ids[0] and ids[1] < 2**31
        ids_t = torch.int32 if small else torch.int64
        qb = query_buckets.to(ids_t).permute(0, 1, 3, 2).reshape(B * H * n_q, T)
        kb = key_buckets.to(ids_t).permute(0, 1, 3, 2).reshape(B * H * n_k, T)
    # Disallowed pairs get the most negative finite value, not -inf: a row with no allowed key
    # then stays finite (no NaN in the softmax or its gradient) and is zeroed at the end, found by
    # its log-sum-exp sitting near ``neg``.
    need_lse = T > 1 or pair_mask is not None
    last_key = lay.key_order.shape[0] - 1
    widths = lay.key_len.tolist()
    tables = lay.chunk_table.tolist()
    outs, lses, dests = [], [], []
    for s, e, h, w, base in lay.slabs:
        S = e - s
        q_rows = lay.query_rows[base : base + S * h]
        offs = torch.arange(w, device=query.device)
        k_rows = lay.key_order[(lay.key_start[s:e, None] + offs).clamp(max=last_key)]
        qs = q_flat.index_select(0, q_rows).view(S, h, d)
        ks = k_flat.index_select(0, k_rows.reshape(-1)).view(S, w, d)
        vs = v_flat.index_select(0, k_rows.reshape(-1)).view(S, w, dv)
        scores = torch.bmm(qs, ks.transpose(1, 2))  # (S, h, w)
        if key_bias is not None:
            scores = scores + key_bias[k_rows].unsqueeze(1)
        if pair_mask is not None:
            qi = q_rows.view(S, h, 1)  # global query row bh*n_q + i
            kj = (k_rows - torch.div(k_rows, n_k, rounding_mode="floor") * n_k).unsqueeze(1)
            m = pair_mask[qi * n_k + kj]  # (S, h, w)
            scores = (scores + m).masked_fill_(m <= neg / 2, neg)
        if widths[s] < w:  # widths are sorted: only columns past the narrowest window pad
            lo = widths[s]
            pad = offs[lo:] >= lay.key_len[s:e, None]
            scores[:, :, lo:].masked_fill_(pad.unsqueeze(1), neg)
        for t in range(tables[s]):  # drop pairs that already collided in an earlier table
            scores.masked_fill_(qb[q_rows, t].view(S, h, 1) == kb[k_rows, t].view(S, 1, w), neg)
        probs = torch.softmax(scores, dim=-1)
        if need_lse:  # log-sum-exp from the row max and the top probability: m - log p_max
            lses.append((scores.amax(-1) - torch.log(probs.amax(-1))).reshape(-1))
        if training and dropout > 0.0:
            probs = torch.nn.functional.dropout(probs, p=dropout, training=True)
        outs.append(torch.bmm(probs, vs).reshape(-1, dv))
        dests.append(lay.query_dest[base : base + S * h])

    # Scatter back to the original query rows (padding slots go to a dump row). With one table
    # and no pair mask each query appears once and its probabilities are already normalised;
    # otherwise the partial softmaxes are merged by log-sum-exp.
    rows = B * H * n_q
    if not need_lse:
        out = query.new_zeros((rows + 1, dv))
        for o, dst in zip(outs, dests, strict=True):
            out.index_copy_(0, dst, o)
        return out[:rows].view(B, H, n_q, dv)
    top = torch.full((rows + 1,), float("-inf"), dtype=query.dtype, device=query.device)
    for i, lse in enumerate(lses):
        lses[i] = torch.where(lse > 0.75 * neg, lse, float("-inf"))  # -inf: no allowed key
        top.scatter_reduce_(0, dests[i], lses[i].detach(), "amax")
    top = torch.where(torch.isfinite(top), top, 0.0)
    numer = query.new_zeros((rows + 1, dv))
    total = query.new_zeros(rows + 1)
    for o, lse, dst in zip(outs, lses, dests, strict=True):
        weight = torch.exp(lse - top[dst])  # 0 where the row had no allowed key
        numer.index_add_(0, dst, o * weight.unsqueeze(-1))
        total.index_add_(0, dst, weight)
    out = numer[:rows] / torch.where(total[:rows] > 0, total[:rows], 1.0).unsqueeze(-1)
    return out.view(B, H, n_q, dv)
