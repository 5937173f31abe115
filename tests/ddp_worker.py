"""Worker of tests/test_training.py's data-parallel test: one tiny smoke MLM run, launched with
``python -m torch.distributed.run --nproc_per_node N tests/ddp_worker.py BATCH`` (or alone)."""

from __future__ import annotations

import json
import sys

from conftest import TINY_MODEL

from lshlib import training

TINY = TINY_MODEL


def tiny_config(batch_size: int) -> training.RunConfig:
    """The run both the 2-process and the 1-process side make (64 blocks of 32 tokens)."""
    return training.run_config(
        "mlm",
        "baseline",
        "smoke",
        42,
        max_length=32,
        max_train=64,
        max_eval=8,
        corpus_chars=200_000,
        batch_size=batch_size,
        eval_batch_size=8,
        logging_steps=1,
        eval_steps=2,
        save_steps=2,
        warmup=0.0,
        model_overrides=TINY,
    )


if __name__ == "__main__":
    record = training.run(tiny_config(int(sys.argv[1])), progress=False)
    print(json.dumps({"name": record["name"], "steps": record["steps"]}))
