"""The timing and memory harness, the benchmark grid, and the one definition of a crossover.

:func:`run` times one attention call of every method at every length (BERT-LSH strategies
against SDPA, eager attention, our dense strategy, the authors' algorithm and the Hugging Face
Reformer LSH self-attention), then the paper-mode comparison and one BERT-tiny training step,
and returns one JSON-able record holding the machine, load, commit and every number.
``benchmarks/attention.py`` is its command line (``make bench``); notebook 03 reads the record
with :func:`load_or_run` (read only). Ratios are only ever taken within one run.

What runs (batch 1, 2 heads, head_dim 64, float32 unless stated):
* ``sdpa``: ``torch.nn.functional.scaled_dot_product_attention`` (flash kernel on CPU).
* ``eager``: ``softmax(q k^T * s) v`` in three torch ops.
* ``dense``: our dense strategy, masked mode (all scores, then the collision mask).
* ``bucketed``: our sparse strategy (hashing included), for each setting in ``SETTINGS``.
* ``reformer``: ``transformers``' ``LSHSelfAttention`` (its own QK/V projections included,
  chunk length 64, one hash round, buckets chosen by transformers for the length).
* ``authors``: ``lshlib.lsh.reference.authors_attention``, the paper's per-(batch, head) Python
  loop, only where it finishes quickly (``AUTHORS_MAX_N``).

``python -m lshlib.bench --device cuda`` (:func:`main`, ``make bench-gpu``) runs the accelerator
grid of :mod:`lshlib.bench.gpu` instead (FlexAttention included). Importing this module stays
light (torch and lshlib only; transformers is imported where the Reformer and the training
steps need it), so that grid runs on a machine without ``datasets`` or an installed project.
"""

from __future__ import annotations

import datetime as dt
import gc
import logging
import os
from pathlib import Path

import torch
import torch.nn.functional as F

from lshlib import safeio
from lshlib.bench.measure import (
    CPU_MEMORY_METHOD,
    CUDA_MEMORY_METHOD,
    RSS_METHOD,
    commit,
    in_fresh_process,
    machine_info,
    others_running,
    peak_memory,
    quiet_stderr,
    rss_growth,
    time_call,
)
from lshlib.lsh.attention import LSHConfig, lsh_attention
from lshlib.lsh.bucketed import plan_layout
from lshlib.lsh.flex import flex_on_cuda
from lshlib.lsh.hashing import HashSetting, buckets, draw_hash_params
from lshlib.lsh.reference import authors_attention
from lshlib.paths import REPO_ROOT, results_dir
from lshlib.scales import get_scale

# (bits, tables, table_size): plain signatures (table_size None) give 2**bits buckets and, for
# random Gaussian q/k (angle ~90 degrees), a density of about 2**-bits per table; the paper's
# hashing (2 bits folded into 256) is there to show where it stands.
SETTINGS = [(4, 1, None), (6, 1, None), (8, 4, None), (2, 1, 256)]
PAPER_SETTING_MAX_N = 4096  # the paper's hashing has density >= 1/4: no saving to look for beyond
FULL_NS = [128, 256, 512, 1024, 2048, 4096, 8192, 16384]
QUICK_NS = [256, 1024]
AUTHORS_MAX_N = 1024
DENSE_MAX_N = 16384  # forward; the backward of the O(n^2) methods stops at EAGER_BWD_MAX_N
EAGER_BWD_MAX_N = 8192
BATCH, HEADS, HEAD_DIM = 1, 2, 64


def eager(q, k, v, scale):
    return torch.softmax(q @ k.transpose(-1, -2) * scale, dim=-1) @ v


def reformer_module(n: int, device):
    """A fresh Reformer LSH self-attention (fresh so transformers picks buckets for ``n``)."""
    from transformers import ReformerConfig
    from transformers.models.reformer.modeling_reformer import LSHSelfAttention

    cfg = ReformerConfig(
        hidden_size=HEADS * HEAD_DIM,
        num_attention_heads=HEADS,
        attention_head_size=HEAD_DIM,
        lsh_attn_chunk_length=64,
        num_hashes=1,
        num_buckets=None,
        lsh_num_chunks_before=1,
        lsh_num_chunks_after=0,
        is_decoder=False,
        lsh_attention_probs_dropout_prob=0.0,
    )
    logging.getLogger("transformers").setLevel(logging.ERROR)
    return LSHSelfAttention(cfg).to(device).eval()


