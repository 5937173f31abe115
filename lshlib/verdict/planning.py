"""The verdict's runs (notebook 06): every seed and control, as one cached plan.

:func:`plan` lists the run configurations of each group at a scale (seeds from
:data:`lshlib.scales.VERDICT`):

* ``pretraining``: MLM of the three variants, one run per pretraining seed;
* ``sst2`` and ``squad``: the three variants and the ``scratch`` control, one run per fine-tuning
  seed, each starting from its variant's pretraining run of the seed at the same position
  (cycling when there are more fine-tuning seeds than pretraining seeds);
* ``controls``: SST-2 fine-tuning of the LSH variants and the attention controls
  (:data:`lshlib.modeling.CONTROL_VARIANTS`), all from the *baseline's* pretrained checkpoint, so
  only the attention used in fine-tuning differs;
* ``paper_settings``: SST-2 with the paper's fine-tuning settings
  (:data:`lshlib.scales.PAPER_FINETUNING`) for the baseline, ``lsh_paper`` and ``scratch``.

:func:`run_plan` runs what is missing (each run cached and resumable like any other, a process
pool of ``LSHLIB_WORKERS``) and returns the records; :mod:`lshlib.verdict.comparisons` turns them
into per-unit metrics and differences with intervals.
"""

from __future__ import annotations

import multiprocessing
import os
from collections.abc import Iterable
from concurrent.futures import FIRST_COMPLETED, Executor, Future, ProcessPoolExecutor, wait
from typing import Any

import torch
from tqdm.std import tqdm

from lshlib import training
from lshlib.bench import wallclock
from lshlib.modeling import CONTROL_VARIANTS, VARIANTS
from lshlib.paths import results_dir
from lshlib.scales import PAPER_FINETUNING, get_scale, sizes
from lshlib.training.config import RunConfig
from lshlib.variants import SCRATCH

GROUPS = ("pretraining", "sst2", "squad", "controls", "paper_settings")

MAIN = (*VARIANTS, SCRATCH)


def _finetune(
    task: str, variants: Iterable[str], seeds, mlm_seeds, scale: str, source=None, **overrides
) -> list[RunConfig]:
    """Fine-tuning runs; ``source`` names the variant whose pretraining run they start from
    (``None``: their own variant's)."""
    configs = []
    for i, seed in enumerate(seeds):
        mlm_seed = mlm_seeds[i % len(mlm_seeds)]
        for variant in variants:
            extra = dict(overrides)
            if variant != SCRATCH:
                extra["pretrained"] = training.run_config("mlm", source or variant, scale, mlm_seed)
            configs.append(training.run_config(task, variant, scale, seed, **extra))
    return configs


def plan(scale: str | None = None) -> dict[str, list[RunConfig]]:
    """Every run of the verdict at ``scale``, by group (see the module)."""
    scale = get_scale(scale)
    v = sizes("verdict", scale)
    mlm = [training.run_config("mlm", var, scale, s) for s in v["mlm_seeds"] for var in VARIANTS]
    controls = ("lsh_paper", "lsh_masked", *CONTROL_VARIANTS)
    return {
        "pretraining": mlm,
        "sst2": _finetune("sst2", MAIN, v["sst2_seeds"], v["mlm_seeds"], scale),
        "squad": _finetune("squad", MAIN, v["squad_seeds"], v["mlm_seeds"], scale),
        "controls": _finetune(
            "sst2", controls, v["control_seeds"], v["mlm_seeds"], scale, source="baseline"
        ),
        "paper_settings": _finetune(
            "sst2",
            ("baseline", "lsh_paper", SCRATCH),
            v["control_seeds"],
            v["mlm_seeds"],
            scale,
            **PAPER_FINETUNING,
        ),
    }


WORKERS_ENV = "LSHLIB_WORKERS"


def workers_from_env() -> int:
    """``$LSHLIB_WORKERS`` (default 1): how many fine-tuning runs :func:`run_plan` trains at
    once."""
    raw = os.environ.get(WORKERS_ENV, "1")
    if not raw.isdigit() or int(raw) < 1:
        raise ValueError(f"{WORKERS_ENV} must be an integer >= 1, got {raw!r}")
    return int(raw)


