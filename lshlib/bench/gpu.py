"""The accelerator benchmark: SDPA, eager, bucketed and FlexAttention on one GPU.

``make bench-gpu``, the same as ``PYTHONPATH=. python3 -m lshlib.bench --device cuda``, writes
``results/laptop-cuda/attention_bench.json`` after every length; notebook 03 and the README read
it through :mod:`lshlib.bench.gpu_record` (its goals and text, offered here too) and say "not
measured on a GPU yet" without it. It needs only torch (and transformers for the training
step): no ``datasets``, no ``ipywidgets``, no installed project, because a lent GPU machine has
no network and only its own Python.

What runs (bf16, batch 1 x 12 heads, head_dim 64, 4 bits / 1 table with plain signatures,
masked mode; hashing included in the LSH methods; forward with autograd recording, as
``lshlib.bench.attention``, and forward+backward):

* ``sdpa``: ``scaled_dot_product_attention``; the record names the kernel it dispatched to;
* ``flex``: :mod:`lshlib.lsh.flex` (compiled FlexAttention with the bucket block mask), 128-blocks
  at every length; at n = :data:`EXTRA_N` also 64-blocks and the batch 8 x 2 heads shape (with
  SDPA and bucketed beside it). Every shape compiles anew: the first call's time is kept apart
  (``first_call_s``, ``compile_s``) from the steady median;
* ``bucketed``: the bucketed kernel itself (:func:`lshlib.lsh.flex.flex_on_cuda` off);
* ``eager``: ``softmax(q k^T s) v``, only up to :data:`EAGER_MAX_N` (longer: recorded skipped);
* the BERT-tiny MLM training step at n = 4,096 with the sparse head, bf16 autocast, attention
  dropout 0 (flex has none): SDPA, flex and bucketed.

Peak memory: ``torch.cuda.max_memory_allocated`` over one call on top of what existed before.
A time budget (:data:`BUDGET_S`) keeps the whole command under 4 minutes on one H100: a
measurement that would start after it is recorded as skipped, never silently dropped. The grid's
sizes are parameters, so a CPU test runs it at n = 256 without compile.
"""

from __future__ import annotations

import argparse
import datetime as dt
import gc
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F

from lshlib import safeio
from lshlib.bench.gpu_record import (  # noqa: F401 - the record's reading, offered here as before
    BATCH,
    BENCHMARK,
    BLOCK,
    GOALS,
    HEADS,
    bench_path,
    goals,
    load,
    number,
    readme_lines,
    report,
    shown_path,
    summarize,
)
from lshlib.bench.measure import (
    CPU_MEMORY_METHOD,
    CUDA_MEMORY_METHOD,
    commit,
    device_info,
    machine_info,
    peak_memory,
    quiet_stderr,
    time_call,
)
from lshlib.lsh.attention import LSHConfig, hash_queries_keys, lsh_attention
from lshlib.lsh.flex import flex_layout, flex_lsh_attention, flex_on_cuda
from lshlib.paths import results_dir

NS = (4096, 16384, 65536)
EXTRA_N = 16384  # flex with 64-blocks and the batch 8 x 2 heads shape run at this length only
EAGER_MAX_N = 16384
HEAD_DIM = 64
EXTRA_SHAPE = (8, 2)
BITS, TABLES = 4, 1
SMALL_BLOCK = 64
METHODS = ("sdpa", "flex", "bucketed", "eager")
BUDGET_S = 170.0  # no measurement starts after this many seconds of the grid (see docstring)
PRIMARY = ("sdpa", "flex")  # measured at every length before the training step and the rest
TRAIN_N, TRAIN_VOCAB = 4096, 8000
QUICK_NS = (256,)


@dataclass(frozen=True)
class Job:
    """One method at one shape."""

    method: str
    batch: int = BATCH
    heads: int = HEADS
    block_size: int | None = None


