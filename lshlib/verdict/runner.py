"""``make plateau``: train the missing plateau jobs (:mod:`lshlib.experiments.plateau`) two at a
time, from a git worktree pinned at the commit that holds their code, and commit each record as it
lands.

Why a worktree: a run takes about an hour; edits in the main tree during that hour must never
reach a running process. So the runner refuses to start while the code (``lshlib/``,
``pyproject.toml``) has uncommitted changes, checks the current commit out into
``runs/worktrees/<commit>/`` and starts every worker there. Workers share the main tree's run
cache (``runs/``: tokenizer, corpus ids, checkpoints, final models), so a killed job resumes from
its newest checkpoint in a later sitting, and write records into the worktree's own
``results/``; the runner copies each finished record into the main tree's ``results/<scale>/``
and commits it alone (``git commit -- <file>``), so nothing is lost when the sitting ends.

Each worker runs one job on one thread (``nice``d): the pretraining run, then at once its chained
SST-2 runs. The runner shows one progress bar over the steps of the jobs it started, with an ETA
from the seconds per step measured so far; before starting a job it estimates the job's time from
the records of this machine (:func:`estimate_minutes`) and, with ``--deadline MINUTES`` (``make
plateau DEADLINE=...``), starts it only if that fits before the deadline.

Command line::

    python -m lshlib.verdict.runner [--scale S] [--workers 2] [--deadline MINUTES] [--dry-run]
    python -m lshlib.verdict.runner work NAME [--scale S]     # one job, in the worktree (internal)
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from lshlib.paths import REPO_ROOT

__all__ = ["estimate_minutes", "estimate_run_seconds", "finished_records", "missing_jobs", "main"]

CODE_PATHS = ("lshlib", "pyproject.toml", "Makefile")
POLL_SECONDS = 15.0


LOCK_WAIT_SECONDS = 60.0  # how long a git command waits for another's index.lock to go


def _git(*args: str, cwd: Path = REPO_ROOT, lock_wait: float = LOCK_WAIT_SECONDS) -> str:
    """Run git; while another git process (a commit in the main tree) holds ``index.lock``, wait
    and retry for up to ``lock_wait`` seconds instead of losing a finished record's commit."""
    deadline = time.monotonic() + lock_wait
    while True:
        done = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True)
        if done.returncode == 0:
            return done.stdout.strip()
        if "index.lock" not in done.stderr or time.monotonic() >= deadline:
            raise RuntimeError(f"git {' '.join(args)} failed: {done.stderr.strip()}")
        time.sleep(0.5)


def pinned_commit() -> str:
    """The current commit, when the code has no uncommitted changes (else a clear error)."""
    dirty = _git("status", "--porcelain", "--", *CODE_PATHS)
    if dirty:
        raise SystemExit(
            "the runner trains from a worktree pinned at a commit, but the code has uncommitted "
            f"changes:\n{dirty}\ncommit them (or stash them) first"
        )
    return _git("rev-parse", "HEAD")


def worktree(commit: str, runs: Path) -> Path:
    """``runs/worktrees/<commit[:12]>``, checked out at ``commit`` (created when missing)."""
    path = runs / "worktrees" / commit[:12]
    if not (path / "lshlib").is_dir():
        path.parent.mkdir(parents=True, exist_ok=True)
        _git("worktree", "prune")
        _git("worktree", "add", "--detach", str(path), commit)
    return path


# --------------------------------------------------------------------------- estimates


def finished_records(results: Path) -> list[dict]:
    out = []
    for path in sorted(results.glob("*-s*-*.json")):
        try:
            record = json.loads(path.read_text())
        except (OSError, ValueError):
            continue
        if isinstance(record, dict) and record.get("status") == "finished":
            out.append(record)
    return out


def _like(records: list[dict], config: Any, cpu: str | None) -> list[dict]:
    """1-thread records of runs like ``config`` (same task and epochs; MLM runs on a long
    schedule when ``config`` stops early), on this CPU model when any ran here."""

    long = config.task == "mlm" and (config.stop_at is not None or config.epochs > 1)

    def fits(r: dict, same_cpu: bool) -> bool:
        c, device = r["config"], r["device"]
        like = (
            (c["epochs"] > 1 or c.get("stop_at") is not None)
            if long
            else (c.get("epochs") == config.epochs)
        )
        return (
            c["task"] == config.task
            and c.get("max_length") == config.max_length
            and device.get("threads") == 1
            and like
            and (not same_cpu or device.get("model") == cpu)
            and bool(r.get("steps"))
        )

    for same_cpu in (True, False):
        found = [r for r in records if fits(r, same_cpu)]
        if found:
            return found
    raise LookupError(f"no finished 1-thread {config.task} record like {config.name} to go by")