def _worker_threads(threads: int) -> None:
    torch.set_num_threads(threads)


def run_plan(
    scale: str | None = None,
    groups: Iterable[str] = GROUPS,
    progress: bool = True,
    workers: int | None = None,
) -> dict[str, list[dict[str, Any]]]:
    """Run (or reuse) every run of ``groups``; returns ``{group: [record, ...]}`` in plan order.

    With one worker the runs go one at a time, the pretraining runs the groups need first. With
    ``workers`` > 1 (default :func:`workers_from_env`) the missing runs, pretraining included,
    are trained by that many processes at once, each with an equal share of the CPU threads
    (:func:`train_missing`): on this study's 2-core machine two 1-thread runs did about 1.4
    (SQuAD) to 1.5 (MLM) times the work of one 2-thread run (BERT-tiny's small matrices use a
    second thread poorly). Their records then time 1-thread runs."""
    groups = list(groups)
    unknown = sorted(set(groups) - set(GROUPS))
    if unknown:
        raise ValueError(f"unknown group(s) {unknown}; valid groups: {', '.join(GROUPS)}")
    workers = workers_from_env() if workers is None else workers
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
        raise ValueError(f"workers must be an integer >= 1, got {workers!r}")
    runs = plan(scale)
    todo = [(g, c) for g in GROUPS if g in groups for c in runs[g]]
    needed = {c.pretrained for _, c in todo} | {c.name for g, c in todo if g == "pretraining"}
    ordered = [c for c in runs["pretraining"] if c.name in needed]
    ordered += [c for _, c in todo if c.task != "mlm"]
    done: dict[str, dict] = {}
    if progress:
        print(eta_line(ordered, workers), flush=True)
    # a text bar (a notebook widget is saved stuck at 0%); its last state is the saved line
    bar = tqdm(
        total=len(ordered), desc="verdict runs", disable=not progress, unit="run", mininterval=10
    )
    serial = (
        ordered
        if workers == 1
        else [c for c in ordered if training.load_record(c, quarantine=True)]
    )
    for config in serial:
        bar.set_postfix_str(config.name, refresh=False)
        done[config.name] = training.run(config, progress=False, chain=True)
        wallclock.heartbeat(config.name, scale=scale)  # a no-op outside make reproduce
        bar.update()
    missing = [c for c in ordered if c.name not in done]
    if missing:
        threads = max(1, (os.cpu_count() or 1) // workers)
        context = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(workers, context, _worker_threads, (threads,)) as pool:
            done.update(train_missing(missing, pool, workers, bar))
    bar.close()
    records: dict[str, list[dict[str, Any]]] = {g: [] for g in groups}
    for group, config in todo:
        records[group].append(done[config.name])
    return records


def eta_line(configs: list[RunConfig], workers: int = 1) -> str:
    """How long the missing runs of ``configs`` should take here: each run's seconds from like
    records of this machine (:func:`lshlib.verdict.runner.estimate_run_seconds`), summed and shared
    among ``workers`` (an estimate, said as one)."""
    from lshlib.bench.measure import cpu_model
    from lshlib.verdict.runner import estimate_run_seconds, finished_records

    if not configs:
        return "nothing to train"
    records, cpu = finished_records(results_dir(configs[0].scale, "cpu")), cpu_model()
    missing = [c for c in configs if training.load_record(c) is None]
    if not missing:
        return f"all {len(configs)} runs finished earlier: nothing to train"
    seconds, unknown = 0.0, 0
    for config in missing:
        try:
            seconds += estimate_run_seconds(config, records, cpu)
        except LookupError:
            unknown += 1
    said = f"{len(missing)} of {len(configs)} runs to train, about {seconds / 60 / workers:.0f} "
    said += f"min with {workers} worker{'s' if workers > 1 else ''} (from this machine's records)"
    return said + (f"; {unknown} runs have no like record to go by" if unknown else "")


def plan_records(scale: str | None = None) -> dict[str, list[dict[str, Any]]]:
    """The finished records of every group of the plan, in plan order, read only: missing runs
    are left out (:func:`missing_line` names them; ``make reproduce`` or ``python -m
    lshlib.verdict`` trains them). What a notebook calls: it never starts a run."""
    out: dict[str, list[dict[str, Any]]] = {}
    for group, configs in plan(scale).items():
        out[group] = [r for r in map(training.load_record, configs) if r is not None]
    return out


def missing_line(scale: str | None = None) -> str:
    """Which runs of the plan have no record yet, in one line."""
    missing = [c.name for cs in plan(scale).values() for c in cs if training.load_record(c) is None]
    if not missing:
        return "every run of the plan has a record"
    return (
        f"{len(missing)} runs of the plan have no record yet (python -m lshlib.verdict trains "
        f"them): {', '.join(missing)}"
    )


def train_missing(
    configs: list[RunConfig], pool: Executor, workers: int, bar: tqdm | None = None
) -> dict[str, dict]:
    """Train ``configs`` (pretraining runs listed before the runs that start from them) on
    ``pool``, ``workers`` at a time, and return ``{name: record}``.

    A fine-tuning run starts once its pretrained model is saved, so fine-tuning fills a worker
    that the last pretraining runs leave idle. A run whose pretraining run is neither in
    ``configs`` nor saved makes it itself (``chain``); two such runs of one pretraining run never
    start together, so no two processes ever train one run."""
    pending, out = list(configs), {}
    running: dict[Future, tuple[RunConfig, str | None]] = {}  # and the pretraining run it trains

    def trains(config: RunConfig) -> str | None:
        if config.task == "mlm":
            return config.name
        saved = config.pretrained is None or training.pretrained_saved(config)
        return None if saved else config.pretrained

    def blocked(config: RunConfig) -> bool:
        need = trains(config) if config.task != "mlm" else None
        made = {m for _, m in running.values()}
        return need is not None and (need in made or any(c.name == need for c in pending))

    while pending or running:
        for config in list(pending):  # one at a time: a start can block the next candidate
            if len(running) < workers and not blocked(config):
                pending.remove(config)
                future = pool.submit(training.run, config, progress=False, chain=True)
                running[future] = (config, trains(config))
        if not running:
            raise RuntimeError(f"runs that can never start: {[c.name for c in pending]}")
        finished, _ = wait(running, return_when=FIRST_COMPLETED)
        for future in finished:
            config, _ = running.pop(future)
            out[config.name] = future.result()
            wallclock.heartbeat(config.name, scale=getattr(config, "scale", None))
            if bar is not None:
                bar.set_postfix_str(config.name, refresh=False)
                bar.update()
    return out


def first_seed(configs: list[RunConfig], variants: Iterable[str] | None = None) -> list:
    """The configs of the first seed of a group (of ``variants`` only, when given)."""
    keep = None if variants is None else set(variants)
    return [c for c in configs if c.seed == configs[0].seed and (keep is None or c.variant in keep)]


def plan_summary(runs: dict[str, list[RunConfig]]) -> list[dict[str, Any]]:
    """One row per group: its task, variants, seeds and number of runs."""
    return [
        {
            "group": group,
            "task": ", ".join(sorted({c.task for c in configs})),
            "variants": ", ".join(dict.fromkeys(c.variant for c in configs)),
            "seeds": ", ".join(str(s) for s in dict.fromkeys(c.seed for c in configs)),
            "runs": len(configs),
        }
        for group, configs in runs.items()
    ]


def recorded_training(scale: str | None = None) -> dict[str, Any]:
    """The training wall-clock recorded by the finished runs of the plan (what ``make
    reproduce`` retrains), in minutes per number of CPU threads they ran on, with ``runs`` (how
    many have a record) and ``planned``. 1-thread runs were trained two at a time, 2-thread runs
    alone, so ``minutes[2] + minutes[1] / 2`` is how long those runs took as they were made."""
    configs = {c.name: c for group in plan(scale).values() for c in group}
    minutes: dict[int, float] = {}
    records = [r for r in map(training.load_record, configs.values()) if r is not None]
    for r in records:
        threads = int(r["device"].get("threads", 0))
        minutes[threads] = minutes.get(threads, 0.0) + r["train_seconds"] / 60
    return {"minutes": minutes, "runs": len(records), "planned": len(configs)}
