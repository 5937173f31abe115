"""Training throughput: the bare sparse-head MLM step against the full pipeline, per variant.

At the laptop pretraining shape (``lshlib.scales.TRAINING["laptop"]["mlm"]``: block length,
batch, learning rate, evaluation set, evaluation/checkpoint cadence) it measures, for baseline,
``lsh_paper`` and ``lsh_masked``:

* **bare**: :func:`lshlib.training.jobs.mlm_model` + AdamW + :func:`lshlib.modeling.sparse_mlm_loss`
  on batches collated beforehand (no Trainer, no evaluation, no checkpoints);
* **pipeline**: :func:`lshlib.training.run` (the Trainer with our collator, data loader, logging,
  evaluation and checkpoints) on one evaluation cycle: ``eval_steps`` optimizer steps, ending in
  one evaluation and one checkpoint, the same share as in a full run.

It writes ``results/laptop/training_bench.json`` with tokens per second of both,
``pipeline_over_bare`` (goal >= 0.8), the share of the pipeline's wall-clock spent in evaluation
and checkpointing (goal <= 10%), the machine and its load average at start and end. Benchmark
only on an idle machine. About 3-5 minutes on a 2-core CPU::

    python benchmarks/training.py            # laptop shape
    python benchmarks/training.py --quick    # smoke shape, seconds (checks the script)
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

import torch

from lshlib import data, training
from lshlib.bench import attention as bench
from lshlib.modeling import VARIANTS, sparse_mlm_loss
from lshlib.paths import results_dir
from lshlib.training import features, jobs


def bare_throughput(config: training.RunConfig, steps: int, warmup: int = 3) -> dict[str, Any]:
    """Tokens per second of ``steps`` bare sparse-head AdamW steps (after ``warmup`` steps) on
    masked batches of the run's training blocks, collated beforehand."""
    tokenizer = data.get_tokenizer(config.scale)
    n = (steps + warmup) * config.batch_size
    blocks = features.mlm_blocks(tokenizer, "train", config.max_length, n, config.seed)
    collator = features.MLMCollator(tokenizer, config.mlm_probability, config.seed)
    rows = blocks["input_ids"]
    size = config.batch_size
    batches = [
        collator([{"input_ids": r} for r in rows[i * size : (i + 1) * size]])
        for i in range(steps + warmup)
    ]
    model = jobs.mlm_model(config, len(tokenizer))
    model.train()
    optimizer = torch.optim.AdamW(
        model.parameters(), lr=config.learning_rate, weight_decay=config.weight_decay
    )

    def step(batch: dict[str, torch.Tensor]) -> None:
        sparse_mlm_loss(model, batch).backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)

    for batch in batches[:warmup]:
        step(batch)
    start = time.perf_counter()
    for batch in batches[warmup:]:
        step(batch)
    seconds = time.perf_counter() - start
    tokens = sum(int(b["input_ids"].numel()) for b in batches[warmup:])
    return {"steps": steps, "seconds": seconds, "tokens_per_second": tokens / seconds}


def pipeline_throughput(config: training.RunConfig) -> dict[str, Any]:
    """A fresh :func:`lshlib.training.run` of ``config`` (its record written to a temporary
    results folder): tokens per second over its training wall-clock, and the seconds spent in
    evaluation and checkpointing."""
    shutil.rmtree(training.run_dir(config), ignore_errors=True)
    record = training.run(config, progress=False)
    shutil.rmtree(training.run_dir(config), ignore_errors=True)
    stages = record["stages"]
    overhead = stages["eval_seconds"] + stages["save_seconds"]
    return {
        "steps": record["steps"],
        "seconds": record["train_seconds"],
        "tokens_per_second": record["tokens_per_second"],
        "eval_seconds": stages["eval_seconds"],
        "evaluations": stages["evaluations"],
        "save_seconds": stages["save_seconds"],
        "saves": stages["saves"],
        "eval_checkpoint_share": overhead / stages["session_seconds"],
    }


def _config(variant: str, scale: str) -> training.RunConfig:
    """The measured run: the scale's MLM settings on one evaluation cycle of blocks."""
    settings = training.run_config("mlm", "baseline", scale)
    cycle = settings.eval_steps * settings.batch_size
    return training.run_config("mlm", variant, scale, max_train=cycle)