def expected_steps(config: Any, records: list[dict], cpu: str | None) -> int:
    """Steps of a run: ``stop_at`` when set, else those of like records."""
    if config.stop_at is not None:
        return int(config.stop_at)
    like = _like(records, config, cpu)
    return round(sum(r["steps"] for r in like) / len(like))


def _steps_or_guess(config: Any, records: list[dict], cpu: str | None) -> int:
    """:func:`expected_steps`, or 1 (only the bar's total) when no record is like it."""
    try:
        return expected_steps(config, records, cpu)
    except LookupError:
        return 1


def estimate_run_seconds(config: Any, records: list[dict], cpu: str | None) -> float:
    """Seconds one run should take on one thread here: its steps times the median seconds per
    step of like records of this machine (:func:`_like`); the median, so that a run slowed by
    other work on the machine does not stretch every later estimate. Start-up (data, model) is
    not in a record's train_seconds: a job's wall-clock runs some minutes over."""
    like = _like(records, config, cpu)
    per_step = statistics.median(r["train_seconds"] / r["steps"] for r in like)
    return per_step * expected_steps(config, records, cpu)


def estimate_minutes(job: Any, records: list[dict], cpu: str | None) -> float:
    """Minutes a job (its pretraining and chained runs) should take on one thread here."""
    return sum(estimate_run_seconds(c, records, cpu) for c in job.configs) / 60


def missing_jobs(scale: str, results: Path) -> list[Any]:
    """The plateau jobs with a run whose record is not in ``results``."""
    from lshlib.experiments import plateau

    return [
        j
        for j in plateau.jobs(scale)
        if any(not (results / f"{c.name}.json").is_file() for c in j.configs)
    ]


# --------------------------------------------------------------------------- the worker


def progress_callback(path: Path, run: str):
    """A Trainer callback writing ``{"run", "step", "of"}`` to ``path`` every 25 steps (what the
    runner's bar reads); built here so that importing this module loads no transformers."""
    from transformers import TrainerCallback

    from lshlib import safeio

    class Progress(TrainerCallback):
        def on_step_end(self, args, state, control, **kwargs):
            if state.global_step % 25 == 0 or state.global_step == 1:
                safeio.atomic_write_json(
                    path, {"run": run, "step": state.global_step, "of": state.max_steps}
                )

    return Progress()


def work(name: str, scale: str, progress_dir: Path) -> None:
    """Train one job: its pretraining run, then its chained SST-2 runs (in this process)."""
    import torch

    from lshlib import training
    from lshlib.experiments import plateau

    torch.set_num_threads(1)
    job = plateau.job_by_name(name, scale)
    progress_dir.mkdir(parents=True, exist_ok=True)
    for config in job.configs:
        callback = progress_callback(progress_dir / f"{job.name}.json", config.name)
        training.run(config, callbacks=[callback], progress=False)
        print(f"finished {config.name}", flush=True)


# --------------------------------------------------------------------------- the runner


def _commit_record(source: Path, target: Path) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy2(source, target.with_suffix(".tmp"))
    os.replace(target.with_suffix(".tmp"), target)
    rel = str(target.relative_to(REPO_ROOT))
    ignored = subprocess.run(["git", "check-ignore", "-q", rel], cwd=REPO_ROOT).returncode == 0
    if ignored:  # smoke results are not committed
        return
    _git("add", "--", rel)
    _git("commit", "-q", "-m", f"Plateau record: {target.stem}", "--", rel)


def _start(job: Any, tree: Path, scale: str, runs: Path, logs: Path) -> subprocess.Popen:
    env = dict(
        os.environ,
        OMP_NUM_THREADS="1",
        MKL_NUM_THREADS="1",
        PYTHONPATH=str(tree),
        LSHLIB_RUNS_DIR=str(runs),
        LSHLIB_RESULTS_DIR=str(tree / "results"),
    )
    logs.mkdir(parents=True, exist_ok=True)
    log = open(logs / f"{job.name}.log", "a")  # noqa: SIM115 (held by the child)
    command = [
        "nice",
        "-n",
        "10",
        sys.executable,
        "-m",
        "lshlib.verdict.runner",
        "work",
        job.name,
        "--scale",
        scale,
    ]
    return subprocess.Popen(command, cwd=tree, env=env, stdout=log, stderr=subprocess.STDOUT)