def jobs_at(
    n: int,
    methods: tuple[str, ...],
    extras: bool,
    eager_max_n: int,
    batch: int = BATCH,
    heads: int = HEADS,
) -> list[Job]:
    """The measurements at length ``n``, most wanted first (the budget cuts the tail)."""
    jobs = []
    for m in methods:
        jobs.append(Job(m, batch, heads, BLOCK if m == "flex" else None))
    if extras and n == EXTRA_N:
        if "flex" in methods:
            jobs.append(Job("flex", batch, heads, SMALL_BLOCK))
        b, h = EXTRA_SHAPE
        jobs += [
            Job(m, b, h, BLOCK if m == "flex" else None)
            for m in methods
            if m in ("sdpa", "flex", "bucketed")
        ]
    order = {"sdpa": 0, "flex": 1, "bucketed": 2, "eager": 3}
    return sorted(
        jobs, key=lambda j: ((j.batch, j.heads) != (batch, heads), order.get(j.method, 9))
    )


# --------------------------------------------------------------------------------------------
# where it ran


def sdpa_backend(q, k, v) -> str | None:
    """The aten kernel ``scaled_dot_product_attention`` dispatches to for these inputs (with
    their ``requires_grad``, which can change the choice), from one profiled forward."""
    from torch.profiler import ProfilerActivity, profile

    with quiet_stderr(), profile(activities=[ProfilerActivity.CPU]) as prof:
        F.scaled_dot_product_attention(q, k, v)
    names = [e.key for e in prof.key_averages() if "_scaled_dot_product_" in e.key]
    return min(names, key=len) if names else None


# --------------------------------------------------------------------------------------------
# measuring


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _free(device: torch.device) -> None:
    gc.collect()
    if device.type == "cuda":
        torch.cuda.empty_cache()


def _settings(n: int, block_size: int | None) -> LSHConfig:
    return LSHConfig(
        bits=BITS,
        tables=TABLES,
        table_size=None,
        mode="masked",
        strategy="flex" if block_size else "bucketed",
        block_size=block_size or BLOCK,
    )


def method_fn(job: Job, q, k, v, compile_flex: bool) -> Callable:
    """A no-argument callable computing the method's output (hashing included)."""
    scale = q.shape[-1] ** -0.5
    if job.method == "sdpa":
        return lambda: F.scaled_dot_product_attention(q, k, v)
    if job.method == "eager":
        return lambda: torch.softmax(q @ k.transpose(-1, -2) * scale, dim=-1) @ v
    cfg = _settings(q.shape[-2], job.block_size)
    if job.method == "bucketed":

        def bucketed():
            with flex_on_cuda(False):  # the bucketed kernel itself, also on CUDA
                return lsh_attention(q, k, v, config=cfg, scaling=scale)[0]

        return bucketed
    if job.method == "flex":

        def flexed():
            qb, kb, _ = hash_queries_keys(q, k, cfg)
            return flex_lsh_attention(
                q, k, v, qb, kb, scaling=scale, block_size=cfg.block_size, compiled=compile_flex
            )

        return flexed
    raise ValueError(f"unknown method {job.method!r}; methods: {METHODS}")


def has_backward(job: Job, device: torch.device) -> bool:
    return not (job.method == "flex" and device.type != "cuda")


def measure_phase(fn, grad, params, *, backward, device, repeats, min_time) -> dict:
    """First call (compile included; also the warm-up) apart, then the steady median; peak
    memory of one call."""

    def call():
        out = fn()
        if backward:
            out.backward(grad)
            for p in params:
                p.grad = None
        return out

    t0 = time.perf_counter()
    call()
    _sync(device)
    first = time.perf_counter() - t0
    r = time_call(call, warmup=0, repeats=repeats, device=device, min_time=min_time)
    r["first_call_s"] = first
    r["peak_bytes"] = peak_memory(call, device)["bytes"]
    return r


def block_stats(q, k, block_size: int) -> dict:
    """Kept and full block fractions of one hash draw (the kernel's work cap: 1 / kept)."""
    cfg = _settings(q.shape[-2], block_size)
    with torch.no_grad():
        qb, kb, _ = hash_queries_keys(q, k, cfg)
        lay = flex_layout(qb, kb, None, block_size)
    kept = lay.kept_fraction
    return {
        "kept_fraction": kept,
        "full_fraction_of_kept": lay.full_fraction,
        "work_cap_vs_dense": 1.0 / kept if kept else None,
    }


