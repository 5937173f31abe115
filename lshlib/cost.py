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
:data:`SOFTMAX_BWD` per entry; hashing has no backward (the sign has no gradient).

FlopCounterMode sees only the matrix products (``mm``/``bmm``/``baddbmm``, einsum lowered to
them, and SDPA); it does not see softmax, exp, comparisons, sorting, gathers or the authors'
per-pair products written as ``(q[i] * k[j]).sum(-1)`` (elementwise), which is why its totals
are compared with the ``scores``/``value``/hashing-projection parts only.
"""

from __future__ import annotations

import contextlib
import io
import math
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
from torch import Tensor

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
    "time_call",
    "peak_memory",
    "machine_info",
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
``masked_bucketed``: our sparse kernel (``lshlib.bucketed``)."""


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
    bh = batch * heads
    full = n_q * n_k
    if method == "dense":
        s = full
        return OpCounts(
            scores=bh * 2 * d * s,
            softmax=bh * (SOFTMAX_FWD - 1) * s,  # no mask step
            value=bh * 2 * d_v * s,
            scores_bwd=bh * 4 * d * s,
            softmax_bwd=bh * SOFTMAX_BWD * s,
            value_bwd=bh * 4 * d_v * s,
            dot_products=bh * s,
            matmul_flops=bh * 2 * (d + d_v) * s,
        )
    hash_ops, hash_mm = _hashing_ops(n_q + n_k, d, bits, tables, table_size)
    if method in ("paper_dense", "masked_dense"):
        # every score is computed; the collision test touches n_q*n_k pairs per table (compare,
        # OR); paper mode also mirrors the upper triangle (one select per entry)
        pattern = full * (2 * tables + (1 if method == "paper_dense" else 0))
        s = full
        return OpCounts(
            hashing=bh * (hash_ops + pattern),
            scores=bh * 2 * d * s,
            softmax=bh * SOFTMAX_FWD * s,
            value=bh * 2 * d_v * s,
            scores_bwd=bh * 4 * d * s,
            softmax_bwd=bh * SOFTMAX_BWD * s,
            value_bwd=bh * 4 * d_v * s,
            dot_products=bh * s,
            matmul_flops=bh * (hash_mm + 2 * (d + d_v) * s),
        )
    if method == "paper_authors":
        if upper_pairs is None:
            raise ValueError("paper_authors needs upper_pairs (colliding pairs with i <= j)")
        up = upper_pairs
        return OpCounts(
            hashing=bh * (hash_ops + full * tables),  # dict buckets: one lookup per pair/table
            scores=int(bh * 2 * d * up),
            softmax=bh * SOFTMAX_FWD * full,
            value=bh * 2 * d_v * full,
            scores_bwd=int(bh * 4 * d * up),
            softmax_bwd=bh * SOFTMAX_BWD * full,
            value_bwd=bh * 4 * d_v * full,
            dot_products=int(bh * up),
            matmul_flops=bh * (hash_mm + 2 * d_v * full),
            notes={"mirrored_entries": int(bh * up)},
        )
    # masked_bucketed
    if computed is None:
        if pairs is None:
            raise ValueError("masked_bucketed needs pairs or computed")
        computed = pairs
    c = computed
    # sort keys and queries per table: n log2 n comparisons each, plus the bucket searches
    sort_ops = tables * sum(m * max(math.ceil(math.log2(max(m, 2))), 1) * 2 for m in (n_q, n_k))
    return OpCounts(
        hashing=bh * (hash_ops + sort_ops),
        scores=int(bh * 2 * d * c),
        softmax=int(bh * SOFTMAX_FWD * c),
        value=int(bh * 2 * d_v * c),
        scores_bwd=int(bh * 4 * d * c),
        softmax_bwd=int(bh * SOFTMAX_BWD * c),
        value_bwd=int(bh * 4 * d_v * c),
        dot_products=int(bh * c),
        matmul_flops=int(bh * (hash_mm + 2 * (d + d_v) * c)),
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
    from lshlib.bucketed import plan_layout

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
    """Expected pair counts per (batch, head) from :mod:`lshlib.theory`.

    ``angles``: the pairwise query-key angles ``(n_q, n_k)``; ``None`` means independent random
    Gaussian rows, whose angles concentrate at 90 degrees (the density is then the collision
    probability at ``pi/2``). Returns ``colliding`` (OR over tables), ``per_table`` (sum over
    tables of the single-table probability), ``upper`` (``i <= j`` share) and ``density``.
    """
    from lshlib.theory import collision_probability

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
    from torch.utils.flop_counter import FlopCounterMode

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
# measurement


def _sync(device: torch.device | str | None) -> None:
    if device is not None and torch.device(device).type == "cuda":
        torch.cuda.synchronize()


@contextlib.contextmanager
def _quiet_stderr():
    """Silence file descriptor 2 (the profiler's C++ start/stop notices) inside the block."""
    try:
        saved = os.dup(2)
    except OSError:  # no usable fd 2: nothing to silence
        yield
        return
    try:
        with open(os.devnull, "w") as devnull:
            os.dup2(devnull.fileno(), 2)
            yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def _profiled_peak(fn: Callable[[], object]) -> int:
    """Peak of torch's CPU allocations during ``fn()`` from the profiler's memory records."""
    from torch.profiler import ProfilerActivity, profile

    with _quiet_stderr(), profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
        fn()
    deltas = []
    for e in prof.events():
        m = e.cpu_memory_usage if e.name == "[memory]" else e.self_cpu_memory_usage
        if m:
            deltas.append((e.time_range.start, m))
    deltas.sort(key=lambda x: x[0])
    current = peak = 0
    for _, m in deltas:
        current += m
        peak = max(peak, current)
    return int(peak)


CPU_MEMORY_METHOD = (
    "torch.profiler(profile_memory=True): peak of the cumulative allocations minus frees of "
    "torch's CPU allocator during the call, ordered by operator start (buffers allocated and "
    "freed inside a single operator are not seen)"
)
CUDA_MEMORY_METHOD = "torch.cuda.max_memory_allocated after a reset, minus memory_allocated before"


def peak_memory(fn: Callable[[], object], device: torch.device | str = "cpu") -> dict:
    """Peak memory (bytes) that ``fn()`` allocates on top of what existed before it, and how it
    was measured (:data:`CPU_MEMORY_METHOD` / :data:`CUDA_MEMORY_METHOD`). Run it in a call of
    its own: the CPU profiler slows the call down."""
    dev = torch.device(device)
    if dev.type == "cuda":
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats(dev)
        before = torch.cuda.memory_allocated(dev)
        fn()
        torch.cuda.synchronize()
        peak = torch.cuda.max_memory_allocated(dev) - before
        return {"bytes": int(peak), "method": CUDA_MEMORY_METHOD}
    return {"bytes": _profiled_peak(fn), "method": CPU_MEMORY_METHOD}


def time_call(
    fn: Callable[[], object],
    *,
    warmup: int = 1,
    repeats: int = 5,
    device: torch.device | str | None = None,
    min_time: float = 0.0,
    max_repeats: int = 50,
) -> dict:
    """Wall-clock seconds of ``fn()``: ``warmup`` untimed calls, then at least ``repeats`` timed
    ones, more (up to ``max_repeats``) until they add up to ``min_time`` seconds, so that fast
    calls get enough samples for a stable median on a shared machine. CUDA work is synchronised
    inside the timer. Returns median, quartiles, min, max and the number of repeats."""
    if warmup < 0 or repeats < 1 or max_repeats < repeats:
        raise ValueError(
            f"need warmup >= 0 and 1 <= repeats <= max_repeats, got {warmup}, {repeats}, "
            f"{max_repeats}"
        )
    for _ in range(warmup):
        fn()
        _sync(device)
    times: list[float] = []
    while len(times) < repeats or (sum(times) < min_time and len(times) < max_repeats):
        t0 = time.perf_counter()
        fn()
        _sync(device)
        times.append(time.perf_counter() - t0)
    t = torch.tensor(times, dtype=torch.float64)
    return {
        "median": float(t.median()),
        "q1": float(t.quantile(0.25)),
        "q3": float(t.quantile(0.75)),
        "min": float(t.min()),
        "max": float(t.max()),
        "repeats": len(times),
    }


def machine_info() -> dict:
    """Where a measurement ran: CPU model, cores, threads, load, torch version, CUDA device."""
    import platform

    cpu = platform.processor() or ""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    info = {
        "platform": platform.platform(),
        "python": platform.python_version(),
        "cpu": cpu,
        "cpu_count": os.cpu_count(),
        "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(),
        "loadavg": list(os.getloadavg()) if hasattr(os, "getloadavg") else None,
        "cuda": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
    }
    return info


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
                n, n, head_dim, method="paper_authors", bits=b, tables=t, table_size=table_size,
                heads=heads, upper_pairs=e["upper"],
            )  # fmt: skip
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
                n, n, head_dim, method="paper_authors", bits=b, tables=t, table_size=s,
                heads=heads, upper_pairs=e["upper"],
            )  # fmt: skip
            k = attention_counts(
                n, n, head_dim, method="masked_bucketed", bits=b, tables=t, table_size=s,
                heads=heads, pairs=e["per_table"],
            )  # fmt: skip
            tag = f"{b}b/{t}t/{s}"
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


