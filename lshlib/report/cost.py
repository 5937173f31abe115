"""Figures, text tables and summaries of notebook 03 (compute savings): the paper's KFLOPs chart
and its honest version, operations vs sequence length, collision density vs theory, the
measured wall-clock and memory of the attention benchmark, the targets it is held to, and the
notebook's closing numbers."""

from __future__ import annotations

from collections.abc import Sequence

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.figure import Figure

from lshlib.bench import attention as bench_mod
from lshlib.bench.targets import target_report  # noqa: F401 - notebook 03 calls it here
from lshlib.lsh.hashing import HashSetting

__all__ = [
    "kflops_charts",
    "ops_vs_length",
    "density_vs_theory",
    "bench_time_memory",
    "display_label",
    "format_rows",
    "bench_rows",
    "target_report",
    "crossover_labels",
    "findings",
    "profile_summary",
    "steps_report",
]


def kflops_charts(rows: Sequence[dict]) -> Figure:
    """Left: the paper's chart (hashing products only vs 25.6 KFLOPs for QK^T). Right: the same
    settings with every operation of the authors' algorithm, forward and backward, vs full
    attention counted the same way (log scale)."""
    labels = [r["label"] for r in rows]
    x = np.arange(len(rows))
    fig, (a, b) = plt.subplots(1, 2, figsize=(13, 4.2))
    a.bar(x, [r["paper_kflops"] for r in rows], color="tab:blue", label="LSH (hashing only)")
    a.axhline(rows[0]["paper_full_kflops"], color="tab:red", ls="--", label="full attention QK^T")
    a.set_title("As the paper counts (10 tokens, hidden 128)")
    a.set_ylabel("KFLOPs")
    # Points, not bars: a bar's length means nothing on a log axis.
    b.plot(x, [r["honest_lsh_forward_kops"] for r in rows], "o", label="LSH forward")
    b.plot(x, [r["honest_lsh_kops"] for r in rows], "s", mfc="none", label="LSH forward + backward")
    b.axhline(rows[0]["honest_full_forward_kops"], color="tab:red", ls=":", label="full, forward")
    b.axhline(rows[0]["honest_full_kops"], color="tab:red", ls="--", label="full, fwd + bwd")
    b.set_yscale("log")
    b.set_title("Every operation, forward and backward (authors' algorithm)")
    b.set_ylabel("K operations")
    for ax in (a, b):
        ax.set_xticks(x, labels, rotation=60)
        ax.set_xlabel("bands-num_hashes")
        ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def ops_vs_length(rows: Sequence[dict]) -> Figure:
    """Log-log: expected operations (left) and dot products (right) per attention call."""
    fig, axes = plt.subplots(1, 2, figsize=(13, 4.5))
    methods = list(dict.fromkeys(r["method"] for r in rows))
    for m in methods:
        sel = [r for r in rows if r["method"] == m]
        style = "-" if m == "dense" else ("--" if m.startswith("authors") else "-.")
        width = 2.5 if m == "dense" else 1.5
        for ax, key in zip(axes, ("ops", "dot_products"), strict=True):
            ax.plot(
                [r["n"] for r in sel],
                [r[key] for r in sel],
                style,
                lw=width,
                marker="o",
                ms=3,
                label=m,
            )
    titles = ("operations (fwd + bwd)", "query-key dot products")
    ylabels = ("operations per attention call", "dot products per attention call")
    for ax, title, ylabel in zip(axes, titles, ylabels, strict=True):
        ax.set_xscale("log", base=2)
        ax.set_yscale("log")
        ax.set_xlabel("sequence length n")
        ax.set_ylabel(ylabel)
        ax.set_title(title)
    axes[0].legend(fontsize=7, ncol=2)
    fig.tight_layout()
    return fig