def measure_job(job: Job, n: int, device, dtype, *, compile_flex, repeats, min_time, over) -> dict:
    """One row: both phases of one method at one shape (errors and skips recorded)."""
    row: dict = {"n": n, "method": job.method, "batch": job.batch, "heads": job.heads}
    if job.block_size:
        row["block_size"] = job.block_size
        row["compiled"] = compile_flex
    gen = torch.Generator(device=device).manual_seed(n)
    shape = (job.batch, job.heads, n, HEAD_DIM)
    grads = has_backward(job, device)
    try:
        q, k, v, g = (torch.randn(shape, generator=gen, device=device).to(dtype) for _ in range(4))
        for t in (q, k, v):
            t.requires_grad_(grads)
        if job.method == "sdpa":
            row["sdpa_backend"] = sdpa_backend(q, k, v)
        if job.method == "flex":
            row["blocks"] = block_stats(q, k, job.block_size)
        fn = method_fn(job, q, k, v, compile_flex)
    except Exception as e:  # an out-of-memory or a missing kernel is a result
        row["error"] = f"{type(e).__name__}: {str(e)[:400]}"
        _free(device)
        return row
    for phase, backward in (("forward", False), ("forward_backward", True)):
        if over():
            row[phase] = {"skipped": "time budget spent"}
            continue
        if backward and not grads:
            row[phase] = {"skipped": f"FlexAttention has no backward on {device.type}"}
            continue
        try:
            row[phase] = measure_phase(
                fn,
                g,
                [q, k, v],
                backward=backward,
                device=device,
                repeats=repeats,
                min_time=min_time,
            )
        except Exception as e:
            row[phase] = {"error": f"{type(e).__name__}: {str(e)[:400]}"}
        _free(device)
        if job.method == "flex" and compile_flex and "median" in row[phase]:
            row[phase]["compile_s"] = max(0.0, row[phase]["first_call_s"] - row[phase]["median"])
            # a shape's compile: forward (and the joint graph) plus the backward, compiled lazily
            row["compile_s"] = row.get("compile_s", 0.0) + row[phase]["compile_s"]
    del q, k, v, g, fn
    _free(device)
    return row


def training_step(device, dtype, *, n, vocab, repeats, over) -> dict:
    """BERT-tiny MLM training steps (forward, backward, AdamW) with the sparse head at batch 1
    x ``n``: SDPA, flex and the bucketed kernel, attention dropout 0 for all three (flex runs
    compiled on CUDA, as in training)."""
    from lshlib.bench.attention import _mlm_batch
    from lshlib.modeling import build_model, sparse_mlm_loss

    inputs = _mlm_batch(1, n, vocab, device)
    autocast = device.type == "cuda" and dtype != torch.float32
    out: dict = {
        "shape": {"batch": 1, "n": n, "vocab": vocab},
        "head": "sparse",
        "precision": f"autocast {dtype}".replace("torch.", "") if autocast else "float32",
        "attention_dropout": 0.0,
    }
    lsh = LSHConfig(bits=BITS, tables=TABLES, table_size=None, mode="masked", strategy="bucketed")
    entries = {
        "sdpa": ("baseline", None, True),
        "flex": ("lsh_bucketed", lsh, True),
        "bucketed": ("lsh_bucketed", lsh, False),
    }
    for name, (variant, config, use_flex) in entries.items():
        if over():
            out[name] = {"skipped": "time budget spent"}
            continue
        if name == "flex" and device.type != "cuda":
            out[name] = {"skipped": f"FlexAttention has no backward on {device.type}"}
            continue
        try:
            model = build_model(
                "mlm",
                variant,
                vocab_size=vocab,
                seed=42,
                lsh=config,
                max_position_embeddings=max(n, 512),
                attention_probs_dropout_prob=0.0,
            ).to(device)
            model.train()
            opt = torch.optim.AdamW(model.parameters(), lr=5e-5)

            def step(model=model, opt=opt, use_flex=use_flex):
                with flex_on_cuda(use_flex), torch.autocast(device.type, dtype, enabled=autocast):
                    loss = sparse_mlm_loss(model, inputs)
                loss.backward()
                opt.step()
                opt.zero_grad(set_to_none=True)

            t0 = time.perf_counter()
            step()
            _sync(device)
            first = time.perf_counter() - t0
            out[name] = time_call(step, warmup=1, repeats=repeats, device=device)
            out[name]["first_step_s"] = first
            out[name]["peak_bytes"] = peak_memory(step, device)["bytes"]
            del model, opt
        except Exception as e:
            out[name] = {"error": f"{type(e).__name__}: {str(e)[:400]}"}
        _free(device)
    for name in ("flex", "bucketed"):
        if "median" in out.get(name, {}) and "median" in out.get("sdpa", {}):
            out[f"ratio_{name}_to_sdpa"] = out[name]["median"] / out["sdpa"]["median"]
    return out


