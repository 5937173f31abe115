"""The accelerator benchmark's record: its goals, its summary, and how it is read.

:mod:`lshlib.bench.gpu` measures and writes ``results/<scale>-cuda/attention_bench.json``; this
module says what the record means: the speed-ups and memory ratios over SDPA (:func:`summarize`),
the issue's goals with their measured values (:func:`goals`), and the text notebook 03 and the
README show (:func:`load`, :func:`report`, :func:`readme_lines`), or that none was measured. Like
the benchmark, it needs only the standard library (no torch), so a bare GPU machine can run it.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

from lshlib.paths import REPO_ROOT, results_dir

__all__ = ["summarize", "goals", "bench_path", "load", "report", "readme_lines"]

BENCHMARK = "attention_accelerator"
BATCH, HEADS = 1, 12  # the main shape, batch x heads (head_dim 64: lshlib.bench.gpu)
BLOCK = 128  # flex's block size at every length
GOALS = {"flex_vs_sdpa_fwd_bwd": {16384: 4.0, 65536: 6.0}, "peak_ratio": 1.5, "compile_s": 60.0}


def _median(row: dict | None, phase: str) -> float | None:
    return (row or {}).get(phase, {}).get("median")


def _find(rows, n, method, batch=BATCH, heads=HEADS, block=None) -> dict | None:
    for r in rows:
        if (r["n"], r["method"], r.get("batch"), r.get("heads")) == (n, method, batch, heads):
            if method != "flex" or r.get("block_size") == (block or BLOCK):
                return r
    return None


def summarize(rows: list[dict]) -> dict:
    """Speed-ups over SDPA (ratio of medians, same shape), peak-memory ratios and the largest
    compile time, per length."""
    out: dict = {"speedup_vs_sdpa": {}, "peak_ratio_to_sdpa": {}, "compile_s_max": None}
    shapes = sorted({(r["n"], r.get("batch"), r.get("heads")) for r in rows})
    for n, b, h in shapes:
        sdpa = _find(rows, n, "sdpa", b, h)
        for r in rows:
            if (r["n"], r.get("batch"), r.get("heads")) != (n, b, h) or r["method"] == "sdpa":
                continue
            label = r["method"] + (f" {r['block_size']}-blocks" if r.get("block_size") else "")
            key = f"{label}, batch {b} x {h} heads"
            for phase in ("forward", "forward_backward"):
                mine, base = _median(r, phase), _median(sdpa, phase)
                if mine and base:
                    out["speedup_vs_sdpa"].setdefault(f"{key}, {phase}", {})[n] = base / mine
            mem = (r.get("forward_backward") or {}).get("peak_bytes")
            base_mem = ((sdpa or {}).get("forward_backward") or {}).get("peak_bytes")
            if mem is not None and base_mem:
                out["peak_ratio_to_sdpa"].setdefault(f"{key}, forward_backward", {})[n] = (
                    mem / base_mem
                )
    compiles = [r["compile_s"] for r in rows if r.get("compile_s") is not None]
    out["compile_s_max"] = max(compiles) if compiles else None
    return out


def goals(record: dict) -> list[dict]:
    """The issue's goals, each with its measured value and whether it is met (None: not
    measured)."""
    rows, out = record.get("rows", []), []
    for n, goal in GOALS["flex_vs_sdpa_fwd_bwd"].items():
        flex, sdpa = _median(_find(rows, n, "flex"), "forward_backward"), None
        sdpa = _median(_find(rows, n, "sdpa"), "forward_backward")
        value = sdpa / flex if flex and sdpa else None
        out.append(
            {
                "goal": f"flex 128-blocks / SDPA, forward+backward, n={n}",
                "target": f">= {goal:g}x",
                "measured": value,
                "met": None if value is None else value >= goal,
            }
        )
    for n in GOALS["flex_vs_sdpa_fwd_bwd"]:
        f = (_find(rows, n, "flex") or {}).get("forward_backward", {}).get("peak_bytes")
        s = (_find(rows, n, "sdpa") or {}).get("forward_backward", {}).get("peak_bytes")
        value = f / s if f is not None and s else None
        out.append(
            {
                "goal": f"peak memory flex / SDPA, forward+backward, n={n}",
                "target": f"<= {GOALS['peak_ratio']:g}x",
                "measured": value,
                "met": None if value is None else value <= GOALS["peak_ratio"],
            }
        )
    c = summarize(rows)["compile_s_max"]
    out.append(
        {
            "goal": "largest flex compile time of one shape, forward + backward (s)",
            "target": f"<= {GOALS['compile_s']:g}",
            "measured": c,
            "met": None if c is None else c <= GOALS["compile_s"],
        }
    )
    return out


def bench_path(scale: str = "laptop", device: str = "cuda") -> Path:
    """``results/<scale>-<device>/attention_bench.json`` (not created)."""
    return results_dir(scale, device, create=False) / "attention_bench.json"


def shown_path(path: Path) -> str:
    return str(path.relative_to(REPO_ROOT)) if path.is_relative_to(REPO_ROOT) else str(path)


def load(scale: str = "laptop") -> dict | None:
    """The accelerator record of ``scale``, or None when none was made (or it is another kind
    of record). Read only."""
    try:
        record = json.loads(bench_path(scale).read_text())
    except (OSError, ValueError):
        return None
    return record if isinstance(record, dict) and record.get("benchmark") == BENCHMARK else None


def number(value: float | None, digits: int = 2) -> str:
    return "n/a" if value is None or math.isnan(value) else f"{value:.{digits}f}"


def _describe(record: dict) -> str:
    d = record["device"]
    return (
        f"{d.get('name')}, driver {d.get('driver')}, torch {d.get('torch')}, CUDA "
        f"{d.get('cuda_runtime')}, {record['dtype']}, batch {record['shape']['batch']} x "
        f"{record['shape']['heads']} heads, head_dim {record['shape']['head_dim']}, "
        f"{record['setting']['bits']} bits / {record['setting']['tables']} table, commit "
        f"`{str(record.get('commit'))[:12]}`"
    )


def report(record: dict | None, scale: str = "laptop", where: str | None = None) -> str:
    """Notebook 03's text: every row's medians, peak memory and compile time, then the goals;
    without a record, that none was made. ``where``: the record's path as shown."""
    where = where or shown_path(bench_path(scale))
    if record is None:
        return f"GPU: not measured on a GPU yet (no {where}; `make bench-gpu` writes it)."
    kind = "GPU" if record["device"].get("type") == "cuda" else record["device"].get("type")
    lines = [f"{kind} ({where}): {_describe(record)}", ""]
    lines.append(
        f"{'n':>6} {'method':<9} {'block':>5} {'shape':>6} {'fwd s':>9} {'fwd+bwd s':>9} "
        f"{'peak MiB':>9} {'compile s':>9}  note"
    )
    order = {"sdpa": 0, "flex": 1, "bucketed": 2, "eager": 3}
    main = (record["shape"]["batch"], record["shape"]["heads"])
    rows = sorted(
        record.get("rows", []),
        key=lambda r: (
            r["n"],
            (r.get("batch"), r.get("heads")) != main,
            order.get(r["method"], 9),
            -(r.get("block_size") or 0),
        ),
    )
    for r in rows:
        fwd, fb = r.get("forward") or {}, r.get("forward_backward") or {}
        compile_s = r.get("compile_s")
        peak = fb.get("peak_bytes", fwd.get("peak_bytes"))
        note = r.get("skipped") or r.get("error") or fb.get("skipped") or fb.get("error") or ""
        if r.get("sdpa_backend"):
            note = note or r["sdpa_backend"]
        shape = f"{r.get('batch', 0)}x{r.get('heads', 0)}"
        lines.append(
            f"{r['n']:>6} {r['method']:<9} {r.get('block_size') or '':>5} "
            f"{shape:>6} "
            f"{number(fwd.get('median'), 4):>9} {number(fb.get('median'), 4):>9} "
            f"{number(None if peak is None else peak / 2**20, 1):>9} {number(compile_s, 1):>9}  "
            f"{str(note)[:60]}"
        )
    lines += ["", "goals:"]
    for g in goals(record):
        met = {True: "met", False: "NOT met", None: "not measured"}[g["met"]]
        lines.append(f"  {g['goal']}: {number(g['measured'])} (goal {g['target']}): {met}")
    step = record.get("training_step") or {}
    if "ratio_flex_to_sdpa" in step:
        lines.append(
            f"  BERT-tiny MLM step, batch 1 x {step['shape']['n']}: flex / SDPA "
            f"{number(step['ratio_flex_to_sdpa'])}x, bucketed / SDPA "
            f"{number(step.get('ratio_bucketed_to_sdpa'))}x"
        )
    return "\n".join(lines)


def readme_lines(record: dict | None, scale: str = "laptop") -> list[str]:
    """The README's GPU paragraph: the goals as measured, or that none was measured."""
    where = shown_path(bench_path(scale))
    if record is None:
        return [f"**GPU** (`make bench-gpu`, `{where}`): not measured on a GPU yet."]
    parts = []
    for g in goals(record):
        met = {True: "met", False: "**not met**", None: "not measured"}[g["met"]]
        parts.append(f"{g['goal']} {number(g['measured'])} (goal {g['target']}, {met})")
    return [f"**GPU** (`make bench-gpu`, `{where}`: {_describe(record)}): " + "; ".join(parts)]


# --------------------------------------------------------------------------------------------
