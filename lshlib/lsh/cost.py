"""Exact operation counts for one attention call, and how to measure time and memory honestly.

Why: the paper's compute figure counts only the hashing products at 10 tokens. Here every part of
one attention call is counted, forward and backward, for dense attention and for BERT-LSH in
``paper`` and ``masked`` mode under each execution strategy:

* ``hashing``: the hyperplane projections of the ``n_q + n_k`` rows (a matrix product), the sign
  bits and their packing into bucket ids, and the work that turns buckets into the pattern the
  strategy uses (the dense ``n_q x n_k`` collision test, or the bucketed strategy's sort);
* ``scores``: query-key dot products that are actually computed, ``2 d`` FLOPs each;
* ``softmax``: the per-score elementwise work (scale, mask, max, subtract, exp, sum, divide);
* ``value``: the probability-value product, ``2 d_v`` FLOPs per computed probability.

Conventions (stated, so that every number can be checked): a multiply-add is 2 FLOPs, as
``torch.utils.flop_counter.FlopCounterMode`` counts matrix products; elementwise work counts one
operation per element per elementary step (constants below). The backward pass of a product
``A B`` costs two products of the same size (``dA`` and ``dB``); the softmax backward costs
:data:`SOFTMAX_BWD` per entry; hashing has no backward (the sign has no gradient). The bucketed
kernel keeps no scores for its backward: it recomputes them (one more score product, and the
subtraction of the saved log-sum-exp and the exp per entry), as FlashAttention does.

FlopCounterMode sees only the matrix products (``mm``/``bmm``/``baddbmm``, einsum lowered to
them, and SDPA); it does not see softmax, exp, comparisons, sorting, gathers or the authors'
per-pair products written as ``(q[i] * k[j]).sum(-1)`` (elementwise), which is why its totals
are compared with the ``scores``/``value``/hashing-projection parts only.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field

import torch
from torch import Tensor
from torch.utils.flop_counter import FlopCounterMode

from lshlib.lsh.bucketed import plan_layout
from lshlib.lsh.hashing import HashSetting
from lshlib.lsh.theory import collision_probability

__all__ = [
    "SOFTMAX_FWD",
    "SOFTMAX_BWD",
    "METHODS",
    "OpCounts",
    "attention_counts",
    "PairCounts",
    "measured_pairs",
    "expected_pairs",
    "flop_counter_total",
    "paper_figure_kflops",
]

SOFTMAX_FWD = 7
"""Forward elementwise steps per computed score: scale, mask, max, subtract, exp, sum, divide."""

SOFTMAX_BWD = 4
"""Backward steps per score: ``dS = P * (dP - rowsum(dP * P))``: multiply, sum, subtract,
multiply."""

METHODS = ("dense", "paper_dense", "paper_authors", "masked_dense", "masked_bucketed")
"""``dense``: plain attention. ``paper_dense``/``masked_dense``: BERT-LSH computing every score
and then selecting (our dense strategy). ``paper_authors``: the authors' loop, which computes
the colliding pairs with ``i <= j`` only but still runs a dense softmax and value product.
``masked_bucketed``: our sparse kernel (``lshlib.lsh.bucketed``)."""


@dataclass(frozen=True)
class OpCounts:
    """Operation counts of one attention call (all batch elements and heads)."""

    hashing: int = 0
    scores: int = 0
    softmax: int = 0
    value: int = 0
    hashing_bwd: int = 0
    scores_bwd: int = 0
    softmax_bwd: int = 0
    value_bwd: int = 0
    dot_products: int = 0
    matmul_flops: int = 0
    notes: dict = field(default_factory=dict)

    @property
    def forward(self) -> int:
        return self.hashing + self.scores + self.softmax + self.value

    @property
    def backward(self) -> int:
        return self.hashing_bwd + self.scores_bwd + self.softmax_bwd + self.value_bwd

    @property
    def total(self) -> int:
        return self.forward + self.backward

    def to_dict(self) -> dict:
        d = asdict(self)
        d.update(forward=self.forward, backward=self.backward, total=self.total)
        return d


def _check_positive(**values: int) -> None:
    for name, v in values.items():
        if isinstance(v, bool) or not isinstance(v, int) or v < 1:
            raise ValueError(f"{name} must be a positive integer, got {v!r}")


def _hashing_ops(rows: int, d: int, bits: int, tables: int, table_size: int | None) -> tuple:
    """(total ops, matmul FLOPs) to hash ``rows`` rows: projection, sign, pack (and fold)."""
    proj = 2 * rows * d * bits * tables
    # sign test, multiply by weight/coefficient, add: 3 per bit; fold mod: 1 per table
    pack = rows * tables * (3 * bits + (1 if table_size is not None else 0))
    return proj + pack, proj


def attention_counts(
    n_q: int,
    n_k: int,
    d: int,
    *,
    method: str = "dense",
    bits: int = 2,
    tables: int = 1,
    table_size: int | None = 256,
    batch: int = 1,
    heads: int = 1,
    d_v: int | None = None,
    pairs: float | None = None,
    upper_pairs: float | None = None,
    computed: float | None = None,
) -> OpCounts:
    """Operation counts for one call of ``method`` (see :data:`METHODS`), forward and backward.

    Args:
        n_q, n_k, d: query/key counts and head dimension (``d_v`` defaults to ``d``).
        bits, tables, table_size: the LSH setting (ignored for ``dense``).
        batch, heads: the counts are summed over them.
        pairs: colliding (query, key) pairs per (batch, head), needed by ``masked_bucketed``
            unless ``computed`` is given; from :func:`measured_pairs` or :func:`expected_pairs`.
        upper_pairs: colliding pairs with ``i <= j`` per (batch, head) (``paper_authors``).
        computed: dot products the bucketed kernel really computes per (batch, head), padding
            and repeats across tables included (``BucketLayout.computed_scores``); defaults to
            ``pairs``.
    """
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, got {method!r}")
    _check_positive(n_q=n_q, n_k=n_k, d=d, batch=batch, heads=heads)
    d_v = d if d_v is None else d_v
    bh, full = batch * heads, n_q * n_k
    if method == "dense":  # no hashing, no mask step
        return _ops(
            bh, d, d_v, full, full, softmax_fwd=SOFTMAX_FWD - 1, matmul=2 * (d + d_v) * full
        )
    hash_ops, hash_mm = _hashing_ops(n_q + n_k, d, bits, tables, table_size)
    if method in ("paper_dense", "masked_dense"):
        # every score is computed; the collision test touches n_q*n_k pairs per table (compare,
        # OR); paper mode also mirrors the upper triangle (one select per entry)
        pattern = full * (2 * tables + (1 if method == "paper_dense" else 0))
        matmul = hash_mm + 2 * (d + d_v) * full
        return _ops(bh, d, d_v, full, full, hashing=hash_ops + pattern, matmul=matmul)
    if method == "paper_authors":
        if upper_pairs is None:
            raise ValueError("paper_authors needs upper_pairs (colliding pairs with i <= j)")
        # dict buckets: one lookup per pair and table; scores are elementwise, not a matmul
        counts = _ops(
            bh,
            d,
            d_v,
            upper_pairs,
            full,
            hashing=hash_ops + full * tables,
            matmul=hash_mm + 2 * d_v * full,
        )
        counts.notes["mirrored_entries"] = int(bh * upper_pairs)
        return counts
    if computed is None:  # masked_bucketed
        if pairs is None:
            raise ValueError("masked_bucketed needs pairs or computed")
        computed = pairs
    # sort keys and queries per table: n log2 n comparisons each, plus the bucket searches
    sort_ops = tables * sum(m * max(math.ceil(math.log2(max(m, 2))), 1) * 2 for m in (n_q, n_k))
    matmul = hash_mm + 2 * (d + d_v) * computed
    return _ops(
        bh, d, d_v, computed, computed, hashing=hash_ops + sort_ops, matmul=matmul, recompute=True
    )


def _ops(
    bh: int,
    d: int,
    d_v: int,
    scored: float,
    weighted: float,
    *,
    hashing: float = 0,
    softmax_fwd: int = SOFTMAX_FWD,
    matmul: float,
    recompute: bool = False,
) -> OpCounts:
    """Counts of ``bh`` (batch, head) blocks that compute ``scored`` dot products and carry
    ``weighted`` probabilities through softmax and the value product, forward and backward.
    ``recompute``: the backward recomputes the scores and probabilities from the saved
    log-sum-exp instead of keeping them (one more score product; subtract and exp per entry)."""
    return OpCounts(
        hashing=int(bh * hashing),
        scores=int(bh * 2 * d * scored),
        softmax=int(bh * softmax_fwd * weighted),
        value=int(bh * 2 * d_v * weighted),
        scores_bwd=int(bh * (6 if recompute else 4) * d * scored),
        softmax_bwd=int(bh * (SOFTMAX_BWD + (2 if recompute else 0)) * weighted),
        value_bwd=int(bh * 4 * d_v * weighted),
        dot_products=int(bh * scored),
        matmul_flops=int(bh * matmul),
    )


@dataclass(frozen=True)
class PairCounts:
    """Pair counts of one collision pattern (summed over batch and heads).

    ``colliding``: distinct colliding pairs (the masked-mode support); ``upper``: colliding pairs
    with ``i <= j`` (what the authors' loop computes); ``per_table``: same-bucket pairs summed over
    tables (a pair colliding in k tables counted k times); ``computed``: dot products the
    bucketed kernel computes (padding included; ``None`` when not planned); ``total``: all pairs.
    """

    colliding: int
    upper: int
    per_table: int
    computed: int | None
    total: int

    @property
    def density(self) -> float:
        return self.colliding / self.total


def measured_pairs(query_buckets: Tensor, key_buckets: Tensor, *, plan: bool = True) -> PairCounts:
    """Count pairs from actual bucket ids ``(B, H, T, n_q)`` / ``(B, H, T, n_k)``."""
    same = query_buckets.unsqueeze(-1) == key_buckets.unsqueeze(-2)  # (B, H, T, n_q, n_k)
    coll = same.any(2)
    n_q, n_k = coll.shape[-2:]
    upper = torch.triu(torch.ones(n_q, n_k, dtype=torch.bool, device=coll.device))
    computed = plan_layout(query_buckets, key_buckets).computed_scores if plan else None
    return PairCounts(
        colliding=int(coll.sum()),
        upper=int((coll & upper).sum()),
        per_table=int(same.sum()),
        computed=computed,
        total=int(coll.numel()),
    )


def expected_pairs(
    n_q: int,
    n_k: int,
    bits: int,
    tables: int = 1,
    table_size: int | None = None,
    *,
    angles: Tensor | None = None,
) -> dict[str, float]:
    """Expected pair counts per (batch, head) from :mod:`lshlib.lsh.theory`.

    ``angles``: the pairwise query-key angles ``(n_q, n_k)``; ``None`` means independent random
    Gaussian rows, whose angles concentrate at 90 degrees (the density is then the collision
    probability at ``pi/2``). Returns ``colliding`` (OR over tables), ``per_table`` (sum over
    tables of the single-table probability), ``upper`` (``i <= j`` share) and ``density``.
    """
    _check_positive(n_q=n_q, n_k=n_k)
    if angles is None:
        p_or = collision_probability(math.pi / 2, bits, tables, table_size)
        p_one = collision_probability(math.pi / 2, bits, 1, table_size)
        upper_share = (n_q * (n_q + 1) / 2) / (n_q * n_k) if n_q == n_k else 0.5
        return {
            "density": p_or,
            "colliding": p_or * n_q * n_k,
            "per_table": tables * p_one * n_q * n_k,
            "upper": p_or * n_q * n_k * upper_share,
        }
    a = angles.to(torch.float64)
    p = collision_probability(a, bits, tables, table_size)
    p1 = collision_probability(a, bits, 1, table_size)
    upper = torch.triu(torch.ones_like(p, dtype=torch.bool))
    return {
        "density": float(p.mean()),
        "colliding": float(p.sum()),
        "per_table": float(tables * p1.sum()),
        "upper": float(p[upper].sum()),
    }


def flop_counter_total(fn: Callable[[], object], backward: bool = False) -> dict[str, int]:
    """FLOPs that ``FlopCounterMode`` attributes to ``fn()`` (and its backward when
    ``backward``, calling ``.sum().backward()`` on the output tensor or its first element),
    by operator; key ``"total"`` holds the sum."""
    with FlopCounterMode(display=False) as counter:
        out = fn()
        if backward:
            t = out[0] if isinstance(out, tuple | list) else out
            t.sum().backward()
    by_op = {str(k): int(v) for k, v in counter.get_flop_counts().get("Global", {}).items()}
    by_op["total"] = int(counter.get_total_flops())
    return by_op


def paper_figure_kflops(bits: int, tables: int, n: int = 10, hidden: int = 128) -> dict:
    """The paper's compute figure, counted its way: only the hashing products of the ``2n``
    stacked query and key rows (``2n x hidden x bits x tables`` multiply-adds, 2 FLOPs each),
    against full self-attention's ``n x n x hidden`` multiply-adds for ``QK^T`` alone."""
    return {
        "lsh_kflops": 2 * (2 * n) * hidden * bits * tables / 1000,
        "full_kflops": 2 * n * n * hidden / 1000,
    }


# ------------------------------------------------------------------------------------------
# tables behind the notebook's figures


def figure_kflops_table(
    bits: tuple[int, ...] = (2, 4, 6, 8),
    tables: tuple[int, ...] = (1, 2, 3, 4),
    table_size: int | None = 256,
    *,
    n: int = 10,
    heads: int = 2,
    head_dim: int = 64,
) -> list[dict]:
    """The paper's KFLOPs figure (hashing products only) beside the honest count of the same
    call: every operation of the authors' algorithm, forward and backward, at ``n`` tokens and
    hidden ``heads * head_dim``, with the expected colliding pairs of random directions
    (90 degrees, :func:`expected_pairs`), against full attention counted the same way."""
    dense = attention_counts(n, n, head_dim, method="dense", heads=heads)
    rows = []
    for b in bits:
        for t in tables:
            e = expected_pairs(n, n, b, t, table_size)
            authors = attention_counts(
                n,
                n,
                head_dim,
                method="paper_authors",
                bits=b,
                tables=t,
                table_size=table_size,
                heads=heads,
                upper_pairs=e["upper"],
            )
            paper = paper_figure_kflops(b, t, n=n, hidden=heads * head_dim)
            rows.append(
                {
                    "bits": b,
                    "tables": t,
                    "label": f"{b}-{t}",
                    "paper_kflops": paper["lsh_kflops"],
                    "paper_full_kflops": paper["full_kflops"],
                    "honest_lsh_kops": authors.total / 1000,
                    "honest_lsh_forward_kops": authors.forward / 1000,
                    "honest_lsh_hashing_forward_kops": authors.hashing / 1000,
                    "honest_full_kops": dense.total / 1000,
                    "honest_full_forward_kops": dense.forward / 1000,
                }
            )
    return rows


def ops_vs_length_table(
    ns: tuple[int, ...] = (16, 64, 128, 512, 2048, 8192, 16384),
    settings: tuple[tuple[int, int, int | None], ...] = ((2, 1, 256), (4, 1, None), (8, 4, None)),
    *,
    heads: int = 2,
    head_dim: int = 64,
) -> list[dict]:
    """Expected operations (forward + backward) and query-key dot products of one attention
    call vs sequence length: dense attention, the authors' algorithm and our bucketed kernel
    (useful work: same-bucket pairs per table, no padding) for each setting; random directions."""
    rows = []
    for n in ns:
        c = attention_counts(n, n, head_dim, method="dense", heads=heads)
        rows.append({"n": n, "method": "dense", "ops": c.total, "dot_products": c.dot_products})
        for b, t, s in settings:
            e = expected_pairs(n, n, b, t, s)
            a = attention_counts(
                n,
                n,
                head_dim,
                method="paper_authors",
                bits=b,
                tables=t,
                table_size=s,
                heads=heads,
                upper_pairs=e["upper"],
            )
            k = attention_counts(
                n,
                n,
                head_dim,
                method="masked_bucketed",
                bits=b,
                tables=t,
                table_size=s,
                heads=heads,
                pairs=e["per_table"],
            )
            tag = HashSetting(b, t, s).label
            rows.append(
                {"n": n, "method": f"authors {tag}", "ops": a.total, "dot_products": a.dot_products}
            )
            rows.append(
                {
                    "n": n,
                    "method": f"bucketed {tag}",
                    "ops": k.total,
                    "dot_products": k.dot_products,
                }
            )
    return rows


DENSITY_SETTINGS = ((2, 1, 256), (4, 1, None), (6, 1, None), (8, 4, None))
"""Settings whose density the notebook measures: the paper's, and the benchmark's."""


def ops_crossover(rows: Sequence[dict]) -> list[dict]:
    """For each LSH method of :func:`ops_vs_length_table`: the smallest n where its expected
    operations (forward + backward) fall below dense attention's, and the ratio at the largest n."""
    dense = {r["n"]: r["ops"] for r in rows if r["method"] == "dense"}
    out = []
    for m in dict.fromkeys(r["method"] for r in rows if r["method"] != "dense"):
        sel = sorted((r for r in rows if r["method"] == m), key=lambda r: r["n"])
        below = [r["n"] for r in sel if r["ops"] < dense[r["n"]]]
        last = sel[-1]
        out.append(
            {
                "method": m,
                "first_n_below_dense": below[0] if below else None,
                "n_max": last["n"],
                "dense_over_lsh_at_n_max": dense[last["n"]] / last["ops"],
            }
        )
    return out
