"""Slow, obviously correct oracles written from the five steps in docs/paper.md.

:func:`authors_attention` follows the authors' algorithm the way their code runs it: a Python loop
over batch elements and heads, the rows of Q and K stacked and hashed together, bucket tables
kept in dictionaries, only pairs ``i <= j`` visited, each colliding pair's ``q_i . k_j`` gathered,
computed, and written at ``(i, j)`` and ``(j, i)``. It is the oracle the tests compare
:func:`lshlib.lsh.attention.lsh_attention` (``mode="paper"``) with, and the baseline the benchmark
times it against. :func:`masked_attention_loop` is the same kind of oracle for ``mode="masked"``.
"""

from __future__ import annotations

import torch
from torch import Tensor

__all__ = ["stacked_buckets", "authors_attention", "masked_attention_loop"]

BLOCKED_AT = -1e4  # additive mask values at or below it block the pair (as lshlib.lsh.masks)


def stacked_buckets(
    rows: Tensor, hyperplanes: Tensor, coefficients: Tensor | None, table_size: int | None
) -> Tensor:
    """Step 2 for one (batch element, head): bucket of every row of ``rows`` ``(m, d)`` in every
    table, int64 ``(tables, m)``. ``hyperplanes`` ``(tables, bits, d)``, ``coefficients``
    ``(tables, bits)`` (``None`` with ``table_size=None``: the sign bits read as an integer)."""
    tables, bits, _ = hyperplanes.shape
    out = torch.empty(tables, rows.shape[0], dtype=torch.int64)
    for t in range(tables):
        signs = (rows @ hyperplanes[t].to(rows.dtype).T > 0).long().cpu()  # (m, bits)
        if table_size is None:
            weights = torch.tensor([2**b for b in range(bits)])
            out[t] = (signs * weights).sum(-1)
        else:
            out[t] = (signs * coefficients[t].cpu()).sum(-1) % table_size
    return out


def _dict_collisions(bucket_ids: Tensor, n: int) -> Tensor:
    """Step 3: bool ``(n, n)``, query i (row i) and key j (row n + j) share a bucket in at least
    one table; bucket tables are dictionaries from bucket id to the rows in it."""
    collide = torch.zeros(n, n, dtype=torch.bool)
    for table_ids in bucket_ids.tolist():
        table: dict[int, list[int]] = {}
        for row, bucket in enumerate(table_ids):
            table.setdefault(bucket, []).append(row)
        for members in table.values():
            qs = [r for r in members if r < n]
            ks = [r - n for r in members if r >= n]
            if qs and ks:
                collide[torch.tensor(qs)[:, None], torch.tensor(ks)[None, :]] = True
    return collide


def _broadcast_hashes(hyperplanes, coefficients, batch, heads):
    hp = hyperplanes.expand(batch, heads, *hyperplanes.shape[-3:])
    co = (
        None
        if coefficients is None
        else coefficients.expand(batch, heads, *coefficients.shape[-2:])
    )
    return hp, co


def authors_attention(
    query: Tensor,
    key: Tensor,
    value: Tensor,
    attention_mask: Tensor | None,
    hyperplanes: Tensor,
    coefficients: Tensor | None,
    table_size: int | None,
    scaling: float | None = None,
) -> tuple[Tensor, Tensor]:
    """The paper's attention, step by step (docs/paper.md), one (batch element, head) at a time.

    query/key/value ``(batch, heads, n, d)``; ``attention_mask`` additive, broadcastable to
    ``(batch, heads, n, n)``, or ``None``; ``hyperplanes`` ``(batch, heads, tables, bits, d)`` and
    ``coefficients`` ``(batch, heads, tables, bits)`` (broadcastable). Returns (output,
    probabilities). Differentiable, like the authors' code (scores are index-assigned).
    """
    batch, heads, n, d = query.shape
    if scaling is None:
        scaling = d**-0.5
    hp, co = _broadcast_hashes(hyperplanes, coefficients, batch, heads)
    scores = torch.zeros(batch, heads, n, n, dtype=query.dtype, device=query.device)
    upper_i, upper_j = torch.triu_indices(n, n)  # step 4: only pairs i <= j are visited
    for b in range(batch):
        for h in range(heads):
            q, k = query[b, h], key[b, h]
            stacked = torch.cat([q, k], dim=0)  # step 2: 2n rows hashed together
            ids = stacked_buckets(stacked, hp[b, h], None if co is None else co[b, h], table_size)
            collide = _dict_collisions(ids, n)  # step 3: OR over tables
            keep = collide[upper_i, upper_j]
            i, j = upper_i[keep].to(q.device), upper_j[keep].to(q.device)
            pair_scores = (q[i] * k[j]).sum(-1)
            scores[b, h, i, j] = pair_scores
            scores[b, h, j, i] = pair_scores  # the mirrored copy
    scores = scores * scaling  # step 5: ordinary BERT attention
    if attention_mask is not None:
        scores = scores + attention_mask.to(scores.dtype)
    probs = torch.softmax(scores, dim=-1)
    return probs @ value, probs


def masked_attention_loop(
    query: Tensor,
    key: Tensor,
    value: Tensor,
    attention_mask: Tensor | None,
    hyperplanes: Tensor,
    coefficients: Tensor | None,
    table_size: int | None,
    scaling: float | None = None,
) -> tuple[Tensor, Tensor]:
    """Masked-mode oracle, one query at a time: softmax of ``q_i . k_j * scaling + mask_ij``
    over the keys j that collide with query i and are not masked; a query with none gets zeros.
    Same arguments as :func:`authors_attention`; keys may be more or fewer than queries."""
    batch, heads, n_q, d = query.shape
    n_k = key.shape[2]
    if scaling is None:
        scaling = d**-0.5
    hp, co = _broadcast_hashes(hyperplanes, coefficients, batch, heads)
    mask = None
    if attention_mask is not None:
        mask = attention_mask.expand(batch, heads, n_q, n_k)
    out = torch.zeros_like(query)
    probs = torch.zeros(batch, heads, n_q, n_k, dtype=query.dtype, device=query.device)
    for b in range(batch):
        for h in range(heads):
            cob = None if co is None else co[b, h]
            qids = stacked_buckets(query[b, h], hp[b, h], cob, table_size)
            kids = stacked_buckets(key[b, h], hp[b, h], cob, table_size)
            for i in range(n_q):
                allowed = [
                    j
                    for j in range(n_k)
                    if bool((qids[:, i] == kids[:, j]).any())
                    and (mask is None or float(mask[b, h, i, j]) > BLOCKED_AT)
                ]
                if not allowed:
                    continue
                js = torch.tensor(allowed, device=query.device)
                logits = (key[b, h, js] @ query[b, h, i]) * scaling
                if mask is not None:
                    logits = logits + mask[b, h, i, js].to(logits.dtype)
                p = torch.softmax(logits, dim=-1)
                probs[b, h, i, js] = p
                out[b, h, i] = p @ value[b, h, js]
    return out, probs
