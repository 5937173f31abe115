"""Time and measure one attention call: BERT-LSH strategies against SDPA, eager attention, the
authors' algorithm and the Hugging Face Reformer LSH self-attention.

Writes ``results/attention_bench.json`` (``results/smoke/`` with ``--quick``) holding the machine,
torch version, commit, load, and every number; prints a table. Ratios are measured within one
run. Run ``python benchmarks/attention.py`` (full, ~10 min on a 2-core CPU) or ``--quick``.

What runs (batch 1, 2 heads, head_dim 64, float32 unless stated):
* ``sdpa``: ``torch.nn.functional.scaled_dot_product_attention`` (flash kernel on CPU).
* ``eager``: ``softmax(q k^T * s) v`` in three torch ops.
* ``dense``: our dense strategy, masked mode (all scores, then the collision mask).
* ``bucketed``: our sparse strategy (hashing included), for each setting in ``SETTINGS``.
* ``reformer``: ``transformers``' ``LSHSelfAttention`` (its own QK/V projections included,
  chunk length 64, one hash round, buckets chosen by transformers for the length).
* ``authors``: ``lshlib.reference.authors_attention``, the paper's per-(batch, head) Python loop,
  only where it finishes quickly (``AUTHORS_MAX_N``).
Then the paper-mode comparison (batch 8, 2 heads, n 512) and one BERT-tiny MLM training step.
"""

from __future__ import annotations

import argparse
import datetime as dt
import gc
import json
import os
import subprocess
import sys
from pathlib import Path

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from lshlib import cost  # noqa: E402
from lshlib.attention import LSHConfig, lsh_attention  # noqa: E402
from lshlib.paths import REPO_ROOT, results_dir  # noqa: E402

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


def commit() -> str | None:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=REPO_ROOT, capture_output=True, text=True, check=True
        )
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=REPO_ROOT,
            capture_output=True,
            text=True,
        ).stdout.strip()
        return out.stdout.strip() + ("-dirty" if dirty else "")
    except (OSError, subprocess.CalledProcessError):
        return None


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
    import logging

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

    r = cost.time_call(call, warmup=1, repeats=repeats, device=device, min_time=min_time)
    r["peak_bytes"] = cost.peak_memory(call, device)["bytes"]
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
        from lshlib.hashing import draw_hash_params

        hp = draw_hash_params(HEAD_DIM, 2, 1, 256, batch_shape=(BATCH, HEADS), seed=0)

        def authors(hp=hp):
            from lshlib.reference import authors_attention

            return authors_attention(
                q, k, v, None, hp.hyperplanes, hp.coefficients, hp.table_size, scale
            )[0]

        methods.append(
            ("authors", {"bits": 2, "tables": 1, "table_size": 256}, authors, g, [q, k, v])
        )
    return methods


def attention_grid(ns, settings, device, quick: bool, on_length=None) -> list[dict]:
    """Every method at every length; ``on_length(rows)`` is called after each length."""
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
            print(format_row(row), flush=True)
        if on_length is not None:
            on_length(rows)
    return rows


def bucket_pairs(q, k, setting) -> dict:
    """Measured collision density and kernel work for one fresh hash draw of this setting."""
    from lshlib.bucketed import plan_layout
    from lshlib.hashing import buckets, draw_hash_params

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


def format_row(row: dict) -> str:
    setting = ""
    if "bits" in row:
        setting = f"{row['bits']}b/{row['tables']}t/{row['table_size']}"
    fb = row.get("forward_backward", {}).get("median")
    mem = row["forward"].get("peak_bytes")
    return (
        f"n={row['n']:>6} {row['method']:<9} {setting:<12} fwd {row['forward']['median']:.4f}s"
        + (f"  fwd+bwd {fb:.4f}s" if fb is not None else "")
        + (f"  peak {mem / 2**20:8.1f} MiB" if mem is not None else "")
    )