def density_vs_theory(rows: Sequence[dict], title: str = "") -> Figure:
    """Measured collision density (points, ±2 standard errors as in notebooks 01 and 02) beside
    the closed form (bars would mislead on the log axis the 1-8% densities need)."""
    fig, ax = plt.subplots(figsize=(8, 4))
    x = np.arange(len(rows))
    ax.plot(
        x,
        [r["expected"] for r in rows],
        "_",
        ms=22,
        mew=2.5,
        color="tab:blue",
        label="theory (closed form)",
    )
    ax.errorbar(
        x,
        [r["measured"] for r in rows],
        yerr=[2 * r["stderr"] for r in rows],
        fmt="o",
        ms=4,
        capsize=4,
        color="tab:orange",
        label="measured (±2 SE)",
    )
    ax.set_xticks(x, [r["label"] for r in rows], rotation=20, fontsize=8)
    ax.set_xlim(-0.6, len(rows) - 0.4)
    ax.set_yscale("log")
    ax.set_ylabel("fraction of pairs colliding")
    ax.set_title(title or "Collision density: measured vs theory")
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def bench_time_memory(rows: Sequence[dict], crossovers: dict | None = None) -> Figure:
    """Wall-clock and peak memory (profiler), forward and forward + backward, vs n from the
    benchmark rows of :func:`bench_rows`; a dotted line, labelled with its n, marks where each
    bucketed setting starts to beat SDPA for good in that phase (``crossovers``: phase ->
    {label: n}, from :func:`crossover_labels`)."""
    fig, axes = plt.subplots(2, 2, figsize=(15, 10))
    labels = list(dict.fromkeys(r["label"] for r in rows))
    colors = dict(zip(labels, plt.cm.tab10(np.linspace(0, 1, max(len(labels), 2))), strict=False))
    panels = [
        (axes[0, 0], "forward", "median", "forward time (median, IQR band)", "seconds"),
        (
            axes[0, 1],
            "forward_backward",
            "median",
            "forward + backward time (median, IQR band)",
            "seconds",
        ),
        (axes[1, 0], "forward", "peak_bytes", "peak memory, forward (profiler)", "MiB"),
        (
            axes[1, 1],
            "forward_backward",
            "peak_bytes",
            "peak memory, forward + backward (profiler)",
            "MiB",
        ),
    ]
    for ax, phase, key, title, unit in panels:
        for lab in labels:
            sel = sorted(
                (r for r in rows if r["label"] == lab and r["phase"] == phase and r.get(key)),
                key=lambda r: r["n"],
            )
            if not sel:
                continue
            n = [r["n"] for r in sel]
            scale = 2**20 if key == "peak_bytes" else 1
            ax.plot(
                n,
                [r[key] / scale for r in sel],
                marker="o",
                ms=3,
                color=colors[lab],
                label=display_label(lab),
            )
            if key == "median":
                ax.fill_between(
                    n, [r["q1"] for r in sel], [r["q3"] for r in sel], color=colors[lab], alpha=0.2
                )
        ax.set_title(title)
        ax.set_ylabel(unit)
        ax.set_xscale("log", base=2)
        ax.set_yscale("log")
        ax.set_xlabel("sequence length n")
        if key == "median":
            for lab, n in (crossovers or {}).get(phase, {}).items():
                if n is not None and lab in colors:
                    ax.axvline(n, color=colors[lab], ls=":", lw=1.2)
                    ax.annotate(
                        f"n={n}",
                        (n, 1.0),
                        xycoords=("data", "axes fraction"),
                        rotation=90,
                        va="top",
                        ha="right",
                        fontsize=7,
                        color=colors[lab],
                    )
    handles, names = axes[0, 0].get_legend_handles_labels()
    fig.legend(handles, names, loc="lower center", ncol=3, fontsize=8, frameon=False)
    fig.tight_layout(rect=(0, 0.08, 1, 1))
    return fig


def display_label(label: str) -> str:
    """A benchmark method label in words (``dense ...`` is our dense LSH strategy, not
    ordinary attention)."""
    method, _, setting = label.partition(" ")
    words = {
        "sdpa": "SDPA (PyTorch fused attention)",
        "eager": "eager softmax attention",
        "dense": "LSH masked, dense strategy",
        "bucketed": "LSH masked, bucketed kernel",
        "reformer": "HF Reformer LSH attention",
        "authors": "authors' loop (paper mode)",
    }
    name = words.get(method, method)
    return f"{name}, {setting}" if setting else name


