"""Command line of the attention benchmark (``make bench``): :func:`lshlib.bench.attention.run`,
printed as it goes and saved after every length to
``results/<scale>[-<device>]/attention_bench.json`` (``laptop``, or ``smoke`` with ``--quick``).

    python benchmarks/attention.py            # full grid, ~10 min on a 2-core CPU
    python benchmarks/attention.py --quick    # reduced grid, ~1 min
    python benchmarks/attention.py --device cuda   # = python -m lshlib.bench (lshlib.bench.gpu)

Benchmark only on an idle machine: the record keeps the load average at start and end.
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

import torch

from lshlib import safeio
from lshlib.bench import attention as bench
from lshlib.lsh.hashing import HashSetting


def format_row(row: dict) -> str:
    """One progress line: method, setting, median times and peak memory."""
    setting = ""
    if "bits" in row:
        setting = HashSetting(row["bits"], row["tables"], row["table_size"]).label
    fb = row.get("forward_backward", {}).get("median")
    mem = row["forward"].get("peak_bytes")
    return (
        f"n={row['n']:>6} {row['method']:<9} {setting:<28} fwd {row['forward']['median']:.4f}s"
        + (f"  fwd+bwd {fb:.4f}s" if fb is not None else "")
        + (f"  peak {mem / 2**20:8.1f} MiB" if mem is not None else "")
    )


def main(argv: list[str] | None = None) -> Path:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="reduced grid (~1 min), smoke")
    parser.add_argument("--threads", type=int, default=2, help="torch CPU threads (default 2)")
    parser.add_argument("--device", default="cpu", help="cpu or cuda")
    parser.add_argument("--out", type=Path, default=None, help="output JSON path")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    kind = torch.device(args.device).type
    if kind != "cpu":  # the accelerator grid (FlexAttention included) writes that device's file
        extra = ["--quick"] * args.quick + (["--out", str(args.out)] if args.out else [])
        return bench.main(["--device", args.device, *extra])
    path = args.out or bench.bench_path("smoke" if args.quick else "laptop", kind)
    print(f"machine: {bench.machine_info()}", flush=True)

    def save(record: dict) -> None:
        safeio.atomic_write_json(path, record, indent=1, default=str)

    def show(row: dict) -> None:
        print(format_row(row), flush=True)

    record = bench.run(quick=args.quick, device=args.device, on_row=show, on_length=save)
    save(record)
    print(json.dumps(record["summary"], indent=1, default=str))
    print(f"wrote {path}")
    return path


if __name__ == "__main__":
    main()