def bench_rows(bench: dict) -> list[dict]:
    """Flat rows (method label, n, phase, median, q1, q3, peak bytes) of a benchmark JSON."""
    out = []
    for r in bench["rows"]:
        label = r["method"]
        if r["method"] in ("bucketed", "dense"):
            label = f"{r['method']} {r['bits']}b/{r['tables']}t/{r['table_size']}"
        for phase in ("forward", "forward_backward"):
            if phase in r:
                m = r[phase]
                out.append(
                    {
                        "label": label,
                        "method": r["method"],
                        "n": r["n"],
                        "phase": phase,
                        "median": m["median"],
                        "q1": m["q1"],
                        "q3": m["q3"],
                        "peak_bytes": m.get("peak_bytes"),
                    }
                )
    return out


def target_report(bench: dict) -> list[dict]:
    """The issue's speed targets against one benchmark run: target, goal, the ratio of medians
    (``measured``), the ratio of the fastest repeats (``best_of_repeats``: closer to an idle
    machine when the run was shared) and whether the median ratio meets the goal."""

    def find(n, method, **kw):
        for r in bench["rows"]:
            if r["n"] == n and r["method"] == method and all(r.get(a) == b for a, b in kw.items()):
                return r
        return None

    def stat(n, method, phase="forward", key="median", **kw):
        r = find(n, method, **kw)
        return None if r is None else r.get(phase, {}).get(key)

    def ratio(a, b):
        return a / b if a is not None and b else None

    ns = sorted({r["n"] for r in bench["rows"]})
    big = 8192 if 8192 in ns else max(ns)
    top = max(ns)
    s4 = {"bits": 4, "tables": 1, "table_size": None}
    s6 = {"bits": 6, "tables": 1, "table_size": None}
    s8 = {"bits": 8, "tables": 4, "table_size": None}
    fb = "forward_backward"
    specs = [
        (f"bucketed 4b/1t vs SDPA, forward, n={big}", ">= 10x", 10.0,
         lambda k: ratio(stat(big, "sdpa", key=k), stat(big, "bucketed", key=k, **s4))),
        (f"bucketed 4b/1t vs SDPA, forward+backward, n={big}", ">= 5x", 5.0,
         lambda k: ratio(stat(big, "sdpa", fb, k), stat(big, "bucketed", fb, k, **s4))),
        (f"bucketed 8b/4t vs SDPA, forward, n={big}", ">= 5x", 5.0,
         lambda k: ratio(stat(big, "sdpa", key=k), stat(big, "bucketed", key=k, **s8))),
        (f"dense strategy / bucketed 4b/1t peak memory, forward, n={top}", ">= 8x", 8.0,
         lambda k: ratio(stat(top, "dense", key="peak_bytes", **s4),
                         stat(top, "bucketed", key="peak_bytes", **s4))),
        (f"bucketed 6b/1t vs Reformer LSH, forward, n={big}", "> 1x", 1.0,
         lambda k: ratio(stat(big, "reformer", key=k), stat(big, "bucketed", key=k, **s6))),
    ]  # fmt: skip
    paper = bench.get("paper_mode", {})
    if paper:
        specs.append(
            ("paper mode (dense) vs authors' loop, forward", ">= 2x", 2.0,
             lambda k: ratio(paper["authors"][k], paper["paper_dense"][k]))
        )  # fmt: skip
        specs.append(
            ("paper mode (dense) time / SDPA time, forward", "<= 4x", -4.0,
             lambda k: ratio(paper["paper_dense"][k], paper["sdpa"][k]))
        )  # fmt: skip
    train = bench.get("training_step", {})
    if train:
        best = f"lsh_masked_{train['best_lsh_strategy']}"
        specs.append(
            ("BERT-tiny MLM step, best LSH strategy / SDPA baseline", "<= 1.25x", -1.25,
             lambda k: ratio(train[best][k], train["baseline"][k]))
        )  # fmt: skip
    out = []
    for name, goal, bound, value in specs:
        v, best_v = value("median"), value("min")
        met = None
        if v is not None:
            met = v <= -bound if bound < 0 else (v > bound if bound == 1.0 else v >= bound)
        out.append({"target": name, "goal": goal, "measured": v, "best_of_repeats": best_v,
                    "met": met})  # fmt: skip
    return out