def run(scale: str, workers: int, deadline: float | None, dry_run: bool) -> int:
    """Start what fits, commit what finishes; returns the number of jobs left undone."""
    from tqdm.std import tqdm

    from lshlib.bench.measure import cpu_model
    from lshlib.paths import results_dir, runs_dir

    results, runs = results_dir(scale, "cpu"), runs_dir()
    records, cpu = finished_records(results), cpu_model()
    todo = missing_jobs(scale, results)
    start = time.time()
    end = None if deadline is None else start + deadline * 60
    estimates: dict[str, float | None] = {}
    for j in todo:
        try:
            estimates[j.name] = estimate_minutes(j, records, cpu)
            said = f"{estimates[j.name]:.0f} min estimated on 1 thread"
        except LookupError as e:
            estimates[j.name], said = None, f"no estimate ({e})"
        print(f"{j.name}: {said}, {len(j.transfer)} chained SST-2 runs")
    if dry_run or not todo:
        print(f"{len(todo)} plateau jobs missing" + (" (dry run)" if dry_run else ""))
        return len(todo)
    commit = pinned_commit()
    tree = worktree(commit, runs)
    print(f"training from {tree} at commit {commit[:12]}")
    progress, logs = runs / "progress", runs / "logs"
    steps = {c.name: _steps_or_guess(c, records, cpu) for j in todo for c in j.configs}
    running: dict[str, tuple[subprocess.Popen, Any]] = {}
    started: list[Any] = []
    committed: set[str] = set()
    bar = tqdm(total=0, desc="plateau steps", unit="step", file=sys.stderr, mininterval=30)
    pending = list(todo)
    while pending or running:
        for job in list(pending):
            if len(running) >= workers:
                break
            pending.remove(job)
            estimate = estimates[job.name]
            if end is not None and (estimate is None or time.time() + estimate * 60 > end):
                why = "has no estimate" if estimate is None else f"needs {estimate:.0f} min"
                tqdm.write(
                    f"{job.name}: not started, it {why} and the deadline is in "
                    f"{(end - time.time()) / 60:.0f} min",
                    file=sys.stderr,
                )
                continue
            running[job.name] = (_start(job, tree, scale, runs, logs), job)
            started.append(job)
            bar.total += sum(steps[c.name] for c in job.configs)
        if not running:
            break
        time.sleep(POLL_SECONDS)
        current = 0
        for name, (process, job) in list(running.items()):
            exited = process.poll() is not None  # before the records: none is missed
            for config in job.configs:  # commit each record as soon as it exists
                made = tree / "results" / scale / f"{config.name}.json"
                if config.name not in committed and made.is_file():
                    _commit_record(made, results / made.name)
                    committed.add(config.name)
                    tqdm.write(f"committed {made.name}", file=sys.stderr)
            state = _read_progress(progress / f"{name}.json")
            if state and state["run"] not in committed:
                current += int(state["step"])
            if exited:
                if process.returncode != 0:
                    tqdm.write(
                        f"{name} failed (exit {process.returncode}); see {logs / (name + '.log')}",
                        file=sys.stderr,
                    )
                del running[name]
        made_steps = sum(steps[c.name] for j in started for c in j.configs if c.name in committed)
        bar.n = min(made_steps + current, bar.total)
        bar.refresh()
    bar.close()
    return len(missing_jobs(scale, results))


def _read_progress(path: Path) -> dict | None:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Train the missing plateau jobs.")
    parser.add_argument("command", nargs="?", default="run", choices=("run", "work"))
    parser.add_argument("name", nargs="?", help="the job (work only)")
    parser.add_argument("--scale", default=None, choices=("smoke", "laptop", "paper"))
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--deadline", type=float, default=None, help="minutes from now")
    parser.add_argument("--dry-run", action="store_true")
    ns = parser.parse_args(argv)
    if ns.workers < 1:
        parser.error(f"--workers must be >= 1, got {ns.workers}")
    if ns.deadline is not None and ns.deadline <= 0:
        parser.error(f"--deadline must be a positive number of minutes, got {ns.deadline}")
    from lshlib.scales import get_scale

    scale = get_scale(ns.scale)
    if ns.command == "work":
        if not ns.name:
            parser.error("work needs the job's name")
        from lshlib.paths import runs_dir

        work(ns.name, scale, runs_dir() / "progress")
        return
    left = run(scale, ns.workers, ns.deadline, ns.dry_run)
    print(f"{left} plateau jobs left")


if __name__ == "__main__":
    main()