def measure(
    fn, grad_out, params, *, backward: bool, repeats: int, device, min_time: float = 0.5
) -> dict:
    """Time ``fn`` (forward, or forward+backward) with warm-up and record peak memory."""

    def call():
        out = fn()
        if backward:
            out.backward(grad_out)
            for p in params:
                p.grad = None
        return out

    r = time_call(call, warmup=1, repeats=repeats, device=device, min_time=min_time)
    r["peak_bytes"] = peak_memory(call, device)["bytes"]
    gc.collect()
    return r


def build_methods(n, q, k, v, g, gen, settings, device, quick) -> list[tuple]:
    """(name, setting, callable, output gradient, tensors whose grads to clear) per method."""
    scale = HEAD_DIM**-0.5
    methods: list[tuple[str, dict, object, object, list]] = []
    methods.append(("sdpa", {}, lambda: F.scaled_dot_product_attention(q, k, v), g, [q, k, v]))
    methods.append(("eager", {}, lambda: eager(q, k, v, scale), g, [q, k, v]))
    dense_cfg = LSHConfig(bits=4, tables=1, table_size=None, mode="masked", strategy="dense")
    methods.append(
        (
            "dense",
            {"bits": 4, "tables": 1, "table_size": None},
            lambda c=dense_cfg: lsh_attention(q, k, v, config=c)[0],
            g,
            [q, k, v],
        )
    )
    for bits, tables, ts in settings:
        if (bits, tables, ts) == (2, 1, 256) and n > PAPER_SETTING_MAX_N:
            continue
        cfg = LSHConfig(bits=bits, tables=tables, table_size=ts, mode="masked", strategy="bucketed")
        methods.append(
            (
                "bucketed",
                {"bits": bits, "tables": tables, "table_size": ts},
                lambda c=cfg: lsh_attention(q, k, v, config=c)[0],
                g,
                [q, k, v],
            )
        )
    if n >= 128 and n % 64 == 0:
        ref = reformer_module(n, device)
        x = torch.randn(BATCH, n, HEADS * HEAD_DIM, generator=gen).to(device)
        x.requires_grad_(True)
        gx = torch.randn(BATCH, n, HEADS * HEAD_DIM, generator=gen).to(device)
        methods.append(
            (
                "reformer",
                {"chunk_length": 64, "num_hashes": 1},
                lambda m=ref, x=x: m(x).hidden_states,
                gx,
                [x, *ref.parameters()],
            )
        )
    if n <= (256 if quick else AUTHORS_MAX_N):
        hp = draw_hash_params(HEAD_DIM, 2, 1, 256, batch_shape=(BATCH, HEADS), seed=0)

        def authors(hp=hp):
            return authors_attention(
                q, k, v, None, hp.hyperplanes, hp.coefficients, hp.table_size, scale
            )[0]

        methods.append(
            ("authors", {"bits": 2, "tables": 1, "table_size": 256}, authors, g, [q, k, v])
        )
    return methods


def attention_grid(ns, settings, device, quick: bool, on_length=None, on_row=None) -> list[dict]:
    """Every method at every length; ``on_row(row)`` is called after each measurement and
    ``on_length(rows)`` after each length (the command line prints and saves there)."""
    rows: list[dict] = []
    gen = torch.Generator(device="cpu").manual_seed(0)
    for n in ns:
        shape = (BATCH, HEADS, n, HEAD_DIM)
        q, k, v = (torch.randn(shape, generator=gen).to(device) for _ in range(3))
        for t in (q, k, v):
            t.requires_grad_(True)
        g = torch.randn(shape, generator=gen).to(device)
        reps = 3 if n >= 4096 or quick else 5
        mt = 0.02 if quick else 0.5
        methods = build_methods(n, q, k, v, g, gen, settings, device, quick)
        for name, setting, fn, grad, params in methods:
            on2 = name in ("eager", "dense")
            if on2 and n > DENSE_MAX_N:
                continue
            row = {"n": n, "method": name, **setting}
            row["forward"] = measure(
                fn, grad, params, backward=False, repeats=reps, device=device, min_time=mt
            )
            if not (on2 and n > EAGER_BWD_MAX_N) and not (
                name == "sdpa" and n > EAGER_BWD_MAX_N * 2
            ):
                row["forward_backward"] = measure(
                    fn, grad, params, backward=True, repeats=reps, device=device, min_time=mt
                )
            if name == "bucketed":
                row["pairs"] = bucket_pairs(q, k, setting)
            rows.append(row)
            if on_row is not None:
                on_row(row)
        if on_length is not None:
            on_length(rows)
    return rows