def crossover_table(bench: dict) -> list[dict]:
    """For each bucketed setting and phase: the shortest benchmarked n from which ``bucketed``
    beats SDPA at that n and every longer n measured (None: not within the grid). Requiring it
    to stay faster keeps one noisy short-length timing from passing for a crossover."""
    rows = []
    settings = list(dict.fromkeys(
        (r["bits"], r["tables"], r["table_size"]) for r in bench["rows"]
        if r["method"] == "bucketed"
    ))  # fmt: skip
    for bits, tables, ts in settings:
        for phase in ("forward", "forward_backward"):
            sdpa = {r["n"]: r[phase]["median"] for r in bench["rows"]
                    if r["method"] == "sdpa" and phase in r}  # fmt: skip
            mine = {r["n"]: r[phase]["median"] for r in bench["rows"]
                    if r["method"] == "bucketed" and phase in r and r["bits"] == bits
                    and r["tables"] == tables and r["table_size"] == ts}  # fmt: skip
            ns = sorted(set(sdpa) & set(mine))
            cross = None
            for i, n in enumerate(ns):
                if all(mine[m] < sdpa[m] for m in ns[i:]):
                    cross = n
                    break
            rows.append({"setting": f"{bits}b/{tables}t/{ts}", "phase": phase,
                         "crossover_n": cross, "n_max": ns[-1] if ns else None})  # fmt: skip
    return rows