# --------------------------------------------------------------------------------------------
# the grid


def run_grid(
    *,
    device: str = "cuda",
    ns: tuple[int, ...] = NS,
    methods: tuple[str, ...] = METHODS,
    dtype: torch.dtype | None = None,
    batch: int = BATCH,
    heads: int = HEADS,
    extras: bool = True,
    train: bool = True,
    train_n: int = TRAIN_N,
    train_vocab: int = TRAIN_VOCAB,
    compile_flex: bool | None = None,
    repeats: int = 3,
    min_time: float = 0.2,
    budget_s: float = BUDGET_S,
    eager_max_n: int = EAGER_MAX_N,
    path: Path | None = None,
    on_length: Callable[[dict], None] | None = None,
    on_row: Callable[[dict], None] | None = None,
) -> dict:
    """The accelerator grid as one record, saved to ``path`` (when given) after every length
    and at the end; ``on_length(record)`` is called after each save. ``compile_flex=None``
    compiles on CUDA only; ``dtype=None`` is bf16 on CUDA, float32 elsewhere. The goals are
    read at batch :data:`BATCH` x :data:`HEADS` heads."""
    dev = torch.device(device)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device {device!r} asked for, but CUDA is not available")
    unknown = sorted(set(methods) - set(METHODS))
    if unknown:
        raise ValueError(f"unknown methods {unknown}; methods: {METHODS}")
    dtype = dtype or (torch.bfloat16 if dev.type == "cuda" else torch.float32)
    compile_flex = dev.type == "cuda" if compile_flex is None else compile_flex
    start = time.monotonic()

    def over() -> bool:
        return time.monotonic() - start > budget_s

    record: dict = {
        "benchmark": BENCHMARK,
        "started": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "finished": None,
        "complete": False,
        "commit": commit(),
        "device": device_info(dev),
        "machine": machine_info(),
        "dtype": str(dtype).replace("torch.", ""),
        "shape": {"batch": batch, "heads": heads, "head_dim": HEAD_DIM},
        "extra_shape": {"n": EXTRA_N, "batch": EXTRA_SHAPE[0], "heads": EXTRA_SHAPE[1]},
        "setting": {"bits": BITS, "tables": TABLES, "table_size": None, "mode": "masked"},
        "ns": list(ns),
        "methods": list(methods),
        "compiled_flex": compile_flex,
        "budget_s": budget_s,
        "memory_method": CUDA_MEMORY_METHOD if dev.type == "cuda" else CPU_MEMORY_METHOD,
        "notes": {
            "forward": "inputs require grad (autograd records), as lshlib.bench.attention",
            "hashing": "the LSH methods include hashing, sorting and (flex) the block mask",
            "eager": f"eager softmax attention only up to n={eager_max_n}",
            "bucketed": "the bucketed kernel itself (batched GEMMs off CPU), not FlexAttention",
            "compile": "first_call_s includes compilation; a phase's compile_s = its first call "
            "- its median; a row's compile_s sums its phases (forward graph, then backward)",
            "order": "sdpa and flex at every length, then the training step, then bucketed and "
            "eager (a spent budget cuts the latter first)",
        },
        "rows": [],
        "training_step": None,
    }

    def save() -> None:
        record["summary"] = summarize(record["rows"])
        record["goals"] = goals(record)
        record["elapsed_s"] = time.monotonic() - start
        record["finished"] = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
        record["budget_spent"] = over()
        if path is not None:
            safeio.atomic_write_json(path, record, indent=1, default=str)
        if on_length is not None:
            on_length(record)

    def measure_all(n: int, jobs: list[Job]) -> None:
        for job in jobs:
            if job.method == "eager" and n > eager_max_n:
                why = f"O(n^2) eager attention only up to n={eager_max_n}"
            elif over():
                why = "time budget spent"
            else:
                why = None
            if why is None:
                row = measure_job(
                    job,
                    n,
                    dev,
                    dtype,
                    compile_flex=compile_flex,
                    repeats=repeats,
                    min_time=min_time,
                    over=over,
                )
            else:
                row = {
                    "n": n,
                    "method": job.method,
                    "batch": job.batch,
                    "heads": job.heads,
                    "block_size": job.block_size,
                    "skipped": why,
                }
            record["rows"].append(row)
            if on_row is not None:
                on_row(row)
        save()

    # The goals' methods at every length first, then the training step, then the rest: when
    # the budget runs out it cuts what matters least.
    plan = {n: jobs_at(n, tuple(methods), extras, eager_max_n, batch, heads) for n in ns}
    for n, jobs in plan.items():
        measure_all(n, [j for j in jobs if j.method in PRIMARY])
    if train:
        record["training_step"] = training_step(
            dev, dtype, n=train_n, vocab=train_vocab, repeats=repeats, over=over
        )
    else:
        record["training_step"] = {"skipped": "not asked for"}
    save()
    for n, jobs in plan.items():
        rest = [j for j in jobs if j.method not in PRIMARY]
        if rest:
            measure_all(n, rest)
    record["complete"] = True
    save()
    return record