def bucket_pairs(q, k, setting) -> dict:
    """Measured collision density and kernel work for one fresh hash draw of this setting."""
    hp = draw_hash_params(
        HEAD_DIM,
        setting["bits"],
        setting["tables"],
        setting["table_size"],
        batch_shape=(BATCH, HEADS),
        seed=1,
    )
    with torch.no_grad():
        qb, kb = buckets(q.detach().cpu(), hp), buckets(k.detach().cpu(), hp)
        lay = plan_layout(qb, kb)
        n = q.shape[-2]
        coll = 0
        for s in range(0, n, 2048):  # colliding pairs without an n x n x tables tensor
            coll += int((qb[..., s : s + 2048].unsqueeze(-1) == kb.unsqueeze(-2)).any(2).sum())
    total = BATCH * HEADS * n * n
    return {
        "density": coll / total,
        "per_table_pairs": lay.bucket_pairs,
        "computed_scores": lay.computed_scores,
        "dense_scores": total,
    }


def paper_mode_comparison(device, quick: bool) -> dict:
    """Paper mode (dense strategy) vs the authors' loop vs SDPA at batch 8, 2 heads, n 512."""
    B, H, n = (2, 2, 128) if quick else (8, 2, 512)
    gen = torch.Generator().manual_seed(1)
    q, k, v = (torch.randn(B, H, n, HEAD_DIM, generator=gen).to(device) for _ in range(3))
    hp = draw_hash_params(HEAD_DIM, 2, 1, 256, batch_shape=(B, H), seed=0, device=device)
    cfg = LSHConfig(bits=2, tables=1, table_size=256, mode="paper", strategy="dense")
    reps = 3 if quick else 5
    fns = {
        "paper_dense": lambda: lsh_attention(
            q, k, v, config=cfg, hyperplanes=hp.hyperplanes, coefficients=hp.coefficients
        )[0],
        "authors": lambda: authors_attention(
            q, k, v, None, hp.hyperplanes, hp.coefficients, hp.table_size
        )[0],
        "sdpa": lambda: F.scaled_dot_product_attention(q, k, v),
    }
    with torch.no_grad():
        out = {
            name: time_call(fn, repeats=reps, device=device, min_time=0.05 if quick else 1.0)
            for name, fn in fns.items()
        }
        err = float((fns["paper_dense"]() - fns["authors"]()).abs().max())
    out["shape"] = {"batch": B, "heads": H, "n": n, "head_dim": HEAD_DIM}
    out["max_abs_diff_paper_vs_authors"] = err
    return out


def _mlm_batch(batch: int, n: int, vocab: int, device) -> dict[str, torch.Tensor]:
    """Random token ids with 15% of positions labelled (the MLM training shape)."""
    gen = torch.Generator().manual_seed(2)
    ids = torch.randint(5, vocab, (batch, n), generator=gen)
    labels = torch.full((batch, n), -100)
    pick = torch.rand(batch, n, generator=gen) < 0.15
    labels[pick] = ids[pick]
    return {"input_ids": ids.to(device), "labels": labels.to(device)}


