"""Bucket layout for the ``bucketed`` kernel: sort by bucket, cut into chunks, group in slabs.

For every (batch, head, table) the queries and keys are sorted by bucket id (``torch.sort``); the
sorted queries are cut into chunks of at most ``chunk`` rows that never straddle a bucket, and
each chunk's window is exactly its bucket's keys (a contiguous range of the sorted keys). No
bucket is ever cut, so attention over the windows is exact whatever the bucket sizes. All chunks
of all (batch, head, table) form one flat list, ordered by table, window-width band and height,
and are cut into slabs of a few MB whose chunks are padded to the slab's largest height and
width: :mod:`lshlib.lsh.bucketed` runs each slab as one batch of small attention problems. All of it
is batched tensor work except a Python loop over the chunk sizes to cut slabs; nothing is
quadratic in ``n``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import NamedTuple

import torch
from torch import Tensor

__all__ = ["BucketLayout", "plan_layout", "DEFAULT_CHUNK", "SLAB_ELEMENTS", "WIDTH_SLACK"]

SLAB_ELEMENTS = 1 << 20
"""Score entries per slab (4 MB in float32): large enough to amortise per-op overhead (and the
cost of each parallel region on a busy machine), small enough to stay in malloc's reuse pool."""

WIDTH_SLACK = 1.25
"""Widest window in a slab, relative to its narrowest (see :func:`_slabs`)."""

DEFAULT_CHUNK = 1024
"""Largest query-chunk height. A bucket's keys are copied once per chunk of its queries, so tall
chunks copy less; short chunks bound the slab's padding. Buckets are split into near-equal chunks,
so padding stays small whatever this value."""


class Slab(NamedTuple):
    """Chunks ``first_chunk:end_chunk`` (all of one table) computed as one batch, padded to
    ``height`` query rows and ``width`` keys; their query slots start at ``first_slot``."""

    first_chunk: int
    end_chunk: int
    height: int
    width: int
    first_slot: int


@dataclass
class BucketLayout:
    """Where every query and key goes in the chunked computation.

    The ``N`` chunks of all (batch, head, table) groups form one flat list, sorted by table,
    window-width band and height; a chunk holds up to ``chunk`` query rows of one bucket (a
    bucket with more rows is split into near-equal chunks), and its window holds that bucket's
    keys. Row indices are
    global: ``bh * n + i`` into the ``(B*H*n, d)`` view of the inputs.

    Attributes:
        shape: ``(B, H, T, n_q, n_k)``.
        chunk: the largest chunk height.
        query_rows: ``(R,)`` global query row of every slot, slab after slab (slab ``k`` holds
            ``count * height`` slots); padding slots hold a dummy row whose result is discarded.
        query_dest: ``(R,)`` the same rows with padding slots pointing at a dump row
            ``B*H*n_q`` (where results are scattered back to).
        key_start: ``(N,)`` start of each chunk's window in the flat sorted-key order.
        key_len: ``(N,)`` keys in each window (the bucket's keys).
        heights: ``(N,)`` query rows in each chunk.
        key_order: ``(B*H*T*n_k,)`` global key row of every flat sorted-key position.
        chunk_table: ``(N,)`` table of every chunk.
        slabs: one :class:`Slab` per slab: its chunks (all of one table) are computed
            together, padded to ``height`` rows and ``width`` keys.
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
    slabs: list[Slab]

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


def _slabs(widths: list[int], heights: list[int], tables: list[int], budget: int) -> list[Slab]:
    """Greedy cut of the sorted chunks into slabs of one table, at most ``budget`` padded scores
    (a larger chunk gets a slab of its own), with the widest window and the tallest chunk at
    most :data:`WIDTH_SLACK` times the slab's narrowest and lowest (plus 8), which bounds
    padding in both directions while small buckets still share a slab."""
    slabs = []
    s, base, n = 0, 0, len(widths)
    while s < n:
        h, w, e = max(heights[s], 1), max(widths[s], 1), s + 1
        h_min, w_min = h, w
        while e < n and tables[e] == tables[s]:
            h2, w2 = max(h, heights[e]), max(w, widths[e])
            h_min2, w_min2 = min(h_min, heights[e]), min(w_min, widths[e])
            if (
                (e - s + 1) * h2 * w2 > budget
                or h2 > WIDTH_SLACK * h_min2 + 8
                or w2 > WIDTH_SLACK * w_min2 + 8
            ):
                break
            h, w, h_min, w_min, e = h2, w2, h_min2, w_min2, e + 1
        slabs.append(Slab(s, e, h, w, base))
        base += (e - s) * h
        s = e
    return slabs


def _chunk_order(table: Tensor, key_len: Tensor, heights: Tensor) -> Tensor:
    """Chunk order: by table, width band (widths within :data:`WIDTH_SLACK` of each other, on
    ``width + 8``), height, then width; consecutive chunks then have similar shapes."""
    band = torch.floor(torch.log(key_len.double() + 8.0) / math.log(WIDTH_SLACK)).long()
    group = table * (int(band.max()) + 1 if band.numel() else 1) + band
    perm = torch.sort(key_len, stable=True)[1]
    perm = perm[torch.sort(heights[perm], stable=True)[1]]
    return perm[torch.sort(group[perm], stable=True)[1]]


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
    # Order chunks by table, width band and height, so a slab is one table and pads little.
    perm = _chunk_order(table, key_len, heights)
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
