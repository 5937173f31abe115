"""How to measure: wall-clock with warm-up and repeats, peak memory (torch's profiler, CUDA's
allocator counters, or the peak-RSS growth of a fresh process), and where a measurement ran
(machine, load, commit). :mod:`lshlib.bench.attention` and ``benchmarks/`` build on these.

Peak memory has two honest CPU measures, and the benchmark reports both: the profiler sees
every tensor torch allocates (ordered by operator start), while the growth of the peak resident
set size of a fresh process over one call also sees allocator caching and library buffers.
"""

from __future__ import annotations

import contextlib
import importlib.metadata
import json
import os
import platform
import resource
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import torch
from torch.profiler import ProfilerActivity, profile

from lshlib.paths import REPO_ROOT


def _sync(device: torch.device | str | None) -> None:
    if device is not None and torch.device(device).type == "cuda":
        torch.cuda.synchronize()


@contextlib.contextmanager
def quiet_stderr():
    """Silence file descriptor 2 (the profiler's C++ start/stop notices) inside the block."""
    try:
        saved = os.dup(2)
    except OSError:  # no usable fd 2: nothing to silence
        yield
        return
    try:
        with open(os.devnull, "w") as devnull:
            os.dup2(devnull.fileno(), 2)
            yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def _profiled_peak(fn: Callable[[], object]) -> int:
    """Peak of torch's CPU allocations during ``fn()`` from the profiler's memory records."""
    with quiet_stderr(), profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
        fn()
    deltas = []
    for e in prof.events():
        m = e.cpu_memory_usage if e.name == "[memory]" else e.self_cpu_memory_usage
        if m:
            deltas.append((e.time_range.start, m))
    deltas.sort(key=lambda x: x[0])
    current = peak = 0
    for _, m in deltas:
        current += m
        peak = max(peak, current)
    return int(peak)


CPU_MEMORY_METHOD = (
    "torch.profiler(profile_memory=True): peak of the cumulative allocations minus frees of "
    "torch's CPU allocator during the call, ordered by operator start (buffers allocated and "
    "freed inside a single operator are not seen)"
)
CUDA_MEMORY_METHOD = "torch.cuda.max_memory_allocated after a reset, minus memory_allocated before"


def peak_memory(fn: Callable[[], object], device: torch.device | str = "cpu") -> dict:
    """Peak memory (bytes) that ``fn()`` allocates on top of what existed before it, and how it
    was measured (:data:`CPU_MEMORY_METHOD` / :data:`CUDA_MEMORY_METHOD`). Run it in a call of
    its own: the CPU profiler slows the call down."""
    dev = torch.device(device)
    if dev.type == "cuda":
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats(dev)
        before = torch.cuda.memory_allocated(dev)
        fn()
        torch.cuda.synchronize()
        peak = torch.cuda.max_memory_allocated(dev) - before
        return {"bytes": int(peak), "method": CUDA_MEMORY_METHOD}
    return {"bytes": _profiled_peak(fn), "method": CPU_MEMORY_METHOD}


def time_call(
    fn: Callable[[], object],
    *,
    warmup: int = 1,
    repeats: int = 5,
    device: torch.device | str | None = None,
    min_time: float = 0.0,
    max_repeats: int = 50,
) -> dict:
    """Wall-clock seconds of ``fn()``: ``warmup`` untimed calls, then at least ``repeats`` timed
    ones, more (up to ``max_repeats``) until they add up to ``min_time`` seconds, so that fast
    calls get enough samples for a stable median on a shared machine. CUDA work is synchronised
    inside the timer. Returns median, quartiles, min, max and the number of repeats."""
    if warmup < 0 or repeats < 1 or max_repeats < repeats:
        raise ValueError(
            f"need warmup >= 0 and 1 <= repeats <= max_repeats, got {warmup}, {repeats}, "
            f"{max_repeats}"
        )
    for _ in range(warmup):
        fn()
        _sync(device)
    times: list[float] = []
    while len(times) < repeats or (sum(times) < min_time and len(times) < max_repeats):
        t0 = time.perf_counter()
        fn()
        _sync(device)
        times.append(time.perf_counter() - t0)
    t = torch.tensor(times, dtype=torch.float64)
    return {
        "median": float(t.quantile(0.5)),  # interpolated, like the quartiles
        "q1": float(t.quantile(0.25)),
        "q3": float(t.quantile(0.75)),
        "min": float(t.min()),
        "max": float(t.max()),
        "repeats": len(times),
    }