def training_steps(
    device, *, batch: int, n: int, vocab: int, lsh: dict[str, LSHConfig | None], repeats: int
) -> dict:
    """Median time of one BERT-tiny MLM training step (forward, backward, AdamW) with the
    sparse MLM head (:func:`lshlib.modeling.sparse_mlm_loss`) for each ``{name: lsh}``
    (``None`` = the SDPA baseline)."""
    from lshlib.modeling import build_model, sparse_mlm_loss

    inputs = _mlm_batch(batch, n, vocab, device)
    result: dict = {"shape": {"batch": batch, "n": n, "vocab": vocab}, "head": "sparse"}
    for name, config in lsh.items():
        variant = "baseline" if config is None else "lsh_masked"
        model = build_model(
            "mlm",
            variant,
            vocab_size=vocab,
            seed=42,
            lsh=config,
            max_position_embeddings=max(n, 512),
        ).to(device)
        model.train()
        opt = torch.optim.AdamW(model.parameters(), lr=5e-5)

        def step(model=model, opt=opt):
            sparse_mlm_loss(model, inputs).backward()
            opt.step()
            opt.zero_grad(set_to_none=True)

        result[name] = time_call(step, warmup=1, repeats=repeats, device=device)
        result[name]["lsh"] = None if config is None else config.to_dict()
        del model, opt
        gc.collect()
    return result


def training_step(device, quick: bool) -> dict:
    """BERT-tiny MLM steps at the paper's batch 8 x 512 (vocabulary 32,000): SDPA against
    masked-mode LSH with the paper's hashing, dense and bucketed."""
    from lshlib.modeling import variant_lsh_config

    base = variant_lsh_config("lsh_masked")
    lsh = {"baseline": None}
    for strategy in ("dense", "bucketed"):
        lsh[f"lsh_masked_{strategy}"] = LSHConfig.from_dict(
            {**base.to_dict(), "strategy": strategy}
        )
    batch, n, vocab = (2, 128, 2000) if quick else (8, 512, 32000)
    result = training_steps(
        device, batch=batch, n=n, vocab=vocab, lsh=lsh, repeats=2 if quick else 7
    )
    best = min(("lsh_masked_dense", "lsh_masked_bucketed"), key=lambda k: result[k]["median"])
    result["best_lsh_strategy"] = best.removeprefix("lsh_masked_")
    result["ratio_best_lsh_to_baseline"] = result[best]["median"] / result["baseline"]["median"]
    return result


def long_training_step(device, quick: bool) -> dict:
    """The step a user feels at long sequences: batch 1, n 4,096, the laptop vocabulary 8,000,
    SDPA against bucketed 4 bits / 1 table (masked mode)."""
    lsh = {
        "baseline": None,
        "bucketed_4b1t": LSHConfig(
            bits=4, tables=1, table_size=None, mode="masked", strategy="bucketed"
        ),
    }
    n, vocab = (512, 2000) if quick else (4096, 8000)
    result = training_steps(device, batch=1, n=n, vocab=vocab, lsh=lsh, repeats=2 if quick else 5)
    result["ratio_bucketed_to_baseline"] = (
        result["bucketed_4b1t"]["median"] / result["baseline"]["median"]
    )
    return result


def rss_child(method: str, n: int, bits: int = 4, tables: int = 1) -> dict:
    """Run in a fresh process (:func:`lshlib.bench.measure.in_fresh_process`): the peak-RSS growth
    of one forward+backward of ``sdpa`` or ``bucketed`` attention at length ``n``, its inputs and
    output gradient already allocated."""
    torch.set_num_threads(2)
    gen = torch.Generator().manual_seed(0)
    cfg = LSHConfig(bits=bits, tables=tables, table_size=None, mode="masked", strategy="bucketed")

    def inputs(size: int) -> list[torch.Tensor]:
        shape = (BATCH, HEADS, size, HEAD_DIM)
        return [torch.randn(shape, generator=gen).requires_grad_(i < 3) for i in range(4)]

    def call(q, k, v, g) -> None:
        if method == "sdpa":
            out = F.scaled_dot_product_attention(q, k, v)
        else:
            out = lsh_attention(q, k, v, config=cfg)[0]
        out.backward(g)

    call(*inputs(256))  # load the libraries and warm the allocator: not part of the measurement
    tensors = inputs(n)
    gc.collect()
    return {"method": method, "n": n, "bytes": rss_growth(lambda: call(*tensors))}


def fresh_process_memory(quick: bool) -> dict:
    """Peak-RSS growth of a fresh process over one forward+backward at the largest length:
    SDPA against bucketed 4 bits / 1 table (each in its own process)."""
    n = 1024 if quick else FULL_NS[-1]
    out = {"n": n, "method": RSS_METHOD}
    for method in ("sdpa", "bucketed"):
        out[method] = in_fresh_process("lshlib.bench.attention:rss_child", method=method, n=n)[
            "bytes"
        ]
    out["ratio_bucketed_to_sdpa"] = out["bucketed"] / out["sdpa"] if out["sdpa"] else None
    return out