def crossover_labels(bench: dict) -> dict[str, dict[str, int | None]]:
    """``{phase: {"bucketed <setting>": crossover n}}``, as the benchmark figure wants it."""
    out: dict[str, dict[str, int | None]] = {"forward": {}, "forward_backward": {}}
    for r in crossover_table(bench):
        out[r["phase"]][f"bucketed {r['setting']}"] = r["crossover_n"]
    return out


def load_or_run_bench(scale: str | None = None) -> tuple[dict, str]:
    """The attention benchmark for ``scale``: at ``smoke`` the quick benchmark is run (about
    20 s); otherwise the committed ``results/attention_bench.json`` is read, and the full
    benchmark (~10 min) is run only when that file is missing. Returns (results, source)."""
    import importlib.util
    import json

    from lshlib.paths import REPO_ROOT, results_dir
    from lshlib.scales import get_scale

    s = get_scale(scale)
    path = results_dir(s) / "attention_bench.json"
    if s != "smoke" and path.is_file():
        return json.loads(path.read_text()), f"read {path.relative_to(REPO_ROOT)}"
    spec = importlib.util.spec_from_file_location(
        "bench_attention", REPO_ROOT / "benchmarks" / "attention.py"
    )
    module = importlib.util.module_from_spec(spec)
    assert spec.loader is not None
    spec.loader.exec_module(module)
    threads = torch.get_num_threads()
    try:
        with contextlib.redirect_stdout(io.StringIO()):  # the benchmark's progress table
            written = module.main(["--quick"] if s == "smoke" else ["--out", str(path)])
    finally:
        torch.set_num_threads(threads)
    return json.loads(Path(written).read_text()), f"ran the benchmark, wrote {written.name}"


