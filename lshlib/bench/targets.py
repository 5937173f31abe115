"""The speed and memory targets the attention benchmark is held to, read from one benchmark
record (:func:`target_report`): notebook 03, the claims table and the README show them."""

from __future__ import annotations

__all__ = ["target_report"]


def _finder(bench: dict):
    def stat(n, method, phase="forward", key="median", **setting):
        for r in bench["rows"]:
            if (
                r["n"] == n
                and r["method"] == method
                and all(r.get(a) == b for a, b in setting.items())
            ):
                return r.get(phase, {}).get(key)
        return None

    return stat


def _ratio(a, b):
    return a / b if a is not None and b else None


def target_report(bench: dict) -> list[dict]:
    """The speed and memory targets against one benchmark run: target, goal, the ratio of
    medians (``measured``), the ratio of the fastest repeats (``best_of_repeats``: closer to
    an idle machine when the run was shared) and whether the median ratio meets the goal."""
    stat = _finder(bench)
    s4 = {"bits": 4, "tables": 1, "table_size": None}
    s6 = {"bits": 6, "tables": 1, "table_size": None}
    s8 = {"bits": 8, "tables": 4, "table_size": None}
    fb = "forward_backward"
    ns = sorted({r["n"] for r in bench["rows"]})
    big, top = (8192 if 8192 in ns else max(ns)), max(ns)

    def speedup(n, phase, setting, ref="sdpa"):
        return lambda k: _ratio(stat(n, ref, phase, k), stat(n, "bucketed", phase, k, **setting))

    specs = [
        (f"bucketed 4b/1t vs SDPA, forward, n={big}", ">=", 10.0, speedup(big, "forward", s4)),
        (f"bucketed 4b/1t vs SDPA, forward+backward, n={big}", ">=", 8.0, speedup(big, fb, s4)),
        (f"bucketed 8b/4t vs SDPA, forward, n={big}", ">=", 5.0, speedup(big, "forward", s8)),
    ]
    for n in sorted({big, top}):
        specs.append(
            (
                f"bucketed 6b/1t vs HF Reformer LSH attention, forward, n={n}",
                ">",
                1.0,
                speedup(n, "forward", s6, ref="reformer"),
            )
        )
    specs.append(
        (
            f"peak memory, bucketed 4b/1t / SDPA, forward+backward, n={top} (profiler)",
            "<=",
            2.0,
            lambda k: _ratio(
                stat(top, "bucketed", fb, "peak_bytes", **s4), stat(top, "sdpa", fb, "peak_bytes")
            ),
        )
    )
    fresh = bench.get("fresh_process_memory") or {}
    if fresh:
        specs.append(
            (
                f"peak memory, bucketed 4b/1t / SDPA, forward+backward, n={fresh['n']} "
                "(peak-RSS growth, fresh process)",
                "<=",
                2.0,
                lambda k: fresh.get("ratio_bucketed_to_sdpa"),
            )
        )
    paper = bench.get("paper_mode", {})
    if paper:
        shape = paper["shape"]
        where = f"batch {shape['batch']}, {shape['heads']} heads, n={shape['n']}"
        specs.append(
            (
                f"paper mode (dense) / SDPA, {where}",
                "<=",
                2.5,
                lambda k: _ratio(paper["paper_dense"][k], paper["sdpa"][k]),
            )
        )
        specs.append(
            (
                f"authors' loop / our paper mode, {where}",
                ">=",
                2.0,
                lambda k: _ratio(paper["authors"][k], paper["paper_dense"][k]),
            )
        )
    long = bench.get("long_training_step", {})
    if long:
        shape = long["shape"]
        specs.append(
            (
                f"BERT-tiny MLM training step, batch 1, n={shape['n']}, vocab {shape['vocab']}, "
                "sparse head: bucketed 4b/1t / SDPA",
                "<=",
                0.5,
                lambda k: _ratio(long["bucketed_4b1t"][k], long["baseline"][k]),
            )
        )
    train = bench.get("training_step", {})
    if train:
        shape = train["shape"]
        best = f"lsh_masked_{train['best_lsh_strategy']}"
        specs.append(
            (
                f"BERT-tiny MLM training step, batch {shape['batch']}, n={shape['n']}: best LSH "
                "strategy / SDPA",
                "<=",
                1.25,
                lambda k: _ratio(train[best][k], train["baseline"][k]),
            )
        )
    ops = {">=": lambda v, b: v >= b, ">": lambda v, b: v > b, "<=": lambda v, b: v <= b}
    out = []
    for name, op, bound, value in specs:
        v, best_v = value("median"), value("min")
        met = None if v is None else ops[op](v, bound)
        out.append(
            {
                "target": name,
                "goal": f"{op} {bound:g}x",
                "measured": v,
                "best_of_repeats": best_v,
                "met": met,
            }
        )
    return out