def profile_call(
    n: int = 8192, bits: int = 4, tables: int = 1, backward: bool = True, top: int = 12
) -> list[dict]:
    """Where one bucketed call spends its time: ``torch.profiler`` over one forward (and
    backward) at length ``n`` after a warm-up call, the ``top`` operators by self CPU time with
    their share of the total."""
    from torch.profiler import ProfilerActivity, profile

    gen = torch.Generator().manual_seed(0)
    shape = (BATCH, HEADS, n, HEAD_DIM)
    q, k, v = (torch.randn(shape, generator=gen).requires_grad_() for _ in range(3))
    cfg = LSHConfig(bits=bits, tables=tables, table_size=None, mode="masked", strategy="bucketed")

    def call() -> None:
        out = lsh_attention(q, k, v, config=cfg)[0]
        if backward:
            out.backward(torch.ones_like(out))

    call()
    with quiet_stderr(), profile(activities=[ProfilerActivity.CPU]) as prof:
        call()
    events = [e for e in prof.key_averages() if e.self_cpu_time_total > 0]
    total = sum(e.self_cpu_time_total for e in events)
    events.sort(key=lambda e: e.self_cpu_time_total, reverse=True)
    return [
        {
            "operator": e.key,
            "calls": e.count,
            "self_ms": e.self_cpu_time_total / 1000,
            "share": e.self_cpu_time_total / total,
        }
        for e in events[:top]
    ]


def crossover_table(bench: dict) -> list[dict]:
    """For each bucketed setting and phase: the shortest benchmarked n from which ``bucketed``
    beats SDPA at that n and every longer n measured (None: not within the grid). Requiring it
    to stay faster keeps one noisy short-length timing from passing for a crossover."""
    rows = []
    settings = list(
        dict.fromkeys(
            (r["bits"], r["tables"], r["table_size"])
            for r in bench["rows"]
            if r["method"] == "bucketed"
        )
    )
    for bits, tables, ts in settings:
        for phase in ("forward", "forward_backward"):
            sdpa = {
                r["n"]: r[phase]["median"]
                for r in bench["rows"]
                if r["method"] == "sdpa" and phase in r
            }
            mine = {
                r["n"]: r[phase]["median"]
                for r in bench["rows"]
                if r["method"] == "bucketed"
                and phase in r
                and r["bits"] == bits
                and r["tables"] == tables
                and r["table_size"] == ts
            }
            ns = sorted(set(sdpa) & set(mine))
            cross = None
            for i, n in enumerate(ns):
                if all(mine[m] < sdpa[m] for m in ns[i:]):
                    cross = n
                    break
            rows.append(
                {
                    "setting": HashSetting(bits, tables, ts).label,
                    "phase": phase,
                    "crossover_n": cross,
                    "n_max": ns[-1] if ns else None,
                }
            )
    return rows


def summarize(rows: list[dict]) -> dict:
    """Crossover lengths (:func:`crossover_table`) and speed-ups over SDPA per setting and n."""
    out: dict = {"crossover_n_vs_sdpa": {}, "speedup_vs_sdpa": {}}
    for r in crossover_table({"rows": rows}):
        out["crossover_n_vs_sdpa"][f"{r['setting']} {r['phase']}"] = r["crossover_n"]
    for r in rows:
        if r["method"] != "bucketed":
            continue
        label = HashSetting(r["bits"], r["tables"], r["table_size"]).label
        for phase in ("forward", "forward_backward"):
            sdpa = next(
                (
                    s[phase]["median"]
                    for s in rows
                    if s["method"] == "sdpa" and s["n"] == r["n"] and phase in s
                ),
                None,
            )
            if sdpa and phase in r:
                speedups = out["speedup_vs_sdpa"].setdefault(f"{label} {phase}", {})
                speedups[r["n"]] = sdpa / r[phase]["median"]
    return out