# --------------------------------------------------------------------------------------------
# text tables and summaries of the counts and the benchmark


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


def bench_rows(bench: dict) -> list[dict]:
    """Flat rows (method label, n, phase, median, q1, q3, peak bytes) of a benchmark JSON."""
    out = []
    for r in bench["rows"]:
        label = r["method"]
        if r["method"] in ("bucketed", "dense"):
            label = f"{r['method']} {HashSetting(r['bits'], r['tables'], r['table_size']).label}"
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


def crossover_labels(bench: dict) -> dict[str, dict[str, int | None]]:
    """``{phase: {"bucketed <setting>": crossover n}}``, as the benchmark figure wants it."""
    out: dict[str, dict[str, int | None]] = {"forward": {}, "forward_backward": {}}
    for r in bench_mod.crossover_table(bench):
        out[r["phase"]][f"bucketed {r['setting']}"] = r["crossover_n"]
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
    for r in bench_mod.crossover_table(bench):
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
            f"{bench['loadavg_end'][0]:.2f} on {bench['machine']['cpu_count']} cores (it counts "
            "the benchmark's own threads)."
        )
    start, end = bench["machine"].get("others_running"), bench.get("others_running_end")
    if start is not None and end is not None:
        lines.append(
            f"Runnable threads of other processes (mean of 20 looks): {start:.2f} at start, "
            f"{end:.2f} at end."
        )
    return "\n".join(lines)


PROFILE_GROUPS = {
    "matrix products": (
        "bmm",
        "mm",
        "matmul",
        "addmm",
        "baddbmm",
        "_flash_attention",
        "scaled_dot_product",
        "_efficient_attention",
    ),
    "gathers and scatters": (
        "index_select",
        "scatter",
        "index_copy",
        "gather",
        "index_add",
        "index_put",
        "index_fill",
        "take",
    ),
    "sorting and searching": ("sort", "searchsorted", "argsort", "unique", "cumsum", "bincount"),
    "softmax and exp": ("softmax", "exp", "logsumexp", "max", "amax"),
    "copies and fills": ("copy_", "fill_", "zero_", "clone", "contiguous", "cat", "empty"),
}


def profile_summary(rows: Sequence[dict]) -> str:
    """One sentence: the share of the profiled self CPU time
    (:func:`lshlib.bench.attention.profile_call` rows) in each group of operators, largest first."""
    shares = dict.fromkeys([*PROFILE_GROUPS, "other"], 0.0)
    for r in rows:
        name = r["operator"].removeprefix("aten::")
        group = next(
            (g for g, keys in PROFILE_GROUPS.items() if any(k in name for k in keys)), "other"
        )
        shares[group] += r["share"]
    parts = [f"{g} {v:.0%}" for g, v in sorted(shares.items(), key=lambda x: -x[1]) if v > 0]
    return "Share of the profiled time: " + ", ".join(parts) + "."


def steps_report(bench: dict) -> str:
    """The paper-mode comparison and the training steps of a benchmark record, each time as
    median and interquartile range (the spread decides whether a ratio is a finding)."""

    def t(m: dict) -> str:
        return f"{m['median']:.4f} s (IQR {m['q1']:.4f}-{m['q3']:.4f}, {m['repeats']} repeats)"

    lines = []
    paper = bench.get("paper_mode")
    if paper:
        diff = paper["max_abs_diff_paper_vs_authors"]
        lines.append(
            f"paper mode {paper['shape']}: max |ours - authors' loop| = {diff:.2e} "
            "(our re-implementation of their loop, lshlib/lsh/reference.py)"
        )
        for key in ("paper_dense", "authors", "sdpa"):
            lines.append(f"  {key}: {t(paper[key])}")
    for name in ("training_step", "long_training_step"):
        step = bench.get(name)
        if not step:
            continue
        lines.append(f"{name.replace('_', ' ')} {step['shape']}, {step.get('head', 'full')} head:")
        for key, value in step.items():
            if isinstance(value, dict) and "median" in value:
                lines.append(f"  {key}: {t(value)}")
    return "\n".join(lines)