# --------------------------------------------------------------------------------------------
# command line


def _ints(text: str) -> tuple[int, ...]:
    return tuple(int(x) for x in text.split(",") if x.strip())


def main(argv: list[str] | None = None) -> Path:
    """``python -m lshlib.bench --device cuda`` (see the module docstring)."""
    parser = argparse.ArgumentParser(
        prog="python -m lshlib.bench",
        description="Accelerator attention benchmark: SDPA, eager, bucketed and FlexAttention.",
    )
    parser.add_argument("--device", default="cuda", help="cuda (default) or cpu")
    parser.add_argument("--quick", action="store_true", help="n=256, no extras, tiny train step")
    parser.add_argument("--ns", type=_ints, default=None, help="lengths, e.g. 4096,16384")
    parser.add_argument("--methods", default=",".join(METHODS), help="comma-separated methods")
    parser.add_argument("--no-extras", action="store_true", help="skip 64-blocks and batch 8x2")
    parser.add_argument("--no-train", action="store_true", help="skip the training step")
    parser.add_argument("--no-compile", action="store_true", help="uncompiled FlexAttention")
    parser.add_argument("--batch", type=int, default=BATCH, help=f"default {BATCH}")
    parser.add_argument("--heads", type=int, default=HEADS, help=f"default {HEADS}")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--budget", type=float, default=BUDGET_S, help="seconds (see docs)")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    parser.add_argument("--out", type=Path, default=None, help="output JSON path")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    dev = torch.device(args.device)
    ns = args.ns or (QUICK_NS if args.quick else NS)
    path = args.out or results_dir("smoke" if args.quick else "laptop", dev.type) / (
        "attention_bench.json"
    )
    print(f"device: {device_info(dev)}", flush=True)

    def show(row: dict) -> None:
        fwd, fb = row.get("forward") or {}, row.get("forward_backward") or {}
        note = row.get("skipped") or row.get("error") or fb.get("skipped") or fb.get("error")
        note = note or ""
        print(
            f"n={row['n']:>6} {row['method']:<9} {row.get('block_size') or '':>4} "
            f"{row.get('batch')}x{row.get('heads')} fwd {number(fwd.get('median'), 4)} s "
            f"fwd+bwd {number(fb.get('median'), 4)} s "
            f"{note}",
            flush=True,
        )

    record = run_grid(
        device=args.device,
        ns=ns,
        batch=args.batch,
        heads=args.heads,
        methods=tuple(m.strip() for m in args.methods.split(",") if m.strip()),
        extras=not (args.no_extras or args.quick),
        train=not args.no_train,
        train_n=256 if args.quick else TRAIN_N,
        train_vocab=500 if args.quick else TRAIN_VOCAB,
        compile_flex=False if args.no_compile else None,
        repeats=1 if args.quick else args.repeats,
        min_time=0.0 if args.quick else 0.2,
        budget_s=args.budget,
        path=path,
        on_row=show,
    )
    print(report(record, where=shown_path(path)))
    print(f"wrote {path} in {record['elapsed_s']:.0f} s")
    return path