def run(*, quick: bool = False, device: str = "cpu", on_row=None, on_length=None) -> dict:
    """The whole benchmark as one record (``quick``: a reduced grid of about a minute).

    ``on_row(row)`` sees each measurement; ``on_length(record)`` the record so far after each
    length (to save partial results). ``bucketed`` is the bucketed kernel on every device (not
    FlexAttention, which it would become on CUDA: :func:`lshlib.lsh.flex.resolve_strategy`); the
    accelerator grid with FlexAttention is :func:`lshlib.bench.gpu.run_grid`."""
    with flex_on_cuda(False):
        return _run(quick=quick, device=device, on_row=on_row, on_length=on_length)


def _run(*, quick: bool, device: str, on_row, on_length) -> dict:
    dev = torch.device(device)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device {device!r} asked for, but CUDA is not available")
    settings = SETTINGS[:2] if quick else SETTINGS
    record = {
        "benchmark": "attention",
        "scale": "smoke" if quick else "laptop",
        "started": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "finished": None,
        "complete": False,
        "commit": commit(),
        "machine": machine_info(),
        "loadavg_end": None,
        "device": str(dev),
        "dtype": "float32",
        "shape": {"batch": BATCH, "heads": HEADS, "head_dim": HEAD_DIM},
        "settings": [list(s) for s in settings],
        "bucket_scheme": "table_size None = plain 2**bits SimHash signatures; 256 = paper folding",
        "memory_method": CPU_MEMORY_METHOD if dev.type == "cpu" else CUDA_MEMORY_METHOD,
        "notes": {
            "authors": f"authors' per-(batch, head) loop only up to n={AUTHORS_MAX_N}",
            "o_n2_backward": f"eager/dense forward+backward only up to n={EAGER_BWD_MAX_N}",
            "paper_setting": f"2b/1t/256 (the paper's hashing) only up to n={PAPER_SETTING_MAX_N}",
            "reformer": "transformers LSHSelfAttention incl. its QK/V projections; chunk 64, "
            "1 hash, num_buckets chosen by transformers for each n",
            "order": "paper-mode comparison, training steps and fresh-process memory run first, "
            "then the grid",
            "training_steps": "MLM training steps use the sparse MLM head (the vocabulary "
            "projection only at labelled positions)",
        },
        "rows": [],
        "paper_mode": paper_mode_comparison(dev, quick),
        "training_step": training_step(dev, quick),
        "long_training_step": long_training_step(dev, quick),
        "fresh_process_memory": fresh_process_memory(quick) if dev.type == "cpu" else None,
    }

    def update(rows: list[dict], complete: bool = False) -> None:
        record.update(rows=rows, summary=summarize(rows), complete=complete)
        record.update(
            finished=dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
            loadavg_end=list(os.getloadavg()),
            others_running_end=others_running(),
        )
        if on_length is not None:
            on_length(record)

    ns = QUICK_NS if quick else FULL_NS
    rows = attention_grid(ns, settings, dev, quick, on_length=update, on_row=on_row)
    update(rows, complete=True)
    return record


def bench_path(scale: str | None = None, device: str | None = None):
    """Where the attention benchmark of ``scale`` lives: ``results/<scale>[-<device>]/``."""
    return results_dir(scale, device) / "attention_bench.json"


def _shown(path: Path) -> str:
    """``path`` relative to the repository when inside it (``$LSHLIB_RESULTS_DIR`` may not be)."""
    return str(path.relative_to(REPO_ROOT)) if path.is_relative_to(REPO_ROOT) else str(path)


def load_or_run(scale: str | None = None) -> tuple[dict, str]:
    """The attention benchmark for ``scale``: at ``smoke`` the quick benchmark is run (about
    20 s, nothing written); otherwise the committed record is read, read only: a missing or
    corrupt one is a :class:`lshlib.safeio.DerivedFileError` naming ``make bench`` (a notebook
    or ``make figures`` never starts the full benchmark). Returns (record, where it came from)."""
    s = get_scale(scale)
    if s != "smoke":
        path = bench_path(s)
        return safeio.read_derived(path, "make bench (on an idle machine)"), f"read {_shown(path)}"
    threads = torch.get_num_threads()
    try:
        return run(quick=True), "ran the quick benchmark (smoke scale)"
    finally:
        torch.set_num_threads(threads)