def paper_mode_comparison(device, quick: bool) -> dict:
    """Paper mode (dense strategy) vs the authors' loop vs SDPA at batch 8, 2 heads, n 512."""
    from lshlib.hashing import draw_hash_params
    from lshlib.reference import authors_attention

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
            name: cost.time_call(fn, repeats=reps, device=device, min_time=0.05 if quick else 1.0)
            for name, fn in fns.items()
        }
        err = float((fns["paper_dense"]() - fns["authors"]()).abs().max())
    out["shape"] = {"batch": B, "heads": H, "n": n, "head_dim": HEAD_DIM}
    out["max_abs_diff_paper_vs_authors"] = err
    return out


def training_step(device, quick: bool) -> dict:
    """One BERT-tiny MLM training step (forward, backward, AdamW) at batch 8, n 512."""
    from lshlib.modeling import build_model, variant_lsh_config

    B, n = (2, 128) if quick else (8, 512)
    vocab = 2000 if quick else 32000  # the paper's vocabulary; a small one keeps --quick quick
    gen = torch.Generator().manual_seed(2)
    ids = torch.randint(5, vocab, (B, n), generator=gen)
    labels = torch.full((B, n), -100)
    pick = torch.rand(B, n, generator=gen) < 0.15
    labels[pick] = ids[pick]
    ids, labels = ids.to(device), labels.to(device)
    base = variant_lsh_config("lsh_masked")
    variants = {"baseline": ("baseline", None)}
    for strategy in ("dense", "bucketed"):
        lsh = LSHConfig.from_dict({**base.to_dict(), "strategy": strategy})
        variants[f"lsh_masked_{strategy}"] = ("lsh_masked", lsh)
    result = {"shape": {"batch": B, "n": n}, "lsh": base.to_dict()}
    for name, (variant, lsh) in variants.items():
        model = build_model(
            "mlm", variant, vocab_size=vocab, seed=42, lsh=lsh, max_position_embeddings=max(n, 512)
        ).to(device)
        model.train()
        opt = torch.optim.AdamW(model.parameters(), lr=5e-5)

        def step(model=model, opt=opt):
            loss = model(input_ids=ids, labels=labels).loss
            loss.backward()
            opt.step()
            opt.zero_grad(set_to_none=True)

        result[name] = cost.time_call(
            step, warmup=1 if quick else 2, repeats=2 if quick else 5, device=device
        )
        del model, opt
        gc.collect()
    lsh_best = min(("lsh_masked_dense", "lsh_masked_bucketed"), key=lambda k: result[k]["median"])
    result["best_lsh_strategy"] = lsh_best.removeprefix("lsh_masked_")
    result["ratio_best_lsh_to_baseline"] = result[lsh_best]["median"] / result["baseline"]["median"]
    return result


def summarize(rows: list[dict]) -> dict:
    """Ratios the issue asks for, and the crossover length of each bucketed setting."""

    def med(n, method, phase="forward", **setting):
        for r in rows:
            if (
                r["n"] == n
                and r["method"] == method
                and all(r.get(a) == b for a, b in setting.items())
            ):
                return r.get(phase, {}).get("median")
        return None

    def peak(n, method, phase="forward", **setting):
        for r in rows:
            if (
                r["n"] == n
                and r["method"] == method
                and all(r.get(a) == b for a, b in setting.items())
            ):
                return r.get(phase, {}).get("peak_bytes")
        return None

    out: dict = {"crossover_n_vs_sdpa": {}, "speedup_vs_sdpa": {}}
    ns = sorted({r["n"] for r in rows})
    for bits, tables, ts in SETTINGS:
        key = f"{bits}b/{tables}t/{ts}"
        for phase in ("forward", "forward_backward"):
            cross = None
            for n in ns:
                b = med(n, "bucketed", phase, bits=bits, tables=tables, table_size=ts)
                s = med(n, "sdpa", phase)
                if b is not None and s is not None and b < s:
                    cross = n
                    break
            out["crossover_n_vs_sdpa"][f"{key} {phase}"] = cross
            sp = {}
            for n in ns:
                b = med(n, "bucketed", phase, bits=bits, tables=tables, table_size=ts)
                s = med(n, "sdpa", phase)
                if b and s:
                    sp[n] = s / b
            out["speedup_vs_sdpa"][f"{key} {phase}"] = sp
    nmax = max(ns)
    for phase in ("forward", "forward_backward"):
        pb = peak(nmax, "bucketed", phase, bits=4, tables=1, table_size=None)
        pd = peak(nmax, "dense", phase, bits=4, tables=1, table_size=None)
        out[f"memory_ratio_dense_over_bucketed_{phase}_n{nmax}"] = pd / pb if pb and pd else None
    ref, b6 = med(8192, "reformer"), med(8192, "bucketed", bits=6, tables=1, table_size=None)
    s8 = med(8192, "sdpa")
    if ref and b6 and s8:
        out["reformer_n8192"] = {
            "reformer_speedup_vs_sdpa": s8 / ref,
            "bucketed_6b_vs_reformer": ref / b6,
        }
    return out