DENSITY_SIZES = {
    "smoke": {"sentences": 4, "draws": 10},
    "laptop": {"sentences": 16, "draws": 40},
    "paper": {"sentences": 64, "draws": 100},
}
"""SST-2 sentences and hash draws for the measured-density check, per scale."""

DENSITY_SETTINGS = ((2, 1, 256), (4, 1, None), (6, 1, None), (8, 4, None))
"""Settings whose density the notebook measures: the paper's, and the benchmark's."""


def format_rows(rows: Sequence[dict], keys: Sequence[str], digits: int = 4) -> str:
    """A plain-text table of ``rows`` (floats rounded to ``digits`` significant decimals)."""

    def cell(v: object) -> str:
        if isinstance(v, bool) or v is None:
            return str(v)
        if isinstance(v, float):
            return (
                f"{v:.{digits}g}"
                if abs(v) >= 1e4 or (v != 0 and abs(v) < 1e-3)
                else (f"{v:.{digits}f}")
            )
        return str(v)

    table = [[str(k) for k in keys]] + [[cell(r.get(k)) for k in keys] for r in rows]
    widths = [max(len(row[i]) for row in table) for i in range(len(keys))]
    return "\n".join(
        "  ".join(c.rjust(w) for c, w in zip(row, widths, strict=True)) for row in table
    )


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


def findings(
    kflops: Sequence[dict], ops: Sequence[dict], density: Sequence[dict], bench: dict
) -> str:
    """The notebook's closing numbers, each computed from the tables passed in."""
    lines = []
    first = next(r for r in kflops if r["bits"] == 2 and r["tables"] == 1)
    lines.append(
        f"Paper's chart at 2-1: {first['paper_kflops']:.2f} KFLOPs of hashing vs "
        f"{first['paper_full_kflops']:.1f} for QK^T. Counted whole (fwd+bwd): LSH "
        f"{first['honest_lsh_kops']:.1f} K ops vs full attention {first['honest_full_kops']:.1f}"
        f" K ops."
    )
    n_max = max(r["n"] for r in ops)
    at = {r["method"]: r for r in ops if r["n"] == n_max}
    dense = at["dense"]["ops"]
    for m, r in at.items():
        if m != "dense":
            lines.append(f"Expected ops at n={n_max}: dense / {m} = {dense / r['ops']:.2f}x")
    for r in density:
        lines.append(
            f"Density on SST-2 queries/keys, {r['label']}: measured {r['measured']:.4f} "
            f"(SE {r['stderr']:.4f}) vs theory {r['expected']:.4f}"
        )
    for r in crossover_table(bench):
        lines.append(
            f"bucketed {r['setting']} first beats SDPA ({r['phase']}) at n = {r['crossover_n']}"
        )
    for t in target_report(bench):
        value = "n/a" if t["measured"] is None else f"{t['measured']:.2f}"
        lines.append(f"{t['target']}: {value} (goal {t['goal']}, met: {t['met']})")
    load = bench["machine"].get("loadavg")
    if load:
        lines.append(
            f"Benchmark load average (1 min) at start {load[0]:.2f}, end "
            f"{bench['loadavg_end'][0]:.2f} on {bench['machine']['cpu_count']} cores."
        )
    return "\n".join(lines)