def others_running(samples: int = 20, interval: float = 0.05) -> float | None:
    """Mean number of threads of other processes that are running or runnable (state ``R`` in
    ``/proc/<pid>/task/<tid>/stat``) over ``samples`` looks ``interval`` seconds apart: what
    else used the CPU around a measurement, unlike the load average, which also counts the
    measurement's own threads for a minute after it ends. ``None`` without ``/proc``."""
    proc = Path("/proc")
    if not (proc / "self" / "task").is_dir():
        return None
    me = os.getpid()
    counts = []
    for i in range(samples):
        running = 0
        for stat in proc.glob("[0-9]*/task/[0-9]*/stat"):
            if int(stat.parts[2]) == me:
                continue
            try:
                state = stat.read_text().rsplit(")", 1)[1].split()[0]
            except (OSError, IndexError):
                continue  # the thread ended while we looked
            running += state == "R"
        counts.append(running)
        if i + 1 < samples:
            time.sleep(interval)
    return sum(counts) / len(counts)


def cpu_model() -> str:
    """The CPU's model name (``/proc/cpuinfo``; the platform's processor string elsewhere)."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine_info() -> dict:
    """Where a measurement ran: CPU model, cores, threads, load, torch version, CUDA device."""
    info = {
        "platform": platform.platform(),
        "python": platform.python_version(),
        "cpu": cpu_model(),
        "cpu_count": os.cpu_count(),
        "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(),
        "loadavg": list(os.getloadavg()) if hasattr(os, "getloadavg") else None,
        "others_running": others_running(),
        "cuda": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
    }
    return info


def _version(package: str) -> str | None:
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return None


def _driver() -> str | None:
    try:
        out = subprocess.run(
            ["nvidia-smi", "--query-gpu=driver_version", "--format=csv,noheader"],
            capture_output=True,
            text=True,
            timeout=20,
            check=True,
        )
        return out.stdout.strip().splitlines()[0] or None
    except (OSError, subprocess.SubprocessError, IndexError):
        return None


def device_info(device: torch.device) -> dict:
    """Device name, driver and versions (torch included)."""
    info: dict = {
        "type": device.type,
        "torch": torch.__version__,
        "python": platform.python_version(),
        "cuda_runtime": torch.version.cuda,
        "triton": _version("triton") or _version("pytorch-triton"),
        "transformers": _version("transformers"),
    }
    if device.type == "cuda":
        props = torch.cuda.get_device_properties(device)
        info.update(
            name=props.name,
            capability=f"{props.major}.{props.minor}",
            memory_bytes=int(props.total_memory),
            count=torch.cuda.device_count(),
            driver=_driver(),
            cudnn=torch.backends.cudnn.version(),
        )
    else:
        info.update(name=cpu_model(), threads=torch.get_num_threads())
    return info


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


RSS_METHOD = (
    "peak resident set size of a fresh Python process during one call minus its resident size "
    "just before (Linux: VmHWM reset through /proc/self/clear_refs, then VmHWM - VmRSS; "
    "elsewhere the growth of ru_maxrss), after its inputs exist and a small warm-up call has "
    "loaded the libraries"
)


def _proc_status(key: str) -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1]) * 1024
    raise KeyError(key)


def rss_growth(fn: Callable[[], object]) -> int:
    """Bytes by which the resident set size peaks above its level before ``fn()``. On Linux the
    peak is reset first, so earlier peaks (imports, warm-up) do not hide the call's; run it in a
    fresh process (:func:`in_fresh_process`) so that nothing else shares the process."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")  # reset VmHWM to the current VmRSS
        before = _proc_status("VmRSS")
        fn()
        return max(_proc_status("VmHWM") - before, 0)
    except OSError:
        before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        fn()
        after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        return int((after - before) * 1024)  # ru_maxrss is in kilobytes on Linux


def in_fresh_process(target: str, timeout: float = 600.0, **kwargs) -> dict:
    """Call ``module:function(**kwargs)`` in a new Python process and return its JSON result
    (so that process-wide measures such as the peak RSS start from nothing)."""
    module, _, function = target.partition(":")
    code = (
        "import importlib, json, sys; "
        f"m = importlib.import_module({module!r}); "
        f"print(json.dumps(getattr(m, {function!r})(**json.loads(sys.argv[1]))))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code, json.dumps(kwargs)],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=REPO_ROOT,
    )
    if done.returncode != 0:
        raise RuntimeError(f"{target} failed in a fresh process:\n{done.stderr[-2000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])