def main(argv: list[str] | None = None) -> Path:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--quick", action="store_true", help="reduced grid (~1 min), results/smoke/"
    )
    parser.add_argument("--threads", type=int, default=2, help="torch CPU threads (default 2)")
    parser.add_argument("--device", default="cpu", help="cpu or cuda")
    parser.add_argument("--out", type=Path, default=None, help="output JSON path")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise SystemExit("--device cuda asked for, but CUDA is not available")
    scale = "smoke" if args.quick else "laptop"
    path = args.out or results_dir(scale) / "attention_bench.json"
    started = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    machine = cost.machine_info()
    ns = QUICK_NS if args.quick else FULL_NS
    settings = SETTINGS[:2] if args.quick else SETTINGS
    print(f"machine: {machine}", flush=True)
    paper = paper_mode_comparison(device, args.quick)
    print(
        "paper mode:",
        json.dumps({k: v.get("median", v) if isinstance(v, dict) else v for k, v in paper.items()}),
        flush=True,
    )
    train = training_step(device, args.quick)
    print(
        "training step:",
        json.dumps({k: v.get("median", v) if isinstance(v, dict) else v for k, v in train.items()}),
        flush=True,
    )
    result = {
        "benchmark": "attention",
        "scale": scale,
        "started": started,
        "finished": None,
        "complete": False,
        "commit": commit(),
        "machine": machine,
        "loadavg_end": None,
        "device": str(device),
        "dtype": "float32",
        "shape": {"batch": BATCH, "heads": HEADS, "head_dim": HEAD_DIM},
        "settings": [list(s) for s in settings],
        "bucket_scheme": "table_size None = plain 2**bits SimHash signatures; 256 = paper folding",
        "memory_method": cost.CPU_MEMORY_METHOD
        if device.type == "cpu"
        else cost.CUDA_MEMORY_METHOD,
        "notes": {
            "authors": f"authors' per-(batch, head) loop only up to n={AUTHORS_MAX_N}",
            "o_n2_backward": f"eager/dense forward+backward only up to n={EAGER_BWD_MAX_N}",
            "paper_setting": f"2b/1t/256 (the paper's hashing) only up to n={PAPER_SETTING_MAX_N}",
            "reformer": "transformers LSHSelfAttention incl. its QK/V projections; chunk 64, "
            "1 hash, num_buckets chosen by transformers for each n",
            "order": "paper-mode comparison and training step run first, then the grid",
        },
        "rows": [],
        "paper_mode": paper,
        "training_step": train,
    }

    def write(rows: list[dict], complete: bool = False) -> None:
        result.update(rows=rows, summary=summarize(rows), complete=complete)
        result.update(
            finished=dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
            loadavg_end=list(os.getloadavg()),
        )
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(result, indent=1, default=str))

    rows = attention_grid(ns, settings, device, args.quick, on_length=write)
    write(rows, complete=True)
    print(json.dumps(result["summary"], indent=1, default=str))
    print(f"wrote {path}")
    return path


if __name__ == "__main__":
    main()