def bare_in_process(variant: str, scale: str, steps: int, threads: int) -> dict[str, Any]:
    """:func:`bare_throughput` of ``variant`` (called in a fresh process by :func:`measure`)."""
    torch.set_num_threads(threads)
    return bare_throughput(_config(variant, scale), steps)


def pipeline_in_process(variant: str, scale: str, threads: int) -> dict[str, Any]:
    """:func:`pipeline_throughput` of ``variant`` after one short unmeasured run (the first
    Trainer of a process pays one-time costs: lazy imports, allocator warm-up), in a fresh
    process (see :func:`measure`)."""
    torch.set_num_threads(threads)
    settings = training.run_config("mlm", "baseline", scale)
    pipeline_throughput(
        training.run_config("mlm", variant, scale, max_train=4 * settings.batch_size)
    )
    return pipeline_throughput(_config(variant, scale))


def measure(scale: str, variants: tuple[str, ...], bare_steps: int, threads: int) -> dict[str, Any]:
    """Bare and pipeline throughput of every variant at ``scale``'s MLM shape, each measured
    in a fresh process: in one long-lived process the order of measurements moved the bare
    step's speed by about 10% (the first variant measured ran fastest), and so the ratio."""
    rows: dict[str, Any] = {}
    for variant in variants:
        bare = bench.in_fresh_process(
            "benchmarks.training:bare_in_process",
            variant=variant,
            scale=scale,
            steps=bare_steps,
            threads=threads,
        )
        pipe = bench.in_fresh_process(
            "benchmarks.training:pipeline_in_process",
            variant=variant,
            scale=scale,
            threads=threads,
        )
        rows[variant] = {
            "bare": bare,
            "pipeline": pipe,
            "pipeline_over_bare": pipe["tokens_per_second"] / bare["tokens_per_second"],
        }
        ratio = rows[variant]["pipeline_over_bare"]
        print(
            f"{variant:<11} bare {bare['tokens_per_second']:>9,.0f} tok/s   pipeline "
            f"{pipe['tokens_per_second']:>9,.0f} tok/s   ratio {ratio:.2f}"
            f"   eval+ckpt {pipe['eval_checkpoint_share']:.1%}",
            flush=True,
        )
    settings = training.run_config("mlm", "baseline", scale)
    shape = {
        k: getattr(settings, k)
        for k in ("max_length", "batch_size", "max_eval", "eval_batch_size", "eval_steps")
    }
    shape.update(save_steps=settings.save_steps, vocab_size=len(data.get_tokenizer(scale)))
    return {"shape": shape, "variants": rows, "process_per_measurement": True}


def main(argv: list[str] | None = None) -> Path:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="smoke shape, a few seconds")
    parser.add_argument("--threads", type=int, default=2, help="torch CPU threads (default 2)")
    parser.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=VARIANTS)
    parser.add_argument("--bare-steps", type=int, default=None, help="timed bare steps")
    parser.add_argument("--out", type=Path, default=None, help="output JSON path")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    scale = "smoke" if args.quick else "laptop"
    path = args.out or results_dir(scale) / "training_bench.json"
    start = bench.machine_info()
    print(f"machine: {start}", flush=True)
    began = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:  # pipeline records go here, not to results/
        previous = os.environ.get("LSHLIB_RESULTS_DIR")
        os.environ["LSHLIB_RESULTS_DIR"] = tmp
        try:
            bare_steps = args.bare_steps or (5 if args.quick else 100)
            measured = measure(scale, tuple(args.variants), bare_steps, args.threads)
        finally:
            if previous is None:
                os.environ.pop("LSHLIB_RESULTS_DIR")
            else:
                os.environ["LSHLIB_RESULTS_DIR"] = previous
    record = {
        "scale": scale,
        "machine": start,
        "loadavg_start": start["loadavg"],
        "loadavg_end": list(os.getloadavg()),
        "others_running_start": start["others_running"],
        "others_running_end": bench.others_running(),
        "commit": bench.commit(),
        "seconds": time.perf_counter() - began,
        "finished_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "goals": {"pipeline_over_bare_min": 0.8, "eval_checkpoint_share_max": 0.10},
        **measured,
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(record, indent=1) + "\n")
    print(f"load average start {record['loadavg_start']} end {record['loadavg_end']}")
    print(
        f"other runnable threads start {start['others_running']} end {record['others_running_end']}"
    )
    print(f"wrote {path}")
    return path


if __name__ == "__main__":
    main()
