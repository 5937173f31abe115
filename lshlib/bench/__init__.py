"""Measuring: time and memory, the CPU and GPU attention grids, make-target wall-clock.

Measuring: time and memory (:mod:`~lshlib.bench.measure`), the CPU attention benchmark
(:mod:`~lshlib.bench.attention`, ``make bench``), the accelerator grid (:mod:`~lshlib.bench.gpu`,
``make bench-gpu``, ``python -m lshlib.bench --device cuda``; its record read by
:mod:`~lshlib.bench.gpu_record`) and the wall-clock of whole ``make`` targets
(:mod:`~lshlib.bench.wallclock`).

The names of the CPU benchmark (``lshlib.bench`` when it was one module) are still offered here,
each found in :mod:`lshlib.bench.attention` when first used.
"""

from lshlib import reexports

_NAMES = {
    "SETTINGS": "attention",
    "PAPER_SETTING_MAX_N": "attention",
    "FULL_NS": "attention",
    "QUICK_NS": "attention",
    "AUTHORS_MAX_N": "attention",
    "DENSE_MAX_N": "attention",
    "EAGER_BWD_MAX_N": "attention",
    "eager": "attention",
    "reformer_module": "attention",
    "build_methods": "attention",
    "attention_grid": "attention",
    "bucket_pairs": "attention",
    "paper_mode_comparison": "attention",
    "training_steps": "attention",
    "training_step": "attention",
    "long_training_step": "attention",
    "rss_child": "attention",
    "fresh_process_memory": "attention",
    "profile_call": "attention",
    "crossover_table": "attention",
    "summarize": "attention",
    "run": "attention",
    "bench_path": "attention",
    "load_or_run": "attention",
}
__getattr__ = reexports(__name__, _NAMES)
